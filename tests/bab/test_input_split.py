"""Input-split branch and bound against the exact answer on tiny random ReLU networks.

Every instance is built so that the exact minimum over the box of g(x) = max_i (C_i·f(x) + d_i) is a
chosen s = ±delta: negative means a violating point exists (the oracle hands one back), positive means
none does. The thresholds sit close to the true optimum, so these are the hard instances for BaB.

Soundness (must never fail): no `unsat` when a violating point exists, and every `sat` comes with a
point that `is_counterexample` (which evaluates f in float64 and tells the truth) accepted.
Completeness (tiny nets, generous deadlines): the expected verdict, or `timeout` where that is allowed.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tests.bab.nets import Net, clause_value, exact_min, local_min, random_net
from verifier.bounds.margin_check import allowance
from verifier.bab import input_split
from verifier.bab.input_split import (
    BabOutcome, InputSplitConfig, InputSplitSearch, clip_boxes, input_split_bab, with_convex_mixtures,
)

# An example solves an exact LP enumeration and runs BaB (up to DEADLINE seconds when it times out):
# a fraction of the profile's example count (40 by default, 800 under --hypothesis-profile=thorough).
some = settings(deadline=None, max_examples=max(10, settings.default.max_examples * 2 // 5))
DEADLINE = 2.0


@dataclass(frozen=True)
class Instance:
    net: Net
    lo: np.ndarray
    hi: np.ndarray
    C: np.ndarray
    d: np.ndarray
    optimum: float  # exact min over the box of max_i (C_i f(x) + d_i), = sign * delta
    witness: np.ndarray  # a point attaining it

    @property
    def violated(self) -> bool:
        return self.optimum < 0

    def value(self, x: np.ndarray) -> float:
        return float(clause_value(self.net, self.C, self.d, x))


def _f32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def make_instance(seed: int, n_in: int, widths: list[int], n_out: int, k: int, sign: int, rel: float,
                  bias_scale: float = 0.5, float32_exact: bool = False) -> Instance:
    """A random net, box and rows; d shifted so that the exact optimum is sign * rel * (spread of g).

    float32_exact: every number (weights, box, C, d) is representable in float32, so a float32 graph
    computes the same function the float64 truth evaluates."""
    rng = np.random.default_rng(seed)
    net = random_net(rng, n_in, widths, n_out, bias_scale)
    lo = rng.uniform(-1.0, 0.5, n_in)
    hi = lo + rng.uniform(0.05, 1.5, n_in)
    C, d = rng.normal(size=(k, n_out)), rng.normal(size=k)
    if float32_exact:
        net = Net(tuple((_f32(W), _f32(b)) for W, b in net.layers))
        lo, hi, C = _f32(lo), _f32(hi), _f32(C)
    opt, _ = exact_min(net, lo, hi, C, d)
    sample = lo + rng.uniform(size=(512, n_in)) * (hi - lo)
    spread = float(np.ptp(clause_value(net, C, d, sample))) + 1e-3
    d = d - opt + sign * rel * spread
    if float32_exact:
        d = _f32(d)
    opt, witness = exact_min(net, lo, hi, C, d)
    return Instance(net, lo, hi, C, d, opt, witness)


@st.composite
def instances(draw: st.DrawFn, min_rows: int = 1, max_rows: int = 4, rels=(1e-1, 1e-2, 1e-3, 1e-6),
              float32_exact: bool = False) -> Instance:
    depth = draw(st.integers(1, 2))
    return make_instance(
        seed=draw(st.integers(0, 2**32 - 1)), n_in=draw(st.integers(1, 3)),
        widths=[draw(st.integers(2, 6)) for _ in range(depth)], n_out=draw(st.integers(1, 3)),
        k=draw(st.integers(min_rows, max_rows)), sign=draw(st.sampled_from([-1, 1])),
        rel=draw(st.sampled_from(rels)), bias_scale=draw(st.sampled_from([0.1, 0.5, 1.0])),
        float32_exact=float32_exact)


_options = dict(
    batch_size=st.sampled_from([2048, 5]),
    mix_rows=st.booleans(),
    branching=st.sampled_from(["coefficient", "width"]),
    intermediate=st.sampled_from(["crown", "forward", "alpha"]),
    dual_steps=st.sampled_from([0, 5, 30]),
    clip=st.booleans(),
    samples_per_step=st.sampled_from([0, 64, 4096]),
    alpha_iterations=st.sampled_from([2, 10]),
)
_known = InputSplitConfig.__dataclass_fields__  # options added later join in as they appear
configs = st.builds(InputSplitConfig, **{k: v for k, v in _options.items() if k in _known})


@dataclass
class Replay:
    """The `is_counterexample` callback: the float64 truth, with every call recorded."""

    inst: Instance
    calls: int = 0
    accepted: list[np.ndarray] = field(default_factory=list)

    def __call__(self, x: torch.Tensor) -> bool:
        self.calls += 1
        xs = x.detach().cpu().double().numpy().reshape(-1)
        ok = bool(np.all(xs >= self.inst.lo) and np.all(xs <= self.inst.hi) and self.inst.value(xs) <= 0)
        if ok:
            self.accepted.append(xs)
        return ok


def record(inst: Instance, out: BabOutcome) -> None:
    """Hypothesis statistics (--hypothesis-show-statistics): how often each case and verdict came up."""
    event(f"{'violated' if inst.violated else 'holds'}: {out.verdict}")


def run_bab(inst: Instance, config: InputSplitConfig = InputSplitConfig(), dtype: torch.dtype = torch.float64,
            deadline: float = DEADLINE) -> tuple[BabOutcome, Replay]:
    replay = Replay(inst)
    t = lambda a: torch.as_tensor(a, dtype=dtype)  # noqa: E731
    out = input_split_bab(inst.net.graph(dtype), t(inst.lo), t(inst.hi), t(inst.C), t(inst.d),
                          time.monotonic() + deadline, replay, config)
    return out, replay


def check_sound(inst: Instance, out: BabOutcome, replay: Replay) -> None:
    """The two properties no configuration, dtype or deadline may ever break."""
    assert out.verdict in ("sat", "unsat", "timeout", "unknown")
    if inst.violated:
        assert inst.value(inst.witness) <= inst.optimum / 2 < 0  # the oracle's witness really violates
        assert out.verdict != "unsat", (
            f"unsat claimed (margin {out.margin:.3g}, {out.domains} boxes) but f violates by {inst.optimum:.3g} "
            f"at {inst.witness.tolist()}")
    if out.verdict == "sat":
        x = out.counterexample.detach().cpu().double().numpy().reshape(-1)
        assert replay.accepted and any(np.array_equal(x, a) for a in replay.accepted), \
            "sat returned with a point is_counterexample never accepted"
        assert np.all(x >= inst.lo) and np.all(x <= inst.hi) and inst.value(x) <= 0
    if out.verdict == "unsat":
        assert out.margin > 0 and not inst.violated
        # independent of the oracle: a local search finds no violating point either
        assert local_min(inst.net, inst.lo, inst.hi, inst.C, inst.d, starts=16, steps=60)[0] > 0


@some
@given(instances(), configs)
def test_verdicts_agree_with_the_exact_answer(inst: Instance, config: InputSplitConfig) -> None:
    out, replay = run_bab(inst, config)
    record(inst, out)
    check_sound(inst, out, replay)
    if inst.violated:
        assert out.verdict in ("sat", "timeout"), out
    else:
        assert not replay.accepted
        assert out.verdict in ("unsat", "timeout"), out


@some
@given(instances(min_rows=2, max_rows=4))
def test_convex_mixtures_never_refute_a_satisfiable_conjunction(inst: Instance) -> None:
    """Conjunctions of 2-4 rows, near their exact optimum, with the mixture rows added (the default)."""
    out, replay = run_bab(inst, InputSplitConfig(mix_rows=True))
    record(inst, out)
    check_sound(inst, out, replay)
    assert out.verdict in (("sat", "timeout") if inst.violated else ("unsat", "timeout")), out


@some
@given(instances(rels=(1e-1, 1e-2, 1e-3, 1e-4), float32_exact=True), configs)
def test_float32_bab_is_sound_on_moderate_magnitudes(inst: Instance, config: InputSplitConfig) -> None:
    """The float32 path (thin proofs re-done in float64) against the float64 truth on the same numbers."""
    out, replay = run_bab(inst, config, dtype=torch.float32)
    record(inst, out)
    check_sound(inst, out, replay)


@settings(max_examples=max(20, settings.default.max_examples), deadline=None)
@given(st.integers(2, 5), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_mixture_rows_never_exceed_the_largest_row(k: int, m: int, seed: int) -> None:
    """Every added row is a convex combination: at any y it is <= max over the original rows, so a point
    meeting all the original rows meets all the added ones."""
    gen = torch.Generator().manual_seed(seed)
    C, d = torch.randn(k, m, generator=gen, dtype=torch.float64), torch.randn(k, generator=gen, dtype=torch.float64)
    Cm, dm = with_convex_mixtures(C, d)
    assert Cm.shape == (k + k * (k - 1) // 2 + (k > 2), m) and torch.equal(Cm[:k], C) and torch.equal(dm[:k], d)
    y = torch.randn(256, m, generator=gen, dtype=torch.float64) * 10
    rows, mixed = y @ C.T + d, y @ Cm.T + dm
    assert (mixed.amax(1) <= rows.amax(1) + 1e-12 * (1 + rows.abs().amax(1))).all()


def test_single_rows_are_left_alone() -> None:
    C, d = torch.ones(1, 3, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    assert with_convex_mixtures(C, d) == (C, d)


# Completeness on fixed instances: with a generous deadline tiny nets are decided exactly.
FIXED = [(seed, n_in, widths, n_out, k) for seed, (n_in, widths, n_out, k) in enumerate([
    (1, [4], 1, 1), (2, [5], 2, 2), (3, [3, 4], 2, 3), (2, [6, 6], 3, 4), (3, [6], 1, 1),
    (1, [2, 5], 3, 2), (2, [4, 3], 1, 2), (3, [5, 2], 3, 4),
])]


@pytest.mark.parametrize("sign", [-1, 1])
@pytest.mark.parametrize("seed,n_in,widths,n_out,k", FIXED)
def test_fixed_instances_are_decided(seed: int, n_in: int, widths: list[int], n_out: int, k: int, sign: int) -> None:
    inst = make_instance(seed, n_in, widths, n_out, k, sign, 1e-2)
    out, replay = run_bab(inst, deadline=20.0)
    check_sound(inst, out, replay)
    assert out.verdict == ("sat" if sign < 0 else "unsat"), out


def test_empty_conjunction_is_met_anywhere() -> None:
    """A clause with no rows (VNN-LIB: no output atoms) holds everywhere: any point is a counterexample."""
    inst = make_instance(0, 2, [3], 2, 1, -1, 0.1)
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    seen = []
    out = input_split_bab(inst.net.graph(), t(inst.lo), t(inst.hi), t(np.zeros((0, 2))), t(np.zeros(0)),
                          time.monotonic() + 5, lambda x: seen.append(x) or True)
    assert out.verdict == "sat" and len(seen) == 1
    x = out.counterexample.numpy()
    assert np.all(x >= inst.lo) and np.all(x <= inst.hi)


def test_a_point_box_is_decided_at_once() -> None:
    """Zero width in every dim: the bound is exact, so it is proved or its centre is the counterexample."""
    for sign in (-1, 1):
        inst = make_instance(4, 2, [4], 2, 2, sign, 0.1)
        x = inst.witness
        value = inst.value(x)
        point = Instance(inst.net, x, x, inst.C, inst.d - value + sign * 0.05, sign * 0.05, x)
        replay = Replay(point)
        t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
        out = input_split_bab(point.net.graph(), t(x), t(x), t(point.C), t(point.d), time.monotonic() + 5, replay)
        assert out.verdict == ("sat" if sign < 0 else "unsat"), out
        assert out.domains == 1


# Reported: float32 proofs whose margin exceeded recheck_below (then an absolute 1e-3) were never re-done in
# float64, but float32 rounding of a bound grows with the magnitudes in it (outputs ~3e4 here; inputs
# ~1e4 in the second case, where the convex-dual margin cancels A·x terms of that size). Both are
# instances whose exact optimum is a violation, proved "unsat" in float32.
FLOAT32_TRAPS = {
    "large outputs": (
        [([[18905.337890625, -52274.84375], [-41306.35546875, -244146.734375]], [179970.734375, 114416.5859375]),
         ([[-0.32542282342910767, 0.7738065719604492]], [0.28121066093444824])],
        [0.0, 0.0], [1.0, 1.0], [[-1.0]], [29970.001953125]),  # y >= thr; y(0, 0) - thr = +8.8e-4
    "inputs far from 0 (dual margin)": (
        [([[-0.3148542046546936, 0.992975115776062], [-1.035521149635315, 0.32719936966896057],
           [-0.013603480532765388, 0.5103802680969238]], [-6781.62548828125, 7083.35400390625, -4967.00927734375]),
         ([[-0.6447925567626953, -0.24148206412792206, 0.6012232303619385],
           [-0.32524535059928894, 0.8785455226898193, -0.2917208969593048],
           [-0.19907473027706146, 0.5747182369232178, 0.12358300387859344]],
          [0.558103084564209, 0.3766072690486908, -0.40393635630607605])],
        [9999.326171875, 10000.212890625], [9999.6708984375, 10001.20703125],
        [[-1.616318941116333, -0.6319480538368225, 0.885076105594635],
         [-1.0644431114196777, -1.69855797290802, -0.06928407400846481]],
        [1.740947961807251, 2.4820516109466553]),  # both rows -1e-3 or less at the corner lo
}



@pytest.mark.parametrize("name", sorted(FLOAT32_TRAPS))
def test_float32_never_proves_an_instance_whose_exact_optimum_violates(name: str) -> None:
    layers, lo, hi, C, d = FLOAT32_TRAPS[name]
    net = Net(tuple((np.array(W), np.array(b)) for W, b in layers))
    lo, hi, C, d = map(np.array, (lo, hi, C, d))
    opt, witness = exact_min(net, lo, hi, C, d)
    inst = Instance(net, lo, hi, C, d, opt, witness)
    assert inst.violated and inst.value(witness) < -5e-4
    out, replay = run_bab(inst, dtype=torch.float32, deadline=10.0)
    check_sound(inst, out, replay)


def test_out_of_memory_halves_the_batch_and_carries_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch that runs out of memory goes back to the frontier and is bounded again in halves; the
    verdict is that of an unconstrained run. Out of memory on a single box ends in `unknown`, not a crash."""
    for sign in (-1, 1):
        inst = make_instance(2, 6, [6], 3, 4, sign, 1e-2)
        expected, _ = run_bab(inst, InputSplitConfig(samples_per_step=0, objective_alpha=0), deadline=20.0)
        assert expected.verdict == ("sat" if sign < 0 else "unsat") and expected.domains > 8
        real, sizes = input_split._margins, []

        def fails_above_four(graph, l, u, C, d, config, *deadline):  # type: ignore[no-untyped-def]
            sizes.append(l.shape[0])
            if l.shape[0] > 4:
                raise torch.OutOfMemoryError("test: pretend the device is full")
            return real(graph, l, u, C, d, config, *deadline)

        monkeypatch.setattr(input_split, "_margins", fails_above_four)
        out, replay = run_bab(inst, InputSplitConfig(samples_per_step=0, objective_alpha=0), deadline=20.0)
        monkeypatch.setattr(input_split, "_margins", real)
        check_sound(inst, out, replay)
        assert out.verdict == expected.verdict
        first_failure = next(i for i, n in enumerate(sizes) if n > 4)
        assert sizes[first_failure + 1:] and max(sizes[first_failure + 1:]) <= 4

    def always_fails(graph, l, u, C, d, config, *deadline):  # type: ignore[no-untyped-def]
        raise torch.OutOfMemoryError("test: pretend the device is full")

    monkeypatch.setattr(input_split, "_margins", always_fails)
    out, _ = run_bab(make_instance(2, 6, [6], 3, 4, 1, 1e-2), deadline=20.0)
    assert out.verdict == "unknown" and "out of memory" in out.message


