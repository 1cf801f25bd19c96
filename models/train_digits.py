#!/usr/bin/env python3
"""Train two small digit classifiers, one normally and one with IBP certified training, for `verifier certify`.

    pip install 'verifier[examples]'        # scikit-learn, for its bundled 8x8 digits data (no download)
    python models/train_digits.py

Data: sklearn.datasets.load_digits (1797 images, 8x8, pixel values 0..16) scaled to [0, 1], split 80/20
(stratified, seeded). Network: 64-32-32-10 MLP with relus. Both runs are seeded and take seconds on a CPU.

- digits_plain.onnx: cross-entropy on clean inputs.
- digits_ibp.onnx: certified training with IBP (Gowal et al. 2018): eps ramps from 0 to EPS_TRAIN over the
  first half of training, the loss mixes clean and worst-case cross-entropy, the worst case taken from the
  IBP lower bounds of the margins f_y - f_j computed by our own bound code (`verifier.bounds.ibp.ibp_objective`
  on a Graph whose parameters are the torch model's, so the bound is differentiable).

Writes models/digits_plain.onnx, models/digits_ibp.onnx (about 14 KB each) and models/digits_test.npz
(the test split: x (360, 64) float32 in [0, 1], y (360,) int64), and prints each file's sha256.

Byte-reproducible: every generator is seeded, torch runs deterministic algorithms on one thread, and the
files hold no time stamps. The same bytes need the same torch build and CPU kind (float sums in other
kernels round differently); the committed files are those of torch 2.14.1 on an x86-64 CPU.
"""
from __future__ import annotations

import hashlib
import random
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from verifier.bounds.ibp import ibp_objective
from verifier.model.graph import Graph, Node

ROOT = Path(__file__).resolve().parent
SIZES = (64, 32, 32, 10)
EPOCHS = 60
EPS_TRAIN = 0.06  # a little above the largest radius evaluated in the README (0.05)
SEED = 0


def load_split(seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    return tuple(train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed))  # type: ignore[return-value]


def make_mlp() -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(SIZES) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def as_graph(mlp: nn.Sequential) -> Graph:
    """Our Graph sharing the torch parameters (no copy), so bounds on it are differentiable in them."""
    nodes, prev = [Node("x", "input", (), (SIZES[0],))], "x"
    for i, layer in enumerate(mlp):
        name = f"n{i}"
        if isinstance(layer, nn.Linear):
            nodes.append(Node(name, "linear", (prev,), (layer.out_features,),
                              params={"W": layer.weight, "b": layer.bias}))
        else:
            nodes.append(Node(name, "relu", (prev,), nodes[-1].shape))
        prev = name
    return Graph(tuple(nodes), "x", prev, (1, SIZES[0]))


def margin_rows(y: torch.Tensor, k: int = SIZES[-1]) -> torch.Tensor:
    """C (B, k, k) with rows e_y - e_j (the row j = y is zero): C f >= 0 everywhere proves class y."""
    eye = torch.eye(k)
    return eye[y].unsqueeze(1) - eye.unsqueeze(0)


def robust_loss(graph: Graph, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """Cross-entropy of the worst-case logits -lb(f_y - f_j), the IBP bound on the [0, 1]-clipped eps-box."""
    lower, upper = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)
    lb, _ = ibp_objective(graph, lower, upper, margin_rows(y))
    return nn.functional.cross_entropy(-lb, y)  # row j = y is zero: the worst-case logit of class y is 0


