"""Run settings: presets, TOML configuration and command-line values, merged with a fixed precedence.

Precedence, highest first: command-line flags > `--config FILE.toml` > `[tool.verifier]` in the nearest
pyproject.toml (the current directory, then its parents; the first pyproject.toml found is the only one read)
> the preset > the defaults of `RunSettings`. The preset itself is chosen with the same precedence.

A `--config` file holds the keys at its top level (or under `[tool.verifier]` when it is a pyproject.toml).
Keys are the `RunSettings` field names (`check_model = false` is `--no-check`); an unknown key or a value of the
wrong type is a one-line `InputError` naming the file (exit 3).

Presets (frozen data, `PRESETS`):
- `fast`: IBP then CROWN bounds plus the PGD attack, no branch and bound (`method = "crown"`, `bab = "none"`):
  a quick smoke test that decides the easy instances;
- `balanced`: the engine defaults (what `verifier verify` does);
- `complete`: the engine defaults with every instance's timeout doubled (`timeout_scale = 2.0`), for nightly
  runs that would rather wait than report `timeout`.
"""
from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, Optional

from verifier.config import BAB_MODES, DEVICES, METHODS, SEMANTICS
from verifier.errors import InputError, reading
from verifier.result import VERDICTS

EXECUTORS = ("local", "ray")
GATE_VERDICTS = tuple(v for v in VERDICTS if v != "unsat")  # what --fail-on may name

PRESETS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "fast": MappingProxyType({"method": "crown", "bab": "none"}),
    "balanced": MappingProxyType({}),
    "complete": MappingProxyType({"timeout_scale": 2.0}),
})


def preset_engine_options(name: str, values: Mapping[str, Any], given: set[str]) -> dict[str, Any]:
    """One `verify` call's method / bab / timeout with preset `name` applied where the user gave no flag
    (`given`): its timeout_scale multiplies a default timeout, never an explicit one."""
    out = dict(values)
    for key, value in PRESETS[name].items():
        if key == "timeout_scale":
            if "timeout" not in given:
                out["timeout"] = out["timeout"] * value
        elif key not in given:
            out[key] = value
    return out


@dataclass(frozen=True)
class RunSettings:
    """Everything a batch run is configured with; recorded with every result as `config`."""

    preset: str = "balanced"
    method: str = "auto"
    bab: str = "auto"
    device: str = "auto"
    threads: int = 1
    check_model: bool = True
    seed: int = 0
    timeout: Optional[float] = None  # overrides every instance's timeout (default: the CSV's, or 300 s)
    timeout_scale: float = 1.0
    jobs: int = 1
    executor: str = "local"
    ray_address: Optional[str] = None
    fail_on: tuple[str, ...] = ("sat", "error")
    min_verified: Optional[float] = None
    junit_strict: bool = False
    certificates: Optional[str] = None  # folder: each unsat's certificate (verify --certificate) goes there
    check_certificates: bool = False  # and is checked by the independent checker as it is written
    semantics: str = "real"  # real | float32: what an unsat holds for (verify --semantics)

    def engine_options(self) -> dict[str, Any]:
        """Keywords for `verifier.api.verify` (the timeout is added per instance)."""
        return {"method": self.method, "bab": self.bab, "device": self.device, "seed": self.seed,
                "check_model": self.check_model, "semantics": self.semantics, "memory_share": self.memory_share}

    @property
    def memory_share(self) -> float:
        """Each instance's part of its machine's free memory: 1/jobs where the jobs share one machine (worker
        processes, a Ray started here); a Ray cluster named by address spreads its actors over machines
        we cannot see, so each counts on its own."""
        shared = self.executor != "ray" or self.ray_address is None
        return 1.0 / self.jobs if shared else 1.0

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["fail_on"] = list(self.fail_on)
        return doc


KEYS = tuple(f.name for f in fields(RunSettings))


# ------------------------------------------------------------------------------------------------ value checks


def _choice(options: tuple[str, ...]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, str) or value not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return value
    return check


