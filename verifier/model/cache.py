"""On-disk cache of converted graphs, keyed by the ONNX file's sha256, the package version and a
fingerprint of the translation code (so that a developer's edit to the loader is never hidden by a stale
entry converted by the old code, which the version alone would not tell apart).

A hit skips onnx, the opset upgrade and onnx2torch (whose import alone takes about 1.5 s).
Entries are plain dicts written with torch.save and read with weights_only=True; writes go to a
temporary file then os.replace, so a reader never sees half a file. Anything unreadable is a miss:
the caller converts again and overwrites it. Failing to write is never an error, only a lost speed-up.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

import torch

from verifier import __version__

FORMAT = 1  # bump when the translation changes what a Graph looks like for the same file
ENV_VAR = "VERIFIER_CACHE_DIR"


def cache_dir() -> Path:
    """$VERIFIER_CACHE_DIR/graphs if set, else ~/.cache/verifier/graphs (honouring $XDG_CACHE_HOME)."""
    root = os.environ.get(ENV_VAR)
    if root:
        return Path(root).expanduser() / "graphs"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "verifier" / "graphs"


# The modules whose code decides what Graph a file becomes.
TRANSLATION_MODULES = ("graph.py", "loader.py", "merge.py", "onnx_compat.py", "onnx_file.py", "pooling.py",
                       "serialize.py", "simplify.py", "translate.py")


@lru_cache(maxsize=1)
def translation_fingerprint() -> str:
    """sha256 (12 hex digits) of the translation modules' source; 'nosource' where it cannot be read."""
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    try:
        for name in TRANSLATION_MODULES:
            digest.update(name.encode() + b"\0" + (here / name).read_bytes())
    except OSError:
        return "nosource"
    return digest.hexdigest()[:12]


def entry_path(sha256: str) -> Path:
    return cache_dir() / f"{sha256}-v{__version__}-f{FORMAT}-t{translation_fingerprint()}.pt"


def read(sha256: str) -> Optional[dict[str, Any]]:
    """The stored entry, or None when absent or unreadable (a corrupt file is just a miss)."""
    path = entry_path(sha256)
    if not path.is_file():
        return None
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # truncated, garbage, or written by an incompatible torch: all mean "convert again"
        return None
    if not isinstance(entry, dict) or entry.get("sha256") != sha256 or entry.get("format") != FORMAT:
        return None
    return entry


def write(sha256: str, entry: dict[str, Any]) -> None:
    """Store atomically; silently give up if the directory is not writable."""
    path = entry_path(sha256)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            torch.save({**entry, "sha256": sha256, "format": FORMAT}, f)
        os.replace(tmp, path)
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
