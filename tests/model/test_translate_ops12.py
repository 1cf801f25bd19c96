"""The ops added for the VNN-LIB 2.0 conformance cases (issue 12) and models without a batch dimension.

Each model is loaded, compared with onnxruntime on random inputs (`load_and_compare`), and its IBP and
CROWN bounds over a box must contain onnxruntime's outputs at sampled points and corners of the box.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from tests.model.onnx_builders import const, init, load_and_compare, rand, save
from verifier.bounds.crown import crown
from verifier.bounds.ibp import ibp_objective
from verifier.errors import UnsupportedModelError
from verifier.model.check import run_onnxruntime
from verifier.model.loader import load_model
from verifier.model.translate import SUPPORTED_OPS


def _i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def _relu_in(shape: list[int]) -> list[onnx.NodeProto]:
    """A relu first, so the op under test sees a nonlinear function of the input."""
    return [helper.make_node("Relu", ["x"], ["r"], name="relu")]


# name -> (nodes after the relu on "r" producing "y", input shape, output shape or None, initializers, opset)
CASES = {
    "gather_axis1": ([helper.make_node("Gather", ["r", "idx"], ["y"], name="g", axis=1)], [1, 5], None,
                     [init("idx", _i64(4, 0, 2, 2))], 13),
    "gather_scalar_index": ([helper.make_node("Gather", ["r", "i0"], ["y"], name="g", axis=0)], [4], None,
                            [init("i0", np.array(2, dtype=np.int64))], 13),
    "slice": ([helper.make_node("Slice", ["r", "st", "en", "ax", "sp"], ["y"], name="s")], [2, 6], None,
              [init("st", _i64(1, 0)), init("en", _i64(2, 6)), init("ax", _i64(0, 1)), init("sp", _i64(1, 2))], 13),
    "split_sizes": ([helper.make_node("Split", ["r", "sz"], ["a", "y"], name="sp", axis=0)], [5], None,
                    [init("sz", _i64(2, 3))], 13),
    "split_num_outputs_18": ([helper.make_node("Split", ["r"], ["y", "b"], name="sp", axis=1, num_outputs=2)],
                             [1, 5], None, [], 18),
    "expand": ([helper.make_node("Expand", ["r", "shp"], ["y"], name="e")], [1, 3], None,
               [init("shp", _i64(2, 3))], 13),
    "reduce_sum": ([helper.make_node("ReduceSum", ["r", "ax"], ["y"], name="rs", keepdims=0)], [2, 3], None,
                   [init("ax", _i64(1))], 13),
    "reduce_mean_18": ([helper.make_node("ReduceMean", ["r", "ax"], ["y"], name="rm", keepdims=1)], [2, 3], None,
                       [init("ax", _i64(0))], 18),
    "reduce_mean_13": ([helper.make_node("ReduceMean", ["r"], ["y"], name="rm", axes=[1], keepdims=0)], [1, 4],
                       None, [], 13),
    "where_constant_condition": ([helper.make_node("Where", ["c", "r", "v"], ["y"], name="w")], [4], None,
                                 [init("c", np.array([True, False, True, False])), init("v", rand(4))], 13),
    "cast_float_to_double_and_back": ([helper.make_node("Cast", ["r"], ["d"], name="c1", to=TensorProto.DOUBLE),
                                       helper.make_node("Cast", ["d"], ["y"], name="c2", to=TensorProto.FLOAT)],
                                      [3], None, [], 13),
    "shape_constant_of_shape": ([helper.make_node("Shape", ["r"], ["s"], name="sh"),
                                 helper.make_node("ConstantOfShape", ["s"], ["f"], name="cos",
                                                  value=init("", np.array([1.5], dtype=np.float32))),
                                 helper.make_node("Add", ["r", "f"], ["y"], name="add")], [2, 3], None, [], 13),
    "equal_of_constants": ([const("a", rand(3)), const("b", np.zeros(3, np.float32)),
                            helper.make_node("Equal", ["a", "b"], ["e"], name="eq"),
                            helper.make_node("Cast", ["e"], ["ef"], name="c", to=TensorProto.FLOAT),
                            helper.make_node("Add", ["r", "ef"], ["y"], name="add")], [3], None, [], 13),
    "pow_2": ([helper.make_node("Sub", ["x", "c"], ["s"], name="sub"),
               helper.make_node("Pow", ["s", "two"], ["y"], name="p")], [3], None,
              [init("c", rand(3)), init("two", np.array(2.0, dtype=np.float32))], 13),
    "pow_1": ([helper.make_node("Pow", ["r", "one"], ["y"], name="p")], [2], None,
              [init("one", np.array(1.0, dtype=np.float32))], 13),
    "softmax_inside": ([helper.make_node("MatMul", ["x", "W"], ["h"], name="mm"),
                        helper.make_node("Softmax", ["h"], ["s"], name="sm", axis=-1),
                        helper.make_node("MatMul", ["s", "W2"], ["y"], name="mm2")], [1, 3], None,
                       [init("W", rand(3, 4)), init("W2", rand(4, 2))], 13),
    "softmax_axis0_unbatched": ([helper.make_node("Softmax", ["x"], ["y"], name="sm", axis=0)], [3, 2], None, [],
                                13),
    "matmul_on_matrix_unbatched": ([helper.make_node("MatMul", ["r", "W"], ["y"], name="mm")], [2, 2], None,
                                   [init("W", rand(2, 3))], 13),
    "concat_with_constant": ([helper.make_node("Concat", ["r", "k"], ["y"], name="cat", axis=0)], [2], None,
                             [init("k", rand(2))], 13),
    "greater_then_where": ([helper.make_node("Greater", ["x", "t"], ["c"], name="gt"),
                            helper.make_node("Where", ["c", "r", "v"], ["y"], name="w")], [3], None,
                           [init("t", np.array([0.5], np.float32)), init("v", rand(3))], 13),
    "less_or_equal_cast": ([helper.make_node("LessOrEqual", ["t", "x"], ["c"], name="le"),
                            helper.make_node("Cast", ["c"], ["y"], name="cf", to=TensorProto.FLOAT)], [1, 3], None,
                           [init("t", rand(3))], 13),
    "equal_on_the_input": ([helper.make_node("Equal", ["x", "z"], ["e"], name="eq"),
                            helper.make_node("Cast", ["e"], ["y"], name="cf", to=TensorProto.FLOAT)], [3], None,
                           [init("z", np.zeros(3, np.float32))], 13),
    "cast_to_bool_and_back": ([helper.make_node("Cast", ["r"], ["b"], name="cb", to=TensorProto.BOOL),
                               helper.make_node("Cast", ["b"], ["y"], name="cf", to=TensorProto.FLOAT)], [2], None,
                              [], 13),
    "cast_to_int_and_back": ([helper.make_node("Mul", ["x", "k"], ["m"], name="mul"),
                              helper.make_node("Cast", ["m"], ["i"], name="ci", to=TensorProto.INT64),
                              helper.make_node("Cast", ["i"], ["y"], name="cf", to=TensorProto.FLOAT)], [2], None,
                             [init("k", np.array([3.0, -2.5], np.float32))], 13),
    "pow_elementwise": ([helper.make_node("Pow", ["x", "e"], ["y"], name="p")], [3], None,
                        [init("e", np.array([2.0, 3.0, 0.0], np.float32))], 13),
    "pow_fractional_positive": ([helper.make_node("Add", ["r", "one"], ["s"], name="add"),
                                 helper.make_node("Pow", ["s", "e"], ["y"], name="p")], [2], None,
                                [init("one", np.ones(2, np.float32)), init("e", np.array(-0.5, np.float32))], 13),
    "conv_same_upper": ([helper.make_node("Conv", ["r", "W"], ["y"], name="cv", auto_pad="SAME_UPPER", strides=[2, 2])],
                        [1, 1, 5, 4], None, [init("W", rand(2, 1, 2, 3))], 13),
    "conv_same_lower_constant_weights": ([const("W", rand(1, 1, 2, 2)),
                                          helper.make_node("Conv", ["r", "W"], ["y"], name="cv",
                                                           auto_pad="SAME_LOWER")], [1, 1, 3, 3], None, [], 13),
    "mul_of_two_computed_values": ([helper.make_node("Sub", ["x", "c"], ["s"], name="sub"),
                                    helper.make_node("Mul", ["r", "s"], ["y"], name="mul")], [3], None,
                                   [init("c", rand(3))], 13),
    "div_by_a_positive_computed_value": ([helper.make_node("Add", ["r", "one"], ["d"], name="add"),
                                          helper.make_node("Div", ["x", "d"], ["y"], name="div")], [1, 3], None,
                                         [init("one", np.ones(3, np.float32))], 13),
    "add_broadcast": ([helper.make_node("ReduceSum", ["r", "ax"], ["r2"], name="rs", keepdims=1),
                       helper.make_node("Add", ["r", "r2"], ["y"], name="add")], [2, 3], None,
                      [init("ax", _i64(1))], 13),
}


def _nodes(name: str) -> list[onnx.NodeProto]:
    nodes, shape = CASES[name][0], CASES[name][1]
    uses_r = any("r" in n.input for n in nodes)
    return (_relu_in(shape) if uses_r else []) + nodes


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_onnxruntime_and_bounds_hold(tmp_path: Path, name: str) -> None:
    _, in_shape, out_shape, inits, opset = CASES[name]
    path = save(tmp_path / f"{name}.onnx", _nodes(name), [("x", in_shape)], [("y", out_shape)], inits, opset=opset)
    model = load_and_compare(path)
    n = model.graph.n_inputs
    rng = np.random.default_rng(1)
    lower = rng.uniform(-2, 0, size=(1, n))
    upper = lower + rng.uniform(0, 2, size=(1, n))
    lo_t, up_t = torch.tensor(lower), torch.tensor(upper)
    graph = model.graph.to("cpu", torch.float64)
    ibp_lo, ibp_up = ibp_objective(graph, lo_t, up_t)
    res = crown(graph, lo_t, up_t)
    t = rng.uniform(size=(200, n))
    t[0], t[1] = 0.0, 1.0  # two corners
    points = lower + t * (upper - lower)
    y = run_onnxruntime(model, points)
    tol = 1e-4 * (1 + np.abs(y))
    for what, lo, up in (("ibp", ibp_lo, ibp_up), ("crown", res.lb, res.ub)):
        lo, up = lo.numpy().reshape(1, -1), up.numpy().reshape(1, -1)
        assert (y >= lo - tol).all() and (y <= up + tol).all(), f"{name}: {what} bounds miss onnxruntime's outputs"


@pytest.mark.parametrize("shape", [[1], [4], [2, 2], [2, 3, 1]])
def test_models_without_a_batch_dimension(tmp_path: Path, shape: list[int]) -> None:
    """The whole input is one sample: per-sample shape = the file's shape."""
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Mul", ["r", "c"], ["y"], name="mul")]
    path = save(tmp_path / "m.onnx", nodes, [("x", shape)], [("y", shape)], [init("c", rand(*shape))])
    model = load_and_compare(path)
    expected = tuple(shape) if shape[0] != 1 or len(shape) == 1 else tuple(shape[1:])
    assert model.graph.input_shape == expected


