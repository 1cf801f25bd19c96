"""LP refinement of intermediate bounds (HiGHS): sound on random MLPs and boxes, never wider than what it
was given, and its dual certificate valid for any multipliers."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.bounds.checks import corners, random_points
from tests.bounds.graphs import cases
from verifier.bounds.crown import relaxed_inputs
from verifier.bounds.layerwise import layer_bounds
from verifier.bounds.lp_dual import BoundedLp, dual_bound
from verifier.bounds.lp_refine import LpRefineConfig, affine_chain, refine_bounds, refine_bounds_report
from verifier.model.graph import Graph, Node

highspy = pytest.importorskip("highspy")


def _root_boxes(case, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """The case's box and CROWN's intermediate boxes in `dtype`, sound for the network with its weights
    rounded to `dtype`: computed in float64, then rounded outward (float32 CROWN is not sound to 1e-7,
    and only what refinement adds is under test here)."""
    graph = case.graph.to("cpu", dtype).to("cpu", torch.float64)
    xl, xu = case.lower.to(dtype), case.upper.to(dtype)
    layers = list(relaxed_inputs(graph))
    with torch.no_grad():
        boxes = layer_bounds(graph, xl.double(), xu.double(), layers, None, -1, None)
    return xl, xu, {n: (_round(l, dtype, -1), _round(u, dtype, 1)) for n, (l, u) in boxes.items()}


def _round(t: torch.Tensor, dtype: torch.dtype, direction: int) -> torch.Tensor:
    out = t.to(dtype)
    wrong = out.double() > t if direction < 0 else out.double() < t
    return torch.where(wrong, torch.nextafter(out, torch.full_like(out, direction * float("inf"))), out)


def _pre_activations(graph: Graph, X: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
    """Each named node's value at points X (N, B, *input_shape) -> (N, B, *shape), in float64."""
    N, B = X.shape[:2]
    values = graph.forward(X.reshape((N * B,) + graph.input_shape), keep=True)
    return {n: values[n].reshape((N, B) + values[n].shape[1:]) for n in names}


@settings(max_examples=25, deadline=None)
@given(case=cases(max_depth=4), dtype=st.sampled_from([torch.float64, torch.float32]))
def test_refined_bounds_contain_every_point_and_lie_inside_the_given_ones(case, dtype) -> None:
    xl, xu, boxes = _root_boxes(case, dtype)
    names = list(boxes)
    assert affine_chain(case.graph, names) is not None  # random MLPs are chains: the LP path runs
    refined, report = refine_bounds_report(case.graph.to("cpu", dtype), xl, xu, boxes, time.monotonic() + 30)
    assert report.complete and report.unstable_after <= report.unstable_before
    gen = torch.Generator().manual_seed(case.seed)
    lower, upper = xl.double(), xu.double()  # the box and network as given (float32: rounded), exactly
    points = torch.cat([random_points(lower, upper, 200, gen), corners(lower, upper)])
    values = _pre_activations(case.graph.to("cpu", dtype).to("cpu", torch.float64), points, names)
    for name in names:
        (l, u), (rl, ru) = boxes[name], refined[name]
        assert rl.dtype == l.dtype and rl.shape == l.shape
        assert bool((rl >= l).all()) and bool((ru <= u).all()), name  # refined within the given box
        v = values[name]
        tol = 1e-9 * (1 + v.abs())
        assert bool((v >= rl.double() - tol).all()), (name, float((rl.double() - v).max()))
        assert bool((v <= ru.double() + tol).all()), (name, float((v - ru.double()).max()))


def _two_layer_case(seed: int) -> tuple[Graph, torch.Tensor, torch.Tensor]:
    """A 4-16-16-2 relu MLP on a wide box: CROWN leaves the second layer unstable, where the LP helps."""
    gen = torch.Generator().manual_seed(seed)
    sizes = [4, 16, 16, 2]
    nodes, prev = [Node("x", "input", (), (4,))], "x"
    for i in range(3):
        W = torch.randn(sizes[i + 1], sizes[i], generator=gen, dtype=torch.float64)
        b = torch.randn(sizes[i + 1], generator=gen, dtype=torch.float64) * 0.3
        nodes.append(Node(f"fc{i}", "linear", (prev,), (sizes[i + 1],), {"W": W, "b": b}))
        prev = f"fc{i}"
        if i < 2:
            nodes.append(Node(f"relu{i}", "relu", (prev,), (sizes[i + 1],)))
            prev = f"relu{i}"
    return Graph(tuple(nodes), "x", prev), -torch.ones(1, 4, dtype=torch.float64), torch.ones(1, 4, dtype=torch.float64)


