"""ReLU-split branch and bound: for networks with many inputs (MNIST has 784), where splitting the
input box is hopeless and splitting on the sign of unstable relu pre-activations is what works.

A subproblem (domain) is the root input box plus split decisions "z_j >= 0" (active) or "z_j <= 0"
(inactive) on some relu pre-activations z_j. A batch of N domains is held as tensors with a leading
dim N: per relu input node, lower/upper pre-activation bounds (N, *shape) with the decisions applied
by clamping (active: lower = max(lower, 0); inactive: upper = min(upper, 0)), the decisions' signs,
and the warm-start relaxation parameters.

Bounding a domain (all sound on the domain, i.e. for the inputs of the box that meet its decisions):
- The root's pre-activation bounds come from CROWN, tightened per layer by alpha-CROWN (slopes of the
  earlier relus optimised per bound). A child's bounds of layers up to its newest split are its
  parent's (the child's domain is a subset of the parent's), with the split clamped; those of later
  layers are recomputed by CROWN with the clamped boxes and intersected with the parent's
  (`refresh_intermediate`).
- The objective rows C·f(x) are bounded by a backward linear pass with per-domain, per-row lower relu
  slopes alpha in [0, 1] (alpha-CROWN) and, when `beta` is on, Lagrange multipliers beta >= 0 for the
  split decisions (beta-CROWN): for s_j z_j(x) >= 0 on the domain, C·f(x) >= C·f(x) - sum_j beta_j s_j
  z_j(x), whose lower bound over the relaxation is one of the domain's objective. Both are
  optimised jointly by Adam for a few steps per batch, warm-started from the parent; the best
  iterate per (domain, row) is kept, and every iterate is a sound bound.
- A domain whose pre-activation bounds cross (lower > upper somewhere) is empty: proved.
- An open domain with no unstable neuron left is a polytope on which f is affine; its beta-CROWN bound
  is then the LP dual, and it gets many more optimisation steps (and, for several rows, a learned
  convex mixture of them) before it is given up as "stuck" (the verdict is then unknown).
Whether a margin proves is decided by `verifier.bounds.margin_check.proves`, with the allowances of the
root box (the float32 evaluation error bound of the clause's rows under `semantics="float32"`, and the
rounding allowance derived from it). Thin float32 proofs are recomputed in float64 with the same
alpha/beta, from scratch (the root's bounds redone in float64, then CROWN with the decisions' clamps),
while time is left, and count only if that proves, as input splitting does.

Branching: each unstable neuron (l < 0 < u) gets a BaBSR score (see `_Search._scores`) from the
coefficient of its relu's output in the domain's best row; with `fsb_candidates` > 1 the top few
are tried in a quick bound of both children each and the one with the best worse child wins (filtered
smart branching). Each open domain is split on its
chosen neuron into two children. Domains are processed depth first, `batch_size` at a time.

Over an Lp ball (`ball`: the input set is ball ∩ box, see `verifier.bab.region`) nothing changes but
the input: split decisions are the same, every linear bound (objective and pre-activation) is
concretised over the ball by the dual norm as well as over the box (`box.concretize_lower`), and the
attacks start, step and project in ball ∩ box.

Counterexamples: the input minimising each open domain's linear lower bound (of its best row) is a
candidate; a few projected sign-gradient steps on the clause (over the whole box: a counterexample
need not respect any split) refine it, and those meeting the clause on our graph are replayed through
`is_counterexample`; only what it accepts is returned as sat.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

import torch

from verifier.attack.pgd import box_descent, clause_objective
from verifier.bab.input_split import BabOutcome, with_convex_mixtures
from verifier.bab.memory import (BATCH_SHARE, BatchPeak, SearchSlot, free_bytes, frontier_budget,
                                 release_cached_memory)
from verifier.bab.region import InputRegion
from verifier.bounds.adam import Adam
from verifier.bounds.backward import rule_for
from verifier.bounds.ball import LpBall
from verifier.bounds.box import Box, concretize_lower, input_box, objective_matrix, on_device_of
from verifier.bounds.crown import relaxed_inputs
from verifier.bounds.layerwise import DeadlinePassed, layer_bounds
from verifier.bounds.ops import default_relu_alpha
from verifier.bounds.margin_check import Allowance, allowance, proves
from verifier.model.graph import Graph

Tensor = torch.Tensor


@dataclass(frozen=True)
class ReluSplitConfig:
    batch_size: int = 256  # domains bounded per step (their open ones give two children each)
    # Adam steps on alpha (and beta) per batch; 0: CROWN slopes / warm start only. 30 rather than 20
    # (bench/relu_config.py, BaB alone): mnist_fc's four ReLU-split instances that take longest, 235 -> 179 s
    # in all (256x6 prop_7 eps 0.03 76 -> 42 s, 256x4 prop_11 eps 0.05 112 -> 77 s; 40 steps: 214 s; 10
    # steps: timeouts); oval21, cifar10_resnet and eran trees do not shrink with them, so 3-15% slower there
    iterations: int = 30
    root_iterations: int = 50  # the same at the root domain
    lr_alpha: float = 0.1
    lr_beta: float = 0.05
    lr_decay: float = 1.0  # lr factor per Adam step (the settle phase decays its own 100-fold)
    beta: bool = True  # Lagrange multipliers for the split decisions (beta-CROWN); False: clamps only
    refresh_intermediate: bool = True  # recompute pre-activation bounds after the newest split's layer
    mix_rows: bool = True  # also bound convex mixtures of a conjunction's rows (with_convex_mixtures)
    max_frontier: int = 1_000_000  # open domains kept before giving up (memory guard)
    max_frontier_bytes: Optional[float] = None  # the same, in bytes of stored tensors (None: memory.frontier_budget)
    # Part of the device's free memory this search may count on, for its frontier and its batches: 1/N when
    # N searches share it (`run --jobs N`), since each sees the same free memory when it measures.
    memory_share: float = 1.0
    attack_candidates: int = 16  # open domains per batch whose candidate points get PGD steps
    attack_steps: int = 10
    # The worst open domains are also attacked inside their own region: sign-gradient steps on the clause
    # plus a penalty on violated split decisions (from their bound's minimiser and `domain_random_starts`
    # random points each), so the search stays where the bound says a violation can still be.
    domain_attack_steps: int = 60
    domain_random_starts: int = 2
    domain_penalty: float = 10.0
    domain_attack_share: float = 0.1  # ... in batches where it has so far taken at most this share of the time
    domain_attack_after: float = 1.0  # ... and not in the first seconds: most instances end before, with no use for it
    max_replays: int = 8  # candidates replayed per batch
    # filtered smart branching over this many top-scored neurons; <= 1: BaBSR only. 16 rather than 8
    # (bench/relu_config.py, BaB alone): mnist_fc 256x4 prop_3 eps 0.05 66 -> 13 s, prop_11 194 -> 122 s,
    # 256x6 prop_7 eps 0.03 a 300 s timeout -> 85 s; but 256x4 prop_8 eps 0.03 28 -> 39 s and eran 9x200
    # idx 186 12 -> 17 s (trees are that sensitive); oval21 and cifar10_resnet within 7%
    fsb_candidates: int = 16
    root_intermediate_iterations: int = 20  # alpha-CROWN steps per layer for the root's pre-activation bounds
    settle_iterations: int = 1000  # extra steps for open domains with nothing left to split (see _settle)
    semantics: str = "real"  # real | float32: what a proof must hold for (see verifier.bounds.margin_check)
    recheck_all: bool = False  # redo every float32 proof in float64 (tests of the recheck), not only thin ones
    seed: int = 0  # of the random starts of the attacks on open domains


class _BatchSizer:
    """How many domains to bound next: the configured batch, but no more than fit in half the time
    left at the last measured time per domain (big networks on a CPU can take seconds a domain, and
    one batch must not run far past the deadline) and, where a batch's peak memory is measured (CUDA, a
    Linux host: `memory.BatchPeak`), no more than fit in BATCH_SHARE of the memory then free at the
    measured bytes per domain;
    it starts at 8 and at most doubles per step, and halves its ceiling whenever a batch runs out of
    memory."""

    def __init__(self, most: int, deadline: float, first: int = 8, per_domain: float = 0.0) -> None:
        self.most, self.deadline = max(1, most), deadline
        self.size = max(1, min(first, self.most))
        self.per_domain = per_domain  # seconds a domain, measured (0: not yet)

    def shrink(self, failed: int) -> bool:
        """After running out of memory on `failed` domains: at most half as many from now on. False when
        a single domain failed (nothing smaller to try)."""
        self.most = max(1, failed // 2)
        self.size = min(self.size, self.most)
        return failed > 1

    def took(self, n: int, seconds: float) -> None:
        self.per_domain = seconds / max(1, n)
        self.size = min(self.most, 2 * self.size)

    def fit_memory(self, n: int, peak: Optional[float], free: float) -> None:
        """After a batch of n domains whose work took `peak` bytes at most (None: not measured), with
        `free` bytes free now: the ceiling becomes what fits in BATCH_SHARE of that."""
        if peak is None or peak <= 0 or n <= 0:
            return
        self.most = max(1, min(self.most, int(BATCH_SHARE * free * n / peak)))
        self.size = min(self.size, self.most)

    def next(self) -> int:
        if self.per_domain <= 0:
            return self.size
        fit = int(0.5 * max(0.0, self.deadline - time.monotonic()) / self.per_domain)
        return max(1, min(self.size, fit))


@dataclass
class _Domains:
    """N domains; everything is indexed by domain along dim 0."""

    lower: dict[str, Tensor]  # relu input node -> (N, *shape) pre-activation lower bounds
    upper: dict[str, Tensor]
    sign: dict[str, Tensor]  # relu input node -> (N, *shape) int8: +1 active, -1 inactive, 0 not split
    alpha: dict[str, Tensor]  # relu node -> (N, k, *shape) warm-start lower slopes
    beta: dict[str, Tensor]  # relu input node -> (N, k, *shape) warm-start multipliers (>= 0)
    start: Tensor  # (N,) long: layer index of the newest split; boxes up to it are final (root: all)
    margin: Tensor  # (N,) a lower bound of the clause's margin on the domain (the parent's)

    def __len__(self) -> int:
        return self.start.shape[0]

    def _tensors(self) -> list[Tensor]:
        return [t for d in (self.lower, self.upper, self.sign, self.alpha, self.beta) for t in d.values()] + \
            [self.start, self.margin]

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self._tensors())

    def map(self, fn: Callable[[Tensor], Tensor]) -> "_Domains":
        return _Domains(*({n: fn(t) for n, t in d.items()} for d in (self.lower, self.upper, self.sign,
                                                                       self.alpha, self.beta)),
                        start=fn(self.start), margin=fn(self.margin))

    def index(self, idx: Tensor) -> "_Domains":
        return self.map(lambda t: t[idx])

    @staticmethod
    def cat(parts: list["_Domains"]) -> "_Domains":
        if len(parts) == 1:
            return parts[0]
        first = parts[0]

        def join(get: Callable[["_Domains"], dict[str, Tensor]]) -> dict[str, Tensor]:
            return {n: torch.cat([get(p)[n] for p in parts]) for n in get(first)}

        return _Domains(join(lambda p: p.lower), join(lambda p: p.upper), join(lambda p: p.sign),
                        join(lambda p: p.alpha), join(lambda p: p.beta),
                        torch.cat([p.start for p in parts]), torch.cat([p.margin for p in parts]))


@dataclass
class _Bounded:
    """What bounding a batch of domains gives: per domain bounds and the data to branch on."""

    lb: Tensor  # (N, k) lower bounds of C·f(x) (d not added)
    C: Tensor  # (k, m) the rows given; (N, k + 1, m) with mix_of (a learned mixture as the last row)
    d: Tensor  # (N, k) their offsets: lb + d bounds C·f(x) + d
    boxes: dict[str, Box]  # relu input node -> the (refreshed) pre-activation bounds
    alpha: dict[str, Tensor]  # best slopes / multipliers per (domain, row)
    beta: dict[str, Tensor]
    A_input: Tensor  # (N, k, n_inputs) coefficients of the linear lower bound on the flat input
    A_relu: dict[str, Tensor]  # relu input node -> (N, k, *shape) coefficients on the relu's output
    empty: Tensor  # (N,) bool: pre-activation bounds cross, the domain is empty
    primal: Optional[Tensor] = None  # (N, n_inputs) averaged Lagrangian minimisers, when asked for
    mix_weights: Optional[Tensor] = None  # (N, k0) the learned mixture's weights (the last row), with mix_of


class _Stack:
    """Depth-first frontier: chunks of domains, popped newest first."""

    def __init__(self) -> None:
        self.chunks: list[_Domains] = []
        self.size = 0
        self.nbytes = 0

    def push(self, doms: _Domains) -> None:
        if len(doms):
            self.chunks.append(doms)
            self.size += len(doms)
            self.nbytes += doms.nbytes()

    def pop(self, n: int) -> _Domains:
        taken: list[_Domains] = []
        while n > 0 and self.chunks:
            last = self.chunks.pop()
            self.size -= len(last)
            self.nbytes -= last.nbytes()
            if len(last) > n:
                keep = torch.arange(len(last) - n, device=last.start.device)
                self.push(last.index(keep))
                last = last.index(torch.arange(len(last) - n, len(last), device=last.start.device))
            taken.append(last)
            n -= len(last)
        return _Domains.cat(taken[::-1])

    def worst_margin(self) -> float:
        return min((float(c.margin.min()) for c in self.chunks), default=math.inf)


class RootBounds:
    """The root's pre-activation bounds of one input box, computed once and shared by every clause
    searched over that box (they do not depend on the objective): float32 on first use, float64 for
    the thin-proof rechecks on first need."""

    def __init__(self, graph: Graph, lower: Tensor, upper: Tensor, deadline: float,
                 config: ReluSplitConfig = ReluSplitConfig(), ball: Optional[LpBall] = None) -> None:
        self.graph = on_device_of(graph, lower)
        self.xl, self.xu = lower.reshape(1, -1), upper.reshape(1, -1)
        self.region = InputRegion(self.xl, self.xu, None if ball is None else ball.like(self.xl))
        self.layers = list(relaxed_inputs(self.graph))
        self.optimise = (config.root_intermediate_iterations, config.lr_alpha, deadline)
        self._boxes: dict[torch.dtype, dict[str, Box]] = {}

    def boxes(self, dtype: torch.dtype, deadline: Optional[float] = None) -> dict[str, Box]:
        """The root's bounds in `dtype`; with `deadline`, `DeadlinePassed` if it passes first (nothing kept:
        on cifar10_resnet the float64 ones take 17-21 s)."""
        if dtype not in self._boxes:
            graph = self.graph if dtype == self.xl.dtype else self.graph.to(self.xl.device, dtype)
            region = self.region.to(dtype)
            self._boxes[dtype] = layer_bounds(graph, region.xl, region.xu, self.layers, None, -1,
                                               None, optimise=self.optimise, ball=region.balls(1),
                                               deadline=deadline)
        return self._boxes[dtype]


def relu_split_bab(
    graph: Graph, lower: Tensor, upper: Tensor, C: Tensor, d: Tensor, deadline: float,
    is_counterexample: Callable[[Tensor], bool], config: ReluSplitConfig = ReluSplitConfig(),
    root: Optional[RootBounds] = None, tick: Optional[Callable[[int, int, float], None]] = None,
    recorder: Optional[Any] = None,
    ball: Optional[LpBall] = None,
) -> BabOutcome:
    """Decide whether some x in [lower, upper] meets every row of C·f(x) + d <= 0.

    lower/upper: (n,) flat; C (k, m); d (k,). `is_counterexample(x)` replays a candidate (flat, inside
    the box) on the reference runtime; only what it accepts is returned as `sat`. `deadline` is a
    time.monotonic() value, checked between batches (and between optimisation steps).
    unsat: no such x (the margin is the smallest proved lower bound of max_i (C_i·f(x) + d_i));
    timeout / unknown: undecided (the margin is the worst open lower bound).
    `tick(domains bounded, domains open, worst open bound)` is called after every batch (progress display).
    `recorder` (verifier.certificate.relu_recorder.ReluSplitRecorder) is told every proved domain (certificates).
    ball: the input set is ball ∩ [lower, upper] (an `LpBall` of batch 1 whose centre lies in the box);
    `root` must then have been made with the same ball.
    """
    root = root if root is not None else RootBounds(graph, lower, upper, deadline, config, ball)
    if (root.region.ball is None) != (ball is None):
        raise ValueError("the root bounds and the search must share the input set (ball or not)")
    search = _Search(graph, lower, upper, C, d, deadline, is_counterexample, config, root, ball)
    if recorder is not None:
        recorder.begin(search.layers, search.relu_of, search.C0.shape[0], config.mix_rows)
        search.recorder = recorder
    return search.run(tick)


class _Search:
    def __init__(self, graph: Graph, lower: Tensor, upper: Tensor, C: Tensor, d: Tensor, deadline: float,
                 is_counterexample: Callable[[Tensor], bool], config: ReluSplitConfig, root: RootBounds,
                 ball: Optional[LpBall] = None) -> None:
        self.graph = on_device_of(graph, lower)
        self.xl, self.xu = lower.reshape(1, -1), upper.reshape(1, -1)
        self.region = InputRegion(self.xl, self.xu, None if ball is None else ball.like(self.xl))
        self.ball = self.region.ball  # None: the plain box
        self.C0, self.d0 = C.to(lower), d.to(lower)  # the clause itself (counterexample checks)
        self.C, self.d = with_convex_mixtures(self.C0, self.d0) if config.mix_rows else (self.C0, self.d0)
        self.deadline = deadline
        self.is_counterexample = is_counterexample
        self.config = config
        relaxed = relaxed_inputs(self.graph)
        self.unsupported = sorted({c.op for cs in relaxed.values() for c in cs if c.op != "relu"})
        self.layers = list(relaxed)  # relu input nodes, topological order
        self.relu_of = {c.name: name for name, cs in relaxed.items() for c in cs}  # relu -> its input
        self.domains = 0
        self.proved = math.inf  # smallest margin of a proved domain
        self.stuck_worst = math.inf  # smallest bound of a domain given up as stuck
        self.stuck = 0  # open domains without an unstable neuron left
        self.found: Optional[Tensor] = None  # a counterexample that replayed
        self.gen = torch.Generator().manual_seed(config.seed)  # random attack starts
        self.root = root
        self.began, self.attack_seconds = time.monotonic(), 0.0  # the domain attack's share of the time
        self.recorder: Optional[Any] = None  # told every proved domain (certificates), when set
        self._allow: Optional[Allowance] = None  # the root box's margin allowances (see _allowance)
        self.recheck_seconds = 0.0  # the float64 recheck's last measured seconds a domain (see _recheck64)

    def _allowance(self) -> Allowance:
        """The root box's allowances for the clause's rows: every domain lies inside the root box, so its
        float32 error bound holds for each (mixtures of rows err no more than the worst row)."""
        if self._allow is None:
            self._allow = allowance(self.graph, self.xl, self.xu, self.C0, self.config.semantics,
                                    self.root.boxes(self.xl.dtype))
        return self._allow

    # --- the loop -------------------------------------------------------------------------------

    def run(self, tick: Optional[Callable[[int, int, float], None]] = None) -> BabOutcome:
        if self.unsupported:
            return BabOutcome("unknown", None, -math.inf, 0,
                              f"relu splitting cannot branch on {', '.join(self.unsupported)} nodes")
        if not self.layers:
            return BabOutcome("unknown", None, -math.inf, 0, "no relu to split on")
        if self.C0.shape[0] == 0:  # the clause always holds: any point of the box is a counterexample
            centre = self.region.centre()
            if self.is_counterexample(centre):
                return BabOutcome("sat", centre, -math.inf, 0)
            return BabOutcome("unknown", None, -math.inf, 0, "the box's centre did not replay")
        with SearchSlot(self.xl.device) as slot:
            return self._search(slot, tick)

    def _search(self, slot: SearchSlot, tick: Optional[Callable[[int, int, float], None]]) -> BabOutcome:
        """The loop: bound the deepest batch, push its open children, until none is open or time is up.
        Memory budgets take this search's share of the device (`config.memory_share`, or less while
        other searches run there: `slot`)."""
        stack = _Stack()
        stack.push(self._root())
        iterations = self.config.root_iterations
        batch = _BatchSizer(self.config.batch_size, self.deadline)
        device = self.xl.device
        max_bytes = self.config.max_frontier_bytes or frontier_budget(device, self._share(slot))
        while stack.size:
            if time.monotonic() > self.deadline:
                return BabOutcome("timeout", None, min(self.stuck_worst, stack.worst_margin()), self.domains)
            doms = stack.pop(batch.next())
            began = time.monotonic()
            try:
                with BatchPeak(device) as peak:
                    outcome, children = self._step(doms, iterations)
            except torch.OutOfMemoryError:
                stack.push(doms)  # nothing of theirs was recorded: bound them again, fewer at a time
                release_cached_memory()
                if not batch.shrink(len(doms)):
                    return BabOutcome("unknown", None, min(self.stuck_worst, stack.worst_margin()), self.domains,
                                      "out of memory while bounding a single domain")
                continue
            if iterations == self.config.iterations:  # the root's step is no guide to the others
                batch.took(len(doms), time.monotonic() - began)
                batch.fit_memory(len(doms), peak.bytes,
                                 free_bytes(device) * self._share(slot) if peak.bytes else 0.0)
            iterations = self.config.iterations
            if outcome is not None:
                return outcome
            stack.push(children)
            if tick is not None:
                tick(self.domains, stack.size, min(self.stuck_worst, stack.worst_margin()))
            if stack.size > self.config.max_frontier or stack.nbytes > max_bytes:
                return BabOutcome("unknown", None, min(self.stuck_worst, stack.worst_margin()), self.domains,
                                  f"too many open domains ({stack.size}, {stack.nbytes / 1e6:.0f} MB)")
        if self.stuck:
            return BabOutcome("unknown", None, self.stuck_worst, self.domains,
                              f"{self.stuck} domains with every relu split or stable still open")
        return BabOutcome("unsat", None, self.proved, self.domains)

    def _share(self, slot: SearchSlot) -> float:
        """The part of the device's free memory this search may count on now: its configured share, or
        less while more searches run there than that share allows for."""
        return min(self.config.memory_share, slot.share())

    def _root64(self) -> dict[str, Box]:
        """The root's pre-activation bounds recomputed in float64 (once per box), for the float64 rechecks;
        `DeadlinePassed` if the search's deadline passes first."""
        return self.root.boxes(torch.float64, self.deadline)

    def _root(self) -> _Domains:
        """The root domain, its pre-activation bounds by CROWN, CROWN's slopes and zero multipliers."""
        boxes = self.root.boxes(self.xl.dtype)
        k = self.C.shape[0]
        by_name = self.graph.by_name
        alpha = {}
        for relu, src in self.relu_of.items():
            a = default_relu_alpha(*boxes[src]).unsqueeze(1)
            alpha[relu] = a.expand((1, k) + by_name[relu].shape).clone()
        zeros = {n: torch.zeros((1, k) + by_name[n].shape, dtype=self.xl.dtype, device=self.xl.device)
                 for n in self.layers}
        signs = {n: torch.zeros_like(boxes[n][0], dtype=torch.int8) for n in self.layers}
        start = torch.full((1,), len(self.layers) - 1, dtype=torch.long, device=self.xl.device)  # all final
        return _Domains({n: boxes[n][0] for n in self.layers}, {n: boxes[n][1] for n in self.layers}, signs,
                        alpha, zeros, start, torch.full((1,), -math.inf, dtype=self.xl.dtype, device=self.xl.device))

    def _step(self, doms: _Domains, iterations: int) -> tuple[Optional[BabOutcome], _Domains]:
        """Bound a batch, drop its proved domains, look for counterexamples, split the rest."""
        b = _bound(self.graph, self.xl, self.xu, self.C, self.d, doms, self.layers, self.relu_of, self.config,
                   iterations, self.deadline, ball=self.ball)
        self.domains += len(doms)
        row_margin = b.lb + b.d  # (N, k)
        margin, best_row = row_margin.max(dim=1)
        margin = self._recheck_thin_proofs(doms, b, margin)
        margin = torch.where(b.empty, torch.full_like(margin, math.inf), margin)
        margin = torch.maximum(margin, doms.margin)  # the parent's bound holds on the child too
        proved = margin > 0
        if bool(proved.any()):
            self.proved = min(self.proved, float(margin[proved].min()))
            if self.recorder is not None:
                self.recorder.proved(doms.sign, b, proved.nonzero().flatten(), best_row)
        open_ = (~proved).nonzero().flatten()
        if open_.numel() == 0:
            return None, doms.index(open_)
        margin, best_row = margin[open_], best_row[open_]
        if time.monotonic() > self.deadline:  # no time to attack or split: they go back open, and the loop stops
            rest = doms.index(open_)
            rest.margin = margin
            return None, rest
        cex = self._attack(b.A_input[open_], best_row, margin,
                           signs={n: doms.sign[n][open_] for n in self.layers})
        if cex is not None:
            return BabOutcome("sat", cex, float(margin.min()), self.domains), doms.index(open_[:0])
        children = self._branch(doms, b, open_, best_row, margin)
        if self.found is not None:
            return BabOutcome("sat", self.found, float(margin.min()), self.domains), children.index(open_[:0])
        return None, children

    # --- counterexamples ------------------------------------------------------------------------

    def _attack(self, A_input: Tensor, best_row: Tensor, margin: Tensor, steps: Optional[int] = None,
                random_starts: int = 0, extra: Optional[Tensor] = None,
                signs: Optional[dict[str, Tensor]] = None) -> Optional[Tensor]:
        """Candidates: each open domain's minimiser of its best row's linear lower bound (over the box),
        improved by a few PGD steps for the worst domains (and from random starts); with the domains'
        split decisions (`signs`), the worst domains are also attacked inside their own region
        (`box_descent` with a penalty on violated decisions). Those meeting the clause on our graph are replayed."""
        steps = self.config.attack_steps if steps is None else steps
        a = A_input.gather(1, best_row.view(-1, 1, 1).expand(-1, 1, A_input.shape[2])).squeeze(1)
        x = torch.where(a > 0, self.xl, self.xu) if self.ball is None else self.region.minimiser(a)
        if extra is not None:
            x = torch.cat([self.region.project(extra), x])
        worst = margin.argsort()[: self.config.attack_candidates]
        starts = x[worst] if extra is None else x
        if random_starts:
            starts = torch.cat([starts, self._uniform(random_starts)])
        if steps:
            x = torch.cat([x, box_descent(self.graph, starts, self.xl, self.xu, self.C0, self.d0, steps,
                                          move=self._move())])
        started = time.monotonic()
        elapsed = started - self.began
        if signs is not None and self.config.domain_attack_steps and elapsed >= self.config.domain_attack_after \
                and self.attack_seconds <= self.config.domain_attack_share * elapsed:
            x = torch.cat([x, self._domain_attack(x[worst], worst, signs)])
            self.attack_seconds += time.monotonic() - started
        x = self.region.project(x)  # averages may leave the box by rounding
        with torch.no_grad():
            obj = clause_objective(self.graph.forward(x).reshape(x.shape[0], -1),
                                   self.C0.expand(x.shape[0], -1, -1), self.d0.expand(x.shape[0], -1))
        tried = 0
        for i in obj.argsort().tolist():
            if not bool(obj[i] <= 0) or tried >= self.config.max_replays:
                break
            tried += 1
            if self.is_counterexample(x[i]):
                return x[i]
        return None

    def _uniform(self, n: int) -> Tensor:
        return self.region.uniform(n, self.gen)

    def _move(self) -> Optional[Callable[[Tensor, Tensor, float], Tensor]]:
        """The attacks' projected step: None (box_descent's own signed step) for the plain box."""
        return None if self.ball is None else self.region.step

    def _domain_attack(self, minimisers: Tensor, worst: Tensor, signs: dict[str, Tensor]) -> Tensor:
        """Sign-gradient descent on the clause plus `domain_penalty` x the violation of each domain's split
        decisions, for the worst domains, from their bound's minimiser and random points: a narrow
        violation that box-wide attacks never reach is often exactly what a few split decisions fence
        in (e.g. a relu that is positive only near one point), and the penalty walks the search there."""
        r = self.config.domain_random_starts
        starts = torch.cat([minimisers] + [self._uniform(worst.numel()) for _ in range(r)])
        owner = worst.repeat(1 + r)
        held = {n: s[owner] for n, s in signs.items() if bool(s[owner].any())}
        return box_descent(self.graph, starts, self.xl, self.xu, self.C0, self.d0, self.config.domain_attack_steps,
                    penalty=(held, self.config.domain_penalty), homotopy=True, move=self._move())

    # --- branching ------------------------------------------------------------------------------

    def _branch(self, doms: _Domains, b: _Bounded, open_: Tensor, best_row: Tensor, margin: Tensor) -> _Domains:
        """Two children per open domain, split on the neuron chosen by `_scores` (and `_filtered_choice`)."""
        babsr, offsets = self._scores(b, open_, best_row)
        splittable = babsr.max(dim=1).values >= 0
        if not bool(splittable.all()):
            self._settle(doms, b, open_, ~splittable)  # proved there, or counted as stuck
        keep = splittable.nonzero().flatten()
        idx = open_[keep]
        parents = _Domains({n: b.boxes[n][0][idx] for n in self.layers}, {n: b.boxes[n][1][idx] for n in self.layers},
                           {n: doms.sign[n][idx] for n in self.layers},
                           {n: t[idx] for n, t in b.alpha.items()}, {n: t[idx] for n, t in b.beta.items()},
                           doms.start[idx], margin[keep])

        def locate(flat: Tensor) -> tuple[Tensor, Tensor]:
            layer = torch.bucketize(flat.contiguous(), offsets[1:].contiguous(), right=True)  # each one's layer
            return layer, flat - offsets[layer]

        if self.config.fsb_candidates > 1 and len(parents):
            flat = self._filtered_choice(parents, babsr[keep], locate)
        else:
            flat = babsr[keep].argmax(dim=1)
        return _children(parents, *locate(flat), self.layers)

    def _scores(self, b: _Bounded, open_: Tensor, best_row: Tensor) -> tuple[Tensor, Tensor]:
        """BaBSR scores (M, total neurons) of the open domains' neurons, over all layers (-1 where a
        neuron is stable or split), and each layer's offset in them.

        With a the coefficient of a relu's output in the best row's linear lower bound, l < 0 < u its
        input's bounds and b the bias of the linear layer feeding it (0 for other ops):
            intercept = max(-a, 0) * (-l u / (u - l))   -- what the chord's intercept costs the bound,
            babsr = |max(a b (s - 1), a b s) - intercept|  with s = u / (u - l), as in BaBSR.
        """
        babsr, sizes = [], [0]
        for name in self.layers:
            l, u = (t[open_].flatten(1) for t in b.boxes[name])
            A = b.A_relu[name][open_]
            a = A.gather(1, best_row.view((-1, 1) + (1,) * (A.dim() - 2)).expand((-1, 1) + A.shape[2:]))
            a = a.flatten(1)
            unstable = (l < 0) & (u > 0)
            width = torch.where(unstable, u - l, torch.ones_like(l))
            slope = u / width
            cost = a.clamp(max=0).neg() * (-l * slope)
            node = self.graph.by_name[name]
            bias = node.params["b"].flatten() if node.op == "linear" else torch.zeros_like(l[0])
            ab = a * bias
            score = (torch.maximum(ab * (slope - 1), ab * slope) - cost).abs()
            never = -torch.ones_like(score)
            tiny = 1e-9 * a.abs() * width  # ties (e.g. all zero): prefer influential, wide neurons
            babsr.append(torch.where(unstable, torch.nan_to_num(score + tiny, nan=0.0, posinf=1e30), never))
            sizes.append(score.shape[1])
        offsets = torch.tensor(sizes, device=best_row.device).cumsum(0).contiguous()
        return torch.cat(babsr, dim=1), offsets

    def _filtered_choice(self, parents: _Domains, babsr: Tensor,
                         locate: Callable[[Tensor], tuple[Tensor, Tensor]]) -> Tensor:
        """Filtered smart branching: of each domain's `fsb_candidates` top BaBSR-scored neurons, the one
        whose two children get the best worse-child bound in a quick objective pass (no refresh, no
        optimisation: the parent's bounds and parameters with the split clamped). Returns flat neuron
        indices (M,)."""
        top_score, top = babsr.topk(min(self.config.fsb_candidates, babsr.shape[1]), dim=1)  # (M, K)
        M, K2 = top.shape
        every = _Domains.cat([_children(parents, *locate(top[:, j]), self.layers) for j in range(K2)])
        n = len(every)  # K2 blocks of (M active, M inactive)
        with torch.no_grad():
            lb, _, _ = _objective(self.graph, self.xl.expand(n, -1), self.xu.expand(n, -1), self.C,
                                  {name: (every.lower[name], every.upper[name]) for name in self.layers},
                                  every.alpha, _signed_beta(every.beta, every.sign) if self.config.beta else {},
                                  ball=self.region.balls(n))
        value = (lb + self.d).max(dim=1).values.view(K2, 2, M).min(dim=1).values.T  # (M, K)
        value = torch.where(top_score >= 0, torch.nan_to_num(value, nan=-math.inf), torch.full_like(value, -math.inf))
        best = value.argmax(dim=1)
        # no candidate does better than the top BaBSR one: keep that
        best = torch.where(value.max(dim=1).values > value[:, 0], best, torch.zeros_like(best))
        return top.gather(1, best.view(-1, 1)).squeeze(1)

    def _settle(self, doms: _Domains, b: _Bounded, open_: Tensor, stuck: Tensor) -> Tensor:
        """Open domains without an unstable neuron are polytopes on which f is affine: the beta-CROWN
        bound there is the LP's Lagrangian dual, which more optimisation steps bring to the LP optimum.
        Run `settle_iterations` more on them; returns which of them got proved (the others count as
        stuck)."""
        idx = open_[stuck]
        proved = torch.zeros_like(stuck)
        if self.config.settle_iterations and self.config.beta and time.monotonic() < self.deadline:
            alpha, beta = {n: t[idx] for n, t in b.alpha.items()}, {n: t[idx] for n, t in b.beta.items()}
            mix_of = None
            if self.C0.shape[0] > 1:  # the max of several rows: also a learned convex mixture of them
                mix_of = (self.C0, self.d0)
                row = (b.lb + b.d)[idx].argmax(dim=1)

                def extend(t: Tensor) -> Tensor:
                    pick = row.view((-1, 1) + (1,) * (t.dim() - 2)).expand((-1, 1) + t.shape[2:])
                    return torch.cat([t, t.gather(1, pick)], dim=1)

                alpha, beta = {n: extend(t) for n, t in alpha.items()}, {n: extend(t) for n, t in beta.items()}
            sub = _Domains({n: b.boxes[n][0][idx] for n in self.layers}, {n: b.boxes[n][1][idx] for n in self.layers},
                           {n: doms.sign[n][idx] for n in self.layers}, alpha, beta,
                           torch.full_like(doms.start[idx], len(self.layers) - 1), doms.margin[idx])
            its = self.config.settle_iterations  # a larger step decaying 100-fold: converge, not hover
            settle = replace(self.config, lr_beta=self.config.lr_beta * 4, lr_decay=0.01 ** (1 / its))
            b2 = _bound(self.graph, self.xl, self.xu, self.C, self.d, sub, self.layers, self.relu_of, settle,
                        its, self.deadline, mix_of, primal=True, ball=self.ball)
            self.domains += idx.numel()
            margin = (b2.lb + b2.d).max(dim=1).values
            margin = self._recheck_thin_proofs(sub, b2, margin)
            margin = torch.where(b2.empty, torch.full_like(margin, math.inf), margin)
            ok = margin > 0
            if bool(ok.any()):
                self.proved = min(self.proved, float(margin[ok].min()))
            proved[stuck.nonzero().flatten()] = ok
            if self.recorder is not None and bool(ok.any()):
                self.recorder.proved(sub.sign, b2, ok.nonzero().flatten(), (b2.lb + b2.d).argmax(dim=1))
            if not bool(ok.all()):
                self.stuck_worst = min(self.stuck_worst, float(margin[~ok].min()))
            still = (~ok).nonzero().flatten()
            if still.numel() and self.found is None:
                rows = (b2.lb + b2.d).max(dim=1).indices
                self.found = self._attack(b2.A_input[still], rows[still], margin[still],
                                          steps=10 * self.config.attack_steps, random_starts=32,
                                          extra=b2.primal[still] if b2.primal is not None else None)
        else:
            self.stuck_worst = min(self.stuck_worst, float((b.lb + b.d)[idx].max(dim=1).values.min()))
        self.stuck += int(stuck.sum()) - int(proved.sum())
        return proved

    # --- float64 recheck ------------------------------------------------------------------------

    def _recheck_thin_proofs(self, doms: _Domains, b: _Bounded, margin: Tensor) -> Tensor:
        """The margins judged by `margin_check.proves`: a margin that does not prove becomes at most 0.
        Thin ones (a float32 margin within its rounding allowance of proving, or an empty domain whose
        bounds cross by less than that allowance) are redone in float64 (`_recheck64`). Where float64
        does not prove, the domain's margin becomes 0 and its `empty` flag is cleared (it stays open);
        where it does, the margin is kept."""
        if not self.layers:
            return margin
        n = margin.shape[0]
        root = self._allowance()
        allow = Allowance(root.semantic.expand(n), root.rounding.expand(n))
        proved, thin = proves(margin, allow)
        margin = torch.where(proved, margin, margin.clamp(max=0))
        if margin.dtype == torch.float64:
            return margin
        gap = torch.stack([(b.boxes[n][0] - b.boxes[n][1]).flatten(1).max(dim=1).values
                           for n in self.layers]).max(dim=0).values
        thin_empty = b.empty & (gap.double() < allow.rounding) & ~proved
        thin = (thin & ~(b.empty & ~thin_empty)) | thin_empty
        if self.config.recheck_all:
            thin = thin | proved
        if not bool(thin.any()):
            return margin
        idx = thin.nonzero().flatten()
        exact, empty = self._recheck64(idx, doms, b)
        ok = empty | proves(exact, allow.index(idx))[0]
        # agreed: keep the float margin, but never above float64's (empty: +inf, set by the caller)
        old, exact = margin[idx], exact.to(margin.dtype)
        kept = torch.where(empty, old, torch.where(old > 0, torch.minimum(old, exact), exact))
        kept = kept.clamp(min=torch.finfo(margin.dtype).tiny)
        b.empty[idx] = b.empty[idx] & empty
        return margin.index_copy(0, idx, torch.where(ok, kept, torch.zeros_like(kept)))

    def _recheck64(self, idx: Tensor, doms: _Domains, b: _Bounded) -> tuple[Tensor, Tensor]:
        """float64 margins and emptiness of the domains `idx`, redone from scratch (the root's bounds in
        float64, then CROWN with the decisions' clamps) with their float32 slopes and multipliers: in
        chunks sized by a `_BatchSizer` while time is left, a layer at a time (on cifar10_resnet one
        domain's pass takes up to 18 s, and a whole batch's ran 36 s past the deadline); those left over
        get -inf and stay open.
        (Widening the float32 boxes by each neuron's float32 error bound instead proved none of the thin
        domains on mnist_fc or cifar10_resnet: the margins are far thinner than that slack.)"""
        exact = torch.full((idx.numel(),), -math.inf, dtype=torch.float64, device=idx.device)
        empty = torch.zeros(idx.numel(), dtype=torch.bool, device=idx.device)
        # Layers before a domain's first split keep the root's float64 bounds (still sound on the domain,
        # and no decision to clamp there): domains go in order of their first split layer, so that each
        # chunk starts where its earliest one must (on mnist_fc 256x4 most thin proofs have their first
        # split in the third of four layers).
        first = self._first_split(doms, idx)
        order = torch.argsort(first, stable=True)  # a chunk idx[at:at + n] answers for positions order[at:at + n]
        idx, first = idx[order], first[order]
        # one domain first while the cost is unknown (8 at once ran 15 s past a deadline), else 8; doubling,
        # capped by what fits at the last measured cost (measured on earlier domains: it licenses no more)
        sizer = _BatchSizer(idx.numel(), self.deadline, first=8 if self.recheck_seconds > 0 else 1,
                            per_domain=self.recheck_seconds)
        g64 = self.graph.to(self.xl.device, torch.float64)
        at = 0
        while at < idx.numel() and time.monotonic() <= self.deadline:
            began, sub = time.monotonic(), idx[at:at + sizer.next()]
            n = sub.numel()
            xl, xu = self.xl.double().expand(n, -1), self.xu.double().expand(n, -1)
            balls = self.region.balls(n, like=xl)
            signs = {name: doms.sign[name][sub] for name in self.layers}
            try:
                root = {name: (lo.expand(n, *lo.shape[1:]), up.expand(n, *up.shape[1:]))
                        for name, (lo, up) in self._root64().items()}
                with torch.no_grad():
                    boxes = layer_bounds(g64, xl, xu, self.layers, root, int(first[at:at + n].min()) - 1, signs,
                                         ball=balls, deadline=self.deadline)
            except DeadlinePassed:
                break
            betas = {name: t[sub] for name, t in b.beta.items()} if self.config.beta else {}
            # b.C is (k, m) for the plain rows, (1 or N, k, m) with a learned mixture: index domains only then
            C = (b.C[sub] if b.C.dim() == 3 and b.C.shape[0] > 1 else b.C).double()
            with torch.no_grad():
                lb, _, _ = _objective(g64, xl, xu, C, boxes, {r: b.alpha[r][sub].double() for r in self.relu_of},
                                      _signed_beta(betas, signs, torch.float64), ball=balls)
            exact[order[at:at + n]] = (lb + b.d[sub].double()).max(dim=1).values
            empty[order[at:at + n]] = _empty(boxes, self.layers)
            sizer.took(n, time.monotonic() - began)
            at += n
        self.recheck_seconds = sizer.per_domain
        return exact, empty

    def _first_split(self, doms: _Domains, idx: Tensor) -> Tensor:
        """Per domain of `idx`, the index of the first layer holding one of its split decisions
        (len(self.layers) where none does)."""
        first = torch.full((idx.numel(),), len(self.layers), dtype=torch.long, device=idx.device)
        for i in reversed(range(len(self.layers))):
            has = (doms.sign[self.layers[i]][idx].flatten(1) != 0).any(dim=1)
            first = torch.where(has, torch.full_like(first, i), first)
        return first


