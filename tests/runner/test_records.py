"""Results files: one fsynced line per record, JSONL or CSV, --resume, and a real SIGKILL mid-run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.runner.helpers import ROOT, TOY, invoke, make_specs, read_jsonl, toy_csv
from verifier.errors import InputError
from verifier.runner.records import CSV_HEADER, ResultsFile


def _record(index: int, verdict: str = "unsat", message: str = "") -> dict:
    return {"index": index, "onnx": "m.onnx", "vnnlib": f"s{index}.vnnlib", "timeout": 1.0, "verdict": verdict,
            "exit_code": 0, "method": None, "margin": None, "time": 0.5, "wall": 0.6, "message": message,
            "counterexample": {"x": [1.0], "y": [2.0], "property": 0, "clause": 1} if verdict == "sat" else None,
            "config": {"method": "auto"}, "version": "0", "torch": "2", "device": "cpu",
            "onnx_sha256": "a" * 64, "vnnlib_sha256": None, "finished": "now"}


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_append_then_read_back_round_trips(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"r{suffix}"
    out = ResultsFile(path)
    assert out.open(resume=False) == []
    written = [_record(0), _record(1, "sat"), _record(2, "error", 'bad, "quoted"\nsecond line')]
    for r in written:
        out.append(r)
    out.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 3 + (suffix == ".csv")
    if suffix == ".csv":
        assert lines[0] + "\n" == CSV_HEADER
    back = ResultsFile(path).open(resume=True)
    written[2]["message"] = 'bad, "quoted" second line' if suffix == ".csv" else written[2]["message"]
    assert back == written


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_torn_last_line_is_discarded_and_cut_off(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"r{suffix}"
    out = ResultsFile(path)
    out.open(resume=False)
    out.append(_record(0))
    out.append(_record(1))
    out.close()
    whole = path.read_bytes()
    path.write_bytes(whole + whole.splitlines(keepends=True)[-1][:25])  # a write cut short by a kill
    again = ResultsFile(path)
    assert [r["index"] for r in again.open(resume=True)] == [0, 1]
    again.append(_record(2))
    again.close()
    assert [r["index"] for r in ResultsFile(path).open(resume=True)] == [0, 1, 2]
    assert path.read_bytes().startswith(whole)


def test_corrupt_line_in_the_middle_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(_record(0)) + "\nnot json\n" + json.dumps(_record(2)) + "\n")
    with pytest.raises(InputError, match=r"r\.jsonl:2: not a result record"):
        ResultsFile(path).open(resume=True)


def test_existing_results_need_resume(tmp_path: Path) -> None:
    csv = toy_csv(tmp_path)
    results = tmp_path / "r.jsonl"
    assert invoke("run", csv, "--results", results, "--quiet").exit_code == 1  # one sat instance
    res = invoke("run", csv, "--results", results, "--quiet")
    assert res.exit_code == 3
    assert res.stderr.strip() == (f"error: {results} already holds results: pass --resume to continue that run, "
                                  "or choose another --results path")
    assert len(read_jsonl(results)) == 3
    res = invoke("run", csv, "--results", results, "--resume", "--json")
    doc = json.loads(res.stdout)
    assert (doc["resumed"], doc["instances"], doc["counts"]["unsat"], doc["counts"]["sat"]) == (3, 3, 2, 1)
    assert res.exit_code == 1  # the gate still sees the recorded sat
    assert len(read_jsonl(results)) == 3
    assert invoke("run", csv, "--resume").exit_code == 3  # --resume without --results is a usage error


def test_resume_reruns_an_instance_whose_file_changed(tmp_path: Path) -> None:
    csv = toy_csv(tmp_path)
    results = tmp_path / "r.csv"
    invoke("run", csv, "--results", results, "--quiet")
    spec = tmp_path / "spec" / "falsifiable.vnnlib"
    spec.write_text(spec.read_text() + "\n; edited\n")  # new sha256: no longer the recorded instance
    before = ResultsFile(results).open(resume=True)
    res = invoke("run", csv, "--results", results, "--resume", "--json")
    doc = json.loads(res.stdout)
    assert doc["resumed"] == 2 and "1 recorded instance(s) changed since" in res.stderr
    rows = ResultsFile(results).open(resume=True)
    assert [r["index"] for r in rows] == [0, 2, 1]  # the stale record is gone, not left beside the new one
    assert rows[2]["vnnlib_sha256"] != before[1]["vnnlib_sha256"]


def test_resume_with_another_timeout_needs_force(tmp_path: Path) -> None:
    csv = toy_csv(tmp_path)
    results = tmp_path / "r.jsonl"
    invoke("run", csv, "--results", results, "--quiet")
    res = invoke("run", csv, "--results", results, "--resume", "--timeout", "7", "--quiet")
    assert res.exit_code == 3
    assert res.stderr.strip().splitlines() == [
        f"error: {results}: instance #1 (spec/robust.vnnlib) was recorded with a 20 s timeout, this run gives it "
        "7 s: pass --force to keep such records, or choose another --results path"]
    res = invoke("run", csv, "--results", results, "--resume", "--timeout", "7", "--force", "--json")
    assert json.loads(res.stdout)["resumed"] == 3


def test_record_fields(tmp_path: Path) -> None:
    csv = toy_csv(tmp_path)
    invoke("run", csv, "--results", tmp_path / "r.jsonl", "--quiet", "--seed", "5")
    records = read_jsonl(tmp_path / "r.jsonl")
    import torch

    from verifier import __version__
    from verifier.runner.instances import sha256_file

    for r in records:
        assert (r["version"], r["torch"], r["device"]) == (__version__, torch.__version__, "cpu")
        assert r["onnx"] == "model/toy.onnx" and r["onnx_sha256"] == sha256_file(str(TOY))
        assert r["timeout"] == 20.0 and 0 < r["time"] <= r["wall"] and r["config"]["seed"] == 5
    sat = records[1]
    assert sat["verdict"] == "sat" and sat["exit_code"] == 1 and len(sat["counterexample"]["x"]) == 3
    assert records[0]["verdict"] == "unsat" and records[0]["counterexample"] is None


def test_sigkill_mid_run_then_resume_records_every_instance_once(tmp_path: Path) -> None:
    n = 160
    make_specs(tmp_path / "specs", n)
    results = tmp_path / "r.jsonl"
    cmd = [sys.executable, str(ROOT / "cli.py"), "run", "--model", str(TOY), str(tmp_path / "specs"),
           "--results", str(results), "--quiet", "--timeout", "10"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if results.exists() and results.read_bytes().count(b"\n") >= 5:
                break
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    before = results.read_bytes().count(b"\n")
    assert 5 <= before < n
    with results.open("ab") as fh:  # as if the kill had landed in the middle of a write
        fh.write(b'{"index": 999, "onnx": "torn')

    res = invoke("run", "--model", TOY, tmp_path / "specs", "--results", results, "--resume", "--json",
                 "--timeout", "10")
    doc = json.loads(res.stdout)
    assert doc["resumed"] == before and doc["instances"] == n
    records = read_jsonl(results)
    assert sorted(r["index"] for r in records) == list(range(n))  # each exactly once
    assert all(r["verdict"] == ("sat" if r["index"] % 2 else "unsat") for r in records)
    assert res.exit_code == 1
