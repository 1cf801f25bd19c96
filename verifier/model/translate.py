"""onnx2torch's torch.fx GraphModule -> our Graph.

Why go through onnx2torch at all: it resolves attribute defaults, Constant nodes and initializers
into plain tensors, and running its modules on a batch-1 probe gives every tensor's concrete shape
(our shape propagation). We dispatch on the ONNX op type each module came from (via onnx2torch's
`onnx_mapping`), not on its class names, and we never run its Identity/Dropout modules: for a
Dropout with a mask output it emits `getitem(y, 0)`, which drops the batch row instead of picking
the first output.

Each fx value is either a constant tensor (computed from constants only: folded right here, since
our IR has no constant op) or a `_Var` that depends on the input.
"""
from __future__ import annotations

import math
import operator
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Union

import torch
from torch import fx, nn

from verifier.errors import ModelError, UnsupportedModelError
from verifier.model.graph import Graph, Node
from verifier.model.onnx_file import Interface, describe, node_label, op_label

if TYPE_CHECKING:  # pragma: no cover
    import onnx

DTYPE = torch.float32  # every parameter of the translated graph; models in float64 are cast down


@dataclass(frozen=True)
class _Var:
    """An input-dependent fx value: the Graph node producing it and its value on the batch-1 probe."""

    node: str
    probe: torch.Tensor

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.probe.shape[1:])


Value = Union[_Var, torch.Tensor, Any]


class _Builder:
    """Accumulates Graph nodes in topological order under unique names."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self._names: set[str] = set()

    def emit(self, hint: str, op: str, inputs: tuple[str, ...], shape: tuple[int, ...], source: str,
             params: Mapping[str, torch.Tensor] | None = None, attrs: Mapping[str, Any] | None = None) -> str:
        name, k = hint, 1
        while name in self._names:
            name, k = f"{hint}_{k}", k + 1
        self._names.add(name)
        self.nodes.append(Node(name, op, inputs, tuple(shape), dict(params or {}), dict(attrs or {}), source))
        return name


@dataclass(frozen=True)
class _Ctx:
    """What a handler needs about the fx node it translates."""

    builder: _Builder
    module: nn.Module
    hint: str   # fx node name, the base of the Graph node names
    label: str  # ONNX node name (or op#index), for `source` and errors
    op: str     # ONNX op type
    batched: bool = True  # the model's dim 0 is a batch dim; else values carry a virtual batch axis

    def sample_axis(self, axis: int, rank: int) -> int:
        """An ONNX axis of a value of `rank` (the batch axis, virtual or not, included) as a per-sample axis."""
        if not self.batched:
            rank -= 1
        axis = axis + rank if axis < 0 else axis
        if not 0 <= axis < rank:
            raise self.unsupported(f"axis {axis} out of range for rank {rank}")
        if not self.batched:
            return axis
        if axis == 0:
            raise self.unsupported("acts along the batch dim")
        return axis - 1

    def emit(self, op: str, x: _Var, shape: tuple[int, ...], suffix: str = "", **kw: Any) -> str:
        return self.builder.emit(self.hint + suffix, op, (x.node,), shape, self.label, **kw)

    def emit_var(self, op: str, inputs: tuple[_Var, ...], probe: torch.Tensor, suffix: str = "",
                 **kw: Any) -> _Var:
        """Emit a node over any number of inputs and return it as a value with its probe."""
        name = self.builder.emit(self.hint + suffix, op, tuple(v.node for v in inputs), _sample_shape(probe),
                                 self.label, **kw)
        return _Var(name, probe.detach().to(DTYPE))

    def unsupported(self, reason: str) -> UnsupportedModelError:
        return UnsupportedModelError(f"node {self.label} ({self.op}): {reason}")


def _is_var(v: Value) -> bool:
    return isinstance(v, _Var)


def _const(v: Value) -> torch.Tensor:
    return torch.as_tensor(v).detach().to(DTYPE)


def _probe(out: torch.Tensor) -> torch.Tensor:
    """A value's probe: floats in DTYPE; bools and integers (comparisons, Casts) kept as they are, so that the
    modules they feed (Where, Cast) see the type they expect."""
    return out.detach().to(DTYPE) if out.is_floating_point() else out.detach()


def _sample_shape(out: torch.Tensor) -> tuple[int, ...]:
    return tuple(out.shape[1:])


# ---- handlers: (ctx, inputs, probe output) -> name of the Graph node holding the result ----------

def _relu(ctx: _Ctx, inputs: list[Value], out: torch.Tensor) -> str:
    return ctx.emit("relu", inputs[0], _sample_shape(out))


def _reshape(ctx: _Ctx, inputs: list[Value], out: torch.Tensor) -> str:
    """Flatten/Reshape: the per-sample target shape comes from the probe, so a hard-coded batch 1 is harmless."""
    if any(_is_var(v) for v in inputs[1:]):
        raise ctx.unsupported("the target shape is computed from the input")
    return ctx.emit("reshape", inputs[0], _sample_shape(out), attrs={"shape": _sample_shape(out)})


def _neg(ctx: _Ctx, inputs: list[Value], out: torch.Tensor) -> str:
    return _emit_scale_shift(ctx, inputs[0], -torch.ones((), dtype=DTYPE), torch.zeros((), dtype=DTYPE), out)


def _binary(ctx: _Ctx, inputs: list[Value], out: torch.Tensor) -> str:
    """Add/Sub/Mul/Div with one constant operand -> y = x * scale + shift."""
    first, second = inputs
    if _is_var(first) and _is_var(second):
        if ctx.op in ("Add", "Sub"):
            return _add_vars(ctx, first, second, out)
        return _multiply_vars(ctx, first, second, out)
    x, c, const_first = (second, first, True) if _is_var(second) else (first, second, False)
    if tuple(out.shape) != tuple(x.probe.shape):
        raise ctx.unsupported(
            f"broadcasting with the constant changes the shape {list(x.probe.shape)} -> {list(out.shape)}")
    c = _const(c)
    if c.dim() == out.dim():  # the constant carries a (size-1) batch axis: drop it
        c = c[0]
    one, zero = torch.ones((), dtype=DTYPE), torch.zeros((), dtype=DTYPE)
    if ctx.op == "Add":
        scale, shift = one, c
    elif ctx.op == "Sub":
        scale, shift = (-one, c) if const_first else (one, -c)
    elif ctx.op == "Mul":
        scale, shift = c, zero
    elif const_first:
        raise ctx.unsupported("constant / input is not affine")
    elif bool((c == 0).any()):
        raise ctx.unsupported("division by a constant that contains zeros")
    else:
        scale, shift = 1.0 / c, zero
    return _emit_scale_shift(ctx, x, scale, shift, out)


def _add_vars(ctx: _Ctx, first: _Var, second: _Var, out: torch.Tensor) -> str:
    """x + y (a residual connection) or x - y = x + (-1)·y, for operands of the output's shape."""
    if first.sample_shape != _sample_shape(out) or second.sample_shape != _sample_shape(out):
        raise ctx.unsupported(f"operands of shapes {list(first.sample_shape)} and {list(second.sample_shape)} "
                              "broadcast; only equal shapes are supported")
    if ctx.op == "Sub":
        minus = torch.full((), -1.0, dtype=DTYPE)
        second = ctx.emit_var("scale_shift", (second,), -second.probe, "_neg",
                              params={"scale": minus, "shift": torch.zeros((), dtype=DTYPE)})
    return ctx.emit_var("add", (first, second), out).node


