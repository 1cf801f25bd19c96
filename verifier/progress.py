"""Progress snapshots of a verify call, for a live display (the CLI's panel) or a caller's own.

Torch-free on purpose: the CLI builds its renderer before the engine is imported. The engine
calls a `ProgressFn` between batches, never inside them, so a slow callback costs only its own time;
`Reporter` keeps a chatty search from calling it more often than a display can show.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Optional


@dataclass(frozen=True)
class Progress:
    """Where a verify call stands. Counts are over every (box, clause) root under search."""

    stage: str  # "attack", "bounds", "input split", "relu split"
    elapsed: float  # seconds since the call began
    timeout: float  # the call's time limit, seconds
    domains: int = 0  # subproblems bounded so far
    open: int = 0  # subproblems waiting to be bounded
    worst_bound: Optional[float] = None  # lowest lower bound among open subproblems (> 0 everywhere proves)
    roots_done: int = 0  # (box, clause) roots decided
    roots: int = 0  # (box, clause) roots under search


ProgressFn = Callable[[Progress], None]


class Reporter:
    """The engine's side: `report(stage, domains=…, …)` builds a Progress and passes it on, at most once
    per `interval` seconds within a stage (a new stage always passes). A no-op without a callback, so
    the engine calls it unconditionally; `due(stage)` lets it skip computing counts nobody will see."""

    def __init__(self, fn: Optional[ProgressFn], start: float, timeout: float, interval: float = 0.2) -> None:
        self._fn, self._start, self._timeout, self._interval = fn, start, timeout, interval
        self._last_at, self._last_stage = -float("inf"), ""

    @property
    def active(self) -> bool:
        return self._fn is not None

    def due(self, stage: str) -> bool:
        return self._fn is not None and (stage != self._last_stage
                                         or time.monotonic() - self._last_at >= self._interval)

    def __call__(self, stage: str, **counts: Any) -> None:
        if self._fn is None or not self.due(stage):
            return
        self._last_at, self._last_stage = time.monotonic(), stage
        self._fn(Progress(stage, self._last_at - self._start, self._timeout, **counts))


SILENT = Reporter(None, 0.0, 0.0)