# --- bounding ------------------------------------------------------------------------------------

def _bound(graph: Graph, xl: Tensor, xu: Tensor, C: Tensor, d: Tensor, doms: _Domains, layers: list[str],
           relu_of: dict[str, str], config: ReluSplitConfig, iterations: int, deadline: float,
           mix_of: Optional[tuple[Tensor, Tensor]] = None, primal: bool = False,
           ball: Optional[LpBall] = None) -> _Bounded:
    """Refresh the domains' pre-activation bounds, then optimise alpha/beta for the rows C·f(x) + d.

    mix_of = (C0, d0): one more row, lam·(C0 f(x) + d0) with lam = softmax(w) in the simplex optimised
    per domain along with alpha/beta (a lower bound of max_i (C0_i f(x) + d0_i) for every lam); the
    domains' alpha/beta must then hold k + 1 rows.
    primal: also average the input points minimising the Lagrangian of the best row over the second half
    of the iterations (on a domain where f is affine, this approaches the LP's minimiser: a candidate
    counterexample); returned as `primal`.
    ball: the input set is ball (batch 1) ∩ [xl, xu].
    """
    n, k = len(doms), C.shape[0]
    XL, XU = xl.expand(n, -1), xu.expand(n, -1)
    region = InputRegion(xl, xu, ball)
    balls = region.balls(n)
    with torch.no_grad():
        boxes = {name: (doms.lower[name], doms.upper[name]) for name in layers}
        if config.refresh_intermediate:
            for s in sorted(set(doms.start.tolist())):
                if s >= len(layers) - 1:
                    continue  # nothing after the newest split's layer
                idx = (doms.start == s).nonzero().flatten()
                stored = {name: (doms.lower[name][idx], doms.upper[name][idx]) for name in layers}
                new = layer_bounds(graph, XL[idx], XU[idx], layers, stored, s, None,
                                   ball=None if balls is None else balls.take(idx))
                for name in layers[s + 1:]:
                    l, u = boxes[name]
                    boxes[name] = (l.index_copy(0, idx, new[name][0]), u.index_copy(0, idx, new[name][1]))
        empty = _empty(boxes, layers)
    signs = {name: doms.sign[name] for name in layers}
    alpha = {r: a.detach().clone().requires_grad_(True) for r, a in doms.alpha.items()}
    beta = {name: t.detach().clone().requires_grad_(True) for name, t in doms.beta.items()} if config.beta else {}
    mix = {"w": torch.zeros((n, mix_of[0].shape[0]), dtype=xl.dtype, device=xl.device,
                            requires_grad=True)} if mix_of is not None else {}

    def rows() -> tuple[Tensor, Tensor]:
        if not mix:
            return C, d.expand(n, -1)
        lam = torch.softmax(mix["w"], dim=1)  # (n, k0)
        return (torch.cat([C.expand(n, -1, -1), (lam @ mix_of[0]).unsqueeze(1)], dim=1),
                torch.cat([d.expand(n, -1), (lam @ mix_of[1]).unsqueeze(1)], dim=1))

    def evaluate() -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Tensor]]:
        Ck, dk = rows()
        lb, A_input, A_relu = _objective(graph, XL, XU, Ck, boxes, alpha, _signed_beta(beta, signs), ball=balls)
        return lb + dk, Ck, dk, A_input, A_relu

    with torch.no_grad():
        best = evaluate()[0]
    best_alpha = {r: a.detach().clone() for r, a in alpha.items()}
    best_beta = {name: t.detach().clone() for name, t in beta.items()}
    best_mix = {name: t.detach().clone() for name, t in mix.items()}
    params = [(list(alpha.values()), config.lr_alpha)]
    if beta:
        params.append((list(beta.values()), config.lr_beta))
    if mix:
        params.append(([mix["w"]], config.lr_alpha))
    x_sum, x_count = torch.zeros_like(XL), 0
    if iterations > 0 and (alpha or beta or mix):
        opt = Adam(params, decay=config.lr_decay)
        for it in range(iterations + 1):
            if it and time.monotonic() > deadline:
                break
            value, _, _, A_input, _ = evaluate()
            if primal and it >= iterations // 2:  # ergodic average of the Lagrangian's minimisers
                row = value.detach().argmax(dim=1) if not mix else torch.full_like(value[:, 0], k, dtype=torch.long)
                a = A_input.detach().flatten(2).expand(n, -1, -1)
                a = a.gather(1, row.view(-1, 1, 1).expand(-1, 1, a.shape[2])).squeeze(1)
                x_sum = x_sum + (torch.where(a > 0, XL, torch.where(a < 0, XU, (XL + XU) / 2)) if ball is None
                                 else region.minimiser(a))
                x_count += 1
            better = _keep_best(best, (best_alpha, best_beta), value.detach(), (alpha, beta))
            if mix:
                best_mix["w"].copy_(torch.where(better[:, -1:], mix["w"].detach(), best_mix["w"]))
            if it == iterations:
                break
            opt.zero_grad()
            (-value.sum()).backward()
            opt.step()
            with torch.no_grad():
                for a in alpha.values():
                    a.clamp_(0.0, 1.0)
                for t in beta.values():
                    t.clamp_(min=0.0)
    with torch.no_grad():
        alpha, beta, mix = best_alpha, best_beta, best_mix
        value, Ck, dk, A_input, A_relu = evaluate()
        lb = torch.maximum(value, best) - dk  # the same per row up to rounding; both are sound
    if not config.beta:
        best_beta = {name: t.detach() for name, t in doms.beta.items()}
    A_by_input: dict[str, Tensor] = {}
    for relu, A in A_relu.items():
        src = relu_of[relu]
        A_by_input[src] = A if src not in A_by_input else A_by_input[src] + A
    for name in layers:
        if name not in A_by_input:
            A_by_input[name] = torch.zeros((n, Ck.shape[-2]) + boxes[name][0].shape[1:], dtype=xl.dtype,
                                           device=xl.device)
    return _Bounded(lb, Ck, dk, boxes, best_alpha, best_beta, A_input.flatten(2).expand(n, -1, -1), A_by_input,
                    empty, x_sum / x_count if x_count else None,
                    torch.softmax(best_mix["w"], dim=1) if mix else None)


