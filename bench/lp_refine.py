#!/usr/bin/env python3
"""What LP refinement of the intermediate bounds buys on one instance (issue 16): unstable neurons per
layer and the root's objective bound (CROWN and alpha-CROWN with those intermediate bounds) before and
after `verifier.bounds.lp_refine.refine_bounds`, and its time.

    python bench/lp_refine.py mnist_fc onnx/mnist-net_256x4.onnx vnnlib/prop_2_0.05.vnnlib --seconds 60

The "before" bounds are the ones ReLU-split branch and bound starts from (`layer_bounds` with 20
alpha-CROWN steps per layer, as `RootBounds`). Needs highspy (`pip install 'verifier[milp]'`).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from per_process import instance_parser, load_instance  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = instance_parser(__doc__)
    ap.add_argument("--seconds", type=float, default=60.0, help="LP time budget")
    ap.add_argument("--layers", type=int, default=None, help="refine this many layers from the second")
    ap.add_argument("--alpha-steps", type=int, default=20, help="alpha-CROWN steps per layer for 'before'")
    ap.add_argument("--milp-layers", type=int, default=0, help="refine the first this many layers by MILP")
    ap.add_argument("--milp-seconds", type=float, default=5.0, help="per MILP solve")
    ap.add_argument("--max-neurons", type=int, default=None, help="per layer, the most unstable first")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from verifier.bounds.alpha import AlphaConfig, alpha_crown
    from verifier.bounds.crown import crown, relaxed_inputs
    from verifier.bounds.layerwise import layer_bounds
    from verifier.bounds.lp_refine import LpRefineConfig, refine_bounds_report

    graph, prop = load_instance(args)
    xl = torch.tensor(prop.lower, dtype=torch.float32).reshape(1, -1)
    xu = torch.tensor(prop.upper, dtype=torch.float32).reshape(1, -1)
    # every clause's rows stacked; a clause is proved when one of its rows has lb > 0, the property when all are
    C = torch.from_numpy(np.concatenate([c.C for c in prop.clauses])).float()
    d = torch.from_numpy(np.concatenate([c.d for c in prop.clauses])).float()
    clause_of = [i for i, c in enumerate(prop.clauses) for _ in range(len(c.d))]
    layers = list(relaxed_inputs(graph))

    t0 = time.monotonic()
    boxes = layer_bounds(graph, xl, xu, layers, None, -1, None,
                         optimise=(args.alpha_steps, 0.1, time.monotonic() + 600) if args.alpha_steps else None)
    t_before = time.monotonic() - t0

    def margin(lb: torch.Tensor) -> float:
        """min over clauses of max over the clause's rows: > 0 proves the property."""
        best = [-float("inf")] * len(prop.clauses)
        for row, clause in enumerate(clause_of):
            best[clause] = max(best[clause], float(lb[0, row]))
        return min(best)

    def root(boxes: dict) -> str:
        with torch.no_grad():
            lb_crown = crown(graph, xl, xu, C, intermediate=boxes, need_upper=False).lb + d
        lb_alpha = alpha_crown(graph, xl, xu, C, intermediate=boxes, config=AlphaConfig(iterations=50)).lb + d
        return (f"margin lower bound: CROWN {margin(lb_crown):+.4f}  alpha-CROWN {margin(lb_alpha):+.4f}"
                f"  (> 0 proves the property)")

    def unstable(boxes: dict) -> str:
        return " ".join(f"{int(((l < 0) & (u > 0)).sum())}" for l, u in boxes.values())

    print(f"{args.onnx} {args.vnnlib}: {len(layers)} relu layers", flush=True)
    print(f"before ({t_before:.1f}s, layer_bounds with {args.alpha_steps} alpha steps): unstable per layer "
          f"{unstable(boxes)}\n  root: {root(boxes)}")
    t0 = time.monotonic()
    refined, report = refine_bounds_report(graph, xl, xu, boxes, time.monotonic() + args.seconds,
                                           LpRefineConfig(max_layers=args.layers, max_neurons=args.max_neurons,
                                                          milp_layers=args.milp_layers,
                                                          milp_seconds=args.milp_seconds))
    t_lp = time.monotonic() - t0
    for r in report.layers:
        print(f"  {r.name}: unstable {r.unstable_before} -> {r.unstable_after}, {r.solved} LPs, {r.seconds:.1f}s")
    width = sum(float((u - l).sum()) for l, u in boxes.values())
    width_after = sum(float((u - l).sum()) for l, u in refined.values())
    print(f"after ({t_lp:.1f}s LP{'' if report.complete else ', budget spent'}): unstable per layer "
          f"{unstable(refined)}; total width {width:.1f} -> {width_after:.1f}\n  root: {root(refined)}")
    last = max((layers.index(r.name) for r in report.layers), default=-1)
    if 0 <= last < len(layers) - 1:  # the layers after the last refined one, re-derived from the refined boxes
        t0 = time.monotonic()
        rederived = layer_bounds(graph, xl, xu, layers, refined, last, None,
                                 optimise=(args.alpha_steps, 0.1, time.monotonic() + 600) if args.alpha_steps else None)
        print(f"after, layers past {layers[last]} re-derived ({time.monotonic() - t0:.1f}s): unstable per layer "
              f"{unstable(rederived)}\n  root: {root(rederived)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
