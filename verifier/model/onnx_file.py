"""Reading an ONNX file into a ModelProto we can trust the shape of, before any conversion work.

Everything here raises `ModelError` / `UnsupportedModelError` with a message *without* the file
path; `loader.load_model` prefixes the path, so each error is one line naming the file.
`onnx` is imported inside the functions: importing this module must stay cheap, because a
cache hit never needs onnx at all.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from verifier.errors import ModelError, UnsupportedModelError

if TYPE_CHECKING:  # pragma: no cover
    import onnx

TARGET_OPSET = 13  # older files are upgraded: onnx2torch lacks e.g. Flatten-1 (ACAS Xu is opset 8)
_MAX_NODES_LISTED = 5


@dataclass(frozen=True)
class Interface:
    """The one input and one output of an ONNX graph; unknown dims are -1."""

    input_name: str
    input_shape: tuple[int, ...]
    output_name: str
    output_shape: tuple[int, ...]

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Per-sample input shape: the first ONNX dimension is the batch dimension."""
        return self.input_shape[1:]


def describe(e: BaseException) -> str:
    """A third-party exception as one line: converters and runtimes like multi-line C++ messages."""
    return f"{type(e).__name__}: {' '.join(str(e).split())}"


def parse(data: bytes, base_dir: Path) -> "onnx.ModelProto":
    """Decode the file's bytes; a protobuf that decodes but holds no graph is not an ONNX model either."""
    import onnx
    from google.protobuf.message import DecodeError
    from onnx.external_data_helper import load_external_data_for_model

    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise ModelError(f"not an ONNX file ({describe(e)})") from None
    if model.ir_version <= 0 or not model.graph.node:
        raise ModelError("not an ONNX file (no IR version or an empty graph)")
    _check_names(model)
    try:
        load_external_data_for_model(model, str(base_dir))
    except (OSError, ValueError, onnx.checker.ValidationError) as e:  # a missing file; an empty or odd location
        raise ModelError(f"cannot read external tensor data ({describe(e)})") from None
    return model


def interface(model: "onnx.ModelProto") -> Interface:
    """The single input (initializers listed as inputs, as in IR-3 files, do not count) and single output."""
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    inputs = [v for v in graph.input if v.name not in initializers]
    if len(inputs) != 1:
        raise ModelError(f"expected one input, found {len(inputs)} ({', '.join(v.name for v in inputs)})")
    if len(graph.output) != 1:
        raise ModelError(f"expected one output, found {len(graph.output)} ({', '.join(v.name for v in graph.output)})")
    inp, out = inputs[0], graph.output[0]
    in_shape, out_shape = _shape(inp), _shape(out)
    _check_input_shape(inp.name, in_shape)
    return Interface(inp.name, in_shape, out.name, out_shape)


def _shape(value_info: "onnx.ValueInfoProto") -> tuple[int, ...]:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in dims)


def _check_input_shape(name: str, shape: tuple[int, ...]) -> None:
    """We read dim 0 as the batch dimension; everything else must be known to size the graph."""
    if len(shape) < 2:
        raise ModelError(f"input '{name}' has shape {list(shape)}: expected a batch dimension and at least one more")
    if shape[0] not in (1, -1):
        raise ModelError(f"input '{name}' has batch dimension {shape[0]}: expected 1 or symbolic")
    if any(d <= 0 for d in shape[1:]):
        raise ModelError(f"input '{name}' has shape {list(shape)}: only the batch dimension may be symbolic")


def _check_names(model: "onnx.ModelProto") -> None:
    """Protobuf hands back a string field that is not UTF-8 as bytes; every later message, lookup and
    onnxruntime itself expect text, so such a file (corrupt, in practice) is refused here. Walks every string
    field of the graph (names, op types, attribute names and strings, doc strings), not the tensor data."""
    if not _all_text(model):
        raise ModelError("not an ONNX file (a name or other text field is not UTF-8)")


def _all_text(msg: object) -> bool:
    for field, value in msg.ListFields():  # type: ignore[attr-defined]
        if field.type == field.TYPE_STRING:
            if not all(isinstance(v, str) for v in ([value] if isinstance(value, (str, bytes)) else value)):
                return False
        elif field.type == field.TYPE_MESSAGE:
            if not all(_all_text(v) for v in ([value] if hasattr(value, "ListFields") else value)):
                return False
    return True


def node_label(node: "onnx.NodeProto", index: int) -> str:
    """A name a user can find in the file: the node's name, or its op type and position when unnamed."""
    return node.name or f"{node.op_type}#{index}"


def op_label(node: "onnx.NodeProto") -> str:
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"


def check_supported(model: "onnx.ModelProto", supported: Iterable[str]) -> None:
    """Raise one error listing every unsupported op type with its nodes, so the user sees them all at once."""
    allowed = set(supported)
    bad: dict[str, list[str]] = {}
    for i, node in enumerate(model.graph.node):
        op = op_label(node)
        if op not in allowed:
            bad.setdefault(op, []).append(node_label(node, i))
    if bad:
        listed = "; ".join(_op_entry(op, names) for op, names in bad.items())
        raise UnsupportedModelError(f"unsupported ONNX ops: {listed}")


# What to do instead, for ops a user is likely to meet.
_HINTS = {
    "Softmax": "verify the logits instead: export the model without its final Softmax (the argmax is the same)",
    "LogSoftmax": "verify the logits instead: export the model without its final LogSoftmax",
}


def _op_entry(op: str, names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_NODES_LISTED])
    more = f", +{len(names) - _MAX_NODES_LISTED} more" if len(names) > _MAX_NODES_LISTED else ""
    hint = f" -- {_HINTS[op]}" if op in _HINTS else ""
    return f"{op} (nodes: {shown}{more}){hint}"


def opset(model: "onnx.ModelProto") -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return o.version
    return 1  # no default-domain import: the oldest opset, per the ONNX spec


def upgrade(model: "onnx.ModelProto") -> "onnx.ModelProto":
    """Bring old opsets to TARGET_OPSET, the oldest version whose ops onnx2torch converts reliably."""
    if opset(model) >= TARGET_OPSET:
        return model
    from onnx import version_converter

    try:
        return version_converter.convert_version(model, TARGET_OPSET)
    except Exception as e:  # the converter raises bare RuntimeError/ValueError/C++ errors
        raise ModelError(f"cannot upgrade opset {opset(model)} to {TARGET_OPSET} ({describe(e)})") from None
