"""The per-sample cascade: clean prediction -> PGD -> IBP -> CROWN -> alpha-CROWN -> branch and bound.

Each sample leaves at the first stage that decides it: misclassified (counted, never verified), falsified
(an attack point whose margin is <= 0 on our graph and again on onnxruntime), or verified (a lower bound of
every margin f_y - f_j above 0). The batched stages run over the samples still open in a chunk at once,
and their time is shared equally among those samples; a sample whose time is used up leaves as `timeout`.

Over an L1 / L2 ball (`norm`), the region is ball ∩ (the ball's bounding box ∩ clip): the bound stages
concretise over both (see `verifier.bounds.ball`), PGD takes that norm's steps, a counterexample must lie in
the exact float64 ball, and branch and bound is ReLU splitting on ball ∩ box (`ball_bab`; input splitting
bisects boxes and stays L-inf only).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from verifier.bounds.ball import LpBall, norm_p
from verifier.certify import stages as stage_fns
from verifier.certify.attack import MarginAttack, margin_pgd
from verifier.certify.network import Network, eps_box, into_ball, margin_matrix
from verifier.certify.records import FALSIFIED, MISCLASSIFIED, TIMEOUT, UNKNOWN, VERIFIED, make_record
from verifier.certify.stages import BOUND_STAGES, STAGES

Emit = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class CascadeConfig:
    eps: float
    clip: Optional[tuple[float, float]] = None
    norm: str = "linf"  # linf, l2 or l1
    stages: tuple[str, ...] = STAGES
    timeout: float = 10.0  # seconds per sample, batched stages counted at their share
    batch: int = 128  # samples per batched pass
    attack: MarginAttack = field(default_factory=MarginAttack)
    seed: int = 0


def check_stages(names: Sequence[str]) -> tuple[str, ...]:
    """The stages asked for: known, each once, in cascade order (cheapest first)."""
    from verifier.errors import InputError

    names = tuple(n.strip() for n in names if n.strip())
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        raise InputError(f"--cascade: unknown stage(s) {', '.join(unknown)}; choose from {','.join(STAGES)}")
    if not names:
        raise InputError(f"--cascade: name at least one stage of {','.join(STAGES)}")
    if len(set(names)) != len(names) or list(names) != sorted(names, key=STAGES.index):
        raise InputError(f"--cascade: stages must appear once each, in the order {','.join(STAGES)}")
    return names


def stages_for_norm(stages: Sequence[str], norm: str) -> tuple[str, ...]:
    """The stages that run for this norm: all of them. Over an L1 / L2 ball, branch and bound is ReLU
    splitting only (`ball_bab`): input splitting bisects boxes."""
    return tuple(stages)


class _Chunk:
    """The state of one chunk of samples while it goes down the cascade."""

    def __init__(self, net: Network, x: np.ndarray, labels: np.ndarray, indices: Sequence[int],
                 config: CascadeConfig, emit: Emit, model: str) -> None:
        self.net, self.x, self.labels, self.indices = net, x, labels, list(indices)
        self.config, self.emit, self.model = config, emit, model
        B = len(self.indices)
        self.times: dict[str, np.ndarray] = {}
        self.rows_lb = np.full((B, net.n_outputs - 1), -np.inf)  # best lower bound per margin row
        self.margin_ub = np.full(B, np.inf)
        self.prediction = np.zeros(B, dtype=np.int64)
        self.open = np.ones(B, dtype=bool)

    def charge(self, stage: str, who: np.ndarray, seconds: float, shared: bool = True) -> None:
        t = self.times.setdefault(stage, np.zeros(len(self.indices)))
        t[who] += seconds / max(len(who), 1) if shared else seconds

    def spent(self, i: int) -> float:
        return float(sum(t[i] for t in self.times.values()))

    def close(self, who: np.ndarray, stage: Optional[str], verdict: str) -> None:
        for i in who:
            self.open[i] = False
            self.emit(make_record(self.indices[i], self.labels[i], self.prediction[i], self.config.eps, stage,
                                  verdict, float(self.rows_lb[i].min()), float(self.margin_ub[i]),
                                  {k: float(v[i]) for k, v in self.times.items()}, self.model, self.config.norm))


def certify_chunk(net: Network, x: np.ndarray, labels: np.ndarray, indices: Sequence[int], config: CascadeConfig,
                  emit: Emit, model: str) -> None:
    """Run the cascade on raw flat samples x (B, n) with their labels; `emit` gets one record per sample."""
    c = _Chunk(net, x, labels, indices, config, emit, model)
    _clean(c)
    box = eps_box(x, config.eps, config.clip, net.dtype, net.device)
    p = norm_p(config.norm)
    ball = None if math.isinf(p) else LpBall.around(x, config.eps, p, net.dtype, net.device)
    C = margin_matrix(labels, net.n_outputs, net.dtype, net.device)
    for stage in config.stages:
        who = np.flatnonzero(c.open)
        late = np.array([i for i in who if c.spent(i) >= config.timeout], dtype=np.int64)
        c.close(late, None, TIMEOUT)
        who = np.setdiff1d(who, late)
        if len(who) == 0:
            break
        if stage == "pgd":
            _attack(c, who, box, C, ball)
        elif stage in BOUND_STAGES:
            _bound(c, stage, who, box, C, ball)
        elif ball is None:
            _bab(c, who, box)
        else:
            _ball_bab(c, who, box, C, ball)
    rest = np.flatnonzero(c.open)
    c.close(np.array([i for i in rest if c.spent(i) >= config.timeout], dtype=np.int64), None, TIMEOUT)
    c.close(np.flatnonzero(c.open), None, UNKNOWN)


def _clean(c: _Chunk) -> None:
    """Predict every sample; a misclassified one is recorded and goes no further."""
    t = time.monotonic()
    logits = c.net.logits(c.x)
    c.prediction = logits.argmax(axis=1)
    c.margin_ub = _margins(logits, c.labels)
    c.charge("clean", np.arange(len(c.indices)), time.monotonic() - t)
    c.close(np.flatnonzero(c.prediction != c.labels), "clean", MISCLASSIFIED)


def _margins(y: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """min over j != y of f_y - f_j, per row of y (N, m)."""
    own = y[np.arange(len(y)), labels]
    others = y.copy()
    others[np.arange(len(y)), labels] = -np.inf
    return own - others.max(axis=1)


def _attack(c: _Chunk, who: np.ndarray, box: tuple, C: torch.Tensor, ball: Optional[LpBall]) -> None:
    """Batched PGD; a point with margin <= 0 on our graph is replayed on onnxruntime and counts if it
    holds there too (and, over a ball, lies in the exact float64 ball)."""
    from verifier.attack.replay import snap_into_box

    t = time.monotonic()
    lower, upper, lo64, hi64 = box
    sel = torch.as_tensor(who, device=lower.device)
    xs, found = margin_pgd(c.net.graph, lower[sel], upper[sel], C[sel],
                           MarginAttack(c.config.attack.restarts, c.config.attack.steps, c.config.seed),
                           None if ball is None else ball.take(sel))
    falsified = []
    for k in np.flatnonzero(found.cpu().numpy() <= 0):
        i = who[k]
        x32 = snap_into_box(xs[k].detach().cpu().double().numpy(), lo64[i], hi64[i])
        if ball is not None:
            x32 = into_ball(x32, c.x[i], c.config.eps, ball.p, lo64[i], hi64[i])
        if x32 is None or np.any(x32 < lo64[i]) or np.any(x32 > hi64[i]):
            continue  # no float32 point there
        y = c.net.runner(x32)
        margin = float(_margins(y[None], np.array([c.labels[i]]))[0])
        c.margin_ub[i] = min(c.margin_ub[i], margin)
        if margin <= 0:
            falsified.append(i)
    c.charge("pgd", who, time.monotonic() - t)
    c.close(np.array(falsified, dtype=np.int64), "pgd", FALSIFIED)


def _bound(c: _Chunk, stage: str, who: np.ndarray, box: tuple, C: torch.Tensor, ball: Optional[LpBall]) -> None:
    """One batched bound stage; per row the best bound of the stages so far is kept (all are sound)."""
    t = time.monotonic()
    lower, upper = box[0], box[1]
    sel = torch.as_tensor(who, device=lower.device)
    budget = min(c.config.timeout - c.spent(i) for i in who)
    rows = stage_fns.checked_rows(stage, c.net.graph, c.net.graph64, lower[sel], upper[sel], C[sel],
                                  deadline=time.monotonic() + budget,
                                  ball=None if ball is None else ball.take(sel))
    c.rows_lb[who] = np.maximum(c.rows_lb[who], rows)
    c.charge(stage, who, time.monotonic() - t)
    c.close(who[c.rows_lb[who].min(axis=1) > 0], stage, VERIFIED)


def _searched(c: _Chunk, who: np.ndarray, search: Callable[[int, float], Any]) -> Any:
    """Each sample of `who` searched one at a time (`search(i, seconds left)`), with what is left of its time,
    charged to the bab stage; samples with no time left are closed as timeouts. Yields (i, search's outcome)."""
    for i in who:
        left = c.config.timeout - c.spent(i)
        if left <= 0:
            c.close(np.array([i]), None, TIMEOUT)
            continue
        t = time.monotonic()
        out = search(int(i), left)
        c.charge("bab", np.array([i]), time.monotonic() - t, shared=False)
        yield i, out


def _close_searched(c: _Chunk, i: int, verdict: str) -> None:
    """Close sample i by its search's verdict (verified / falsified / timeout / anything else: unknown)."""
    if verdict in (VERIFIED, FALSIFIED):
        c.close(np.array([i]), "bab", verdict)
    else:
        c.close(np.array([i]), None, TIMEOUT if verdict == "timeout" else UNKNOWN)


def _bab(c: _Chunk, who: np.ndarray, box: tuple) -> None:
    """Branch and bound, one sample at a time, with what is left of its time."""
    _, _, lo64, hi64 = box

    def search(i: int, left: float) -> Any:
        return stage_fns.bab_sample(c.net, lo64[i], hi64[i], int(c.labels[i]), left, c.config.seed,
                                    f"sample {c.indices[i]}")

    for i, out in _searched(c, who, search):
        if out.margin is not None:  # a lower bound of the smallest margin, so of every row
            c.rows_lb[i] = np.maximum(c.rows_lb[i], out.margin)
        _close_searched(c, i, out.verdict)


def _ball_bab(c: _Chunk, who: np.ndarray, box: tuple, C: torch.Tensor, ball: LpBall) -> None:
    """ReLU-split branch and bound over ball ∩ box, one sample at a time, with what is left of its time;
    only the margin rows no earlier stage proved are searched."""
    from verifier.certify.ball_bab import BallSample, ball_bab_sample

    lower, upper, lo64, hi64 = box

    def search(i: int, left: float) -> Any:
        region = BallSample(lower[i], upper[i], ball.take(torch.tensor([i], device=lower.device)), c.x[i],
                            c.config.eps, lo64[i], hi64[i])
        return ball_bab_sample(c.net, region, int(c.labels[i]), C[i], c.rows_lb[i].copy(), left, c.config.seed)

    for i, out in _searched(c, who, search):
        for j, bound in out.rows.items():
            c.rows_lb[i, j] = max(c.rows_lb[i, j], bound)
        if out.margin_ub is not None:
            c.margin_ub[i] = min(c.margin_ub[i], out.margin_ub)
        _close_searched(c, i, out.verdict)
