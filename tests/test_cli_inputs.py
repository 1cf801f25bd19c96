"""Bad input at the command line is exit 3 with one line naming the file (issue 14): the spec's numbers, output paths."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.examples import ROBUST, TOY
from verifier.cli import main


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("VERIFIER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "graph-cache"))


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def one_error_line(res) -> str:
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert "Traceback" not in res.output
    return lines[0]


@pytest.mark.parametrize("extra", [(), ("--no-check",)])
def test_input_bound_beyond_float32_blames_the_spec(tmp_path: Path, extra: tuple[str, ...]) -> None:
    spec = tmp_path / "big.vnnlib"
    spec.write_text(Path(ROBUST).read_text().replace("(<= X_0 0.32)", "(<= X_0 1e39)"))
    res = invoke("verify", TOY, str(spec), *extra)
    assert res.exit_code == 3, res.output
    line = one_error_line(res)
    assert line.startswith(f"error: {spec}:") and "X_0" in line and "float32" in line


def test_results_file_in_a_missing_directory(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "r.txt"
    res = invoke("verify", TOY, ROBUST, "--results-file", str(target), "--quiet")
    assert res.exit_code == 3, res.output
    assert str(target.parent) in one_error_line(res)
    assert not target.parent.exists()


@pytest.mark.parametrize("option", ["--results", "--junit", "--results-dir"])
def test_run_output_path_that_cannot_be_made(tmp_path: Path, option: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    target = blocker / "out" / "x.jsonl"  # its folder would have to be made inside a file
    res = invoke("run", "--model", TOY, ROBUST, option, str(target), "--quiet")
    assert res.exit_code == 3, res.output
    assert str(target) in one_error_line(res)




def test_an_error_naming_a_line_break_stays_one_line(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    from tests.model.onnx_builders import init, rand

    nodes = [helper.make_node("Gemm", ["x", "W"], ["h"], name="fc", transB=1),
             helper.make_node("Re\x0clu\nX", ["h"], ["y"], name="odd")]  # a corrupt op type
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
                              initializer=[init("W", rand(3, 3))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    res = invoke("check-model", str(path), "--samples", "2")
    assert res.exit_code == 3
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Re\\x0clu\\nX" in lines[0] and str(path) in lines[0]
