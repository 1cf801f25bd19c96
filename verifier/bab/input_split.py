"""Input-split branch-and-bound: for networks with few inputs (ACAS Xu has 5).

The frontier is a batch of boxes held as two (N, n) tensors. Each step pops the newest `batch_size`
boxes (depth first, so memory stays small and counterexamples surface early), bounds them all in one
batched CROWN call, drops the proved ones, tests the centres of the others as counterexamples, and
splits each open box in two along the input dimension with the largest |coefficient| x width in the
CROWN lower bound of its best row (the dimension that loosens that bound most).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

import torch

from verifier.attack.pgd import box_descent, clause_objective
from verifier.bab.memory import release_cached_memory
from verifier.bounds.alpha import AlphaConfig, alpha_crown
from verifier.bounds.box import Box
from verifier.bounds.crown import crown_with_input_coefficients, intermediate_bounds, relaxed_inputs
from verifier.bounds.forward import forward_boxes
from verifier.bounds.layerwise import layer_bounds
from verifier.bounds.margin_check import Allowance, allowance, proves
from verifier.model.graph import Graph

Tensor = torch.Tensor


@dataclass(frozen=True)
class InputSplitConfig:
    batch_size: int = 2048
    max_frontier: int = 4_000_000  # open boxes kept before giving up (memory guard)
    min_width: float = 1e-9  # a box narrower than this everywhere is not split further
    mix_rows: bool = True  # also bound convex mixtures of a conjunction's rows (see with_convex_mixtures)
    dual_steps: int = 30  # mirror-ascent steps on the rows' weights (see dual_margin); 0 turns it off
    width_weight: float = 0.3  # mix relative width into the coefficient score (0: pure |A|·width)
    branching: str = "coefficient"  # coefficient (|A| x width) | width (relative to the root box)
    intermediate: str = "crown"  # crown | forward | alpha: how the boxes' intermediate bounds are computed
    alpha_iterations: int = 10  # Adam steps per layer when intermediate is alpha
    objective_alpha: int = 5  # Adam steps on the objective's relu slopes for boxes CROWN leaves open
    objective_alpha_lr: float = 0.3
    objective_alpha_after: int = 4096  # boxes bounded before it starts
    semantics: str = "real"  # real | float32: what a proof must hold for (see verifier.bounds.margin_check)
    clip: bool = True  # shrink each open box to the part where every row's linear lower bound is <= 0
    samples_per_step: int = 4096  # random points of the open region tried as counterexamples per batch
    box_attack: int = 8  # the worst open boxes per batch attacked inside themselves (homotopy descent)
    box_attack_steps: int = 30
    box_attack_share: float = 0.05  # ... in batches where it has so far taken at most this share of the time
    box_attack_after: float = 1.0  # ... and not in the first seconds: most instances end before, with no use for it
    seed: int = 0  # of those random points


@dataclass(frozen=True)
class BabOutcome:
    verdict: str  # unsat | sat | timeout | unknown
    counterexample: Optional[Tensor]  # flattened input that replayed, when sat
    margin: float  # unsat: the smallest margin of a proved box (> 0); else the worst open box's bound
    domains: int  # boxes bounded
    message: str = ""


def input_split_bab(
    graph: Graph, lower: Tensor, upper: Tensor, C: Tensor, d: Tensor, deadline: float,
    is_counterexample: Callable[[Tensor], bool], config: InputSplitConfig = InputSplitConfig(),
) -> BabOutcome:
    """Decide whether some x in [lower, upper] meets every row of C·f(x) + d <= 0.

    lower/upper: (n,) flat; C (k, m); d (k,). `is_counterexample(x)` replays a candidate on the
    reference runtime; only what it accepts is returned as `sat`.
    """
    search = InputSplitSearch(graph, lower, upper, C, d, is_counterexample, config)
    outcome = search.run(deadline)
    return outcome if outcome is not None else search.timeout()


class InputSplitSearch:
    """One (box, clause) root's search, resumable: `run(until)` works until a verdict or `until`.

    Several roots can so share the time round-robin, and a sat root found late is not starved by
    an unsat root explored first.
    """

    def __init__(self, graph: Graph, lower: Tensor, upper: Tensor, C: Tensor, d: Tensor,
                 is_counterexample: Callable[[Tensor], bool], config: InputSplitConfig = InputSplitConfig(),
                 recorder: Optional[Any] = None) -> None:
        """`recorder` (a verifier.certificate.recorder.SplitRecorder), when given, is told every split,
        clip and proved box, keyed by ids kept alongside the frontier (for unsat certificates)."""
        self.rec = recorder
        self.I = recorder.root(lower) if recorder is not None else None  # node ids of the open boxes
        self.batch_ids: Optional[Tensor] = None  # ids of the batch being bounded
        self.rows_mix = _mixture_weights(C.shape[0], config.mix_rows)
        self.C0 = C  # the clause's own rows: their float32 error bounds also bound the mixtures'
        if config.mix_rows:
            C, d = with_convex_mixtures(C, d)
        self.graph, self.C, self.d, self.config = graph, C, d, config
        self.is_counterexample = is_counterexample
        self.root_width = (upper - lower).reshape(1, -1).clamp(min=1e-12)
        self.L, self.U = lower.reshape(1, -1), upper.reshape(1, -1)
        self.M = torch.full((1,), -float("inf"), dtype=lower.dtype, device=lower.device)  # parents' margins
        # parents' margin allowances (semantic, rounding), float64; +inf: none yet (see _allowance)
        self.Q = torch.full((1, 2), math.inf, dtype=torch.float64, device=lower.device)
        self.domains, self.stuck = 0, 0
        self.worst, self.proved = float("inf"), float("inf")
        self.seconds_per_box = 0.0  # measured; sizes batches so that one ends before the deadline
        self.batch_limit = config.batch_size  # halves on out of memory
        self.until = math.inf  # where alpha-CROWN's iterations stop (see run)
        self.gen = torch.Generator().manual_seed(config.seed)
        # The box attack's share is of this search's own time (batches run), not of the wall time since it
        # began: in a portfolio of k members over r roots each runs ~1/(k r) of the time, and 5% of the wall
        # time per member made the attacks ~30% of all time (ACAS Xu 1_1 prop_6: 6 searches).
        self.own_seconds, self.attack_seconds = 0.0, 0.0

    def timeout(self) -> BabOutcome:
        return BabOutcome("timeout", None, min(self.worst, _peek(self.graph, self.L, self.U, self.C, self.d)),
                          self.domains)

    def run(self, until: float, tick: Optional[Callable[[], None]] = None,
            deadline: Optional[float] = None) -> Optional[BabOutcome]:
        """Process batches until a verdict (returned) or the time `until` (None: still open).

        `deadline` (default `until`), the end of the whole search, also stops alpha-CROWN's iterations
        inside a batch (the bound stays sound, only looser); a time slice's end does not.
        `tick()` is called after every batch (progress display). A batch that runs out of memory goes
        back to the frontier and the batch ceiling halves; out of memory at one box is `unknown`."""
        self.until = until if deadline is None else deadline
        while self.L.shape[0]:
            now = time.monotonic()
            if now > until:
                return None
            take = self.batch_limit
            if self.seconds_per_box > 0:
                take = max(min(16, take), min(take, int((until - now) / self.seconds_per_box)))
            l, u, m, q = self._pop(min(take, self.L.shape[0]))
            try:
                outcome = self._step(l, u, q)
            except torch.OutOfMemoryError:
                self._push_back(l, u, m, q)
                release_cached_memory()
                if l.shape[0] == 1:
                    return BabOutcome("unknown", None, self.worst, self.domains, "out of memory bounding a single box")
                self.batch_limit = max(1, l.shape[0] // 2)
                continue
            self.own_seconds += time.monotonic() - now
            spent = (time.monotonic() - now) / l.shape[0]
            self.seconds_per_box = spent if self.seconds_per_box == 0 else 0.7 * self.seconds_per_box + 0.3 * spent
            if tick is not None:
                tick()
            if outcome is not None:
                return outcome
        if self.stuck:
            return BabOutcome("unknown", None, self.worst, self.domains,
                              f"{self.stuck} boxes too small to split further")
        return BabOutcome("unsat", None, self.proved, self.domains)

    @property
    def open_boxes(self) -> int:
        return int(self.L.shape[0])

    @property
    def open_volume(self) -> float:
        """The frontier's volume relative to the root box (1 at the start, 0 once every box is proved):
        how much of the root is still open, whatever the number of boxes (see verifier.bab.portfolio)."""
        if not self.L.shape[0]:
            return 0.0
        return float(self._log_volumes().exp().sum())

    def _log_volumes(self) -> Tensor:
        """log of each open box's volume relative to the root box (float64; a zero width counts as 1e-300)."""
        rel = ((self.U - self.L) / self.root_width).double().clamp(min=1e-300)
        return rel.log().sum(1)

    @property
    def bound(self) -> float:
        """A lower bound of the clause's margin over the whole root box now: the worst open box's parent bound."""
        return float(self.M.min()) if self.M.numel() else float("inf")

    def _push_back(self, l: Tensor, u: Tensor, m: Tensor, q: Tensor) -> None:
        """Return popped, unbounded boxes to the frontier with their parent bounds and allowances."""
        self.L, self.U, self.M = torch.cat([self.L, l]), torch.cat([self.U, u]), torch.cat([self.M, m])
        self.Q = torch.cat([self.Q, q])
        if self.rec is not None:
            self.I = torch.cat([self.I, self.batch_ids])

    def _step(self, l: Tensor, u: Tensor, q: Tensor) -> Optional[BabOutcome]:
        """Bound a batch of boxes (q: their parents' allowances), test the open ones' centres, split them
        back in."""
        cfg, C, d = self.config, self.C, self.d
        take = l.shape[0]
        if self.domains < cfg.objective_alpha_after:  # easy roots end before they would pay for it
            cfg = replace(cfg, objective_alpha=0)
        sink: dict[str, Any] = {}
        margin, A, rows = _margins(self.graph, l, u, C, d, cfg, self.until, sink)
        self.domains += take
        allow = self._allowance(l, u, margin, q, sink) if self.C0.shape[0] else None
        if allow is not None:
            margin = _recheck_thin_proofs(self.graph, l, u, C, d, margin, cfg, allow, sink)
        open_ = ~(margin > 0)
        if not bool(open_.all()):
            self.proved = min(self.proved, float(margin[~open_].min()))
        ids = self.batch_ids
        if self.rec is not None:
            _record_proved(self.rec, ids, open_, sink, self.graph, cfg.intermediate == "alpha")
            ids = ids[open_]
        if not bool(open_.any()):
            return None
        l, u, margin, A, rows = l[open_], u[open_], margin[open_], A[open_], rows[open_]
        q = q[open_] if allow is None else torch.stack([allow.semantic, allow.rounding], dim=1)[open_]
        if cfg.clip and C.shape[0] and allow is not None:
            slack = clip_slack(allow.index(open_)).to(l)[:, None, None]
            l0, u0 = l, u
            l, u, empty = clip_boxes(l, u, A, rows, slack)
            if self.rec is not None:
                ids = self.rec.clipped(ids, l0, u0, l, u, empty, cfg.intermediate == "alpha")
            if bool(empty.any()):
                keep = ~empty
                l, u, margin, A, q = l[keep], u[keep], margin[keep], A[keep], q[keep]
                if not l.shape[0]:
                    return None
        self.worst = min(self.worst, float(margin.min()))
        self._split(l, u, A, margin, q, ids)
        found = self._try_points(l, u, margin)
        if found is not None:
            return BabOutcome("sat", found, float(margin.min()), self.domains)
        if self.L.shape[0] > cfg.max_frontier:
            return BabOutcome("unknown", None, self.worst, self.domains, "too many open boxes")
        return None

    def _allowance(self, l: Tensor, u: Tensor, margin: Tensor, q: Tensor, sink: dict[str, Any]) -> Allowance:
        """The boxes' margin allowances (`margin_check.allowance`). A parent's allowance bounds the float32
        error over all of its box, so over each child's too: it is kept, and the error bound is computed
        afresh (with the box's own intermediate bounds, often smaller) only for boxes it leaves undecided,
        a positive margin it does not let prove, and for boxes without one (the root). Computing it for
        every box was 6% of ACAS Xu 3_3 prop_2."""
        inherited = Allowance(q[:, 0], q[:, 1])
        fresh = ~torch.isfinite(q[:, 1]) | ((margin > 0) & ~proves(margin, inherited)[0])
        if not bool(fresh.any()):
            return inherited
        known = sink.get("boxes")
        if not bool(fresh.all()):
            l, u = l[fresh], u[fresh]
            known = None if known is None else {n: (b[0][fresh], b[1][fresh]) for n, b in known.items()}
        new = allowance(self.graph, l, u, self.C0, self.config.semantics, known)
        # both bound the same error over the box: the smaller holds
        semantic = inherited.semantic.masked_scatter(fresh, torch.minimum(new.semantic, inherited.semantic[fresh]))
        rounding = inherited.rounding.masked_scatter(fresh, torch.minimum(new.rounding, inherited.rounding[fresh]))
        return Allowance(semantic, rounding)

    def _try_points(self, l: Tensor, u: Tensor, margin: Tensor) -> Optional[Tensor]:
        """Evaluate the candidate points (`_candidates`, and a descent inside the `box_attack` worst open
        boxes: where the bound says a violation can still be, followed there by gradients); replay the
        lowest few that meet the clause on our graph."""
        points = self._candidates(l, u)
        cfg = self.config
        started = time.monotonic()
        elapsed = self.own_seconds
        if cfg.box_attack and self.C.shape[0] and elapsed >= cfg.box_attack_after \
                and self.attack_seconds <= cfg.box_attack_share * elapsed:
            worst = margin.argsort()[: cfg.box_attack]
            lo, hi = l[worst], u[worst]
            points = torch.cat([points, box_descent(self.graph, (lo + hi) / 2, lo, hi, self.C, self.d,
                                                    cfg.box_attack_steps, homotopy=True)])
            self.attack_seconds += time.monotonic() - started
        m = points.shape[0]
        obj = clause_objective(self.graph.forward(points).reshape(m, -1),
                               self.C.unsqueeze(0).expand(m, -1, -1), self.d.unsqueeze(0).expand(m, -1))
        hits = torch.nonzero(obj <= 0).flatten()
        for i in hits[torch.argsort(obj[hits])][:8].tolist():
            if self.is_counterexample(points[i]):
                return points[i]
        return None

    def _candidates(self, l: Tensor, u: Tensor) -> Tensor:
        """The centres of the boxes l, u and `samples_per_step` random points of the open region (boxes
        drawn by volume, so every unproved part of the input gets its share). Forward passes cost
        little beside a bound, and sampling the unproved region finds violations too thin for gradient
        steps to hit (ACAS Xu 1_9 property 7), far sooner than uniform sampling of the whole box."""
        points = (l + u) / 2
        k = self.config.samples_per_step
        if not k or not self.L.shape[0]:
            return points
        volume = self._log_volumes()
        pick = torch.multinomial((volume - volume.max()).exp().cpu(), k, replacement=True, generator=self.gen)
        pick = pick.to(self.L.device)
        lo, hi = self.L[pick], self.U[pick]
        # Half of the coordinates uniform in the box, a quarter at each end: points on faces,
        # edges and corners too, where violations often sit (the root box's bounds included).
        noise = torch.rand(lo.shape, generator=self.gen, dtype=torch.float64)
        snap = torch.rand(lo.shape, generator=self.gen, dtype=torch.float64)
        noise = torch.where(snap < 0.25, 0.0, torch.where(snap < 0.5, 1.0, noise)).to(lo)
        return torch.cat([points, torch.minimum(lo + noise * (hi - lo), hi)])

    def _pop(self, take: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The `take` open boxes with the worst parent margin (and those margins): where a counterexample
        is likeliest and the bound is loosest. The order changes nothing for unsat (every box gets
        proved) but finds sat far sooner than depth first on large boxes."""
        if take >= self.L.shape[0]:
            l, u, m, q = self.L, self.U, self.M, self.Q
            self.L, self.U, self.M, self.Q = self.L[:0], self.U[:0], self.M[:0], self.Q[:0]
            if self.rec is not None:
                self.batch_ids, self.I = self.I, self.I[:0]
            return l, u, m, q
        idx = torch.topk(self.M, take, largest=False).indices
        keep = torch.ones_like(self.M, dtype=torch.bool).index_fill_(0, idx, False)
        l, u, m, q = self.L[idx], self.U[idx], self.M[idx], self.Q[idx]
        self.L, self.U, self.M, self.Q = self.L[keep], self.U[keep], self.M[keep], self.Q[keep]
        if self.rec is not None:
            self.batch_ids, self.I = self.I[idx], self.I[keep]
        return l, u, m, q

    def _split(self, l: Tensor, u: Tensor, A: Tensor, margin: Tensor, q: Tensor, ids: Optional[Tensor] = None) -> None:
        """Halve each box along its best-scored dim: max over rows of |A|·width, plus relative width. Both
        halves inherit the box's margin and allowances (q)."""
        width = u - l
        rel = width / self.root_width
        if self.config.branching == "width" or self.C.shape[0] == 0:
            score = rel
        else:
            score = (A.abs() * width.unsqueeze(1)).amax(dim=1)
            if self.config.width_weight:
                score = score / score.amax(dim=1, keepdim=True).clamp(min=1e-30) \
                    + self.config.width_weight * rel / rel.amax(dim=1, keepdim=True).clamp(min=1e-30)
        splittable = width.max(dim=1).values > self.config.min_width
        self.stuck += int((~splittable).sum())
        l, u, score, width, margin = l[splittable], u[splittable], score[splittable], width[splittable], margin[splittable]
        q = q[splittable]
        dim = score.argmax(dim=1, keepdim=True)
        mid = l.gather(1, dim) + width.gather(1, dim) / 2
        if self.rec is not None and ids is not None:
            low, high = self.rec.split(ids[splittable], dim[:, 0], mid[:, 0])
            self.I = torch.cat([self.I, low, high])
        self.L = torch.cat([self.L, l, l.scatter(1, dim, mid)])
        self.U = torch.cat([self.U, u.scatter(1, dim, mid), u])
        self.M = torch.cat([self.M, margin, margin])
        self.Q = torch.cat([self.Q, q, q])


def dual_margin(row_lb: Tensor, A: Tensor, l: Tensor, u: Tensor, steps: int) -> Tensor:
    """A lower bound of min over the box of max_j row_j(x), from each row's linear lower bound.

    CROWN gives row_j(x) >= A_j·x + c_j on the box, with row_lb_j = min_box(A_j·x) + c_j. For weights
    lam in the simplex, max_j row_j >= sum_j lam_j row_j >= sum_j lam_j (A_j·x + c_j), whose minimum
    over the box, g(lam), is a sound lower bound for every lam. g is concave: maximise it by mirror
    ascent and keep the best value. This is the LP min_x max_j (A_j·x + c_j) seen from its dual; it
    proves conjunctions whose rows are each satisfiable somewhere in the box, but never together.
    """
    def box_min(a: Tensor) -> Tensor:  # (b, ..., n) -> min over the box of a·x
        return (a.clamp(min=0) * l.unsqueeze(-2) + a.clamp(max=0) * u.unsqueeze(-2)).sum(-1)

    c = row_lb - box_min(A)  # (b, k): offsets of the linear lower functions
    lam = torch.full_like(row_lb, 1.0 / row_lb.shape[1])
    best = torch.full_like(row_lb[:, 0], -float("inf"))
    for step in range(steps):
        a = (lam.unsqueeze(-1) * A).sum(1)  # (b, n)
        value = (lam * c).sum(1) + box_min(a.unsqueeze(1)).squeeze(1)
        best = torch.maximum(best, value)
        x_star = torch.where(a > 0, l, u)  # a minimiser of the weighted function over the box
        grad = c + (A * x_star.unsqueeze(1)).sum(-1)  # (b, k): each row's value at x_star
        grad = grad / grad.abs().amax(dim=1, keepdim=True).clamp(min=1e-12)
        lam = lam * torch.exp(2.0 / (1 + step) ** 0.5 * grad)
        lam = lam / lam.sum(dim=1, keepdim=True)
    return best


def clip_boxes(l: Tensor, u: Tensor, A: Tensor, rows: Tensor, tolerance: Tensor | float,
               ) -> tuple[Tensor, Tensor, Tensor]:
    """Shrink boxes to the part where a counterexample can lie, without splitting.

    On a box, row j of the clause satisfies row_j(x) >= A_j·x + c_j (CROWN), and a counterexample
    needs row_j(x) <= 0, hence A_j·x + c_j <= 0. With the other dims at their most favourable ends,
    that bounds each x_i: A_ji x_i <= -c_j - min_box(sum_{k != i} A_jk x_k). Every row and dim gives
    such a bound (loosened by `tolerance`, in row units, against rounding); their intersection with
    the box still holds every counterexample of the box, and the linear bounds computed for the box
    stay valid on it. An empty result (some l > u) means the box holds none: it is proved.

    l, u (b, n); A (b, k, n); rows (b, k): each row's lower bound over the box (= min_box A_j·x + c_j).
    Returns the clipped l, u and the mask of emptied boxes.
    """
    lo, hi = l.unsqueeze(1), u.unsqueeze(1)  # (b, 1, n)
    term_min = torch.minimum(A * lo, A * hi)  # (b, k, n): min over [l_i, u_i] of A_ji x_i
    # rows_j = c_j + sum_i term_min_i; the room left for A_ji x_i: -c_j - sum_{k != i} term_min_k
    room = term_min - rows.unsqueeze(-1) + tolerance  # (b, k, n)
    up, down = A > 1e-12, A < -1e-12  # coefficients too small to divide by give no bound
    limit = room / torch.where(up | down, A, torch.ones_like(A))  # x_i <= limit (up) or x_i >= limit (down)
    inf = torch.full_like(limit, float("inf"))
    new_u = torch.where(up, limit, inf).amin(dim=1)
    new_l = torch.where(down, limit, -inf).amax(dim=1)
    l2, u2 = torch.maximum(l, new_l), torch.minimum(u, new_u)
    empty = (l2 > u2).any(dim=1)
    return torch.where(empty.unsqueeze(1), l, l2), torch.where(empty.unsqueeze(1), u, u2), empty


def clip_slack(allow: Allowance) -> Tensor:
    """Per box (b,) float64, the tolerance box clipping keeps: a point where the real rows' linear lower
    bounds are up to this above 0 may still violate (the float32 network's rows err by up to the semantic
    error, and the float32 bounds by up to their rounding allowance)."""
    return (allow.semantic + allow.rounding) * 2


def with_convex_mixtures(C: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
    """Add the pairwise averages and the mean of the rows of a conjunction C·y + d <= 0.

    The clause holds only if max_j (C_j·y + d_j) <= 0, and any convex combination of the rows is
    <= that max: a positive lower bound on a mixture refutes the clause just as one on a row does.
    Mixtures prove boxes where each row alone is satisfiable somewhere but never all together
    (e.g. "output 0 is the smallest" near the border between two other outputs' regions).
    """
    k = C.shape[0]
    if k < 2:
        return C, d
    rows = [(i, j) for i in range(k) for j in range(i + 1, k)]
    Cm = torch.stack([(C[i] + C[j]) / 2 for i, j in rows] + ([C.mean(0)] if k > 2 else []))
    dm = torch.stack([(d[i] + d[j]) / 2 for i, j in rows] + ([d.mean(0)] if k > 2 else []))
    return torch.cat([C, Cm]), torch.cat([d, dm])


def _bound(graph: Graph, l: Tensor, u: Tensor, C: Tensor, config: InputSplitConfig,
           deadline: float = math.inf) -> tuple[Tensor, Tensor, dict[str, Box]]:
    """CROWN lower bounds and input coefficients of C·f(x) on each box, and the intermediate bounds
    behind them: by CROWN (default), forward linear bounds, or alpha-CROWN per layer."""
    if config.intermediate == "forward":
        boxes = forward_boxes(graph, l, u)
        boxes = {n: boxes[n] for n in relaxed_inputs(graph)}
    elif config.intermediate == "alpha":
        boxes = layer_bounds(graph, l, u, list(relaxed_inputs(graph)), None, -1, None,
                             optimise=(config.alpha_iterations, 0.1, deadline))
    else:
        boxes = intermediate_bounds(graph, l, u)
    lb, A = crown_with_input_coefficients(graph, l, u, C, intermediate=boxes)
    return lb, A, boxes


def _optimise_objective(graph: Graph, l: Tensor, u: Tensor, C: Tensor, boxes: dict[str, Box],
                        config: InputSplitConfig, deadline: float,
                        sink: Optional[dict[str, Any]] = None) -> tuple[Tensor, Tensor]:
    """alpha-CROWN on the objective rows (intermediate bounds held): lower bounds and input
    coefficients, each row at least as tight as CROWN's. The slopes go into `sink["alphas"]`."""
    result = alpha_crown(graph, l, u, C, intermediate=boxes, deadline=deadline,
                         config=AlphaConfig(iterations=config.objective_alpha, lr=config.objective_alpha_lr,
                                            intermediate_ops=()))
    if sink is not None:
        sink["alphas"] = result.alphas
    return crown_with_input_coefficients(graph, l, u, C, intermediate=result.intermediate, alphas=result.alphas)


def _margins(graph: Graph, l: Tensor, u: Tensor, C: Tensor, d: Tensor, config: InputSplitConfig,
             deadline: float = math.inf, sink: Optional[dict[str, Any]] = None,
             slopes: Optional[tuple[Tensor, dict[str, Tensor]]] = None) -> tuple[Tensor, Tensor, Tensor]:
    """Per box, a lower bound of max_j (C_j·f(x) + d_j) (> 0 proves the box), the input coefficients
    A (b, k, n) of each row's linear lower bound (which also score the dims to split) and the rows'
    lower bounds (b, k) over the box.

    Boxes CROWN leaves open get the objective's slopes optimised (`objective_alpha`): on ACAS Xu the
    relus' lower slopes, not the intermediate bounds, are most of the looseness on small boxes (of the
    200 worst open boxes of 3_3 property 2 after 20 s, CROWN proves 27, 5 Adam steps prove 197).
    `slopes` (a mask over the boxes, and per relu the slopes of the masked ones): use these instead of
    optimising, on the masked boxes (any slopes in [0, 1] give a sound bound)."""
    lb, A, boxes = _bound(graph, l, u, C, config, deadline)
    if sink is not None:
        sink["boxes"] = boxes  # the boxes' intermediate bounds (they tighten the float32 error bound)
    if not C.shape[0]:
        return lb.new_full((lb.shape[0],), -float("inf")), A, lb
    margin = _combine(lb + d, A, l, u, config)
    if config.objective_alpha > 0:
        open_ = ~(margin > 0) if slopes is None else slopes[0]
        if bool(open_.any()):
            inter = {n: (b[0][open_], b[1][open_]) for n, b in boxes.items()}
            if slopes is None:
                lb_o, A_o = _optimise_objective(graph, l[open_], u[open_], C, inter, config, deadline, sink)
            else:
                lb_o, A_o = crown_with_input_coefficients(graph, l[open_], u[open_], C, intermediate=inter,
                                                          alphas=slopes[1])
            if sink is not None:
                sink["alpha_open"] = open_
            better = lb_o >= lb[open_]  # per row: the optimised bound, with its coefficients
            lb = lb.masked_scatter(open_[:, None], torch.where(better, lb_o, lb[open_]))
            A = A.masked_scatter(open_[:, None, None], torch.where(better.unsqueeze(-1), A_o, A[open_]))
            tighter = _combine(lb[open_] + d, A[open_], l[open_], u[open_], config)
            # (the weighting of the new rows can come out below that of CROWN's: keep the better)
            margin = margin.masked_scatter(open_, torch.maximum(margin[open_], tighter))
    return margin, A, lb + d


def _mixture_weights(k: int, mix_rows: bool) -> Tensor:
    """The (r, k) weights of the rows `with_convex_mixtures` bounds, over the clause's k rows."""
    eye = torch.eye(k, dtype=torch.float64)
    return with_convex_mixtures(eye, torch.zeros(k, dtype=torch.float64))[0] if mix_rows else eye


def _record_proved(recorder: Any, ids: Tensor, open_: Tensor, sink: dict[str, Any], graph: Graph,
                   layer_alpha: bool = False) -> None:
    """Tell `recorder` which boxes of the batch are proved, and by what: CROWN (on intermediate
    bounds by alpha-CROWN per layer when `layer_alpha`), or CROWN with the objective's optimised
    slopes (those of the boxes CROWN alone left open, per relu layer)."""
    from verifier.certificate.format import ALPHA, CROWN, LAYER_ALPHA

    proved = ~open_
    if not bool(proved.any()):
        return
    kinds = torch.full((int(ids.shape[0]),), LAYER_ALPHA if layer_alpha else CROWN, dtype=torch.uint8)
    alpha_open = sink.get("alpha_open")
    if alpha_open is None or "alphas" not in sink:
        recorder.proved(ids[proved], kinds[proved.cpu()])
        return
    kinds[alpha_open.cpu()] = ALPHA
    relus = [n.name for n in graph.nodes if n.op == "relu"]
    taken = proved[alpha_open]  # among the boxes that got slopes, those proved
    alphas = [sink["alphas"][name][taken] for name in relus]
    recorder.proved(ids[proved], kinds[proved.cpu()], alpha_open[proved], alphas)


def _combine(rows: Tensor, A: Tensor, l: Tensor, u: Tensor, config: InputSplitConfig) -> Tensor:
    """Lower bound of max_j row_j over each box: the best row, or a better weighting of the rows."""
    margin = rows.max(dim=1).values
    if rows.shape[1] > 1 and config.dual_steps:
        margin = torch.maximum(margin, dual_margin(rows, A, l, u, config.dual_steps))
    return margin


def _recheck_thin_proofs(graph: Graph, l: Tensor, u: Tensor, C: Tensor, d: Tensor, margin: Tensor,
                         config: InputSplitConfig, allow: Allowance, sink: Optional[dict[str, Any]] = None,
                         ) -> Tensor:
    """The margins judged by `margin_check.proves`: a margin that does not prove becomes at most 0.
    Thin float32 proofs (within their rounding allowance) are redone in float64 and judged again; a box
    stays proved only if its float64 bound proves.

    The float64 pass first reuses the objective slopes the float32 pass optimised (`sink`: one backward
    pass instead of the Adam steps, which were ~30% of a thin-margin search such as ACAS Xu 3_3 prop_2);
    only the boxes that this does not prove are redone in full."""
    proved, thin = proves(margin, allow)
    out = torch.where(proved, margin, margin.clamp(max=0))
    if not bool(thin.any()):
        return out
    g64 = graph.to(margin.device, torch.float64)
    l64, u64, C64, d64, allow_t = l[thin].double(), u[thin].double(), C.double(), d.double(), allow.index(thin)
    exact = torch.full((l64.shape[0],), -math.inf, dtype=torch.float64, device=l64.device)
    ok = torch.zeros_like(exact, dtype=torch.bool)
    given = _slopes_of(sink, thin)
    if given is not None:
        exact, _, _ = _margins(g64, l64, u64, C64, d64, config, slopes=given)
        ok = proves(exact, allow_t)[0]
    if not bool(ok.all()):
        redo = ~ok
        full, _, _ = _margins(g64, l64[redo], u64[redo], C64, d64, config)
        exact = exact.masked_scatter(redo, full)
        ok = ok.masked_scatter(redo, proves(full, allow_t.index(redo))[0])
    return out.masked_scatter(thin, torch.where(ok, exact.to(margin.dtype), torch.zeros_like(margin[thin])))


def _slopes_of(sink: Optional[dict[str, Any]], boxes: Tensor) -> Optional[tuple[Tensor, dict[str, Tensor]]]:
    """The float32 pass's optimised objective slopes for the boxes in the mask `boxes` (as `_margins`
    takes them: which of those boxes have slopes, and the slopes in float64); None if none has."""
    if sink is None or "alphas" not in sink or "alpha_open" not in sink:
        return None
    has = sink["alpha_open"]  # over the batch; sink["alphas"] holds one entry per True, in order
    mask = has[boxes]
    if not bool(mask.any()):
        return None
    rank = torch.cumsum(has.long(), 0) - 1
    pick = rank[boxes & has]
    return mask, {name: a[pick].double() for name, a in sink["alphas"].items()}


def _peek(graph: Graph, L: Tensor, U: Tensor, C: Tensor, d: Tensor) -> float:
    """Lower bound of the worst of a few open boxes, for the timeout report."""
    if L.shape[0] == 0:
        return float("inf")
    lb, _ = crown_with_input_coefficients(graph, L[-256:], U[-256:], C)
    return float((lb + d).max(dim=1).values.min()) if C.shape[0] else -float("inf")
