#!/usr/bin/env python3
"""Run a VNN-COMP benchmark folder (instances.csv) and compare with expected.csv.

    python bench/run.py ../shared/benchmarks/acasxu [--method auto] [--timeout-scale 1] [--limit N]
    python bench/run.py acasxu        # a name: looked up under $VERIFIER_BENCHMARKS, else ../shared/benchmarks

Prints one line per instance and a total: unsat / sat / unknown / timeout / error / WRONG, which stage
decided, total and median wall time. Each model is loaded once (as a batch run would).
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
ROOT_VARIABLE = "VERIFIER_BENCHMARKS"  # where benchmark names are looked up, when set


def find_bench(name: str) -> Path | None:
    """The benchmark folder `name` (a path, or a name under $VERIFIER_BENCHMARKS or DEFAULT_ROOT) holding an
    instances.csv; None when there is none."""
    root = Path(os.environ.get(ROOT_VARIABLE) or DEFAULT_ROOT)
    for folder in (Path(name), root / name):
        if (folder / "instances.csv").is_file():
            return folder
    return None


def not_found(name: str) -> str:
    """One line: where `name` was looked for, and how to point elsewhere."""
    root = Path(os.environ.get(ROOT_VARIABLE) or DEFAULT_ROOT)
    return (f"bench/run.py: no benchmark {name!r}: no instances.csv in {Path(name).absolute()} nor in {root / name}; "
            f"give the benchmark folder's path, or set {ROOT_VARIABLE} to the folder that holds the benchmarks")


def read_expected(bench: Path) -> dict[tuple[str, str], str]:
    path = bench / "expected.csv"
    if not path.exists():
        return {}
    with path.open() as fh:
        return {(r["onnx"], r["vnnlib"]): r["expected"] for r in csv.DictReader(fh)}


def is_wrong(verdict: str, expected: str) -> bool:
    """Only a decided verdict that contradicts a decided consensus is wrong."""
    return {verdict, expected} == {"sat", "unsat"}


CSV_COLUMNS = ["onnx", "vnnlib", "timeout", "verdict", "method", "expected", "wall", "wrong", "message"]


def read_done(path: Path) -> set[tuple[str, str]]:
    """(onnx, vnnlib) pairs already recorded in a results CSV (so that a long run can be resumed)."""
    if not path.exists():
        return set()
    with path.open() as fh:
        return {(r["onnx"], r["vnnlib"]) for r in csv.DictReader(fh)}


def open_log(path: Path):  # type: ignore[no-untyped-def]
    """A csv writer appending to `path` (header first when new), flushed per row by line buffering."""
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = csv.writer(path.open("a", newline="", buffering=1))
    if new:
        writer.writerow(CSV_COLUMNS)
    return writer


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench", help=f"benchmark folder, or a name under ${ROOT_VARIABLE} (default {DEFAULT_ROOT})")
    ap.add_argument("--method", default="auto", choices=["auto", "ibp", "crown", "alpha"])
    ap.add_argument("--bab", default="auto", choices=["auto", "input", "relu", "none"])
    ap.add_argument("--timeout-scale", type=float, default=1.0, help="multiply each instance's timeout")
    ap.add_argument("--limit", type=int, default=None, help="run only the first N instances")
    ap.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--semantics", default="real", choices=["real", "float32"],
                    help="what an unsat holds for (verify --semantics)")
    ap.add_argument("--csv", type=Path, default=None,
                    help="append one row per instance as it finishes; instances already in it are skipped (resume)")
    args = ap.parse_args(argv)

    bench = find_bench(args.bench)
    if bench is None:
        print(not_found(args.bench), file=sys.stderr)
        return 3
    from verifier.api import verify
    from verifier.errors import InputError
    from verifier.result import Result
    from verifier.model.loader import load_model
    from verifier.runtime import tune_process

    tune_process(args.threads)  # as the CLI does
    expected = read_expected(bench)
    with (bench / "instances.csv").open() as fh:
        rows = [r for r in csv.reader(fh) if r and not r[0].startswith("#")]
    rows = rows[: args.limit] if args.limit else rows
    done = read_done(args.csv) if args.csv else set()
    log = open_log(args.csv) if args.csv else None
    models: dict[str, object] = {}
    tally: Counter[str] = Counter()
    deciders: Counter[str] = Counter()
    walls: list[float] = []
    for row in rows:
        onnx_rel, spec_rel, timeout = (row + ["", "", ""])[:3]
        if (onnx_rel, spec_rel) in done:
            continue
        t0, cpu0 = time.monotonic(), time.process_time()
        seconds = _number(timeout) * args.timeout_scale
        try:  # a bad row (a missing file, a header, a timeout that is no number) is an error row, not a stop
            if len(row) != 3:
                raise InputError(f"instances.csv row {row!r}: expected onnx,vnnlib,timeout")
            if onnx_rel not in models:
                models[onnx_rel] = load_model(str(bench / onnx_rel), check=False)
            if math.isnan(seconds):
                raise InputError(f"instances.csv row {row!r}: the timeout {timeout!r} is not a number")
            res = verify(models[onnx_rel], str(bench / spec_rel), timeout=seconds,
                         method=args.method, device=args.device, bab=args.bab, semantics=args.semantics)
        except InputError as e:
            res = Result("error", message=str(e))
        wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
        walls.append(wall)
        exp = expected.get((onnx_rel, spec_rel), "?")
        wrong = is_wrong(res.verdict, exp)
        tally["WRONG" if wrong else res.verdict] += 1
        if res.method:
            deciders[res.method] += 1
        if log is not None:
            log.writerow([onnx_rel, spec_rel, seconds, res.verdict, res.method or "",
                          exp, f"{wall:.3f}", int(wrong), res.message.replace("\n", " ")])
        flag = "  <-- WRONG" if wrong else ""
        msg = f" ({res.message})" if res.verdict == "error" else ""
        print(f"{onnx_rel:40s} {spec_rel:32s} {res.verdict:8s} {res.method or '-':6s} exp={exp:8s} "
              f"{wall:7.2f}s cpu {cpu:7.2f}s domains {(res.bab or {}).get('domains', 0):7d}{flag}{msg}", flush=True)
    print("-" * 100)
    counts = " ".join(f"{k}={tally[k]}" for k in ("unsat", "sat", "unknown", "timeout", "error", "WRONG"))
    print(f"instances={len(walls)} {counts}")
    print("decided by: " + (" ".join(f"{k}={v}" for k, v in sorted(deciders.items())) or "-"))
    if walls:
        print(f"wall: total {sum(walls):.1f}s median {statistics.median(walls):.3f}s")
    return 1 if tally["WRONG"] else 0


def _number(text: str) -> float:
    """A row's timeout as a number (nan when it is none)."""
    try:
        return float(text)
    except ValueError:
        return math.nan


if __name__ == "__main__":
    sys.exit(main())
