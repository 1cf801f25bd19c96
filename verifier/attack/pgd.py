"""Spec-aware PGD: look for an input in the box that makes some clause of the violation hold.

The objective of a clause is max_i (C_i·y + d_i); a point with objective <= 0 meets every row,
i.e. is a candidate counterexample (to be replayed on onnxruntime before anyone believes it).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from verifier.config import AttackConfig  # noqa: F401 - re-exported: the attack's own settings
from verifier.model.graph import Graph


@dataclass(frozen=True)
class Candidate:
    x: torch.Tensor  # (n_inputs,) flattened, inside the box
    objective: float  # max_i (C_i y + d_i) on our graph; <= 0 means the clause holds
    clause_index: int


def clause_objective(y: torch.Tensor, C: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """max over rows of C·y + d per sample; y (B, m), C (B, k, m), d (B, k) -> (B,). k == 0 gives -inf."""
    if C.shape[1] == 0:
        return torch.full((y.shape[0],), -math.inf, dtype=y.dtype, device=y.device)
    return (torch.einsum("bkm,bm->bk", C, y) + d).amax(dim=1)


def _hinge_loss(y: torch.Tensor, C: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Sum over rows of max(C_i·y + d_i, 0), C (k, m) shared by the batch: for a conjunction it pushes
    every violated row down at once, where the max objective's gradient follows one row and stalls
    where rows tie."""
    return torch.relu(y @ C.T + d).sum(dim=1)


def pgd_attack(
    graph: Graph,
    lower: torch.Tensor,
    upper: torch.Tensor,
    clauses: list[tuple[torch.Tensor, torch.Tensor]],
    config: AttackConfig = AttackConfig(),
    deadline: float | None = None,
) -> list[Candidate]:
    """Minimise the clauses' objectives from `restarts` starts (the centre among them), in one batch.

    The batch stays `restarts` points however many clauses there are (a robustness spec has one per
    other class): the first half of the starts each chase one clause, round robin, the others chase
    whichever clause is closest to holding (a disjunction needs only one); see `_targets`. Every
    point is scored on every clause. Returns, per clause, the best point found, sorted by objective (most violating first).
    """
    if not clauses:
        return []
    gen = torch.Generator(device="cpu").manual_seed(config.seed)
    n, plain, m = lower.numel(), max(1, config.restarts), len(clauses)
    r = plain + config.homotopy_restarts
    lo, hi = lower.reshape(1, n), upper.reshape(1, n)
    starts = torch.rand((r, n), generator=gen, dtype=lower.dtype).to(lower.device)
    targets, centred = _targets(plain, m, lower.device)  # (r, m): which clauses each start chases
    if config.homotopy_restarts:
        extra_targets, extra_centred = _targets(config.homotopy_restarts, m, lower.device)
        targets, centred = torch.cat([targets, extra_targets]), torch.cat([centred, extra_centred])
    starts[centred] = 0.5
    x = lo + starts * (hi - lo)
    leaky = torch.arange(r, device=lower.device) >= plain  # the homotopy starts
    clauses = [(c.to(lower), dd.to(lower)) for c, dd in clauses]
    best_x = x[0].expand(m, n).clone()  # (m, n)
    best_obj = torch.full((m,), math.inf, dtype=x.dtype, device=x.device)

    def objectives(y: torch.Tensor) -> torch.Tensor:
        return torch.stack([clause_objective(y, C.expand(r, -1, -1), d.expand(r, -1)) for C, d in clauses], dim=1)

    def step_loss(x: torch.Tensor, step: int) -> torch.Tensor | None:
        leak = homotopy_leak(step, config.steps, end=0.3)
        if config.homotopy_restarts and leak > 0:
            y = leaky_forward(graph, x, torch.where(leaky, leak, 0.0).to(x.dtype)).reshape(r, -1)
            with torch.no_grad():  # points are judged on the real network
                _keep_best(best_x, best_obj, x.detach(), objectives(graph.forward(x.detach()).reshape(r, -1)))
            objs = objectives(y)
        else:
            y = graph.forward(x).reshape(r, -1)
            objs = objectives(y)
            _keep_best(best_x, best_obj, x.detach(), objs.detach())
        if deadline is not None and time.monotonic() > deadline:
            return None
        if bool((best_obj <= 0).any()) and step > 0:
            return None  # a candidate exists; replay decides whether it is real
        losses = torch.stack([_hinge_loss(y, C, d) if C.shape[0] > 1 else objs[:, j]
                              for j, (C, d) in enumerate(clauses)], dim=1)
        return torch.where(targets, losses, torch.full_like(losses, math.inf)).amin(dim=1)

    sign_descent(x, lo, hi, config.steps, 1e-4, step_loss)  # steps from 0.1 to 1e-5 of the width
    out = [Candidate(x=best_x[j], objective=float(best_obj[j]), clause_index=j) for j in range(m)]
    return sorted(out, key=lambda c: c.objective)


