"""What a batch run shows while it runs, on stderr (stdout is kept for the summary or the JSON document).

On a terminal: a rich progress bar with ETA and a live tally (verified / falsified / unknown / timeout /
error). Otherwise, or with `--quiet`: one plain log line per instance, fit for CI logs.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Mapping, Optional, Protocol

from verifier.result import ERROR, SAT, TIMEOUT, UNKNOWN, UNSAT

# Tally labels in the order shown: a verdict name says little to someone reading a CI log.
LABELS = ((UNSAT, "verified", "green"), (SAT, "falsified", "red"), (UNKNOWN, "unknown", "yellow"),
          (TIMEOUT, "timeout", "magenta"), (ERROR, "error", "bold red"))


def tally_text(counts: Mapping[str, int], markup: bool = False) -> str:
    parts = []
    for verdict, label, style in LABELS:
        part = f"{counts.get(verdict, 0)} {label}"
        parts.append(f"[{style}]{part}[/]" if markup else part)
    return " · ".join(parts) if markup else ", ".join(parts)


class Reporter(Protocol):
    def start(self, total: int, previous: Iterable[Mapping[str, Any]]) -> None: ...
    def update(self, record: Mapping[str, Any]) -> None: ...
    def stop(self) -> None: ...


class LogReporter:
    """One line per instance: `[  3/186] unsat     0.12 s  NET SPEC  (crown)`, numbered as the plan (1-based,
    the summary's `#3`), so that a line and the summary name an instance alike, with --jobs and --resume too."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.total = 0
        self.done = 0

    def start(self, total: int, previous: Iterable[Mapping[str, Any]]) -> None:
        self.total = total
        self.done = len(list(previous))
        if self.done:
            self.console.print(f"resuming: {self.done} of {total} instances already recorded", highlight=False)

    def update(self, record: Mapping[str, Any]) -> None:
        self.done += 1
        number = record["index"] + 1 if "index" in record else self.done
        width = len(str(self.total))
        detail = record.get("message") if record["verdict"] in (ERROR, TIMEOUT, UNKNOWN) else record.get("method")
        line = (f"[{number:>{width}}/{self.total}] {record['verdict']:<8} {float(record['wall']):7.2f} s  "
                f"{record['onnx']} {record['vnnlib']}" + (f"  ({detail})" if detail else ""))
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def stop(self) -> None:
        pass


class LiveReporter:
    """A rich progress bar with elapsed time, ETA and the running tally."""

    def __init__(self, console: Any) -> None:
        from rich.progress import (
            BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.table import Column

        # Count, elapsed time and ETA keep their width on a narrow terminal (80 columns); the tally is cut
        # short first, and the bar is short enough to leave it room.
        def fixed(width: int) -> Column:
            return Column(no_wrap=True, min_width=width)

        self.progress = Progress(SpinnerColumn(), BarColumn(bar_width=20), MofNCompleteColumn(table_column=fixed(7)),
                                 TimeElapsedColumn(table_column=fixed(7)), TextColumn("ETA", table_column=fixed(3)),
                                 TimeRemainingColumn(table_column=fixed(7)),
                                 TextColumn("{task.fields[tally]}",
                                            table_column=Column(no_wrap=True, overflow="ellipsis", min_width=0)),
                                 console=console)
        self.counts: Counter[str] = Counter()
        self.task: Optional[Any] = None

    def start(self, total: int, previous: Iterable[Mapping[str, Any]]) -> None:
        previous = list(previous)
        self.counts.update(r["verdict"] for r in previous)
        self.task = self.progress.add_task("run", total=total, completed=len(previous),
                                           tally=tally_text(self.counts, markup=True))
        self.progress.start()

    def update(self, record: Mapping[str, Any]) -> None:
        self.counts[record["verdict"]] += 1
        self.progress.update(self.task, advance=1, tally=tally_text(self.counts, markup=True))

    def stop(self) -> None:
        self.progress.stop()


def make_reporter(quiet: bool) -> Reporter:
    from rich.console import Console

    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        return LogReporter(console)
    return LiveReporter(console)
