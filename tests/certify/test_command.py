"""`verifier certify` end to end through click: summary JSON, exit codes, resume, shards, sweeps, plots."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from verifier.certify import cascade
from verifier.cli import main


def invoke(tiny, *args: str):
    return CliRunner().invoke(main, ["certify", str(tiny["model"]), "--data", str(tiny["data"]), *args])


def test_json_summary(tiny):
    res = invoke(tiny, "--eps", "1/255", "--clip", "0", "1", "--cascade", "pgd,ibp,crown", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["schema"] == "verifier.certify/1" and doc["cascade"] == ["pgd", "ibp", "crown"]
    assert doc["clip"] == [0.0, 1.0] and doc["selection"]["samples"] == 24 and doc["passed"] is None
    (run,) = doc["runs"]
    assert run["eps"] == pytest.approx(1 / 255) and run["n"] == 24
    assert run["clean_accuracy"] == pytest.approx(23 / 24)  # sample 0 carries a wrong label
    assert run["counts"]["misclassified"] == 1 and sum(run["counts"].values()) == 24
    assert run["verified_after"]["ibp"] <= run["verified_after"]["crown"] == run["verified_accuracy"]
    assert run["verified_accuracy"] <= run["attack_accuracy"] <= run["clean_accuracy"]
    assert set(run["times"]) >= {"clean", "total"}


def test_threshold_sets_the_exit_code(tiny):
    args = ("--eps", "0.001", "--cascade", "ibp")
    assert invoke(tiny, *args, "--min-verified-acc", "0.9", "--json").exit_code == 0
    res = invoke(tiny, *args, "--min-verified-acc", "100%")  # one sample is misclassified
    assert res.exit_code == 2 and "below --min-verified-acc" in res.output


@pytest.mark.parametrize("args, match", [
    (("--eps", "0.1", "--norm", "l3"), "choose linf, l2 or l1"),
    (("--eps", "0.1", "--eps-sweep", "0:0.1:2"), "exactly one of"),
    ((), "exactly one of"),
    (("--eps", "x"), "cannot read 'x'"),
    (("--eps", "0.1", "--cascade", "ibp,lp"), "unknown stage"),
    (("--eps", "0.1", "--mean", "0.5"), "--mean and --std go together"),
    (("--eps", "0.1", "--clip", "1", "0"), "lower end is above"),
    (("--eps", "0.1", "--plot", "c.png"), "--plot draws the curve of an --eps-sweep"),
    (("--eps", "0.1", "--min-verified-acc", "1.5"), "fraction in"),
    (("--eps", "0.1", "--start", "99"), "outside the data set"),
    (("--eps", "0.1", "--mean", "0.1,0.2", "--std", "1,1"), "--mean has 2 values"),
    (("--eps", "0.1", "--resume"), "--resume needs --results"),
])
def test_bad_input_exits_3_with_one_line(tiny, args, match):
    res = invoke(tiny, *args)
    assert res.exit_code == 3, res.output
    assert match in res.output and "Traceback" not in res.output


def test_missing_data_file_exits_3(tiny, tmp_path):
    res = CliRunner().invoke(main, ["certify", str(tiny["model"]), "--data", str(tmp_path / "no.npz"), "--eps", "0.1"])
    assert res.exit_code == 3 and "no.npz: no such file" in res.output


def test_resume_skips_recorded_samples(tiny, tmp_path, monkeypatch):
    out = tmp_path / "r.jsonl"
    args = ("--eps", "0.05", "--cascade", "pgd,ibp", "--results", str(out), "--json")
    assert invoke(tiny, *args, "--n", "10").exit_code == 0
    first = out.read_text().splitlines()
    assert len(first) == 10
    seen: list[int] = []
    original = cascade.certify_chunk

    def spy(net, x, labels, indices, *rest):
        seen.extend(indices)
        return original(net, x, labels, indices, *rest)

    monkeypatch.setattr(cascade, "certify_chunk", spy)
    res = invoke(tiny, *args, "--n", "16", "--resume")
    assert res.exit_code == 0, res.output
    assert seen == list(range(10, 16))  # only what the file did not hold
    lines = out.read_text().splitlines()
    assert lines[:10] == first and sorted(json.loads(l)["index"] for l in lines) == list(range(16))
    assert json.loads(res.output)["runs"][0]["n"] == 16  # the summary covers old and new records
    assert invoke(tiny, *args, "--n", "16").exit_code == 3  # without --resume the file is not replaced


def test_shards_cover_the_data_once(tiny, tmp_path):
    indices = []
    for i in range(3):
        out = tmp_path / f"s{i}.jsonl"
        res = invoke(tiny, "--eps", "0.01", "--cascade", "ibp", "--shard", f"{i}/3", "--results", str(out), "--json")
        assert res.exit_code == 0, res.output
        indices += [json.loads(line)["index"] for line in out.read_text().splitlines()]
    assert sorted(indices) == list(range(24))


def test_sweep_table_and_normalisation(tiny):
    res = invoke(tiny, "--eps-sweep", "0:2/255:3", "--mean", "0", "--std", "1", "--cascade", "ibp,crown",
                 "--report", "tightness")
    assert res.exit_code == 0, res.output
    assert "verified accuracy" in res.output and "1/255" in res.output and "ReLU states" in res.output
    doc = json.loads(invoke(tiny, "--eps-sweep", "0:2/255:3", "--cascade", "ibp", "--report", "tightness",
                            "--json").output)
    accs = [r["verified_accuracy"] for r in doc["runs"]]
    assert len(accs) == 3 and accs[0] == pytest.approx(23 / 24) and accs == sorted(accs, reverse=True)
    t = doc["runs"][1]["tightness"]
    assert 0 < t["mean"] <= 1 and len(t["relu_states"]) == 2
    assert all(abs(sum(layer["ibp"].values()) - 1) < 1e-9 for layer in t["relu_states"])


def test_plot_without_matplotlib_is_a_clear_error(tiny, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    res = invoke(tiny, "--eps-sweep", "0:0.01:2", "--plot", str(tmp_path / "c.png"))
    assert res.exit_code == 3 and "pip install 'verifier[plot]'" in res.output
    assert not (tmp_path / "c.png").exists()


def test_plot_is_written(tiny, tmp_path):
    pytest.importorskip("matplotlib")
    res = invoke(tiny, "--eps-sweep", "0:0.02:3", "--cascade", "ibp", "--plot", str(tmp_path / "c.png"))
    assert res.exit_code == 0, res.output
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_help_does_not_import_torch():
    code = ("import sys\nfrom verifier.cli import main\n"
            "try:\n    main(['certify', '--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules and 'numpy' not in sys.modules, 'heavy import'\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "--eps-sweep" in res.stdout


def test_npy_pair_through_the_command(tiny, tmp_path):
    np.save(tmp_path / "x.npy", tiny["x"])
    np.save(tmp_path / "y.npy", tiny["y"])
    res = CliRunner().invoke(main, ["certify", str(tiny["model"]), "--data", str(tmp_path / "x.npy"), "--labels",
                                    str(tmp_path / "y.npy"), "--eps", "0.001", "--cascade", "ibp", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["runs"][0]["verified_accuracy"] == pytest.approx(23 / 24)


def test_data_that_does_not_fit_the_model_exits_3(tiny, tmp_path):
    np.savez(tmp_path / "wide.npz", x=np.zeros((3, 5)), y=np.zeros(3, dtype=int))
    res = CliRunner().invoke(main, ["certify", str(tiny["model"]), "--data", str(tmp_path / "wide.npz"),
                                    "--eps", "0.1"])
    assert res.exit_code == 3 and "takes 4 inputs" in res.output


@pytest.mark.parametrize("option", ["--results", "--plot"])
def test_output_path_that_cannot_be_made_is_exit_3(tiny, tmp_path, option):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    target = blocker / "out" / "x.jsonl"
    res = invoke(tiny, "--eps-sweep", "0:0.01:2", "--cascade", "ibp", option, str(target))
    assert res.exit_code == 3, res.output
    (line,) = res.output.strip().splitlines()
    assert line.startswith("error: ") and str(target) in line and "Traceback" not in res.output
