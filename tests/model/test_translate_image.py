"""Image and tensor ONNX ops -> our graph, each compared with onnxruntime at batch 1 and batch 7:
convolutions (strides, asymmetric pads, groups, 1-D), padding, pooling, batch norm, residual adds,
concat, transpose, squeeze/unsqueeze and clip."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from tests.model.onnx_builders import init, load_and_compare, ops, rand, save
from verifier.errors import UnsupportedModelError
from verifier.model.loader import load_model
from verifier.model.check import check_against_onnxruntime


def _conv(name: str, x: str, y: str, c_in: int, c_out: int, k: int, groups: int = 1, **attrs) -> tuple:
    w = init(f"{name}_W", rand(c_out, c_in // groups, k, k))
    b = init(f"{name}_b", rand(c_out))
    node = helper.make_node("Conv", [x, f"{name}_W", f"{name}_b"], [y], name=name, group=groups,
                            kernel_shape=[k, k], **attrs)
    return node, [w, b]


@pytest.mark.parametrize("attrs", [
    {},
    {"strides": [2, 2], "pads": [1, 1, 1, 1]},
    {"strides": [2, 1], "pads": [0, 1, 2, 0]},  # asymmetric: onnx2torch puts a pad module first
    {"dilations": [2, 2], "pads": [2, 2, 2, 2]},
])
@pytest.mark.parametrize("groups", [1, 2])
def test_conv(tmp_path: Path, attrs: dict, groups: int) -> None:
    conv, inits = _conv("c", "x", "h", 4, 6, 3, groups, **attrs)
    relu = helper.make_node("Relu", ["h"], ["y"], name="r")
    model = load_and_compare(save(tmp_path / "m.onnx", [conv, relu], [("x", [1, 4, 7, 6])], [("y", None)], inits))
    assert "conv" in ops(model)


def test_conv1d(tmp_path: Path) -> None:
    w, b = init("W", rand(3, 2, 3)), init("b", rand(3))
    node = helper.make_node("Conv", ["x", "W", "b"], ["y"], name="c", kernel_shape=[3], strides=[2], pads=[1, 1])
    model = load_and_compare(save(tmp_path / "m.onnx", [node], [("x", [1, 2, 9])], [("y", None)], [w, b]))
    assert "conv" in ops(model)


@pytest.mark.parametrize("pads,value", [([0, 0, 1, 2, 0, 0, 0, 1], 0.0), ([0, 0, 0, 0, 0, 0, 2, 2], -0.5),
                                        ([0, 0, 0, 0, 0, 0, 0, 0], 0.0)])
def test_pad(tmp_path: Path, pads: list[int], value: float) -> None:
    p, v = init("pads", np.array(pads, dtype=np.int64)), init("v", np.array(value, dtype=np.float32))
    node = helper.make_node("Pad", ["x", "pads", "v"], ["y"], name="p", mode="constant")
    model = load_and_compare(save(tmp_path / "m.onnx", [node], [("x", [1, 2, 3, 4])], [("y", None)], [p, v]))
    assert ("pad" in ops(model)) == any(pads)


@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [2, 2], "strides": [2, 2]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},  # count_include_pad=0: divisor fix
    {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [1, 1, 1, 1], "count_include_pad": 1},
])
def test_average_pool(tmp_path: Path, attrs: dict) -> None:
    node = helper.make_node("AveragePool", ["x"], ["y"], name="ap", **attrs)
    model = load_and_compare(save(tmp_path / "m.onnx", [node], [("x", [1, 3, 6, 7])], [("y", None)]))
    assert "conv" in ops(model)


def test_global_average_pool(tmp_path: Path) -> None:
    node = helper.make_node("GlobalAveragePool", ["x"], ["y"], name="gap")
    load_and_compare(save(tmp_path / "m.onnx", [node], [("x", [1, 3, 4, 5])], [("y", None)]))


@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [2, 2], "strides": [2, 2]},
    {"kernel_shape": [3, 3], "strides": [2, 2]},  # 9 candidates: odd ones carried up the tree
    {"kernel_shape": [2, 3], "strides": [1, 1], "dilations": [2, 1]},
    {"kernel_shape": [1, 1], "strides": [2, 2]},
])
def test_max_pool_is_a_relu_tree(tmp_path: Path, attrs: dict) -> None:
    node = helper.make_node("MaxPool", ["x"], ["y"], name="mp", **attrs)
    model = load_and_compare(save(tmp_path / "m.onnx", [node], [("x", [1, 2, 7, 8])], [("y", None)]))
    k = attrs["kernel_shape"][0] * attrs["kernel_shape"][1]
    assert ops(model).count("relu") == (0 if k == 1 else int(np.ceil(np.log2(k))))


@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},  # the ResNet stem's
    {"kernel_shape": [3, 2], "strides": [1, 1], "pads": [0, 1, 2, 1]},  # asymmetric: onnx2torch pads with -inf first
    {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 0, 1, 0]},
    {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1},  # 6 x 5: the last column's windows are partial
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1},
    {"kernel_shape": [3, 2], "strides": [2, 3], "pads": [0, 1, 1, 0], "ceil_mode": 1},
])
def test_padded_max_pool_ignores_its_padding(tmp_path: Path, attrs: dict) -> None:
    """ONNX pads MaxPool with -inf (and ceil_mode's partial windows hold only their real elements); the
    graph pads with copies of the border, which give the same maxima. On all-negative inputs zero padding
    would differ (a corner window's max would be 0)."""
    node = helper.make_node("MaxPool", ["x"], ["y"], name="mp", **attrs)
    model = load_and_compare(save(tmp_path / "m.onnx", [node], [("x", [1, 2, 6, 5])], [("y", None)]))
    negative = np.random.default_rng(1).uniform(-9, -7, size=(5, model.graph.n_inputs))
    assert check_against_onnxruntime(model, negative) < 1e-4
    assert "concat" in ops(model)


@pytest.mark.parametrize("op,attrs,reason", [
    ("MaxPool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "dilations": [2, 2]}, "padded MaxPool with dilation"),
    ("MaxPool", {"kernel_shape": [3, 3], "pads": [0, 0, 3, 0]}, "pads as large as its kernel"),
    ("MaxPool", {"kernel_shape": [2, 2], "strides": [3, 3], "dilations": [2, 2], "ceil_mode": 1},
     "ceil_mode=1 with dilation"),
])
def test_pool_padding_it_cannot_express_is_refused(tmp_path: Path, op: str, attrs: dict, reason: str) -> None:
    node = helper.make_node(op, ["x"], ["y"], name="mp", **attrs)
    path = save(tmp_path / "m.onnx", [node], [("x", [1, 2, 8, 8])], [("y", None)])
    with pytest.raises(UnsupportedModelError, match=f"mp.*{reason}"):
        load_model(path, check=False, cache=False)


def test_batch_norm_after_conv(tmp_path: Path) -> None:
    conv, inits = _conv("c", "x", "h", 2, 3, 3)
    bn_inits = [init("g", rand(3)), init("beta", rand(3)), init("mu", rand(3)),
                init("var", np.abs(rand(3)) + 0.1)]
    bn = helper.make_node("BatchNormalization", ["h", "g", "beta", "mu", "var"], ["y"], name="bn", epsilon=1e-3)
    model = load_and_compare(save(tmp_path / "m.onnx", [conv, bn], [("x", [1, 2, 5, 5])], [("y", None)],
                                  inits + bn_inits))
    assert ops(model) == ["input", "conv"], "batch norm is fused into the conv before it"


def test_residual_block(tmp_path: Path) -> None:
    """x -> conv -> relu -> conv (+ x) -> relu, and a Sub of two computed tensors."""
    c1, i1 = _conv("c1", "x", "h", 3, 3, 3, pads=[1, 1, 1, 1])
    c2, i2 = _conv("c2", "hr", "g", 3, 3, 3, pads=[1, 1, 1, 1])
    nodes = [c1, helper.make_node("Relu", ["h"], ["hr"], name="r1"), c2,
             helper.make_node("Add", ["g", "x"], ["s"], name="add"),
             helper.make_node("Sub", ["s", "hr"], ["d"], name="sub"),
             helper.make_node("Relu", ["d"], ["y"], name="r2")]
    model = load_and_compare(save(tmp_path / "m.onnx", nodes, [("x", [1, 3, 4, 4])], [("y", None)], i1 + i2))
    assert ops(model).count("add") == 2


def test_concat_transpose_squeeze(tmp_path: Path) -> None:
    axes1 = init("axes1", np.array([1], dtype=np.int64))
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="r"),
             helper.make_node("Concat", ["x", "r"], ["c"], name="cat", axis=1),
             helper.make_node("Transpose", ["c"], ["t"], name="tr", perm=[0, 2, 3, 1]),
             helper.make_node("Unsqueeze", ["t", "axes1"], ["u"], name="us"),
             helper.make_node("Squeeze", ["u", "axes1"], ["y"], name="sq")]
    model = load_and_compare(save(tmp_path / "m.onnx", nodes, [("x", [1, 2, 3, 4])], [("y", None)], [axes1]))
    assert {"concat", "transpose"} <= set(ops(model))


@pytest.mark.parametrize("lo,hi", [(-0.5, 0.7), (0.0, 6.0), (0.0, None), (0.3, None)])
def test_clip_through_relus(tmp_path: Path, lo, hi) -> None:
    """onnx2torch makes ReLU / ReLU6 / its own OnnxClip of these (it cannot read an omitted min)."""
    names, inits = ["x"], []
    for name, v in (("lo", lo), ("hi", hi)):
        if v is not None:
            names.append(name)
            inits.append(init(name, np.array(v, dtype=np.float32)))
    node = helper.make_node("Clip", names, ["y"], name="clip")
    model = load_and_compare(save(tmp_path / "m.onnx", [node], [("x", [1, 6])], [("y", None)], inits))
    assert ops(model).count("relu") == sum(v is not None for v in (lo, hi))


def test_log_softmax_gets_a_hint(tmp_path: Path) -> None:
    w = init("W", rand(3, 4))
    nodes = [helper.make_node("MatMul", ["x", "W"], ["z"], name="mm"),
             helper.make_node("LogSoftmax", ["z"], ["y"], name="sm", axis=1)]
    path = save(tmp_path / "m.onnx", nodes, [("x", [1, 3])], [("y", [1, 4])], [w])
    with pytest.raises(UnsupportedModelError, match="LogSoftmax.*verify the logits"):
        load_model(path, check=False, cache=False)
