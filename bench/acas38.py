#!/usr/bin/env python3
"""The 38 ACAS Xu instances of issue 16, one `verifier verify` process each, start-up included.

    python bench/acas38.py --out acas38.csv [--timeout 60] [--limit N] [--device cpu|cuda]

Networks 1_1, 1_9, 2_3, 2_9, 3_3, 3_5, 4_2, 5_7 with props 1-4 (32), then 1_1 prop_5, 1_1 prop_6,
1_9 prop_7, 2_9 prop_8, 3_3 prop_9 and 4_5 prop_10: the set other tools' ACAS Xu figures are quoted on.
Prints per instance verdict and wall time, then decided / wrong (against expected.csv) / total / median;
the CSV (`--out`) gets a row as each instance ends.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from per_process import Row, add_common_args, pick, resolve_bench, run_rows  # noqa: E402

NETWORKS = ("1_1", "1_9", "2_3", "2_9", "3_3", "3_5", "4_2", "5_7")
EXTRA = (("1_1", 5), ("1_1", 6), ("1_9", 7), ("2_9", 8), ("3_3", 9), ("4_5", 10))


def acas38(timeout: float) -> list[Row]:
    """The 38 instances, paths relative to the acasxu folder, every one capped at `timeout`."""
    pairs = [(net, prop) for net in NETWORKS for prop in range(1, 5)] + list(EXTRA)
    return [Row(f"onnx/ACASXU_run2a_{net}_batch_2000.onnx", f"vnnlib/prop_{prop}.vnnlib", timeout)
            for net, prop in pairs]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default="acasxu", help="the acasxu folder (or its name under shared/benchmarks)")
    ap.add_argument("--timeout", type=float, default=60.0, help="cap per instance in seconds")
    add_common_args(ap)
    args = ap.parse_args(argv)
    rows = pick(acas38(args.timeout), args.limit, spread=False)
    return run_rows(resolve_bench(args.bench), rows, out=args.out, timeout=None, scale=args.timeout_scale,
                    device=args.device, threads=args.threads, engine="input split", budget=args.budget)


if __name__ == "__main__":
    sys.exit(main())