@pytest.mark.parametrize("nodes,inits,reason", [
    ([helper.make_node("Cast", ["x"], ["c"], name="n", to=TensorProto.INT8),
      helper.make_node("Cast", ["c"], ["y"], name="back", to=TensorProto.FLOAT)], [], r"node n \(Cast\)"),
    ([helper.make_node("Cast", ["x"], ["c"], name="n", to=TensorProto.FLOAT16),
      helper.make_node("Cast", ["c"], ["y"], name="back", to=TensorProto.FLOAT)], [], r"node n \(Cast\)"),
    ([helper.make_node("Pow", ["x", "x"], ["y"], name="n")], [], "constant exponent"),
    ([helper.make_node("Equal", ["x", "x"], ["e"], name="n"),
      helper.make_node("Cast", ["e"], ["y"], name="c", to=TensorProto.FLOAT)], [], r"node n \(Equal\)"),
])
def test_what_cannot_be_bounded_is_refused_by_node(tmp_path: Path, nodes, inits, reason: str) -> None:
    path = save(tmp_path / "m.onnx", nodes, [("x", [3])], [("y", [3])], inits)
    with pytest.raises(UnsupportedModelError, match=reason):
        load_model(path, cache=False)


def test_supported_ops_list_the_new_ops() -> None:
    assert {"Gather", "Slice", "Split", "Expand", "ReduceSum", "ReduceMean", "Where", "Cast", "Shape",
            "ConstantOfShape", "Equal", "Pow", "Softmax"} <= SUPPORTED_OPS
