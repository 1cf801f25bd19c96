"""Small ONNX models written with onnx.helper, and helpers to compare what we load with onnxruntime."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from verifier.model import onnx_file
from verifier.model.check import check_against_onnxruntime
from verifier.model.graph import Graph
from verifier.model.loader import Model, load_model
from verifier.model.translate import to_fx, translate

Dim = Union[int, str]
RNG = np.random.default_rng(0)


def rand(*shape: int) -> np.ndarray:
    return RNG.normal(size=shape).astype(np.float32)


def init(name: str, value: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


def const(output: str, value: np.ndarray, name: str = "") -> onnx.NodeProto:
    return helper.make_node("Constant", [], [output], name=name or f"const_{output}", value=init("", value))


def save(path: Path, nodes: Sequence[onnx.NodeProto], inputs: Sequence[tuple[str, Sequence[Dim]]],
         outputs: Sequence[tuple[str, Optional[Sequence[Dim]]]], initializers: Sequence[TensorProto] = (),
         opset: int = 13, elem_type: int = TensorProto.FLOAT) -> Path:
    """Write a model (float32 unless told); symbolic dims are given as strings, None leaves a shape unknown."""
    def info(name: str, shape: Sequence[Dim]) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, elem_type, None if shape is None else list(shape))

    graph = helper.make_graph(list(nodes), "test", [info(*i) for i in inputs], [info(*o) for o in outputs],
                              initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    if any(shape is None for _, shape in outputs):  # let ONNX's shape inference write them
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        known = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
        for out in model.graph.output:
            if not out.type.tensor_type.HasField("shape"):
                out.CopyFrom(known[out.name])
    model.ir_version = min(model.ir_version, 8)  # what the installed onnxruntime reads
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def raw_graph(path: Path) -> Graph:
    """The translated graph before simplification, to test the passes one by one."""
    proto = onnx_file.parse(path.read_bytes(), path.parent)
    iface = onnx_file.interface(proto)
    proto = onnx_file.upgrade(proto)
    return translate(to_fx(proto), proto, iface)


def ops(model_or_graph: Union[Model, Graph]) -> list[str]:
    g = model_or_graph.graph if isinstance(model_or_graph, Model) else model_or_graph
    return [n.op for n in g.nodes]


def load_and_compare(path: Path, batch: int = 7) -> Model:
    """Load without the built-in check, then compare with onnxruntime at batch 1 and at `batch`."""
    model = load_model(path, check=False, cache=False)
    points = RNG.uniform(-2, 2, size=(batch, model.graph.n_inputs))
    assert check_against_onnxruntime(model, points[:1]) < 1e-4
    assert check_against_onnxruntime(model, points) < 1e-4
    return model
