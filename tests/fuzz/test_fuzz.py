"""The fuzzer's short profile (CI): a few dozen hostile inputs per command; `bench/fuzz.py --minutes N` is the
long one. The property is in `tests.fuzz.harness`; the generators in `tests.fuzz.strategies`."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz import harness, strategies

SHORT = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.large_base_example])


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("VERIFIER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "fuzz-cache"))


def check(target, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        problem = harness.try_input(target, data, Path(folder))
    assert problem is None, problem


@pytest.mark.parametrize("name", sorted(harness.SPEC_TARGETS))
def test_hostile_vnnlib(name: str) -> None:
    @SHORT
    @given(strategies.spec_bytes())
    def fuzz(data: bytes) -> None:
        check(harness.SPEC_TARGETS[name], data)

    fuzz()


def test_hostile_vnnlib2_query() -> None:
    @SHORT
    @given(strategies.vnnlib2_texts())
    def fuzz(text: str) -> None:
        check(harness.QUERY_TARGETS["standard"], text.encode("utf-8", "surrogatepass"))

    fuzz()


@pytest.mark.parametrize("name", sorted(harness.MODEL_TARGETS))
def test_hostile_onnx(name: str) -> None:
    @SHORT
    @given(strategies.onnx_bytes())
    def fuzz(data: bytes) -> None:
        check(harness.MODEL_TARGETS[name], data)

    fuzz()


def test_hostile_instances_csv() -> None:
    @SHORT
    @given(strategies.instances_csv())
    def fuzz(data: bytes) -> None:
        check(harness.run_csv, data)

    fuzz()
