"""Reading an ONNX file into a ModelProto we can trust the shape of, before any conversion work.

Everything here raises `ModelError` / `UnsupportedModelError` with a message *without* the file
path; `loader.load_model` prefixes the path, so each error is one line naming the file.
`onnx` is imported inside the functions: importing this module must stay cheap, because a
cache hit never needs onnx at all.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Union

from verifier.errors import ModelError, UnsupportedModelError

if TYPE_CHECKING:  # pragma: no cover
    import onnx

TARGET_OPSET = 13  # older files are upgraded: onnx2torch lacks e.g. Flatten-1 (ACAS Xu is opset 8)
_MAX_NODES_LISTED = 5


@dataclass(frozen=True)
class Interface:
    """The one input and one output of an ONNX graph; unknown dims are -1.

    batched: the first ONNX dimension is a batch dimension (1 or symbolic), left out of the per-sample
    shape. Otherwise (ONNX does not require one: inputs of shape [4] or [2, 2]) the whole tensor is one
    sample; the translator then adds a virtual batch axis of its own (a symbolic first dim counts as 1).
    """

    input_name: str
    input_shape: tuple[int, ...]
    output_name: str
    output_shape: tuple[int, ...]
    batched: bool = True

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Per-sample input shape: without the batch dimension, or the whole tensor when unbatched."""
        if self.batched:
            return self.input_shape[1:]
        return tuple(1 if d == -1 else d for d in self.input_shape)

    @property
    def may_be_unbatched(self) -> bool:
        """A batched reading can be retried unbatched (the first dim taken as a plain dim of size 1)."""
        return self.batched and self.input_shape[0] in (1, -1)


def describe(e: BaseException) -> str:
    """A third-party exception as one line: converters and runtimes like multi-line C++ messages."""
    return f"{type(e).__name__}: {' '.join(str(e).split())}"


_GZIP_MAGIC = b"\x1f\x8b"


def decompress(data: bytes) -> bytes:
    """The bytes of an ONNX file, gunzipped when they are gzip's (a `.onnx.gz`)."""
    if not data.startswith(_GZIP_MAGIC):
        return data
    import gzip
    import zlib

    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise ModelError(f"cannot decompress the gzip file ({describe(e)})") from None


def session_source(path: Union[str, Path]) -> Union[str, bytes]:
    """What onnxruntime opens: the path, or the decompressed bytes of a gzip file."""
    with open(path, "rb") as f:
        if f.read(2) != _GZIP_MAGIC:
            return str(path)
    return decompress(Path(path).read_bytes())


def parse(data: bytes, base_dir: Path) -> "onnx.ModelProto":
    """Decode the file's bytes (gunzipped first for a .onnx.gz); a protobuf that decodes but holds no graph
    is not an ONNX model either."""
    import onnx
    from google.protobuf.message import DecodeError
    from onnx.external_data_helper import load_external_data_for_model

    data = decompress(data)
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
    batched = _check_input_shape(inp.name, in_shape)
    return Interface(inp.name, in_shape, out.name, out_shape, batched)


def _shape(value_info: "onnx.ValueInfoProto") -> tuple[int, ...]:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in dims)


def _check_input_shape(name: str, shape: tuple[int, ...]) -> bool:
    """Whether dim 0 reads as a batch dimension (rank >= 2, dim 0 of 1 or symbolic); every other dim must be
    known to size the graph."""
    if not shape:
        raise ModelError(f"input '{name}' is a scalar (shape []): expected a tensor of rank 1 or more")
    if any(d <= 0 for d in shape[1:]):
        raise ModelError(f"input '{name}' has shape {list(shape)}: only the first dimension may be symbolic")
    return len(shape) >= 2 and shape[0] in (1, -1)


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
