"""Device memory housekeeping shared by the branch-and-bound drivers."""
from __future__ import annotations

import torch


def release_cached_memory() -> None:
    """Give the CUDA caching allocator's free blocks back after an out-of-memory error, so that the
    smaller retry batch does not fail on fragmentation alone."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
