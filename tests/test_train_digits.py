"""models/train_digits.py is byte-reproducible (issue 14): two trainings give the same parameters, exactly."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
SCRIPT = Path(__file__).resolve().parents[1] / "models" / "train_digits.py"


def load_script():
    spec = importlib.util.spec_from_file_location("train_digits", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_short_certified_trainings_are_identical(tmp_path: Path) -> None:
    script = load_script()
    x_train, _, y_train, _ = script.load_split()
    x, y = x_train[:128], y_train[:128]
    paths = []
    for run in range(2):
        mlp = script.train(x, y, certified=True, epochs=2)
        (tmp_path / str(run)).mkdir()
        paths.append(tmp_path / str(run) / "digits.onnx")  # the file's stem names the graph
        script.export_onnx(mlp, paths[-1])
    assert paths[0].read_bytes() == paths[1].read_bytes()
