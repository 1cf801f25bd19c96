"""The batch loop: skip what `--resume` finds recorded, run the rest, and write each record as it arrives.

Order of writes per instance: its `--results-dir` files first, then its record (the commit point): a killed run
re-runs an instance without a record and rewrites its files; it never records one twice.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from verifier.errors import InputError
from verifier.runner.instances import Instance
from verifier.runner.progress import Reporter
from verifier.runner.records import ResultsFile, record_key
from verifier.runner.settings import RunSettings


@dataclass(frozen=True)
class Outputs:
    results: Optional[Path] = None
    resume: bool = False
    results_dir: Optional[Path] = None


@dataclass(frozen=True)
class BatchResult:
    records: list[dict[str, Any]]  # one per instance of the plan, in plan order
    resumed: int  # how many came from the results file
    elapsed: float  # seconds this invocation ran the batch
    interrupted: int = 0  # 130 (SIGINT) / 143 (SIGTERM) when the run was stopped: `records` then holds what finished


def open_results(outputs: Outputs) -> tuple[Optional[ResultsFile], list[dict[str, Any]]]:
    """The results file opened for appending and its earlier records; InputError (exit 3) on a conflict."""
    if outputs.results is None:
        return None, []
    results = ResultsFile(outputs.results)
    return results, results.open(outputs.resume)


def reconcile(instances: Sequence[Instance], previous: Sequence[dict[str, Any]], force: bool,
              where: str) -> tuple[list[dict[str, Any]], int]:
    """The earlier records `--resume` keeps, and how many it drops as stale.

    Stale: a record of a planned instance (same row index and file names) whose model or spec has changed
    since (another sha256): the instance runs again and the old record leaves the file. A kept record made
    with another effective timeout than this run's is refused (InputError, exit 3) unless `force`: results
    of one file should mean one setting."""
    planned = {(inst.index, inst.onnx, inst.vnnlib): inst for inst in instances}
    kept: list[dict[str, Any]] = []
    stale = 0
    for record in previous:
        inst = planned.get(record_key(record)[:3])
        if inst is not None and record_key(record) != inst.key:
            stale += 1
            continue
        if inst is not None and not force and float(record["timeout"]) != inst.timeout:
            raise InputError(f"{where}: instance #{inst.index + 1} ({inst.vnnlib}) was recorded with a "
                             f"{float(record['timeout']):g} s timeout, this run gives it {inst.timeout:g} s: "
                             "pass --force to keep such records, or choose another --results path")
        kept.append(record)
    return kept, stale


def run_batch(instances: Sequence[Instance], settings: RunSettings, outputs: Outputs, reporter: Reporter,
              results: Optional[ResultsFile] = None, previous: Sequence[dict[str, Any]] = ()) -> BatchResult:
    """Run every instance not yet in `previous` (records of an earlier run, matched by `Instance.key`)."""
    from verifier.runner.executors import execute
    from verifier.runner.result_files import write_result_files

    start = time.monotonic()
    recorded = {record_key(r): r for r in previous}
    done = {inst.index: recorded[inst.key] for inst in instances if inst.key in recorded}
    todo = [inst for inst in instances if inst.index not in done]
    reporter.start(len(instances), done.values())
    interrupted = 0
    try:
        for record in execute(todo, settings):
            t = time.monotonic()
            if outputs.results_dir is not None:
                write_result_files(outputs.results_dir, record)
            record["wall"] = round(record["wall"] + time.monotonic() - t, 6)
            if results is not None:
                results.append(record)
            done[record["index"]] = record
            reporter.update(record)
    except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM: keep what finished for the summary
        from verifier.commands.common import interrupt_exit_code

        interrupted = interrupt_exit_code(err)
    finally:
        reporter.stop()
        if results is not None:
            results.close()
    n_resumed = len(instances) - len(todo)
    records = [done[inst.index] for inst in instances if inst.index in done]
    return BatchResult(records, n_resumed, time.monotonic() - start, interrupted)
