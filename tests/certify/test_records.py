"""Sample selection and shards, and the JSONL results file (append, resume, refusals)."""
from __future__ import annotations

import json

import pytest

from verifier.certify.records import FIELDS, ResultsFile, check_labels, make_record, select
from verifier.errors import InputError


def test_shards_partition_the_selection():
    whole = select(103, start=5, n=90)
    assert whole == list(range(5, 95))
    parts = [select(103, start=5, n=90, shard=(i, 4)) for i in range(4)]
    assert sorted(sum(parts, [])) == whole  # union = all, and (sorted lengths add up) no overlap
    assert sum(len(p) for p in parts) == len(whole) and len(set(sum(parts, []))) == len(whole)
    assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1
    assert select(10, start=8) == [8, 9] and select(10, n=100) == list(range(10))
    with pytest.raises(InputError, match="--start 10 is outside"):
        select(10, start=10)


def _rec(i, label=1, model="abc"):
    return make_record(i, label, label, 0.1, "ibp", "verified", 0.5, float("inf"), {"ibp": 0.1}, model)


def test_records_append_and_resume(tmp_path):
    path = tmp_path / "r.jsonl"
    f = ResultsFile(path, resume=False, model="abc")
    f.append(_rec(0))
    f.append(_rec(1))
    lines = path.read_text().splitlines()  # flushed at once, before close
    assert len(lines) == 2 and set(json.loads(lines[0])) == set(FIELDS) | {"norm"}  # norm: optional on resume
    assert json.loads(lines[0])["margin_ub"] is None  # inf is not JSON: recorded as null
    f.close()
    with pytest.raises(InputError, match="exists: pass --resume"):
        ResultsFile(path, resume=False, model="abc")
    g = ResultsFile(path, resume=True, model="abc")
    assert set(g.done(0.1)) == {0, 1} and g.done(0.2) == {}
    g.append(_rec(2))
    g.close()
    assert len(path.read_text().splitlines()) == 3


def test_resume_refuses_other_models_and_bad_lines(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(_rec(0, model="other")) + "\n")
    with pytest.raises(InputError, match="r.jsonl:1: a record of another model"):
        ResultsFile(path, resume=True, model="abc")
    path.write_text("{not json}\n" + json.dumps(_rec(0)) + "\n")
    with pytest.raises(InputError, match="r.jsonl:1: not a certify record"):
        ResultsFile(path, resume=True, model="abc")
    with pytest.raises(InputError, match="--resume needs --results"):
        ResultsFile(None, resume=True, model="abc")


def test_a_line_cut_short_by_a_kill_is_dropped(tmp_path):
    path = tmp_path / "r.jsonl"
    whole = json.dumps(_rec(0)) + "\n"
    path.write_text(whole + json.dumps(_rec(1))[:20])
    f = ResultsFile(path, resume=True, model="abc")
    assert set(f.done(0.1)) == {0}
    f.append(_rec(1))
    f.close()
    assert [json.loads(line)["index"] for line in path.read_text().splitlines()] == [0, 1]


def test_labels_of_resumed_records_must_match_the_data():
    check_labels([_rec(0, label=1)], [1, 2], "r.jsonl")
    with pytest.raises(InputError, match="record for sample 0 has label 1, the data says 2"):
        check_labels([_rec(0, label=1)], [2, 2], "r.jsonl")
    with pytest.raises(InputError, match="has no such sample"):
        check_labels([_rec(5)], [1], "r.jsonl")
