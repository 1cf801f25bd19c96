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


def test_frontier_budget_takes_the_search_s_share(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "free_bytes", lambda device: 8e9)
    whole = memory.frontier_budget(torch.device("cpu"))
    assert whole == memory.FRONTIER_SHARE["cpu"] * 8e9
    assert memory.frontier_budget(torch.device("cpu"), share=0.25) == pytest.approx(whole / 4)


def test_host_available_falls_back_when_proc_is_unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable(*args: object, **kwargs: object) -> None:
        raise OSError("no /proc")

    monkeypatch.setattr("builtins.open", unreadable)
    got = memory.host_available()
    assert got > 0 and math.isfinite(got)


def test_batch_peak_on_the_host_sees_a_batch_s_temporaries() -> None:
    """A 200 MB temporary made and freed inside the batch shows in its peak (Linux: VmHWM reset per batch)."""
    if memory._status_bytes("VmHWM") is None or not memory._reset_peak_rss():
        pytest.skip("no /proc/self peak resident set here")
    with memory.BatchPeak(torch.device("cpu")) as peak:
        big = torch.ones(50_000_000)  # 200 MB, touched
        del big
    assert peak.bytes is not None and peak.bytes >= 150e6
    with memory.BatchPeak(torch.device("cpu")) as small:
        torch.ones(1000) * 2
    assert small.bytes is not None and small.bytes < 50e6  # the earlier peak was reset


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