def seed_everything(seed: int = SEED) -> None:
    """Every source of randomness and of run-to-run variation in torch's kernels, fixed."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)


def train(x: np.ndarray, y: np.ndarray, certified: bool, epochs: int = EPOCHS) -> nn.Sequential:
    seed_everything()
    mlp = make_mlp()
    return fit(mlp, as_graph(mlp), x, y, certified, epochs)


def fit(model: nn.Sequential, graph: Graph, x: np.ndarray, y: np.ndarray, certified: bool, epochs: int,
        on_epoch: Optional[Callable[[int, nn.Sequential], None]] = None) -> nn.Sequential:
    """Seeded Adam, eps ramped over the first half, clean + IBP worst-case loss (on `graph`, which shares
    the model's parameters); `on_epoch(epoch, model)` after each epoch."""
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    gen = torch.Generator().manual_seed(SEED)
    for epoch in range(epochs):
        ramp = min(1.0, epoch / (epochs / 2))
        model.train()
        for batch in torch.randperm(len(xt), generator=gen).split(64):
            xb, yb = xt[batch], yt[batch]
            loss = nn.functional.cross_entropy(model(xb), yb)
            if certified and ramp > 0:
                loss = (1 - 0.5 * ramp) * loss + 0.5 * ramp * robust_loss(graph, xb, yb, ramp * EPS_TRAIN)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if on_epoch is not None:
            on_epoch(epoch, model)
    return model.eval()


def export_onnx(mlp: nn.Sequential, path: Path) -> None:
    """Gemm/Relu chain written with onnx.helper (no exporter needed), input 'input' of shape [batch, 64]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, prev = [], [], "input"
    for i, layer in enumerate(mlp):
        out = "output" if i == len(mlp) - 1 else f"h{i}"
        if isinstance(layer, nn.Linear):
            inits += [numpy_helper.from_array(layer.weight.detach().numpy(), f"W{i}"),
                      numpy_helper.from_array(layer.bias.detach().numpy(), f"b{i}")]
            nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"b{i}"], [out], name=f"fc{i}", transB=1))
        else:
            nodes.append(helper.make_node("Relu", [prev], [out], name=f"relu{i}"))
        prev = out
    graph = helper.make_graph(nodes, path.stem, [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                               ["batch", SIZES[0]])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", SIZES[-1]])],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="verifier-examples")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


# ---- The convolutional example (1x8x8 -> conv 8@3x3 -> relu -> conv 16@4x4 stride 2 -> relu -> linear 10) ----
CNN_INPUT = (1, 8, 8)
CNN_CONVS = ((8, 3, 1, 1), (16, 4, 2, 1))  # (out channels, kernel, stride, padding) per conv
CNN_EPOCHS = 30


def make_cnn() -> nn.Sequential:
    """The digits CNN; its first layer unflattens the (B, 64) rows of the data set into 1x8x8 images."""
    layers: list[nn.Module] = [nn.Unflatten(1, CNN_INPUT)]
    c, size = CNN_INPUT[0], CNN_INPUT[1]
    for c_out, k, stride, pad in CNN_CONVS:
        layers += [nn.Conv2d(c, c_out, k, stride, pad), nn.ReLU()]
        c, size = c_out, (size + 2 * pad - k) // stride + 1
    layers += [nn.Flatten(), nn.Linear(c * size * size, SIZES[-1])]
    return nn.Sequential(*layers)


def cnn_graph(cnn: nn.Sequential) -> Graph:
    """Our Graph of the CNN sharing the torch parameters (so IBP bounds on it are differentiable in them)."""
    nodes, prev, shape = [Node("x", "input", (), CNN_INPUT)], "x", CNN_INPUT
    for i, layer in enumerate(cnn):
        name = f"n{i}"
        if isinstance(layer, nn.Conv2d):
            out = layer(torch.zeros((1,) + shape)).shape[1:]
            attrs = {"stride": layer.stride, "padding": layer.padding, "dilation": layer.dilation,
                     "groups": layer.groups, "in_shape": shape}
            nodes.append(Node(name, "conv", (prev,), tuple(out), params={"W": layer.weight, "b": layer.bias},
                              attrs=attrs))
            shape = tuple(out)
        elif isinstance(layer, nn.ReLU):
            nodes.append(Node(name, "relu", (prev,), shape))
        elif isinstance(layer, nn.Flatten):
            shape = (int(np.prod(shape)),)
            nodes.append(Node(name, "reshape", (prev,), shape, attrs={"shape": shape}))
        elif isinstance(layer, nn.Linear):
            shape = (layer.out_features,)
            nodes.append(Node(name, "linear", (prev,), shape, params={"W": layer.weight, "b": layer.bias}))
        else:  # the Unflatten: our graph's input is already 1x8x8
            continue
        prev = name
    return Graph(tuple(nodes), "x", prev, (1,) + CNN_INPUT)


def train_cnn(x: np.ndarray, y: np.ndarray, certified: bool, epochs: int = CNN_EPOCHS,
              on_epoch: Optional[Callable[[int, nn.Sequential], None]] = None) -> nn.Sequential:
    """As `train`, for the CNN: seeded, Adam, eps ramped over the first half, clean + IBP worst-case loss;
    `on_epoch(epoch, cnn)` is called after each epoch (e.g. to certify it: models/train_with_certify.py)."""
    torch.manual_seed(SEED)
    cnn = make_cnn()
    return fit(cnn, cnn_graph(cnn), x, y, certified, epochs, on_epoch)


def export_cnn_onnx(cnn: nn.Sequential, path: Path) -> None:
    """Conv/Relu/Flatten/Gemm written with onnx.helper, input 'input' of shape [batch, 1, 8, 8]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, prev = [], [], "input"
    layers = [layer for layer in cnn if not isinstance(layer, nn.Unflatten)]
    for i, layer in enumerate(layers):
        out = "output" if i == len(layers) - 1 else f"h{i}"
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            inits += [numpy_helper.from_array(layer.weight.detach().numpy(), f"W{i}"),
                      numpy_helper.from_array(layer.bias.detach().numpy(), f"b{i}")]
        if isinstance(layer, nn.Conv2d):
            nodes.append(helper.make_node("Conv", [prev, f"W{i}", f"b{i}"], [out], name=f"conv{i}",
                                          kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                                          pads=list(layer.padding) * 2))
        elif isinstance(layer, nn.Linear):
            nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"b{i}"], [out], name=f"fc{i}", transB=1))
        elif isinstance(layer, nn.Flatten):
            nodes.append(helper.make_node("Flatten", [prev], [out], name=f"flatten{i}", axis=1))
        else:
            nodes.append(helper.make_node("Relu", [prev], [out], name=f"relu{i}"))
        prev = out
    graph = helper.make_graph(nodes, path.stem, [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                               ["batch", *CNN_INPUT])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", SIZES[-1]])],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="verifier-examples")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def main_cnn(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> None:
    """Train and export models/digits_cnn.onnx (plain) and models/digits_cnn_ibp.onnx (IBP-trained)."""
    for name, certified in (("digits_cnn", False), ("digits_cnn_ibp", True)):
        train_and_export(name, certified, train_cnn, export_cnn_onnx, x_train, y_train, x_test, y_test)


def train_and_export(name: str, certified: bool, train_fn: Callable[..., nn.Sequential],
                     export_fn: Callable[[nn.Sequential, Path], None], x_train: np.ndarray, y_train: np.ndarray,
                     x_test: np.ndarray, y_test: np.ndarray) -> None:
    """Train one model, write models/NAME.onnx, print its test accuracy, time and sha256."""
    t = time.monotonic()
    model = train_fn(x_train, y_train, certified)
    with torch.no_grad():
        acc = (model(torch.as_tensor(x_test)).argmax(1).numpy() == y_test).mean()
    export_fn(model, ROOT / f"{name}.onnx")
    print(f"{name}: test accuracy {100 * acc:.1f}%, trained in {time.monotonic() - t:.1f} s -> models/{name}.onnx "
          f"(sha256 {sha256(ROOT / f'{name}.onnx')[:16]})")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    seed_everything()
    x_train, x_test, y_train, y_test = load_split()
    np.savez_compressed(ROOT / "digits_test.npz", x=x_test, y=y_test)
    for name, certified in (("digits_plain", False), ("digits_ibp", True)):
        train_and_export(name, certified, train, export_onnx, x_train, y_train, x_test, y_test)
    main_cnn(x_train, y_train, x_test, y_test)
    print(f"test split: {len(y_test)} samples -> models/digits_test.npz (sha256 {sha256(ROOT / 'digits_test.npz')[:16]})")


if __name__ == "__main__":
    main()