def _integer(minimum: Optional[int]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
            raise ValueError("expected an integer" + (f" >= {minimum}" if minimum is not None else ""))
        return value
    return check


def _number(low: float, high: float = math.inf, low_open: bool = True) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or value > high or value < low or (low_open and value == low):
            bound = f"> {low:g}" if low_open else f">= {low:g}"
            raise ValueError(f"expected a number {bound}" + (f" and <= {high:g}" if high != math.inf else ""))
        return float(value)
    return check


def _boolean(value: Any) -> Any:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _string(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def parse_fail_on(value: Any) -> tuple[str, ...]:
    """`sat,unknown` or a list of names; `none` (or empty) fails on no verdict."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) for v in items):
        raise ValueError("expected a list of verdicts")
    names = [v.strip() for v in items if v.strip() and v.strip() != "none"]
    bad = [v for v in names if v not in GATE_VERDICTS]
    if bad:
        raise ValueError(f"unknown verdict {bad[0]!r}; choose from {', '.join(GATE_VERDICTS)} (or none)")
    return tuple(dict.fromkeys(names))


_CHECKS: Mapping[str, Callable[[Any], Any]] = MappingProxyType({
    "preset": _choice(tuple(PRESETS)), "method": _choice(METHODS), "bab": _choice(BAB_MODES),
    "device": _choice(DEVICES), "threads": _integer(1), "check_model": _boolean, "seed": _integer(None),
    "timeout": _number(0.0), "timeout_scale": _number(0.0), "jobs": _integer(1), "executor": _choice(EXECUTORS),
    "ray_address": _string, "fail_on": parse_fail_on, "min_verified": _number(0.0, 1.0, low_open=False),
    "junit_strict": _boolean, "certificates": _string, "check_certificates": _boolean,
    "semantics": _choice(SEMANTICS),
})
assert set(_CHECKS) == set(KEYS), "every setting needs a check"


def validate(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Checked and normalised values; the first unknown key or bad value is an InputError naming `source`."""
    out = {}
    for key, value in values.items():
        if key not in _CHECKS:
            raise InputError(f"{source}: unknown key {key!r}; known keys: {', '.join(KEYS)}")
        try:
            out[key] = _CHECKS[key](value)
        except ValueError as err:
            raise InputError(f"{source}: {key} = {value!r}: {err}") from None
    return out


# ------------------------------------------------------------------------------------------------ TOML sources


def _load_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - the tomli dependency is declared for these versions
        import tomli as tomllib
    try:
        with reading(path, InputError, "config file", "a TOML file"), path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{path}: invalid TOML: {err}") from None


def _tool_table(doc: dict[str, Any], path: Path) -> dict[str, Any]:
    table = doc.get("tool", {}).get("verifier", {}) if isinstance(doc.get("tool"), dict) else {}
    if not isinstance(table, dict):
        raise InputError(f"{path}: [tool.verifier] must be a table")
    return table


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings of a `--config` file: its top level, or `[tool.verifier]` for a pyproject.toml."""
    doc = _load_toml(path)
    if path.name == "pyproject.toml":
        return validate(_tool_table(doc, path), f"{path} [tool.verifier]")
    return validate(doc, str(path))


def find_pyproject(start: Path) -> Optional[Path]:
    """The nearest pyproject.toml in `start` or one of its parents."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def read_pyproject(start: Path) -> dict[str, Any]:
    path = find_pyproject(start.resolve())
    if path is None:
        return {}
    return validate(_tool_table(_load_toml(path), path), f"{path} [tool.verifier]")


def resolve(cli: Mapping[str, Any], config_file: Optional[Path] = None, cwd: Optional[Path] = None) -> RunSettings:
    """Merge defaults < preset < pyproject < --config file < command line (only flags the user gave)."""
    command_line = validate(cli, "command line")
    config = read_config_file(config_file) if config_file is not None else {}
    project = read_pyproject(cwd if cwd is not None else Path.cwd())
    preset = command_line.get("preset", config.get("preset", project.get("preset", RunSettings.preset)))
    merged = {**PRESETS[preset], **project, **config, **command_line, "preset": preset}
    return RunSettings(**merged)
