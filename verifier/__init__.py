"""verifier: a sound neural-network verifier for ONNX networks and VNN-LIB specs.

Importing the package is cheap on purpose: torch, onnx and onnx2torch are imported only
when a command or API call needs them, so `verifier --help` and `--version` stay fast.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from verifier.result import Result


def verify(model: Any, spec: Any, **options: Any) -> "Result":
    """Verify `spec` (path or `Spec`) on `model` (path or loaded `Graph`/`Model`); see `verifier.api.verify`."""
    from verifier.api import verify as _verify

    return _verify(model, spec, **options)


def certify_module(module: Any, x: Any, y: Any, eps: Any, **options: Any) -> dict:
    """Verified accuracy of a torch module over samples x, y at eps; see `verifier.certify.module`."""
    from verifier.certify.module import certify_module as _certify_module

    return _certify_module(module, x, y, eps, **options)


__all__ = ["__version__", "certify_module", "verify"]
