"""Process-wide tuning for the engine's commands (the CLI and bench scripts call it; the Python API
leaves a host program's process alone).

Bounding allocates and frees tensors of tens of megabytes in every step of a backward pass. glibc's
malloc serves blocks that large with fresh mmap()s and returns them on free(), so each new tensor
pays page faults on every page it touches: on ACAS Xu input splitting (2048 boxes a batch) that was
most of the time of the relu backward step. Raising the mmap and trim thresholds keeps freed blocks
in the heap for the next step: 58k → 91k boxes in 30 s on 3_3 property 2, one thread.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1  # glibc mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
_KEEP = 1 << 30  # blocks up to 1 GiB from the heap; up to 1 GiB of free heap top kept


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to reuse freed large blocks instead of unmapping them. True if it agreed;
    False elsewhere (other platforms and C libraries), where nothing changes."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # no libc to load, or one without mallopt (musl)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt(_M_MMAP_THRESHOLD, _KEEP) == 1 and mallopt(_M_TRIM_THRESHOLD, _KEEP) == 1


def tune_process(threads: int) -> None:
    """The engine's process settings: torch's thread count (small matmuls run fastest on few threads
    and degrade badly when cores are shared) and malloc's reuse of large blocks."""
    import torch

    torch.set_num_threads(max(1, threads))
    keep_freed_memory()
