"""The branch-and-bound stage of the cascade over an L1 / L2 ball: ReLU-split BaB (alpha/beta-CROWN) on
ball ∩ box, one margin row at a time.

Input splitting bisects boxes, so over a ball only ReLU splitting runs (whatever the input size). The
region is the one the bound stages used: the float32 box (the ball's bounding box ∩ clip, rounded
outwards) intersected with the float32 ball (grown to contain the exact one); the search concretises
every linear bound over both (`verifier.bab.region`). A counterexample is accepted only when it is a
float32 point of the exact float64 ball ∩ box whose margin is <= 0 on onnxruntime, as in the PGD stage.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch

from verifier.bounds.ball import LpBall

Tensor = torch.Tensor


@dataclass(frozen=True)
class BallSample:
    """One sample's region: the float32 box (n,) and ball (batch 1), and the exact float64 ones."""

    lower: Tensor
    upper: Tensor
    ball: LpBall
    centre: np.ndarray  # the raw sample (n,), float64
    eps: float
    lo64: np.ndarray
    hi64: np.ndarray


@dataclass
class BallBabOutcome:
    verdict: str  # verified / falsified / unknown / timeout
    rows: dict[int, float] = field(default_factory=dict)  # row -> proved lower bound of its margin
    margin_ub: Optional[float] = None  # the onnxruntime margin of the counterexample, when falsified
    domains: int = 0


def ball_bab_sample(net: Any, region: BallSample, label: int, C: Tensor, rows_lb: np.ndarray, timeout: float,
                    seed: int) -> BallBabOutcome:
    """Search every row of C (k, m) whose bound so far (rows_lb) is not positive, worst first, until one
    is not proved (the sample is then not verified) or all are (verified)."""
    from verifier.attack.replay import snap_into_box
    from verifier.bab.relu_split import ReluSplitConfig, RootBounds, relu_split_bab
    from verifier.certify.network import into_ball

    deadline = time.monotonic() + max(timeout, 1e-3)
    config = ReluSplitConfig(seed=seed)
    out = BallBabOutcome("verified")
    found: list[float] = []

    def accept(x: Tensor) -> bool:
        x32 = snap_into_box(x.detach().cpu().double().numpy(), region.lo64, region.hi64).astype(np.float64)
        point = into_ball(x32, region.centre, region.eps, region.ball.p, region.lo64, region.hi64)
        if point is None or np.any(point < region.lo64) or np.any(point > region.hi64):
            return False
        y = net.runner(point)
        others = np.delete(y, label)
        margin = float(y[label] - others.max())
        if margin <= 0:
            found.append(margin)
        return margin <= 0

    root = RootBounds(net.graph, region.lower, region.upper, deadline, config, region.ball)
    for j in np.argsort(rows_lb, kind="stable"):
        if rows_lb[j] > 0:
            continue
        res = relu_split_bab(net.graph, region.lower, region.upper, C[j:j + 1], torch.zeros_like(C[j:j + 1, 0]),
                             deadline, accept, config, root=root, ball=region.ball)
        out.domains += res.domains
        if res.verdict == "unsat":
            out.rows[int(j)] = res.margin
            continue
        if res.verdict == "sat":
            return BallBabOutcome("falsified", out.rows, min(found) if found else None, out.domains)
        out.verdict = "timeout" if res.verdict == "timeout" or time.monotonic() > deadline else "unknown"
        if math.isfinite(res.margin):
            out.rows[int(j)] = min(res.margin, 0.0)  # the worst open bound: still a lower bound of this row
        return out
    return out
