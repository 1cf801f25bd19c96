#!/usr/bin/env python3
"""Time benchmark instances end to end: one `verifier verify` process per instance, start-up included.

    python bench/per_process.py mnist_fc --limit 20 --device cuda --out mnist.csv

`bench/run.py` loads each model once in one process and so hides start-up (importing torch, loading the
graph); this runner measures what a user waits for, process start to verdict. It runs `cli.py verify --json`
with this interpreter, so the checkout's code is what gets timed. Per instance it prints the verdict, the
deciding stage and the wall time, and writes a CSV row as soon as the instance ends (a killed run keeps
what it finished); then decided / wrong (against expected.csv) / total / median, and domains/s per engine
where the JSON reports a domain count.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import DEFAULT_ROOT, is_wrong, read_expected  # noqa: E402  (bench/run.py, same folder)

REPO = Path(__file__).resolve().parents[1]
CSV_FIELDS = ("onnx", "vnnlib", "timeout", "verdict", "method", "expected", "wrong", "wall", "engine_time",
              "domains", "engine", "exit_code", "message")


@dataclass(frozen=True)
class Row:
    """One instance: paths relative to the benchmark folder and the cap in seconds."""

    onnx: str
    vnnlib: str
    timeout: float


def resolve_bench(name: str) -> Path:
    """A benchmark folder given as a path or as a name under ../shared/benchmarks."""
    path = Path(name)
    return path if path.exists() else DEFAULT_ROOT / name


def instance_parser(doc: str | None) -> argparse.ArgumentParser:
    """The arguments of a script about one instance: its benchmark (a name or a folder), then its onnx and
    vnnlib files relative to that folder."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench")
    ap.add_argument("onnx", help="relative to the benchmark folder")
    ap.add_argument("vnnlib", help="relative to the benchmark folder")
    return ap


def load_instance(args: argparse.Namespace) -> tuple[Any, Any]:
    """The instance's graph (not checked against onnxruntime) and its spec's first property, on one thread."""
    from verifier.model.loader import load_model
    from verifier.runtime import tune_process
    from verifier.spec.vnnlib import load_spec

    tune_process(1)
    bench = resolve_bench(args.bench)
    return load_model(str(bench / args.onnx), check=False).graph, load_spec(str(bench / args.vnnlib)).properties[0]


def read_rows(bench: Path) -> list[Row]:
    with (bench / "instances.csv").open() as fh:
        return [Row(r[0], r[1], float(r[2])) for r in csv.reader(fh) if r and not r[0].startswith("#")]


def domain_count(doc: dict[str, Any]) -> int | None:
    """Domains bounded, wherever the result JSON carries it (it may not: then domains/s is not printed)."""
    for holder in (doc, doc.get("stats") or {}, doc.get("bab") or {}):
        if isinstance(holder, dict) and isinstance(holder.get("domains"), (int, float)):
            return int(holder["domains"])
    return None


def engine_name(doc: dict[str, Any], default: str) -> str:
    """The branch-and-bound engine that ran: the JSON's own name for it if any, else the benchmark's default."""
    for holder in (doc, doc.get("stats") or {}, doc.get("bab") or {}):
        if isinstance(holder, dict) and isinstance(holder.get("engine"), str):
            return holder["engine"]
    return default


def run_one(bench: Path, row: Row, cap: float, device: str, threads: int, extra: Sequence[str]) -> dict[str, Any]:
    """Runs one `verify` process; the record has the verdict, wall time and what the JSON reported."""
    cmd = [sys.executable, str(REPO / "cli.py"), "verify", str(bench / row.onnx), str(bench / row.vnnlib),
           "--timeout", f"{cap:g}", "--json", "--device", device, "--threads", str(threads), *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(threads)}
    t0 = time.monotonic()
    try:  # a generous hard limit: the verifier respects --timeout itself, this only guards against a hang
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=cap + 60)
    except subprocess.TimeoutExpired:
        return {"verdict": "timeout", "wall": time.monotonic() - t0, "exit_code": 124, "message": "killed"}
    wall = time.monotonic() - t0
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        tail = (proc.stderr.strip().splitlines() or [""])[-1]
        return {"verdict": "error", "wall": wall, "exit_code": proc.returncode, "message": tail[:200]}
    return {"verdict": doc.get("verdict", "error"), "method": doc.get("method") or "", "wall": wall,
            "engine_time": (doc.get("times") or {}).get("total", ""), "domains": domain_count(doc),
            "doc": doc, "exit_code": proc.returncode, "message": doc.get("message", "")[:200]}


