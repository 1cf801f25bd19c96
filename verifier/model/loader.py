"""load_model: an ONNX file -> a checked, simplified Graph (from the cache when possible).

Pipeline on a miss: parse -> list unsupported ops (all at once) -> read the input/output
interface -> upgrade old opsets -> onnx2torch -> translate -> simplify -> compare with
onnxruntime -> store in the cache. On a hit none of onnx, onnx2torch or onnxruntime is imported.
Every failure is a one-line `ModelError("PATH: what is wrong")`.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional, Union

from verifier.errors import ModelError, reading
from verifier.model import cache as graph_cache
from verifier.model import onnx_compat, onnx_file
from verifier.model.check import verify_equivalence
from verifier.model.graph import Graph
from verifier.model.serialize import graph_from_dict, graph_to_dict
from verifier.model.simplify import simplify
from verifier.model.translate import SUPPORTED_OPS, to_fx, translate


@dataclass(frozen=True)
class Model:
    """A loaded network: our graph plus what is needed to run the original file with onnxruntime."""

    graph: Graph
    path: Path
    sha256: str
    onnx_input_name: str
    onnx_input_shape: tuple[int, ...]   # full ONNX shape incl. the batch dim; -1 where symbolic
    onnx_output_shape: tuple[int, ...]  # as declared in the file; -1 where symbolic
    onnx_batched: bool = True  # dim 0 of the input is a batch dim; else the whole tensor is one sample


def load_model(path: Union[str, os.PathLike], *, check: bool = True, cache: bool = True) -> Model:
    """Load and convert `path`; with check=True compare with onnxruntime on [-1, 1]^n (once per cached file)."""
    path = Path(path)
    data = _read(path)
    sha = hashlib.sha256(data).hexdigest()
    entry = graph_cache.read(sha) if cache else None
    model = _from_entry(entry, path, sha) if entry is not None else None
    fresh = model is None
    checked = not fresh and entry.get("checked") is True
    if model is None:
        model = _convert(path, data, sha)
    if check and not checked:
        verify_equivalence(model)
    if cache and (fresh or (check and not checked)):
        graph_cache.write(sha, _to_entry(model, checked=checked or check))
    return model


def _read(path: Path) -> bytes:
    with reading(path, ModelError, "file", "an ONNX file"):
        return path.read_bytes()


def _convert(path: Path, data: bytes, sha: str) -> Model:
    try:
        proto = onnx_file.parse(data, path.parent)
        onnx_file.check_supported(proto, SUPPORTED_OPS)
        iface = onnx_file.interface(proto)
        proto = onnx_compat.explicit_pads(onnx_compat.constants_to_initializers(onnx_file.upgrade(proto)))
        gm = to_fx(proto)
        try:
            graph = translate(gm, proto, iface)
        except ModelError as first:
            if not iface.may_be_unbatched:
                raise
            # dim 0 of size 1 need not be a batch dim (Softmax or a Gather along it): read the tensor whole
            iface = replace(iface, batched=False)
            try:
                graph = translate(gm, proto, iface)
            except ModelError:
                raise first from None
        graph = simplify(graph)
    except ModelError as e:
        raise type(e)(f"{path}: {e}") from None
    return Model(graph, path, sha, iface.input_name, iface.input_shape, iface.output_shape, iface.batched)


def _to_entry(model: Model, checked: bool) -> dict[str, Any]:
    return {"graph": graph_to_dict(model.graph), "onnx_input_name": model.onnx_input_name,
            "onnx_input_shape": list(model.onnx_input_shape), "onnx_output_shape": list(model.onnx_output_shape),
            "onnx_batched": model.onnx_batched, "checked": checked}


def _from_entry(entry: dict[str, Any], path: Path, sha: str) -> Optional[Model]:
    """None for an entry that does not have the expected layout (treated like a corrupt file)."""
    try:
        return Model(graph_from_dict(entry["graph"]), path, sha, str(entry["onnx_input_name"]),
                     tuple(int(d) for d in entry["onnx_input_shape"]),
                     tuple(int(d) for d in entry["onnx_output_shape"]), bool(entry.get("onnx_batched", True)))
    except (KeyError, TypeError, ValueError):
        return None
