"""`.onnx.gz` and `.vnnlib.gz` are read by every command: verify (both forms), bounds, check-model --spec."""
from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.examples import FALSIFIABLE, FALSIFIABLE_V2, ROBUST, ROBUST_V2, TOY
from verifier.cli import main


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("VERIFIER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "graph-cache"))


def gz(tmp_path: Path, path: str) -> str:
    out = tmp_path / (Path(path).name + ".gz")
    with open(path, "rb") as src, gzip.open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return str(out)


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_verify_reads_compressed_model_and_spec(tmp_path: Path):
    model = gz(tmp_path, TOY)
    assert invoke("verify", model, gz(tmp_path, ROBUST), "--quiet").stdout == "unsat\n"
    sat = invoke("verify", model, gz(tmp_path, FALSIFIABLE), "--json")
    assert sat.exit_code == 1 and json.loads(sat.stdout)["counterexample"] is not None  # replayed on onnxruntime


def test_standard_form_reads_compressed_files(tmp_path: Path):
    model = gz(tmp_path, TOY)
    assert invoke("verify", gz(tmp_path, ROBUST_V2), "--network", f"toy={model}").stdout == "unsat\n"
    assert invoke("verify", gz(tmp_path, FALSIFIABLE_V2), "--network", f"toy={model}").stdout.startswith("sat\n")


def test_bounds_and_check_model_read_compressed_files(tmp_path: Path):
    model, spec = gz(tmp_path, TOY), gz(tmp_path, ROBUST)
    plain = json.loads(invoke("bounds", TOY, ROBUST, "--json").stdout)["properties"]
    packed = json.loads(invoke("bounds", model, spec, "--json").stdout)["properties"]
    assert packed == plain
    res = invoke("check-model", model, "--spec", spec, "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["ok"]


def test_a_broken_gzip_file_is_one_line_of_bad_input(tmp_path: Path):
    model = tmp_path / "m.onnx.gz"
    model.write_bytes(Path(gz(tmp_path, TOY)).read_bytes()[:30])
    res = invoke("verify", str(model), ROBUST)
    assert res.exit_code == 3 and "cannot decompress" in res.stderr and res.stderr.count("\n") == 1
    spec = tmp_path / "s.vnnlib.gz"
    spec.write_bytes(b"\x1f\x8b" + b"not gzip")
    res = invoke("verify", TOY, str(spec))
    assert res.exit_code == 3 and "cannot read compressed spec" in res.stderr
