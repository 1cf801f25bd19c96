"""What onnx2torch needs that a valid ONNX file may not give it, done on the ModelProto before conversion.

- Constant nodes become initializers: onnx2torch reads Conv weights and BatchNormalization statistics
  from initializers only (a file written with onnxscript keeps them in Constant nodes).
- Converters onnx2torch lacks for opset 18, registered once through its own `add_converter`: Split-18
  (sizes as an input, or `num_outputs` chunks of ceil(n / num_outputs), the last one smaller) and
  ReduceMean-18 (axes as an optional input). Both are what the ONNX operator documents say.
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # pragma: no cover
    import onnx

_CONSTANT_ATTRS = ("value", "value_float", "value_floats", "value_int", "value_ints")


def constants_to_initializers(model: "onnx.ModelProto") -> "onnx.ModelProto":
    """A copy of `model` whose (dense, numeric) Constant nodes are initializers of the same names."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    if not any(n.op_type == "Constant" for n in model.graph.node):
        return model
    out = onnx.ModelProto()
    out.CopyFrom(model)
    keep, added = [], []
    for node in out.graph.node:
        attrs = {a.name: a for a in node.attribute}
        kind = next((k for k in _CONSTANT_ATTRS if k in attrs), None)
        if node.op_type != "Constant" or node.domain not in ("", "ai.onnx") or kind is None or len(node.output) != 1:
            keep.append(node)
            continue
        value = onnx.helper.get_attribute_value(attrs[kind])
        if kind == "value":
            array = numpy_helper.to_array(value)
        else:
            array = np.array(value, dtype=np.float32 if "float" in kind else np.int64)
        added.append(numpy_helper.from_array(array, node.output[0]))
    if not added:
        return model
    del out.graph.node[:]
    out.graph.node.extend(keep)
    out.graph.initializer.extend(added)
    return out


def register_converters() -> None:
    """Add the missing opset-18 converters to onnx2torch's registry (once per process)."""
    from onnx2torch.node_converters.registry import OperationDescription, _CONVERTER_REGISTRY, add_converter
    from onnx2torch.utils.common import OperationConverterResult, onnx_mapping_from_node

    def module_converter(make):  # type: ignore[no-untyped-def]
        def convert(node, graph):  # type: ignore[no-untyped-def]
            return OperationConverterResult(torch_module=make(node), onnx_mapping=onnx_mapping_from_node(node))
        return convert

    for op, make in (("Split", _split18), ("ReduceMean", _reduce_mean18)):
        if OperationDescription("", op, 18) not in _CONVERTER_REGISTRY:
            add_converter(operation_type=op, version=18)(module_converter(make))


def _split18(node):  # type: ignore[no-untyped-def]
    return _Split18(int(node.attributes.get("axis", 0)), len(node.output_values))


def _reduce_mean18(node):  # type: ignore[no-untyped-def]
    return _ReduceMean18(bool(node.attributes.get("keepdims", 1)), bool(node.attributes.get("noop_with_empty_axes", 0)))


@functools.cache
def _modules():  # type: ignore[no-untyped-def]
    import torch
    from onnx2torch.utils.common import OnnxToTorchModule
    from torch import nn

    class Split18(nn.Module, OnnxToTorchModule):
        def __init__(self, axis: int, outputs: int) -> None:
            super().__init__()
            self.axis, self.outputs = axis, outputs

        def forward(self, x: torch.Tensor, split: Optional[torch.Tensor] = None):  # type: ignore[no-untyped-def]
            if split is None:
                n = x.shape[self.axis]
                return torch.split(x, -(-n // self.outputs), dim=self.axis)
            return torch.split(x, [int(s) for s in split.tolist()], dim=self.axis)

    class ReduceMean18(nn.Module, OnnxToTorchModule):
        def __init__(self, keepdims: bool, noop_with_empty_axes: bool) -> None:
            super().__init__()
            self.keepdims, self.noop = keepdims, noop_with_empty_axes

        def forward(self, x: torch.Tensor, axes: Optional[torch.Tensor] = None) -> torch.Tensor:
            if axes is None or axes.numel() == 0:
                if self.noop:
                    return x
                dims = list(range(x.dim()))
            else:
                dims = [int(a) for a in axes.tolist()]
            return torch.mean(x, dim=dims, keepdim=self.keepdims)

    return Split18, ReduceMean18


def _Split18(axis: int, outputs: int):  # type: ignore[no-untyped-def]
    return _modules()[0](axis, outputs)


def _ReduceMean18(keepdims: bool, noop: bool):  # type: ignore[no-untyped-def]
    return _modules()[1](keepdims, noop)


_AUTO_PAD_OPS = ("Conv", "MaxPool", "AveragePool")


def explicit_pads(model: "onnx.ModelProto") -> "onnx.ModelProto":
    """Conv/pooling nodes with auto_pad SAME_UPPER / SAME_LOWER get the pads it stands for (onnx2torch
    converts only explicit pads): per spatial axis, total = max((ceil(n / s) - 1) s + (k - 1) d + 1 - n, 0),
    the odd unit at the end (UPPER) or at the beginning (LOWER), as the ONNX operator document says."""
    import onnx
    from onnx import helper

    nodes = [n for n in model.graph.node if n.op_type in _AUTO_PAD_OPS and any(
        a.name == "auto_pad" and a.s in (b"SAME_UPPER", b"SAME_LOWER") for a in n.attribute)]
    if not nodes:
        return model
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # onnx raises its own C++ errors: leave the node for onnx2torch to refuse
        return model
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(inferred.graph.value_info) + list(inferred.graph.input)}
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    for node in nodes:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        in_shape = shapes.get(node.input[0], [])
        spatial = in_shape[2:]
        kernel = attrs.get("kernel_shape") or (weights.get(node.input[1], [])[2:] if len(node.input) > 1 else [])
        if not spatial or len(kernel) != len(spatial) or not all(spatial):
            continue
        strides = attrs.get("strides") or [1] * len(spatial)
        dilations = attrs.get("dilations") or [1] * len(spatial)
        begins, ends = [], []
        for n, k, s, d in zip(spatial, kernel, strides, dilations):
            total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
            small, large = total // 2, total - total // 2
            upper = attrs["auto_pad"] in (b"SAME_UPPER", "SAME_UPPER")
            begins.append(small if upper else large)
            ends.append(large if upper else small)
        kept = [a for a in node.attribute if a.name not in ("auto_pad", "pads")]
        del node.attribute[:]
        node.attribute.extend(kept + [helper.make_attribute("pads", begins + ends)])
    return model
