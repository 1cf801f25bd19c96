"""`certify_module`: verified accuracy of a `torch.nn.Module` over in-memory samples, e.g. once per epoch.

Route: the module is exported once per call with torch's ONNX exporter to a temporary file, which then
goes through exactly the path of `verifier certify MODEL.onnx` (our ONNX front end, the onnxruntime
equivalence check, the cascade, counterexamples replayed on onnxruntime). Not torch.fx: a traced module
holds arbitrary torch modules and functions, each of which would need a second front end of its own,
whereas the exporter lowers them to the ONNX ops our front end already supports; and the replay of
counterexamples needs an independent runtime, which the ONNX file gives. The cost is one export (a
fraction of a second for small networks) per call, and the converted graph is not cached (its weights
change every epoch).
"""
from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import torch

from verifier.certify.command import DEFAULT_CASCADE
from verifier.errors import InputError


def export_module(module: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    """Write the module (in eval mode, its mode restored afterwards) as ONNX with input 'input' of the
    example's shape, batch 1. A fixed batch lets the exporter fold shape arithmetic (reshapes written
    as x.view(x.shape[0], -1) would otherwise become Shape/Slice ops); the cascade batches our own graph
    and onnxruntime replays one point at a time, so nothing needs a free batch dimension."""
    raw = path.with_suffix(".exported.onnx")
    training = module.training
    module.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracer warnings
            torch.onnx.export(module, (example,), str(raw), input_names=["input"], output_names=["output"],
                              opset_version=13, dynamo=False)  # the opset our front end reads best
    finally:
        module.train(training)
    fold_constants(raw, path)


def fold_constants(source: Path, target: Path) -> None:
    """Write source with onnxruntime's basic (semantics-preserving, standard-op) graph optimisations applied:
    the exporter writes shape arithmetic (Shape, Slice, Mod, Concat feeding a Reshape) even for a fixed
    input shape, e.g. for nn.Unflatten, and constant folding turns it back into one Reshape our front end
    reads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(target)
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])


def certify_module(module: torch.nn.Module, x: Any, y: Any, eps: Union[float, Sequence[float]],
                   norm: str = "linf", cascade: Union[str, Sequence[str]] = DEFAULT_CASCADE,
                   mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None,
                   clip: Optional[tuple[float, float]] = None, timeout: float = 10.0, batch: int = 128,
                   pgd_steps: int = 40, pgd_restarts: int = 8, device: str = "auto", seed: int = 0,
                   results: Optional[str] = None, resume: bool = False,
                   min_verified_acc: Optional[float] = None, tightness: bool = False,
                   check: bool = True) -> dict[str, Any]:
    """Verified accuracy of `module` on samples x (N, *input shape) with labels y (N,) at radius eps (or
    each of several radii), as `verifier certify` computes it; arguments as the command's options.

    Returns the command's `--json` document (schema verifier.certify/1; `model` is "<module>") plus
    `records`: the per-sample records of every radius (what `--results` writes), in sample order.
    Raises verifier.errors.InputError for bad arguments or data.
    """
    from verifier.certify.cascade import check_stages, stages_for_norm
    from verifier.certify.command import CertifyRequest, certify_dataset
    from verifier.certify.data import from_arrays
    from verifier.certify.eps import parse_norm

    radii = (float(eps),) if isinstance(eps, (int, float)) else tuple(float(e) for e in eps)
    if not radii or any(not e >= 0 for e in radii):
        raise InputError(f"eps must be one or more radii >= 0, got {eps!r}")
    if (mean is None) != (std is None):
        raise InputError("mean and std go together (the normalisation (x - mean) / std)")
    if clip is not None and clip[0] > clip[1]:
        raise InputError(f"clip {clip}: the lower end is above the upper end")
    norm = parse_norm(norm)
    names = cascade.split(",") if isinstance(cascade, str) else list(cascade)
    stages = stages_for_norm(check_stages(names), norm)
    data = from_arrays(x, y, "<arrays>")
    param = next(module.parameters(), None)
    example = torch.as_tensor(data.x[:1], dtype=torch.float32,
                              device=param.device if param is not None else None)
    with tempfile.TemporaryDirectory(prefix="verifier-module-") as folder:
        path = Path(folder) / "module.onnx"
        export_module(module, example, path)
        req = CertifyRequest(
            model=str(path), data="<arrays>", labels=None, radii=radii, norm=norm,
            mean=None if mean is None else tuple(float(v) for v in _values(mean)),
            std=None if std is None else tuple(float(v) for v in _values(std)),
            clip=None if clip is None else (float(clip[0]), float(clip[1])), n=None, start=0, shard=None,
            stages=stages, timeout=timeout, batch=batch, pgd_steps=pgd_steps, pgd_restarts=pgd_restarts,
            device=device, seed=seed, results=results, resume=resume, min_verified_acc=min_verified_acc,
            tightness=tightness, check=check)
        doc, records = certify_dataset(req, data, cache=False)
    doc["model"] = "<module>"
    doc["records"] = records
    return doc


def _values(v: Any) -> Sequence[float]:
    """A number, a sequence or a tensor as a flat sequence of floats."""
    if hasattr(v, "detach"):
        v = v.detach().cpu().reshape(-1).tolist()
    return [v] if isinstance(v, (int, float)) else list(v)
