"""Error types with the exit code each one maps to, so every layer can fail with a clear one-line message."""
from __future__ import annotations


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
