"""Shared bits of the runner tests: the toy model and specs, CLI invocation, small plans on disk."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Iterable

from click.testing import CliRunner, Result

from verifier.cli import main

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "models" / "toy_mlp.onnx"
ROBUST = ROOT / "specs" / "toy_robust.vnnlib"  # unsat on TOY
FALSIFIABLE = ROOT / "specs" / "toy_falsifiable.vnnlib"  # sat on TOY


def invoke(*args: Any) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def make_specs(folder: Path, n: int) -> list[Path]:
    """n spec files: even numbers are copies of the unsat spec, odd ones of the sat spec."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"spec_{i:03d}.vnnlib"
        shutil.copyfile(FALSIFIABLE if i % 2 else ROBUST, path)
        paths.append(path)
    return paths


def write_csv(path: Path, rows: Iterable[tuple[Any, ...]]) -> Path:
    path.write_text("".join(",".join(str(c) for c in row) + "\n" for row in rows))
    return path


def toy_csv(folder: Path) -> Path:
    """instances.csv with relative paths: model/toy.onnx with specs robust, falsifiable, robust."""
    (folder / "model").mkdir(parents=True, exist_ok=True)
    (folder / "spec").mkdir(exist_ok=True)
    shutil.copyfile(TOY, folder / "model" / "toy.onnx")
    shutil.copyfile(ROBUST, folder / "spec" / "robust.vnnlib")
    shutil.copyfile(FALSIFIABLE, folder / "spec" / "falsifiable.vnnlib")
    rows = [("model/toy.onnx", "spec/robust.vnnlib", 20), ("model/toy.onnx", "spec/falsifiable.vnnlib", 20),
            ("model/toy.onnx", "spec/robust.vnnlib", 20)]
    return write_csv(folder / "instances.csv", rows)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]
