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
