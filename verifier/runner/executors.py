"""Where instances run: in this process, in `--jobs N` worker processes, or on Ray actors.

Every executor yields one record per instance as it finishes (any order); the caller alone writes them, so
the results file stays consistent whatever runs the instances. At most `jobs` instances are in flight: a
worker that dies (killed, out of memory) turns only those into `error` records, and a fresh pool goes on
with the rest.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Iterator, Sequence

from verifier.errors import InputError
from verifier.runner.instances import Instance
from verifier.runner.settings import RunSettings
from verifier.runner.worker import Solver, failed_record, init_process, solve_in_process

Records = Iterator[dict[str, Any]]


def execute(instances: Sequence[Instance], settings: RunSettings) -> Records:
    """The executor the settings ask for: ray, a process pool for jobs > 1, else serial."""
    if settings.executor == "ray":
        return run_ray(instances, settings)
    if settings.jobs > 1:
        return run_processes(instances, settings)
    return run_serial(instances, settings)


def run_serial(instances: Sequence[Instance], settings: RunSettings) -> Records:
    solver = Solver(settings)
    for inst in instances:
        yield solver.solve(inst)


def run_processes(instances: Sequence[Instance], settings: RunSettings) -> Records:
    """A spawn-context ProcessPoolExecutor; each worker keeps its own loaded models (see `worker`)."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pending = deque(instances)
    context = multiprocessing.get_context("spawn")
    while pending:
        pool = ProcessPoolExecutor(settings.jobs, mp_context=context, initializer=init_process, initargs=(settings,))
        in_flight: dict[Any, Instance] = {}
        broken = False
        try:
            while (pending or in_flight) and not broken:
                while pending and len(in_flight) < settings.jobs:
                    inst = pending.popleft()
                    in_flight[pool.submit(solve_in_process, inst)] = inst
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    inst = in_flight.pop(future)
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        broken = True
                        yield failed_record(inst, settings, "worker process died (killed or out of memory)")
            for inst in in_flight.values():  # a broken pool fails everything it was running
                yield failed_record(inst, settings, "worker process died (killed or out of memory)")
        except KeyboardInterrupt:  # Ctrl-C / SIGTERM: stop the workers now rather than wait for their instances
            broken = True
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
            raise
        finally:
            pool.shutdown(wait=not broken, cancel_futures=True)


def run_ray(instances: Sequence[Instance], settings: RunSettings) -> Records:
    """`jobs` Ray actors (each a `Solver` with `threads` CPUs); uses the Ray instance already initialised, else
    connects to `ray_address`, else starts a local one (and shuts down what it started)."""
    try:
        import ray
    except ImportError:
        raise InputError("--executor ray needs Ray: pip install 'verifier[ray]'") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=settings.ray_address, log_to_driver=False, configure_logging=False)
    actor_class = ray.remote(num_cpus=settings.threads)(Solver)
    idle = [actor_class.remote(settings) for _ in range(settings.jobs)]
    pending = deque(instances)
    in_flight: dict[Any, tuple[Any, Instance]] = {}
    try:
        while pending or in_flight:
            while pending and idle:
                actor, inst = idle.pop(), pending.popleft()
                in_flight[actor.solve.remote(inst)] = (actor, inst)
            [ref], _ = ray.wait(list(in_flight), num_returns=1)
            actor, inst = in_flight.pop(ref)
            try:
                record = ray.get(ref)
            except ray.exceptions.RayActorError:
                actor = actor_class.remote(settings)  # replace the dead actor
                record = failed_record(inst, settings, "Ray actor died (killed or out of memory)")
            except ray.exceptions.RayError as err:
                record = failed_record(inst, settings, f"Ray task failed: {type(err).__name__}")
            idle.append(actor)
            yield record
    finally:
        for actor in idle + [a for a, _ in in_flight.values()]:
            ray.kill(actor)
        if started:
            ray.shutdown()
