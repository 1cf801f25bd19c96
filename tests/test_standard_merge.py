"""Queries with several inputs/outputs, hidden-node constraints and several networks (`verify QUERY --network ...`),
verified on one merged model, against hand-worked answers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from onnx import helper

from tests.model.onnx_builders import init, save
from verifier.cli import main


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("VERIFIER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "graph-cache"))


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def _query(tmp_path: Path, text: str) -> str:
    path = tmp_path / "q.vnnlib"
    path.write_text("(vnnlib-version <2.0>)\n" + text)
    return str(path)


def _two_inputs(tmp_path: Path) -> str:
    """y = x1 - x2, inputs [1] and [1]."""
    nodes = [helper.make_node("Sub", ["x1", "x2"], ["y"], name="sub")]
    return str(save(tmp_path / "sub.onnx", nodes, [("x1", [1]), ("x2", [1])], [("y", [1])]))


def _hidden(tmp_path: Path) -> str:
    """h = 2 x, y = relu(h) - 1."""
    nodes = [helper.make_node("Mul", ["x", "two"], ["h"], name="mul"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Sub", ["r", "one"], ["y"], name="sub")]
    inits = [init("two", np.array([2.0], np.float32)), init("one", np.array([1.0], np.float32))]
    return str(save(tmp_path / "hidden.onnx", nodes, [("x", [1])], [("y", [1])], inits))


TWO_INPUTS = """(declare-network N (declare-input A float32 [1]) (declare-input B float32 [1])
                   (declare-output Y float32 [1]))
(assert (and (>= A[0] 0) (<= A[0] 1) (>= B[0] 10) (<= B[0] 11)))
"""


def test_several_inputs_unsat_and_sat_with_the_assignment_of_each(tmp_path: Path):
    model = _two_inputs(tmp_path)
    unsat = invoke("verify", _query(tmp_path, TWO_INPUTS + "(assert (>= Y[0] -8.0))\n"), "--network", f"N={model}")
    assert (unsat.exit_code, unsat.stdout) == (0, "unsat\n")  # y <= 1 - 10 = -9
    sat = invoke("verify", _query(tmp_path, TWO_INPUTS + "(assert (<= Y[0] -10.5))\n"), "--network", f"N={model}")
    lines = sat.stdout.splitlines()
    assert sat.exit_code == 1 and lines[0] == "sat"
    assert [lines[1], lines[3], lines[5]] == ["A float32 [1]", "B float32 [1]", "Y float32 [1]"]
    a, b, y = float(lines[2]), float(lines[4]), float(lines[6])
    assert 0 <= a <= 1 and 10 <= b <= 11 and y == np.float32(a) - np.float32(b) and y <= -10.5


@pytest.mark.parametrize("bound,verdict", [("(<= H[0] -1.0)", "unsat"), ("(>= H[0] 3.5)", "sat")])
def test_hidden_node_constraints(tmp_path: Path, bound: str, verdict: str):
    """x in [0, 2]: h = 2x in [0, 4]; h <= -1 is impossible, h >= 3.5 happens (with y = h - 1 >= 2.5)."""
    text = f"""(declare-network N (declare-input X float32 [1]) (declare-hidden H float32 [1] "h")
                   (declare-output Y float32 [1]))
(assert (and (>= X[0] 0) (<= X[0] 2)))
(assert {bound})
(assert (>= Y[0] 2.0))
"""
    res = invoke("verify", _query(tmp_path, text), "--network", f"N={_hidden(tmp_path)}")
    assert res.stdout.splitlines()[0] == verdict, res.stderr


@pytest.mark.parametrize("relation", ["", "(equal-to N1)", "(isomorphic-to N1)"])
def test_two_networks_compared(tmp_path: Path, relation: str):
    """relu on [0, 1] and on [2, 3]: the second output is always larger (unsat), and can exceed it by 1.5 (sat)."""
    relu = str(save(tmp_path / "relu.onnx", [helper.make_node("Relu", ["x"], ["y"], name="r")], [("x", [1])],
                    [("y", [1])]))
    head = f"""(declare-network N1 (declare-input X float32 [1]) (declare-output Y float32 [1]))
