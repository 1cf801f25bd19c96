"""Every way loading can fail gives one line: 'PATH: what is wrong'."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from onnx import helper

from tests.model.onnx_builders import init, rand, save
from verifier.errors import ModelError, UnsupportedModelError
from verifier.model import loader, onnx_file
from verifier.model.check import check_against_onnxruntime, verify_equivalence
from verifier.model.loader import load_model


def _fails(path: Path, error: type = ModelError) -> str:
    with pytest.raises(error) as info:
        load_model(path, cache=False)
    msg = str(info.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg
    return msg


def _gemm(path: Path, inputs=(("x", [1, 3]),), outputs=(("y", [1, 2]),), extra=()) -> Path:
    nodes = [helper.make_node("Gemm", ["x", "W"], ["y"], name="fc", transB=1), *extra]
    return save(path, nodes, inputs, outputs, [init("W", rand(2, 3))])


def test_unsupported_ops_are_listed_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = [
        helper.make_node("Exp", ["x"], ["a"], name="exp1"),
        helper.make_node("LogSoftmax", ["a"], ["b"], name="sm"),
        helper.make_node("Exp", ["b"], ["c"], name="exp2"),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    path = save(tmp_path / "model.onnx", nodes, [("x", [1, 3])], [("y", [1, 3])])
    monkeypatch.setattr(loader, "to_fx", _not_reached)  # the scan comes before any conversion work
    monkeypatch.setattr(onnx_file, "upgrade", _not_reached)
    msg = _fails(path, UnsupportedModelError)
    assert msg == (f"{path}: unsupported ONNX ops: Exp (nodes: exp1, exp2); LogSoftmax (nodes: sm) -- verify "
                   "the logits instead: export the model without its final LogSoftmax")


def _not_reached(*args, **kwargs):
    raise AssertionError("conversion started before the unsupported-op scan")


def test_unnamed_unsupported_nodes_are_named_by_position(tmp_path: Path) -> None:
    names = ["x"] + [f"h{i}" for i in range(6)] + ["y"]
    nodes = [helper.make_node("Relu", [names[0]], [names[1]])]
    nodes += [helper.make_node("Exp", [a], [b]) for a, b in zip(names[1:], names[2:])]
    msg = _fails(save(tmp_path / "m.onnx", nodes, [("x", [1, 3])], [("y", [1, 3])]), UnsupportedModelError)
    assert msg.endswith("unsupported ONNX ops: Exp (nodes: Exp#1, Exp#2, Exp#3, Exp#4, Exp#5, +1 more)")


@pytest.mark.parametrize("node,n_in,n_out,reason", [
    (helper.make_node("Div", ["c", "x"], ["y"], name="n"), 3, [1, 3], "not affine"),
    (helper.make_node("Div", ["x", "z"], ["y"], name="n"), 3, [1, 3], "zeros"),
])
def test_non_affine_patterns_name_the_node(tmp_path: Path, node, n_in: int, n_out: list, reason: str) -> None:
    """The handler's reason is kept when the generic affine form refuses the node too."""
    inits = [init("c", rand(1, 3)), init("W", rand(1, 3)), init("z", np.zeros(3, np.float32))]
    msg = _fails(save(tmp_path / "m.onnx", [node], [("x", [1, n_in])], [("y", n_out)], inits), UnsupportedModelError)
    assert "node n (" in msg and reason in msg


@pytest.mark.parametrize("n_in,n_out", [(1, [1, 3]), (3, [3, 3])])
def test_gemm_with_trans_a_takes_the_affine_form(tmp_path: Path, n_in: int, n_out: list) -> None:
    """transA=1 contracts dim 0: [1, 1] stays batched, [1, 3] -> [3, 3] is read unbatched; both match."""
    node = helper.make_node("Gemm", ["x", "W"], ["y"], name="n", transA=1)
    model = load_model(save(tmp_path / "m.onnx", [node], [("x", [1, n_in])], [("y", n_out)],
                            [init("W", rand(1, 3))]), cache=False)
    assert model.graph.n_outputs == n_out[0] * n_out[1] and model.onnx_batched == (n_in == 1)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_affine_form_with_non_finite_weights_is_refused_in_one_line(tmp_path: Path, bad: float) -> None:
    """Regression (found by bench/fuzz.py): a nan/inf weight made the affine form's self-check crash (exit 4)."""
    W = rand(1, 3)
    W[0, 1] = bad
    node = helper.make_node("Gemm", ["x", "W"], ["y"], name="n", transA=1)
    msg = _fails(save(tmp_path / "m.onnx", [node], [("x", [1, 3])], [("y", [3, 3])], [init("W", W)]),
                 UnsupportedModelError)
    assert "node n (" in msg


