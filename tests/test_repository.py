"""The repository holds sources, not build artefacts (issue 14: a committed wheel in the root)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTEFACTS = (".whl", ".egg", ".pyc", ".so", ".tar.gz")


def test_no_build_artefacts_are_tracked() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert [f for f in files if f.endswith(ARTEFACTS)] == []
