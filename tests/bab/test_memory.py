"""Memory budgets follow the machine: the frontier's share of free memory, a batch ceiling from the
measured bytes per domain, and no peak reading where the device keeps none (the host)."""
from __future__ import annotations

import math

import pytest
import torch

from verifier.bab import memory
from verifier.bab.relu_split import _BatchSizer


def test_host_reports_free_memory_and_the_frontier_takes_its_share() -> None:
    free = memory.free_bytes(torch.device("cpu"))
    assert 0 < free < 1e15
    budget = memory.frontier_budget(torch.device("cpu"))
    assert budget == pytest.approx(memory.FRONTIER_SHARE["cpu"] * free, rel=0.2)  # free memory moves a little


def test_host_available_falls_back_when_proc_is_unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable(*args: object, **kwargs: object) -> None:
        raise OSError("no /proc")

    monkeypatch.setattr("builtins.open", unreadable)
    got = memory.host_available()
    assert got > 0 and math.isfinite(got)


def test_batch_peak_is_not_measured_on_the_host() -> None:
    with memory.BatchPeak(torch.device("cpu")) as peak:
        torch.ones(1000) * 2
    assert peak.bytes is None


@pytest.mark.parametrize("n,peak,free,most", [
    (100, 1e9, 8e9, 400),  # 10 MB a domain, half of 8 GB: 400
    (100, 1e9, 100e9, 4096),  # plenty of memory: the configured ceiling stays
    (10, 1e9, 1e8, 1),  # not even one fits: one at a time (out-of-memory halving takes it from there)
])
def test_batch_ceiling_fits_the_free_memory(n: int, peak: float, free: float, most: int) -> None:
    sizer = _BatchSizer(4096, deadline=math.inf)
    sizer.fit_memory(n, peak, free)
    assert sizer.most == most and sizer.next() <= most


def test_batch_ceiling_ignores_unmeasured_batches() -> None:
    sizer = _BatchSizer(256, deadline=math.inf)
    sizer.fit_memory(64, None, 0.0)
    sizer.fit_memory(64, 0.0, 1e9)
    assert sizer.most == 256
