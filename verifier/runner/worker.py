"""One instance from start to finish, in whatever process runs it: model (loaded once), spec, `api.verify`.

`Solver.solve` never raises for a bad instance: a missing or malformed file, an unsupported model, running
out of memory or any other exception becomes an `error` record with a one-line message, so the run goes on.

The instance's timeout covers the whole instance: a model's load time is charged to the first instance that
loads it (in this process), and `api.verify` gets what is left.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Optional

from verifier.errors import SpecError, VerifierError
from verifier.result import ERROR, EXIT_INTERNAL, TIMEOUT, Result
from verifier.runner.instances import Instance
from verifier.runner.records import make_record
from verifier.runner.settings import RunSettings


def one_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return " ".join(lines[:1]) + (" …" if len(lines) > 1 else "")


def error_result(err: BaseException) -> Result:
    """Our errors keep their message and code (3 bad input, 4 internal); anything else is an internal error."""
    if isinstance(err, VerifierError):
        return Result(ERROR, message=one_line(str(err)), exit_code_override=err.exit_code)
    return Result(ERROR, message=one_line(f"internal error: {type(err).__name__}: {err}"),
                  exit_code_override=EXIT_INTERNAL)


class ModelCache:
    """Loaded models by path, the least recently used dropped past `capacity`. A failed load is remembered,
    so the instances sharing a broken model fail at once instead of converting it again each time."""

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, Any] = OrderedDict()

    def get(self, path: str) -> tuple[Any, float]:
        """(model, seconds spent loading it now: 0 when it was cached); raises the load's error."""
        if path in self._entries:
            self._entries.move_to_end(path)
            entry, seconds = self._entries[path], 0.0
        else:
            from verifier.model.loader import load_model

            start = time.monotonic()
            try:
                entry = load_model(path, check=False)  # the equivalence check runs per spec box in verify
            except Exception as err:  # noqa: BLE001 - remembered and re-raised for each instance
                entry = error_result(err)
            seconds = time.monotonic() - start
            self._entries[path] = entry
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        if isinstance(entry, Result):
            raise _CachedLoadError(entry, seconds)
        return entry, seconds


class _CachedLoadError(Exception):
    def __init__(self, result: Result, seconds: float) -> None:
        super().__init__(result.message)
        self.result = result
        self.seconds = seconds  # spent on the failed load now (0 when it failed before)


def load_spec(path: str) -> Any:
    """A parsed spec for a .vnnlib.gz (decompressed here), or the path itself for api.verify to parse."""
    if not path.endswith(".gz"):
        return path
    import gzip

    from verifier.spec.vnnlib import parse_vnnlib_text

    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise SpecError(f"{path}: cannot read spec: no such file") from None
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise SpecError(f"{path}: cannot read compressed spec: {err}") from None
    return parse_vnnlib_text(text, path)


class Solver:
    """Per-process state of a worker: the settings, torch's thread count and the model cache.

    The same class runs serially in the main process, in each `--jobs` worker process, and as a Ray actor.
    """

    def __init__(self, settings: RunSettings) -> None:
        import torch

        import verifier.api  # noqa: F401 - imported before the first instance, so its clock does not pay for it

        from verifier.runtime import tune_process

        tune_process(settings.threads)
        self.settings = settings
        self.models = ModelCache()
        self.torch_version = str(torch.__version__)

    def solve(self, inst: Instance) -> dict[str, Any]:
        """The record of one instance (see `records.make_record`)."""
        from verifier.api import resolve_device, verify

        start = time.monotonic()
        engine = 0.0
        device = self.settings.device
        try:
            device = resolve_device(self.settings.device)
            model, engine = self.models.get(inst.onnx_path)
            t = time.monotonic()
            spec = load_spec(inst.vnnlib_path)
            engine += time.monotonic() - t
            remaining = inst.timeout - (time.monotonic() - start)
            if remaining <= 0:
                result = Result(TIMEOUT, message=f"loading took the whole {inst.timeout:g} s timeout")
            else:
                result = verify(model, spec, timeout=remaining, **self.settings.engine_options(),
                                **_certificate_options(self.settings, inst))
                engine += result.times.get("total", 0.0)
        except _CachedLoadError as err:
            result, engine = err.result, err.seconds
        except Exception as err:  # noqa: BLE001 - out of memory, a bug: an error row, and the run goes on
            result = error_result(err)
        wall = time.monotonic() - start
        return make_record(inst, self.settings, result, engine=engine, wall=wall, device=device,
                           torch_version=self.torch_version)


def _certificate_options(settings: RunSettings, inst: Instance) -> dict[str, Any]:
    """verify's certificate keywords for `run --certificates DIR`: one file per instance, named by its
    index and files (`7_ACASXU_run2a_1_1_batch_2000_prop_1.npz`)."""
    if not settings.certificates:
        return {}
    import os
    import re

    os.makedirs(settings.certificates, exist_ok=True)
    stem = "_".join(re.sub(r"\.(onnx|vnnlib)(\.gz)?$", "", os.path.basename(p)) for p in (inst.onnx, inst.vnnlib))
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{inst.index}_{stem}") + ".npz"
    return {"certificate": os.path.join(settings.certificates, name),
            "check_certificate": settings.check_certificates}


def failed_record(inst: Instance, settings: RunSettings, message: str) -> dict[str, Any]:
    """The record of an instance whose worker died (killed, out of memory) before it could report."""
    return make_record(inst, settings, Result(ERROR, message=message, exit_code_override=EXIT_INTERNAL),
                       engine=0.0, wall=0.0, device=settings.device, torch_version=None)


# One Solver per worker process of the --jobs pool (set by the pool's initializer): process-local state is the
# only way a ProcessPoolExecutor worker can keep its loaded models between tasks.
_PROCESS_SOLVER: Optional[Solver] = None


def init_process(settings: RunSettings) -> None:
    global _PROCESS_SOLVER
    _PROCESS_SOLVER = Solver(settings)


def solve_in_process(inst: Instance) -> dict[str, Any]:
    assert _PROCESS_SOLVER is not None, "init_process did not run"
    return _PROCESS_SOLVER.solve(inst)
