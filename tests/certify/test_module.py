"""`verifier.certify_module`: a torch module certified in memory gives the same verdicts as `verifier certify`
on the ONNX file it was built from, leaves the module's mode alone, and reports bad arguments as InputError."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from onnx import numpy_helper
from torch import nn

import verifier
from verifier.cli import main
from verifier.errors import InputError

MODELS = Path(__file__).resolve().parents[2] / "models"


def digits_cnn(path: Path) -> nn.Sequential:
    """The digits CNN of models/train_digits.py rebuilt in torch from the weights in its ONNX file."""
    w = {t.name: torch.as_tensor(numpy_helper.to_array(t).copy()) for t in onnx.load(str(path)).graph.initializer}
    net = nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 8, 3, 1, 1), nn.ReLU(), nn.Conv2d(8, 16, 4, 2, 1),
                        nn.ReLU(), nn.Flatten(), nn.Linear(256, 10))
    with torch.no_grad():
        for layer, k in ((net[1], 0), (net[3], 2), (net[6], 5)):
            layer.weight.copy_(w[f"W{k}"])
            layer.bias.copy_(w[f"b{k}"])
    return net


@pytest.mark.parametrize("norm, eps", [("linf", "0.03"), ("l2", "0.3")])
def test_module_matches_the_cli_on_its_onnx_file(tmp_path, norm, eps):
    path, data = MODELS / "digits_cnn_ibp.onnx", MODELS / "digits_test.npz"
    with np.load(data) as d:
        x, y = d["x"][:40], d["y"][:40]
    out = tmp_path / "r.jsonl"
    args = ["--eps", eps, "--norm", norm, "--clip", "0", "1", "--cascade", "pgd,ibp,crown", "--n", "40"]
    res = CliRunner().invoke(main, ["certify", str(path), "--data", str(data), *args, "--json", "--results", str(out)])
    assert res.exit_code == 0, res.output
    cli = json.loads(res.output)["runs"][0]
    cli_records = sorted((json.loads(line) for line in out.read_text().splitlines()), key=lambda r: r["index"])
    net = digits_cnn(path).train()
    doc = verifier.certify_module(net, torch.as_tensor(x), torch.as_tensor(y), float(eps), norm=norm,
                                  cascade="pgd,ibp,crown", clip=(0, 1))
    assert net.training  # the mode is restored after the export
    run = doc["runs"][0]
    assert doc["model"] == "<module>" and doc["norm"] == norm and len(doc["records"]) == 40
    for key in ("clean_accuracy", "attack_accuracy", "verified_accuracy", "counts"):
        assert run[key] == cli[key], key
    assert [r["verdict"] for r in doc["records"]] == [r["verdict"] for r in cli_records]


@pytest.mark.parametrize("kwargs, match", [
    ({"eps": -1.0}, "eps must be"),
    ({"eps": 0.1, "norm": "l7"}, "choose linf"),
    ({"eps": 0.1, "mean": [0.5]}, "go together"),
])
def test_bad_arguments_raise_input_error(kwargs, match):
    net = nn.Sequential(nn.Linear(4, 3))
    with pytest.raises(InputError, match=match):
        verifier.certify_module(net, np.zeros((2, 4)), np.zeros(2, dtype=int), **kwargs)
