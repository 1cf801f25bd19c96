"""Presets and configuration: command line > --config > pyproject [tool.verifier] > preset > defaults."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runner.helpers import ROBUST, TOY, invoke
from verifier.errors import InputError
from verifier.runner.settings import BAB_MODES, DEVICES, METHODS, PRESETS, RunSettings, parse_fail_on, resolve


def _pyproject(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pyproject.toml"
    path.write_text('[project]\nname = "x"\n\n[tool.verifier]\n' + body)
    return path


def test_choices_match_the_engine() -> None:
    from verifier import config

    assert (METHODS, BAB_MODES, DEVICES) == (config.METHODS, config.BAB_MODES, config.DEVICES)


def test_presets_are_frozen_and_documented_values() -> None:
    assert dict(PRESETS["fast"]) == {"method": "crown", "bab": "none"}
    assert dict(PRESETS["balanced"]) == {}
    assert resolve({"preset": "complete"}, cwd=Path("/")).timeout_scale == 2.0
    with pytest.raises(TypeError):
        PRESETS["fast"]["bab"] = "auto"  # type: ignore[index]


def test_precedence_cli_over_config_over_pyproject_over_preset(tmp_path: Path) -> None:
    _pyproject(tmp_path, 'preset = "fast"\nmethod = "ibp"\nseed = 3\n')
    work = tmp_path / "sub" / "dir"  # the pyproject is found from a subfolder
    work.mkdir(parents=True)
    config = tmp_path / "run.toml"
    config.write_text('method = "alpha"\nthreads = 2\n')

    s = resolve({"method": "crown"}, config, cwd=work)
    assert (s.method, s.threads, s.seed, s.bab, s.preset) == ("crown", 2, 3, "none", "fast")
    assert resolve({}, config, cwd=work).method == "alpha"
    assert resolve({}, None, cwd=work).method == "ibp"
    # the preset is chosen with the same precedence; pyproject's method still beats the preset's
    s = resolve({"preset": "complete"}, None, cwd=work)
    assert (s.preset, s.bab, s.timeout_scale, s.method) == ("complete", "auto", 2.0, "ibp")
    assert resolve({}, None, cwd=Path("/")) == RunSettings()


def test_config_file_named_pyproject_reads_its_tool_table(tmp_path: Path) -> None:
    path = _pyproject(tmp_path / "other", 'bab = "input"\nfail_on = ["sat", "timeout"]\n')
    s = resolve({}, path, cwd=Path("/"))
    assert (s.bab, s.fail_on) == ("input", ("sat", "timeout"))


@pytest.mark.parametrize("body,message", [
    ("colour = 1\n", "unknown key 'colour'"),
    ('threads = "two"\n', "threads = 'two': expected an integer >= 1"),
    ("threads = 0\n", "expected an integer >= 1"),
    ('method = "magic"\n', "expected one of auto, ibp, crown, alpha"),
    ("min_verified = 1.5\n", "expected a number >= 0 and <= 1"),
    ('fail_on = "sat,maybe"\n', "unknown verdict 'maybe'"),
    ("check_model = 1\n", "expected true or false"),
    ("timeout = -3\n", "expected a number > 0"),
])
def test_bad_config_values_are_one_line_input_errors(tmp_path: Path, body: str, message: str) -> None:
    config = tmp_path / "run.toml"
    config.write_text(body)
    with pytest.raises(InputError) as info:
        resolve({}, config, cwd=Path("/"))
    assert str(info.value).startswith(f"{config}: ") and message in str(info.value)


def test_cli_unknown_config_key_exits_3_with_one_line(tmp_path: Path) -> None:
    _pyproject(tmp_path, "speed = 11\n")
    res = invoke("run", "--model", TOY, ROBUST)
    assert res.exit_code == 3
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "pyproject.toml [tool.verifier]: unknown key 'speed'" in lines[0]
    config = tmp_path / "bad.toml"
    config.write_text("threads = [\n")
    res = invoke("run", "--model", TOY, ROBUST, "--config", config)
    assert res.exit_code == 3 and "invalid TOML" in res.stderr
    res = invoke("run", "--model", TOY, ROBUST, "--config", tmp_path / "missing.toml")
    assert res.exit_code == 3 and "no such config file" in res.stderr
    res = invoke("run", "--model", TOY, ROBUST, "--fail-on", "sat,bogus")
    assert res.exit_code == 3 and "unknown verdict 'bogus'" in res.stderr


def test_effective_settings_are_recorded(tmp_path: Path) -> None:
    _pyproject(tmp_path, 'preset = "fast"\nseed = 7\n')
    res = invoke("run", "--model", TOY, ROBUST, "--method", "ibp", "--no-check", "--json",
                 "--results", tmp_path / "r.jsonl")
    doc = json.loads(res.stdout)
    record = json.loads((tmp_path / "r.jsonl").read_text())
    for config in (doc["config"], record["config"]):
        assert (config["preset"], config["method"], config["bab"], config["seed"], config["check_model"]) == \
            ("fast", "ibp", "none", 7, False)
    assert record["verdict"] == "unknown"  # IBP alone, no branch and bound, leaves the toy spec open


def test_fail_on_parsing() -> None:
    assert parse_fail_on("sat, timeout,sat") == ("sat", "timeout")
    assert parse_fail_on("none") == () and parse_fail_on("") == ()
    with pytest.raises(ValueError):
        parse_fail_on("unsat")


@pytest.mark.parametrize("jobs,executor,address,share", [
    (1, "local", None, 1.0),
    (4, "local", None, 0.25),  # four worker processes on this machine
    (2, "ray", None, 0.5),  # a Ray started here: its actors share this machine
    (2, "ray", "10.0.0.1:6379", 1.0),  # a cluster: actors spread over machines we cannot see
])
def test_each_job_counts_on_its_share_of_the_machine_s_memory(jobs: int, executor: str, address: str | None,
                                                                share: float) -> None:
    from verifier.config import VerifyOptions
    from verifier.runner.settings import RunSettings

    settings = RunSettings(jobs=jobs, executor=executor, ray_address=address)
    options = settings.engine_options()
    assert options["memory_share"] == pytest.approx(share)
    assert VerifyOptions(timeout=1.0, **options).memory_share == pytest.approx(share)  # verify accepts it


@pytest.mark.parametrize("share", [0.0, -0.5, 1.5])
def test_a_memory_share_outside_0_1_is_refused(share: float) -> None:
    from verifier.config import VerifyOptions

    with pytest.raises(InputError, match="memory_share"):
        VerifyOptions(memory_share=share)
