"""The plan of a batch run: VNN-COMP instances.csv rows, or one model with many specs.

instances.csv (VNN-COMP): one row per instance, `onnx,vnnlib,timeout`, no header (a literal
`onnx,vnnlib,timeout` first row is skipped); paths relative to the CSV's folder; blank lines and rows starting
with `#` are ignored. A malformed row is an InputError `FILE:LINE: what is wrong` before anything runs; a file
that is missing is not: that instance becomes an `error` record and the run goes on.
"""
from __future__ import annotations

import csv
import glob
import hashlib
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Sequence

from verifier.errors import InputError, reading

SPEC_SUFFIXES = (".vnnlib", ".vnnlib.gz")
DEFAULT_TIMEOUT = 300.0  # seconds, for `--model` instances without --timeout (verify's default)
_HEADER = ("onnx", "vnnlib", "timeout")


@dataclass(frozen=True)
class Instance:
    """One (model, spec, timeout) to verify. `onnx`/`vnnlib` are the names as written (CSV or command line):
    they name the instance in records and reports; `*_path` are what the worker opens."""

    index: int
    onnx: str
    vnnlib: str
    onnx_path: str
    vnnlib_path: str
    timeout: float
    onnx_sha256: Optional[str] = None  # filled by `fingerprint`; None when the file cannot be read
    vnnlib_sha256: Optional[str] = None

    @property
    def key(self) -> tuple[int, str, str, Optional[str], Optional[str]]:
        """What `--resume` matches a recorded instance by."""
        return (self.index, self.onnx, self.vnnlib, self.onnx_sha256, self.vnnlib_sha256)


def _timeout(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{where}: timeout {text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{where}: timeout must be a positive number of seconds, got {text!r}")
    return value


def read_instances_csv(path: Path) -> list[Instance]:
    """Every instance of a VNN-COMP instances.csv, paths resolved against its folder."""
    try:
        with reading(path, InputError, "instances file", "an instances.csv"), \
                path.open(newline="", encoding="utf-8") as fh:
            rows = list(_rows(csv.reader(fh), path))
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not a text file (byte {err.start} is not UTF-8)") from None
    except csv.Error as err:
        raise InputError(f"{path}: not a CSV file ({err})") from None
    if not rows:
        raise InputError(f"{path}: no instances (expected rows `onnx,vnnlib,timeout`)")
    base = path.parent
    return [Instance(i, onnx, spec, str(base / onnx), str(base / spec), timeout)
            for i, (onnx, spec, timeout) in enumerate(rows)]


def _rows(reader, path: Path):  # type: ignore[no-untyped-def]
    for row in reader:
        where = f"{path}:{reader.line_num}"
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if reader.line_num == 1 and tuple(c.lower() for c in cells) == _HEADER:
            continue
        if len(cells) != 3:
            raise InputError(f"{where}: expected 3 columns (onnx, vnnlib, timeout), got {len(cells)}")
        if not cells[0] or not cells[1]:
            raise InputError(f"{where}: empty {'onnx' if not cells[0] else 'vnnlib'} path")
        if "\0" in cells[0] + cells[1]:
            raise InputError(f"{where}: a path with a NUL character (no file can have that name)")
        yield cells[0], cells[1], _timeout(cells[2], where)


def expand_specs(args: Sequence[str]) -> list[str]:
    """Spec files from files, folders (every *.vnnlib / *.vnnlib.gz inside, sorted) and glob patterns.

    A path that does not exist and is no pattern is kept: it becomes an `error` record, like a missing CSV file.
    """
    specs: list[str] = []
    for arg in args:
        if os.path.isdir(arg):
            found = sorted(os.path.join(arg, n) for n in os.listdir(arg) if n.endswith(SPEC_SUFFIXES))
            if not found:
                raise InputError(f"{arg}: no .vnnlib files in this folder")
            specs += found
        elif os.path.exists(arg) or not glob.has_magic(arg):
            specs.append(arg)
        else:
            found = sorted(glob.glob(arg, recursive=True))
            if not found:
                raise InputError(f"{arg}: the pattern matches no file")
            specs += found
    if not specs:
        raise InputError("no specs given: pass spec files, folders or glob patterns after --model NET.onnx")
    return specs


def model_instances(model: str, specs: Sequence[str]) -> list[Instance]:
    """`--model NET SPECS…`: one instance per spec, in the order given, with the default timeout."""
    return [Instance(i, model, spec, model, spec, DEFAULT_TIMEOUT) for i, spec in enumerate(expand_specs(specs))]


def sha256_file(path: str) -> Optional[str]:
    """Hex digest of the file's bytes, or None when it cannot be read (the worker reports why)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def fingerprint(instances: Sequence[Instance], timeout: Optional[float], scale: float) -> list[Instance]:
    """Instances with both files' sha256 (each file hashed once) and the effective timeout:
    `timeout` when given (it overrides the CSV's), times `scale`."""
    cache: dict[str, Optional[str]] = {}

    def sha(path: str) -> Optional[str]:
        if path not in cache:
            cache[path] = sha256_file(path)
        return cache[path]

    return [replace(inst, onnx_sha256=sha(inst.onnx_path), vnnlib_sha256=sha(inst.vnnlib_path),
                    timeout=(inst.timeout if timeout is None else timeout) * scale) for inst in instances]
