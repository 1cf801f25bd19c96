"""What an ONNX file holds and whether we can verify it: the analysis behind `verifier check-model`.

One pass over the file gives the op table (each op type checked against the translator's SUPPORTED_OPS),
the input/output tensors and the parameter count; then the loader converts it exactly as `verify` would
(without the graph cache, so the answer is about the code as it is now) and our graph is compared with
onnxruntime on random points: uniform in the spec's first input box, or standard normal without a spec.
A file that cannot be converted still gets its table; the loader's one-line error (every unsupported op
at once) becomes the report's `problem`.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np

from verifier.errors import InputError, ModelError
from verifier.model import onnx_file

if TYPE_CHECKING:  # pragma: no cover
    import onnx

    from verifier.model.loader import Model

JSON_SCHEMA = "verifier.check-model/1"
_FLOAT_NAMES = {"FLOAT": "float32", "DOUBLE": "float64", "FLOAT16": "float16", "BFLOAT16": "bfloat16"}


@dataclass(frozen=True)
class OpCount:
    op: str  # as onnx_file.op_label writes it: the op type, domain-prefixed outside the default domain
    count: int
    supported: bool


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[Union[int, str], ...]  # dim_param names (or "?") where the file leaves a dim symbolic
    element_type: str  # VNN-LIB / ONNX "Set 1" name: float32, float64, int64, ...


@dataclass(frozen=True)
class Comparison:
    """Our graph (float32 and float64) against onnxruntime on `samples` random points."""

    samples: int
    distribution: str  # "spec box" | "standard normal"
    seed: int
    max_abs_diff: Optional[float]  # None when onnxruntime could not run the file
    within_tolerance: bool  # what the load-time check (check.check_against_onnxruntime) would accept


@dataclass(frozen=True)
class ModelReport:
    path: str
    opset: int
    ops: tuple[OpCount, ...]  # in order of first appearance
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    parameters: int  # elements of floating-point initializers and Constant tensors
    comparison: Optional[Comparison]  # None when the file could not be converted
    problem: Optional[str]  # the one-line reason the file cannot be verified, None when it can

    @property
    def unsupported_ops(self) -> list[str]:
        return [o.op for o in self.ops if not o.supported]

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form (schema `verifier.check-model/1`); fields are only ever added."""
        doc = {"schema": JSON_SCHEMA, **asdict(self)}
        doc["ok"] = self.problem is None
        doc["unsupported_ops"] = self.unsupported_ops
        for key in ("inputs", "outputs"):
            doc[key] = [{**t, "shape": list(t["shape"])} for t in doc[key]]
        return doc


def inspect_model(path: Union[str, Path], spec: Optional[str] = None, samples: int = 16, seed: int = 0) -> ModelReport:
    """Analyse `path`; raises the loader's ModelError only when the file is not a readable ONNX model at all."""
    from verifier.model.loader import load_model

    path = Path(path)
    model: Optional["Model"] = None
    problem: Optional[str] = None
    try:
        model = load_model(path, check=False, cache=False)
    except ModelError as e:
        problem = str(e)
    try:
        proto = onnx_file.parse(path.read_bytes(), path.parent)
    except (OSError, ModelError):
        raise ModelError(problem or f"{path}: cannot read the file") from None  # the loader said why
    comparison = None
    if model is not None:
        points, distribution = _points(model, spec, samples, seed)
        comparison, problem = _compare(model, points, distribution, seed)
    return ModelReport(str(path), onnx_file.opset(proto), _op_counts(proto), *_io(proto), _parameters(proto),
                       comparison, problem)


def io_types(path: Union[str, Path]) -> dict[str, str]:
    """Element types of the first input and output: {"input": "float32", "output": "float32"}."""
    proto = onnx_file.parse(Path(path).read_bytes(), Path(path).parent)
    inputs, outputs = _io(proto)
    return {"input": inputs[0].element_type, "output": outputs[0].element_type}


# ------------------------------------------------------------------------------------------------ the file


def _op_counts(proto: "onnx.ModelProto") -> tuple[OpCount, ...]:
    from verifier.model.translate import SUPPORTED_OPS  # at call time: the set grows

    counts = Counter(onnx_file.op_label(node) for node in proto.graph.node)
    return tuple(OpCount(op, n, op in SUPPORTED_OPS) for op, n in counts.items())


def _io(proto: "onnx.ModelProto") -> tuple[tuple[TensorInfo, ...], tuple[TensorInfo, ...]]:
    """Graph inputs (initializers listed as inputs, as in IR-3 files, are weights, not inputs) and outputs."""
    weights = {t.name for t in proto.graph.initializer}
    inputs = tuple(_tensor(v) for v in proto.graph.input if v.name not in weights)
    return inputs, tuple(_tensor(v) for v in proto.graph.output)


def _tensor(value: "onnx.ValueInfoProto") -> TensorInfo:
    tensor = value.type.tensor_type
    shape = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor.shape.dim)
    return TensorInfo(value.name, shape, _type_name(tensor.elem_type))


def _type_name(elem_type: int) -> str:
    from onnx import TensorProto

    name = TensorProto.DataType.Name(elem_type) if elem_type in TensorProto.DataType.values() else "UNDEFINED"
    return _FLOAT_NAMES.get(name, name.lower())


def _parameters(proto: "onnx.ModelProto") -> int:
    from onnx import TensorProto

    floats = {getattr(TensorProto, name) for name in _FLOAT_NAMES}
    tensors = list(proto.graph.initializer) + [a.t for node in proto.graph.node if node.op_type == "Constant"
                                               for a in node.attribute if a.name == "value"]
    return sum(math.prod(t.dims) for t in tensors if t.data_type in floats)


# ------------------------------------------------------------------------------------------------ the comparison


def _points(model: "Model", spec: Optional[str], samples: int, seed: int) -> tuple[np.ndarray, str]:
    """Uniform in the spec's first input box, or standard normal: seeded, (samples, n_inputs)."""
    rng = np.random.default_rng(seed)
    n = model.graph.n_inputs
    if spec is None:
        return rng.standard_normal((samples, n)), "standard normal"
    from verifier.spec.vnnlib import parse_vnnlib

    parsed = parse_vnnlib(spec)
    if parsed.n_inputs != n:
        raise InputError(f"{spec} declares {parsed.n_inputs} inputs but {model.path} has {n}")
    box = parsed.properties[0]
    return rng.uniform(box.lower, box.upper, size=(samples, n)), "spec box"


def _compare(model: "Model", points: np.ndarray, distribution: str, seed: int) -> tuple[Comparison, Optional[str]]:
    """The load-time check on these points; on a disagreement, still the size of the difference."""
    import torch

    from verifier.model.check import check_against_onnxruntime, run_graph, run_onnxruntime

    try:
        worst = check_against_onnxruntime(model, points)
        return Comparison(len(points), distribution, seed, worst, True), None
    except ModelError as e:
        problem = str(e)
    worst = None  # stays None when onnxruntime cannot run the file or the shapes disagree: the problem says which
    try:
        expected = run_onnxruntime(model, points)
    except ModelError:
        return Comparison(len(points), distribution, seed, worst, False), problem
    ours = [run_graph(model, points, dtype) for dtype in (torch.float32, torch.float64)]
    if all(o.shape == expected.shape for o in ours):
        worst = max(float(np.max(np.abs(o - expected))) for o in ours)
    return Comparison(len(points), distribution, seed, worst, False), problem
