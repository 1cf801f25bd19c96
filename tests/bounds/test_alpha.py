"""alpha-CROWN: iteration 0 is CROWN, the bound is never worse than CROWN's and always sound (also
under a deadline), the returned slopes certify the returned bound, and warm starts never lose ground."""
from __future__ import annotations

import time

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.bounds.checks import REL_TOL, assert_inside, attack_points, objective_values
from tests.bounds.graphs import Case, GraphBuilder, cases, no_deadline
from verifier.bounds.alpha import AlphaConfig, alpha_crown, initial_alphas
from verifier.bounds.crown import crown

# Each example runs several alpha-CROWN optimisations: a fraction of the profile's example count
# (40 by default, 800 under --hypothesis-profile=thorough).
fewer = settings(deadline=None, max_examples=max(10, settings.default.max_examples * 2 // 5))


def _tol(values: torch.Tensor) -> float:
    """Rounding slack for comparing float64 bounds of this magnitude."""
    finite = values[torch.isfinite(values)]
    return REL_TOL * (1.0 + (float(finite.abs().max()) if finite.numel() else 0.0))


def _assert_sound_lower(case: Case, lb: torch.Tensor, what: str) -> None:
    """Random points, corners, the centre and PGD points pushing each row down all lie above lb."""
    X = attack_points(case.graph, case.C, case.lower, case.upper, case.seed)
    assert_inside(objective_values(case.graph, case.C, X), lb, torch.full_like(lb, float("inf")), what)


def _crown_lb(case: Case) -> torch.Tensor:
    return crown(case.graph, case.lower, case.upper, case.C, need_upper=False).lb


@no_deadline
@given(cases())
def test_iteration_zero_is_crown_exactly(case: Case) -> None:
    result = alpha_crown(case.graph, case.lower, case.upper, case.C, config=AlphaConfig(iterations=0))
    assert torch.equal(result.lb, _crown_lb(case))
    # the slopes it hands back are CROWN's own choice, and reproduce the bound
    assert set(result.alphas) == {n.name for n in case.graph.nodes if n.op == "relu"}
    expected = initial_alphas(case.graph, result.intermediate, case.C.shape[-2])
    for name, a in result.alphas.items():
        assert torch.equal(a, expected[name]), name
        assert a.shape == (case.batch, case.C.shape[-2]) + case.graph.by_name[name].shape
    again = crown(case.graph, case.lower, case.upper, case.C, intermediate=result.intermediate,
                  alphas=result.alphas, need_upper=False).lb
    torch.testing.assert_close(again, result.lb, rtol=1e-12, atol=1e-12)


@fewer
@given(cases(), st.sampled_from([1, 5, 20]), st.sampled_from([0.01, 0.1, 0.5]))
def test_never_worse_than_crown_and_sound(case: Case, iterations: int, lr: float) -> None:
    result = alpha_crown(case.graph, case.lower, case.upper, case.C, config=AlphaConfig(iterations, lr))
    plain = _crown_lb(case)
    assert result.lb.shape == plain.shape == (case.batch, case.C.shape[-2])
    assert (result.lb >= plain).all(), "alpha-CROWN lost ground on CROWN"
    # also no worse than the two-sided CROWN call the rest of the code uses (equal up to rounding)
    both = crown(case.graph, case.lower, case.upper, case.C).lb
    assert (result.lb >= both - _tol(both)).all()
    _assert_sound_lower(case, result.lb, "alpha-CROWN")
    for name, a in result.alphas.items():
        assert torch.isfinite(a).all() and (a >= 0).all() and (a <= 1).all(), name


@fewer
@given(cases())
def test_returned_slopes_certify_the_returned_bound(case: Case) -> None:
    """The slopes kept per row are those of the iterate that gave the row's bound: re-running CROWN with
    them (and the returned intermediate bounds) gives that bound back, and those bounds are sound."""
    result = alpha_crown(case.graph, case.lower, case.upper, case.C, config=AlphaConfig(8, 0.2))
    again = crown(case.graph, case.lower, case.upper, case.C, intermediate=result.intermediate,
                  alphas=result.alphas, need_upper=False).lb
    torch.testing.assert_close(again, result.lb, rtol=1e-9, atol=1e-9)
    _assert_sound_lower(case, again, "CROWN with the returned slopes")


@fewer
@given(cases(), st.sampled_from([1, 4, 10]))
def test_warm_start_is_at_least_as_good_as_its_source(case: Case, iterations: int) -> None:
    first = alpha_crown(case.graph, case.lower, case.upper, case.C, config=AlphaConfig(iterations, 0.1))
    warm = alpha_crown(case.graph, case.lower, case.upper, case.C, config=AlphaConfig(iterations, 0.1),
                       init=first.alphas)
    assert (warm.lb >= first.lb - _tol(first.lb)).all(), "a warm start lost ground on its source"
    _assert_sound_lower(case, warm.lb, "warm-started alpha-CROWN")
    # a warm start with no iterations at all still gives (at least) CROWN's bound
    idle = alpha_crown(case.graph, case.lower, case.upper, case.C, config=AlphaConfig(0), init=first.alphas)
    assert (idle.lb >= _crown_lb(case)).all()


@fewer
@given(cases(), st.sampled_from([(-0.5, 1.5), (0.0, 1.0), (0.0, 0.0), (1.0, 1.0)]))
def test_any_warm_start_gives_a_sound_bound_no_worse_than_crown(case: Case, alpha_range: tuple[float, float]) -> None:
    """Arbitrary (even out-of-range) initial slopes: still sound, still never worse than CROWN."""
    gen = torch.Generator().manual_seed(case.seed + 7)
    low, high = alpha_range
    init = {n.name: low + (high - low) * torch.rand((case.batch, case.C.shape[-2]) + n.shape, generator=gen,
                                                    dtype=case.lower.dtype)
            for n in case.graph.nodes if n.op == "relu"}
    result = alpha_crown(case.graph, case.lower, case.upper, case.C, config=AlphaConfig(3, 0.1), init=init)
    assert (result.lb >= _crown_lb(case)).all()
    _assert_sound_lower(case, result.lb, "alpha-CROWN from arbitrary slopes")


@fewer
@given(cases())
def test_a_passed_deadline_still_gives_a_sound_bound_no_worse_than_crown(case: Case) -> None:
    start = time.monotonic()
    result = alpha_crown(case.graph, case.lower, case.upper, case.C, config=AlphaConfig(iterations=10_000),
                         deadline=start - 1.0)
    assert time.monotonic() - start < 5.0  # stopped at once, not after 10 000 iterations
    assert (result.lb >= _crown_lb(case)).all()
    _assert_sound_lower(case, result.lb, "alpha-CROWN after its deadline")


def _deep_case(seed: int = 0) -> Case:
    b = GraphBuilder(torch.Generator().manual_seed(seed))
    x = b.add("input", (), (6,))
    for _ in range(3):
        x = b.relu(b.linear(x, 24, bias_scale=0.3))
    graph = b.graph(b.linear(x, 4))
    gen = torch.Generator().manual_seed(seed + 1)
    centre = torch.rand((2, 6), generator=gen, dtype=torch.float64) * 2 - 1
    C = torch.randn((3, 4), generator=gen, dtype=torch.float64)
    return Case(graph, centre - 0.5, centre + 0.5, C, seed)


def test_deadline_stops_a_long_optimisation_early() -> None:
    case = _deep_case()
    start = time.monotonic()
    result = alpha_crown(case.graph, case.lower, case.upper, case.C, config=AlphaConfig(iterations=1_000_000),
                         deadline=start + 0.3)
    elapsed = time.monotonic() - start
    assert elapsed < 0.3 + 2.0, f"alpha-CROWN ran {elapsed:.2f} s past a 0.3 s deadline"
    plain = _crown_lb(case)
    assert (result.lb >= plain).all()
    _assert_sound_lower(case, result.lb, "alpha-CROWN stopped by its deadline")
    # and a few hundred milliseconds of optimisation do help on this network
    assert (result.lb > plain + 1e-6).any()


def test_optimisation_improves_on_crown_and_stays_sound() -> None:
    case = _deep_case(3)
    result = alpha_crown(case.graph, case.lower, case.upper, case.C, config=AlphaConfig(iterations=30, lr=0.1))
    plain = _crown_lb(case)
    assert (result.lb >= plain).all() and (result.lb > plain + 1e-6).any()
    _assert_sound_lower(case, result.lb, "alpha-CROWN")


def test_given_intermediate_bounds_are_used() -> None:
    """Intermediate bounds passed in are those the result reports (and the bound is built on)."""
    case = _deep_case(5)
    base = crown(case.graph, case.lower, case.upper, case.C, need_upper=False)
    result = alpha_crown(case.graph, case.lower, case.upper, case.C, config=AlphaConfig(iterations=5),
                         intermediate=base.intermediate)
    for name, (l, u) in base.intermediate.items():
        assert torch.equal(result.intermediate[name][0], l) and torch.equal(result.intermediate[name][1], u)
    assert (result.lb >= base.lb).all()
    _assert_sound_lower(case, result.lb, "alpha-CROWN with given intermediate bounds")


def test_networks_without_relus_and_empty_objectives() -> None:
    b = GraphBuilder(torch.Generator().manual_seed(2))
    graph = b.graph(b.linear(b.add("input", (), (3,)), 2))
    lower = -torch.ones(1, 3, dtype=torch.float64)
    C = torch.randn(2, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    result = alpha_crown(graph, lower, -lower, C)
    assert result.alphas == {} and torch.equal(result.lb, crown(graph, lower, -lower, C, need_upper=False).lb)
    b = GraphBuilder(torch.Generator().manual_seed(2))
    graph = b.graph(b.linear(b.relu(b.linear(b.add("input", (), (3,)), 4)), 2))
    empty = alpha_crown(graph, lower, -lower, torch.zeros(0, 2, dtype=torch.float64))
    assert empty.lb.shape == (1, 0)


def test_returned_slopes_certify_the_bound_after_a_poor_warm_start() -> None:
    # y = relu(x) on [-2, 1]: CROWN's adaptive lower slope is 0 (u < -l), lb = 0; slope 1 gives lb = -2
    graph = GraphBuilder(torch.Generator().manual_seed(0))
    x = graph.add("input", (), (1,))
    g = graph.graph(graph.relu(x))
    lower, upper = torch.tensor([[-2.0]], dtype=torch.float64), torch.tensor([[1.0]], dtype=torch.float64)
    C = torch.ones(1, 1, dtype=torch.float64)
    init = {n.name: torch.ones(1, 1, 1, dtype=torch.float64) for n in g.nodes if n.op == "relu"}
    result = alpha_crown(g, lower, upper, C, config=AlphaConfig(iterations=0), init=init)
    assert float(result.lb) == 0.0  # the bound itself is CROWN's, and sound
    again = crown(g, lower, upper, C, intermediate=result.intermediate, alphas=result.alphas, need_upper=False).lb
    assert float(again) == float(result.lb)  # fails: the returned slopes give -2
