"""The live progress panel of `verifier verify` on a terminal: stage, elapsed time against the
timeout, and during branch and bound the domains bounded and open and the worst open bound.

It appears only after `delay` seconds (a quick call shows nothing but its verdict), only on a
terminal, on stderr, and is erased when the call ends (transient), so stdout and logs stay clean.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator, Optional

from verifier.progress import Progress, ProgressFn

_STAGE_TEXT = {
    "load": "loading the model and spec",
    "attack": "searching for a counterexample (PGD)",
    "bounds": "bounding (IBP, CROWN, alpha-CROWN)",
    "strong attack": "searching harder for a counterexample (long PGD, then 1024 starts)",
    "input split": "branch and bound: input split",
    "relu split": "branch and bound: ReLU split",
}


class ProgressView:
    """A rich renderable of the latest Progress; elapsed time keeps running between updates."""

    def __init__(self) -> None:
        self.progress: Optional[Progress] = None
        self._received = 0.0

    def update(self, progress: Progress) -> None:
        self.progress, self._received = progress, time.monotonic()

    def __rich__(self) -> Any:
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        p = self.progress
        if p is None:
            return Text("verifier: starting", style="dim")
        elapsed = min(p.elapsed + time.monotonic() - self._received, p.timeout) if p.timeout else p.elapsed
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim")
        grid.add_column()
        grid.add_row("stage", _STAGE_TEXT.get(p.stage, p.stage))
        bar = ProgressBar(total=p.timeout or None, completed=elapsed, width=30)
        timing = Table.grid(padding=(0, 1))
        timing.add_row(bar, f"{elapsed:.1f} s of {p.timeout:g} s")
        grid.add_row("time", timing)
        if p.stage in ("input split", "relu split"):
            grid.add_row("domains", f"{p.domains:,} bounded · {p.open:,} open")
            if p.roots:
                grid.add_row("clauses", f"{p.roots_done} of {p.roots} decided")
            if p.worst_bound is not None:
                grid.add_row("worst bound", f"{p.worst_bound:.6g}  (> 0 on every domain proves the property)")
        return Panel(grid, title="verifier", expand=False)


@contextmanager
def live_progress(enabled: bool = True, console: Any = None, delay: float = 1.0) -> Iterator[Optional[ProgressFn]]:
    """Yield a progress callback drawing the panel on `console` (default: stderr), or None when
    disabled or not on a terminal. The panel appears `delay` seconds after entering (a quick call
    never shows it) and is erased on exit."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.live import Live

    console = console if console is not None else Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    view = ProgressView()
    live = Live(view, console=console, transient=True, refresh_per_second=4)
    lock = threading.Lock()
    state = {"started": False, "closed": False}

    def start() -> None:  # on a timer thread: a long stage without updates still gets its panel
        with lock:
            if not state["closed"] and not state["started"]:
                live.start()
                state["started"] = True

    def on_progress(progress: Progress) -> None:
        view.update(progress)
        if state["started"]:
            live.refresh()

    timer = threading.Timer(delay, start)
    timer.daemon = True
    timer.start()
    try:
        yield on_progress
    finally:
        timer.cancel()
        with lock:
            state["closed"] = True
            if state["started"]:
                live.stop()
