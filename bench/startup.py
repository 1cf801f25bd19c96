#!/usr/bin/env python3
"""Start-up figures: `verifier --version`, `import torch`, and time to first bound (cold and cached graph).

    python bench/startup.py [--repeat 3]

Each figure is the median wall time of fresh processes. "cold" uses an empty graph cache (onnx,
onnx2torch and the onnxruntime check run); "cached" reuses the converted graph.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, str(ROOT / "cli.py")]
BOUNDS = CLI + ["bounds", str(ROOT / "models" / "acasxu_1_1.onnx"), str(ROOT / "specs" / "acasxu_prop_1.vnnlib"),
                "--json"]


def wall(cmd: list[str], env: dict[str, str]) -> float:
    start = time.monotonic()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cache = tempfile.mkdtemp(prefix="verifier-startup-")
    env = dict(os.environ, VERIFIER_CACHE_DIR=cache)
    try:
        rows = {
            "verifier --version": [wall(CLI + ["--version"], env) for _ in range(args.repeat)],
            "python -c 'import torch'": [wall([sys.executable, "-c", "import torch"], env) for _ in range(args.repeat)],
        }
        cold = []
        for _ in range(args.repeat):
            shutil.rmtree(cache, ignore_errors=True)
            cold.append(wall(BOUNDS, env))
        rows["first bound, cold cache (acasxu_1_1)"] = cold
        rows["first bound, cached graph (acasxu_1_1)"] = [wall(BOUNDS, env) for _ in range(args.repeat)]
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    for name, times in rows.items():
        print(f"{name:42s} median {statistics.median(times):6.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times)})")


if __name__ == "__main__":
    main()
