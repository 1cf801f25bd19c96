"""ReLU-split branch and bound on tiny random networks (float64), against sampling + PGD oracles.

Soundness is what matters: never `unsat` where a violating point exists (instances are made
borderline by shifting the threshold to just above / below the empirically found minimum), every
`sat` point really violates, and every `unsat` survives massive sampling. Also: the bounding of split
domains is sound point by point, the deadline and the memory guard are honoured.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import pytest
import torch

from tests.bab.nets import split_at_random
from verifier.bab.relu_split import (
    ReluSplitConfig, RootBounds, _bound, _Search, relu_split_bab,
)
from verifier.model.graph import Graph, Node

DTYPE = torch.float64
FAST = ReluSplitConfig(batch_size=64, iterations=8, root_iterations=20)


# --- problems ---------------------------------------------------------------------------------------

def mlp(gen: torch.Generator, n_in: int, widths: list[int], n_out: int, dtype: torch.dtype = DTYPE,
        fancy: bool = False) -> Graph:
    """x -> [linear -> relu]* -> linear. fancy: the first relu sits in a reshaped 2-D view after a
    broadcasting scale_shift (the relu input node is then a scale_shift, not a linear)."""
    nodes = [Node("x", "input", (), (n_in,))]
    prev, size = "x", n_in

    def add(node: Node) -> str:
        nodes.append(node)
        return node.name

    for i, w in enumerate(widths + [n_out]):
        W = torch.randn(w, size, generator=gen, dtype=DTYPE) / math.sqrt(size)
        b = torch.randn(w, generator=gen, dtype=DTYPE) * 0.5
        prev = add(Node(f"fc{i}", "linear", (prev,), (w,), {"W": W.to(dtype), "b": b.to(dtype)}))
        size = w
        if i == len(widths):
            break
        if fancy and i == 0 and w % 2 == 0:
            prev = add(Node("view", "reshape", (prev,), (2, w // 2), attrs={"shape": (2, w // 2)}))
            scale = (torch.rand(2, 1, generator=gen, dtype=DTYPE) + 0.5).to(dtype)
            shift = torch.randn(2, 1, generator=gen, dtype=DTYPE).to(dtype) * 0.3
            prev = add(Node("ss", "scale_shift", (prev,), (2, w // 2), {"scale": scale, "shift": shift}))
            prev = add(Node("relu_view", "relu", (prev,), (2, w // 2)))
            prev = add(Node("flat", "reshape", (prev,), (w,), attrs={"shape": (w,)}))
        else:
            prev = add(Node(f"relu{i}", "relu", (prev,), (w,)))
    return Graph(tuple(nodes), "x", prev)


@dataclass
class Problem:
    graph: Graph
    lower: torch.Tensor  # (n,)
    upper: torch.Tensor
    C: torch.Tensor  # (k, m)
    d: torch.Tensor  # (k,)
    found: torch.Tensor  # the best point the oracle found
    found_value: float  # g there

    def g(self, x: torch.Tensor) -> torch.Tensor:
        """max_i (C_i·f(x) + d_i) for points x (N, n)."""
        with torch.no_grad():
            return (self.graph.forward(x.to(self.lower.dtype)).to(DTYPE) @ self.C.to(DTYPE).T
                    + self.d.to(DTYPE)).amax(dim=1)

    def accept(self, x: torch.Tensor) -> bool:
        """The replay callback: inside the box and meeting the clause (in float64)."""
        x = x.detach().reshape(1, -1)
        inside = bool(((x >= self.lower) & (x <= self.upper)).all())
        return inside and bool(self.g(x)[0] <= 0)


def sample_min(graph: Graph, C: torch.Tensor, d: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor,
               seed: int, n: int = 20000, starts: int = 64, steps: int = 150) -> tuple[float, torch.Tensor]:
    """An empirical min of g over the box: dense uniform sampling, then projected sign-gradient
    descent from the best samples. An upper bound on the true minimum."""
    gen = torch.Generator().manual_seed(seed)
    lo, hi = lower.to(DTYPE), upper.to(DTYPE)
    x = lo + torch.rand((n, lo.shape[0]), generator=gen, dtype=DTYPE) * (hi - lo)
    g64 = graph.to("cpu", DTYPE)
    Cd, dd = C.to(DTYPE), d.to(DTYPE)

    def g(x: torch.Tensor) -> torch.Tensor:
        return (g64.forward(x) @ Cd.T + dd).amax(dim=1)

    with torch.no_grad():
        v = g(x)
    x = x[v.argsort()[:starts]]
    step = (hi - lo) / 8
    best_v, best_x = float(v.min()), x[0].clone()
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        val = g(x)
        i = int(val.argmin())
        if float(val[i].detach()) < best_v:
            best_v, best_x = float(val[i].detach()), x[i].detach().clone()
        (grad,) = torch.autograd.grad(val.sum(), x)
        x = torch.minimum(torch.maximum(x - step * grad.sign(), lo), hi)
        step = step * 0.97
    return best_v, best_x


def make_problem(seed: int, offset: float, dtype: torch.dtype = DTYPE, fancy: bool = False,
                 rows: int = 0) -> Problem:
    """A random net with 4-10 inputs, 1-3 hidden layers of width 3-8 and a 1-3 row clause (`rows`
    rows when given) whose threshold puts the empirical minimum of g at `offset` (< 0: a known
    violating point exists)."""
    gen = torch.Generator().manual_seed(seed)
    n_in = int(torch.randint(4, 11, (1,), generator=gen))
    depth = int(torch.randint(1, 4, (1,), generator=gen))
    widths = [int(torch.randint(3, 9, (1,), generator=gen)) for _ in range(depth)]
    if fancy:
        widths[0] = 6
    n_out = int(torch.randint(2, 5, (1,), generator=gen))
    k = int(torch.randint(1, 4, (1,), generator=gen))
    k = rows or k
    graph = mlp(gen, n_in, widths, n_out, dtype, fancy)
    centre = torch.rand(n_in, generator=gen, dtype=DTYPE) * 2 - 1
    radius = torch.rand(n_in, generator=gen, dtype=DTYPE) * 0.7 + 0.3
    lower, upper = (centre - radius).to(dtype), (centre + radius).to(dtype)
    C = torch.randn(k, n_out, generator=gen, dtype=DTYPE)
    d0 = torch.randn(k, generator=gen, dtype=DTYPE) * 0.3
    v, x = sample_min(graph, C, d0, lower, upper, seed)
    d = d0 - v + offset
    problem = Problem(graph, lower, upper, C.to(dtype), d.to(dtype), x, float("nan"))
    problem.found_value = float(problem.g(x.reshape(1, -1).to(dtype))[0])
    return problem


def solve(p: Problem, config: ReluSplitConfig = FAST, seconds: float = 20.0):  # type: ignore[no-untyped-def]
    return relu_split_bab(p.graph, p.lower, p.upper, p.C, p.d, time.monotonic() + seconds, p.accept, config)


def assert_consistent(p: Problem, res, seed: int) -> None:  # type: ignore[no-untyped-def]
    """sat: the point violates; unsat: nothing sampled (uniform + PGD) or known violates."""
    if res.verdict == "sat":
        x = res.counterexample.reshape(1, -1)
        assert bool(((x >= p.lower) & (x <= p.upper)).all()), "sat point outside the box"
        assert float(p.g(x)[0]) <= 0, "sat point does not violate"
    if res.verdict == "unsat":
        assert p.found_value > 0, f"unsat but the oracle's point gives g = {p.found_value}"
        v, _ = sample_min(p.graph, p.C, p.d, p.lower, p.upper, seed + 1, n=100000, starts=256, steps=300)
        assert v > 0, f"unsat but sampling found g = {v}"
        assert res.margin > 0


CONFIGS = {
    "default": FAST,
    "clamp_only": ReluSplitConfig(batch_size=64, iterations=8, root_iterations=20, beta=False,
                                  settle_iterations=0),
    "no_refresh": ReluSplitConfig(batch_size=16, iterations=8, root_iterations=20, refresh_intermediate=False),
    "plain_crown": ReluSplitConfig(batch_size=8, iterations=0, root_iterations=0, mix_rows=False),
}


# --- verdicts ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(12))
def test_never_unsat_when_a_violating_point_exists(seed: int) -> None:
    p = make_problem(seed, offset=-0.01)
    assert p.found_value <= 0
    res = solve(p)
    assert res.verdict != "unsat"
    assert_consistent(p, res, seed)
    assert res.verdict == "sat", res  # these are small enough to decide


@pytest.mark.parametrize("seed", range(12))
def test_borderline_unsat_holds_under_sampling(seed: int) -> None:
    p = make_problem(100 + seed, offset=0.01)
    res = solve(p)
    assert_consistent(p, res, seed)
    assert res.verdict in ("sat", "unsat"), res  # decided either way (the oracle may have missed)


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("seed", range(4))
def test_configurations_stay_sound(name: str, seed: int) -> None:
    for offset in (-0.005, 0.005):
        p = make_problem(200 + seed, offset=offset)
        res = solve(p, CONFIGS[name], seconds=3.0)
        if offset < 0:
            assert res.verdict != "unsat"
        assert_consistent(p, res, seed)


@pytest.mark.parametrize("seed", range(4))
def test_relu_behind_reshape_and_scale_shift(seed: int) -> None:
    for offset in (-0.01, 0.01):
        p = make_problem(300 + seed, offset=offset, fancy=True)
        assert any(n.name == "ss" for n in p.graph.nodes)
        res = solve(p)
        if offset < 0:
            assert res.verdict != "unsat"
        assert_consistent(p, res, seed)


@pytest.mark.parametrize("seed", range(4))
def test_float32_with_float64_recheck_stays_sound(seed: int) -> None:
    for offset in (-1e-4, 1e-4, -0.01, 0.01):
        p = make_problem(400 + seed, offset=offset, dtype=torch.float32)
        res = solve(p)
        if p.found_value <= 0:
            assert res.verdict != "unsat"
        assert_consistent(p, res, seed)


@pytest.mark.parametrize("rows", [2, 3, 5])
@pytest.mark.parametrize("seed", range(3))
def test_float64_recheck_of_every_proof_with_multi_row_clauses(seed: int, rows: int) -> None:
    """Regression: the recheck indexed the clause's (k, m) rows by domain index (IndexError, or rows of
    the wrong count against the slopes) when a clause had several rows. Rechecking every proof
    (recheck_all) over many domains exercises it on every clause shape."""
    config = replace(FAST, recheck_all=True, batch_size=16)
    for offset in (-0.01, 0.01):
        p = make_problem(600 + 10 * rows + seed, offset=offset, dtype=torch.float32, rows=rows)
        assert p.C.shape[0] == rows
        res = solve(p, config, seconds=10.0)
        if p.found_value <= 0:
            assert res.verdict != "unsat"
        assert_consistent(p, res, seed)


def test_rejected_candidates_are_never_sat() -> None:
    p = make_problem(7, offset=-0.05)
    res = relu_split_bab(p.graph, p.lower, p.upper, p.C, p.d, time.monotonic() + 3, lambda x: False, FAST)
    assert res.verdict in ("unknown", "timeout")


def test_empty_clause_is_sat_at_once() -> None:
    p = make_problem(8, offset=0.5)
    res = relu_split_bab(p.graph, p.lower, p.upper, p.C[:0], p.d[:0], time.monotonic() + 5, lambda x: True)
    assert res.verdict == "sat"


def test_proved_at_the_root() -> None:
    p = make_problem(9, offset=5.0)
    res = solve(p)
    assert res.verdict == "unsat" and res.domains == 1 and res.margin > 0


# --- budget ------------------------------------------------------------------------------------------

def _hard_problem() -> Problem:
    gen = torch.Generator().manual_seed(11)
    graph = mlp(gen, 10, [24, 24, 24], 3)
    lower, upper = -torch.ones(10, dtype=DTYPE), torch.ones(10, dtype=DTYPE)
    C = torch.tensor([[1.0, -1.0, 0.0]], dtype=DTYPE)
    v, x = sample_min(graph, C, torch.zeros(1, dtype=DTYPE), lower, upper, 11, n=2000, steps=50)
    return Problem(graph, lower, upper, C, torch.tensor([-v + 1e-3], dtype=DTYPE), x, 1e-3)


def test_deadline_is_honoured() -> None:
    p = _hard_problem()
    never = lambda x: False  # noqa: E731
    start = time.monotonic()
    res = relu_split_bab(p.graph, p.lower, p.upper, p.C, p.d, start - 1.0, never, FAST)
    assert res.verdict == "timeout" and time.monotonic() - start < 1.0
    start = time.monotonic()
    res = relu_split_bab(p.graph, p.lower, p.upper, p.C, p.d, start + 0.5, never, FAST)
    assert res.verdict in ("timeout", "unsat")
    assert time.monotonic() - start < 0.5 + 2.0


def test_float64_recheck_stops_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: the float64 recheck of thin proofs redid a whole batch at once, without looking at the
    clock (on cifar10_resnet, 36 s past a 300 s deadline: the batch sizer had grown batches on steps
    without thin proofs). With every float32 proof rechecked and the recheck made slow (0.05 s a domain)
    from 1 s on, the search still returns soon after its deadline."""
    import verifier.bab.relu_split as relu_split

    real = relu_split.layer_bounds
    slow_from = time.monotonic() + 1.0

    def slow_in_float64(graph, xl, *args, **kwargs):  # type: ignore[no-untyped-def]
        if xl.dtype == torch.float64 and time.monotonic() > slow_from:
            time.sleep(0.05 * xl.shape[0])
        return real(graph, xl, *args, **kwargs)

    monkeypatch.setattr(relu_split, "layer_bounds", slow_in_float64)
    p = _hard_problem()
    graph, lower, upper, C, d = p.graph.to("cpu", torch.float32), p.lower.float(), p.upper.float(), p.C.float(), p.d.float()
    config = replace(FAST, recheck_all=True, batch_size=256)
    start = time.monotonic()
    res = relu_split_bab(graph, lower, upper, C, d, start + 3.0, lambda x: False, config)
    assert time.monotonic() - start < 3.0 + 1.5
    assert res.verdict == "timeout" and res.domains > 0


