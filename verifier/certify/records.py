"""Per-sample records: the JSONL results file (appended and flushed record by record), resuming from it,
and which samples a run takes (--start / --n / --shard).

One line per (sample, eps): {"norm", "index", "label", "prediction", "eps", "stage", "verdict", "margin_lb",
"margin_ub", "times", "model"}; `model` is the first 16 hex digits of the ONNX file's sha256, so records of
another model are never mixed in on --resume, and records of another norm neither (a record without `norm`,
written before the field existed, is L-inf).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Optional

from verifier.errors import InputError

# Verdicts, in the order the summary lists them.
MISCLASSIFIED, FALSIFIED, VERIFIED, UNKNOWN, TIMEOUT = "misclassified", "falsified", "verified", "unknown", "timeout"
VERDICTS = (MISCLASSIFIED, FALSIFIED, VERIFIED, UNKNOWN, TIMEOUT)
FIELDS = ("index", "label", "prediction", "eps", "stage", "verdict", "margin_lb", "margin_ub", "times", "model")


def eps_key(eps: float) -> float:
    """Radii as dictionary keys: equal up to float noise of the sweep arithmetic."""
    return round(float(eps), 12)


def select(n_data: int, start: int = 0, n: Optional[int] = None, shard: Optional[tuple[int, int]] = None) -> list[int]:
    """Indices start .. start+n-1 (clipped to the data), then every K-th of those from the I-th for shard (I, K):
    the K shards of one selection are disjoint and together cover it."""
    if start < 0 or start >= n_data:
        raise InputError(f"--start {start} is outside the data set (0 .. {n_data - 1})")
    stop = n_data if n is None else min(n_data, start + n)
    indices = list(range(start, stop))
    if shard is not None:
        i, k = shard
        indices = indices[i::k]
    return indices


def _finite(v: Optional[float]) -> Optional[float]:
    return None if v is None or not math.isfinite(v) else float(v)


def make_record(index: int, label: int, prediction: int, eps: float, stage: Optional[str], verdict: str,
                margin_lb: Optional[float], margin_ub: Optional[float], times: dict[str, float],
                model: str, norm: str = "linf") -> dict[str, Any]:
    return {"norm": norm, "index": int(index), "label": int(label), "prediction": int(prediction), "eps": float(eps),
            "stage": stage, "verdict": verdict, "margin_lb": _finite(margin_lb), "margin_ub": _finite(margin_ub),
            "times": {k: round(float(v), 6) for k, v in times.items()}, "model": model}


class ResultsFile:
    """The JSONL file of records. Without --resume an existing non-empty file is an error (never replaced);
    with it, the file's records are read back (a line cut short by a kill is dropped) and new ones appended."""

    def __init__(self, path: Optional[str | os.PathLike], resume: bool, model: str, norm: str = "linf") -> None:
        self.path = Path(path) if path is not None else None
        self.model, self.norm = model, norm
        self.records: list[dict[str, Any]] = []
        if self.path is None:
            if resume:
                raise InputError("--resume needs --results FILE.jsonl (the file to continue)")
            return
        if self.path.exists() and self.path.stat().st_size > 0 and not resume:
            raise InputError(f"{self.path} exists: pass --resume to continue it, or remove it")
        if resume and self.path.exists():
            self.records = self._read()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("a", encoding="utf-8")

    def _read(self) -> list[dict[str, Any]]:
        assert self.path is not None
        text = self.path.read_text(encoding="utf-8")
        lines = text.split("\n")
        out = []
        for no, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict) or any(f not in rec for f in FIELDS):
                    raise ValueError("missing fields")
            except ValueError:
                if no == len(lines) and not text.endswith("\n"):  # the last write was cut short
                    self.path.write_text(text[: len(text) - len(line)], encoding="utf-8")
                    break
                raise InputError(f"{self.path}:{no}: not a certify record (expected JSON with {', '.join(FIELDS)})") \
                    from None
            if rec["model"] != self.model:
                raise InputError(f"{self.path}:{no}: a record of another model (sha256 {rec['model']}…, this "
                                 f"model {self.model}…); use another results file")
            if rec.get("norm", "linf") != self.norm:  # records from before the field are L-inf
                raise InputError(f"{self.path}:{no}: a record of another norm ({rec.get('norm', 'linf')}, this run "
                                 f"{self.norm}); use another results file")
            out.append(rec)
        return out

    def done(self, eps: float) -> dict[int, dict[str, Any]]:
        """The records at this radius, by sample index."""
        key = eps_key(eps)
        return {int(r["index"]): r for r in self.records if eps_key(r["eps"]) == key}

    def append(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if self.path is not None:
            self._handle.write(json.dumps(record) + "\n")
            self._handle.flush()

    def close(self) -> None:
        if self.path is not None:
            self._handle.close()


def check_labels(records: Iterable[dict[str, Any]], labels: Any, source: str) -> None:
    """Resumed records must describe the same data: the label of each recorded index must match."""
    for r in records:
        i = int(r["index"])
        if i >= len(labels) or int(labels[i]) != int(r["label"]):
            raise InputError(f"{source}: record for sample {i} has label {r['label']}, the data "
                             f"{'has no such sample' if i >= len(labels) else f'says {int(labels[i])}'}; "
                             "is this the same data set?")
