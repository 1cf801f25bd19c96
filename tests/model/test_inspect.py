"""`verifier check-model`: the op table, the interface, the parameter count and the comparison with onnxruntime."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import helper

from tests.examples import ACAS_PROP1, ROBUST, TOY
from tests.model.onnx_builders import init, rand, save
from verifier.cli import main
from verifier.errors import ModelError
from verifier.model import check
from verifier.model.inspect import inspect_model


def check_model(*args: str):
    return CliRunner().invoke(main, ["check-model", *args])


def unsupported_model(tmp_path: Path) -> Path:
    """Three op types no verifier rule covers (Sin, Cos, Erf) around supported ones."""
    from verifier.model.translate import SUPPORTED_OPS

    assert not {"Sin", "Cos", "Erf"} & SUPPORTED_OPS
    nodes = [helper.make_node("Gemm", ["x", "W"], ["g"], name="fc", transB=1),
             helper.make_node("Sin", ["g"], ["s"], name="sin"),
             helper.make_node("Cos", ["s"], ["c"], name="cos"),
             helper.make_node("Erf", ["c"], ["e"], name="erf"),
             helper.make_node("Relu", ["e"], ["y"], name="relu")]
    return save(tmp_path / "trig.onnx", nodes, [("x", [1, 3])], [("y", [1, 2])], [init("W", rand(2, 3))])


def test_toy_model_table_and_tiny_difference():
    res = check_model(TOY, "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["schema"] == "verifier.check-model/1" and doc["ok"] is True and doc["problem"] is None
    assert doc["ops"] == [{"op": "Sub", "count": 1, "supported": True}, {"op": "Div", "count": 1, "supported": True},
                          {"op": "Gemm", "count": 3, "supported": True}, {"op": "Relu", "count": 2, "supported": True}]
    assert doc["unsupported_ops"] == []
    assert doc["inputs"] == [{"name": "input", "shape": [1, 3], "element_type": "float32"}]
    assert doc["outputs"] == [{"name": "output", "shape": [1, 3], "element_type": "float32"}]
    proto = onnx.load(TOY)
    floats = [onnx.numpy_helper.to_array(t) for t in proto.graph.initializer]
    floats += [onnx.numpy_helper.to_array(a.t) for n in proto.graph.node if n.op_type == "Constant"
               for a in n.attribute if a.name == "value"]
    assert doc["parameters"] == sum(a.size for a in floats if a.dtype.kind == "f")
    comparison = doc["comparison"]
    assert comparison["samples"] == 16 and comparison["distribution"] == "standard normal"
    assert comparison["within_tolerance"] is True and 0 <= comparison["max_abs_diff"] < 1e-5


def test_spec_box_sampling_is_seeded(monkeypatch: pytest.MonkeyPatch):
    """With --spec the points are uniform in its first box; the same seed gives the same points."""
    seen: list[np.ndarray] = []
    original = check.check_against_onnxruntime

    def spy(model, points, *args, **kwargs):
        seen.append(np.array(points))
        return original(model, points, *args, **kwargs)

    monkeypatch.setattr(check, "check_against_onnxruntime", spy)
    first = inspect_model(TOY, ROBUST, samples=5, seed=3)
    inspect_model(TOY, ROBUST, samples=5, seed=3)
    inspect_model(TOY, ROBUST, samples=5, seed=4)
    assert first.comparison is not None and first.comparison.distribution == "spec box"
    assert first.comparison.max_abs_diff < 1e-5
    np.testing.assert_array_equal(seen[0], seen[1])
    assert not np.array_equal(seen[0], seen[2])
    assert seen[0].shape == (5, 3)
    assert np.all(seen[0] >= [0.28, -0.42, 0.18]) and np.all(seen[0] <= [0.32, -0.38, 0.22])


def test_every_unsupported_op_listed_at_once_exit_3(tmp_path: Path):
    path = unsupported_model(tmp_path)
    res = check_model(str(path), "--json")
    assert res.exit_code == 3
    doc = json.loads(res.stdout)  # the table is still there
    assert doc["ok"] is False and doc["comparison"] is None
    assert doc["unsupported_ops"] == ["Sin", "Cos", "Erf"]
    assert [o["op"] for o in doc["ops"] if o["supported"]] == ["Gemm", "Relu"]
    assert doc["parameters"] == 6
    error = res.stderr.strip()
    assert "\n" not in error and error.startswith(f"error: {path}: unsupported ONNX ops:")
    assert all(f"{op} (nodes: {name})" in error for op, name in (("Sin", "sin"), ("Cos", "cos"), ("Erf", "erf")))


def test_rich_table_for_people(tmp_path: Path):
    ok = check_model(TOY)
    assert ok.exit_code == 0 and "Gemm" in ok.stdout and "can be verified" in ok.stdout
    bad = check_model(str(unsupported_model(tmp_path)))
    assert bad.exit_code == 3 and "Erf" in bad.stdout and "cannot be verified" in bad.stdout


def test_disagreement_is_reported_with_its_size(monkeypatch: pytest.MonkeyPatch):
    """A translation that drifts from onnxruntime: exit 3 and the size of the drift, not only a failure."""
    original = check.run_graph
    monkeypatch.setattr(check, "run_graph", lambda model, points, dtype: original(model, points, dtype) + 0.5)
    res = check_model(TOY, "--json")
    assert res.exit_code == 3
    comparison = json.loads(res.stdout)["comparison"]
    assert comparison["within_tolerance"] is False and comparison["max_abs_diff"] == pytest.approx(0.5, abs=1e-5)
    assert "disagrees with onnxruntime" in res.stderr


def test_bad_inputs_exit_3_with_one_line(tmp_path: Path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf at all \x00\x01")
    for args, phrase in (([str(junk)], "not an ONNX file"), ([str(tmp_path / "none.onnx")], "no such file"),
                         ([TOY, "--spec", ACAS_PROP1], "declares 5 inputs")):
        res = check_model(*args)
        assert res.exit_code == 3 and res.stderr.count("\n") == 1 and phrase in res.stderr, res.output


def test_inspect_raises_the_loader_error_for_unreadable_files(tmp_path: Path):
    with pytest.raises(ModelError, match="no such file"):
        inspect_model(tmp_path / "missing.onnx")


@pytest.mark.parametrize("opset", [8, 13])
def test_symbolic_batch_and_old_opsets(tmp_path: Path, opset: int):
    nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["y"], transB=1)]
    path = save(tmp_path / "m.onnx", nodes, [("x", ["N", 4])], [("y", ["N", 2])],
                [init("W", rand(2, 4)), init("b", rand(2))], opset=opset)
    report = inspect_model(path, samples=4)
    assert report.opset == opset and report.problem is None
    assert report.inputs[0].shape == ("N", 4) and report.parameters == math.prod((2, 4)) + 2
    assert report.comparison is not None and report.comparison.max_abs_diff < 1e-5
