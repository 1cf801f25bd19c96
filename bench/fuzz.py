#!/usr/bin/env python3
"""The fuzzer's long profile: hostile VNN-LIB and ONNX inputs through every command, for N minutes.

    python bench/fuzz.py --minutes 20 [--out fuzz-failures] [--target verify/spec ...] [--seed S]

Targets (command/input kind) take turns in slices of `--slice` seconds. Each input goes through the command
in-process and is checked against the property of `tests/fuzz/harness.py` (exit 0-3, no traceback, a one-line
error naming the file, nothing half-written). Prints a line per failure and, at the end, the inputs tried and
the failures per target; each failing input is written to the `--out` folder (`TARGET-N.bin`, with the problem
and the command line in `TARGET-N.txt`). Exit 1 when anything failed. The short profile is `tests/fuzz/` (CI).
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class _TimeUp(BaseException):
    """Ends a target's slice from inside hypothesis's loop (a BaseException, so not taken for a failure)."""


def targets() -> dict[str, tuple[Callable, object]]:
    """name -> (harness target, hypothesis strategy of the input's bytes)."""
    from tests.fuzz import harness, strategies

    out: dict[str, tuple[Callable, object]] = {}
    for name, target in harness.SPEC_TARGETS.items():
        out[f"{name}/spec"] = (target, strategies.spec_bytes())
    out["standard/query"] = (harness.QUERY_TARGETS["standard"],
                             strategies.vnnlib2_texts().map(lambda t: t.encode("utf-8", "surrogatepass")))
    for name, target in harness.MODEL_TARGETS.items():
        out[f"{name}/onnx"] = (target, strategies.onnx_bytes())
    out["run/csv"] = (harness.run_csv, strategies.instances_csv())
    return out


class Fuzzer:
    def __init__(self, out: Path, seed: int) -> None:
        self.out = out
        self.seed = seed
        self.tried: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()

    def record(self, name: str, data: bytes, problem: str, folder: Path) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        n = self.failed[name]
        stem = f"{name.replace('/', '-')}-{n}"
        (self.out / f"{stem}.bin").write_bytes(data)
        (self.out / f"{stem}.txt").write_text(f"{problem}\ntarget {name}\n")
        print(f"FAIL {name} #{n}: {problem}  -> {self.out / stem}.bin", flush=True)

    def slice(self, name: str, target: Callable, strategy: object, until: float) -> None:
        from hypothesis import HealthCheck, Phase, given, seed, settings

        from tests.fuzz import harness

        @seed(self.seed + self.tried[name] + 7919 * len(name))
        @settings(max_examples=10**9, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(strategy)
        def one(data: bytes) -> None:
            if time.monotonic() > until:
                raise _TimeUp()
            folder = Path(tempfile.mkdtemp(prefix="verifier-fuzz-"))
            try:
                problem = harness.try_input(target, data, folder)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            self.tried[name] += 1
            if problem is not None:
                self.record(name, data, problem, folder)
                self.failed[name] += 1

        try:
            one()
        except _TimeUp:
            pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=5.0, help="total fuzzing time")
    ap.add_argument("--slice", type=float, default=30.0, help="seconds per target per turn")
    ap.add_argument("--out", type=Path, default=Path("fuzz-failures"), help="folder for the failing inputs")
    ap.add_argument("--target", action="append", help="only these targets (repeatable), e.g. verify/spec")
    ap.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: random)")
    args = ap.parse_args(argv)

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cache = tempfile.mkdtemp(prefix="verifier-fuzz-cache-")
    os.environ["VERIFIER_CACHE_DIR"] = cache  # hostile models must not fill the user's graph cache
    warnings.simplefilter("ignore")  # the property is judged on the command's own output
    import torch

    torch.set_num_threads(1)
    chosen = targets()
    if args.target:
        unknown = sorted(set(args.target) - set(chosen))
        if unknown:
            print(f"bench/fuzz.py: unknown target {unknown[0]!r}; choose from {', '.join(chosen)}", file=sys.stderr)
            return 3
        chosen = {k: v for k, v in chosen.items() if k in args.target}
    fuzzer = Fuzzer(args.out, args.seed if args.seed is not None else random.randrange(2**31))
    print(f"fuzzing {len(chosen)} targets for {args.minutes:g} min (seed {fuzzer.seed}); failures go to {args.out}",
          flush=True)
    end = time.monotonic() + 60 * args.minutes
    try:
        while time.monotonic() < end:
            for name, (target, strategy) in chosen.items():
                now = time.monotonic()
                if now >= end:
                    break
                fuzzer.slice(name, target, strategy, min(end, now + args.slice))
                print(f"  {name:20s} tried {fuzzer.tried[name]:6d}  failures {fuzzer.failed[name]}", flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    total, failures = sum(fuzzer.tried.values()), sum(fuzzer.failed.values())
    print("-" * 60)
    for name in chosen:
        print(f"{name:20s} tried {fuzzer.tried[name]:6d}  failures {fuzzer.failed[name]}")
    print(f"inputs tried: {total}  failures: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