def _multiply_vars(ctx: _Ctx, first: _Var, second: _Var, out: torch.Tensor) -> str:
    """x * y (a `mul` node, McCormick's relaxation) or x / y = x * reciprocal(y), for operands of the output's
    shape."""
    if first.sample_shape != _sample_shape(out) or second.sample_shape != _sample_shape(out):
        raise ctx.unsupported(f"both operands depend on the input, with shapes {list(first.sample_shape)} and "
                              f"{list(second.sample_shape)} that broadcast")
    if ctx.op == "Div":
        second = ctx.emit_var("reciprocal", (second,), 1.0 / second.probe, "_inv")
    return ctx.emit_var("mul", (first, second), out).node


def _emit_scale_shift(ctx: _Ctx, x: _Var, scale: torch.Tensor, shift: torch.Tensor, out: torch.Tensor) -> str:
    return ctx.emit("scale_shift", x, _sample_shape(out), params={"scale": scale.clone(), "shift": shift.clone()})


def _matmul(ctx: _Ctx, inputs: list[Value], out: torch.Tensor) -> str:
    """x @ C is linear with W = C.T; C @ x (x a column per sample) is linear with W = C."""
    first, second = inputs
    if _is_var(first) and _is_var(second):
        raise ctx.unsupported("both operands depend on the input")
    if _is_var(first):
        x, c = first, _const(second)
        if c.dim() not in (1, 2):
            raise ctx.unsupported(f"constant right operand of rank {c.dim()} (batched matmul)")
        w = c.T if c.dim() == 2 else c[None, :]
    else:
        x, c = second, _const(first)
        if c.dim() != 2:
            raise ctx.unsupported(f"constant left operand of rank {c.dim()}")
        w = c
    return _emit_linear(ctx, x, w, torch.zeros(w.shape[0], dtype=DTYPE), out)


def _gemm(ctx: _Ctx, inputs: list[Value], out: torch.Tensor) -> str:
    """Gemm: onnx2torch emits nn.Linear (alpha, beta already folded in) or OnnxGemm (attributes kept)."""
    mod = ctx.module
    if isinstance(mod, nn.Linear):
        w = _const(mod.weight)
        b = _const(mod.bias) if mod.bias is not None else torch.zeros(w.shape[0], dtype=DTYPE)
        return _emit_linear(ctx, inputs[0], w, b, out)
    a, b_op, c = (list(inputs) + [None])[:3]
    if not _is_var(a) or _is_var(b_op) or _is_var(c):
        raise ctx.unsupported("only operand A may depend on the input")
    if mod.trans_a:
        raise ctx.unsupported("transA=1 on the input-dependent operand would contract the batch dimension")
    b_mat = _const(b_op)
    b_mat = b_mat.T if mod.trans_b else b_mat  # (n, m)
    w = float(mod.alpha) * b_mat.T
    m = w.shape[0]
    bias = torch.zeros(m, dtype=DTYPE)
    if c is not None:
        try:
            bias = float(mod.beta) * torch.broadcast_to(_const(c), (1, m)).reshape(m)
        except RuntimeError:
            raise ctx.unsupported(f"bias C of shape {list(_const(c).shape)} does not broadcast to (1, {m})") from None
    return _emit_linear(ctx, a, w, bias, out)


