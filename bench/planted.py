#!/usr/bin/env python3
"""Planted counterexamples that attacks miss (tests/differential/planted.py): how many does `verify` find?

    python bench/planted.py [--cases 30] [--timeout 30] [--seed 0] [--min-inputs 5] [--max-inputs 50]
                            [--method auto] [--bab auto] [--only I ...]

Each case: a relu MLP with n inputs (spread evenly over [min, max]) that is negative only in an L1 ball
covering < 1e-7 of [-1, 1]^n (uniform samples and PGD miss it).
Prints per case the verdict, the time and which stage found it, then found / cases, wrong, and total time.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import onnx  # noqa: E402

from tests.differential.judge import replays  # noqa: E402
from tests.differential.networks import to_onnx  # noqa: E402
from tests.differential.planted import bump_case  # noqa: E402
from tests.differential.specs import Case  # noqa: E402


def run(case: Case, args: argparse.Namespace, tmp: Path) -> tuple[str, str, float, bool]:
    from verifier.api import verify

    onnx.save(to_onnx(case.net), str(tmp / "net.onnx"))
    (tmp / "spec.vnnlib").write_text(case.text())
    t = time.monotonic()
    res = verify(str(tmp / "net.onnx"), str(tmp / "spec.vnnlib"), timeout=args.timeout, method=args.method,
                 bab=args.bab, device="cpu", seed=args.seed)
    wall = time.monotonic() - t
    ok = True
    if res.verdict == "sat":
        ok = res.counterexample is not None and replays(case, np.asarray(res.counterexample.x, dtype=np.float64))
    if res.verdict == "unsat" and case.truth == "sat":
        ok = False
    return res.verdict, res.method or "-", wall, ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=30)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-inputs", type=int, default=5)
    ap.add_argument("--max-inputs", type=int, default=50)
    ap.add_argument("--method", default="auto")
    ap.add_argument("--bab", default="auto")
    ap.add_argument("--only", type=int, nargs="*", default=None, help="run only these case numbers (1-based)")
    args = ap.parse_args(argv)

    from verifier.runtime import tune_process

    tune_process(1)
    rng = np.random.default_rng(args.seed)
    sizes = np.linspace(args.min_inputs, args.max_inputs, args.cases).round().astype(int)
    found = wrong = 0
    walls = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, n in enumerate(sizes, 1):
            case = bump_case(rng, int(n))  # generated in order, so --only keeps the same nets
            if args.only and i not in args.only:
                continue
            verdict, method, wall, ok = run(case, args, Path(tmp))
            found += verdict == "sat" and ok
            wrong += not ok
            walls.append(wall)
            print(f"{i:3d} n={n:2d} {verdict:8s} {method:6s} {wall:6.1f}s{'' if ok else '  <-- WRONG'}", flush=True)
    print("-" * 60)
    print(f"found {found}/{len(walls)}  wrong {wrong}  total {sum(walls):.0f}s")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