def test_lp_tightens_what_crown_leaves_loose() -> None:
    graph, xl, xu = _two_layer_case(0)
    layers = list(relaxed_inputs(graph))
    boxes = layer_bounds(graph, xl, xu, layers, None, -1, None)
    refined = refine_bounds(graph, xl, xu, boxes, time.monotonic() + 30)
    width = float((boxes["fc1"][1] - boxes["fc1"][0]).sum())
    refined_width = float((refined["fc1"][1] - refined["fc1"][0]).sum())
    assert refined_width < width  # the LP is at least as tight as CROWN, strictly on this net
    # the first layer's box over an input box is exact already: left as it was
    assert torch.equal(refined["fc0"][0], boxes["fc0"][0]) and torch.equal(refined["fc0"][1], boxes["fc0"][1])


def test_past_deadline_and_other_graphs_leave_the_boxes_alone() -> None:
    graph, xl, xu = _two_layer_case(1)
    boxes = layer_bounds(graph, xl, xu, list(relaxed_inputs(graph)), None, -1, None)
    same = refine_bounds(graph, xl, xu, boxes, time.monotonic() - 1)
    assert all(torch.equal(same[n][0], boxes[n][0]) and torch.equal(same[n][1], boxes[n][1]) for n in boxes)
    sig = Graph(tuple(n if n.op != "relu" else Node(n.name, "sigmoid", n.inputs, n.shape) for n in graph.nodes),
                "x", graph.output_name)
    assert affine_chain(sig, ["fc0", "fc1"]) is None
    assert refine_bounds(sig, xl, xu, boxes, time.monotonic() + 10) == dict(boxes)


def test_max_neurons_and_layers_limit_the_work() -> None:
    graph, xl, xu = _two_layer_case(2)
    boxes = layer_bounds(graph, xl, xu, list(relaxed_inputs(graph)), None, -1, None)
    _, report = refine_bounds_report(graph, xl, xu, boxes, time.monotonic() + 30,
                                     LpRefineConfig(max_layers=1, max_neurons=2))
    assert [r.name for r in report.layers] == ["fc1"] and report.layers[0].solved <= 4
    same, report = refine_bounds_report(graph, xl, xu, boxes, time.monotonic() + 30, LpRefineConfig(max_lp_entries=0))
    assert not report.complete and not report.layers  # too large an LP: nothing is solved
    assert all(torch.equal(same[n][0], boxes[n][0]) and torch.equal(same[n][1], boxes[n][1]) for n in boxes)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_dual_bound_is_valid_for_any_multipliers_and_tight_for_the_solvers(seed: int) -> None:
    """Random bounded LPs: the bound from random multipliers is below every feasible point's value; the
    bound from HiGHS's dual equals its optimum up to the solver's tolerance."""
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(1, 6), rng.integers(1, 6)
    A = rng.normal(size=(rows, cols))
    v0 = rng.uniform(-1, 1, size=cols)  # a feasible point by construction
    slack_lo, slack_hi = rng.uniform(0, 1, size=rows), rng.uniform(0, 1, size=rows)
    row_lower = np.where(rng.random(rows) < 0.3, -np.inf, A @ v0 - slack_lo)
    row_upper = np.where(rng.random(rows) < 0.3, np.inf, A @ v0 + slack_hi)
    lp = BoundedLp(A, row_lower, row_upper, v0 - rng.uniform(0, 2, size=cols), v0 + rng.uniform(0, 2, size=cols))
    cost = rng.normal(size=cols)
    # feasible points: v0 and points between v0 and random box points that keep the rows
    samples = [v0] + [v0 + t * (rng.uniform(lp.col_lower, lp.col_upper) - v0) for t in rng.uniform(0, 1, 200)]
    feasible = [v for v in samples if np.all(A @ v >= row_lower - 1e-12) and np.all(A @ v <= row_upper + 1e-12)]
    best_seen = min(float(cost @ v) for v in feasible)
    for _ in range(5):
        assert dual_bound(lp, cost, rng.normal(size=rows) * 3) <= best_seen + 1e-12
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.passModel(_highs_lp(lp, cost))
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    optimum = h.getInfo().objective_function_value
    certified = dual_bound(lp, cost, np.asarray(h.getSolution().row_dual))
    assert certified <= best_seen + 1e-12
    assert certified == pytest.approx(optimum, abs=1e-6)


