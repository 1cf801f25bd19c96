"""Device memory housekeeping shared by the branch-and-bound drivers: how much memory is free on the device
a search runs on, and the budgets derived from it (the frontier's, a batch's), so that limits follow the
machine (an 80 GB GPU, a 7 GB CI runner) instead of constants tuned on one of them."""
from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from typing import Optional

import torch

# Shares of the memory free when a search starts that its frontier (the open domains stored) may fill:
# a GPU is taken to be the search's own, a host is shared with other processes (`run --jobs`).
FRONTIER_SHARE = {"cuda": 0.4, "cpu": 0.25}
# Share of the memory free after a batch that the next batch's temporaries may take.
BATCH_SHARE = 0.5
HOST_FALLBACK = 8e9  # bytes assumed free where the host does not say


def release_cached_memory() -> None:
    """Give the CUDA caching allocator's free blocks back after an out-of-memory error, so that the
    smaller retry batch does not fail on fragmentation alone."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def free_bytes(device: torch.device) -> float:
    """Bytes new tensors on `device` can take now: on CUDA the device's free memory plus the blocks
    torch's caching allocator holds unused; on the host, the kernel's MemAvailable."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return float(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    return host_available()


def host_available() -> float:
    """MemAvailable from /proc/meminfo (Linux), else the free physical pages, else HOST_FALLBACK."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):
        return HOST_FALLBACK


def frontier_budget(device: torch.device, share: float = 1.0) -> float:
    """Bytes a search's stored frontier may fill: FRONTIER_SHARE of what is free on `device` now, times
    `share`, the part of the device this search may count on (1/N when N searches start on one host
    together: each sees the same free memory)."""
    return FRONTIER_SHARE["cuda" if device.type == "cuda" else "cpu"] * free_bytes(device) * share


class SearchSlot:
    """A running search's entry in a per-user folder of the searches under way on each device, so that
    searches started apart (two `verify` processes, a CI matrix on one runner, `run --jobs`) split the
    memory free between them: each sees the same free memory when it measures, and two oval21 searches
    each counting on all of it had one killed by the kernel at 14 GB. `with SearchSlot(device) as slot:
    ... slot.share()`. Entries of processes that died without removing theirs are skipped and removed;
    where the folder cannot be written, or off POSIX (no harmless liveness probe), the search counts on
    itself alone (share 1)."""

    def __init__(self, device: torch.device, folder: Optional[Path] = None) -> None:
        self.folder = folder if folder is not None else Path(tempfile.gettempdir()) / f"verifier-searches-{_uid()}"
        self.key = str(device).replace(":", "")  # cpu, cuda0: one host, one GPU
        self.path: Optional[Path] = None

    def __enter__(self) -> "SearchSlot":
        if os.name != "posix":  # os.kill(pid, 0) would end the process on Windows
            return self
        try:
            self.folder.mkdir(mode=0o700, exist_ok=True)
            path = self.folder / f"{self.key}.{os.getpid()}.{uuid.uuid4().hex}"
            path.touch()
            self.path = path
        except OSError:
            self.path = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None

    def share(self) -> float:
        """1 / the searches under way on this device, this one included."""
        if self.path is None:
            return 1.0
        try:
            names = [p.name for p in self.folder.iterdir()]
        except OSError:
            return 1.0
        live = 0
        for name in names:
            key, _, rest = name.partition(".")
            pid = rest.partition(".")[0]
            if key != self.key or not pid.isdigit():
                continue
            if _alive(int(pid)):
                live += 1
            else:
                (self.folder / name).unlink(missing_ok=True)
        return 1.0 / max(live, 1)


def _uid() -> str:
    return str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")


def _alive(pid: int) -> bool:
    """Whether process `pid` exists (signal 0 checks without sending; a process of another user exists)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, as another user's
        return True
    return True


class BatchPeak:
    """The most memory one batch's work took, above what was in use before it (`with BatchPeak(device) as
    peak: ...; peak.bytes`): on CUDA from torch's allocator; on a Linux host from the process's peak resident
    set (VmHWM, reset before the batch through /proc/self/clear_refs), where torch keeps no count and running
    out means the kernel kills the process (an oval21 search grew to 12 GB); None where neither is available."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.bytes: Optional[float] = None
        self._base = 0.0
        self._host = False

    def __enter__(self) -> "BatchPeak":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = float(torch.cuda.memory_allocated(self.device))
        else:
            rss = _status_bytes("VmRSS")
            self._host = rss is not None and _reset_peak_rss()
            self._base = rss or 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            return
        if self.device.type == "cuda":
            self.bytes = float(torch.cuda.max_memory_allocated(self.device)) - self._base
        elif self._host:
            peak = _status_bytes("VmHWM")
            self.bytes = None if peak is None else max(0.0, peak - self._base)


def _reset_peak_rss() -> bool:
    """Reset this process's peak resident set (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _status_bytes(field: str) -> Optional[float]:
    """A `kB` field of /proc/self/status (VmRSS, VmHWM) in bytes; None where there is none."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return float(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
