"""Rules for the image ops: 2-D convolution and constant padding (both affine).

Pooling needs no rule of its own: the ONNX front end writes AveragePool as a depthwise "conv" (with a
"scale_shift" correcting the divisor at padded borders) and MaxPool as pairwise maxima
max(a, b) = relu(a - b) + b, so every pooled network is made of affine ops and relus, which both the
bounds and ReLU-split branch and bound handle.

"conv": params W (C_out, C_in / groups, kh, kw), b (C_out,); attrs stride, padding (top/left = bottom/right,
as torch.conv2d takes it), dilation (each a pair of ints), groups (an int) and in_shape (the input's
per-sample shape, which the backward rule needs to undo the stride). Per-sample shapes
(C_in, H, W) -> (C_out, H_out, W_out).

"pad": attrs pads = ((top, bottom), (left, right)) over the last two dims (C, H, W), all >= 0,
value = the constant written there.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from verifier.bounds.rule import BackwardResult, Box, OpRule, Tensor, no_bias
from verifier.model.graph import Node


def _conv_args(node: Node) -> dict:
    a = node.attrs
    return {"stride": tuple(a["stride"]), "padding": tuple(a["padding"]), "dilation": tuple(a["dilation"]),
            "groups": int(a["groups"])}


def _conv(node: Node, x: Tensor) -> Tensor:
    return F.conv2d(x, node.params["W"], node.params["b"], **_conv_args(node))


def _conv_interval(node: Node, box: Box) -> Box:
    # Positive/negative split of W, as for linear: exact on zero-width input dims.
    l, u = box
    W, b, args = node.params["W"], node.params["b"], _conv_args(node)
    Wp, Wn = W.clamp(min=0), W.clamp(max=0)
    lo = F.conv2d(l, Wp, b, **args) + F.conv2d(u, Wn, None, **args)
    hi = F.conv2d(u, Wp, b, **args) + F.conv2d(l, Wn, None, **args)
    return lo, hi


def conv_transpose_rows(node: Node, A: Tensor, in_shape: Sequence[int]) -> Tensor:
    """The adjoint of the conv (without bias) applied to every row of A (B, R, C_out, H_out, W_out):
    coefficients (B, R, C_in, H, W) on the conv's input. output_padding recovers input rows/columns
    that the stride skipped (they get coefficient 0)."""
    W, args = node.params["W"], _conv_args(node)
    B, R = A.shape[:2]
    out_hw = A.shape[-2:]
    extra = []
    for dim in range(2):
        k = W.shape[2 + dim]
        covered = (out_hw[dim] - 1) * args["stride"][dim] - 2 * args["padding"][dim] \
            + args["dilation"][dim] * (k - 1) + 1
        extra.append(int(in_shape[1 + dim]) - covered)
    x = F.conv_transpose2d(A.reshape((B * R,) + tuple(A.shape[2:])), W, None, output_padding=tuple(extra), **args)
    return x.reshape((B, R) + tuple(x.shape[1:]))


def _conv_backward(node: Node, A: Tensor, input_bounds: Sequence[Optional[Box]],
                   relax: Optional[Tensor]) -> BackwardResult:
    in_shape = node.attrs["in_shape"]
    bias = A.sum(dim=(-2, -1)) @ node.params["b"]  # (B, R)
    return [conv_transpose_rows(node, A, in_shape)], bias


def _torch_pads(node: Node) -> tuple[int, int, int, int]:
    (top, bottom), (left, right) = node.attrs["pads"]
    return (int(left), int(right), int(top), int(bottom))  # F.pad order: last dim first


def _pad(node: Node, x: Tensor) -> Tensor:
    return F.pad(x, _torch_pads(node), value=float(node.attrs["value"]))


def _pad_interval(node: Node, box: Box) -> Box:
    return _pad(node, box[0]), _pad(node, box[1])


def _pad_backward(node: Node, A: Tensor, input_bounds: Sequence[Optional[Box]],
                  relax: Optional[Tensor]) -> BackwardResult:
    left, right, top, bottom = _torch_pads(node)
    H, W = A.shape[-2:]
    inner = A[..., top: H - bottom, left: W - right]
    value = float(node.attrs["value"])
    bias = (A.flatten(2).sum(-1) - inner.flatten(2).sum(-1)) * value if value else no_bias(A)
    return [inner], bias


CONV_OPS: dict[str, OpRule] = {
    "conv": OpRule(forward=_conv, interval=_conv_interval, backward=_conv_backward, affine=True),
    "pad": OpRule(forward=_pad, interval=_pad_interval, backward=_pad_backward, affine=True),
}