def _highs_lp(lp: BoundedLp, cost: np.ndarray):
    model = highspy.HighsLp()
    rows, cols = lp.A.shape
    model.num_col_, model.num_row_ = cols, rows
    model.col_cost_ = cost
    model.col_lower_, model.col_upper_ = lp.col_lower, lp.col_upper
    model.row_lower_ = np.where(np.isfinite(lp.row_lower), lp.row_lower, -highspy.kHighsInf)
    model.row_upper_ = np.where(np.isfinite(lp.row_upper), lp.row_upper, highspy.kHighsInf)
    model.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    model.a_matrix_.start_ = np.arange(0, rows * cols + 1, rows, dtype=np.int32)
    model.a_matrix_.index_ = np.tile(np.arange(rows, dtype=np.int32), cols)
    model.a_matrix_.value_ = lp.A.T.flatten()
    return model


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), radius=st.sampled_from([0.3, 1.0, 3.0]))
def test_refined_bounds_contain_the_exact_extremes(seed: int, radius: float) -> None:
    """Against the exact oracle (activation-pattern enumeration) on 2-input nets: each refined bound lies
    beyond the true min / max of its neuron over the box."""
    from tests.bab.nets import Net, exact_min, random_net

    rng = np.random.default_rng(seed)
    net = random_net(rng, 2, [5, 5, 5], 1)
    graph = net.graph()
    centre = rng.uniform(-1, 1, size=2)
    lo, hi = centre - radius, centre + radius
    xl, xu = torch.tensor(lo).reshape(1, -1), torch.tensor(hi).reshape(1, -1)
    boxes = layer_bounds(graph, xl, xu, list(relaxed_inputs(graph)), None, -1, None)
    refined = refine_bounds(graph, xl, xu, boxes, time.monotonic() + 30)
    for k, name in enumerate(refined):
        truncated = Net(net.layers[: k + 1])  # its output is this layer's pre-activation
        rl, ru = (t[0].numpy() for t in refined[name])
        for i in np.nonzero((boxes[name][0][0] < 0).numpy() & (boxes[name][1][0] > 0).numpy())[0]:
            e = np.zeros((1, truncated.n_out))
            e[0, i] = 1.0
            low, _ = exact_min(truncated, lo, hi, e, np.zeros(1))
            high = -exact_min(truncated, lo, hi, -e, np.zeros(1))[0]
            assert rl[i] <= low + 1e-9 * (1 + abs(low)), (name, i, rl[i], low)
            assert ru[i] >= high - 1e-9 * (1 + abs(high)), (name, i, ru[i], high)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_milp_bounds_of_the_second_layer_are_the_exact_extremes(seed: int) -> None:
    """With the first layer's relus exact (MILP) and its box exact (interval arithmetic over the input box),
    the second layer's bounds are its true min / max, less the MILP margin: never inside them."""
    from tests.bab.nets import Net, exact_min, random_net

    rng = np.random.default_rng(seed)
    net = random_net(rng, 2, [6, 6], 1)
    graph = net.graph()
    lo, hi = rng.uniform(-2, -0.5, size=2), rng.uniform(0.5, 2, size=2)
    xl, xu = torch.tensor(lo).reshape(1, -1), torch.tensor(hi).reshape(1, -1)
    boxes = layer_bounds(graph, xl, xu, list(relaxed_inputs(graph)), None, -1, None)
    refined, report = refine_bounds_report(graph, xl, xu, boxes, time.monotonic() + 60,
                                           LpRefineConfig(milp_layers=1, milp_seconds=20))
    truncated = Net(net.layers[:2])
    rl, ru = (t[0].numpy() for t in refined["fc1"])
    for i in np.nonzero((boxes["fc1"][0][0] < 0).numpy() & (boxes["fc1"][1][0] > 0).numpy())[0]:
        e = np.zeros((1, truncated.n_out))
        e[0, i] = 1.0
        low, high = exact_min(truncated, lo, hi, e, np.zeros(1))[0], -exact_min(truncated, lo, hi, -e, np.zeros(1))[0]
        tol = 1e-9 * (1 + abs(low) + abs(high))  # the oracle's own rounding
        assert rl[i] <= low + tol and ru[i] >= high - tol  # sound
        assert rl[i] == pytest.approx(low, abs=1e-3) and ru[i] == pytest.approx(high, abs=1e-3)  # and exact
