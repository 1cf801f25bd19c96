"""The float32 evaluation error bound (verifier.bounds.float_error) against onnxruntime, and the margin
check (verifier.bounds.margin_check) that uses it.

Soundness claim under test: for every real x in a box, |C (ort(fl32(x)) - f(x))| <= E row by row, where f
is the real-valued network (evaluated here in float64 on the float32 weights the file holds) and E is
`row_errors` over the box, with or without CROWN's intermediate bounds (computed in float32, as the input
split engine passes them). Generated networks: MLPs and CNNs, relu / sigmoid / tanh, max pooling, residual
adds; and the same with large weights and biases, where float32 rounding is far from negligible.
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from tests.differential.networks import Layer, Net, float32_net, random_net, run_layers, to_onnx
from verifier.bounds.crown import crown, intermediate_bounds
from verifier.bounds.float_error import U32, gamma, input_rounding, row_errors
from verifier.bounds.margin_check import Allowance, allowance, proves
from verifier.model.loader import load_model


def _scaled(net: Net, w: float, b: float) -> Net:
    """The net with weights x w and biases x b: larger magnitudes, larger float32 rounding."""
    def scale(layers: list[Layer]) -> list[Layer]:
        return [Layer(l.kind, W=None if l.W is None else l.W * w, b=None if l.b is None else l.b * b, fn=l.fn,
                      groups=l.groups, body=scale(l.body), onnx=_scaled_onnx(l.onnx, w, b)) for l in layers]
    return Net(net.input_shape, scale(net.layers), net.name)


def _scaled_onnx(o: dict, w: float, b: float) -> dict:
    if o.get("op") != "conv":
        return o
    return {**o, "kernel": o["kernel"] * w, "bias": o["bias"] * b}


def _case(seed: int, tmp_path):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    net = random_net(rng)
    if seed % 2:  # big magnitudes: outputs ~1e3-1e5, rounding errors ~1e-3 and more
        net = _scaled(net, 1.0 + 3 * rng.random(), float(10 ** rng.integers(2, 5)))
    path = tmp_path / f"net{seed}.onnx"
    onnx.save(to_onnx(net), str(path))
    return float32_net(net), path, rng


def _ort(path, shape: tuple[int, ...]):  # type: ignore[no-untyped-def]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"X": x.astype(np.float32).reshape((1,) + shape)})[0].reshape(-1)


@pytest.mark.parametrize("seed", range(24))
def test_onnxruntime_float32_lies_within_the_error_bound(seed: int, tmp_path) -> None:
    net, path, rng = _case(seed, tmp_path)
    model = load_model(str(path), check=False)
    run = _ort(path, net.input_shape)
    n = int(np.prod(net.input_shape))
    n_out = run(np.zeros(n)).size
    C = torch.as_tensor(rng.normal(size=(3, n_out)))
    # a few boxes: wide and narrow, ends not float32 numbers (the input is then rounded too)
    centre = rng.uniform(-1, 1, size=(4, n))
    radius = rng.uniform(0.001, 0.5, size=(4, n)) * np.array([[1.0], [0.1], [0.01], [1.0]])
    lo, hi = torch.as_tensor(centre - radius), torch.as_tensor(centre + radius)
    E = row_errors(model.graph, lo, hi, C).numpy()
    g32 = model.graph.to("cpu", torch.float32)
    with torch.no_grad():
        known = intermediate_bounds(g32, lo.float(), hi.float())
    E_known = row_errors(model.graph, lo, hi, C, known).numpy()
    g64 = model.graph.to("cpu", torch.float64)
    with torch.no_grad():
        real = crown(g64, lo, hi, C)
    worst = 0.0
    for b in range(lo.shape[0]):
        xs = lo[b].numpy() + rng.uniform(size=(48, n)) * (hi[b] - lo[b]).numpy()
        xs = np.concatenate([xs, [lo[b].numpy(), hi[b].numpy()]])
        for x in xs:
            y_real = run_layers(net.layers, x[None])[0]
            y_f32 = run(x).astype(np.float64)
            gap = np.abs(C.numpy() @ (y_f32 - y_real))
            assert np.all(gap <= E[b]), (b, gap, E[b])
            assert np.all(gap <= E_known[b]), (b, gap, E_known[b])
            rows = C.numpy() @ y_f32
            assert np.all(rows >= real.lb[b].numpy() - E_known[b] - 1e-9)
            assert np.all(rows <= real.ub[b].numpy() + E_known[b] + 1e-9)
            worst = max(worst, float((gap / np.maximum(E_known[b], 1e-300)).max()))
    assert np.all(np.isfinite(E_known))
    assert worst <= 1.0


def test_the_bound_is_not_vacuous_on_a_forced_rounding() -> None:
    """y = (x + 2^24) - 2^24 on x in [0, 1]: float32 rounds x + 2^24 to an even integer, so the error is
    up to 1; the bound must be at least that, and not orders of magnitude more."""
    from verifier.model.graph import Graph, Node

    big = float(2 ** 24)
    nodes = (Node("x", "input", (), (1,)),
             Node("h", "linear", ("x",), (1,), {"W": torch.ones(1, 1), "b": torch.tensor([big])}),
             Node("r", "relu", ("h",), (1,)),
             Node("y", "linear", ("r",), (1,), {"W": torch.ones(1, 1), "b": torch.tensor([-big])}))
    graph = Graph(nodes, "x", "y")
    E = float(row_errors(graph, torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1))[0, 0])
    assert 1.0 <= E <= 20.0


def test_input_rounding_only_off_float32_numbers() -> None:
    lo = torch.tensor([[0.5, 0.1, -3.0]], dtype=torch.float64)
    hi = torch.tensor([[0.75, 0.2, -2.0]], dtype=torch.float64)
    e = input_rounding(lo, hi)[0]
    assert float(e[0]) == 0.0 and float(e[2]) == 0.0  # ends representable in float32
    assert float(e[1]) >= abs(np.float32(0.2) - 0.2) and float(e[1]) <= 2 * U32 * 0.2 + 1e-30


def test_gamma() -> None:
    assert gamma(1) == pytest.approx(U32, rel=1e-6)
    assert gamma(2 ** 24) == float("inf")


@pytest.mark.parametrize("seed", range(20))
def test_proves_never_accepts_a_margin_within_the_semantic_error(seed: int) -> None:
    rng = np.random.default_rng(seed)
    semantic = torch.as_tensor(rng.uniform(0, 1e-2, 200))
    rounding = torch.as_tensor(rng.uniform(0, 1e-3, 200))
    allow = Allowance(semantic, rounding)
    for dtype in (torch.float32, torch.float64):
        margin = (semantic + torch.as_tensor(rng.uniform(-2e-3, 2e-3, 200))).to(dtype)
        proved, thin = proves(margin, allow)
        assert bool((margin.double()[proved] > semantic[proved]).all())
        if dtype == torch.float32:
            assert bool((margin.double()[proved] > (semantic + rounding)[proved]).all())
        assert not bool((proved & thin).any())


def test_real_semantics_allows_no_semantic_error(tmp_path) -> None:
    net, path, rng = _case(3, tmp_path)
    model = load_model(str(path), check=False)
    lo = torch.zeros(1, int(np.prod(net.input_shape)), dtype=torch.float64)
    C = torch.ones(1, model.graph.n_outputs, dtype=torch.float64)
    real, f32 = (allowance(model.graph, lo, lo + 0.1, C, s) for s in ("real", "float32"))
    assert float(real.semantic[0]) == 0.0 and float(f32.semantic[0]) > 0.0
    assert float(real.rounding[0]) == float(f32.rounding[0]) > 0.0


def test_an_op_without_an_error_rule_gives_infinity_and_real_semantics_still_proves(tmp_path) -> None:
    """Regression (found by the vnnlib-satisfactory suite, cast01): Cast(Cast(x, bool), float) is a step with
    no float32 error rule. Its error must be +inf (torch's nan_to_num had turned it into the float64 maximum, a
    finite 'rounding allowance' of 1.8e308 that no margin exceeds), so that real semantics falls back to the
    magnitude allowance and proves the clause (y = 1 on [-2, -1], so y - 0.5 >= 0.5), and float32 never does."""
    from onnx import TensorProto, helper

    from tests.model.onnx_builders import save

    nodes = [helper.make_node("Cast", ["x"], ["b"], to=TensorProto.BOOL),
             helper.make_node("Cast", ["b"], ["y"], to=TensorProto.FLOAT)]
    graph = load_model(save(tmp_path / "step.onnx", nodes, [("x", [1, 1])], [("y", [1, 1])], []), cache=False).graph
    lower, upper, C = torch.tensor([[-2.0]]), torch.tensor([[-1.0]]), torch.tensor([[1.0]])
    assert torch.isinf(row_errors(graph, lower, upper, C)).all()
    margin = torch.tensor([0.5])
    assert bool(proves(margin, allowance(graph, lower, upper, C, "real"))[0].all())
    assert not bool(proves(margin, allowance(graph, lower, upper, C, "float32"))[0].any())