def _keep_best(best_lb: Tensor, best: tuple[dict[str, Tensor], ...], lb: Tensor,
               current: tuple[dict[str, Tensor], ...]) -> Tensor:
    """Per (domain, row), remember the bound and parameters of the best iterate so far (in place)."""
    better = lb > best_lb  # (N, k)
    best_lb.copy_(torch.where(better, lb, best_lb))
    for best_params, params in zip(best, current):
        for name, p in params.items():
            mask = better.reshape(better.shape + (1,) * (p.dim() - 2))
            best_params[name].copy_(torch.where(mask, p.detach(), best_params[name]))
    return better


def _signed_beta(beta: dict[str, Tensor], signs: dict[str, Tensor], dtype: Optional[torch.dtype] = None,
                 ) -> dict[str, Tensor]:
    """beta_j * s_j per relu input node, (N, k, *shape), zero where a neuron is not split."""
    out = {}
    for name, t in beta.items():
        t = t if dtype is None else t.to(dtype)
        out[name] = t * signs[name].to(t.dtype).unsqueeze(1)
    return out


def _objective(graph: Graph, xl: Tensor, xu: Tensor, C: Tensor, boxes: dict[str, Box],
               alpha: dict[str, Tensor], beta: dict[str, Tensor],
               ball: Optional[LpBall] = None) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """Lower bounds (N, k) of C·f(x) over the domains, by one backward pass (differentiable in alpha
    and beta), with the coefficients on the input (N or 1, k, *input_shape) and on each relu's output.

    beta holds beta_j * s_j per relu input node: the pass bounds C·f(x) - sum_j beta_j s_j z_j(x), a
    lower bound of C·f(x) wherever every decision s_j z_j >= 0 holds. With `ball` (one per domain) the
    input set is ball ∩ box, and the input's coefficients are concretised over both.
    """
    by_name = graph.by_name
    box = input_box(graph, xl, xu, ball)
    pending: dict[str, Tensor] = {graph.output_name: objective_matrix(graph, C, box[0])}
    bias: Tensor | float = 0.0
    A_relu: dict[str, Tensor] = {}
    A_input: Optional[Tensor] = None
    for node in reversed(graph.nodes):
        A = pending.pop(node.name, None)
        if A is None:
            continue
        if node.name in beta:
            A = A - beta[node.name]
        if node.op == "input":
            A_input = A
            continue
        if node.op == "relu":
            A_relu[node.name] = A
        rule = rule_for(node)
        bounds = (None,) * len(node.inputs) if rule.affine else tuple(boxes.get(i) for i in node.inputs)
        As, node_bias = rule.backward(node, A, bounds, alpha.get(node.name))
        bias = bias + node_bias
        for name, A_in in zip(node.inputs, As):
            if A_in is not None:
                A_in = A_in.reshape(A_in.shape[:2] + by_name[name].shape)
                pending[name] = A_in if name not in pending else pending[name] + A_in
    n, k = xl.shape[0], C.shape[-2]
    lb = torch.zeros((n, k), dtype=xl.dtype, device=xl.device) + bias
    if A_input is None:
        A_input = torch.zeros((1, k) + graph.input_shape, dtype=xl.dtype, device=xl.device)
    else:
        lb = lb + concretize_lower(A_input, box)
    for relu in A_relu:
        A_relu[relu] = A_relu[relu].expand((n,) + A_relu[relu].shape[1:])
    return lb, A_input, A_relu


