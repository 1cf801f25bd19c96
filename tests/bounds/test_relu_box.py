"""ReluBox: a relu input box carrying its relaxation must give exactly the relaxation of its bounds."""
from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.bounds.graphs import Case, cases, no_deadline
from verifier.bounds.crown import crown, crown_with_input_coefficients, relaxed_inputs
from verifier.bounds.ops import ReluBox, relu_box_relaxation, relu_relaxation


def _bounds(seed: int, batch: int = 7, width: int = 11) -> tuple[torch.Tensor, torch.Tensor]:
    """Stable (both signs), unstable, zero-width and touching-zero neurons."""
    gen = torch.Generator().manual_seed(seed)
    centre = torch.randn(batch, width, generator=gen, dtype=torch.float64)
    radius = torch.rand(batch, width, generator=gen, dtype=torch.float64)
    radius = torch.where(torch.rand(batch, width, generator=gen, dtype=torch.float64) < 0.2, 0.0, radius)
    lower, upper = centre - radius, centre + radius
    lower[0, :3] = 0.0  # l = 0: active
    upper[1, :3] = 0.0  # u = 0: inactive
    return lower, upper


@no_deadline
@given(st.integers(0, 2**31 - 1), st.booleans())
def test_carried_relaxation_equals_the_computed_one(seed: int, with_alpha: bool) -> None:
    lower, upper = _bounds(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    alpha = torch.rand((lower.shape[0], 3) + lower.shape[1:], generator=gen, dtype=torch.float64) * 1.6 - 0.3
    alpha = alpha if with_alpha else None
    box = ReluBox(lower, upper)
    for got, want in zip(relu_box_relaxation(box, alpha), relu_relaxation(lower, upper, alpha)):
        torch.testing.assert_close(got.expand_as(want), want, rtol=0, atol=0)
    rows = torch.tensor([4, 0, 0, 2])
    taken = box.take(rows)
    assert isinstance(taken, ReluBox)
    sub_alpha = None if alpha is None else alpha[rows]
    expected = relu_relaxation(lower[rows], upper[rows], sub_alpha)
    for got, want in zip(relu_box_relaxation(taken, sub_alpha), expected):
        torch.testing.assert_close(got.expand_as(want), want, rtol=0, atol=0)


@no_deadline
@given(cases())
def test_crown_on_carried_relaxations_equals_crown_on_plain_boxes(case: Case) -> None:
    """The intermediate boxes CROWN returns carry their relaxations; handing back plain (l, u) tuples
    (which recompute them) must give the same bounds and input coefficients."""
    result = crown(case.graph, case.lower, case.upper, case.C)
    relu_inputs = {name for name, nodes in relaxed_inputs(case.graph).items() if {n.op for n in nodes} == {"relu"}}
    assert all(isinstance(result.intermediate[name], ReluBox) for name in relu_inputs if name in result.intermediate)
    plain = {name: (box[0], box[1]) for name, box in result.intermediate.items()}
    carried = crown_with_input_coefficients(case.graph, case.lower, case.upper, case.C,
                                            intermediate=result.intermediate)
    recomputed = crown_with_input_coefficients(case.graph, case.lower, case.upper, case.C, intermediate=plain)
    torch.testing.assert_close(carried, recomputed, rtol=0, atol=0)
