"""Result records and the append-only results file (`--results FILE.jsonl`, or CSV for a `.csv` suffix).

One record per instance, written by the main process only, as one line in one write, flushed and fsynced
when the instance ends. A run killed at any moment (even SIGKILL) therefore leaves complete records plus at
most one torn last line; `--resume` discards that line (truncating the file to the last complete record)
and skips every instance already recorded, matched by `Instance.key` (row index, onnx and vnnlib names as
written, sha256 of both files), so no instance is ever recorded twice.

Record fields (JSONL: one object a line; CSV: one column each, nested values as JSON text, null as empty):
index, onnx, vnnlib, timeout (effective seconds), verdict, exit_code (`verify`'s code for this verdict), method,
margin, time (engine seconds: model load when charged, spec, verify), wall (seconds from the instance's start
to its record), message, counterexample ({x, y, property, clause} for sat), config (the effective settings),
version, torch, device, onnx_sha256, vnnlib_sha256, finished (UTC time).
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from verifier import __version__
from verifier.errors import InputError
from verifier.result import Result

FIELDS = ("index", "onnx", "vnnlib", "timeout", "verdict", "exit_code", "method", "margin", "time", "wall",
          "message", "counterexample", "config", "version", "torch", "device", "onnx_sha256", "vnnlib_sha256",
          "finished")


def _finite(value: Optional[float]) -> Optional[float]:
    return None if value is None or not math.isfinite(value) else float(value)


def make_record(inst: Any, settings: Any, result: Result, *, engine: float, wall: float, device: str,
                torch_version: Optional[str]) -> dict[str, Any]:
    """The record of one instance (`inst`: an Instance, `settings`: the RunSettings it ran with)."""
    doc = result.to_json()
    return {
        "index": inst.index, "onnx": inst.onnx, "vnnlib": inst.vnnlib, "timeout": inst.timeout,
        "verdict": result.verdict, "exit_code": doc["exit_code"], "method": result.method,
        "margin": _finite(result.margin), "time": round(engine, 6), "wall": round(wall, 6),
        "message": result.message, "counterexample": doc["counterexample"], "config": settings.to_dict(),
        "version": __version__, "torch": torch_version, "device": device,
        "onnx_sha256": inst.onnx_sha256, "vnnlib_sha256": inst.vnnlib_sha256,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **({"certificate": doc["certificate"]} if "certificate" in doc else {}),
    }


def record_key(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """The same tuple as `Instance.key`, read from a record."""
    return (record["index"], record["onnx"], record["vnnlib"], record["onnx_sha256"], record["vnnlib_sha256"])


# ------------------------------------------------------------------------------------------------ line formats


def _json_line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n"


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return " ".join(str(value).splitlines())  # one physical line per record, whatever a name contains


def _csv_line(record: Mapping[str, Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([_csv_cell(record[f]) for f in FIELDS])
    return buf.getvalue()


def _optional(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    return lambda text: None if text == "" else convert(text)


_CSV_DECODE: Mapping[str, Callable[[str], Any]] = {
    "index": int, "exit_code": int, "timeout": float, "time": float, "wall": float, "margin": _optional(float),
    "counterexample": _optional(json.loads), "config": _optional(json.loads), "method": _optional(str),
    "torch": _optional(str), "onnx_sha256": _optional(str), "vnnlib_sha256": _optional(str),
}


def _parse_json(line: str) -> dict[str, Any]:
    record = json.loads(line)
    if not isinstance(record, dict) or any(f not in record for f in ("index", "onnx", "vnnlib", "verdict")):
        raise ValueError("not a result record")
    record_key(record)
    return record


def _parse_csv(line: str) -> dict[str, Any]:
    cells = next(csv.reader([line]))
    if len(cells) != len(FIELDS):
        raise ValueError(f"expected {len(FIELDS)} columns, got {len(cells)}")
    return {f: _CSV_DECODE.get(f, str)(c) for f, c in zip(FIELDS, cells)}


CSV_HEADER = ",".join(FIELDS) + "\n"


class ResultsFile:
    """The append-only results file; `open` returns the records already in it (for --resume)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.is_csv = path.suffix.lower() == ".csv"
        self._fh: Optional[Any] = None

    def open(self, resume: bool) -> list[dict[str, Any]]:
        """Open for appending. An existing non-empty file needs `resume` (else InputError, exit 3)."""
        previous: list[dict[str, Any]] = []
        exists = self.path.is_file() and self.path.stat().st_size > 0
        if self.path.exists() and not self.path.is_file():
            raise InputError(f"{self.path}: is not a regular file; choose another --results path")
        if exists and not resume:
            raise InputError(f"{self.path} already holds results: pass --resume to continue that run, "
                             "or choose another --results path")
        if exists:
            previous = self._read_and_repair()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "ab")
        if self.is_csv and self._fh.tell() == 0:
            self._write(CSV_HEADER)
        return previous

    def rewrite(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Replace the file's records with `records` (atomically: a kill leaves the old file or the new one),
        then keep appending to it: how `--resume` drops the records of instances whose files changed."""
        import tempfile

        self.close()
        body = (CSV_HEADER if self.is_csv else "") + "".join(
            _csv_line(r) if self.is_csv else _json_line(r) for r in records)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(body.encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self._fh = open(self.path, "ab")

    def append(self, record: Mapping[str, Any]) -> None:
        """Write one record as one line, then flush and fsync: on disk before the next instance is reported."""
        self._write(_csv_line(record) if self.is_csv else _json_line(record))

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def _write(self, text: str) -> None:
        assert self._fh is not None, "open() first"
        self._fh.write(text.encode("utf-8"))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def _read_and_repair(self) -> list[dict[str, Any]]:
        """The complete records; a torn or unparsable last line is discarded and cut off the file."""
        data = self.path.read_bytes()
        lines = data.split(b"\n")  # the last element is b"" when the file ends with a newline, else torn
        records: list[dict[str, Any]] = []
        offset = 0
        good_end = 0
        complete = lines[:-1]
        for number, raw in enumerate(complete, start=1):
            offset += len(raw) + 1
            try:
                text = raw.decode("utf-8")
                if self.is_csv and number == 1:
                    if text + "\n" != CSV_HEADER:
                        raise InputError(f"{self.path}:1: not a verifier results CSV (the header differs)")
                else:
                    records.append(_parse_csv(text) if self.is_csv else _parse_json(text))
            except (ValueError, KeyError, TypeError, csv.Error, StopIteration) as err:
                if number == len(complete) and not lines[-1]:
                    break  # the last line: torn by a kill during its write
                raise InputError(f"{self.path}:{number}: not a result record ({err}); "
                                 "fix or remove that line, or choose another --results path") from None
            good_end = offset
        if good_end < len(data):
            os.truncate(self.path, good_end)
        return records