def homotopy_leak(step: int, steps: int, end: float = 0.8) -> float:
    """The relus' leak at `step` of a homotopy descent: 1 (affine net) falling linearly to 0 (the real
    net) at `end` of the steps. The leak must be gone while steps are still large: with a cosine step
    schedule 0.8, with the geometric one of `sign_descent` (a tenth of the step by 25% of the way) 0.3."""
    return max(0.0, 1.0 - step / max(1.0, end * steps))


def leaky_forward(graph: Graph, x: torch.Tensor, leak: torch.Tensor, keep: bool = False,
                  ) -> torch.Tensor | dict[str, torch.Tensor]:
    """The graph on x (B, *input_shape) with every relu replaced by max(z, 0) + leak_b min(z, 0), one
    leak per point (B,) (0: the real network)."""
    from verifier.bounds.ops import OPS

    values: dict[str, torch.Tensor] = {}
    for node in graph.nodes:
        if node.op == "input":
            values[node.name] = x.reshape((x.shape[0],) + node.shape)
        elif node.op == "relu":
            z = values[node.inputs[0]]
            values[node.name] = torch.relu(z) + leak.reshape((-1,) + (1,) * (z.dim() - 1)) * z.clamp(max=0)
        else:
            values[node.name] = OPS[node.op].forward(node, *[values[i] for i in node.inputs])
    return values if keep else values[graph.output_name]


def sign_descent(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, steps: int, final_rate: float,
                 step_loss: Callable[[torch.Tensor, int], Optional[torch.Tensor]]) -> None:
    """Projected signed-gradient descent in the box [lo, hi] from the points x (one per row).

    At each step `step_loss(x, step)` scores the points (recording whatever its caller keeps) and returns
    a loss per point to descend, or None to stop. Steps move each coordinate by 0.1 of the box's width,
    shrinking geometrically to final_rate x 0.1 at the last step; the points after the last step are
    scored too.
    """
    width = hi - lo

    def move(x: torch.Tensor, grad: torch.Tensor, step: int) -> torch.Tensor:
        rate = 0.1 * (final_rate ** (step / max(1, steps - 1)))
        return torch.minimum(torch.maximum(x - rate * width * grad.sign(), lo), hi)

    descend(x, steps, step_loss, move)


def descend(x: torch.Tensor, steps: int, step_loss: Callable[[torch.Tensor, int], Optional[torch.Tensor]],
            move: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]) -> None:
    """The loop of projected gradient descent: score x with `step_loss(x, step)` (None stops), then
    x = move(x, gradient of the summed loss, step); the points after the last step are scored too."""
    for step in range(steps + 1):
        x = x.detach().requires_grad_(True)
        loss = step_loss(x, step)
        if loss is None or step == steps:
            return
        (grad,) = torch.autograd.grad(loss.sum(), x) if loss.requires_grad else (torch.zeros_like(x),)
        x = move(x.detach(), grad, step)