def test_layer_bounds_give_up_at_their_deadline() -> None:
    """layer_bounds with a passed deadline raises DeadlinePassed (no bounds half done), and with a
    future one returns the same bounds as without."""
    from verifier.bounds.crown import relaxed_inputs
    from verifier.bounds.layerwise import DeadlinePassed, layer_bounds

    p = _hard_problem()
    xl, xu, layers = p.lower.reshape(1, -1), p.upper.reshape(1, -1), list(relaxed_inputs(p.graph))
    with pytest.raises(DeadlinePassed):
        layer_bounds(p.graph, xl, xu, layers, None, -1, None, deadline=time.monotonic() - 1.0)
    plain = layer_bounds(p.graph, xl, xu, layers, None, -1, None)
    timed = layer_bounds(p.graph, xl, xu, layers, None, -1, None, deadline=time.monotonic() + 60.0)
    for name in layers:
        assert torch.equal(plain[name][0], timed[name][0]) and torch.equal(plain[name][1], timed[name][1])


def test_memory_guard_gives_unknown_with_a_reason() -> None:
    p = _hard_problem()
    config = ReluSplitConfig(batch_size=4, iterations=0, root_iterations=0, max_frontier=2)
    res = relu_split_bab(p.graph, p.lower, p.upper, p.C, p.d, time.monotonic() + 10, lambda x: False, config)
    assert res.verdict == "unknown" and "open domains" in res.message