(declare-network N2 {relation} (declare-input X2 float32 [1]) (declare-output Y2 float32 [1]))
(assert (and (>= X[0] 0) (<= X[0] 1) (>= X2[0] 2) (<= X2[0] 3)))
"""
    nets = ["--network", f"N1={relu}", "--network", f"N2={relu}"]
    assert invoke("verify", _query(tmp_path, head + "(assert (<= Y2[0] Y[0]))\n"), *nets).stdout == "unsat\n"
    sat = invoke("verify", _query(tmp_path, head + "(assert (>= (- Y2[0] Y[0]) 1.5))\n"), *nets)
    assert sat.exit_code == 1 and sat.stdout.startswith("sat\nX float32 [1]\n")
    only_n1 = invoke("verify", _query(tmp_path, head + "(assert (<= Y2[0] Y[0]))\n"), "--network", f"N1={relu}")
    if relation == "(equal-to N1)":  # the same network: N1's file serves for N2 (vnnlib-satisfactory network_equal01)
        assert only_n1.stdout == "unsat\n", only_n1.stderr
    else:
        assert only_n1.exit_code == 3 and "give --network N2=NET.onnx" in only_n1.stderr


def test_a_merged_query_is_refused_in_the_model_spec_form(tmp_path: Path):
    res = invoke("verify", _two_inputs(tmp_path), _query(tmp_path, TWO_INPUTS + "(assert (>= Y[0] -8.0))\n"))
    assert res.exit_code == 3 and "--network" in res.stderr


def test_declared_tensors_must_match_the_file(tmp_path: Path):
    text = TWO_INPUTS.replace('(declare-input B float32 [1])', '(declare-input B float32 [2])') + \
        "(assert (>= Y[0] -8.0))\n"
    res = invoke("verify", _query(tmp_path, text.replace("(<= B[0] 11)", "(<= B[0] 11) (>= B[1] 0) (<= B[1] 1)")),
                 "--network", f"N={_two_inputs(tmp_path)}")
    assert res.exit_code == 3 and "B has 2 elements but the input 'x2'" in res.stderr


def _identity2(tmp_path: Path) -> str:
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="r")]
    return str(save(tmp_path / "relu2.onnx", nodes, [("x", [2])], [("y", [2])]))


BOX2 = """(declare-network N (declare-input X float32 [2]) (declare-output Y float32 [2]))
(assert (and (>= X[0] 0) (<= X[0] 2) (>= X[1] 0) (<= X[1] 2)))
"""


@pytest.mark.parametrize("extra,verdict", [
    # 0.5 x0 + 0.75 x1 >= 3 needs x0 = x1 = 2 (2.5 at most otherwise): with y0 <= 1.5 it is impossible
    ("(assert (>= (+ (* 0.5 X[0]) (* 0.75 X[1])) 3.0))\n(assert (<= Y[0] 1.5))\n", "unsat"),
    ("(assert (>= (+ X[0] X[1]) 3.0))\n(assert (<= Y[0] 1.5))\n", "sat"),
    # input-output comparisons: y0 = x0 >= 0, so y0 < x0 - 0.1 never holds; y1 >= x0 + 1 does (x1 = 2, x0 <= 1)
    ("(assert (<= Y[0] (- X[0] 0.1)))\n", "unsat"),
    ("(assert (>= Y[1] (+ X[0] 1.0)))\n", "sat"),
])
def test_linear_input_constraints_and_input_output_comparisons(tmp_path: Path, extra: str, verdict: str):
    res = invoke("verify", _query(tmp_path, BOX2 + extra), "--network", f"N={_identity2(tmp_path)}")
    lines = res.stdout.splitlines()
    assert lines[0] == verdict, res.stderr
    if verdict == "sat":  # X and Y printed as declared (not the copies of X), and the constraints hold
        assert lines[1] == "X float32 [2]" and lines[4] == "Y float32 [2]" and len(lines) == 7
        x, y = np.array(lines[2:4], dtype=float), np.array(lines[5:7], dtype=float)
        assert (x + 0 == np.maximum(x, 0)).all() and (y == x).all()
        assert (x[0] + x[1] >= 3.0) if "X[1]" in extra else (y[1] >= x[0] + 1.0)


def test_a_point_on_a_strict_bound_is_no_counterexample(tmp_path: Path):
    """relu(x) <= 0 with 0 < x <= 1 never holds; x = 0 (the closed box's corner) must not be reported."""
    relu = str(save(tmp_path / "relu.onnx", [helper.make_node("Relu", ["x"], ["y"], name="r")], [("x", [1])],
                    [("y", [1])]))
    text = """(declare-network N (declare-input X float32 [1]) (declare-output Y float32 [1]))
(assert (> X[0] 0.0))
(assert (<= X[0] 1.0))
(assert (<= Y[0] 0.0))
"""
    res = invoke("verify", _query(tmp_path, text), "--network", f"N={relu}", "--timeout", "3")
    assert res.stdout in ("unknown\n", "timed-out\n", "unsat\n")
    closed = invoke("verify", _query(tmp_path, text.replace("(> X[0]", "(>= X[0]")), "--network", f"N={relu}")
    assert closed.stdout.startswith("sat\n")
