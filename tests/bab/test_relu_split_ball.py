"""ReLU-split branch and bound over an L1 / L2 ball (optionally intersected with a clip box), on random
float64 MLPs, against sampling + L2/L1-PGD oracles.

- Every bound a search reports on a leaf (pre-activation boxes and the objective's lower bound of a
  domain with random split decisions, several rounds deep) holds at every sampled point of ball ∩ box
  (inside, on the sphere, the L1 vertices, PGD points) that meets the domain's decisions.
- A planted violation (the threshold put just below the sampled minimum over the region) is never
  proved, and a `sat` point lies in ball ∩ box and violates; an `unsat` survives far denser sampling.
- A property that CROWN (and alpha-CROWN) over the ball leaves open is proved by branch and bound.
- `InputRegion`'s points (minimisers, projections, random points, steps) lie in ball ∩ box.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.bab.nets import split_at_random
from tests.bab.test_relu_split import FAST, mlp
from verifier.attack.lp import lp_descent, random_in_ball
from verifier.bab.region import InputRegion
from verifier.bab.relu_split import ReluSplitConfig, RootBounds, _bound, _Search, relu_split_bab
from verifier.bounds.alpha import alpha_crown
from verifier.bounds.ball import LpBall
from verifier.bounds.crown import crown
from verifier.model.graph import Graph

DTYPE = torch.float64
CLIP = 0.6  # the clip box [-CLIP, CLIP] when a case is clipped
TOL = 1e-9

_examples = settings(deadline=None, max_examples=max(8, settings.default.max_examples // 8))
NORMS = st.sampled_from([2.0, 1.0])


@dataclass
class BallProblem:
    graph: Graph
    lower: torch.Tensor  # (n,) the ball's bounding box, clipped
    upper: torch.Tensor
    ball: LpBall  # batch 1
    C: torch.Tensor
    d: torch.Tensor
    found_value: float  # g at the best point the oracle found

    @property
    def centre(self) -> torch.Tensor:
        return self.ball.centre[0]

    @property
    def eps(self) -> float:
        return float(self.ball.eps[0])

    def g(self, x: torch.Tensor) -> torch.Tensor:
        """max_i (C_i·f(x) + d_i) for points x (N, n), in float64."""
        with torch.no_grad():
            return (self.graph.forward(x.to(self.lower.dtype)).to(DTYPE) @ self.C.to(DTYPE).T
                    + self.d.to(DTYPE)).amax(dim=1)

    def inside(self, x: torch.Tensor) -> torch.Tensor:
        """(N,) whether points x (N, n) lie in ball ∩ box (up to float64 rounding of the norm)."""
        x = x.to(DTYPE)
        in_box = ((x >= self.lower.to(DTYPE)) & (x <= self.upper.to(DTYPE))).all(dim=1)
        dist = (x - self.centre.to(DTYPE)).norm(p=self.ball.p, dim=1)
        return in_box & (dist <= self.eps * (1 + TOL) + TOL)

    def accept(self, x: torch.Tensor) -> bool:
        """The replay callback: a point of ball ∩ box meeting the clause."""
        x = x.detach().reshape(1, -1)
        return bool(self.inside(x)[0]) and bool(self.g(x)[0] <= 0)

    def points(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """Points of ball ∩ box: random inside, random on the sphere, the L1 vertices (p = 1), the
        centre; all clipped to the box (clipping towards a box holding the centre stays in the ball)."""
        dim, p = self.centre.shape[0], self.ball.p
        parts = [random_in_ball(n, dim, p, gen, DTYPE), random_in_ball(n, dim, p, gen, DTYPE, surface=True),
                 torch.zeros((1, dim), dtype=DTYPE)]
        if p == 1:
            eye = torch.eye(dim, dtype=DTYPE)
            parts.append(torch.cat([eye, -eye]))
        x = self.centre.to(DTYPE) + self.eps * torch.cat(parts)
        x = torch.minimum(torch.maximum(x, self.lower.to(DTYPE)), self.upper.to(DTYPE))
        assert bool(self.inside(x).all())
        return x

    def pgd_points(self, starts: torch.Tensor, steps: int) -> torch.Tensor:
        """Every iterate of L_p PGD in ball ∩ box descending g from `starts`."""
        kept: list[torch.Tensor] = []
        r = starts.shape[0]
        lp_descent(starts.clone(), self.centre.to(DTYPE).expand(r, -1), torch.full((r,), self.eps, dtype=DTYPE),
                   self.ball.p, self.lower.to(DTYPE).expand(r, -1), self.upper.to(DTYPE).expand(r, -1), steps,
                   lambda x, s: kept.append(x.detach()) or self.g(x))
        out = torch.cat(kept)
        assert bool(self.inside(out).all())
        return out

    def sample_min(self, seed: int, n: int = 5000, starts: int = 48, steps: int = 120) -> tuple[float, torch.Tensor]:
        """An empirical min of g over ball ∩ box (an upper bound of the true minimum) and its point."""
        gen = torch.Generator().manual_seed(seed)
        x = self.points(n, gen)
        v = self.g(x)
        best = x[v.argsort()[:starts]]
        x = torch.cat([x, self.pgd_points(best, steps)])
        v = self.g(x)
        i = int(v.argmin())
        return float(v[i]), x[i]


def ball_problem(seed: int, p: float, clip: bool, offset: float, dtype: torch.dtype = DTYPE) -> BallProblem:
    """A random net with 4-10 inputs, 1-3 hidden layers of width 3-8, a 1-3 row clause, an Lp ball of
    radius 0.4-1.2 (L2) or 0.6-2 (L1) around a centre in [-1, 1]^n (clipped: in [-0.6, 0.6]^n, the box
    clipped there too), and the threshold putting the sampled minimum of g over the region at `offset`."""
    gen = torch.Generator().manual_seed(seed)
    n_in = int(torch.randint(4, 11, (1,), generator=gen))
    depth = int(torch.randint(1, 4, (1,), generator=gen))
    widths = [int(torch.randint(3, 9, (1,), generator=gen)) for _ in range(depth)]
    n_out = int(torch.randint(2, 5, (1,), generator=gen))
    k = int(torch.randint(1, 4, (1,), generator=gen))
    graph = mlp(gen, n_in, widths, n_out, dtype)
    centre = torch.rand(n_in, generator=gen, dtype=DTYPE) * 2 - 1
    lo_eps, hi_eps = (0.4, 1.2) if p == 2 else (0.6, 2.0)
    eps = lo_eps + float(torch.rand(1, generator=gen, dtype=DTYPE)) * (hi_eps - lo_eps)
    if clip:
        centre = centre.clamp(-CLIP, CLIP)
    lower, upper = centre - eps, centre + eps
    if clip:
        lower, upper = lower.clamp(-CLIP, CLIP), upper.clamp(-CLIP, CLIP)
    C = torch.randn(k, n_out, generator=gen, dtype=DTYPE)
    d0 = torch.randn(k, generator=gen, dtype=DTYPE) * 0.3
    ball = LpBall(centre.reshape(1, -1).to(dtype), torch.tensor([eps], dtype=dtype), p)
    prob = BallProblem(graph, lower.to(dtype), upper.to(dtype), ball, C.to(dtype), d0.to(dtype), math.nan)
    v, x = prob.sample_min(seed)
    prob.d = (d0 - v + offset).to(dtype)
    prob.found_value = float(prob.g(x.reshape(1, -1))[0])
    return prob


def solve(p: BallProblem, config: ReluSplitConfig = FAST, seconds: float = 20.0):  # type: ignore[no-untyped-def]
    return relu_split_bab(p.graph, p.lower, p.upper, p.C, p.d, time.monotonic() + seconds, p.accept, config,
                          ball=p.ball)


def assert_consistent(p: BallProblem, res, seed: int) -> None:  # type: ignore[no-untyped-def]
    """sat: the point lies in ball ∩ box and violates; unsat: nothing known or sampled violates."""
    if res.verdict == "sat":
        x = res.counterexample.reshape(1, -1)
        assert bool(p.inside(x)[0]), "sat point outside ball ∩ box"
        assert float(p.g(x)[0]) <= 0, "sat point does not violate"
    if res.verdict == "unsat":
        assert p.found_value > 0, f"unsat but the oracle's point gives g = {p.found_value}"
        v, _ = p.sample_min(seed + 1, n=40000, starts=128, steps=200)
        assert v > 0, f"unsat but sampling found g = {v}"
        assert res.margin > 0


# --- leaves' bounds, point by point ----------------------------------------------------------------------

@_examples
@given(seed=st.integers(0, 2**31 - 1), p=NORMS, clip=st.booleans(), beta=st.booleans())
def test_leaf_bounds_hold_on_ball_points(seed: int, p: float, clip: bool, beta: bool) -> None:
    """Random split decisions, four rounds deep: each domain's pre-activation bounds and objective lower
    bound hold at every sampled point of ball ∩ box (sphere and vertices included) meeting its decisions."""
    prob = ball_problem(seed % 100000, p, clip, offset=0.0)
    config = ReluSplitConfig(iterations=10, beta=beta, lr_beta=0.5, mix_rows=False)
    deadline = time.monotonic() + 60
    root = RootBounds(prob.graph, prob.lower, prob.upper, deadline, config, prob.ball)
    search = _Search(prob.graph, prob.lower, prob.upper, prob.C, prob.d, deadline, prob.accept, config, root,
                     prob.ball)
    gen = torch.Generator().manual_seed(seed)
    x = prob.points(1500, gen)
    x = torch.cat([x, prob.pgd_points(x[prob.g(x).argsort()[:8]], 20)])
    values = prob.graph.forward(x, keep=True)
    y = values[prob.graph.output_name].reshape(x.shape[0], -1) @ prob.C.T  # (P, k)
    doms = search._root()
    for name in search.layers:  # the root's (ball) bounds
        z = values[name].reshape(x.shape[0], -1)
        assert bool(((z >= doms.lower[name].flatten(1) - TOL) & (z <= doms.upper[name].flatten(1) + TOL)).all())
    for _ in range(4):
        b = _bound(prob.graph, search.xl, search.xu, search.C, search.d, doms, search.layers, search.relu_of, config,
                   config.iterations, math.inf, ball=search.ball)
        feasible = torch.ones((len(doms), x.shape[0]), dtype=torch.bool)
        for name in search.layers:
            z = values[name].reshape(1, x.shape[0], -1)
            s = doms.sign[name].reshape(len(doms), 1, -1)
            feasible &= ((s >= 0) | (z <= 0)).all(-1) & ((s <= 0) | (z >= 0)).all(-1)
            lo, up = (t.reshape(len(doms), 1, -1) for t in b.boxes[name])
            inside = ((z >= lo - TOL) & (z <= up + TOL)).all(-1)
            assert bool((inside | ~feasible).all()), "a feasible point's pre-activation is outside its bounds"
        for i in range(len(doms)):
            if bool(feasible[i].any()):
                assert bool((y[feasible[i]] >= b.lb[i] - TOL).all()), "bound above a feasible point's value"
                assert not bool(b.empty[i]), "a domain with a feasible point was called empty"
        split = split_at_random(search, b, doms, gen)
        if split is None:
            break
        doms = split[0]


# --- verdicts ------------------------------------------------------------------------------------------

@_examples
@given(seed=st.integers(0, 10**6), p=NORMS, clip=st.booleans())
def test_planted_violation_is_never_proved(seed: int, p: float, clip: bool) -> None:
    prob = ball_problem(seed, p, clip, offset=-0.01)
    assert prob.found_value <= 0
    res = solve(prob, seconds=10.0)
    assert res.verdict != "unsat", f"proved a property violated at a sampled point (margin {res.margin})"
    assert_consistent(prob, res, seed)


@_examples
@given(seed=st.integers(0, 10**6), p=NORMS, clip=st.booleans())
def test_borderline_unsat_holds_under_sampling(seed: int, p: float, clip: bool) -> None:
    prob = ball_problem(seed, p, clip, offset=0.01)
    assert_consistent(prob, solve(prob, seconds=10.0), seed)


@pytest.mark.parametrize("p", [2.0, 1.0])
@pytest.mark.parametrize("seed", range(3))
def test_float32_with_float64_recheck_stays_sound_on_a_ball(seed: int, p: float) -> None:
    config = replace(FAST, recheck_all=True, batch_size=16)  # every proof redone in float64
    for offset in (-0.01, 1e-4, 0.01):
        prob = ball_problem(700 + seed, p, clip=bool(seed % 2), offset=offset, dtype=torch.float32)
        res = solve(prob, config, seconds=10.0)
        if prob.found_value <= 0:
            assert res.verdict != "unsat"
        assert_consistent(prob, res, seed)


# Found by scanning seeds: alpha-CROWN over the L2 ball (clipped or not) leaves these clauses open
# (bound -0.30 and -0.38), BaB proves them (26 and 117 domains), and over the bounding box they are violated.
@pytest.mark.parametrize("seed, p, clip", [(9, 2.0, False), (16, 2.0, True)])
def test_bab_proves_what_crown_cannot_on_a_ball(seed: int, p: float, clip: bool) -> None:
    prob = ball_problem(seed, p, clip, offset=0.02)
    lo, hi = prob.lower[None], prob.upper[None]
    cr = crown(prob.graph, lo, hi, prob.C, need_upper=False, ball=prob.ball).lb + prob.d
    al = alpha_crown(prob.graph, lo, hi, prob.C, ball=prob.ball).lb + prob.d
    assert float(cr.max()) < 0 and float(al.max()) < 0, "CROWN / alpha-CROWN alone should not prove this"
    res = solve(prob, seconds=20.0)
    assert res.verdict == "unsat" and res.domains > 1
    assert_consistent(prob, res, seed)
    # the same clause over the ball's bounding box alone is violated: the ball is what makes it hold
    box = relu_split_bab(prob.graph, prob.lower, prob.upper, prob.C, prob.d, time.monotonic() + 20,
                         lambda x: bool(prob.g(x.reshape(1, -1))[0] <= 0), FAST)
    assert box.verdict == "sat"


def test_ball_needs_matching_root_bounds() -> None:
    prob = ball_problem(3, 2.0, False, offset=0.1)
    root = RootBounds(prob.graph, prob.lower, prob.upper, time.monotonic() + 10)  # no ball
    with pytest.raises(ValueError, match="input set"):
        relu_split_bab(prob.graph, prob.lower, prob.upper, prob.C, prob.d, time.monotonic() + 10, prob.accept,
                       FAST, root=root, ball=prob.ball)


# --- the region's points -------------------------------------------------------------------------------

@settings(deadline=None, max_examples=max(20, settings.default.max_examples // 4))
@given(seed=st.integers(0, 2**31 - 1), p=NORMS, clip=st.booleans())
def test_region_points_lie_in_ball_and_box(seed: int, p: float, clip: bool) -> None:
    gen = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 30, (1,), generator=gen))
    centre = torch.rand((1, n), generator=gen, dtype=DTYPE) * 2 - 1
    eps = float(torch.rand(1, generator=gen, dtype=DTYPE)) * 2
    lo, hi = centre - eps, centre + eps
    if clip:
        centre = centre.clamp(-CLIP, CLIP)
        lo, hi = (centre - eps).clamp(-CLIP, CLIP), (centre + eps).clamp(-CLIP, CLIP)
    region = InputRegion(lo, hi, LpBall(centre, torch.tensor([eps], dtype=DTYPE), p))

    def inside(x: torch.Tensor) -> bool:
        dist = (x - centre).norm(p=p, dim=1)
        return bool(((x >= lo) & (x <= hi)).all()) and bool((dist <= eps * (1 + TOL) + TOL).all())

    a = torch.randn((16, n), generator=gen, dtype=DTYPE)
    best = region.minimiser(a)
    assert inside(best) and inside(region.uniform(64, gen)) and inside(region.centre()[None])
    assert inside(region.project(centre + 5 * torch.randn((16, n), generator=gen, dtype=DTYPE)))
    assert inside(region.step(best, torch.randn((16, n), generator=gen, dtype=DTYPE), 0.3))
    if not clip:  # the ball's minimiser is exact: no sampled point of the ball does better
        others = centre + eps * random_in_ball(400, n, p, gen, DTYPE, surface=True)
        assert bool(((a * best).sum(1, keepdim=True) <= a @ others.T + 1e-9).all())
    box = InputRegion(lo, hi)  # no ball: the box's own minimiser
    assert torch.equal(box.minimiser(a), torch.where(a > 0, lo, torch.where(a < 0, hi, (lo + hi) / 2)))
