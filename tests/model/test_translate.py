"""ONNX patterns -> our graph, each compared with onnxruntime at batch 1 and batch 7."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper

from tests.model.onnx_builders import const, init, load_and_compare, ops, rand, save


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.5, -2.0)])
@pytest.mark.parametrize("bias", ["vector", "row", "scalar", "none"])
@pytest.mark.parametrize("via_constant_node", [False, True])
def test_gemm_attributes(tmp_path: Path, trans_b: int, alpha: float, beta: float, bias: str,
                         via_constant_node: bool) -> None:
    """nn.Linear fast path (initializers) and OnnxGemm (Constant-node operands or 2-D bias) both honour attributes."""
    w = rand(4, 3) if trans_b else rand(3, 4)
    c = {"vector": rand(4), "row": rand(1, 4), "scalar": rand(1), "none": None}[bias]
    operands = ["x", "W"] + ([] if c is None else ["C"])
    consts = [("W", w)] + ([] if c is None else [("C", c)])
    nodes = [const(n, v) for n, v in consts] if via_constant_node else []
    inits = [] if via_constant_node else [init(n, v) for n, v in consts]
    nodes.append(helper.make_node("Gemm", operands, ["y"], name="gemm", transB=trans_b, alpha=alpha, beta=beta))
    model = load_and_compare(save(tmp_path / "m.onnx", nodes, [("x", [1, 3])], [("y", [1, 4])], inits))
    assert ops(model) == ["input", "linear"]
    assert "gemm" in model.graph.nodes[1].source


def test_matmul_add_layers_merge(tmp_path: Path) -> None:
    """MatMul+Add, twice with no nonlinearity between, is a single linear layer."""
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h"], name="mm1"),
        helper.make_node("Add", ["h", "b1"], ["h1"], name="add1"),
        helper.make_node("MatMul", ["h1", "W2"], ["g"], name="mm2"),
        helper.make_node("Add", ["b2", "g"], ["y"], name="add2"),  # constant first
    ]
    inits = [init("W1", rand(5, 6)), init("b1", rand(6)), init("W2", rand(6, 2)), init("b2", rand(2))]
    model = load_and_compare(save(tmp_path / "m.onnx", nodes, [("x", ["N", 5])], [("y", ["N", 2])], inits))
    assert ops(model) == ["input", "linear"]
    assert model.graph.nodes[1].source == "mm1, add1, mm2, add2"


def test_normalisation_before_flatten_is_absorbed(tmp_path: Path) -> None:
    """Per-channel (x - mean) / std on an image, Flatten, Gemm: the normalisation lands in the first linear."""
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["c"], name="sub"),
        helper.make_node("Div", ["c", "std"], ["n"], name="div"),
        helper.make_node("Flatten", ["n"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "W", "b"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Gemm", ["r", "W2", "b2"], ["y"], name="fc2", transB=1),
    ]
    inits = [init("mean", rand(1, 2, 1, 1)), init("std", np.array([[[[0.5]], [[2.0]]]], np.float32)),
             init("W", rand(8, 18)), init("b", rand(8)), init("W2", rand(3, 8)), init("b2", rand(3))]
    model = load_and_compare(save(tmp_path / "m.onnx", nodes, [("x", [1, 2, 3, 3])], [("y", [1, 3])], inits))
    assert ops(model) == ["input", "reshape", "linear", "relu", "linear"]
    assert model.graph.input_shape == (2, 3, 3)
    assert model.graph.nodes[2].source == "sub, div, fc1"


@pytest.mark.parametrize("batch_dim,shape1,shape2", [(1, [1, 3, 4], [1, 12]), ("N", [-1, 3, 4], [0, -1])])
def test_reshape_batch_agnostic(tmp_path: Path, batch_dim, shape1: list[int], shape2: list[int]) -> None:
    """A Reshape hard-coding batch 1 still gives a graph that runs at batch 7 (per-sample target shapes)."""
    nodes = [
        helper.make_node("Reshape", ["x", "s1"], ["a"], name="r1"),
        helper.make_node("Relu", ["a"], ["b"], name="relu"),
        helper.make_node("Reshape", ["b", "s2"], ["c"], name="r2"),
        helper.make_node("Gemm", ["c", "W"], ["y"], name="fc", transB=1),
    ]
    inits = [init("s1", np.array(shape1, np.int64)), init("s2", np.array(shape2, np.int64)), init("W", rand(2, 12))]
    model = load_and_compare(save(tmp_path / "m.onnx", nodes, [("x", [batch_dim, 12])], [("y", [batch_dim, 2])], inits))
    assert [(n.op, n.shape) for n in model.graph.nodes] == [
        ("input", (12,)), ("reshape", (3, 4)), ("relu", (3, 4)), ("reshape", (12,)), ("linear", (2,))]


def test_elementwise_constants_and_folding(tmp_path: Path) -> None:
    """c - x, x / c, Mul, Neg and a constant computed from Constant nodes (folded) all become one scale_shift."""
    nodes = [
        const("k1", np.array([2.0], np.float32)),
        const("k2", rand(4)),
        helper.make_node("Mul", ["k1", "k2"], ["k"], name="fold_me"),  # constant-only: folded
        helper.make_node("Sub", ["k", "x"], ["a"], name="c_minus_x"),
        helper.make_node("Div", ["a", "d"], ["b"], name="div"),
        helper.make_node("Neg", ["b"], ["c"], name="neg"),
        helper.make_node("Mul", ["c", "m"], ["e"], name="mul"),
        helper.make_node("Add", ["e", "k"], ["y"], name="add"),
    ]
    inits = [init("d", np.array([4.0, -2.0, 0.5, 1.0], np.float32)), init("m", rand(1, 4))]
    model = load_and_compare(save(tmp_path / "m.onnx", nodes, [("x", [1, 4])], [("y", [1, 4])], inits))
    assert ops(model) == ["input", "scale_shift"]
    assert "fold_me" not in model.graph.nodes[1].source


def test_identity_and_dropout_are_dropped(tmp_path: Path) -> None:
    """Including a Dropout with a mask output, for which onnx2torch's getitem(y, 0) would drop the batch row."""
    nodes = [
        helper.make_node("Identity", ["x"], ["a"], name="id"),
        helper.make_node("Dropout", ["a"], ["b", "mask"], name="drop_mask"),
        helper.make_node("Gemm", ["b", "W"], ["h"], name="fc1", transB=1),
        helper.make_node("Dropout", ["h", "ratio"], ["c"], name="drop_ratio"),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    inits = [init("W", rand(4, 3)), init("ratio", np.array(0.3, np.float32))]
    model = load_and_compare(save(tmp_path / "m.onnx", nodes, [("x", [1, 3])], [("y", [1, 4])], inits))
    assert ops(model) == ["input", "linear", "relu"]


def test_matmul_constant_on_the_left_with_column_input(tmp_path: Path) -> None:
    """W @ x on a per-sample column (n, 1), like mnist_fc's [1, 784, 1] input: W is used as is."""
    nodes = [
        helper.make_node("MatMul", ["W", "x"], ["h"], name="mm"),
        helper.make_node("Relu", ["h"], ["y"], name="relu"),
    ]
    path = save(tmp_path / "m.onnx", nodes, [("x", [1, 6, 1])], [("y", [1, 4, 1])], [init("W", rand(4, 6))])
    model = load_and_compare(path)
    assert [(n.op, n.shape) for n in model.graph.nodes] == [
        ("input", (6, 1)), ("reshape", (6,)), ("linear", (4,)), ("reshape", (4, 1)), ("relu", (4, 1))]


def test_matmul_on_row_with_unit_dims(tmp_path: Path) -> None:
    """x @ W on a per-sample (1, 1, n) tensor: reshape to (n,), linear, reshape back to (1, 1, m)."""
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"], name="mm"),
        helper.make_node("Relu", ["h"], ["y"], name="relu"),
    ]
    model = load_and_compare(save(tmp_path / "m.onnx", nodes, [("x", [1, 1, 1, 5])], [("y", [1, 1, 1, 3])],
                                  [init("W", rand(5, 3))]))
    assert [(n.op, n.shape) for n in model.graph.nodes] == [
        ("input", (1, 1, 5)), ("reshape", (5,)), ("linear", (3,)), ("reshape", (1, 1, 3)), ("relu", (1, 1, 3))]