def _emit_linear(ctx: _Ctx, x: _Var, w: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> str:
    """A linear node on a flat vector, with reshapes around it when the extra per-sample dims are all 1."""
    m, n = w.shape
    out_shape = _sample_shape(out)
    if math.prod(x.sample_shape) != n or math.prod(out_shape) != m:
        raise ctx.unsupported(f"acts on a per-sample tensor of shape {list(x.sample_shape)}; "
                              "only a vector (extra dims of size 1) is supported")
    if x.sample_shape != (n,):
        x = _Var(ctx.emit("reshape", x, (n,), suffix="_flat", attrs={"shape": (n,)}), x.probe.reshape(1, n))
    y = ctx.emit("linear", x, (m,), params={"W": w.contiguous().clone(), "b": b.contiguous().clone()})
    if out_shape != (m,):
        y = ctx.builder.emit(ctx.hint + "_unflat", "reshape", (y,), out_shape, ctx.label, attrs={"shape": out_shape})
    return y


# ---- image ops --------------------------------------------------------------------------------------

def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _conv_var(ctx: _Ctx, x: _Var, w: torch.Tensor, b: torch.Tensor | None, suffix: str = "",
              stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1) -> _Var:
    """Emit a conv node (its output shape from the probe) and return it as a value."""
    w = _const(w).contiguous()
    b = torch.zeros(w.shape[0], dtype=DTYPE) if b is None else _const(b).contiguous()
    attrs = {"stride": _pair(stride), "padding": _pair(padding), "dilation": _pair(dilation), "groups": int(groups),
             "in_shape": x.sample_shape}
    probe = torch.nn.functional.conv2d(x.probe, w, b, attrs["stride"], attrs["padding"], attrs["dilation"],
                                       attrs["groups"])
    return ctx.emit_var("conv", (x,), probe, suffix, params={"W": w.clone(), "b": b.clone()}, attrs=attrs)


def _conv(ctx: _Ctx, inputs: list[Value], out: torch.Tensor) -> str:
    """Conv: nn.Conv1d/2d from onnx2torch, after an explicit pad module when the ONNX pads are asymmetric."""
    x = inputs[0]
    for mod in (ctx.module if isinstance(ctx.module, nn.Sequential) else [ctx.module]):
        if isinstance(mod, nn.Conv1d):  # (C, L) as (C, 1, L)
            y = _conv_var(ctx, _as_2d(ctx, x), mod.weight.unsqueeze(2), mod.bias, "", (1, mod.stride[0]),
                          (0, mod.padding[0]), (1, mod.dilation[0]), mod.groups)
            x = _as_1d(ctx, y)
        elif isinstance(mod, nn.Conv2d):
            if mod.padding_mode != "zeros" or isinstance(mod.padding, str):
                raise ctx.unsupported(f"padding {mod.padding!r} in mode {mod.padding_mode!r}")
            x = _conv_var(ctx, x, mod.weight, mod.bias, "", mod.stride, mod.padding, mod.dilation, mod.groups)
        elif _is_pad_module(mod):
            x = _pad_var(ctx, x, list(mod.pads), mod.mode, mod.constant_value)
        else:
            raise ctx.unsupported(f"a {type(mod).__name__} (only 1-D and 2-D convolutions are supported)")
    return x.node


def _as_2d(ctx: _Ctx, x: _Var) -> _Var:
    """A (C, L) value viewed as (C, 1, L), for the 2-D conv and pad rules."""
    shape = (x.sample_shape[0], 1, x.sample_shape[1])
    return ctx.emit_var("reshape", (x,), x.probe.unsqueeze(2), "_2d", attrs={"shape": shape})


def _as_1d(ctx: _Ctx, y: _Var) -> _Var:
    """The (C, 1, L) result of a 2-D rule viewed as (C, L) again."""
    shape = (y.sample_shape[0], y.sample_shape[2])
    return ctx.emit_var("reshape", (y,), y.probe.squeeze(2), "_1d", attrs={"shape": shape})


def _is_pad_module(mod: nn.Module) -> bool:
    return type(mod).__name__ == "OnnxPadStatic"


def _pad_var(ctx: _Ctx, x: _Var, torch_pads: list[int], mode: str, value: float) -> _Var:
    """Constant padding in torch's format (pairs for the last dim first) of a (C, H, W) or (C, L) value."""
    pads = [int(p) for p in torch_pads]
    rank = len(x.sample_shape)
    if mode != "constant":
        raise ctx.unsupported(f"{mode} padding (only constant padding is supported)")
    if any(p < 0 for p in pads):
        raise ctx.unsupported("negative pads (cropping)")
    if not math.isfinite(float(value)):
        raise ctx.unsupported(f"padding with {value}")
    pairs = [tuple(pads[i: i + 2]) for i in range(0, len(pads), 2)]  # last dim first
    if not any(pads):
        return x
    if rank not in (2, 3) or any(any(p) for p in pairs[2:]):
        raise ctx.unsupported("padding other than along the last two dims of a (C, H, W) or (C, L) value")
    if rank == 2:  # (C, L): pad L only
        if len(pairs) > 1 and any(pairs[1]):
            raise ctx.unsupported("padding along the channel dim")
        x = _as_2d(ctx, x)
        pairs = [pairs[0], (0, 0)]
    hw_pads = ((pairs[1] if len(pairs) > 1 else (0, 0)), pairs[0])
    probe = torch.nn.functional.pad(x.probe, [p for pair in pairs[:2] for p in pair] + [0] * (4 - 2 * len(pairs[:2])),
                                    value=float(value))
    y = ctx.emit_var("pad", (x,), probe, "_pad", attrs={"pads": hw_pads, "value": float(value)})
    return _as_1d(ctx, y) if rank == 2 else y


def _pad(ctx: _Ctx, inputs: list[Value], out: torch.Tensor) -> str:
    mod = ctx.module
    if _is_pad_module(mod):
        return _pad_var(ctx, inputs[0], list(mod.pads), mod.mode, mod.constant_value).node
    # OnnxPadDynamic: pads (ONNX order: all begins, then all ends) and value as constant inputs
    if any(_is_var(v) for v in inputs[1:]):
        raise ctx.unsupported("pads computed from the input")
    onnx_pads = [int(p) for p in _const(inputs[1]).flatten().tolist()]
    half = len(onnx_pads) // 2
    torch_pads = [p for begin, end in zip(onnx_pads[:half][::-1], onnx_pads[half:][::-1]) for p in (begin, end)]
    value = float(_const(inputs[2]).item()) if len(inputs) > 2 and inputs[2] is not None else 0.0
    mode = getattr(mod, "mode", "constant")
    return _pad_var(ctx, inputs[0], torch_pads[: 2 * (len(inputs[0].sample_shape) + 1)], mode, value).node


def _pool_module(ctx: _Ctx, kinds: tuple[type, ...], ceil: bool = False) -> tuple[list[nn.Module], nn.Module]:
    """The pooling module and the pad modules before it (asymmetric ONNX pads); `ceil`: ceil_mode=1 is
    handled by the caller."""
    mods = list(ctx.module) if isinstance(ctx.module, nn.Sequential) else [ctx.module]
    pool = mods[-1]
    if not isinstance(pool, kinds) or not all(_is_pad_module(m) for m in mods[:-1]):
        raise ctx.unsupported(f"{type(pool).__name__} (only 2-D pooling is supported)")
    if getattr(pool, "ceil_mode", False) and not ceil:
        raise ctx.unsupported("ceil_mode=1")
    return mods[:-1], pool


def _average_pool(ctx: _Ctx, inputs: list[Value], out: torch.Tensor) -> str:
    from verifier.model.pooling import average_divisor_fix, average_weights

    pads, pool = _pool_module(ctx, (nn.AvgPool2d,))
    x = inputs[0]
    for pad in pads:
        x = _pad_var(ctx, x, list(pad.pads), pad.mode, pad.constant_value)
    kernel, stride, padding = _pair(pool.kernel_size), _pair(pool.stride or pool.kernel_size), _pair(pool.padding)
    if pool.divisor_override:
        raise ctx.unsupported("divisor_override")
    y = _conv_var(ctx, x, average_weights(x.sample_shape[0], kernel, DTYPE), None, "", stride, padding, 1,
                  x.sample_shape[0])
    if any(padding) and not pool.count_include_pad:
        fix = average_divisor_fix(x.sample_shape[1:], kernel, stride, padding, DTYPE)
        y = ctx.emit_var("scale_shift", (y,), y.probe * fix, "_count",
                         params={"scale": fix, "shift": torch.zeros((), dtype=DTYPE)})
    return y.node


def _global_average_pool(ctx: _Ctx, inputs: list[Value], out: torch.Tensor) -> str:
    from verifier.model.pooling import average_weights

    x = inputs[0]
    if len(x.sample_shape) != 3:
        raise ctx.unsupported(f"input of per-sample shape {list(x.sample_shape)} (expects (C, H, W))")
    c, h, w = x.sample_shape
    return _conv_var(ctx, x, average_weights(c, (h, w), DTYPE), None, "", 1, 0, 1, c).node


def _max_pool(ctx: _Ctx, inputs: list[Value], out: torch.Tensor) -> str:
    """MaxPool as a tree of max(a, b) = relu(a - b) + b (see verifier.model.pooling)."""
    from verifier.model.pooling import max_levels

    pads, pool = _pool_module(ctx, (nn.MaxPool2d,), ceil=True)
    x = inputs[0]
    if len(x.sample_shape) != 3:
        raise ctx.unsupported(f"input of per-sample shape {list(x.sample_shape)} (expects (C, H, W))")
    channels = x.sample_shape[0]
    kernel, stride, dilation = _pair(pool.kernel_size), _pair(pool.stride or pool.kernel_size), _pair(pool.dilation)
    top, bottom, left, right = _max_pool_pads(ctx, pads, pool, x.sample_shape[1:], tuple(out.shape[-2:]))
    if top or bottom or left or right:
        x = _edge_pad_var(ctx, x, top, bottom, left, right)
    if kernel == (1, 1):
        return _conv_var(ctx, x, torch.ones(channels, 1, 1, 1), None, "", stride, 0, 1, channels).node
    for i, level in enumerate(max_levels(channels, kernel, DTYPE)):
        geometry = (stride, 0, dilation) if i == 0 else (1, 0, 1)
        diff = _conv_var(ctx, x, level.diff, None, f"_d{i}", *geometry, channels)
        relu = ctx.emit_var("relu", (diff,), torch.relu(diff.probe), f"_r{i}")
        rest = _conv_var(ctx, x, level.select, None, f"_s{i}", *geometry, channels)
        placed = _conv_var(ctx, relu, level.embed, None, f"_e{i}", 1, 0, 1, channels)
        x = ctx.emit_var("add", (placed, rest), placed.probe + rest.probe, f"_m{i}")
    return x.node


def _max_pool_pads(ctx: _Ctx, pads: list[nn.Module], pool: nn.Module, hw: tuple[int, ...],
                   out_hw: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) rows and columns of -inf padding a MaxPool reads: its own, the pad modules'
    before it (asymmetric ONNX pads) and, with ceil_mode, as many more as its partial last windows need to
    be whole. Refused where an edge copy could differ from -inf: dilation, or a window of padding only."""
    kernel, stride, dilation = _pair(pool.kernel_size), _pair(pool.stride or pool.kernel_size), _pair(pool.dilation)
    top, left = _pair(pool.padding)
    bottom, right = top, left
    for pad in pads:  # asymmetric ONNX pads: torch's order, last dim first
        if pad.mode != "constant" or float(pad.constant_value) != -math.inf:
            raise ctx.unsupported(f"MaxPool after {pad.mode} padding with {pad.constant_value}")
        p = [int(v) for v in pad.pads] + [0] * 4
        left, right, top, bottom = left + p[0], right + p[1], top + p[2], bottom + p[3]
    if top or bottom or left or right:
        if dilation != (1, 1):
            raise ctx.unsupported("padded MaxPool with dilation")
        if max(top, bottom) >= kernel[0] or max(left, right) >= kernel[1]:
            raise ctx.unsupported("MaxPool pads as large as its kernel (windows of padding only)")
    if pool.ceil_mode:
        if dilation != (1, 1):
            raise ctx.unsupported("ceil_mode=1 with dilation")
        (h, w), (out_h, out_w) = hw, out_hw
        if (out_h - 1) * stride[0] - top >= h or (out_w - 1) * stride[1] - left >= w:
            raise ctx.unsupported("ceil_mode=1 with a window of padding only")
        bottom = max(bottom, (out_h - 1) * stride[0] + kernel[0] - h - top)
        right = max(right, (out_w - 1) * stride[1] + kernel[1] - w - left)
    return top, bottom, left, right


def _edge_pad_var(ctx: _Ctx, x: _Var, top: int, bottom: int, left: int, right: int) -> _Var:
    """Edge padding of a (C, H, W) value: copies of its first and last rows, then columns (`_slice_var`),
    joined by a concat. This is MaxPool's -inf padding in ops the bounds know: with pads smaller than the
    kernel and no dilation, a padded window's copies are of elements inside the same window, and a maximum
    ignores repeats."""
    for axis, before, after in ((1, top, bottom), (2, left, right)):
        if not before and not after:
            continue
        last = x.sample_shape[axis] - 1
        parts = ([_slice_var(ctx, x, axis, 0, f"_edge{axis}_{i}") for i in range(before)] + [x]
                 + [_slice_var(ctx, x, axis, last, f"_edge{axis}_{before + i}") for i in range(after)])
        x = ctx.emit_var("concat", tuple(parts), torch.cat([v.probe for v in parts], dim=axis + 1), f"_edge{axis}",
                         attrs={"axis": axis, "sizes": tuple(v.sample_shape[axis] for v in parts)})
    return x


def _slice_var(ctx: _Ctx, x: _Var, axis: int, index: int, suffix: str) -> _Var:
    """Row (axis 1) or column (axis 2) `index` of a (C, H, W) value: a depthwise convolution whose one-hot
    kernel spans that axis."""
    c, size = x.sample_shape[0], x.sample_shape[axis]
    shape = (c, 1, size, 1) if axis == 1 else (c, 1, 1, size)
    weight = torch.zeros(shape, dtype=DTYPE)
    weight.view(c, size)[:, index] = 1.0
    return _conv_var(ctx, x, weight, None, suffix, 1, 0, 1, c)


def _batch_norm(ctx: _Ctx, inputs: list[Value], out: torch.Tensor) -> str:
    """Inference-mode BatchNormalization: a per-channel scale_shift (fused into a conv or linear layer
    before it by the simplifier)."""
    mod = ctx.module
    if not isinstance(mod, nn.modules.batchnorm._BatchNorm) or mod.running_var is None:
        raise ctx.unsupported(f"a {type(mod).__name__} without running statistics")
    x = inputs[0]
    scale = _const(mod.running_var).add(mod.eps).rsqrt()
    weight = _const(mod.weight) if mod.weight is not None else torch.ones_like(scale)
    bias = _const(mod.bias) if mod.bias is not None else torch.zeros_like(scale)
    scale = scale * weight
    shift = bias - _const(mod.running_mean) * scale
    channel = 0 if ctx.batched else 1  # ONNX's (N, C, ...): N is the batch dim, or a sample dim when unbatched
    if len(x.sample_shape) <= channel:
        raise ctx.unsupported(f"input of per-sample shape {list(x.sample_shape)} has no channel dim")
    view = (1,) * channel + (-1,) + (1,) * (len(x.sample_shape) - 1 - channel)
    return _emit_scale_shift(ctx, x, scale.reshape(view), shift.reshape(view), out)


# ---- tensor ops -------------------------------------------------------------------------------------

def _concat(ctx: _Ctx, inputs: list[Value], out: torch.Tensor) -> str:
    if not all(_is_var(v) for v in inputs):
        raise ctx.unsupported("concatenation with a constant tensor")
    axis = ctx.sample_axis(int(ctx.module.axis), out.dim())
    sizes = tuple(v.sample_shape[axis] for v in inputs)
    return ctx.emit_var("concat", tuple(inputs), out, attrs={"axis": axis, "sizes": sizes}).node


def _transpose(ctx: _Ctx, inputs: list[Value], out: torch.Tensor) -> str:
    perm = getattr(ctx.module, "perm", None)
    rank = out.dim() - (0 if ctx.batched else 1)
    perm = list(range(rank))[::-1] if perm is None else [int(p) + rank if int(p) < 0 else int(p) for p in perm]
    if not ctx.batched:
        return ctx.emit("transpose", inputs[0], _sample_shape(out), attrs={"perm": tuple(perm)})
    if perm[0] != 0:
        raise ctx.unsupported(f"perm {perm} moves the batch dim")
    per_sample = tuple(p - 1 for p in perm[1:])
    return ctx.emit("transpose", inputs[0], _sample_shape(out), attrs={"perm": per_sample})


def _squeeze_like(ctx: _Ctx, inputs: list[Value], out: torch.Tensor) -> str:
    """Squeeze/Unsqueeze: a reshape, once a batch-2 probe shows the batch dim is left alone."""
    if any(_is_var(v) for v in inputs[1:]):
        raise ctx.unsupported("axes computed from the input")
    x = inputs[0]
    if not ctx.batched:  # no batch dim to keep: any squeeze or unsqueeze is a reshape
        return _reshape(ctx, [x], out)
    probe = torch.randn((2,) + x.sample_shape, dtype=DTYPE)
    with torch.no_grad():
        two = ctx.module(probe, *inputs[1:])
    if two.shape[0] != 2 or tuple(two.shape[1:]) != _sample_shape(out) or not torch.equal(
            two.reshape(-1), probe.reshape(-1)):
        raise ctx.unsupported("changes the batch dim")
    return _reshape(ctx, [x], out)


def _clip(ctx: _Ctx, inputs: list[Value], out: torch.Tensor) -> str:
    """Clip(x, lo, hi) = lo + relu(x - lo) - relu(x - hi); with one bound only, one relu."""
    mod, x = ctx.module, inputs[0]
    if isinstance(mod, nn.ReLU6):  # what onnx2torch makes of Clip(0, 6), and of Clip(0) and Clip():
        lo, hi = 0.0, 6.0
    elif isinstance(mod, (nn.ReLU, nn.Identity)):
        lo, hi = (0.0 if isinstance(mod, nn.ReLU) else None), None
    else:  # OnnxClip: constant bounds as attributes
        lo, hi = getattr(mod, "min_val", None), getattr(mod, "max_val", None)
    lo = None if lo is None or not math.isfinite(float(lo)) else float(lo)
    hi = None if hi is None or not math.isfinite(float(hi)) else float(hi)
    one, zero = torch.ones((), dtype=DTYPE), torch.zeros((), dtype=DTYPE)

    def shifted_relu(scale: float, shift: float, suffix: str) -> _Var:
        """relu(scale * x + shift)."""
        pre = ctx.emit_var("scale_shift", (x,), x.probe * scale + shift, suffix + "_in",
                           params={"scale": one * scale, "shift": one * shift})
        return ctx.emit_var("relu", (pre,), torch.relu(pre.probe), suffix)

    if lo is None and hi is None:
        return x.node
    if hi is None:  # lo + relu(x - lo)
        r = shifted_relu(1.0, -lo, "_lo")
        return _emit_scale_shift(ctx, r, one, one * lo, out)
    if lo is None:  # hi - relu(hi - x)
        r = shifted_relu(-1.0, hi, "_hi")
        return _emit_scale_shift(ctx, r, -one, one * hi, out)
    if hi < lo:
        raise ctx.unsupported(f"min {lo} > max {hi}")
    upper = shifted_relu(1.0, -lo, "_lo")
    lower = shifted_relu(1.0, -hi, "_hi")
    neg = ctx.emit_var("scale_shift", (lower,), -lower.probe, "_neg", params={"scale": -one, "shift": zero})
    both = ctx.emit_var("add", (upper, neg), upper.probe + neg.probe, "_sum")
    return _emit_scale_shift(ctx, both, one, one * lo, out)


def _elementwise(op: str) -> Callable[[_Ctx, list[Value], torch.Tensor], str]:
    def handler(ctx: _Ctx, inputs: list[Value], out: torch.Tensor) -> str:
        return ctx.emit(op, inputs[0], _sample_shape(out))
    return handler


def _leaky_relu(ctx: _Ctx, inputs: list[Value], out: torch.Tensor) -> str:
    slope = float(getattr(ctx.module, "negative_slope", 0.01))
    if not (math.isfinite(slope) and slope >= 0):  # the bound rules need a monotone activation
        raise ctx.unsupported(f"negative slope alpha={slope} (need a finite alpha >= 0)")
    return ctx.emit("leaky_relu", inputs[0], _sample_shape(out), attrs={"alpha": slope})


def _pow(ctx: _Ctx, inputs: list[Value], out: torch.Tensor) -> str:
    """x ** e for a constant e: 1 is x itself, 0 the constant 1, 2 the `square` op (with its linear
    relaxation), any other (or an elementwise) exponent the `power` op (interval rule only)."""
    x, exponent = inputs[0], inputs[1]
    if not _is_var(x) or _is_var(exponent):
        raise ctx.unsupported("only a constant exponent on an input-dependent base is supported")
    if tuple(out.shape) != tuple(x.probe.shape):
        raise ctx.unsupported("the exponent broadcasts the base to another shape")
    e = _const(exponent)
    if not bool(torch.isfinite(e).all()):
        raise ctx.unsupported("a non-finite exponent")
    values = torch.unique(e)
    if values.numel() == 1 and float(values) in (0.0, 1.0, 2.0):
        if float(values) == 1.0:
            return x.node
        if float(values) == 0.0:
            return _emit_scale_shift(ctx, x, torch.zeros((), dtype=DTYPE), torch.ones((), dtype=DTYPE), out)
        return ctx.emit("square", x, _sample_shape(out))
    if e.dim() == out.dim():  # a (size-1) batch axis on the constant: drop it
        e = e[0]
    return ctx.emit("power", x, _sample_shape(out), params={"e": e.clone()})


_COMPARISONS = {"Greater": ("greater", "less"), "Less": ("less", "greater"),
                "GreaterOrEqual": ("greater_equal", "less_equal"), "LessOrEqual": ("less_equal", "greater_equal"),
                "Equal": ("equal", "equal")}
_INTEGER_TYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def _constant_operand(ctx: _Ctx, x: _Var, c: Value, out: torch.Tensor) -> torch.Tensor:
    """A constant operand of an elementwise op on x, broadcast to x's per-sample shape (x keeps its shape)."""
    if tuple(out.shape) != tuple(x.probe.shape):
        raise ctx.unsupported(f"broadcasting with the constant changes the shape {list(x.probe.shape)} -> "
                              f"{list(out.shape)}")
    c = _const(c)
    if c.dim() == out.dim():
        c = c[0]
    return torch.broadcast_to(c, x.sample_shape).clone()


def _compare(ctx: _Ctx, inputs: list[Value], out: torch.Tensor) -> str:
    """x > c, x == c, ... with a constant c: a `step` node giving 0 or 1."""
    first, second = inputs
    if _is_var(first) == _is_var(second):
        raise ctx.unsupported("a comparison of two input-dependent values")
    x, c, kinds = (first, second, 0) if _is_var(first) else (second, first, 1)
    if not x.probe.is_floating_point():
        raise ctx.unsupported("a comparison of a non-float input-dependent value")
    kind = _COMPARISONS[ctx.op][kinds]
    return ctx.emit("step", x, _sample_shape(out), params={"c": _constant_operand(ctx, x, c, out)},
                    attrs={"kind": kind})


def _cast(ctx: _Ctx, inputs: list[Value], out: torch.Tensor) -> str:
    """Cast of an input-dependent value: exact conversions are the value itself; to bool a `step` x != 0; from
    a float to an integer type a `step` trunc (toward zero, as onnxruntime). float16 rounds: refused."""
    x = inputs[0]
    src, dst = x.probe.dtype, out.dtype
    if dst in (torch.float32, torch.float64):
        return x.node  # floats widen or stay; bools and truncated values are exact in float32 too
    if dst == torch.bool:
        return x.node if src == torch.bool else ctx.emit("step", x, _sample_shape(out), attrs={"kind": "nonzero"})
    if dst in _INTEGER_TYPES:
        if src == torch.bool or (src in _INTEGER_TYPES and dst in (torch.int32, torch.int64)):
            return x.node
        if src.is_floating_point and dst in (torch.int32, torch.int64):
            return ctx.emit("step", x, _sample_shape(out), attrs={"kind": "trunc"})
    raise ctx.unsupported(f"a Cast from {src} to {dst} of an input-dependent value (it would round or wrap)")


def _where(ctx: _Ctx, inputs: list[Value], out: torch.Tensor) -> str:
    """Where(cond, a, b) with an input-dependent condition: a `where` node; constant branches are made values
    of the output's shape (cond * 0 + value). A constant condition takes the affine form instead."""
    cond, a, b = inputs
    if not _is_var(cond):
        raise ctx.unsupported("a constant condition (affine form)")
    shape = _sample_shape(out)
    if cond.sample_shape != shape:
        raise ctx.unsupported("a condition broadcast to another shape")
    cond_f = ctx.emit_var("scale_shift", (cond,), torch.zeros_like(out, dtype=DTYPE), "_zero",
                          params={"scale": torch.zeros((), dtype=DTYPE), "shift": torch.zeros((), dtype=DTYPE)})
    branches = []
    for k, v in enumerate((a, b)):
        if _is_var(v):
            if v.sample_shape != shape or not v.probe.is_floating_point():
                raise ctx.unsupported("a branch of another shape or type than the output")
            branches.append(v)
            continue
        value = _const(v)
        value = value[0] if value.dim() == out.dim() else value
        value = torch.broadcast_to(value, shape).clone()
        branches.append(ctx.emit_var("scale_shift", (cond_f,), value.unsqueeze(0).expand_as(out), f"_branch{k}",
                                     params={"scale": torch.zeros((), dtype=DTYPE), "shift": value}))
    return ctx.emit_var("where", (cond, *branches), out.to(DTYPE)).node


def _softmax(ctx: _Ctx, inputs: list[Value], out: torch.Tensor) -> str:
    """Softmax along one axis (opset 13+; onnx2torch makes it an nn.Softmax)."""
    if not isinstance(ctx.module, nn.Softmax) or ctx.module.dim is None:
        raise ctx.unsupported("Softmax before opset 13 (over flattened trailing dims) is not supported")
    axis = ctx.sample_axis(int(ctx.module.dim), out.dim())
    return ctx.emit("softmax", inputs[0], _sample_shape(out), attrs={"axis": axis})


# Largest weight matrix (elements) an affine op becomes; beyond it the op is refused rather than slow.
_AFFINE_MAX_ELEMENTS = 1 << 24


def _affine_output(ctx: _Ctx, n: fx.Node, inputs: list[Value], index: int | None, out: torch.Tensor) -> _Var:
    """An op output that is affine in the input-dependent operands, the others being constants (Gather,
    Slice, Split, Expand, ReduceSum/Mean, Where with a constant condition, Cast between float types, and
    broadcasting or higher-rank forms of Add/MatMul/...): y = sum_v W_v x_v + b, emitted as `linear` nodes
    on the flattened operands. W_v is the module's Jacobian and b its value at 0; the map is then checked
    at random points, so an op that is not affine (or rounds, like a Cast to float16) is refused."""
    variables = [(i, v) for i, v in enumerate(inputs) if _is_var(v)]
    m = out[0].numel()
    if m == 0 or any(m * v.probe[0].numel() > _AFFINE_MAX_ELEMENTS for _, v in variables):
        raise ctx.unsupported(f"output of {m} elements: too large (or empty) for its affine form")

    def f(*xs: torch.Tensor) -> torch.Tensor:
        values = list(inputs)
        for (i, v), x in zip(variables, xs):
            values[i] = _Var(v.node, x)
        y = _run_module(ctx.module, n, values, ctx.batched)
        y = y if index is None else y[index]
        if not (isinstance(y, torch.Tensor) and y.is_floating_point()):
            raise TypeError("not a floating-point output")
        return y.reshape(-1).to(DTYPE)

    zeros = tuple(torch.zeros_like(v.probe) for _, v in variables)
    try:
        with torch.no_grad():
            bias = f(*zeros)
        jac = torch.autograd.functional.jacobian(f, zeros)
    except Exception as e:
        raise ctx.unsupported(f"not an affine map of the input-dependent operands ({describe(e)})") from None
    weights = [j.reshape(m, -1).detach().to(DTYPE) for j in jac]
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        xs = tuple(3 * torch.randn(z.shape, generator=gen, dtype=DTYPE) for z in zeros)
        with torch.no_grad():
            want = f(*xs)
        got = bias + sum(w @ x.reshape(-1) for w, x in zip(weights, xs))
        if not (bool(torch.isfinite(want).all()) and bool(torch.isfinite(got).all())):  # overflowing weights
            raise ctx.unsupported("its values are not finite (inf or nan) on moderate inputs")
        if not torch.allclose(got, want, rtol=1e-5, atol=1e-5 * (1 + float(want.abs().max()))):
            raise ctx.unsupported("not an affine map of the input-dependent operands")
    suffix = "" if index is None else f"_{index}"
    terms = []
    for k, ((_, v), w) in enumerate(zip(variables, weights)):
        flat = v
        if v.sample_shape != (w.shape[1],):
            flat = ctx.emit_var("reshape", (v,), v.probe.reshape(1, -1), f"{suffix}_flat{k}",
                                attrs={"shape": (w.shape[1],)})
        b = bias if k == 0 else torch.zeros(m, dtype=DTYPE)
        probe = flat.probe @ w.T + b
        terms.append(ctx.emit_var("linear", (flat,), probe, f"{suffix}_lin{k}",
                                  params={"W": w.contiguous().clone(), "b": b.contiguous().clone()}))
    y = terms[0] if len(terms) == 1 else ctx.emit_var("add", tuple(terms), sum(t.probe for t in terms), suffix + "_sum")
    shape = _sample_shape(out)
    if shape != (m,):
        y = ctx.emit_var("reshape", (y,), y.probe.reshape(out.shape), suffix + "_shape", attrs={"shape": shape})
    return _Var(y.node, out.detach().to(DTYPE))


_HANDLERS: dict[str, Callable[[_Ctx, list[Value], torch.Tensor], str]] = {
    "Relu": _relu,
    "Flatten": _reshape,
    "Reshape": _reshape,
    "Neg": _neg,
    "Add": _binary,
    "Sub": _binary,
    "Mul": _binary,
    "Div": _binary,
    "MatMul": _matmul,
    "Gemm": _gemm,
    "Conv": _conv,
    "Pad": _pad,
    "AveragePool": _average_pool,
    "GlobalAveragePool": _global_average_pool,
    "MaxPool": _max_pool,
    "BatchNormalization": _batch_norm,
    "Concat": _concat,
    "Transpose": _transpose,
    "Squeeze": _squeeze_like,
    "Unsqueeze": _squeeze_like,
    "Clip": _clip,
    "Sigmoid": _elementwise("sigmoid"),
    "Tanh": _elementwise("tanh"),
    "LeakyRelu": _leaky_relu,
    "Pow": _pow,
    "Softmax": _softmax,
    "Greater": _compare,
    "Less": _compare,
    "GreaterOrEqual": _compare,
    "LessOrEqual": _compare,
    "Equal": _compare,
    "Cast": _cast,
    "Where": _where,
}
# Ops translated by `_affine_output` (alone, or where their handler refuses a form, e.g. MatMul on a matrix).
_AFFINE_OPS = frozenset({"Gather", "Slice", "Split", "Expand", "ReduceSum", "ReduceMean", "Where", "Cast",
                         "MatMul", "Gemm", "Add", "Sub", "Mul", "Div", "Neg", "Concat", "Pad", "Squeeze",
                         "Unsqueeze", "Flatten", "Reshape", "Transpose", "Conv", "AveragePool",
                         "GlobalAveragePool"})
# Handlers that read dim 0 as the batch dim (image layouts): an unbatched model takes the affine form instead.
_BATCH_ONLY_HANDLERS = frozenset({"Conv", "Pad", "AveragePool", "GlobalAveragePool", "MaxPool"})
# Ops whose output is a constant once the input's shape is known (we verify one sample at a time).
_SHAPE_OPS = frozenset({"Shape"})
# Folded away when their inputs are constants; refused (one line) on input-dependent values.
_CONSTANT_ONLY_OPS = frozenset({"ConstantOfShape"})
_ALIAS_OPS = frozenset({"Identity", "Dropout"})  # y = x at inference; Dropout's mask output is not supported
SUPPORTED_OPS = frozenset(_HANDLERS) | _AFFINE_OPS | _SHAPE_OPS | _CONSTANT_ONLY_OPS | _ALIAS_OPS | {"Constant"}


# ---- driver ----------------------------------------------------------------------------------------

def to_fx(model: "onnx.ModelProto") -> fx.GraphModule:
    """Convert with onnx2torch, imported here only: it pulls in torchvision (about 1.5 s)."""
    import onnx2torch

    from verifier.model.onnx_compat import register_converters

    register_converters()
    try:
        gm = onnx2torch.convert(model, attach_onnx_mapping=True)
    except NotImplementedError as e:
        raise UnsupportedModelError(f"onnx2torch cannot convert this model ({describe(e)})") from None
    except Exception as e:  # onnx2torch raises whatever its converters raise
        raise ModelError(f"onnx2torch failed ({describe(e)})") from None
    return gm.float().eval()  # float64 files too: probes and folded constants all in DTYPE


def translate(gm: fx.GraphModule, model: "onnx.ModelProto", iface: Interface) -> Graph:
    """Walk the fx graph once, folding constants and emitting Graph nodes for input-dependent values.

    Unbatched models (`iface.batched` False) run each module on the value without its virtual batch axis
    (the tensor the ONNX node sees), and the result gets the axis back for the handlers."""
    producers = {out: (node, node_label(node, i)) for i, node in enumerate(model.graph.node) for out in node.output}
    builder = _Builder()
    env: dict[fx.Node, Value] = {}
    output: Value = None
    input_name = builder.emit("input", "input", (), iface.sample_shape, iface.input_name)
    for n in gm.graph.nodes:
        if n.op == "placeholder":  # exactly one: `iface` has checked the file has a single input
            env[n] = _Var(input_name, torch.zeros((1,) + iface.sample_shape, dtype=DTYPE))
        elif n.op == "get_attr":
            env[n] = operator.attrgetter(n.target)(gm)
        elif n.op == "call_function":
            env[n] = _getitem(n, gm, producers, env)
        elif n.op == "call_module":
            env[n] = _call_module(n, gm, producers, env, builder, iface.batched)
        elif n.op == "output":
            output = env[n.args[0]] if isinstance(n.args[0], fx.Node) else None
            if isinstance(output, (tuple, list)):  # onnx2torch returns a multi-output node's whole tuple
                output = _pick_output(n.args[0], output, gm, producers, iface.output_name)
    if isinstance(output, torch.Tensor) and not iface.batched:  # a constant output (e.g. Shape of the input)
        flat = torch.as_tensor(output).detach().to(DTYPE).reshape(-1)
        n_in = math.prod(iface.sample_shape)
        node = builder.emit("constant_flat", "reshape", (input_name,), (n_in,), "", attrs={"shape": (n_in,)})
        node = builder.emit("constant", "linear", (node,), (flat.numel(),), "",
                            params={"W": torch.zeros(flat.numel(), n_in, dtype=DTYPE), "b": flat.clone()})
        shape = tuple(output.shape)
        if shape != (flat.numel(),):
            node = builder.emit("constant_shape", "reshape", (node,), shape, "", attrs={"shape": shape})
        output = _Var(node, flat.reshape((1,) + shape))
    if not isinstance(output, _Var):
        raise ModelError("the output does not depend on the input (or there are several outputs)")
    return Graph(tuple(builder.nodes), input_name, output.node, iface.input_shape)


def _pick_output(n: fx.Node, values: Any, gm: fx.GraphModule, producers: Mapping[str, tuple], name: str) -> Value:
    """The element of a multi-output node's values that is the graph output `name`."""
    if n.op != "call_module":
        return None
    node, _ = _onnx_node(n, gm, producers)
    return values[list(node.output).index(name)] if name in node.output else None


def _onnx_node(n: fx.Node, gm: fx.GraphModule, producers: Mapping[str, tuple]) -> tuple["onnx.NodeProto", str]:
    mapping = getattr(gm.get_submodule(n.target), "onnx_mapping", None)
    if mapping is None or not mapping.outputs or mapping.outputs[0] not in producers:
        raise ModelError(f"cannot trace fx node {n.name} back to an ONNX node")
    return producers[mapping.outputs[0]]


def _getitem(n: fx.Node, gm: fx.GraphModule, producers: Mapping[str, tuple], env: dict[fx.Node, Value]) -> Value:
    """onnx2torch indexes multi-output nodes: Dropout (output 0 is its input) and Split (a tuple of values)."""
    src, index = n.args
    if n.target is not operator.getitem or not isinstance(src, fx.Node) or src.op != "call_module":
        raise UnsupportedModelError(f"unexpected fx function {n.target} in the converted model")
    value = env[src]
    if isinstance(value, (tuple, list)):  # a multi-output node, constant or translated output by output
        return value[index]
    node, label = _onnx_node(src, gm, producers)
    if node.op_type != "Dropout" or index != 0:
        raise UnsupportedModelError(f"node {label} ({node.op_type}): output {index} is not supported")
    return value


def _run_module(module: nn.Module, n: fx.Node, values: list[Value], batched: bool, add_axis: bool = True) -> Any:
    """The module on `values` (each _Var replaced by its probe, without the virtual batch axis when
    unbatched); outputs that depend on a _Var get the virtual axis back."""
    stripped = [(v.probe if batched else v.probe[0]) if _is_var(v) else v for v in values]
    if type(module).__name__ == "OnnxConstantOfShape":  # its torch.Size(tensor) fails on recent torch
        value = module.value.reshape(-1)[0]
        return torch.full(tuple(int(d) for d in torch.as_tensor(stripped[0]).tolist()), value.item(),
                          dtype=value.dtype)
    out = module(*stripped[: len(n.args)], **dict(zip(n.kwargs, stripped[len(n.args):])))
    if batched or not add_axis or not any(_is_var(v) for v in values):
        return out
    if isinstance(out, (tuple, list)):
        return type(out)(o.unsqueeze(0) for o in out)
    return out.unsqueeze(0)


def _refuse_empty(out: Any, label: str, op: str) -> None:
    """A zero-size input-dependent tensor (a Gemm to 0 units, a crop to nothing) is legal ONNX, but no bound
    rule has anything to reduce over, and such a network is almost surely a mistake: refuse it by name."""
    for o in out if isinstance(out, (tuple, list)) else (out,):
        if isinstance(o, torch.Tensor) and o.numel() == 0:
            raise ModelError(f"node {label} ({op}) gives an empty tensor (shape {list(o.shape)} at batch 1): "
                             "a zero-size dimension")


def _call_module(n: fx.Node, gm: fx.GraphModule, producers: Mapping[str, tuple],
                 env: dict[fx.Node, Value], builder: _Builder, batched: bool = True) -> Value:
    module = gm.get_submodule(n.target)
    node, label = _onnx_node(n, gm, producers)
    op = op_label(node)
    inputs = [env[a] if isinstance(a, fx.Node) else a for a in list(n.args) + list(n.kwargs.values())]
    if op in _ALIAS_OPS:
        return inputs[0]
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # onnx2torch's Slice warns of a torch deprecation
            out = _run_module(module, n, inputs, batched, add_axis=op not in _SHAPE_OPS)
    except Exception as e:
        raise ModelError(f"node {label} ({op}) fails at batch size 1 ({describe(e)})") from None
    if not any(_is_var(v) for v in inputs) or op in _SHAPE_OPS:
        return out  # constant folding; a shape is known at batch size 1 whatever the input's values
    _refuse_empty(out, label, op)
    ctx = _Ctx(builder, module, n.name, label, op, batched)
    if isinstance(out, (tuple, list)):  # several outputs (Split): each an affine map of the inputs
        if op not in _AFFINE_OPS:
            raise UnsupportedModelError(f"node {label} ({op}) is not supported on input-dependent values")
        return tuple(_affine_output(ctx, n, inputs, k, o) for k, o in enumerate(out))
    if op not in _HANDLERS and op not in _AFFINE_OPS:
        raise UnsupportedModelError(f"node {label} ({op}) is not supported on input-dependent values")
    if not isinstance(out, torch.Tensor) or out.dim() == 0 or out.shape[0] != 1:
        shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise UnsupportedModelError(
            f"node {label} ({op}) does not keep the batch dimension first (output {shape} at batch 1)")
    if op not in _HANDLERS or (not batched and op in _BATCH_ONLY_HANDLERS):
        if op not in _AFFINE_OPS:
            raise ctx.unsupported("not supported on a model without a batch dimension")
        return _affine_output(ctx, n, inputs, None, out)
    mark = len(builder.nodes)
    try:
        return _Var(_HANDLERS[op](ctx, inputs, out), _probe(out))
    except UnsupportedModelError as refused:
        if op not in _AFFINE_OPS:
            raise
        del builder.nodes[mark:]  # the handler may have emitted nodes before giving up
        try:
            return _affine_output(ctx, n, inputs, None, out)
        except UnsupportedModelError:
            raise refused from None  # the handler's reason says more
