"""Feed one hostile input through one command, in-process (click's CliRunner: no 2 s torch import per example),
and say what is wrong with how it ended, if anything.

The property, for every command: the exit code is 0-3 (never 4, which means a bug), nothing escapes as an
exception (a traceback for the user), an error (exit 3) is one line on stderr naming the file at fault, and no
half-written output is left: a result file is absent or complete, no temporary file remains. For `run`, whose
gate fails on `error` records (exit 3 for bad input), every error record must be bad input (its exit_code 3) with a
one-line message naming the file.

Targets take the input's bytes (a spec or a model; the other file is the bundled toy one) and a fresh folder.
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from tests.fuzz.strategies import TOY, TOY_QUERY, TOY_SPEC

TIMEOUT = "2"  # seconds per verify: enough to reach branch and bound on the toy network, short for a fuzzer
VERDICT_LINES = ("sat", "unsat", "unknown", "timeout")
STANDARD_LINES = ("sat", "unsat", "unknown", "timed-out")
_WARNING_RE = re.compile(r"\S+:\d+: \w*Warning: ")  # a Python warning (its source line follows, indented)


@dataclass(frozen=True)
class Case:
    """One command line to run and what its files are: the one the input was written to (blamed by errors)."""

    args: list[str]
    blamed: Optional[list[str]]  # the paths an error message may name (None: any, as paths inside a CSV)
    results_file: Optional[Path] = None  # verify's --results-file
    run_results: Optional[Path] = None  # run's --results
    standard: bool = False  # the VNN-LIB standard form: stdout is the answer line (and assignment), or nothing
    soundness: Optional[tuple[Path, Path]] = None  # (model, spec): an unsat must survive sampling on onnxruntime


def invoke(args: list[str]):  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from verifier.cli import main

    return CliRunner().invoke(main, args, catch_exceptions=True)


def problem_with(case: Case, res, folder: Path) -> Optional[str]:  # type: ignore[no-untyped-def]
    """What breaks the property, as one short line; None when the command behaved."""
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        return f"uncaught {type(res.exception).__name__}: {str(res.exception)[:200]}"
    stderr = res.stderr
    if "Traceback" in res.output:
        return "a traceback on the output"
    code = res.exit_code
    errors = [line for line in stderr.splitlines() if line.strip()]
    if code not in (0, 1, 2, 3):
        return f"exit {code}: {(errors or [''])[-1][:300]}"
    gated = case.run_results is not None and case.run_results.exists()  # run's gate: the records say why
    if code == 3 and not gated:
        errors = [line for line in errors if not _WARNING_RE.match(line) and not line.startswith("  ")]
        if len(errors) != 1:
            return f"exit 3 with {len(errors)} error lines: {[e[:120] for e in errors[:3]]}"
        if case.blamed is not None and not any(name in errors[0] for name in case.blamed) \
                and "Usage" not in errors[0]:
            return f"exit 3 without naming the file: {errors[0][:300]}"
    if case.standard:
        first = res.stdout.split("\n", 1)[0]
        if code == 3 and res.stdout:
            return f"standard form: exit 3 but stdout holds {res.stdout[:80]!r}"
        if code in (0, 1, 2) and first not in STANDARD_LINES:
            return f"standard form: stdout starts with {first[:80]!r}"
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".verifier-") or p.suffix == ".tmp"]
    if leftovers:
        return f"temporary files left behind: {leftovers}"
    if case.results_file is not None and case.results_file.exists():
        first = case.results_file.read_text().split("\n", 1)[0]
        if first not in VERDICT_LINES:
            return f"result file starts with {first[:80]!r}"
        if code == 3:
            return "exit 3 but a result file was written"
    if case.run_results is not None:
        return _run_problem(case, code)
    if case.soundness is not None and code == 0:
        return _unsound(*case.soundness)
    return None


def _unsound(model: Path, spec_path: Path, samples: int = 256) -> Optional[str]:
    """After `unsat`: corners and random points of every input box, run on onnxruntime, must not violate the
    property. A wrong unsat is the worst bug a verifier can have."""
    import numpy as np
    import onnxruntime as ort

    from verifier.spec.vnnlib import parse_vnnlib

    spec = parse_vnnlib(spec_path)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name, shape = session.get_inputs()[0].name, [1, spec.n_inputs]
    rng = np.random.default_rng(0)
    for index, prop in enumerate(spec.properties):
        lo, hi = prop.lower.astype(np.float32), prop.upper.astype(np.float32)
        points = [lo, hi, (lo + hi) / 2] + [rng.uniform(lo, hi).astype(np.float32) for _ in range(samples)]
        for x in points:
            y = session.run(None, {name: np.clip(x, lo, hi).reshape(shape)})[0]
            if prop.violated_by(y, tol=-1e-5):  # violated with some room: not a rounding tie
                return f"UNSOUND: unsat, but x={x.tolist()} violates property {index} (y={y.reshape(-1).tolist()})"
    return None


def _run_problem(case: Case, code: int) -> Optional[str]:
    if not case.run_results.exists():
        return None if code == 3 else f"run exited {code} without writing --results"
    for line in case.run_results.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            return f"a half-written --results line: {line[:80]!r}"
        if record["verdict"] == "error":
            message = record["message"]
            if record["exit_code"] != 3:
                return f"run: an error record that is not bad input (exit_code {record['exit_code']}): {message[:300]}"
            if "\n" in message or (case.blamed is not None and not any(name in message for name in case.blamed)):
                return f"run: an error record not naming the file: {message[:300]}"
    return None


# ------------------------------------------------------------------------------------------------- targets


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def _toy(folder: Path) -> Path:
    path = folder / "toy.onnx"
    shutil.copyfile(TOY, path)
    return path


def verify_spec(data: bytes, folder: Path) -> Case:
    spec = _write(folder, "fuzz.vnnlib", data)
    results = folder / "result.txt"
    model = _toy(folder)
    return Case(["verify", str(model), str(spec), "--timeout", TIMEOUT, "--quiet", "--results-file", str(results)],
                [str(spec)], results_file=results, soundness=(model, spec))


def bounds_spec(data: bytes, folder: Path) -> Case:
    spec = _write(folder, "fuzz.vnnlib", data)
    return Case(["bounds", str(_toy(folder)), str(spec), "--json"], [str(spec)])


def check_model_spec(data: bytes, folder: Path) -> Case:
    spec = _write(folder, "fuzz.vnnlib", data)
    return Case(["check-model", str(_toy(folder)), "--spec", str(spec), "--samples", "2"], [str(spec)])


def standard_query(data: bytes, folder: Path) -> Case:
    query = _write(folder, "fuzz.vnnlib", data)
    return Case(["verify", str(query), "--network", f"toy={_toy(folder)}", "--timeout", TIMEOUT], [str(query)],
                standard=True)


def run_spec(data: bytes, folder: Path) -> Case:
    spec = _write(folder, "fuzz.vnnlib", data)
    results = folder / "r.jsonl"
    return Case(["run", "--model", str(_toy(folder)), str(spec), "--timeout", TIMEOUT, "--quiet",
                 "--results", str(results)], [str(spec)], run_results=results)


def verify_model(data: bytes, folder: Path) -> Case:
    model = _write(folder, "fuzz.onnx", data)
    spec = _write(folder, "toy.vnnlib", TOY_SPEC.encode())
    results = folder / "result.txt"
    return Case(["verify", str(model), str(spec), "--timeout", TIMEOUT, "--quiet", "--results-file", str(results)],
                [str(model)], results_file=results)


def bounds_model(data: bytes, folder: Path) -> Case:
    model = _write(folder, "fuzz.onnx", data)
    spec = _write(folder, "toy.vnnlib", TOY_SPEC.encode())
    return Case(["bounds", str(model), str(spec)], [str(model)])


def check_model_model(data: bytes, folder: Path) -> Case:
    model = _write(folder, "fuzz.onnx", data)
    return Case(["check-model", str(model), "--samples", "2", "--json"], [str(model)])


def standard_model(data: bytes, folder: Path) -> Case:
    model = _write(folder, "fuzz.onnx", data)
    query = _write(folder, "toy.vnnlib", TOY_QUERY.encode())
    return Case(["verify", str(query), "--network", f"toy={model}", "--timeout", TIMEOUT], [str(model)],
                standard=True)


def run_model(data: bytes, folder: Path) -> Case:
    model = _write(folder, "fuzz.onnx", data)
    spec = _write(folder, "toy.vnnlib", TOY_SPEC.encode())
    results = folder / "r.jsonl"
    return Case(["run", "--model", str(model), str(spec), "--timeout", TIMEOUT, "--quiet", "--results",
                 str(results)], [str(model)], run_results=results)


def run_csv(data: bytes, folder: Path) -> Case:
    csv = _write(folder, "instances.csv", data)
    _toy(folder)
    _write(folder, "toy.vnnlib", TOY_SPEC.encode())
    results = folder / "r.jsonl"
    # Errors name the CSV or a file a row names, which may be anywhere ("/", "../x"): not checked by name.
    return Case(["run", str(csv), "--timeout-scale", "0.1", "--quiet", "--results", str(results)], None,
                run_results=results)


SPEC_TARGETS: dict[str, Callable[[bytes, Path], Case]] = {
    "verify": verify_spec, "bounds": bounds_spec, "check-model": check_model_spec, "run": run_spec,
}
QUERY_TARGETS: dict[str, Callable[[bytes, Path], Case]] = {"standard": standard_query}
MODEL_TARGETS: dict[str, Callable[[bytes, Path], Case]] = {
    "verify": verify_model, "bounds": bounds_model, "check-model": check_model_model, "run": run_model,
    "standard": standard_model,
}


def try_input(target: Callable[[bytes, Path], Case], data: bytes, folder: Path) -> Optional[str]:
    """Run `target` on `data` in the empty folder `folder`; the problem found, or None."""
    case = target(data, folder)
    return problem_with(case, invoke(case.args), folder)
