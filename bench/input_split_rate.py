"""Input-split throughput and progress on one instance, per portfolio member.

    python bench/input_split_rate.py acasxu/onnx/ACASXU_run2a_3_3_batch_2000.onnx acasxu/vnnlib/prop_2.vnnlib \
        --seconds 30 [--members w0.3,w1.0,alpha] [--no-malloc-tuning]

Runs each member's search alone on the first (box, clause) root for the given seconds and prints its
verdict (or open), boxes bounded, and the fraction of the root's volume still open at a few moments: the
figures behind the portfolio and malloc-tuning choices (paths are relative to ../shared/benchmarks unless
they exist as given).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"


def _path(p: str) -> str:
    return p if Path(p).exists() else str(DEFAULT_ROOT / p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("spec")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--members", default="w0.3,w1.0,alpha")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-malloc-tuning", action="store_true")
    args = ap.parse_args()

    import torch

    from verifier.api import _accepting, _tensors, load_problem, make_options
    from verifier.bab.input_split import InputSplitConfig, InputSplitSearch
    from verifier.runtime import keep_freed_memory

    torch.set_num_threads(args.threads)
    if not args.no_malloc_tuning:
        keep_freed_memory()
    members = {"w0.3": InputSplitConfig(), "w1.0": InputSplitConfig(width_weight=1.0, objective_alpha=0),
               "alpha": InputSplitConfig(intermediate="alpha", objective_alpha=0, batch_size=256)}
    problem = load_problem(_path(args.model), _path(args.spec), make_options())
    lower, upper, clauses = _tensors(problem.spec.properties[0], problem)
    for name in args.members.split(","):
        search = InputSplitSearch(problem.graph, lower, upper, *clauses[0], _accepting(problem, 0, 0, []),
                                  members[name])
        start = time.monotonic()
        marks: list[tuple[float, float]] = []

        def tick() -> None:
            elapsed = time.monotonic() - start
            if not marks or elapsed - marks[-1][0] > args.seconds / 6:
                rel = (search.U - search.L) / search.root_width
                marks.append((elapsed, float(rel.double().prod(1).sum())))

        out = search.run(start + args.seconds, tick)
        shown = " ".join(f"{t:.0f}s:{v:.2e}" for t, v in marks)
        print(f"{name:6s} {out.verdict if out else 'open':8s} boxes {search.domains:8d} in "
              f"{time.monotonic() - start:5.1f}s  open volume {shown}", flush=True)


if __name__ == "__main__":
    main()
