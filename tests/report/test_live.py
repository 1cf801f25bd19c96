"""The live progress panel: what it shows, and that it stays off where it must."""
from __future__ import annotations

import io
import time

from rich.console import Console

from verifier.progress import Progress
from verifier.report.live import ProgressView, live_progress


def _terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=120), out


def test_view_shows_branch_and_bound_counts() -> None:
    console, out = _terminal()
    view = ProgressView()
    view.update(Progress("relu split", 12.5, 300.0, domains=12345, open=678, worst_bound=-0.25,
                         roots_done=1, roots=3))
    console.print(view)
    text = out.getvalue()
    for shown in ("ReLU split", "12,345 bounded", "678 open", "1 of 3 decided", "-0.25", "of 300 s"):
        assert shown in text, (shown, text)


def test_view_before_branch_and_bound_shows_the_stage_only() -> None:
    console, out = _terminal()
    view = ProgressView()
    view.update(Progress("attack", 0.5, 60.0))
    console.print(view)
    assert "PGD" in out.getvalue() and "domains" not in out.getvalue()


def test_disabled_or_not_a_terminal_gives_no_callback() -> None:
    with live_progress(enabled=False) as fn:
        assert fn is None
    with live_progress(console=Console(file=io.StringIO())) as fn:  # a file, not a terminal
        assert fn is None


def test_panel_appears_after_the_delay_and_is_erased_at_the_end() -> None:
    console, out = _terminal()
    with live_progress(console=console, delay=0.05) as fn:
        assert fn is not None
        fn(Progress("input split", 0.1, 10.0, domains=42, open=7, roots=1))
        time.sleep(0.4)
        fn(Progress("input split", 0.5, 10.0, domains=99, open=3, roots=1))
    text = out.getvalue()
    assert "99 bounded" in text
    tail = text[text.rindex("\x1b[?25h"):]  # after the cursor is shown again: only the erasing
    assert tail.count("\x1b[1A\x1b[2K") >= 5 and "bounded" not in tail  # the panel's lines erased (transient)


def test_a_quick_call_never_draws() -> None:
    console, out = _terminal()
    with live_progress(console=console, delay=30.0) as fn:
        assert fn is not None
        fn(Progress("attack", 0.0, 10.0))
    assert "PGD" not in out.getvalue()
