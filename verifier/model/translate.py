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

    def emit(self, op: str, x: _Var, shape: tuple[int, ...], suffix: str = "", **kw: Any) -> str:
        return self.builder.emit(self.hint + suffix, op, (x.node,), shape, self.label, **kw)

    def unsupported(self, reason: str) -> UnsupportedModelError:
        return UnsupportedModelError(f"node {self.label} ({self.op}): {reason}")


def _is_var(v: Value) -> bool:
    return isinstance(v, _Var)


def _const(v: Value) -> torch.Tensor:
    return torch.as_tensor(v).detach().to(DTYPE)


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
        raise ctx.unsupported("both operands depend on the input")
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
}
_ALIAS_OPS = frozenset({"Identity", "Dropout"})  # y = x at inference; Dropout's mask output is not supported
SUPPORTED_OPS = frozenset(_HANDLERS) | _ALIAS_OPS | {"Constant"}


# ---- driver ----------------------------------------------------------------------------------------

def to_fx(model: "onnx.ModelProto") -> fx.GraphModule:
    """Convert with onnx2torch, imported here only: it pulls in torchvision (about 1.5 s)."""
    import onnx2torch

    try:
        gm = onnx2torch.convert(model, attach_onnx_mapping=True)
    except NotImplementedError as e:
        raise UnsupportedModelError(f"onnx2torch cannot convert this model ({describe(e)})") from None
    except Exception as e:  # onnx2torch raises whatever its converters raise
        raise ModelError(f"onnx2torch failed ({describe(e)})") from None
    return gm.float().eval()  # float64 files too: probes and folded constants all in DTYPE


def translate(gm: fx.GraphModule, model: "onnx.ModelProto", iface: Interface) -> Graph:
    """Walk the fx graph once, folding constants and emitting Graph nodes for input-dependent values."""
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
            env[n] = _call_module(n, gm, producers, env, builder)
        elif n.op == "output":
            output = env[n.args[0]] if isinstance(n.args[0], fx.Node) else None
    if not isinstance(output, _Var):
        raise ModelError("the output does not depend on the input (or there are several outputs)")
    return Graph(tuple(builder.nodes), input_name, output.node, iface.input_shape)


def _onnx_node(n: fx.Node, gm: fx.GraphModule, producers: Mapping[str, tuple]) -> tuple["onnx.NodeProto", str]:
    mapping = getattr(gm.get_submodule(n.target), "onnx_mapping", None)
    if mapping is None or not mapping.outputs or mapping.outputs[0] not in producers:
        raise ModelError(f"cannot trace fx node {n.name} back to an ONNX node")
    return producers[mapping.outputs[0]]


def _getitem(n: fx.Node, gm: fx.GraphModule, producers: Mapping[str, tuple], env: dict[fx.Node, Value]) -> Value:
    """onnx2torch indexes multi-output nodes; the only one we support is Dropout, whose output 0 is its input."""
    src, index = n.args
    if n.target is not operator.getitem or not isinstance(src, fx.Node) or src.op != "call_module":
        raise UnsupportedModelError(f"unexpected fx function {n.target} in the converted model")
    node, label = _onnx_node(src, gm, producers)
    if node.op_type != "Dropout" or index != 0:
        raise UnsupportedModelError(f"node {label} ({node.op_type}): output {index} is not supported")
    return env[src]


def _call_module(n: fx.Node, gm: fx.GraphModule, producers: Mapping[str, tuple],
                 env: dict[fx.Node, Value], builder: _Builder) -> Value:
    module = gm.get_submodule(n.target)
    node, label = _onnx_node(n, gm, producers)
    op = op_label(node)
    inputs = [env[a] if isinstance(a, fx.Node) else a for a in list(n.args) + list(n.kwargs.values())]
    if op in _ALIAS_OPS:
        return inputs[0]
    probe_in = [v.probe if _is_var(v) else v for v in inputs]
    try:
        with torch.no_grad():
            out = module(*probe_in[: len(n.args)], **dict(zip(n.kwargs, probe_in[len(n.args):])))
    except Exception as e:
        raise ModelError(f"node {label} ({op}) fails at batch size 1 ({describe(e)})") from None
    if not any(_is_var(v) for v in inputs):
        return out  # constant folding
    if op not in _HANDLERS:
        raise UnsupportedModelError(f"node {label} ({op}) is not supported on input-dependent values")
    if not isinstance(out, torch.Tensor) or out.dim() == 0 or out.shape[0] != 1:
        shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise UnsupportedModelError(
            f"node {label} ({op}) does not keep the batch dimension first (output {shape} at batch 1)")
    ctx = _Ctx(builder, module, n.name, label, op)
    return _Var(_HANDLERS[op](ctx, inputs, out), out.detach().to(DTYPE))
