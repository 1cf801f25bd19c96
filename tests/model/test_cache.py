"""The converted-graph cache: hits are equal graphs, skip onnx2torch, and bad files are just misses."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from onnx import helper

from tests.model.onnx_builders import init, rand, save
from verifier.model import cache as graph_cache
from verifier.model import loader
from verifier.model.loader import load_model
from verifier.model.serialize import graph_from_dict, graph_to_dict, graphs_equal


@pytest.fixture
def onnx_path(tmp_path: Path) -> Path:
    nodes = [
        helper.make_node("Sub", ["x", "m"], ["a"], name="sub"),
        helper.make_node("Flatten", ["a"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "W", "b"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["y"], name="relu"),
    ]
    inits = [init("m", rand(1, 2, 3)), init("W", rand(4, 6)), init("b", rand(4))]
    return save(tmp_path / "m.onnx", nodes, [("x", [1, 2, 3])], [("y", [1, 4])], inits)


def _no_conversion(*args, **kwargs):
    raise AssertionError("onnx2torch conversion ran on a cache hit")


def test_hit_returns_an_equal_graph_without_converting(onnx_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cold = load_model(onnx_path)
    assert graph_cache.entry_path(cold.sha256).is_file()
    monkeypatch.setattr(loader, "to_fx", _no_conversion)
    monkeypatch.setattr(loader, "verify_equivalence", _no_conversion)  # checked once, when stored
    warm = load_model(onnx_path)
    assert graphs_equal(cold.graph, warm.graph)
    assert (warm.onnx_input_name, warm.onnx_input_shape, warm.onnx_output_shape, warm.sha256) == \
        (cold.onnx_input_name, cold.onnx_input_shape, cold.onnx_output_shape, cold.sha256)


def test_unchecked_entry_is_checked_once(onnx_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = load_model(onnx_path, check=False)
    assert graph_cache.read(model.sha256)["checked"] is False
    load_model(onnx_path, check=True)
    assert graph_cache.read(model.sha256)["checked"] is True


def test_cache_disabled_writes_nothing(onnx_path: Path, cache_dir: Path) -> None:
    load_model(onnx_path, cache=False)
    assert not cache_dir.exists()


@pytest.mark.parametrize("content", [b"", b"garbage" * 100, "torch-dict-missing-keys"])
def test_corrupt_entry_is_ignored_and_rewritten(onnx_path: Path, monkeypatch: pytest.MonkeyPatch, content) -> None:
    model = load_model(onnx_path, check=False)
    entry = graph_cache.entry_path(model.sha256)
    if isinstance(content, bytes):
        entry.write_bytes(content)
    else:
        torch.save({"sha256": model.sha256, "format": graph_cache.FORMAT, "graph": {"nodes": [{}]}}, entry)
    again = load_model(onnx_path, check=False)
    assert graphs_equal(model.graph, again.graph)
    assert graph_cache.read(model.sha256) is not None  # rewritten


def test_unwritable_cache_dir_is_not_an_error(onnx_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    monkeypatch.setenv(graph_cache.ENV_VAR, str(blocker))
    assert load_model(onnx_path, check=False).graph.n_inputs == 6


def test_serialization_round_trip_is_weights_only(onnx_path: Path, tmp_path: Path) -> None:
    graph = load_model(onnx_path, cache=False).graph
    torch.save(graph_to_dict(graph), tmp_path / "g.pt")
    assert graphs_equal(graph, graph_from_dict(torch.load(tmp_path / "g.pt", weights_only=True)))


_FRESH_LOAD = """
import json, sys
from verifier.model.loader import load_model
m = load_model(sys.argv[1])
heavy = ("onnx", "onnx2torch", "onnxruntime", "torchvision")
print(json.dumps({"ops": [n.op for n in m.graph.nodes], "imported": sorted(k for k in heavy if k in sys.modules)}))
"""


def _fresh_load(path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _FRESH_LOAD, str(path)], env=os.environ.copy(),
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_fresh_process_hit_imports_no_converter(onnx_path: Path) -> None:
    load_model(onnx_path)  # fills the cache (VERIFIER_CACHE_DIR is inherited by the child)
    warm = _fresh_load(onnx_path)
    assert warm["imported"] == [] and warm["ops"] == ["input", "reshape", "linear", "relu"]


def test_changed_translation_code_misses_the_old_entry(onnx_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's edit to the loader must not be hidden by an entry the old code converted."""
    model = load_model(onnx_path, check=False)
    assert graph_cache.read(model.sha256) is not None
    monkeypatch.setattr(graph_cache, "translation_fingerprint", lambda: "edited000000")
    assert graph_cache.read(model.sha256) is None


def test_fingerprint_covers_existing_translation_modules() -> None:
    here = Path(graph_cache.__file__).resolve().parent
    assert all((here / name).is_file() for name in graph_cache.TRANSLATION_MODULES)
    assert graph_cache.translation_fingerprint() != "nosource"
