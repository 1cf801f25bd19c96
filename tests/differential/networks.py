"""Random small networks for the differential test bed, held as a flat list of layers (each acting on the
flattened tensor) so that one description serves three readers: the ONNX exporter (what `verify` loads),
a float64 numpy forward pass (sampling and replay), and the exact MILP encoding (`exact.py`).

Shapes users bring: MLPs and CNNs, relu / sigmoid / tanh, max pooling, residual adds, 1-6 layers,
2-40 inputs, 1-10 outputs. Planted counterexamples live in `planted.py`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ACTIVATIONS = ("relu", "sigmoid", "tanh")


@dataclass
class Layer:
    """One step on the flat vector: `dense` (W, b), `act` (fn), `maxpool` (groups: (out, k) input indices),
    `residual` (body: layers of equal in/out size, y = x + body(x)). `onnx` says how to export it when the
    flat form is not the whole story (a conv's kernel and geometry, a pool's window)."""

    kind: str
    W: Optional[np.ndarray] = None
    b: Optional[np.ndarray] = None
    fn: str = ""
    groups: Optional[np.ndarray] = None
    body: list["Layer"] = field(default_factory=list)
    onnx: dict = field(default_factory=dict)


@dataclass
class Net:
    input_shape: tuple[int, ...]  # without the batch dimension
    layers: list[Layer]
    name: str = "net"

    @property
    def n_inputs(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def n_outputs(self) -> int:
        return output_size(self.layers, self.n_inputs)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(N, n_inputs) float64 -> (N, n_outputs)."""
        return run_layers(self.layers, np.asarray(x, dtype=np.float64))

    def is_piecewise_linear(self) -> bool:
        """Only relu activations (max pools and residual adds are piecewise linear too): exact by MILP."""
        return _piecewise_linear(self.layers)


def _piecewise_linear(layers: list[Layer]) -> bool:
    return all((l.kind != "act" or l.fn == "relu") and _piecewise_linear(l.body) for l in layers)


def output_size(layers: list[Layer], size: int) -> int:
    for layer in layers:
        if layer.kind == "dense":
            size = layer.W.shape[0]
        elif layer.kind == "maxpool":
            size = layer.groups.shape[0]
    return size


def run_layers(layers: list[Layer], x: np.ndarray) -> np.ndarray:
    for layer in layers:
        if layer.kind == "dense":
            x = x @ layer.W.T + layer.b
        elif layer.kind == "act":
            x = {"relu": lambda v: np.maximum(v, 0.0), "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
                 "tanh": np.tanh}[layer.fn](x)
        elif layer.kind == "maxpool":
            x = x[:, layer.groups].max(axis=2)
        elif layer.kind == "residual":
            x = x + run_layers(layer.body, x)
        else:
            raise ValueError(layer.kind)
    return x


# --- generation -----------------------------------------------------------------------------------------

def _dense(rng: np.random.Generator, n_out: int, n_in: int, scale: float = 1.0) -> Layer:
    W = rng.normal(size=(n_out, n_in)) * scale / np.sqrt(n_in)
    b = rng.normal(size=n_out) * 0.3
    return Layer("dense", W=W, b=b)


def random_mlp(rng: np.random.Generator, n_in: int, depth: int, n_out: int, act: str = "relu",
               residual: bool = False) -> Net:
    """depth hidden layers (width 3-16) of `act`, optionally one residual block, then a dense output."""
    layers, size = [], n_in
    for i in range(depth):
        width = int(rng.integers(3, 17))
        layers += [_dense(rng, width, size, 1.5), Layer("act", fn=act)]
        size = width
        if residual and i == 0:
            layers.append(Layer("residual", body=[_dense(rng, size, size), Layer("act", fn=act),
                                                  _dense(rng, size, size, 0.7)]))
    layers.append(_dense(rng, n_out, size))
    return Net((n_in,), layers, f"mlp{depth}_{act}{'_res' if residual else ''}")


