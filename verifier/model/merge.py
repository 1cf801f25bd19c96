"""Several networks, inputs, outputs and hidden tensors of a VNN-LIB 2.0 query as one ONNX model.

The verifier's engine takes one input and one output tensor. A query with several of them (or with several
networks, or with hidden-node constraints) is verified on a merged model built here, exactly:

    __X (every declared input, flattened and concatenated in declaration order, float32)
      -> per declared input: Slice of its elements, Reshape to the network's input shape (Cast if not float32)
      -> each network's own nodes, names prefixed `n<k>__` (one copy per declared network, even of one file)
      -> per declared output or hidden tensor, in declaration order: Cast to float32, Reshape to [-1]
      -> Concat -> __Y

which is the numbering the 2.0 parser gives X and Y. Declared tensors are matched to the file's by their
quoted ONNX name when given, else by position (the i-th declared input is the file's i-th input); a hidden
tensor names an ONNX node output. Counterexamples replay on onnxruntime on this merged model, which is made
only of the networks' own nodes and of exact Slice / Reshape / Concat / Cast.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from verifier.errors import InputError, ModelError

if TYPE_CHECKING:  # pragma: no cover
    import onnx

    from verifier.spec.vnnlib2 import NetworkDecl, TensorDecl

_FLOAT = 1  # onnx.TensorProto.FLOAT


def merged_model(networks: Sequence["NetworkDecl"], paths: dict[str, str], source: str,
                 inputs_as_outputs: bool = False) -> "onnx.ModelProto":
    """The merged model of the query's networks (`paths`: network name -> ONNX file); with inputs_as_outputs
    __Y ends with a copy of __X (for constraints over several inputs, or over inputs and outputs)."""
    import onnx
    from onnx import helper, numpy_helper, version_converter

    from verifier.model import onnx_file

    protos = []
    for net in networks:
        path = paths[net.name]
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise ModelError(f"{path}: cannot read the file ({e.strerror or e})") from None
        try:
            protos.append(onnx_file.parse(data, Path(path).parent))
        except ModelError as e:
            raise type(e)(f"{path}: {e}") from None
    opset = max(max(onnx_file.opset(p), onnx_file.TARGET_OPSET) for p in protos)
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    outs: list[str] = []
    offset = 0
    for k, (net, proto) in enumerate(zip(networks, protos)):
        if onnx_file.opset(proto) != opset:
            try:
                proto = version_converter.convert_version(proto, opset)
            except Exception as e:
                raise ModelError(f"{paths[net.name]}: cannot convert opset {onnx_file.opset(proto)} to {opset} "
                                 f"({onnx_file.describe(e)})") from None
        prefix = f"n{k}__"
        graph = proto.graph
        init_names = {t.name for t in graph.initializer}
        file_inputs = [v for v in graph.input if v.name not in init_names]
        for t in graph.initializer:
            copy = onnx.TensorProto()
            copy.CopyFrom(t)
            copy.name = prefix + t.name
            inits.append(copy)
        for decl, value in _match(net.inputs, file_inputs, net.name, paths[net.name], source, "input"):
            size = math.prod(decl.shape)
            name = prefix + value.name
            starts, ends = f"{name}__start", f"{name}__end"
            inits += [numpy_helper.from_array(_i64([offset]), starts), numpy_helper.from_array(_i64([offset + size]),
                                                                                                ends)]
            shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                          for d in value.type.tensor_type.shape.dim)
            if math.prod(shape) != size:
                raise InputError(f"{source}:{decl.line}: {decl.name} has {size} elements but the input "
                                 f"{value.name!r} of {paths[net.name]} has shape {list(shape)}")
            inits.append(numpy_helper.from_array(_i64(shape), f"{name}__shape"))
            nodes.append(helper.make_node("Slice", ["__X", starts, ends], [f"{name}__flat"]))
            elem = value.type.tensor_type.elem_type
            reshaped = name if elem == _FLOAT else f"{name}__f32"
            nodes.append(helper.make_node("Reshape", [f"{name}__flat", f"{name}__shape"], [reshaped]))
            if elem != _FLOAT:
                nodes.append(helper.make_node("Cast", [reshaped], [name], to=elem))
            offset += size
        produced = {o for n in graph.node for o in n.output}
        for node in graph.node:
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            copy.name = prefix + (node.name or f"{node.op_type}_{len(nodes)}")
            copy.input[:] = [prefix + i if i else "" for i in node.input]
            copy.output[:] = [prefix + o if o else "" for o in node.output]
            nodes.append(copy)
        file_outputs = list(graph.output)
        outputs = [d for d in net.outputs if d.name not in net.hidden]
        matched = dict((d.name, v.name) for d, v in _match(outputs, file_outputs, net.name, paths[net.name], source,
                                                           "output"))
        for decl in net.outputs:
            tensor = matched.get(decl.name, decl.onnx_name)
            if tensor not in produced and tensor not in {v.name for v in file_inputs}:
                raise InputError(f"{source}:{decl.line}: {decl.name}: {paths[net.name]} has no tensor {tensor!r}")
            flat = f"{prefix}{tensor}__out{len(outs)}"
            cast = f"{flat}__f32"
            nodes.append(helper.make_node("Cast", [prefix + tensor], [cast], to=_FLOAT))
            inits.append(numpy_helper.from_array(_i64([-1]), f"{flat}__minus1"))
            nodes.append(helper.make_node("Reshape", [cast, f"{flat}__minus1"], [flat]))
            outs.append(flat)
    n_out = sum(math.prod(d.shape) for net in networks for d in net.outputs)
    if inputs_as_outputs:
        nodes.append(helper.make_node("Identity", ["__X"], ["__X__copy"]))
        outs.append("__X__copy")
        n_out += offset
    nodes.append(helper.make_node("Concat", outs, ["__Y"], axis=0))
    graph = helper.make_graph(nodes, "merged", [helper.make_tensor_value_info("__X", _FLOAT, [offset])],
                              [helper.make_tensor_value_info("__Y", _FLOAT, [n_out])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(max(p.ir_version for p in protos), 8)
    return model


def _match(decls: Sequence["TensorDecl"], values: Sequence["onnx.ValueInfoProto"], network: str, path: str,
           source: str, what: str) -> list[tuple["TensorDecl", "onnx.ValueInfoProto"]]:
    """Pair declarations with the file's inputs/outputs: by quoted ONNX name, else by position."""
    by_name = {v.name: v for v in values}
    if len(decls) != len(values):
        raise InputError(f"{source}: network {network!r} declares {len(decls)} {what}s but {path} has "
                         f"{len(values)} ({', '.join(v.name for v in values)})")
    pairs = []
    for decl, value in zip(decls, values):
        if decl.onnx_name is not None:
            if decl.onnx_name not in by_name:
                raise InputError(f"{source}:{decl.line}: {decl.name}: {path} has no {what} {decl.onnx_name!r}")
            value = by_name[decl.onnx_name]
        pairs.append((decl, value))
    return pairs


def _i64(values: Sequence[int]):  # type: ignore[no-untyped-def]
    import numpy as np

    return np.asarray(values, dtype=np.int64)