def test_memory_share_scales_the_frontier_guard() -> None:
    """A search told it may count on a sliver of the host's memory (`run --jobs N` gives 1/N) stops at a
    frontier of that size: here 1e-12 of the free memory is a few bytes, so the first children exceed it."""
    p = _hard_problem()
    config = ReluSplitConfig(batch_size=4, iterations=0, root_iterations=0, memory_share=1e-12)
    res = relu_split_bab(p.graph, p.lower, p.upper, p.C, p.d, time.monotonic() + 10, lambda x: False, config)
    assert res.verdict == "unknown" and "open domains" in res.message and res.domains <= 4


# --- the bounding of split domains, point by point -----------------------------------------------------

@pytest.mark.parametrize("beta", [True, False])
@pytest.mark.parametrize("seed", range(6))
def test_split_domain_bounds_hold_on_their_points(seed: int, beta: bool) -> None:
    """Random split decisions, several rounds deep: each domain's lower bound is <= C·f(x) at every
    sampled point of the box that meets the domain's decisions, and children's boxes are clamped."""
    p = make_problem(500 + seed, offset=0.0)
    config = ReluSplitConfig(iterations=15, beta=beta, lr_beta=0.5, mix_rows=False)
    deadline = time.monotonic() + 60
    search = _Search(p.graph, p.lower, p.upper, p.C, p.d, deadline, p.accept, config,
                     RootBounds(p.graph, p.lower, p.upper, deadline, config))
    gen = torch.Generator().manual_seed(seed)
    doms = search._root()
    x = p.lower + torch.rand((4000, p.lower.shape[0]), generator=gen, dtype=DTYPE) * (p.upper - p.lower)
    values = p.graph.forward(x, keep=True)
    y = values[p.graph.output_name].reshape(x.shape[0], -1) @ p.C.T  # (P, k)
    for _ in range(4):
        b = _bound(p.graph, search.xl, search.xu, search.C, search.d, doms, search.layers, search.relu_of, config,
                   config.iterations, math.inf)
        feasible = torch.ones((len(doms), x.shape[0]), dtype=torch.bool)
        for name in search.layers:
            z = values[name].reshape(1, x.shape[0], -1)
            s = doms.sign[name].reshape(len(doms), 1, -1)
            feasible &= ((s >= 0) | (z <= 0)).all(-1) & ((s <= 0) | (z >= 0)).all(-1)
            l, u = (t.reshape(len(doms), 1, -1) for t in b.boxes[name])
            inside = ((z >= l - 1e-9) & (z <= u + 1e-9)).all(-1)
            assert bool((inside | ~feasible).all()), "a feasible point's pre-activation is outside its bounds"
        for i in range(len(doms)):
            if bool(feasible[i].any()):
                assert bool((y[feasible[i]] >= b.lb[i] - 1e-9).all()), "bound above a feasible point's value"
                assert not bool(b.empty[i]), "a domain with a feasible point was called empty"
        # split every domain on a random unstable neuron (or keep it whole when there is none)
        split = split_at_random(search, b, doms, gen)
        if split is None:
            break
        doms, layer, neuron, idx = split
        n = len(idx)
        for r, (li, j) in enumerate(zip(layer, neuron)):
            name = search.layers[li]
            assert float(doms.lower[name][r].flatten()[j]) == 0.0 and int(doms.sign[name][r].flatten()[j]) == 1
            assert float(doms.upper[name][r + n].flatten()[j]) == 0.0 and int(doms.sign[name][r + n].flatten()[j]) == -1