def test_tick_reports_after_every_batch() -> None:
    """The progress hook runs once per bounded batch, with the frontier and bound readable from outside."""
    inst = make_instance(3, 3, [3, 4], 2, 3, 1, 1e-2)
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    search = input_split.InputSplitSearch(inst.net.graph(), t(inst.lo), t(inst.hi), t(inst.C), t(inst.d),
                                          Replay(inst), InputSplitConfig(batch_size=8))
    seen: list[tuple[int, int, float]] = []

    def tick() -> None:
        seen.append((search.domains, search.open_boxes, search.bound))
        centres = ((search.L + search.U) / 2).numpy()  # the bound holds on every open box, so at its centre
        assert all(search.bound <= inst.value(c) + 1e-9 for c in centres[:50])

    out = search.run(time.monotonic() + 20, tick)
    assert out is not None and out.verdict == "unsat"
    assert len(seen) >= 2 and seen[-1][0] == out.domains and seen[-1][1] == 0
    assert [s[0] for s in seen] == sorted(s[0] for s in seen)


@some
@given(inst=instances(), dtype=st.sampled_from([torch.float64, torch.float32]), seed=st.integers(0, 2**16))
def test_clipping_keeps_every_violating_point(inst: Instance, dtype: torch.dtype, seed: int) -> None:
    """Clipping a box to where every row's linear lower bound is <= 0 (with its rounding slack) never
    cuts off a point that violates; an emptied box holds no violating point at all."""
    rng = np.random.default_rng(seed)
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype)  # noqa: E731
    C, d = with_convex_mixtures(t(inst.C), t(inst.d))
    # a few sub-boxes of the instance's box, the witness's own among them
    lo = np.stack([inst.lo] + [inst.lo + rng.uniform(0, 0.5, inst.lo.shape) * (inst.hi - inst.lo) for _ in range(3)])
    hi = np.minimum(lo + (inst.hi - inst.lo) * rng.uniform(0.2, 1.0, lo.shape), inst.hi)
    hi[0] = inst.hi
    l, u = t(lo), t(hi)
    lo, hi = l.double().numpy(), u.double().numpy()  # the boxes as the dtype holds them
    graph = inst.net.graph(dtype)
    _, A, rows = input_split._margins(graph, l, u, C, d, InputSplitConfig())
    slack = input_split.clip_slack(allowance(graph, l, u, t(inst.C), "real")).to(l)[:, None, None]
    l2, u2, empty = clip_boxes(l, u, A, rows, slack)
    assert bool(((l2 >= l) & (u2 <= u)).all())
    for b in range(len(lo)):
        pts = lo[b] + rng.uniform(size=(400, inst.lo.size)) * (hi[b] - lo[b])
        pts = np.concatenate([pts, [np.clip(inst.witness, lo[b], hi[b])]])
        bad = pts[np.array([inst.value(p) <= 0 for p in pts])]
        if not len(bad):
            continue
        assert not bool(empty[b]), f"box {b} emptied but holds {len(bad)} violating points"
        lo2, hi2 = l2[b].double().numpy(), u2[b].double().numpy()
        assert np.all(bad >= lo2 - 1e-12) and np.all(bad <= hi2 + 1e-12), "a violating point was clipped off"


