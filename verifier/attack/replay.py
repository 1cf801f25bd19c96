"""Replay a candidate counterexample on onnxruntime (float32), the reference semantics of the model.

Only a candidate that still meets the clause there is reported as `sat`: this is what keeps a wrong
`sat` from ever leaving the tool, whatever our own graph or attack got wrong.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


def snap_into_box(x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """float32 values that lie inside [lower, upper] even after rounding from float64."""
    x32 = np.clip(np.asarray(x, dtype=np.float64), lower, upper).astype(np.float32)
    too_high = x32.astype(np.float64) > upper
    x32[too_high] = np.nextafter(x32[too_high], np.float32(-np.inf))
    too_low = x32.astype(np.float64) < lower
    x32[too_low] = np.nextafter(x32[too_low], np.float32(np.inf))
    return x32


@dataclass
class OrtRunner:
    """Runs the original ONNX file on onnxruntime's CPU provider, one sample at a time."""

    path: str
    input_shape: tuple[int, ...]  # full ONNX input shape, batch dim included

    @cached_property
    def _session(self):  # type: ignore[no-untyped-def]
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 3
        from verifier.model.onnx_file import session_source

        return ort.InferenceSession(session_source(self.path), sess_options=opts, providers=["CPUExecutionProvider"])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        sess = self._session
        shape = tuple(d if isinstance(d, int) and d > 0 else 1 for d in self.input_shape) or (1,)
        feed = {sess.get_inputs()[0].name: np.asarray(x, dtype=np.float32).reshape(shape)}
        return np.asarray(sess.run(None, feed)[0], dtype=np.float64).reshape(-1)
