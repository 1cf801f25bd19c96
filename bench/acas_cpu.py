#!/usr/bin/env python3
"""CPU seconds and boxes bounded per ACAS Xu instance, in one process (no start-up), for profiling.

    python bench/acas_cpu.py [--only 3_3:2,4_2:2] [--timeout 60] [--profile OUT.prof]

Wall time is noisy on a shared machine; `time.process_time()` and the boxes bounded (`bab.domains`) are not
(much). Prints one line per instance: verdict, CPU s, wall s, boxes, CPU ms per box.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from acas38 import acas38  # noqa: E402
from per_process import Row, resolve_bench  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default="acasxu")
    ap.add_argument("--only", default="", help="NET:PROP,... (e.g. 3_3:2, any network); default the 38")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--profile", default="", help="write a cProfile of the whole run here")
    ap.add_argument("--cpu-clock", action="store_true",
                    help="deadlines and time slices in CPU seconds (time.monotonic = time.process_time): "
                         "a quiet machine's behaviour on a loaded one")
    args = ap.parse_args()
    if args.cpu_clock:
        time.monotonic = time.process_time  # type: ignore[assignment]

    import torch

    from verifier.api import verify
    from verifier.runtime import keep_freed_memory

    torch.set_num_threads(1)
    keep_freed_memory()
    root = resolve_bench(args.bench)
    rows = acas38(args.timeout)
    if args.only:
        pairs = [p.split(":") for p in args.only.split(",")]
        rows = [Row(f"onnx/ACASXU_run2a_{net}_batch_2000.onnx", f"vnnlib/prop_{prop}.vnnlib", args.timeout)
                for net, prop in pairs]
    prof = None
    if args.profile:
        import cProfile

        prof = cProfile.Profile()
    total_cpu = 0.0
    for r in rows:
        c0, w0 = time.process_time(), time.monotonic()
        if prof is not None:
            prof.enable()
        res = verify(str(root / r.onnx), str(root / r.vnnlib), timeout=args.timeout, device="cpu")
        if prof is not None:
            prof.disable()
        cpu, wall = time.process_time() - c0, time.monotonic() - w0
        total_cpu += cpu
        boxes = (res.bab or {}).get("domains", 0)
        name = Path(r.onnx).stem.replace("ACASXU_run2a_", "").replace("_batch_2000", "") + " " + Path(r.vnnlib).stem
        print(f"{name:16s} {res.verdict:8s} cpu {cpu:6.2f} s  wall {wall:6.2f} s  boxes {boxes:8d}  "
              f"{1000 * cpu / max(boxes, 1):.3f} ms/box", flush=True)
    print(f"total cpu {total_cpu:.1f} s over {len(rows)}")
    if prof is not None:
        prof.dump_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
