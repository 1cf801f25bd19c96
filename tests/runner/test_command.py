"""The command end to end: lazy imports, the verifier.run/1 document, log lines, progress, result files."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from tests.runner.helpers import FALSIFIABLE, ROBUST, ROOT, TOY, invoke, toy_csv
from verifier.runner.progress import LiveReporter, LogReporter


def test_help_lists_run_and_does_not_import_torch() -> None:
    code = ("import sys; from click.testing import CliRunner; from verifier.cli import main; "
            "out = CliRunner().invoke(main, ['run', '--help']).output; "
            "assert 'Exit code' in out and '--min-verified' in out, out; "
            "assert 'torch' not in sys.modules and 'numpy' not in sys.modules, 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    out = invoke("--help").output
    assert any(line.strip().startswith("run ") for line in out.splitlines())


def test_json_summary_document(tmp_path: Path) -> None:
    csv = toy_csv(tmp_path)
    res = invoke("run", csv, "--json", "--results", tmp_path / "r.jsonl")
    doc = json.loads(res.stdout)
    assert doc["schema"] == "verifier.run/1" and doc["instances"] == 3 and doc["resumed"] == 0
    assert doc["counts"] == {"unsat": 2, "sat": 1, "unknown": 0, "timeout": 0, "error": 0}
    assert [e["index"] for e in doc["verdicts"]["unsat"]] == [0, 2]
    assert doc["verdicts"]["sat"][0]["vnnlib"] == "spec/falsifiable.vnnlib"
    assert doc["gate"] == {"passed": False, "exit_code": 1, "fail_on": ["sat", "error"], "min_verified": None,
                           "verified_fraction": 2 / 3, "failing": {"sat": 1}, "reasons": ["1 sat"]}
    t = doc["time"]
    assert t["total"] > 0 and 0 < t["engine"] <= t["wall"]
    assert 0 <= t["overhead"]["mean"] <= t["overhead"]["max"] and t["overhead"]["total"] <= t["wall"]
    assert doc["results"] == str(tmp_path / "r.jsonl") and doc["config"]["preset"] == "balanced"
    assert res.exit_code == 1


def test_quiet_log_lines_and_summary_table(tmp_path: Path) -> None:
    csv = toy_csv(tmp_path)
    res = invoke("run", csv, "--quiet")
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("[1/3] unsat") and "model/toy.onnx spec/robust.vnnlib" in lines[0]
    assert lines[1].startswith("[2/3] sat") and lines[1].endswith("(pgd)")
    assert res.stdout.startswith("instances=3 unsat=2 sat=1 ") and "gate FAILED (1 sat), exit 1" in res.stdout
    res = invoke("run", csv, "--fail-on", "none")
    assert res.exit_code == 0
    assert "verified (unsat)" in res.stdout and "gate passed" in res.stdout and "overhead" in res.stdout
    assert "sat   #2 model/toy.onnx spec/falsifiable.vnnlib" in res.stdout  # the log's [2/3]


def test_results_dir_holds_vnncomp_files(tmp_path: Path) -> None:
    out = tmp_path / "results"
    invoke("run", "--model", TOY, ROBUST, FALSIFIABLE, "--results-dir", out, "--quiet")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["0000_toy_mlp_toy_robust.txt", "0001_toy_mlp_toy_falsifiable.counterexample",
                     "0001_toy_mlp_toy_falsifiable.txt"]
    assert (out / names[0]).read_text() == "unsat\n"
    sat = (out / names[2]).read_text()
    assert sat.startswith("sat\n((X_0 ") and (out / names[1]).read_text() == sat[len("sat\n"):]


def test_progress_bar_shows_the_tally() -> None:
    from rich.console import Console

    buffer = io.StringIO()
    reporter = LiveReporter(Console(file=buffer, force_terminal=True, width=200))
    reporter.start(3, [{"verdict": "unsat"}])
    reporter.update({"verdict": "sat", "wall": 0.1})
    reporter.stop()
    text = buffer.getvalue()
    assert "2/3" in text and "1 verified" in text and "1 falsified" in text and "0 error" in text


def test_progress_bar_at_80_columns_keeps_count_and_eta() -> None:
    from rich.console import Console

    buffer = io.StringIO()
    reporter = LiveReporter(Console(file=buffer, force_terminal=True, width=80))
    reporter.start(186, [{"verdict": v} for v in ("unsat", "sat", "unknown", "timeout", "error") * 20])
    reporter.update({"verdict": "sat", "wall": 0.1})
    reporter.stop()
    last = buffer.getvalue().split("\r")[-1]
    assert "101/186" in last and "ETA" in last and "verified" in last


def test_log_lines_number_instances_as_the_summary(tmp_path) -> None:
    from rich.console import Console

    buffer = io.StringIO()
    log = LogReporter(Console(file=buffer, width=200))
    log.start(5, [])
    log.update({"index": 2, "verdict": "sat", "wall": 0.1, "onnx": "a.onnx", "vnnlib": "b.vnnlib", "method": "pgd"})
    assert buffer.getvalue().startswith("[3/5] sat")  # the third instance, whatever finished before it

    buffer = io.StringIO()
    log = LogReporter(Console(file=buffer, width=200))
    log.start(2, [{"verdict": "unsat"}])
    log.update({"verdict": "error", "wall": 0.0, "onnx": "a.onnx", "vnnlib": "b.vnnlib", "message": "bad"})
    assert buffer.getvalue().splitlines() == ["resuming: 1 of 2 instances already recorded",
                                              "[2/2] error       0.00 s  a.onnx b.vnnlib  (bad)"]
