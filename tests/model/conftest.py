"""Every model test gets its own empty graph cache, so nothing depends on (or writes to) ~/.cache."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "verifier-cache"
    monkeypatch.setenv("VERIFIER_CACHE_DIR", str(root))
    return root / "graphs"