def pick(rows: Sequence[Row], limit: int | None, spread: bool) -> list[Row]:
    """The first `limit` rows, or with `spread` `limit` rows evenly spaced over all of them (every network)."""
    if not limit or limit >= len(rows):
        return list(rows)
    if not spread:
        return list(rows[:limit])
    return [rows[(i * len(rows)) // limit] for i in range(limit)]


def byte_compile() -> None:
    """Write the checkout's bytecode (`__pycache__`) before timing, as `pip install` does for a package.
    Without it, where PYTHONDONTWRITEBYTECODE is set (as on our build machines) every process compiles
    the ~50 modules it imports, ~0.1-0.3 s of each start that no installed copy pays. Python reads the
    bytecode whatever that variable says, and recompiles any file that changed."""
    import compileall

    compileall.compile_dir(str(REPO / "verifier"), quiet=1)
    compileall.compile_file(str(REPO / "cli.py"), quiet=1)


def run_rows(bench: Path, rows: Iterable[Row], *, out: Path | None, timeout: float | None, scale: float,
             device: str, threads: int, engine: str, budget: float | None = None,
             extra: Sequence[str] = ()) -> int:
    """Runs the rows one process each, prints and records them, then the totals; 1 if any verdict was wrong.

    `budget` (seconds) bounds the whole run: each cap is cut to what is left of it, and no instance starts
    once it is spent (the ones not run are counted as skipped), so a device script keeps to its slot."""
    rows = list(rows)
    byte_compile()
    start = time.monotonic()
    skipped = 0
    expected = read_expected(bench)
    walls: list[float] = []
    decided = wrong = 0
    per_engine: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])  # engine -> [domains, bab seconds]
    fh = out.open("w", newline="") if out else None
    writer = csv.DictWriter(fh, CSV_FIELDS) if fh else None
    if writer:
        writer.writeheader()
        fh.flush()
    try:
        for row in rows:
            cap = (timeout if timeout is not None else row.timeout) * scale
            if budget is not None:
                left = budget - (time.monotonic() - start)
                if left < 1.0:
                    skipped += 1
                    continue
                cap = min(cap, left)
            rec = run_one(bench, row, cap, device, threads, extra)
            exp = expected.get((row.onnx, row.vnnlib), "?")
            bad = is_wrong(rec["verdict"], exp)
            walls.append(rec["wall"])
            decided += rec["verdict"] in ("sat", "unsat")
            wrong += bad
            doc = rec.pop("doc", {}) or {}
            eng = engine_name(doc, engine) if rec.get("method") == "bab" else ""
            if eng and rec.get("domains"):
                per_engine[eng][0] += rec["domains"]
                per_engine[eng][1] += float((doc.get("times") or {}).get("bab", 0.0))
            print(f"{row.onnx:40s} {row.vnnlib:36s} {rec['verdict']:8s} {rec.get('method') or '-':6s} "
                  f"exp={exp:6s} {rec['wall']:7.2f}s{'  <-- WRONG' if bad else ''}"
                  f"{' (' + rec['message'] + ')' if rec['verdict'] == 'error' else ''}", flush=True)
            if writer:
                writer.writerow({"onnx": row.onnx, "vnnlib": row.vnnlib, "timeout": f"{cap:g}", "expected": exp,
                                 "wrong": int(bad), "engine": eng, **{k: v for k, v in rec.items() if v is not None},
                                 "wall": f"{rec['wall']:.3f}"})
                fh.flush()
    finally:
        if fh:
            fh.close()
    print("-" * 100)
    total = sum(walls)
    median = statistics.median(walls) if walls else 0.0
    print(f"decided {decided} / {len(walls)}   wrong {wrong}   total {total:.1f}s   median {median:.2f}s"
          + (f"   ({skipped} not run: budget spent)" if skipped else ""))
    for eng, (domains, seconds) in sorted(per_engine.items()):
        rate = f"{domains / seconds:.0f} domains/s" if seconds > 0 else "n/a"
        print(f"  {eng}: {int(domains)} domains in {seconds:.1f}s of branch and bound: {rate}")
    if not per_engine:
        print("  domains/s: not reported (the result JSON carries no domain count)")
    return 1 if wrong else 0


def add_common_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--out", type=Path, default=None, help="CSV file, one row written as each instance ends")
    ap.add_argument("--limit", type=int, default=None, help="run only the first N instances")
    ap.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--timeout-scale", type=float, default=1.0, help="multiply each instance's cap")
    ap.add_argument("--budget", type=float, default=None, help="seconds for the whole run (caps cut to fit)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench", help=f"benchmark folder or name under {DEFAULT_ROOT}")
    ap.add_argument("--timeout", type=float, default=None, help="cap per instance (default: instances.csv's)")
    ap.add_argument("--engine", default="bab", help="name for branch and bound in the domains/s line")
    ap.add_argument("--spread", action="store_true", help="with --limit N: N instances evenly spaced, not the first")
    add_common_args(ap)
    args = ap.parse_args(argv)
    bench = resolve_bench(args.bench)
    rows = pick(read_rows(bench), args.limit, args.spread)
    return run_rows(bench, rows, out=args.out, timeout=args.timeout, scale=args.timeout_scale,
                    device=args.device, threads=args.threads, engine=args.engine, budget=args.budget)


if __name__ == "__main__":
    sys.exit(main())