@some
@given(inst=instances(), seed=st.integers(0, 2**16))
def test_optimised_objective_margins_are_sound_and_no_looser(inst: Instance, seed: int) -> None:
    """Optimising the objective's slopes on open boxes never loosens a box's margin, and the margin
    still lies below the clause's value at every point of the box (corners and the witness too)."""
    rng = np.random.default_rng(seed)
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)  # noqa: E731
    C, d = with_convex_mixtures(t(inst.C), t(inst.d))
    lo = np.stack([inst.lo] + [inst.lo + rng.uniform(0, 0.5, inst.lo.shape) * (inst.hi - inst.lo) for _ in range(3)])
    hi = np.minimum(lo + (inst.hi - inst.lo) * rng.uniform(0.2, 1.0, lo.shape), inst.hi)
    hi[0] = inst.hi
    graph = inst.net.graph()
    plain, _, _ = input_split._margins(graph, t(lo), t(hi), C, d, InputSplitConfig(objective_alpha=0))
    tight, A, rows = input_split._margins(graph, t(lo), t(hi), C, d, InputSplitConfig(objective_alpha=5))
    assert bool((tight >= plain - 1e-9).all())
    assert bool((tight >= rows.max(1).values - 1e-9).all())
    for b in range(len(lo)):
        corners = np.where(rng.uniform(size=(64, inst.lo.size)) < 0.5, lo[b], hi[b])
        pts = np.concatenate([lo[b] + rng.uniform(size=(200, inst.lo.size)) * (hi[b] - lo[b]), corners,
                              [np.clip(inst.witness, lo[b], hi[b])]])
        worst = min(inst.value(p) for p in pts)
        assert worst >= float(tight[b]) - 1e-7, f"box {b}: margin {float(tight[b])} above a value {worst}"
        # each row's linear lower bound holds at the points too
        x = t(pts)
        lin = rows[b] + ((A[b] @ x.T).T - (A[b].clamp(min=0) @ t(lo[b]) + A[b].clamp(max=0) @ t(hi[b])))
        vals = (graph.forward(x).reshape(len(pts), -1) @ C.T + d)
        assert bool((vals >= lin - 1e-7).all())


