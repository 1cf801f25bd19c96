"""Error types with the exit code each one maps to, so every layer can fail with a clear one-line message."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


class VerifierError(Exception):
    """Base class: an error the CLI reports as one line, without a traceback."""

    exit_code = 4


class InputError(VerifierError):
    """Bad user input: unreadable or malformed file, inconsistent shapes, bad option value."""

    exit_code = 3


class SpecError(InputError):
    """A VNN-LIB file that cannot be parsed or is not supported; message names file:line:col."""


class ModelError(InputError):
    """An ONNX model that cannot be loaded, or does not match onnxruntime."""


class UnsupportedModelError(ModelError):
    """The model uses ops we have no rule for; lists every one at once."""


@contextmanager
def reading(path: object, error: type[InputError], missing: str, directory: str) -> Iterator[None]:
    """Turn the OS errors of reading `path` into one-line `error`s: "PATH: no such <missing>",
    "PATH: is a directory, not <directory>", "PATH: cannot read (reason)"."""
    try:
        yield
    except FileNotFoundError:
        raise error(f"{path}: no such {missing}") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not {directory}") from None
    except OSError as err:
        raise error(f"{path}: cannot read ({err.strerror or err})") from None


def check_output_path(path: object, option: str, *, make_folder: bool = False, folder: bool = False) -> None:
    """Before any work: can `path` (the value of `option`) be written? InputError (exit 3, one line) if not.

    An output file's folder must exist, unless `make_folder` (then it is created); with `folder`, `path` is
    itself an output folder, created here. Checked up front so that a typo costs nothing, not a finished run.
    """
    from pathlib import Path

    target = Path(str(path)).absolute()
    if not folder and target.is_dir():
        raise InputError(f"{option} {path}: is a directory, not a file")
    if folder and target.exists() and not target.is_dir():
        raise InputError(f"{option} {path}: is not a directory")
    parent = target if folder else target.parent
    if make_folder or folder:
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InputError(f"{option} {path}: cannot create the folder {parent} ({err.strerror or err})") from None
    elif not parent.is_dir():
        raise InputError(f"{option} {path}: no such directory {parent}")
