"""`--results-dir DIR`: per-instance VNN-COMP result files, and a counterexample file for each `sat`.

Names: `NNNN_<model stem>_<spec stem>.txt` (the VNN-COMP result: verdict, then the assignment after `sat`) and,
for `sat`, `NNNN_<model stem>_<spec stem>.counterexample` (the assignment alone, as VNN-COMP's
counterexample files). NNNN is the instance index, so names never collide. Both are written atomically
before the instance's record, so a recorded instance always has its files.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from verifier.result import SAT, Counterexample, Result
from verifier.runner.instances import SPEC_SUFFIXES


def stem(record: Mapping[str, Any]) -> str:
    spec = Path(record["vnnlib"]).name
    for suffix in sorted(SPEC_SUFFIXES, key=len, reverse=True):
        if spec.endswith(suffix):
            spec = spec[: -len(suffix)]
            break
    name = f"{record['index']:04d}_{Path(record['onnx']).stem}_{spec}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def counterexample_of(record: Mapping[str, Any]) -> Counterexample | None:
    cex = record.get("counterexample")
    if not cex:
        return None
    return Counterexample(tuple(cex["x"]), tuple(cex["y"]), cex.get("property", 0), cex.get("clause", 0))


def write_result_files(directory: Path, record: Mapping[str, Any]) -> None:
    from verifier.report.vnncomp import format_counterexample, write_result_file

    directory.mkdir(parents=True, exist_ok=True)
    cex = counterexample_of(record)
    result = Result(record["verdict"], counterexample=cex)
    base = directory / stem(record)
    write_result_file(str(base.with_name(base.name + ".txt")), result)
    if record["verdict"] == SAT and cex is not None:
        write_text_atomic(base.with_name(base.name + ".counterexample"), format_counterexample(cex.x, cex.y) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and os.replace, so a killed run never leaves half a file."""
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=".verifier-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, str(path))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