@some
@given(inst=instances(), seed=st.integers(0, 2**16))
def test_float64_recheck_with_reused_float32_slopes_is_sound(inst: Instance, seed: int) -> None:
    """The thin-proof recheck reuses the slopes a float32 pass optimised, in a float64 pass on float64
    intermediate bounds: the margin it gives (and what the recheck keeps) lies below the clause's value
    at sampled points, corners and the witness of every box."""
    rng = np.random.default_rng(seed)
    f32 = lambda a: np.asarray(a, np.float32).astype(np.float64)  # noqa: E731 (the numbers float32 holds exactly)
    net = Net(tuple((f32(W), f32(b)) for W, b in inst.net.layers))  # the real network the float32 graph is
    C, d = with_convex_mixtures(torch.as_tensor(f32(inst.C)), torch.as_tensor(f32(inst.d)))
    C, d = C.float().double(), d.float().double()
    lo = np.stack([inst.lo] + [inst.lo + rng.uniform(0, 0.5, inst.lo.shape) * (inst.hi - inst.lo) for _ in range(3)])
    lo, hi = f32(lo), f32(np.minimum(lo + (inst.hi - inst.lo) * rng.uniform(0.05, 1.0, lo.shape), inst.hi))
    hi = np.maximum(lo, hi)
    value = lambda x: float(np.max(C.numpy() @ net(x[None])[0] + d.numpy()))  # noqa: E731
    config = InputSplitConfig(objective_alpha=5)
    g32 = net.graph(torch.float32)
    l32, u32 = torch.as_tensor(lo, dtype=torch.float32), torch.as_tensor(hi, dtype=torch.float32)
    sink: dict = {}
    m32, _, _ = input_split._margins(g32, l32, u32, C.float(), d.float(), config, sink=sink)
    every = torch.ones(len(lo), dtype=torch.bool)
    given = input_split._slopes_of(sink, every)
    allow = allowance(g32, l32, u32, C.float(), "real", sink.get("boxes"))
    kept = input_split._recheck_thin_proofs(g32, l32, u32, C.float(), d.float(), m32, config, allow, sink)
    reused = None
    event("float32 slopes to reuse" if given is not None else "CROWN closed or left every box")
    if given is not None:
        reused, _, _ = input_split._margins(net.graph(), l32.double(), u32.double(), C, d, config, slopes=given)
    for b in range(len(lo)):
        corners = np.where(rng.uniform(size=(64, inst.lo.size)) < 0.5, lo[b], hi[b])
        pts = np.concatenate([lo[b] + rng.uniform(size=(200, inst.lo.size)) * (hi[b] - lo[b]), corners,
                              [np.clip(inst.witness, lo[b], hi[b])]])
        worst = min(value(p) for p in pts)
        assert worst > 0 or not float(kept[b]) > 0, f"box {b}: proved with margin {float(kept[b])}, value {worst}"
        if reused is not None:  # a float64 bound: below the value up to float64 rounding
            assert worst >= float(reused[b]) - 1e-9, f"box {b}: reused-slope margin {float(reused[b])} > {worst}"


