"""`bench/run.py NAME` without the benchmarks: one line saying where it looked and how to point elsewhere."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "run.py"


def load_script():
    spec = importlib.util.spec_from_file_location("bench_run", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_missing_benchmark_is_one_line_exit_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("VERIFIER_BENCHMARKS", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert load_script().main(["acasxu"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path / "acasxu") in err[0] and "VERIFIER_BENCHMARKS" in err[0]


def test_benchmark_found_under_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "instances.csv").write_text("")
    monkeypatch.setenv("VERIFIER_BENCHMARKS", str(tmp_path))
    assert load_script().find_bench("mine") == tmp_path / "mine"
