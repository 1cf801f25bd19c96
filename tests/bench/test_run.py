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


def test_bad_rows_are_error_rows_and_the_run_goes_on(tmp_path: Path, capsys) -> None:
    """A header, a missing model, a timeout that is no number, a short row: each an `error` row in the log
    naming what is wrong, and the good row after them still runs (a crash here lost a night's results)."""
    root = Path(__file__).resolve().parents[2]
    (tmp_path / "toy.onnx").symlink_to(root / "models" / "toy_mlp.onnx")
    (tmp_path / "toy.vnnlib").symlink_to(root / "specs" / "toy_robust.vnnlib")
    (tmp_path / "instances.csv").write_text(
        "onnx,vnnlib,timeout\nnone.onnx,toy.vnnlib,10\ntoy.onnx,toy.vnnlib,x\ntoy.onnx\ntoy.onnx,toy.vnnlib,20\n")
    log = tmp_path / "out.csv"
    assert load_script().main([str(tmp_path), "--csv", str(log)]) == 0
    import csv

    rows = list(csv.DictReader(log.open()))
    assert [r["verdict"] for r in rows[:4]] == ["error"] * 4
    assert all("no such file" in r["message"] for r in rows[:2])  # the header names a file "onnx"
    assert "'x'" in rows[2]["message"] and "expected onnx,vnnlib,timeout" in rows[3]["message"]
    assert rows[4]["verdict"] in ("unsat", "sat") and rows[4]["timeout"] == "20.0"