def test_sampled_points_lie_in_open_boxes_drawn_by_volume() -> None:
    """The counterexample candidates come from the frontier, a box by its volume, faces included."""
    inst = make_instance(3, 2, [4], 2, 2, 1, 0.5)
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    search = InputSplitSearch(inst.net.graph(), t(inst.lo), t(inst.hi), t(inst.C), t(inst.d), Replay(inst),
                              InputSplitConfig(samples_per_step=4000))
    w = t(inst.hi - inst.lo)
    big = (t(inst.lo), t(inst.lo) + w * 0.5)  # a quarter of the root's area
    small = (t(inst.hi) - w * 0.05, t(inst.hi))  # 1/400 of it
    search.L, search.U = torch.stack([big[0], small[0]]), torch.stack([big[1], small[1]])
    x = search._candidates(search.L[:0], search.U[:0])
    assert x.shape == (4000, 2)
    in_big = ((x >= big[0]) & (x <= big[1])).all(1)
    in_small = ((x >= small[0]) & (x <= small[1])).all(1)
    assert bool((in_big | in_small).all())
    assert 3600 < int(in_big.sum()) < 4000 and int(in_small.sum()) > 0  # 100 : 1 by area
    on_face = ((x == big[0]) | (x == big[1])).any(1) & in_big
    assert int(on_face.sum()) > 1000  # about 1 - 0.5^2 of them touch a face


