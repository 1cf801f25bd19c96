"""The VNN-COMP result-file format: verdict on the first line, then the counterexample assignment."""
from __future__ import annotations

from verifier.result import SAT, TIMEOUT, Result


def format_counterexample(x: tuple[float, ...] | list[float], y: tuple[float, ...] | list[float]) -> str:
    """`((X_0 v)\\n (X_1 v)\\n ... (Y_0 v)...)` with values printed exactly (repr of the float32 value)."""
    parts = [f"(X_{i} {float(v)!r})" for i, v in enumerate(x)] + [f"(Y_{j} {float(v)!r})" for j, v in enumerate(y)]
    return "(" + "\n ".join(parts) + ")"


def format_result_file(result: Result) -> str:
    verdict = "timeout" if result.verdict == TIMEOUT else result.verdict
    if result.verdict == SAT and result.counterexample is not None:
        return f"sat\n{format_counterexample(result.counterexample.x, result.counterexample.y)}\n"
    return f"{verdict}\n"


def write_result_file(path: str, result: Result) -> None:
    """Write atomically so a killed run never leaves a half-written result file."""
    import os
    import tempfile

    from verifier.errors import InputError

    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".verifier-", suffix=".tmp")
    except OSError as err:
        raise InputError(f"{path}: cannot write the result file ({err.strerror or err})") from None
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(format_result_file(result))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
