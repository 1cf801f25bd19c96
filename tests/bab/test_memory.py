"""Memory budgets follow the machine: the frontier's share of free memory, a batch ceiling from the
measured bytes per domain, and no peak reading where the device keeps none (the host)."""
from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

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


# --- searches started apart split the memory free between them -----------------------------------------

def test_search_slots_on_one_device_split_it(tmp_path: Path) -> None:
    cpu, gpu = torch.device("cpu"), torch.device("cuda:0")
    with memory.SearchSlot(cpu, tmp_path) as first:
        assert first.share() == 1.0
        with memory.SearchSlot(cpu, tmp_path) as second, memory.SearchSlot(gpu, tmp_path) as other_device:
            assert first.share() == second.share() == 0.5  # the GPU's search does not take host memory
            assert other_device.share() == 1.0
        assert first.share() == 1.0  # the others left
    assert list(tmp_path.iterdir()) == []


def test_a_search_in_another_process_counts_until_it_dies(tmp_path: Path) -> None:
    """A live process's entry halves the share; once it is killed (no chance to remove its entry), the
    entry is skipped and removed."""
    code = ("import sys, time, torch; from pathlib import Path; from verifier.bab.memory import SearchSlot\n"
            "with SearchSlot(torch.device('cpu'), Path(sys.argv[1])):\n"
            "    print('in', flush=True); time.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[2])
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "in"
        with memory.SearchSlot(torch.device("cpu"), tmp_path) as mine:
            assert mine.share() == 0.5
            child.kill()
            child.wait()
            assert mine.share() == 1.0
            assert [p.name for p in tmp_path.iterdir()] == [mine.path.name]  # type: ignore[union-attr]
    finally:
        child.kill()
        child.wait()


def test_a_folder_that_cannot_be_written_leaves_the_whole_share(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with memory.SearchSlot(torch.device("cpu"), blocker / "searches") as slot:
        assert slot.path is None and slot.share() == 1.0


def test_relu_split_counts_the_searches_under_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With another search registered on the host, a ReLU-split search budgets half the free memory (and
    no more than its configured share); it removes its own entry when it ends."""
    from tests.bab.test_relu_split import _hard_problem
    from verifier.bab import relu_split

    monkeypatch.setattr(memory.tempfile, "gettempdir", lambda: str(tmp_path))
    shares: list[float] = []
    real = relu_split.frontier_budget

    def budget(device: torch.device, share: float) -> float:
        shares.append(share)
        return real(device, share)

    monkeypatch.setattr(relu_split, "frontier_budget", budget)
    p = _hard_problem()
    config = relu_split.ReluSplitConfig(batch_size=4, iterations=0, root_iterations=0)
    with memory.SearchSlot(torch.device("cpu")) as other:
        relu_split.relu_split_bab(p.graph, p.lower, p.upper, p.C, p.d, time.monotonic() + 1, lambda x: False, config)
        relu_split.relu_split_bab(p.graph, p.lower, p.upper, p.C, p.d, time.monotonic() + 1, lambda x: False,
                                  relu_split.ReluSplitConfig(batch_size=4, iterations=0, root_iterations=0,
                                                             memory_share=0.25))
        assert [p.name for p in other.folder.iterdir()] == [other.path.name]  # type: ignore[union-attr]
    relu_split.relu_split_bab(p.graph, p.lower, p.upper, p.C, p.d, time.monotonic() + 1, lambda x: False, config)
    assert shares == [0.5, 0.25, 1.0]