def conv_matrix(kernel: np.ndarray, in_shape: tuple[int, int, int], stride: int, pad: int) -> tuple[np.ndarray, tuple]:
    """The dense matrix of a 2-D convolution (no bias) on a flattened (c, h, w) input, and the output shape."""
    c_out, c_in, kh, kw = kernel.shape
    _, h, w = in_shape
    oh, ow = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    M = np.zeros((c_out, oh, ow, c_in, h, w))
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for bb in range(kw):
                    y, x = i * stride + a - pad, j * stride + bb - pad
                    if 0 <= y < h and 0 <= x < w:
                        M[:, i, j, :, y, x] = kernel[:, :, a, bb]
    return M.reshape(c_out * oh * ow, c_in * h * w), (c_out, oh, ow)


def pool_groups(shape: tuple[int, int, int], k: int, stride: Optional[int] = None, pad: int = 0,
                ceil: bool = False) -> tuple[np.ndarray, tuple]:
    """Index groups of a k x k max pool (stride k by default) on a flattened (c, h, w) tensor, as ONNX
    pools: padding is -inf, so a window holds only its real elements; ceil_mode keeps the last partial
    windows that start inside the input. Groups are filled up to k*k by repeating their first element
    (a maximum ignores repeats)."""
    c, h, w = shape
    stride = k if stride is None else stride

    def size(n: int) -> int:
        span = n + 2 * pad - k
        out = (-(-span // stride) if ceil else span // stride) + 1
        return out - 1 if ceil and (out - 1) * stride >= n + pad else out

    oh, ow = size(h), size(w)
    idx = np.arange(c * h * w).reshape(c, h, w)
    groups = []
    for ch in range(c):
        for i in range(oh):
            for j in range(ow):
                r0, c0 = i * stride - pad, j * stride - pad
                window = idx[ch, max(r0, 0):min(r0 + k, h), max(c0, 0):min(c0 + k, w)].ravel()
                groups.append(np.concatenate([window, np.full(k * k - window.size, window[0])]))
    return np.array(groups), (c, oh, ow)


def random_cnn(rng: np.random.Generator, n_out: int, act: str = "relu", pool: bool = False) -> Net:
    """(c, h, w) input of at most 40 elements, 1-2 convs (3x3 or 2x2, stride 1-2, pad 0-1), an optional
    max pool (2x2 / 2; 3x3 / 2 padded by 1; 2x2 / 2 with ceil_mode), then a dense output."""
    c, h = int(rng.integers(1, 3)), int(rng.integers(3, 5))
    shape: tuple[int, int, int] = (c, h, h)
    layers: list[Layer] = []
    for _ in range(int(rng.integers(1, 3))):
        k = int(rng.integers(2, 4))
        stride, pad = int(rng.integers(1, 3)), int(rng.integers(0, 2))
        if (shape[1] + 2 * pad - k) // stride + 1 < 1:
            stride, pad = 1, 1
        c_out = int(rng.integers(2, 5))
        kernel = rng.normal(size=(c_out, shape[0], k, k)) / np.sqrt(shape[0] * k * k) * 1.5
        M, out = conv_matrix(kernel, shape, stride, pad)
        bias = rng.normal(size=c_out) * 0.3
        layers += [Layer("dense", W=M, b=np.repeat(bias, out[1] * out[2]),
                         onnx={"op": "conv", "kernel": kernel, "bias": bias, "stride": stride, "pad": pad}),
                   Layer("act", fn=act)]
        shape = out
    if pool and shape[1] >= 2:  # 2x2 / 2, the ResNet stem's 3x3 / 2 padded by 1, or 2x2 / 2 with ceil_mode
        k, stride, pad, ceil = [(2, 2, 0, False), (3, 2, 1, False), (2, 2, 0, True)][int(rng.integers(0, 3))]
        groups, shape = pool_groups(shape, k, stride, pad, ceil)
        layers.append(Layer("maxpool", groups=groups, onnx={"k": k, "stride": stride, "pad": pad, "ceil": ceil}))
    layers.append(Layer("dense", W=rng.normal(size=(n_out, int(np.prod(shape)))) / np.sqrt(np.prod(shape)),
                        b=rng.normal(size=n_out) * 0.3, onnx={"flatten": True}))
    return Net((c, h, h), layers, f"cnn_{act}{'_pool' if pool else ''}")


def random_net(rng: np.random.Generator) -> Net:
    """Any of the shapes above, with 2-40 inputs and 1-10 outputs."""
    n_out = int(rng.integers(1, 11))
    act = str(rng.choice(ACTIVATIONS, p=[0.6, 0.2, 0.2]))
    if rng.random() < 0.3:
        return random_cnn(rng, n_out, act, pool=bool(rng.random() < 0.5))
    return random_mlp(rng, int(rng.integers(2, 41)), int(rng.integers(1, 7)), n_out, act,
                      residual=bool(rng.random() < 0.25))


# --- ONNX export ----------------------------------------------------------------------------------------

def to_onnx(net: Net) -> onnx.ModelProto:
    """The net as an opset-13 ONNX model with a batch-1 input "X" of shape (1, *input_shape) and output "Y"."""
    nodes, inits = [], []
    counter = [0]

    def fresh(prefix: str) -> str:
        counter[0] += 1
        return f"{prefix}{counter[0]}"

    def const(value: np.ndarray) -> str:
        name = fresh("c")
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def emit(layers: list[Layer], x: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
        for layer in layers:
            out = fresh("t")
            if layer.kind == "dense" and layer.onnx.get("op") == "conv":
                o = layer.onnx
                k = o["kernel"].shape[-1]
                nodes.append(helper.make_node("Conv", [x, const(o["kernel"]), const(o["bias"])], [out],
                                              kernel_shape=[k, k], strides=[o["stride"]] * 2, pads=[o["pad"]] * 4))
                c_out = o["kernel"].shape[0]
                hw = (shape[1] + 2 * o["pad"] - k) // o["stride"] + 1
                shape = (c_out, hw, hw)
            elif layer.kind == "dense":
                if len(shape) > 1:
                    flat = fresh("t")
                    nodes.append(helper.make_node("Flatten", [x], [flat], axis=1))
                    x, shape = flat, (int(np.prod(shape)),)
                nodes.append(helper.make_node("Gemm", [x, const(layer.W), const(layer.b)], [out], transB=1))
                shape = (layer.W.shape[0],)
            elif layer.kind == "act":
                nodes.append(helper.make_node(layer.fn.capitalize(), [x], [out]))
            elif layer.kind == "maxpool":
                o = layer.onnx
                k, stride, pad = o["k"], o.get("stride", o["k"]), o.get("pad", 0)
                nodes.append(helper.make_node("MaxPool", [x], [out], kernel_shape=[k, k], strides=[stride] * 2,
                                              pads=[pad] * 4, ceil_mode=int(o.get("ceil", False))))
                shape = pool_groups(shape, k, stride, pad, o.get("ceil", False))[1]
            elif layer.kind == "residual":
                body, _ = emit(layer.body, x, shape)
                nodes.append(helper.make_node("Add", [x, body], [out]))
            x = out
        return x, shape

    last, shape = emit(net.layers, "X", net.input_shape)
    nodes.append(helper.make_node("Identity", [last], ["Y"]))
    graph = helper.make_graph(nodes, net.name,
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, *net.input_shape])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, *shape])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def float32_net(net: Net) -> Net:
    """The same net with every parameter rounded to float32, as the ONNX file holds it (ground truth must
    be computed for the network `verify` actually reads)."""

    def cast(layers: list[Layer]) -> list[Layer]:
        out = []
        for l in layers:
            f = (lambda a: None if a is None else np.asarray(a, dtype=np.float32).astype(np.float64))
            out.append(Layer(l.kind, W=f(l.W), b=f(l.b), fn=l.fn, groups=l.groups, body=cast(l.body), onnx=l.onnx))
        return out

    return Net(net.input_shape, cast(net.layers), net.name)
