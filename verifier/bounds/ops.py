"""The op registry: one entry per canonical graph op, with its concrete semantics and its relaxations.

Adding an op means adding one `OpRule` here (and teaching the ONNX front end to emit it).
Every function is pure and batched over the leading dimension; nothing is stored on nodes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from verifier.model.graph import Node


@dataclass(frozen=True)
class OpRule:
    forward: Callable[..., torch.Tensor]  # forward(node, *input_values) -> output value, batched


def _linear(node: Node, x: torch.Tensor) -> torch.Tensor:
    return x @ node.params["W"].T + node.params["b"]


def _relu(node: Node, x: torch.Tensor) -> torch.Tensor:
    return torch.relu(x)


def _reshape(node: Node, x: torch.Tensor) -> torch.Tensor:
    return x.reshape((x.shape[0],) + tuple(node.attrs["shape"]))


def _scale_shift(node: Node, x: torch.Tensor) -> torch.Tensor:
    return x * node.params["scale"] + node.params["shift"]


OPS: dict[str, OpRule] = {
    "linear": OpRule(forward=_linear),
    "relu": OpRule(forward=_relu),
    "reshape": OpRule(forward=_reshape),
    "scale_shift": OpRule(forward=_scale_shift),
}