def test_no_relu_is_unknown_not_a_crash() -> None:
    gen = torch.Generator().manual_seed(3)
    graph = mlp(gen, 4, [], 2)
    lower, upper = -torch.ones(4, dtype=DTYPE), torch.ones(4, dtype=DTYPE)
    res = relu_split_bab(graph, lower, upper, torch.tensor([[1.0, -1.0]], dtype=DTYPE),
                         torch.zeros(1, dtype=DTYPE), time.monotonic() + 5, lambda x: False)
    assert res.verdict == "unknown"


def test_seed_reaches_the_attack_generator() -> None:
    """verify --seed N seeds the random attack starts of ReLU-split BaB (and nothing else changes)."""
    p = make_problem(7, offset=0.0)
    deadline = time.monotonic() + 60
    searches = [_Search(p.graph, p.lower, p.upper, p.C, p.d, deadline, p.accept, ReluSplitConfig(seed=s),
                        RootBounds(p.graph, p.lower, p.upper, deadline)) for s in (0, 0, 5)]
    draws = [torch.rand(4, generator=s.gen) for s in searches]
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])


def test_out_of_memory_halves_the_batch_and_carries_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch that runs out of memory goes back on the stack and is bounded again in halves; the verdict
    is the one an unconstrained run gives. Out of memory on a single domain ends in `unknown`, not a crash."""
    p = make_problem(100, offset=0.01)
    config = ReluSplitConfig(batch_size=64, iterations=8, root_iterations=20)
    expected = solve(p, config)
    assert expected.verdict in ("sat", "unsat") and expected.domains > 3
    real_step, sizes = _Search._step, []

    def fails_above_one(self, doms, iterations):  # type: ignore[no-untyped-def]
        sizes.append(len(doms))
        if len(doms) > 1:
            raise torch.OutOfMemoryError("test: pretend the device is full")
        return real_step(self, doms, iterations)

    monkeypatch.setattr(_Search, "_step", fails_above_one)
    res = solve(p, config)
    assert res.verdict == expected.verdict
    first_failure = next(i for i, n in enumerate(sizes) if n > 1)
    assert sizes[first_failure + 1:] and max(sizes[first_failure + 1:]) == 1

    def always_fails(self, doms, iterations):  # type: ignore[no-untyped-def]
        raise torch.OutOfMemoryError("test: pretend the device is full")

    monkeypatch.setattr(_Search, "_step", always_fails)
    res = solve(p, config)
    assert res.verdict == "unknown" and "out of memory" in res.message


def test_float64_recheck_reuses_root_layers_and_keeps_domain_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """The float64 recheck takes the root's bounds for the layers before each domain's first split and
    reorders domains by that layer internally: its margins come back in the order asked, equal to
    those of recomputing every layer (no decision lies before the first split, and the root's bounds
    are what recomputing them gives)."""
    p = _hard_problem()
    graph, lower, upper = p.graph.to("cpu", torch.float32), p.lower.float(), p.upper.float()
    config = ReluSplitConfig(iterations=4, root_iterations=4, mix_rows=False)
    deadline = time.monotonic() + 120
    search = _Search(graph, lower, upper, p.C.float(), p.d.float(), deadline, lambda x: False, config,
                     RootBounds(graph, lower, upper, deadline, config))
    gen = torch.Generator().manual_seed(3)
    doms, firsts = search._root(), set()
    for _ in range(3):
        b = _bound(graph, search.xl, search.xu, search.C, search.d, doms, search.layers, search.relu_of, config,
                   config.iterations, math.inf)
        split = split_at_random(search, b, doms, gen)
        assert split is not None
        doms = split[0]
    b = _bound(graph, search.xl, search.xu, search.C, search.d, doms, search.layers, search.relu_of, config,
               config.iterations, math.inf)
    everything = torch.arange(len(doms))
    firsts = search._first_split(doms, everything)
    assert len(set(firsts.tolist())) > 1  # the case: domains whose first split is in different layers
    perm = torch.randperm(len(doms), generator=gen)
    exact, empty = search._recheck64(perm, doms, b)
    in_order, in_order_empty = search._recheck64(everything, doms, b)
    assert torch.equal(empty, in_order_empty[perm])
    torch.testing.assert_close(exact, in_order[perm], rtol=1e-12, atol=1e-12)  # chunks differ: last bits may
    monkeypatch.setattr(search, "_first_split", lambda doms, idx: torch.zeros(idx.numel(), dtype=torch.long))
    recomputed, recomputed_empty = search._recheck64(everything, doms, b)
    assert torch.equal(in_order_empty, recomputed_empty)
    finite = torch.isfinite(recomputed)
    assert torch.equal(finite, torch.isfinite(in_order))
    torch.testing.assert_close(in_order[finite], recomputed[finite], rtol=1e-9, atol=1e-9)
