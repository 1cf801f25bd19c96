"""What every click command shares: context settings, one-line failures with defined exit codes, and
the thread count. Kept apart from `verifier.cli` so that command modules can import it without a cycle."""
from __future__ import annotations

import os
import re
import sys
import traceback
from typing import Any, Callable

import click

_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")  # all that str.splitlines splits on
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}

# What shells and CI runners expect of a process stopped by a signal: 128 + the signal's number.
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it unwinds (closing files, stopping workers) as on Ctrl-C."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


def handle_sigterm() -> None:
    """Make SIGTERM raise `Terminated` in the main thread (a no-op elsewhere: signals go to the main thread)."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)


def interrupt_exit_code(err: BaseException) -> int:
    """143 for SIGTERM (`Terminated`), 130 for SIGINT (Ctrl-C)."""
    return EXIT_SIGTERM if isinstance(err, Terminated) else EXIT_SIGINT


def fail(code: int, message: str) -> None:
    """One line on stderr and a defined exit code: no traceback for the user. Line breaks inside the message
    (a name read from a corrupt file can hold one) are shown escaped, so it stays one line."""
    one_line = _LINE_BREAKS.sub(lambda m: repr(m.group())[1:-1], message)
    click.echo(f"error: {one_line}", err=True)
    sys.exit(code)


def guarded(fn: Callable[[], Any]) -> Any:
    """Run `fn`, turning our errors into exit 3/4 with one line, and bugs into exit 4 with one line."""
    from verifier.errors import InputError, VerifierError
    from verifier.result import EXIT_BAD_INPUT, EXIT_INTERNAL

    try:
        return fn()
    except InputError as err:
        fail(EXIT_BAD_INPUT, str(err))
    except VerifierError as err:
        fail(EXIT_INTERNAL, str(err))
    except KeyboardInterrupt as err:
        fail(interrupt_exit_code(err), "terminated (SIGTERM)" if isinstance(err, Terminated) else "interrupted")
    except Exception as err:  # noqa: BLE001 - a bug: still one line, the type says where to look
        if debugging():
            traceback.print_exc(file=sys.stderr)
        fail(EXIT_INTERNAL, f"internal error: {type(err).__name__}: {err} (set VERIFIER_DEBUG=1 for a traceback)")


def debugging() -> bool:
    """VERIFIER_DEBUG=1 (any value but empty or 0): internal errors print their traceback before the one line."""
    return os.environ.get("VERIFIER_DEBUG", "") not in ("", "0")


def set_threads(threads: int) -> None:
    """Set torch's thread count and malloc's block reuse for this process (`verifier.runtime`)."""
    from verifier.runtime import tune_process

    tune_process(threads)
