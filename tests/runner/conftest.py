"""Every runner test gets its own working directory (no pyproject.toml above it to pick settings from) and a
graph cache under pytest's base temp folder, shared by the tests so that the toy model converts once."""
import pytest


@pytest.fixture(autouse=True)
def _isolated(tmp_path, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("VERIFIER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "graph-cache"))
    monkeypatch.chdir(tmp_path)
