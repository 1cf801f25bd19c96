"""CROWN soundness (objective and intermediate bounds, any alphas), exactness on affine networks,
batching, reuse of intermediate bounds, differentiability in alpha, and general DAGs."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.bounds.checks import assert_inside, attack_points, objective_values
from tests.bounds.graphs import Case, GraphBuilder, cases, no_deadline
from verifier.bounds.box import best_of, concretize_lower, objective_matrix
from verifier.bounds import crown as crown_module
from verifier.bounds.box import input_box
from verifier.bounds.crown import (
    CrownResult, crown, crown_objective, crown_with_input_coefficients, neuron_bounds, pair_bounds, relaxed_inputs,
)
from verifier.bounds.ibp import ibp, ibp_objective
from verifier.bounds.ops import OPS, OpRule, default_relu_alpha
from verifier.model.graph import Graph


def _relus(graph: Graph) -> list:
    return [n for n in graph.nodes if n.op == "relu"]


def _random_alphas(case: Case, rows: int, low: float, high: float) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(case.seed + 1)
    return {n.name: low + (high - low) * torch.rand((case.batch, rows) + n.shape, generator=gen,
                                                     dtype=case.lower.dtype)
            for n in _relus(case.graph)}


def _assert_sound(case: Case, result: CrownResult) -> None:
    X = attack_points(case.graph, case.C, case.lower, case.upper, case.seed)
    assert_inside(objective_values(case.graph, case.C, X), result.lb, result.ub, "CROWN objective")
    values = case.graph.forward(X.flatten(0, 1), keep=True)
    shapes = case.graph.by_name
    for name, (l, u) in result.intermediate.items():
        v = values[name].reshape(X.shape[:2] + shapes[name].shape)
        assert_inside(v, l, u, f"CROWN intermediate bounds of {name}")


@no_deadline
@given(cases())
def test_bounds_are_sound(case: Case) -> None:
    result = crown(case.graph, case.lower, case.upper, case.C)
    assert result.lb.shape == result.ub.shape == (case.batch, case.C.shape[-2])
    assert set(result.intermediate) == {n.inputs[0] for n in _relus(case.graph)}
    _assert_sound(case, result)


@no_deadline
@given(cases(), st.sampled_from([(0.0, 1.0), (-0.5, 1.5)]))
def test_bounds_are_sound_for_any_alphas(case: Case, alpha_range: tuple[float, float]) -> None:
    """Slopes outside [0, 1] are clamped, so even those must give sound bounds."""
    alphas = _random_alphas(case, 2 * case.C.shape[-2], *alpha_range)
    _assert_sound(case, crown(case.graph, case.lower, case.upper, case.C, alphas=alphas))


@no_deadline
@given(cases())
def test_explicit_default_alphas_change_nothing(case: Case) -> None:
    plain = crown(case.graph, case.lower, case.upper, case.C)
    alphas = {n.name: default_relu_alpha(*plain.intermediate[n.inputs[0]]).unsqueeze(1)
              for n in _relus(case.graph)}
    explicit = crown(case.graph, case.lower, case.upper, case.C, alphas=alphas)
    torch.testing.assert_close((explicit.lb, explicit.ub), (plain.lb, plain.ub))


@no_deadline
@given(cases(min_batch=2))
def test_a_batch_gives_the_same_bounds_as_its_boxes_one_by_one(case: Case) -> None:
    batched = crown(case.graph, case.lower, case.upper, case.C)
    for i in range(case.batch):
        C = case.C[i : i + 1] if case.C.dim() == 3 else case.C
        single = crown(case.graph, case.lower[i : i + 1], case.upper[i : i + 1], C)
        torch.testing.assert_close((single.lb[0], single.ub[0]), (batched.lb[i], batched.ub[i]))
        for name, (l, u) in single.intermediate.items():
            torch.testing.assert_close((l[0], u[0]), tuple(b[i] for b in batched.intermediate[name]))


@no_deadline
@given(cases())
def test_shared_and_per_box_objectives_agree(case: Case) -> None:
    C = case.C if case.C.dim() == 2 else case.C[0]
    shared = crown(case.graph, case.lower, case.upper, C)
    per_box = crown(case.graph, case.lower, case.upper, C.expand(case.batch, -1, -1))
    torch.testing.assert_close((shared.lb, shared.ub), (per_box.lb, per_box.ub))


@no_deadline
@given(cases(), st.floats(0.05, 1.0))
def test_per_pair_and_per_row_passes_give_the_same_neuron_bounds(case: Case, density: float) -> None:
    """A neuron's CROWN bound on a box is the same whether it is computed as one of the batch's shared
    rows or as a (box, neuron) pair of its own (the cheaper pass when boxes ask for few neurons)."""
    boxes = dict(crown(case.graph, case.lower, case.upper, case.C).intermediate)
    boxes[case.graph.input_name] = input_box(case.graph, case.lower, case.upper)
    gen = torch.Generator().manual_seed(case.seed)
    for name in relaxed_inputs(case.graph):
        node = case.graph.by_name[name]
        if node.op == "input":
            continue
        n = math.prod(node.shape)
        rows = torch.arange(n)
        lb, ub = neuron_bounds(case.graph, node, rows, boxes)
        pairs = (torch.rand((case.batch, n), generator=gen) < density).nonzero()
        if not pairs.shape[0]:
            continue
        plb, pub = pair_bounds(case.graph, node, pairs, boxes)
        torch.testing.assert_close(plb, lb[pairs[:, 0], pairs[:, 1]], rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(pub, ub[pairs[:, 0], pairs[:, 1]], rtol=1e-9, atol=1e-9)


@no_deadline
@given(cases())
def test_bounds_with_and_without_the_forward_prefilter_are_sound(case: Case) -> None:
    """On networks with few inputs, forward linear bounds narrow each node's box before CROWN's
    passes (which then skip the neurons they settle); both ways the bounds hold. (Neither is always
    the tighter: CROWN's adaptive slopes are not monotone in the intermediate bounds.)"""
    _assert_sound(case, crown(case.graph, case.lower, case.upper, case.C))
    saved = crown_module.FORWARD_MAX_INPUTS
    crown_module.FORWARD_MAX_INPUTS = 0
    try:
        _assert_sound(case, crown(case.graph, case.lower, case.upper, case.C))
    finally:
        crown_module.FORWARD_MAX_INPUTS = saved


@no_deadline
@given(cases(with_relu=False))
def test_affine_networks_get_their_exact_range(case: Case) -> None:
    """Both CROWN and the folded IBP objective are exact when there is nothing to relax: each
    bound equals the objective at the box corner its gradient points to."""
    result = crown(case.graph, case.lower, case.upper, case.C)
    folded = ibp_objective(case.graph, case.lower, case.upper, case.C)
    exact = _exact_affine_range(case)
    torch.testing.assert_close((result.lb, result.ub), exact)
    torch.testing.assert_close(folded, exact)


def _exact_affine_range(case: Case) -> tuple[torch.Tensor, torch.Tensor]:
    k = case.C.shape[-2]
    lows, highs = [], []
    for row in range(k):
        x = case.lower.clone().requires_grad_(True)
        objective_values(case.graph, case.C, x.unsqueeze(0))[0, :, row].sum().backward()
        grad = x.grad
        corner_low = torch.where(grad >= 0, case.lower, case.upper)
        corner_high = torch.where(grad >= 0, case.upper, case.lower)
        lows.append(objective_values(case.graph, case.C, corner_low.unsqueeze(0))[0, :, row])
        highs.append(objective_values(case.graph, case.C, corner_high.unsqueeze(0))[0, :, row])
    return torch.stack(lows, 1), torch.stack(highs, 1)


@no_deadline
@given(cases(with_relu=False, max_depth=1))
def test_single_linear_layer_is_no_looser_than_ibp(case: Case) -> None:
    result = crown(case.graph, case.lower, case.upper, case.C)
    lb, ub = ibp_objective(case.graph, case.lower, case.upper, case.C)
    tol = 1e-9 * (1 + lb.abs() + ub.abs())
    assert (result.lb >= lb - tol).all() and (result.ub <= ub + tol).all()


@no_deadline
@given(cases())
def test_intermediate_bounds_are_no_looser_than_ibp(case: Case) -> None:
    result = crown(case.graph, case.lower, case.upper, case.C)
    boxes = ibp(case.graph, case.lower, case.upper)
    for name, (l, u) in result.intermediate.items():
        il, iu = boxes[name]
        tol = 1e-9 * (1 + il.abs() + iu.abs())
        assert (l >= il - tol).all() and (u <= iu + tol).all(), name


@no_deadline
@given(cases())
def test_given_intermediate_bounds_are_used_as_they_are(case: Case) -> None:
    first = crown(case.graph, case.lower, case.upper, case.C)
    again = crown(case.graph, case.lower, case.upper, case.C, intermediate=first.intermediate)
    torch.testing.assert_close((again.lb, again.ub), (first.lb, first.ub))
    widened = {name: (l - 1.0, u + 1.0) for name, (l, u) in first.intermediate.items()
               if name != case.graph.input_name}
    looser = crown(case.graph, case.lower, case.upper, case.C, intermediate=widened)
    for name, box in widened.items():
        assert looser.intermediate[name][0] is box[0] and looser.intermediate[name][1] is box[1]
    _assert_sound(case, looser)


@no_deadline
@given(cases())
def test_lower_bound_alone_matches(case: Case) -> None:
    both = crown(case.graph, case.lower, case.upper, case.C)
    lower_only = crown(case.graph, case.lower, case.upper, case.C, need_upper=False)
    torch.testing.assert_close(lower_only.lb, both.lb)
    assert torch.isinf(lower_only.ub).all() and (lower_only.ub > 0).all()


@no_deadline
@given(cases())
def test_input_coefficients_give_a_sound_linear_lower_bound(case: Case) -> None:
    """C f(x) >= A x + (lb - min_box A x) at every attack point, and lb is CROWN's lower bound."""
    lb, A = crown_with_input_coefficients(case.graph, case.lower, case.upper, case.C)
    assert A.shape == (case.batch, case.C.shape[-2], case.graph.n_inputs)
    torch.testing.assert_close(lb, crown(case.graph, case.lower, case.upper, case.C).lb)
    offset = lb - concretize_lower(A, (case.lower.flatten(1), case.upper.flatten(1)))
    X = attack_points(case.graph, case.C, case.lower, case.upper, case.seed)
    linear = torch.einsum("bkn,Nbn->Nbk", A, X.flatten(2)) + offset
    values = objective_values(case.graph, case.C, X)
    assert (linear <= values + 1e-8 * (1 + values.abs())).all()


def test_no_objective_rows_and_unknown_alphas() -> None:
    b = GraphBuilder(torch.Generator().manual_seed(1))
    graph = b.graph(b.linear(b.relu(b.linear(b.add("input", (), (3,)), 4)), 2))
    lower = torch.zeros(2, 3, dtype=torch.float64)
    result = crown(graph, lower, lower + 1, torch.zeros(0, 2, dtype=torch.float64))
    assert result.lb.shape == result.ub.shape == (2, 0)
    with pytest.raises(ValueError, match="linear1"):
        crown(graph, lower, lower + 1, alphas={"linear1": torch.zeros(4)})


@no_deadline
@given(cases())
def test_crown_objective_is_the_best_of_both(case: Case) -> None:
    result = crown(case.graph, case.lower, case.upper, case.C)
    expected = best_of((result.lb, result.ub), ibp_objective(case.graph, case.lower, case.upper, case.C))
    torch.testing.assert_close(crown_objective(case.graph, case.lower, case.upper, case.C), expected)


@no_deadline
@given(cases())
def test_bounds_are_differentiable_in_alpha(case: Case) -> None:
    alphas = _random_alphas(case, case.C.shape[-2], 0.0, 1.0)
    assume(alphas)
    for a in alphas.values():
        a.requires_grad_(True)
    result = crown(case.graph, case.lower, case.upper, case.C, alphas=alphas, need_upper=False)
    grads = torch.autograd.grad(result.lb.sum(), list(alphas.values()), allow_unused=True)
    for name, g in zip(alphas, grads):
        assert g is None or torch.isfinite(g).all(), name


def test_alpha_gradient_matches_finite_differences() -> None:
    b = GraphBuilder(torch.Generator().manual_seed(3))
    x = b.relu(b.linear(b.add("input", (), (4,)), 8))
    x = b.relu(b.linear(x, 8))
    graph = b.graph(b.linear(x, 3))
    lower = torch.full((2, 4), -1.0, dtype=torch.float64)
    relus = _relus(graph)
    gen = torch.Generator().manual_seed(4)
    start = [0.2 + 0.6 * torch.rand((2, 6, 8), generator=gen, dtype=torch.float64) for _ in relus]

    def bounds(*alphas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        result = crown(graph, lower, -lower, alphas={n.name: a for n, a in zip(relus, alphas)})
        return result.lb, result.ub

    assert torch.autograd.gradcheck(bounds, [a.requires_grad_(True) for a in start])


def test_identity_objective_and_dtype_follow_the_box() -> None:
    """C=None bounds every output; a float32 graph with a float64 box computes in float64."""
    b = GraphBuilder(torch.Generator().manual_seed(0))
    x = b.relu(b.linear(b.add("input", (), (3,)), 4))
    graph = b.graph(b.linear(x, 2)).to("cpu", torch.float32)
    lower = torch.zeros(2, 3, dtype=torch.float64)
    result = crown(graph, lower, lower + 0.1)
    assert result.lb.dtype == torch.float64 and result.lb.shape == (2, 2)
    assert objective_matrix(graph, None, lower).shape == (1, 2, 2)


def _add_rule() -> OpRule:
    """A two-input op, as a later issue will register: y = a + b."""
    return OpRule(forward=lambda node, a, b: a + b,
                  interval=lambda node, x, y: (x[0] + y[0], x[1] + y[1]),
                  backward=lambda node, A, bounds, relax: ([A, A], A.new_zeros(A.shape[:2])),
                  affine=True)


def _residual_graph(seed: int) -> Graph:
    """x -> l1 -> r1 -> l2 -> r2; add(r1, r2) -> r3 -> out: r1 has two consumers, add two inputs."""
    b = GraphBuilder(torch.Generator().manual_seed(seed))
    r1 = b.relu(b.linear(b.add("input", (), (3,)), 6))
    r2 = b.relu(b.linear(r1, 6))
    r3 = b.relu(b.add("add", (r1, r2), (6,)))
    return b.graph(b.linear(r3, 2))


@pytest.mark.parametrize("seed", range(20))
def test_dags_with_shared_nodes_and_several_inputs(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(OPS, "add", _add_rule())
    graph = _residual_graph(seed)
    gen = torch.Generator().manual_seed(seed)
    centre = torch.randn(2, 3, generator=gen, dtype=torch.float64)
    radius = torch.rand(2, 3, generator=gen, dtype=torch.float64) * math.exp(seed % 4 - 2)
    C = torch.randn(3, 2, generator=gen, dtype=torch.float64)
    case = Case(graph, centre - radius, centre + radius, C, seed)
    result = crown(graph, case.lower, case.upper, C)
    _assert_sound(case, result)
    assert_inside(objective_values(graph, C, attack_points(graph, C, case.lower, case.upper, seed)),
                  *ibp_objective(graph, case.lower, case.upper, C), "IBP objective on a DAG")
