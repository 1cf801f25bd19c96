"""IBP, CROWN and alpha-CROWN over L1 / L2 balls intersected with a clip box, on random MLPs and CNNs:
points of the ball (inside, on its surface, its L1 vertices, steepest-descent points of each objective
row), all clipped to the box, must lie inside every bound; and IBP over the ball is never looser than IBP
over the ball's bounding box alone."""
from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.bounds.checks import assert_inside, objective_values
from tests.bounds.graphs import DTYPE, cases
from tests.bounds.test_cnn_bounds import _graph_with_head
from verifier.attack.lp import lp_descent, project, random_in_ball
from verifier.bounds.alpha import AlphaConfig, alpha_crown
from verifier.bounds.ball import LpBall, norm_p
from verifier.bounds.crown import crown
from verifier.bounds.ibp import ibp, ibp_objective
from verifier.model.graph import Graph

Tensor = torch.Tensor


def _region(graph: Graph, centre: Tensor, eps: float, p: float, clip: bool) -> tuple[Tensor, Tensor, LpBall]:
    """The bounding box of the ball (clipped to [-0.8, 0.8] when clip; the centre is moved inside it)."""
    n = graph.n_inputs
    centre = centre.reshape(len(centre), n)
    lo, hi = centre - eps, centre + eps
    if clip:
        centre = centre.clamp(-0.8, 0.8)
        lo, hi = (centre - eps).clamp(-0.8, 0.8), (centre + eps).clamp(-0.8, 0.8)
    ball = LpBall(centre, torch.full((len(centre),), eps, dtype=DTYPE), p)
    return lo, hi, ball


def ball_points(graph: Graph, C: Tensor, lo: Tensor, hi: Tensor, ball: LpBall, seed: int) -> Tensor:
    """(N, B, n) points of ball ∩ box: random inside, random on the surface, the L1 vertices c ± eps e_i
    (for p = 1) and projected steepest-descent points pushing each row of C·f down and up, all clipped."""
    gen = torch.Generator().manual_seed(seed)
    B, n = ball.centre.shape
    p = ball.p

    def offsets(k: int, surface: bool) -> Tensor:
        return random_in_ball(k * B, n, p, gen, DTYPE, surface).reshape(k, B, n)

    parts = [offsets(24, False), offsets(24, True)]
    if p == 1:
        eye = torch.eye(n, dtype=DTYPE)
        parts.append(torch.cat([eye, -eye]).unsqueeze(1).expand(2 * n, B, n))
    raw = ball.centre + ball.eps.view(1, B, 1) * torch.cat(parts)
    points = [torch.minimum(torch.maximum(raw, lo), hi)]
    k = C.shape[-2]
    Cb = C if C.dim() == 3 else C.unsqueeze(0).expand(B, -1, -1)
    for sign in (1.0, -1.0):
        for row in range(k):
            x0 = ball.centre + 0.5 * ball.eps.view(B, 1) * offsets(1, False)[0]

            def loss(x: Tensor, step: int) -> Tensor:
                return sign * objective_values(graph, Cb, x.unsqueeze(0))[0, :, row]

            kept: list[Tensor] = []
            lp_descent(x0, ball.centre, ball.eps, p, lo, hi, 15,
                       lambda x, s: kept.append(x.detach()) or loss(x, s))
            points.append(torch.stack(kept))
    out = torch.cat(points)
    assert (out.sub(ball.centre).norm(p=p, dim=2) <= ball.eps.view(1, B) * (1 + 1e-9) + 1e-12).all()
    return out


def _check_all(graph: Graph, C: Tensor, lo: Tensor, hi: Tensor, ball: LpBall, seed: int) -> None:
    X = ball_points(graph, C, lo, hi, ball, seed)
    values = objective_values(graph, C, X.reshape(X.shape[:2] + graph.input_shape))
    ibp_box = ibp_objective(graph, lo, hi, C)
    ibp_ball = ibp_objective(graph, lo, hi, C, ball=ball)
    assert_inside(values, *ibp_ball, "IBP objective over the ball")
    assert (ibp_ball[0] >= ibp_box[0] - 1e-9).all() and (ibp_ball[1] <= ibp_box[1] + 1e-9).all()
    every = graph.forward(X.flatten(0, 1).reshape((-1,) + graph.input_shape), keep=True)
    for name, (l, u) in ibp(graph, lo, hi, ball=ball).items():
        assert_inside(every[name].reshape(X.shape[:2] + l.shape[1:]), l, u, f"IBP box of {name} (ball)")
    result = crown(graph, lo, hi, C, ball=ball)
    assert_inside(values, result.lb, result.ub, "CROWN objective over the ball")
    for name, (l, u) in result.intermediate.items():
        assert_inside(every[name].reshape(X.shape[:2] + l.shape[1:]), l, u, f"CROWN box of {name} (ball)")
    alpha = alpha_crown(graph, lo, hi, C, config=AlphaConfig(iterations=4), ball=ball)
    assert_inside(values, alpha.lb, torch.full_like(alpha.lb, math.inf), "alpha-CROWN objective over the ball")
    assert (alpha.lb >= result.lb - 1e-9).all()


