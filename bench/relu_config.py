#!/usr/bin/env python3
"""ReLU-split branch and bound alone, under ReluSplitConfig overrides: one search per clause of one instance's
first property, in turn (as `verify` runs them), with its verdict, seconds and domains; no attack before it and
no other stage. Compares settings on the same instance without the rest of the flow's time in the figures.

    python bench/relu_config.py mnist_fc onnx/mnist-net_256x4.onnx vnnlib/prop_3_0.05.vnnlib fsb_candidates=16
        [--seconds 300] [--total 300] [--clauses 0,3] [--profile] [--dtype float64] [--progress 10]

--total: the whole run's budget; it stops at the first clause not proved (as `verify` does).
"""
from __future__ import annotations

import ast
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from per_process import instance_parser, load_instance  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = instance_parser(__doc__)
    ap.add_argument("set", nargs="*", help="NAME=VALUE overrides of ReluSplitConfig fields")
    ap.add_argument("--seconds", type=float, default=60.0, help="per clause")
    ap.add_argument("--total", type=float, default=None, help="for the whole run; stops at the first clause not proved")
    ap.add_argument("--clauses", default=None, help="comma-separated clause indices (default: all)")
    ap.add_argument("--profile", action="store_true", help="print cProfile's top functions by cumulative time")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"], help="of the search's tensors")
    ap.add_argument("--progress", type=float, default=None, metavar="S",
                    help="every S seconds: domains bounded, open, and the worst open bound")
    args = ap.parse_intermixed_args(argv)

    import numpy as np
    import torch

    from verifier.bab.relu_split import ReluSplitConfig, RootBounds, relu_split_bab

    graph, prop = load_instance(args)
    dtype = getattr(torch, args.dtype)
    xl, xu = torch.tensor(prop.lower, dtype=dtype), torch.tensor(prop.upper, dtype=dtype)
    fields = {f.name: f for f in dataclasses.fields(ReluSplitConfig)}
    overrides = {}
    for item in args.set:
        name, _, value = item.partition("=")
        if name not in fields:
            ap.error(f"ReluSplitConfig has no field {name!r}")
        overrides[name] = ast.literal_eval(value)
    config = ReluSplitConfig(**overrides)
    began = time.monotonic()
    root = RootBounds(graph, xl, xu, began + 600, config)
    which = range(len(prop.clauses)) if args.clauses is None else [int(c) for c in args.clauses.split(",")]
    profile = None
    if args.profile:
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    domains, verdicts = 0, []
    for j in which:
        seconds = args.seconds if args.total is None else min(args.seconds, args.total - (time.monotonic() - began))
        if seconds <= 0:
            break
        C = torch.from_numpy(np.asarray(prop.clauses[j].C)).to(dtype)
        d = torch.from_numpy(np.asarray(prop.clauses[j].d)).to(dtype)
        t0 = time.monotonic()
        res = relu_split_bab(graph, xl, xu, C, d, t0 + seconds, lambda x: False, config, root=root,
                             tick=None if args.progress is None else _ticker(args.progress, t0))
        domains += res.domains
        verdicts.append(res.verdict)
        print(f"clause {j}: {res.verdict} {time.monotonic() - t0:.1f} s, {res.domains} domains, "
              f"margin {res.margin:.4f}", flush=True)
        if args.total is not None and res.verdict != "unsat":
            break
    if profile is not None:
        import pstats

        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
    settings = " ".join(args.set) or "defaults"
    print(f"{args.onnx} {args.vnnlib} [{settings}]: {time.monotonic() - began:.1f} s, {domains} domains, "
          f"{verdicts.count('unsat')}/{len(verdicts)} clauses proved")
    return 0


def _ticker(every: float, t0: float):
    """A tick that prints the search's state at most every `every` seconds (how fast the worst bound rises)."""
    last = [t0]

    def tick(bounded: int, open_: int, worst: float) -> None:
        now = time.monotonic()
        if now - last[0] >= every:
            last[0] = now
            print(f"  {now - t0:6.1f} s: {bounded} bounded, {open_} open, worst open bound {worst:.4f}", flush=True)

    return tick


if __name__ == "__main__":
    sys.exit(main())
