"""The plan: instances.csv (relative paths, comments, bad rows named by file:line) and --model NET SPECS…"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.runner.helpers import ROBUST, TOY, invoke, write_csv
from verifier.errors import InputError
from verifier.runner.instances import expand_specs, fingerprint, model_instances, read_instances_csv, sha256_file


def test_csv_paths_are_relative_to_the_csv_folder(tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    bench.mkdir()
    csv = write_csv(bench / "instances.csv", [("onnx/a.onnx", "vnnlib/p.vnnlib", 116), ("b.onnx", "q.vnnlib", "7.5")])
    plan = read_instances_csv(csv)
    assert [(i.index, i.onnx, i.vnnlib, i.timeout) for i in plan] == [
        (0, "onnx/a.onnx", "vnnlib/p.vnnlib", 116.0), (1, "b.onnx", "q.vnnlib", 7.5)]
    assert plan[0].onnx_path == str(bench / "onnx" / "a.onnx")
    assert plan[1].vnnlib_path == str(bench / "q.vnnlib")


def test_csv_skips_blank_lines_comments_and_a_header(tmp_path: Path) -> None:
    csv = tmp_path / "instances.csv"
    csv.write_text("onnx,vnnlib,timeout\n\n# a comment, with commas\n a.onnx , p.vnnlib , 10 \n\n")
    plan = read_instances_csv(csv)
    assert [(i.index, i.onnx, i.vnnlib, i.timeout) for i in plan] == [(0, "a.onnx", "p.vnnlib", 10.0)]


@pytest.mark.parametrize("line,what", [
    ("a.onnx,p.vnnlib", "expected 3 columns (onnx, vnnlib, timeout), got 2"),
    ("a.onnx,p.vnnlib,10,extra", "got 4"),
    ("a.onnx,p.vnnlib,soon", "timeout 'soon' is not a number"),
    ("a.onnx,p.vnnlib,-1", "timeout must be a positive number"),
    ("a.onnx,p.vnnlib,nan", "timeout must be a positive number"),
    (",p.vnnlib,10", "empty onnx path"),
    ("a.onnx,,10", "empty vnnlib path"),
    ("a.onnx\0,p.vnnlib,10", "a path with a NUL character"),
])
def test_bad_rows_name_file_and_line(tmp_path: Path, line: str, what: str) -> None:
    csv = tmp_path / "instances.csv"
    csv.write_text(f"good.onnx,good.vnnlib,1\n# comment\n{line}\n")
    with pytest.raises(InputError) as info:
        read_instances_csv(csv)
    assert str(info.value).startswith(f"{csv}:3: ")
    assert what in str(info.value)


def test_missing_or_empty_csv_is_one_line_exit_3(tmp_path: Path) -> None:
    res = invoke("run", tmp_path / "nope.csv")
    assert res.exit_code == 3
    assert res.stderr.strip() == f"error: {tmp_path / 'nope.csv'}: no such instances file"
    empty = tmp_path / "empty.csv"
    empty.write_text("# nothing\n")
    res = invoke("run", empty)
    assert res.exit_code == 3 and "no instances" in res.stderr and "Traceback" not in res.output


def test_bad_row_through_the_cli_exits_3_before_running(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "instances.csv", [(TOY, ROBUST, 5), (TOY, ROBUST)])
    res = invoke("run", csv, "--results", tmp_path / "r.jsonl")
    assert res.exit_code == 3
    assert res.stderr.strip().endswith(f"{csv}:2: expected 3 columns (onnx, vnnlib, timeout), got 2")
    assert not (tmp_path / "r.jsonl").exists()


def test_specs_from_files_folders_and_globs(tmp_path: Path) -> None:
    folder = tmp_path / "specs"
    folder.mkdir()
    for name in ("b.vnnlib", "a.vnnlib", "c.vnnlib.gz", "notes.txt"):
        (folder / name).write_text("")
    assert expand_specs([str(folder)]) == [str(folder / n) for n in ("a.vnnlib", "b.vnnlib", "c.vnnlib.gz")]
    assert expand_specs([str(folder / "*.vnnlib")]) == [str(folder / "a.vnnlib"), str(folder / "b.vnnlib")]
    assert expand_specs(["missing.vnnlib"]) == ["missing.vnnlib"]  # an error row later, not a usage error
    with pytest.raises(InputError, match="the pattern matches no file"):
        expand_specs([str(folder / "*.onnx")])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no .vnnlib files"):
        expand_specs([str(empty)])


def test_fingerprint_hashes_each_file_and_applies_timeouts(tmp_path: Path) -> None:
    plan = model_instances(str(TOY), [str(ROBUST), str(ROBUST), str(tmp_path / "missing.vnnlib")])
    assert [i.timeout for i in plan] == [300.0] * 3
    marked = fingerprint(plan, timeout=None, scale=2.0)
    assert [i.timeout for i in marked] == [600.0] * 3
    assert marked[0].onnx_sha256 == sha256_file(str(TOY)) and len(marked[0].onnx_sha256) == 64
    assert marked[0].vnnlib_sha256 == marked[1].vnnlib_sha256 != marked[0].onnx_sha256
    assert marked[2].vnnlib_sha256 is None
    assert [i.timeout for i in fingerprint(plan, timeout=5.0, scale=0.5)] == [2.5] * 3
    assert marked[0].key != marked[1].key  # the row index keeps repeated rows apart
    assert os.path.exists(marked[0].onnx_path)