# Each example bounds three ways and attacks every row twice: a fifth (MLPs) or a tenth (CNNs) of the profile.
_mlps = settings(deadline=None, max_examples=max(10, settings.default.max_examples // 5))
_cnns = settings(deadline=None, max_examples=max(5, settings.default.max_examples // 10))
NORMS = st.sampled_from(["l2", "l1"])
RADII = st.sampled_from([0.0, 0.05, 0.5, 3.0])


@_mlps
@given(case=cases(), norm=NORMS, eps=RADII, clip=st.booleans())
def test_ball_bounds_on_mlps_are_sound(case, norm: str, eps: float, clip: bool) -> None:
    centre = (case.lower + case.upper) / 2
    lo, hi, ball = _region(case.graph, centre, eps, norm_p(norm), clip)
    _check_all(case.graph, case.C, lo, hi, ball, case.seed)


@_cnns
@given(data=st.data(), norm=NORMS, eps=RADII, clip=st.booleans())
def test_ball_bounds_on_cnns_are_sound(tmp_path_factory, data, norm: str, eps: float, clip: bool) -> None:
    graph = _graph_with_head(tmp_path_factory.mktemp("cnn"), data)
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    centre = torch.rand((2, graph.n_inputs), generator=gen, dtype=DTYPE) * 2 - 1
    lo, hi, ball = _region(graph, centre, eps, norm_p(norm), clip)
    C = torch.randn((2, graph.n_outputs), generator=gen, dtype=DTYPE)
    _check_all(graph, C, lo, hi, ball, seed=0)


def test_l2_ball_beats_its_bounding_box_on_a_linear_map() -> None:
    """For f(x) = w·x over the L2 ball of radius eps in 64 dims, the exact range is w·c ± eps ||w||_2;
    the bounding box gives ± eps ||w||_1, about sqrt(64 · 2 / pi) times wider for a random w."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn((1, 64), generator=gen, dtype=DTYPE)
    from verifier.model.graph import Node

    graph = Graph((Node("x", "input", (), (64,)), Node("f", "linear", ("x",), (1,),
                                                       {"W": w, "b": torch.zeros(1, dtype=DTYPE)})), "x", "f")
    centre = torch.rand((1, 64), generator=gen, dtype=DTYPE)
    lo, hi, ball = _region(graph, centre, 0.5, 2.0, clip=False)
    lb, ub = ibp_objective(graph, lo, hi, ball=ball)
    exact = float(w @ centre[0]), float(0.5 * w.norm())
    assert math.isclose(float(lb), exact[0] - exact[1], rel_tol=1e-12)
    assert math.isclose(float(ub), exact[0] + exact[1], rel_tol=1e-12)


def test_projection_lands_in_ball_and_box() -> None:
    gen = torch.Generator().manual_seed(3)
    for p in (1.0, 2.0, math.inf):
        centre = torch.rand((50, 7), generator=gen, dtype=DTYPE)
        eps = torch.rand(50, generator=gen, dtype=DTYPE)
        x = centre + 3 * torch.randn((50, 7), generator=gen, dtype=DTYPE)
        lo, hi = torch.zeros_like(centre), torch.ones_like(centre)
        y = project(x, centre, eps, p, lo, hi)
        assert ((y - centre).norm(p=p, dim=1) <= eps * (1 + 1e-12) + 1e-15).all()
        assert (y >= lo).all() and (y <= hi).all()
        inside = centre + 0.5 * eps.unsqueeze(1) * random_in_ball(50, 7, p, gen, DTYPE)
        assert torch.allclose(project(inside, centre, eps, p, lo - 9, hi + 9), inside)
