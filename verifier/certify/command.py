"""The `verifier certify` click command: argument parsing here, the work in `run_certify`.

Only click and the standard library at import: `verifier --help` must not load torch.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import Any, Optional

import click

DEFAULT_CASCADE = "pgd,ibp,crown,alpha,bab"


@dataclass(frozen=True)
class CertifyRequest:
    """Everything one `certify` call asks for, checked and parsed (radii, shard, stages, normalisation)."""

    model: str
    data: str
    labels: Optional[str]
    radii: tuple[float, ...]
    norm: str
    mean: Optional[tuple[float, ...]]
    std: Optional[tuple[float, ...]]
    clip: Optional[tuple[float, float]]
    n: Optional[int]
    start: int
    shard: Optional[tuple[int, int]]
    stages: tuple[str, ...]
    timeout: float
    batch: int
    pgd_steps: int
    pgd_restarts: int
    device: str
    seed: int
    results: Optional[str]
    resume: bool
    min_verified_acc: Optional[float]
    tightness: bool
    check: bool


def _threshold(text: Optional[str]) -> Optional[float]:
    """0.9 or 90%: a fraction in [0, 1]."""
    from verifier.certify.eps import parse_number
    from verifier.errors import InputError

    if text is None:
        return None
    value = parse_number(text.rstrip("%"), "--min-verified-acc") / (100 if text.endswith("%") else 1)
    if not 0 <= value <= 1:
        raise InputError(f"--min-verified-acc must be a fraction in [0, 1] (or a percentage), got {text!r}")
    return value


def _parse(opts: dict[str, Any]) -> CertifyRequest:
    from verifier.certify.cascade import check_stages, stages_for_norm
    from verifier.certify.eps import parse_eps, parse_norm, parse_number, parse_shard, parse_sweep, parse_values
    from verifier.errors import InputError

    norm = parse_norm(opts["norm"])
    stages = stages_for_norm(check_stages(opts["cascade"].split(",")), norm)
    if (opts["eps"] is None) == (opts["eps_sweep"] is None):
        raise InputError("give exactly one of --eps E and --eps-sweep START:STOP:COUNT")
    radii = (parse_eps(opts["eps"]),) if opts["eps"] is not None else tuple(parse_sweep(opts["eps_sweep"]))
    if opts["plot"] and opts["eps_sweep"] is None:
        raise InputError("--plot draws the curve of an --eps-sweep; add --eps-sweep START:STOP:COUNT")
    if (opts["mean"] is None) != (opts["std"] is None):
        raise InputError("--mean and --std go together (the normalisation (x - mean) / std)")
    clip = None
    if opts["clip"] is not None:
        clip = (parse_number(opts["clip"][0], "--clip"), parse_number(opts["clip"][1], "--clip"))
        if clip[0] > clip[1]:
            raise InputError(f"--clip {clip[0]:g} {clip[1]:g}: the lower end is above the upper end")
    return CertifyRequest(
        model=opts["model"], data=opts["data"], labels=opts["labels"], radii=radii, norm=norm,
        mean=parse_values(opts["mean"], "--mean") if opts["mean"] is not None else None,
        std=parse_values(opts["std"], "--std") if opts["std"] is not None else None,
        clip=clip, n=opts["n"], start=opts["start"],
        shard=parse_shard(opts["shard"]) if opts["shard"] is not None else None,
        stages=stages, timeout=opts["timeout"], batch=opts["batch"],
        pgd_steps=opts["pgd_steps"], pgd_restarts=opts["pgd_restarts"], device=opts["device"], seed=opts["seed"],
        results=opts["results"], resume=opts["resume"], min_verified_acc=_threshold(opts["min_verified_acc"]),
        tightness="tightness" in opts["report"], check=not opts["no_check"])


def run_certify(req: CertifyRequest, progress: bool = False) -> dict[str, Any]:
    """Load, run the cascade on every selected sample not yet recorded, at every radius; the summary document."""
    from verifier.certify.data import load_dataset

    return certify_dataset(req, load_dataset(req.data, req.labels), progress)[0]


def certify_dataset(req: CertifyRequest, data: Any, progress: bool = False,
                    cache: bool = True) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """`run_certify` on a loaded `data.Dataset` (req.data only names it): the summary document and the
    records of the selected samples (every radius, in selection order). cache=False keeps the converted
    model out of the graph cache (a model certified once, e.g. one epoch of a training run)."""
    import numpy as np

    from verifier.certify.attack import MarginAttack
    from verifier.certify.cascade import CascadeConfig, certify_chunk
    from verifier.certify.data import check_fits
    from verifier.certify.network import Normalisation, check_against_onnxruntime, load_network
    from verifier.certify.records import ResultsFile, check_labels, select
    from verifier.certify.summary import document, summarise

    start = time.monotonic()
    indices = select(len(data), req.start, req.n, req.shard)
    x = data.x.reshape(len(data), -1)
    norm = Normalisation(req.mean, req.std) if req.mean is not None and req.std is not None else None
    net = load_network(req.model, norm, req.device, cache=cache)
    note = check_fits(data, net.n_inputs, net.n_outputs, req.model, net.runner.input_shape)
    if note:
        click.echo(note, err=True)
    if req.check:
        check_against_onnxruntime(net, x[indices])
    if req.tightness:
        from verifier.certify.tightness import relu_nodes

        relu_nodes(net.graph)  # a network tightness cannot linearise fails now, not after the cascade
    sha = net.model.sha256[:16]
    if {"alpha", "bab"} & set(req.stages):
        _preload_optimiser()
    results = ResultsFile(req.results, req.resume, sha, req.norm)
    check_labels(results.records, data.y, str(req.results))
    runs, records = [], []
    try:
        for eps in req.radii:
            config = CascadeConfig(eps=eps, clip=req.clip, norm=req.norm, stages=req.stages, timeout=req.timeout,
                                   batch=req.batch,
                                   attack=MarginAttack(req.pgd_restarts, req.pgd_steps, req.seed), seed=req.seed)
            done = results.done(eps)
            todo = [i for i in indices if i not in done]
            for s in range(0, len(todo), req.batch):
                chunk = np.asarray(todo[s:s + req.batch])
                certify_chunk(net, x[chunk], data.y[chunk], chunk.tolist(), config, results.append, sha)
                if progress:
                    click.echo(f"eps {eps:.4g}: {min(s + req.batch, len(todo))}/{len(todo)} samples", err=True)
            mine = results.done(eps)
            records += [mine[i] for i in indices]
            run = summarise([mine[i] for i in indices], eps, req.stages)
            if req.tightness:
                from verifier.certify.tightness import tightness_report

                run["tightness"] = tightness_report(net, x[indices], data.y[indices], eps, req.clip, req.batch,
                                                    req.norm)
            runs.append(run)
    finally:
        results.close()
    shard = None if req.shard is None else f"{req.shard[0]}/{req.shard[1]}"
    selection = {"start": req.start, "n": req.n, "shard": shard, "samples": len(indices)}
    normalisation = None if norm is None else {"mean": list(norm.mean), "std": list(norm.std)}
    doc = document(model=req.model, model_sha256=net.model.sha256, data=data.source, selection=selection,
                   norm=req.norm, normalisation=normalisation, clip=req.clip, stages=req.stages,
                   timeout=req.timeout, runs=runs, min_verified_acc=req.min_verified_acc,
                   wall=time.monotonic() - start)
    return doc, records


def _preload_optimiser() -> None:
    """torch's first optimiser step imports torch._dynamo (about 2.5 s): pay it while loading, so the stage
    times of the first samples (alpha-CROWN, branch and bound) measure bounding, not an import."""
    import importlib

    try:
        importlib.import_module("torch._dynamo")
    except ImportError:  # pragma: no cover - other torch builds
        pass


@click.command("certify", short_help="Verified accuracy of a classifier over a data set at eps (L-inf, L2, L1).")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--data", required=True, type=click.Path(dir_okay=False),
              help="Samples and labels: .npz (x, y), .pt ({'x','y'} or (x, y)), or X.npy with --labels.")
@click.option("--labels", type=click.Path(dir_okay=False), help="Labels .npy when --data is an .npy of inputs.")
@click.option("--eps", help="Radius of the ball in input (pixel) units, e.g. 0.03 or 2/255.")
@click.option("--eps-sweep", help="START:STOP:COUNT radii, e.g. 0:8/255:9 (a table and, with --plot, a curve).")
@click.option("--norm", default="linf", show_default=True,
              help="Perturbation norm: linf, l2 or l1 (l2/l1: branch and bound splits ReLUs only; with --clip, "
                   "ball ∩ box).")
@click.option("--mean", help="Per-channel mean, e.g. 0.1307 or 0.4914,0.4822,0.4465; put inside the verified graph.")
@click.option("--std", help="Per-channel standard deviation (with --mean): the model sees (x - mean) / std.")
@click.option("--clip", nargs=2, help="Valid input range LO HI; the eps-box is intersected with it (e.g. 0 1).")
@click.option("--n", "n", type=click.IntRange(min=1), help="Number of samples from --start (default: all).")
@click.option("--start", type=click.IntRange(min=0), default=0, show_default=True, help="First sample index.")
@click.option("--shard", help="I/K: take every K-th selected sample from the I-th (0 <= I < K).")
@click.option("--cascade", default=DEFAULT_CASCADE, show_default=True,
              help="Stages, in this order; each sample stops at the first that decides it.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Seconds per sample (batched stages count at their share; BaB gets what is left).")
@click.option("--batch", type=click.IntRange(min=1), default=128, show_default=True,
              help="Samples per batched PGD / IBP / CROWN / alpha pass.")
@click.option("--pgd-steps", type=click.IntRange(min=0), default=40, show_default=True, help="PGD steps.")
@click.option("--pgd-restarts", type=click.IntRange(min=1), default=8, show_default=True,
              help="PGD starts per sample (the box centre, then random points).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where bounds run; auto picks CUDA when available.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="CPU threads for torch.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for PGD and branch and bound.")
@click.option("--results", type=click.Path(dir_okay=False), help="Per-sample JSONL records, appended and flushed.")
@click.option("--resume", is_flag=True, help="Continue --results: skip the samples it already records.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (schema verifier.certify/1).")
@click.option("--min-verified-acc", help="Exit 2 unless verified accuracy reaches this (0.9 or 90%) at every eps.")
@click.option("--report", type=click.Choice(["tightness"]), multiple=True,
              help="tightness: IBP propagation tightness (Mao et al.) and ReLU states per layer.")
@click.option("--plot", type=click.Path(dir_okay=False), help="With --eps-sweep: save the curve (png/pdf/svg).")
@click.option("--no-check", is_flag=True, help="Skip the onnxruntime equivalence check at load.")
@click.option("--progress", is_flag=True, help="One line on stderr per batch of samples.")
def certify(**opts: Any) -> None:
    """Verified accuracy of MODEL.onnx over a labelled data set, within a ball of radius eps (--norm).

    Per sample: clean prediction, then the cascade (PGD, IBP, CROWN, alpha-CROWN, branch and bound) until a
    stage decides it. Exit 0, or 2 when --min-verified-acc is not met; 3 for bad input.
    """
    from verifier.commands.common import fail as _fail, guarded as _guarded, set_threads as _set_threads

    def run() -> dict[str, Any]:
        req = _parse(opts)
        from verifier.errors import check_output_path

        for option in ("results", "plot"):
            if opts[option]:
                check_output_path(opts[option], f"--{option}", make_folder=True)
        if opts["plot"]:
            from verifier.certify.plot import require_matplotlib

            require_matplotlib()
        _set_threads(opts["threads"])
        return run_certify(req, progress=opts["progress"])

    doc = _guarded(run)
    if opts["plot"]:
        from verifier.certify.plot import plot_curve

        _guarded(lambda: plot_curve(doc, opts["plot"]))
    if opts["as_json"]:
        click.echo(json.dumps(doc, indent=2))
    else:
        from verifier.certify.report import print_report

        print_report(doc)
    if doc["exit_code"] and not opts["as_json"]:
        _fail(doc["exit_code"], f"verified accuracy below --min-verified-acc {doc['min_verified_acc']:g}")
    sys.exit(doc["exit_code"])