def _empty(boxes: dict[str, Box], layers: list[str]) -> Tensor:
    """(N,) domains whose bounds cross somewhere (no input meets their decisions)."""
    first = boxes[layers[0]][0]
    out = torch.zeros(first.shape[0], dtype=torch.bool, device=first.device)
    for name in layers:
        l, u = boxes[name]
        out |= (l > u).flatten(1).any(dim=1)
    return out


def _children(parents: _Domains, layer: Tensor, neuron: Tensor, layers: list[str]) -> _Domains:
    """Per parent, its active child (first half) and inactive child (second half)."""
    n = len(parents)
    kids = _Domains.cat([parents, parents]).map(lambda t: t.clone())
    rows = torch.arange(n, device=layer.device)
    for li, name in enumerate(layers):
        at = layer == li
        if not bool(at.any()):
            continue
        r, c = rows[at], neuron[at]
        lo, up, sg = (t.view(2 * n, -1) for t in (kids.lower[name], kids.upper[name], kids.sign[name]))
        lo[r, c] = 0.0  # active: z >= 0 (its lower bound was < 0)
        up[r + n, c] = 0.0  # inactive: z <= 0 (its upper bound was > 0)
        sg[r, c] = 1
        sg[r + n, c] = -1
        beta = kids.beta[name].view(2 * n, kids.beta[name].shape[1], -1)
        beta[torch.cat([r, r + n]), :, torch.cat([c, c])] = 0.0
    kids.start = torch.cat([layer, layer])
    return kids
