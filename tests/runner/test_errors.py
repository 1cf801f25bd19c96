"""A failing instance becomes an `error` record with a one-line message, and the run goes on."""
from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from onnx import helper

from tests.model.onnx_builders import init, rand, save
from tests.runner.helpers import FALSIFIABLE, ROBUST, TOY, invoke, read_jsonl, write_csv
from verifier.model.translate import SUPPORTED_OPS
from verifier.runner import worker
from verifier.runner.instances import Instance
from verifier.runner.settings import RunSettings


def _unsupported_model(path: Path) -> tuple[Path, str]:
    op = next(o for o in ("Cos", "Sin", "Erf", "Softplus") if o not in SUPPORTED_OPS)
    nodes = [helper.make_node("Gemm", ["x", "W"], ["h"], name="fc", transB=1),
             helper.make_node(op, ["h"], ["y"], name="odd")]
    return save(path, nodes, [("x", [1, 3])], [("y", [1, 3])], [init("W", rand(3, 3))]), op


def test_missing_files_and_unsupported_model_are_error_rows(tmp_path: Path) -> None:
    bad_model, op = _unsupported_model(tmp_path / "odd.onnx")
    csv = write_csv(tmp_path / "instances.csv", [
        (TOY, ROBUST, 10), ("nope.onnx", ROBUST, 10), (TOY, "nope.vnnlib", 10), ("odd.onnx", ROBUST, 10),
        ("odd.onnx", FALSIFIABLE, 10), (TOY, FALSIFIABLE, 10)])
    res = invoke("run", csv, "--results", tmp_path / "r.jsonl", "--quiet")
    assert res.exit_code == 3  # every error is bad input: 3, never 4
    records = read_jsonl(tmp_path / "r.jsonl")
    assert [r["verdict"] for r in records] == ["unsat", "error", "error", "error", "error", "sat"]
    messages = [r["message"] for r in records]
    assert messages[1] == f"{tmp_path / 'nope.onnx'}: no such file"
    assert str(tmp_path / "nope.vnnlib") in messages[2] and "cannot read spec" in messages[2]
    assert messages[3].startswith(f"{bad_model}: unsupported ONNX ops: {op}") and messages[4] == messages[3]
    assert all("\n" not in m for m in messages)
    assert records[1]["onnx_sha256"] is None and records[1]["exit_code"] == 3
    assert res.stdout.strip().startswith("instances=6 unsat=1 sat=1 unknown=0 timeout=0 error=4")


def test_gzipped_spec_is_read(tmp_path: Path) -> None:
    gz = tmp_path / "robust.vnnlib.gz"
    with gzip.open(gz, "wb") as fh:
        fh.write(ROBUST.read_bytes())
    broken = tmp_path / "broken.vnnlib.gz"
    broken.write_bytes(b"not gzip at all")
    doc = json.loads(invoke("run", "--model", TOY, gz, broken, "--json").stdout)
    assert [e["index"] for e in doc["verdicts"]["unsat"]] == [0]
    [err] = doc["verdicts"]["error"]
    assert err["message"].startswith(f"{broken}: cannot read compressed spec")


def test_exception_in_the_engine_is_an_error_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import verifier.api

    def explode(*args, **kwargs):
        raise MemoryError("CUDA out of memory.\nTried to allocate 2 GiB")

    monkeypatch.setattr(verifier.api, "verify", explode)
    solver = worker.Solver(RunSettings())
    record = solver.solve(Instance(0, "toy", "spec", str(TOY), str(ROBUST), 10.0))
    assert record["verdict"] == "error" and record["exit_code"] == 4
    assert record["message"] == "internal error: MemoryError: CUDA out of memory. …"


def test_model_load_time_is_charged_to_the_first_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first instance of a model pays its load out of its own timeout; the next one does not load again."""
    import time

    import verifier.api
    from verifier.model import loader

    seen: list[float] = []
    real_load, real_verify = loader.load_model, verifier.api.verify
    loads: list[str] = []

    def slow_load(path, **kw):
        loads.append(path)
        time.sleep(0.3)
        return real_load(path, **kw)

    def spy(model, spec, **options):
        seen.append(options["timeout"])
        return real_verify(model, spec, **options)

    monkeypatch.setattr(loader, "load_model", slow_load)
    monkeypatch.setattr(verifier.api, "verify", spy)
    shutil.copyfile(TOY, tmp_path / "toy.onnx")
    solver = worker.Solver(RunSettings())
    first = solver.solve(Instance(0, "toy", "r", str(tmp_path / "toy.onnx"), str(ROBUST), 5.0))
    second = solver.solve(Instance(1, "toy", "r", str(tmp_path / "toy.onnx"), str(ROBUST), 5.0))
    assert loads == [str(tmp_path / "toy.onnx")]
    assert seen[0] <= 5.0 - 0.3 and seen[1] > 5.0 - 0.3
    assert first["time"] >= 0.3 > second["time"]
    assert first["verdict"] == second["verdict"] == "unsat"
    third = solver.solve(Instance(2, "toy", "r", str(tmp_path / "toy.onnx"), str(ROBUST), 1e-9))
    assert third["verdict"] == "timeout"