def _targets(r: int, m: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(r, m) mask of the clauses each start chases, and the starts placed at the box's centre.

    Starts 0 .. r//2 - 1 (at least one) chase clause i % m alone, the rest chase all clauses. The
    first start of each clause and the first joint start begin at the centre, which sign-gradient
    steps with a shrinking rate search well from; the others begin at random points.
    """
    targets = torch.ones((r, m), dtype=torch.bool, device=device)
    centred = torch.zeros(r, dtype=torch.bool, device=device)
    centred[0] = True
    if m > 1:
        single = max(1, r // 2)
        targets[:single] = False
        rows = torch.arange(single, device=device)
        targets[rows, rows % m] = True
        centred[: min(single, m)] = True
        if single < r:
            centred[single] = True
    return targets, centred


def _keep_best(best_x: torch.Tensor, best_obj: torch.Tensor, x: torch.Tensor, objs: torch.Tensor) -> None:
    """Per clause, keep the point with the smallest objective seen so far (in place)."""
    obj, idx = objs.min(dim=0)  # (m,)
    improved = obj < best_obj
    best_obj.copy_(torch.where(improved, obj, best_obj))
    best_x.copy_(torch.where(improved.unsqueeze(1), x[idx], best_x))


def box_descent(graph: Graph, x: torch.Tensor, xl: torch.Tensor, xu: torch.Tensor, C: torch.Tensor, d: torch.Tensor,
                steps: int, penalty: Optional[tuple[dict[str, torch.Tensor], float]] = None,
                homotopy: bool = False,
                move: Optional[Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]] = None) -> torch.Tensor:
    """A few projected sign-gradient steps on the clause max_i (C_i·f(x) + d_i) from x (M, n), in the box
    [xl, xu] ((1, n), or (M, n): one box per start); the best point per start (by the clause on the real
    network: any violating point will do). Steps follow a cosine schedule from 0.1 of the box's width.

    penalty = (signs, weight): signs per relu input node (M, *shape) as ReLU split's domains hold them (+1
    active, -1 inactive, 0 free); the steps then descend objective + weight * sum_j relu(-s_j z_j(x)), the
    violation of start i's decisions. With a penalty or homotopy the step shrinks to 1e-5 of the box (not
    1e-3): a region fenced in by decisions can be narrow, and a sign step moves every coordinate at once.
    homotopy: descend the leaky network of `homotopy_leak` (affine at first, the real one from 80% of the
    steps).
    move(x, grad, rate): the projected step to take instead of the box's signed one (over an Lp ball's
    region, `verifier.bab.region`), rate being the schedule's fraction of the region's size."""
    if x.shape[0] == 0:
        return x
    width = xu - xl
    Cb, db = C.expand(x.shape[0], -1, -1), d.expand(x.shape[0], -1)
    best_x, best = x.detach().clone(), torch.full((x.shape[0],), math.inf, dtype=x.dtype, device=x.device)
    for step in range(steps + 1):
        x = x.detach().requires_grad_(True)
        leak = homotopy_leak(step, steps) if homotopy else 0.0
        with torch.enable_grad():
            if penalty is None and leak == 0:
                obj = clause_objective(graph.forward(x).reshape(x.shape[0], -1), Cb, db)
                loss = obj
            else:
                values = leaky_forward(graph, x, torch.full((x.shape[0],), leak, dtype=x.dtype, device=x.device),
                                       keep=True)
                loss = clause_objective(values[graph.output_name].reshape(x.shape[0], -1), Cb, db)
                obj = loss
                if leak > 0:
                    with torch.no_grad():
                        obj = clause_objective(graph.forward(x).reshape(x.shape[0], -1), Cb, db)
                if penalty is not None and penalty[0]:
                    off = sum(torch.relu(-s.to(x.dtype) * values[n]).flatten(1).sum(1) for n, s in penalty[0].items())
                    loss = loss + penalty[1] * off
        better = obj.detach() < best
        best = torch.where(better, obj.detach(), best)
        best_x = torch.where(better.unsqueeze(1), x.detach(), best_x)
        if step == steps or not loss.requires_grad:
            break
        (grad,) = torch.autograd.grad(loss.sum(), x)
        lr = 0.1 * 0.5 * (1 + math.cos(math.pi * step / steps)) + (1e-3 if penalty is None and not homotopy else 1e-5)
        if move is not None:
            x = move(x.detach(), grad, lr)
        else:
            x = torch.minimum(torch.maximum(x.detach() - lr * width * grad.sign(), xl), xu)
    return best_x
