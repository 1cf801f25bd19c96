"""IBP soundness on random networks and boxes, and the tight folded objective."""
from __future__ import annotations

import torch
from hypothesis import given

from tests.bounds.checks import assert_inside, attack_points, objective_values
from tests.bounds.graphs import Case, cases, no_deadline
from verifier.bounds.box import concretize_lower
from verifier.bounds.ibp import ibp, ibp_objective


@no_deadline
@given(cases())
def test_every_node_value_lies_in_its_interval(case: Case) -> None:
    boxes = ibp(case.graph, case.lower, case.upper)
    X = attack_points(case.graph, case.C, case.lower, case.upper, case.seed)
    values = case.graph.forward(X.flatten(0, 1), keep=True)
    for node in case.graph.nodes:
        l, u = boxes[node.name]
        assert_inside(values[node.name].reshape(X.shape[:2] + node.shape), l, u, f"IBP box of {node.name}")


@no_deadline
@given(cases())
def test_objective_bounds_are_sound(case: Case) -> None:
    lb, ub = ibp_objective(case.graph, case.lower, case.upper, case.C)
    assert lb.shape == ub.shape == (case.batch, case.C.shape[-2])
    X = attack_points(case.graph, case.C, case.lower, case.upper, case.seed)
    assert_inside(objective_values(case.graph, case.C, X), lb, ub, "IBP objective")


@no_deadline
@given(cases())
def test_folded_objective_is_no_looser_than_the_output_box(case: Case) -> None:
    lb, ub = ibp_objective(case.graph, case.lower, case.upper, case.C)
    out = ibp(case.graph, case.lower, case.upper)[case.graph.output_name]
    C = case.C if case.C.dim() == 3 else case.C.unsqueeze(0)
    C = C.reshape(C.shape[:2] + out[0].shape[1:])
    box_lb, box_ub = concretize_lower(C, out), -concretize_lower(-C, out)
    tol = 1e-9 * (1 + box_lb.abs() + box_ub.abs())
    assert (lb >= box_lb - tol).all() and (ub <= box_ub + tol).all()


@no_deadline
@given(cases())
def test_flat_and_shaped_boxes_agree(case: Case) -> None:
    flat = ibp_objective(case.graph, case.lower.flatten(1), case.upper.flatten(1), case.C)
    shaped = ibp_objective(case.graph, case.lower, case.upper, case.C)
    torch.testing.assert_close(flat, shaped)
