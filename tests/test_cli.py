"""CLI tests through click's CliRunner: every exit code, the JSON schema, the VNN-COMP result file."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.examples import ACAS, ACAS_PROP1, FALSIFIABLE, ROBUST, TOY
from verifier import __version__
from verifier.cli import main


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("VERIFIER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "graph-cache"))


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_version_and_help():
    assert __version__ in invoke("--version").output
    out = invoke("--help").output
    for command in ("verify", "bounds"):
        line = next(l for l in out.splitlines() if l.strip().startswith(command))
        assert "..." not in line  # one complete line per command


def test_verify_unsat_exit_0_and_json_schema():
    res = invoke("verify", TOY, ROBUST, "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["schema"] == "verifier.result/1"
    assert doc["verdict"] == "unsat" and doc["exit_code"] == 0
    assert doc["method"] in ("ibp", "crown") and doc["margin"] > 0
    assert doc["counterexample"] is None
    assert set(doc["times"]) >= {"load", "attack", "bounds", "total"}
    assert doc["properties"][0]["verdict"] == "unsat"
    assert doc["semantics"] == "real"  # what the proof is for


def test_verify_sat_exit_1_writes_replayable_result_file(tmp_path):
    out = tmp_path / "result.txt"
    res = invoke("verify", TOY, FALSIFIABLE, "--results-file", str(out), "--json")
    assert res.exit_code == 1, res.output
    doc = json.loads(res.output)
    assert doc["verdict"] == "sat" and doc["method"] == "pgd"
    text = out.read_text()
    assert text.startswith("sat\n((X_0 ")
    assert "(Y_2 " in text
    # the written x lies in the box and, on onnxruntime, violates the property
    import numpy as np
    import onnxruntime as ort

    from verifier.spec.vnnlib import parse_vnnlib

    spec = parse_vnnlib(FALSIFIABLE)
    x = np.array(doc["counterexample"]["x"], dtype=np.float32)
    prop = spec.properties[0]
    assert np.all(x >= prop.lower) and np.all(x <= prop.upper)
    sess = ort.InferenceSession(TOY, providers=["CPUExecutionProvider"])
    y = sess.run(None, {"input": x[None]})[0].reshape(-1)
    assert prop.violated_by(y)


def test_verify_unknown_exit_2():
    res = invoke("verify", ACAS, ACAS_PROP1, "--method", "ibp", "--bab", "none", "--json")
    assert res.exit_code == 2, res.output
    assert json.loads(res.output)["verdict"] == "unknown"


def test_verify_unsat_by_input_split_bab():
    res = invoke("verify", ACAS, ACAS_PROP1, "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["verdict"] == "unsat" and doc["method"] == "bab" and doc["margin"] > 0


def test_fast_preset_skips_branch_and_bound_unless_asked():
    """ACAS prop 1 needs branch and bound: --preset fast leaves it unknown, an explicit --bab wins."""
    fast = invoke("verify", ACAS, ACAS_PROP1, "--preset", "fast", "--json")
    assert fast.exit_code == 2 and json.loads(fast.output)["verdict"] == "unknown", fast.output
    explicit = invoke("verify", ACAS, ACAS_PROP1, "--preset", "fast", "--bab", "input", "--json")
    assert explicit.exit_code == 0 and json.loads(explicit.output)["method"] == "bab", explicit.output


def test_preset_engine_options_precedence():
    from verifier.runner.settings import preset_engine_options

    values = {"timeout": 10.0, "method": "auto", "bab": "auto"}
    assert preset_engine_options("complete", values, set())["timeout"] == 20.0
    assert preset_engine_options("complete", values, {"timeout"})["timeout"] == 10.0
    assert preset_engine_options("fast", values, {"method"}) == {"timeout": 10.0, "method": "auto", "bab": "none"}
    assert preset_engine_options("balanced", values, set()) == values


def test_panel_output_for_people():
    res = invoke("verify", TOY, ROBUST)
    assert res.exit_code == 0
    assert "unsat" in res.output and "margin" in res.output


def test_missing_file_exit_3_one_line(tmp_path):
    res = CliRunner().invoke(main, ["verify", str(tmp_path / "nope.onnx"), ROBUST])
    assert res.exit_code == 3
    assert "Traceback" not in res.output
    assert "nope.onnx" in res.output


def test_malformed_spec_exit_3_names_line(tmp_path):
    bad = tmp_path / "bad.vnnlib"
    bad.write_text("(declare-const X_0 Real)\n(assert (<= X_0 1.0)\n")
    res = invoke("verify", TOY, str(bad))
    assert res.exit_code == 3
    assert "bad.vnnlib" in res.output and "Traceback" not in res.output


def test_spec_model_mismatch_exit_3():
    res = invoke("verify", TOY, ACAS_PROP1)
    assert res.exit_code == 3
    assert "inputs" in res.output


def test_bad_option_is_bad_input_exit_3():
    res = invoke("verify", TOY, ROBUST, "--method", "magic")
    assert res.exit_code == 3


def test_internal_error_exit_4(monkeypatch):
    import verifier.api

    def boom(*a, **k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(verifier.api, "verify", boom)
    res = invoke("verify", TOY, ROBUST)
    assert res.exit_code == 4
    assert "kaboom" in res.output and "Traceback" not in res.output


def test_bounds_command_json_is_consistent():
    res = invoke("bounds", TOY, ROBUST, "--json", "--method", "crown")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["schema"] == "verifier.bounds/1"
    prop = doc["properties"][0]
    assert len(prop["output_lower"]) == 3
    assert all(lo <= hi for lo, hi in zip(prop["output_lower"], prop["output_upper"]))
    assert all(lo <= hi for lo, hi in zip(prop["objective_lower"], prop["objective_upper"]))


def test_out_of_memory_is_unknown_not_a_crash(monkeypatch):
    """Running out of memory anywhere in the engine ends in `unknown` (exit 2) with the reason."""
    import torch

    import verifier.api

    def full(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory (test)")

    monkeypatch.setattr(verifier.api, "_solve", full)
    res = invoke("verify", TOY, ROBUST, "--json")
    assert res.exit_code == 2, res.output
    doc = json.loads(res.output)
    assert doc["verdict"] == "unknown" and "out of memory" in doc["message"]


@pytest.mark.parametrize("spec,verdict,code", [(ROBUST, "unsat", 0), (FALSIFIABLE, "sat", 1)])
def test_quiet_prints_the_verdict_word_only(spec, verdict, code):
    res = invoke("verify", TOY, spec, "--quiet")
    assert res.exit_code == code, res.output
    assert res.stdout == f"{verdict}\n"


def test_strong_attack_runs_only_on_open_properties_before_relu_splitting(monkeypatch):
    """The larger attack runs once the bounds leave a property open and ReLU-split branch and bound would
    follow; not when the bounds prove it, not with --bab none, not before input splitting (which samples
    the open region itself)."""
    import verifier.attack.pgd as pgd

    open_spec = ACAS_PROP1  # unsat, but CROWN alone leaves it open

    calls = []
    real = pgd.pgd_attack

    def spy(graph, lower, upper, clauses, config=pgd.AttackConfig(), deadline=None):
        calls.append(config.restarts)
        return real(graph, lower, upper, clauses, config, deadline)

    monkeypatch.setattr(pgd, "pgd_attack", spy)
    res = invoke("verify", ACAS, open_spec, "--json", "--bab", "relu", "--timeout", "30")
    assert json.loads(res.output)["verdict"] in ("unsat", "timeout") and calls == [32, 64, 1024]
    for bab in ("none", "input"):
        calls.clear()
        invoke("verify", ACAS, open_spec, "--json", "--bab", bab, "--timeout", "20")
        assert calls == [32], bab
    calls.clear()
    invoke("verify", TOY, ROBUST, "--json")  # proved by the bounds
    assert calls == [32]


@pytest.mark.parametrize("debug", ["", "0", "1"])
def test_internal_error_traceback_only_with_verifier_debug(debug, monkeypatch, capsys):
    """The internal-error line promises a traceback under VERIFIER_DEBUG=1: it must come then, and only then."""
    from verifier.commands.common import guarded

    monkeypatch.setenv("VERIFIER_DEBUG", debug)
    with pytest.raises(SystemExit) as stop:
        guarded(lambda: 1 / 0)
    err = capsys.readouterr().err
    assert stop.value.code == 4
    assert err.strip().splitlines()[-1].startswith("error: internal error: ZeroDivisionError")
    assert ("Traceback (most recent call last)" in err) == (debug == "1")


@pytest.mark.parametrize("spec, verdict, code", [(ROBUST, "unsat", 0), (FALSIFIABLE, "sat", 1)])
def test_process_entry_ends_fast_with_everything_written(spec: str, verdict: str, code: int, tmp_path):
    """`python cli.py verify` skips the interpreter's teardown (`entry`): the piped JSON must still be
    whole, the exit code the verdict's, and the result file complete."""
    import os
    import subprocess
    import sys

    from tests.examples import ROOT

    results = tmp_path / "out.txt"
    env = dict(os.environ, VERIFIER_CACHE_DIR=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, str(ROOT / "cli.py"), "verify", TOY, spec, "--json", "--timeout", "60",
                           "--results-file", str(results)], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == code, done.stderr
    assert json.loads(done.stdout)["verdict"] == verdict
    assert results.read_text().splitlines()[0] == verdict