def test_old_opset_is_upgraded(tmp_path: Path) -> None:
    """Opset 8 (as in ACAS Xu): Flatten-1 and MatMul/Add need the upgrade to 13 before onnx2torch."""
    nodes = [
        helper.make_node("Sub", ["x", "avg"], ["a"], name="sub"),
        helper.make_node("Flatten", ["a"], ["f"], name="flat", axis=1),
        helper.make_node("MatMul", ["f", "W"], ["h"], name="mm"),
        helper.make_node("Add", ["h", "b"], ["y"], name="add"),
    ]
    inits = [init("avg", rand(1, 1, 1, 5)), init("W", rand(5, 3)), init("b", rand(3))]
    path = save(tmp_path / "m.onnx", nodes, [("x", [1, 1, 1, 5])], [("y", [1, 3])], inits, opset=8)
    model = load_and_compare(path)
    assert ops(model) == ["input", "reshape", "linear"]
    assert model.onnx_input_shape == (1, 1, 1, 5) and model.onnx_output_shape == (1, 3)


def test_scalar_output_per_sample(tmp_path: Path) -> None:
    """x @ w with a 1-D w drops the last axis: per-sample output shape ()."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="dot")]
    model = load_and_compare(save(tmp_path / "m.onnx", nodes, [("x", ["N", 4])], [("y", ["N"])], [init("w", rand(4))]))
    assert model.graph.output_shape == () and model.graph.n_outputs == 1


def test_symbolic_batch_that_only_works_per_sample(tmp_path: Path) -> None:
    """A Reshape to [1, -1] under a symbolic batch dim: onnxruntime fails at batch 7, so the check goes per sample."""
    nodes = [
        helper.make_node("Reshape", ["x", "s"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "W"], ["y"], name="fc", transB=1),
    ]
    inits = [init("s", np.array([1, -1], np.int64)), init("W", rand(2, 6))]
    model = load_and_compare(save(tmp_path / "m.onnx", nodes, [("x", ["N", 2, 3])], [("y", [1, 2])], inits))
    assert ops(model) == ["input", "reshape", "linear"] and model.onnx_input_shape == (-1, 2, 3)


def test_float64_model(tmp_path: Path) -> None:
    """Double-precision files load into our float32 graph; onnxruntime is fed doubles."""
    nodes = [
        helper.make_node("Sub", ["x", "m"], ["a"], name="sub"),
        helper.make_node("Gemm", ["a", "W", "b"], ["h"], name="fc", transB=1),
        helper.make_node("Relu", ["h"], ["y"], name="relu"),
    ]
    inits = [init("m", rand(3).astype(np.float64)), init("W", rand(2, 3).astype(np.float64)),
             init("b", rand(2).astype(np.float64))]
    path = save(tmp_path / "m.onnx", nodes, [("x", [1, 3])], [("y", [1, 2])], inits, elem_type=TensorProto.DOUBLE)
    model = load_and_compare(path)
    assert ops(model) == ["input", "linear", "relu"]
    assert model.graph.nodes[1].params["W"].dtype == torch.float32
