#!/usr/bin/env python3
"""Certificate overhead on a VNN-COMP benchmark folder (issue 13).

    python bench/certificates.py acasxu [--limit N] [--every K] [--timeout-scale 1] [--only-unsat]
    python bench/certificates.py mnist_fc --model 256x2 --only-unsat

Per instance: the verify run without a certificate (wall time), the same run writing one (wall time,
time to write, size, leaves), and the independent checker on it (time, and whether it says valid).
Totals at the end. Each model is loaded once (as a batch run would); the checker reads the ONNX file
itself each time (its own reader), and its time includes that. Times are wall seconds and, in
brackets, CPU seconds of this process (time.process_time: steadier on a shared machine); "write" is
the result's times["certificate"] (pre-activation slopes, pruning and writing, not the recording).
"""
from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench", help=f"benchmark folder or name under {DEFAULT_ROOT}")
    ap.add_argument("--timeout-scale", type=float, default=1.0, help="multiply each instance's timeout")
    ap.add_argument("--limit", type=int, default=None, help="only the first N instances (after --every)")
    ap.add_argument("--every", type=int, default=1, help="every K-th instance (a spread-out subset)")
    ap.add_argument("--only-unsat", action="store_true", help="only instances expected.csv says are unsat")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", default=None, help="only instances whose onnx path contains this")
    args = ap.parse_args(argv)

    bench = Path(args.bench)
    if not bench.exists():
        bench = DEFAULT_ROOT / args.bench
    from verifier.api import verify
    from verifier.certificate.checker import check_certificate
    from verifier.model.loader import load_model
    from verifier.runtime import tune_process

    tune_process(args.threads)
    expected = {}
    if (bench / "expected.csv").exists():
        with (bench / "expected.csv").open() as fh:
            expected = {(r["onnx"], r["vnnlib"]): r["expected"] for r in csv.DictReader(fh)}
    with (bench / "instances.csv").open() as fh:
        rows = [r for r in csv.reader(fh) if r and not r[0].startswith("#")]
    if args.model:
        rows = [r for r in rows if args.model in r[0]]
    if args.only_unsat:
        rows = [r for r in rows if expected.get((r[0], r[1])) == "unsat"]
    rows = rows[:: args.every]
    rows = rows[: args.limit] if args.limit else rows
    models: dict[str, object] = {}
    tally: Counter[str] = Counter()
    plain, certified, writes, checks, sizes, leaves = [], [], [], [], [], []
    cpu_plain, cpu_cert, cpu_check = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for n, (onnx_rel, spec_rel, timeout) in enumerate(rows):
            if onnx_rel not in models:
                models[onnx_rel] = load_model(str(bench / onnx_rel), check=False)
            spec = str(bench / spec_rel)
            budget = float(timeout) * args.timeout_scale
            t0, c0 = time.monotonic(), time.process_time()
            base = verify(models[onnx_rel], spec, timeout=budget, device="cpu")
            t_plain, c_plain = time.monotonic() - t0, time.process_time() - c0
            cert = str(Path(tmp) / f"{n}.npz")
            t0, c0 = time.monotonic(), time.process_time()
            res = verify(models[onnx_rel], spec, timeout=budget, device="cpu", certificate=cert)
            t_cert, c_cert = time.monotonic() - t0, time.process_time() - c0
            info = res.certificate or {}
            line = f"{onnx_rel:40s} {spec_rel:24s} {base.verdict:7s} {t_plain:7.2f}s [{c_plain:6.2f}] | " \
                f"{res.verdict:7s} {t_cert:7.2f}s [{c_cert:6.2f}]"
            if res.verdict != "unsat" or not info.get("path"):
                tally["no certificate" if res.verdict == "unsat" else f"not unsat ({res.verdict})"] += 1
                print(f"{line}  {info.get('message', '')}", flush=True)
                continue
            t0, c0 = time.monotonic(), time.process_time()
            outcome = check_certificate(str(bench / onnx_rel), spec, cert)
            t_check, c_check = time.monotonic() - t0, time.process_time() - c0
            cpu_plain.append(c_plain)
            cpu_cert.append(c_cert)
            cpu_check.append(c_check)
            info = {**info, "write_seconds": (res.times or {}).get("certificate", info["write_seconds"])}
            tally["valid" if outcome.valid else "invalid"] += 1
            plain.append(t_plain)
            certified.append(t_cert)
            writes.append(info["write_seconds"])
            checks.append(t_check)
            sizes.append(info["bytes"])
            leaves.append(info["leaves"])
            print(f"{line}  leaves {info['leaves']:7d} {info['bytes'] / 1024:9.1f} KiB write {info['write_seconds']:6.3f}s "
                  f"check {t_check:7.2f}s [{c_check:6.2f}] {outcome.message}", flush=True)
    print("-" * 100)
    print(f"instances={len(rows)} " + " ".join(f"{k}={v}" for k, v in sorted(tally.items())))
    if plain:
        print(f"certified unsat: {len(plain)}; leaves total {sum(leaves)} (max {max(leaves)}, median "
              f"{statistics.median(leaves):.0f}); size total {sum(sizes) / 1024:.1f} KiB (max {max(sizes) / 1024:.1f}, "
              f"median {statistics.median(sizes) / 1024:.1f})")
        print(f"verify without certificate {sum(plain):.1f}s, with {sum(certified):.1f}s (writing {sum(writes):.2f}s); "
              f"check {sum(checks):.1f}s (median {statistics.median(checks):.2f}s, max {max(checks):.2f}s)")
        print(f"CPU seconds: verify without certificate {sum(cpu_plain):.1f}, with {sum(cpu_cert):.1f}; "
              f"check {sum(cpu_check):.1f}")
    return 1 if tally["invalid"] else 0


if __name__ == "__main__":
    sys.exit(main())