def test_boxes_inherit_their_parent_s_allowance_and_refresh_it_only_to_prove(monkeypatch: pytest.MonkeyPatch) -> None:
    """A parent's margin allowance holds over its children's boxes, so it is kept; the error bound is
    computed afresh only for the root (none inherited) and for positive margins the inherited one does
    not let prove, and then the smaller of the two is kept. Open boxes (margin <= 0) are not recomputed."""
    inst = make_instance(5, 3, [6, 6], 2, 2, 1, 0.1)
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    search = InputSplitSearch(inst.net.graph(), t(inst.lo), t(inst.hi), t(inst.C), t(inst.d), Replay(inst),
                              InputSplitConfig(semantics="float32"))
    l = torch.stack([t(inst.lo)] * 4)
    u = torch.stack([t(inst.hi)] * 4)
    fresh = allowance(search.graph, l[:1], u[:1], search.C0, "float32")
    e = float(fresh.semantic[0] + fresh.rounding[0])
    calls: list[int] = []
    real = input_split.allowance

    def counting(graph, lo, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(lo.shape[0])
        return real(graph, lo, *args, **kwargs)

    monkeypatch.setattr(input_split, "allowance", counting)
    # the root: nothing inherited, so every box's bound is computed
    unknown = torch.full((4, 2), math.inf, dtype=torch.float64)
    got = search._allowance(l, u, torch.tensor([-1.0, 0.0, 1.0, 2.0]), unknown, {})
    assert calls == [4] and torch.allclose(got.semantic, fresh.semantic.expand(4))
    # inherited 10x the fresh bound: open boxes keep it, a margin it proves keeps it, a thin one refreshes
    big = torch.stack([fresh.semantic * 10, fresh.rounding * 10], dim=1).expand(4, 2).clone()
    margin = torch.tensor([-1.0, 0.0, 100 * e, 2 * e])
    calls.clear()
    got = search._allowance(l, u, margin, big, {})
    assert calls == [1]  # only the thin positive margin
    assert torch.equal(got.semantic[:3], big[:3, 0]) and torch.equal(got.rounding[:3], big[:3, 1])
    assert torch.allclose(got.semantic[3:], fresh.semantic) and torch.allclose(got.rounding[3:], fresh.rounding)
