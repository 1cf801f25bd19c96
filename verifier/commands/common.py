"""What every click command shares: context settings, one-line failures with defined exit codes, and
the thread count. Kept apart from `verifier.cli` so that command modules can import it without a cycle."""
from __future__ import annotations

import os
import sys
import traceback
from typing import Any, Callable

import click

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


def fail(code: int, message: str) -> None:
    """One line on stderr and a defined exit code: no traceback for the user."""
    click.echo(f"error: {message}", err=True)
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
    except KeyboardInterrupt:
        fail(EXIT_INTERNAL, "interrupted")
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
