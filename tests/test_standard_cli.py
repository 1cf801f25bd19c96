"""The VNN-LIB standard's command line: --name, --version, supports, and `verify QUERY --network NAME=NET.onnx`."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.examples import ACAS, ACAS_PROP1, ROBUST, ROOT, TOY
from tests.examples import FALSIFIABLE as V1_SAT
from tests.examples import FALSIFIABLE_V2 as V2_SAT
from tests.examples import ROBUST_V2 as V2_UNSAT
from verifier import __version__
from verifier.cli import main
from verifier.standard import MAX_OPSET, MIN_OPSET, SUPPORTS

FLOAT = r"-?\d+\.\d+(e-?\d+)?"


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("VERIFIER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "graph-cache"))


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def float32_query(tmp_path: Path, element_type: str = "float32") -> str:
    path = tmp_path / f"{element_type}.vnnlib"
    path.write_text(Path(V2_UNSAT).read_text().replace(" real ", f" {element_type} "))
    return str(path)


# ------------------------------------------------------------------------------------------------ global options


def test_name_and_version_are_bare_lines():
    assert (invoke("--name").exit_code, invoke("--name").stdout) == (0, "verifier\n")
    assert (invoke("--version").exit_code, invoke("--version").stdout) == (0, f"{__version__}\n")


# ------------------------------------------------------------------------------------------------ supports


def test_supports_onnx_operators_bare_names_one_per_line():
    from verifier.model.translate import SUPPORTED_OPS

    res = invoke("supports", "--onnx-operators")
    assert res.exit_code == 0 and res.stderr == ""
    lines = res.stdout.splitlines()
    assert lines == sorted(SUPPORTED_OPS)
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_.]*", line) for line in lines)
    assert {"Gemm", "Relu", "MatMul"} <= set(lines)


@pytest.mark.parametrize("capability", sorted(set(SUPPORTS) - {"onnx-operators"}))
def test_every_capability_answers_in_the_standard_form(capability: str):
    res = invoke("supports", f"--{capability}")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    if capability.endswith("-versions"):
        assert len(lines) == 2 and float(lines[0]) <= float(lines[1])
    elif capability in ("optimised-disjunctive-reasoning", "serialise-assignments", "unsat-proofs"):
        assert lines in (["true"], ["false"])
    elif capability.endswith("-theories"):
        allowed = {"NH", "H", "SIO", "MIO", "SNET", "MENET", "MINET", "MNET", "SNC", "MNC", "BND", "OUTC", "LIN",
                   "POLY"}
        assert lines and set(lines) <= allowed
    elif capability == "onnx-element-types":
        assert lines == ["bool", "float16", "float32", "float64", "int16", "int32", "int64", "int8", "uint16",
                         "uint32", "uint8", "real"]
    else:
        assert capability == "onnx-operators-unsat-proofs" and lines == []


def test_supports_opset_versions_and_the_claim_holds_at_both_ends(tmp_path: Path):
    """The advertised opset range is true: a small MLP saved at either end loads and matches onnxruntime."""
    from onnx import helper

    from tests.model.onnx_builders import init, load_and_compare, rand, save

    assert invoke("supports", "--onnx-opset-versions").stdout == f"{MIN_OPSET}\n{MAX_OPSET}\n"
    for opset in (MIN_OPSET, MAX_OPSET):
        nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1),
                 helper.make_node("Gemm", ["f", "W", "b"], ["g"], transB=1),
                 helper.make_node("Relu", ["g"], ["r"]),
                 helper.make_node("MatMul", ["r", "W2"], ["y"])]
        path = save(tmp_path / f"mlp{opset}.onnx", nodes, [("x", [1, 2, 3])], [("y", [1, 3])],
                    [init("W", rand(4, 6)), init("b", rand(4)), init("W2", rand(4, 3))], opset=opset)
        assert load_and_compare(path).graph.n_outputs == 3


@pytest.mark.parametrize("args", [(), ("--onnx-operators", "--vnnlib-versions"), ("--no-such-capability",)])
def test_supports_needs_exactly_one_known_capability(args):
    res = invoke("supports", *args)
    assert res.exit_code == 3 and res.stdout == ""


# ------------------------------------------------------------------------------------------------ verify


def test_v2_unsat_first_line_exactly():
    res = invoke("verify", V2_UNSAT, "--network", f"toy={TOY}", "--timeout", "5")
    assert res.exit_code == 0, res.output
    assert res.stdout == "unsat\n"


def assert_replayable_assignment(lines: list[str], headers: list[str], box_spec: str) -> None:
    """Header lines in declaration order, each followed by its elements; x in the box, y what onnxruntime gives."""
    import onnxruntime as ort

    from verifier.spec.vnnlib import parse_vnnlib

    assert [line for line in lines if not re.fullmatch(FLOAT, line)] == headers
    assert all(re.fullmatch(FLOAT, line) for line in lines if line not in headers)
    values = [float(line) for line in lines if line not in headers]
    x, y = np.array(values[:3], dtype=np.float32), np.array(values[3:])
    prop = parse_vnnlib(box_spec).properties[0]
    assert np.all(x >= prop.lower) and np.all(x <= prop.upper)
    replayed = ort.InferenceSession(TOY, providers=["CPUExecutionProvider"]).run(None, {"input": x[None]})[0]
    np.testing.assert_array_equal(replayed.reshape(-1), y.astype(np.float32))
    assert prop.violated_by(y)


def test_v2_sat_prints_the_assignment_in_the_standard_format():
    res = invoke("verify", V2_SAT, "--network", f"toy={TOY}", "--timeout", "5.5")  # a float timeout
    assert res.exit_code == 1, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == "sat" and lines[1] == "X real [1,3]" and lines[5] == "Y real [1,3]" and len(lines) == 9
    assert_replayable_assignment(lines[1:], ["X real [1,3]", "Y real [1,3]"], V2_SAT)


def test_v1_query_sat_lists_each_declared_scalar():
    res = invoke("verify", V1_SAT, "--network", f"anyname={TOY}", "--timeout", "5")  # an integer timeout
    assert res.exit_code == 1, res.output
    lines = res.stdout.splitlines()
    headers = [f"X_{i} Real []" for i in range(3)] + [f"Y_{j} Real []" for j in range(3)]
    assert lines[0] == "sat" and lines[1::2] == headers
    assert_replayable_assignment(lines[1:], headers, V1_SAT)


def test_unknown_and_timed_out_verdict_lines():
    unknown = invoke("verify", ACAS_PROP1, "--network", f"acas={ACAS}",
                     "--method", "ibp", "--bab", "none")
    assert (unknown.exit_code, unknown.stdout) == (2, "unknown\n")
    timed_out = invoke("verify", V2_UNSAT, "--network", f"toy={TOY}", "--timeout", "0.000001")
    assert (timed_out.exit_code, timed_out.stdout) == (2, "timed-out\n")


def test_float32_declaration_is_accepted_unless_strict(tmp_path: Path):
    """float32 is read with real semantics by default (as the field runs the standard); --strict-element-types
    refuses it (exit 3); --float-as-real is a no-op kept for old command lines; the declared type must match."""
    query = float32_query(tmp_path)
    for extra in ((), ("--float-as-real",)):
        accepted = invoke("verify", query, "--network", f"toy={TOY}", *extra)
        assert (accepted.exit_code, accepted.stdout) == (0, "unsat\n")
    refused = invoke("verify", query, "--network", f"toy={TOY}", "--strict-element-types")
    assert refused.exit_code == 3 and refused.stdout == ""
    assert f"{query}:7: X is declared float32" in refused.stderr and "--strict-element-types" in refused.stderr
    wrong_type = invoke("verify", float32_query(tmp_path, "float64"), "--network", f"toy={TOY}")
    assert wrong_type.exit_code == 3 and "declared float64 but the input of" in wrong_type.stderr
    int_type = invoke("verify", float32_query(tmp_path, "int8"), "--network", f"toy={TOY}")
    assert int_type.exit_code == 3 and "X is declared int8 but the input of" in int_type.stderr
    no_type = invoke("verify", float32_query(tmp_path, "complex64"), "--network", f"toy={TOY}")
    assert no_type.exit_code == 3 and "X has element type complex64" in no_type.stderr


def test_declared_shape_must_match_the_model(tmp_path: Path):
    text = Path(V2_UNSAT).read_text()
    no_batch = tmp_path / "no_batch.vnnlib"  # the model's batch dimension may be left out
    no_batch.write_text(re.sub(r"([XY])\[0,", r"\1[", text.replace("[1,3]", "[3]")))
    assert invoke("verify", str(no_batch), "--network", f"toy={TOY}").stdout == "unsat\n"
    wrong = tmp_path / "wrong.vnnlib"
    wrong.write_text(re.sub(r"([XY])\[0,", r"\1[0,0,", text.replace("[1,3]", "[1,1,3]")))
    res = invoke("verify", str(wrong), "--network", f"toy={TOY}")
    assert res.exit_code == 3 and "X has shape [1,1,3] but the input of" in res.stderr


BAD_NETWORKS = [
    (V2_SAT, ["toy"], "expected NAME=NET.onnx"),
    (V2_SAT, ["=" + TOY], "expected NAME=NET.onnx"),
    (V2_SAT, ["toy="], "expected NAME=NET.onnx"),
    (V2_SAT, ["9toy=" + TOY], "is not a network name"),
    (V2_SAT, ["toy=" + TOY, "toy=" + TOY], "--network toy= is given twice"),
    (V2_SAT, ["net=" + TOY], "declares no network 'net' (it declares 'toy')"),
    (V2_SAT, ["toy=" + TOY, "g=" + TOY], "declares no network 'g'"),
    (V1_SAT, ["a=" + TOY, "b=" + TOY], "give exactly one --network"),
    (V2_SAT, ["toy=/no/such/model.onnx"], "/no/such/model.onnx: no such file"),
    ("/no/such/query.vnnlib", ["toy=" + TOY], "cannot read spec"),
]


@pytest.mark.parametrize("query,networks,phrase", BAD_NETWORKS, ids=[b[2] for b in BAD_NETWORKS])
def test_bad_network_values_exit_3_with_one_line(query: str, networks: list[str], phrase: str):
    res = invoke("verify", query, *[arg for n in networks for arg in ("--network", n)])
    assert res.exit_code == 3 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: ") and phrase in res.stderr


def test_form_mixups_are_bad_input():
    assert invoke("verify", V2_SAT).exit_code == 3  # neither SPEC nor --network
    both = invoke("verify", TOY, V2_SAT, "--network", f"toy={TOY}")
    assert both.exit_code == 3 and "not both" in both.stderr
    json_too = invoke("verify", V2_SAT, "--network", f"toy={TOY}", "--json")
    assert json_too.exit_code == 3 and json_too.stdout == ""


def test_stray_prints_go_to_stderr(monkeypatch):
    """Whatever runs inside verify and prints, stdout carries only the answer."""
    import verifier.api
    from verifier.result import UNSAT, Result

    def noisy(*_args, **_kwargs):
        print("a library talking on stdout")
        return Result(UNSAT)

    monkeypatch.setattr(verifier.api, "verify", noisy)
    res = invoke("verify", V2_UNSAT, "--network", f"toy={TOY}")
    assert (res.exit_code, res.stdout) == (0, "unsat\n")
    assert "a library talking on stdout" in res.stderr


def test_ours_form_is_unchanged():
    res = invoke("verify", TOY, ROBUST, "--json")
    assert res.exit_code == 0 and '"verdict": "unsat"' in res.stdout


# ------------------------------------------------------------------------------------------------ real processes


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)


def test_subprocess_stdout_holds_only_the_answer():
    proc = run_cli("verify", V2_SAT, "--network", f"toy={TOY}", "--timeout", "20")
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "sat" and len(lines) == 9
    assert all(re.fullmatch(FLOAT, line) for line in lines if line not in ("sat", "X real [1,3]", "Y real [1,3]"))


def test_subprocess_error_only_on_stderr():
    proc = run_cli("verify", V2_SAT, "--network", "toy")
    assert (proc.returncode, proc.stdout) == (3, "")
    assert proc.stderr == "error: --network 'toy': expected NAME=NET.onnx\n"
