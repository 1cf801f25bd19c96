"""--jobs N worker processes and the Ray executor give the same verdicts as a serial run, in one results file."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runner.helpers import TOY, invoke, make_specs, read_jsonl


def _verdicts(records: list[dict]) -> dict[int, str]:
    return {r["index"]: r["verdict"] for r in records}


def _run(tmp_path: Path, name: str, *extra: str) -> tuple[int, dict, list[dict]]:
    results = tmp_path / f"{name}.jsonl"
    res = invoke("run", "--model", TOY, tmp_path / "specs", "--results", results, "--json", "--timeout", "20",
                 *extra)
    return res.exit_code, json.loads(res.stdout), read_jsonl(results)


def test_jobs_2_matches_serial(tmp_path: Path) -> None:
    make_specs(tmp_path / "specs", 6)
    code, doc, serial = _run(tmp_path, "serial")
    code2, doc2, parallel = _run(tmp_path, "parallel", "--jobs", "2")
    assert (code, code2) == (1, 1)
    assert _verdicts(parallel) == _verdicts(serial) == {i: "sat" if i % 2 else "unsat" for i in range(6)}
    assert sorted(r["index"] for r in parallel) == list(range(6))  # each once, written by the parent
    assert doc2["counts"] == doc["counts"] and doc2["config"]["jobs"] == 2
    assert all(r["torch"] and r["device"] == "cpu" for r in parallel)


def test_ray_matches_serial(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    make_specs(tmp_path / "specs", 4)
    _, _, serial = _run(tmp_path, "serial")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        code, doc, distributed = _run(tmp_path, "ray", "--executor", "ray", "--jobs", "2")
    finally:
        ray.shutdown()
    assert code == 1 and doc["config"]["executor"] == "ray"
    assert _verdicts(distributed) == _verdicts(serial)
    assert sorted(r["index"] for r in distributed) == list(range(4))