def test_matmul_on_a_matrix_per_sample_takes_the_affine_form(tmp_path: Path) -> None:
    nodes = [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")]
    path = save(tmp_path / "m.onnx", nodes, [("x", [1, 2, 3])], [("y", [1, 2, 4])], [init("W", rand(3, 4))])
    model = load_model(path, cache=False)  # checked against onnxruntime
    assert model.graph.output_shape == (2, 4) and model.onnx_batched


def test_missing_file(tmp_path: Path) -> None:
    assert _fails(tmp_path / "nope.onnx").endswith("no such file")


def test_directory(tmp_path: Path) -> None:
    assert "directory" in _fails(tmp_path)


@pytest.mark.parametrize("content", [b"", b"not an onnx file\n" * 3, bytes(range(256))])
def test_not_onnx(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(content)
    assert "not an ONNX file" in _fails(path)


def test_names_that_are_not_utf8(tmp_path: Path) -> None:
    """A corrupt file whose node name decodes to bytes is refused, not an internal error later."""
    good = save(tmp_path / "good.onnx", [helper.make_node("Relu", ["x"], ["y"], name="ABCDEF")],
                [("x", [1, 3])], [("y", [1, 3])])
    path = tmp_path / "m.onnx"
    path.write_bytes(good.read_bytes().replace(b"ABCDEF", b"AB\xff\xfeEF"))
    assert "not UTF-8" in _fails(path)


@pytest.mark.parametrize("alpha", [-1.0, float("nan"), float("inf")])
def test_leaky_relu_with_a_slope_we_cannot_bound(tmp_path: Path, alpha: float) -> None:
    nodes = [helper.make_node("Gemm", ["x", "W"], ["h"], name="fc", transB=1),
             helper.make_node("LeakyRelu", ["h"], ["y"], name="leaky", alpha=alpha)]
    path = save(tmp_path / "m.onnx", nodes, [("x", [1, 3])], [("y", [1, 3])], [init("W", rand(3, 3))])
    assert "node leaky (LeakyRelu): negative slope" in _fails(path)


def test_external_data_without_a_location(tmp_path: Path) -> None:
    import onnx

    W = init("W", rand(3, 3))
    W.data_location = onnx.TensorProto.EXTERNAL
    W.ClearField("raw_data")
    graph = helper.make_graph([helper.make_node("Gemm", ["x", "W"], ["y"], name="fc", transB=1)], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])], initializer=[W])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    assert "cannot read external tensor data" in _fails(path)


def test_attribute_names_that_are_not_utf8(tmp_path: Path) -> None:
    """Any text field, not only node names: onnxruntime would print its own multi-line error otherwise."""
    good = save(tmp_path / "good.onnx", [helper.make_node("Gemm", ["x", "W"], ["y"], name="fc", transB=1)],
                [("x", [1, 3])], [("y", [1, 3])], [init("W", rand(3, 3))])
    path = tmp_path / "m.onnx"
    path.write_bytes(good.read_bytes().replace(b"transB", b"\xd0ransB"))
    assert "not UTF-8" in _fails(path)


def test_two_inputs(tmp_path: Path) -> None:
    add = helper.make_node("Add", ["y0", "x2"], ["y1"], name="add")
    nodes = [helper.make_node("Gemm", ["x", "W"], ["y0"], name="fc", transB=1), add]
    path = save(tmp_path / "m.onnx", nodes, [("x", [1, 3]), ("x2", [1, 2])], [("y1", [1, 2])], [init("W", rand(2, 3))])
    assert "expected one input, found 2 (x, x2)" in _fails(path)


def test_two_outputs(tmp_path: Path) -> None:
    path = _gemm(tmp_path / "m.onnx", outputs=(("y", [1, 2]), ("z", [1, 2])),
                 extra=[helper.make_node("Relu", ["y"], ["z"], name="r")])
    assert "expected one output, found 2" in _fails(path)


@pytest.mark.parametrize("shape,reason", [([], "is a scalar"),
                                          ([1, "k"], "only the first dimension may be symbolic")])
def test_bad_input_shapes(tmp_path: Path, shape: list, reason: str) -> None:
    path = _gemm(tmp_path / "m.onnx", inputs=(("x", shape),), outputs=(("y", [1, 2]),))
    assert reason in _fails(path)


def test_a_first_dim_other_than_1_is_no_batch_dim(tmp_path: Path) -> None:
    """[4, 3]: the whole tensor is one sample (ONNX does not require a batch dimension)."""
    path = _gemm(tmp_path / "m.onnx", inputs=(("x", [4, 3]),), outputs=(("y", [4, 2]),))
    model = load_model(path, cache=False)
    assert not model.onnx_batched and model.graph.input_shape == (4, 3) and model.graph.output_shape == (4, 2)


def test_disagreement_with_onnxruntime_is_reported(tmp_path: Path) -> None:
    model = load_model(_gemm(tmp_path / "m.onnx"), cache=False)
    lin = model.graph.nodes[1]
    bad = replace(lin, params={**lin.params, "b": lin.params["b"] + 0.5})
    broken = replace(model, graph=replace(model.graph, nodes=(model.graph.nodes[0], bad)))
    with pytest.raises(ModelError, match=r"max abs difference 0\.5"):
        verify_equivalence(broken)
    assert check_against_onnxruntime(model, np.zeros((3, 3))) < 1e-6
    with pytest.raises(ValueError):
        check_against_onnxruntime(model, np.zeros((3, 4)))
    assert torch.is_tensor(lin.params["W"])


def test_an_empty_hidden_tensor_is_refused_by_name(tmp_path: Path) -> None:
    """Regression (found by bench/fuzz.py): a Gemm to 0 units feeding a Softmax loaded, then the Softmax bound
    reduced over the empty axis (exit 4, 'max(): Expected reduction dim 2 to have non-zero size')."""
    nodes = [helper.make_node("Gemm", ["x", "W0"], ["h"], name="empty", transB=1),
             helper.make_node("Softmax", ["h"], ["s"], name="sm"),
             helper.make_node("Gemm", ["s", "W1"], ["y"], name="out", transB=1)]
    path = save(tmp_path / "m.onnx", nodes, [("x", [1, 3])], [("y", [1, 2])],
                [init("W0", rand(0, 3)), init("W1", rand(2, 0))])
    msg = _fails(path)
    assert "node empty (Gemm)" in msg and "empty tensor" in msg
