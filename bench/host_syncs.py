#!/usr/bin/env python3
"""Host round-trips per branch-and-bound batch, counted on the CPU (on a GPU each one stalls the stream).

    python bench/host_syncs.py [--seconds 10] [--batches 64,512]

Counts, while a search runs, every call that needs a tensor's value on the host: `.item()`, `bool()`,
`float()`, `int()`, `.tolist()`, `.numpy()`, `nonzero` and indexing by a boolean mask (its result's size
depends on the data). A count per batch that stays the same when the batch grows means no round-trip per
domain or per box; one that grows with it is a loop over domains to remove. Two searches: ReLU split on a
generated 20-input MLP (3 x 64 relus, a robustness-style clause) and input split on ACAS Xu 3_3 prop_2
(from $VERIFIER_BENCHMARKS or ../shared/benchmarks; skipped where absent).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from verifier.bab import input_split, relu_split  # noqa: E402
from verifier.model.graph import Graph  # noqa: E402

VALUE_CALLS = ("item", "__bool__", "__float__", "__int__", "__index__", "tolist", "numpy", "nonzero")


@contextmanager
def counting(counts: Counter) -> Iterator[None]:
    """Count host round-trips (by kind) made while inside; torch's methods are restored on leaving."""
    saved: dict[str, Any] = {name: getattr(torch.Tensor, name) for name in VALUE_CALLS + ("__getitem__",)}
    saved_nonzero = torch.nonzero

    def counted(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return fn(*args, **kwargs)
        return call

    def getitem(self: torch.Tensor, index: Any) -> Any:
        parts = index if isinstance(index, tuple) else (index,)
        if any(isinstance(p, torch.Tensor) and p.dtype == torch.bool for p in parts):
            counts["mask index"] += 1
        return saved["__getitem__"](self, index)

    try:
        for name in VALUE_CALLS:
            setattr(torch.Tensor, name, counted(name, saved[name]))
        torch.Tensor.__getitem__ = getitem  # type: ignore[method-assign]
        torch.nonzero = counted("nonzero", saved_nonzero)  # type: ignore[assignment]
        yield
    finally:
        for name, fn in saved.items():
            setattr(torch.Tensor, name, fn)
        torch.nonzero = saved_nonzero  # type: ignore[assignment]


def per_batch(cls: type, seconds: float, run: Callable[[float], Any]) -> tuple[int, Counter]:
    """Run `run(deadline)` with `cls._step` counted: the batches it bounded and the round-trips by kind."""
    counts: Counter = Counter()
    steps = [0]
    step = cls._step

    def counted_step(self: Any, *args: Any, **kwargs: Any) -> Any:
        steps[0] += 1
        return step(self, *args, **kwargs)

    cls._step = counted_step
    try:
        with counting(counts):
            run(time.monotonic() + seconds)
    finally:
        cls._step = step
    return steps[0], counts


def mlp(seed: int, n_in: int, widths: list[int], n_out: int) -> Graph:
    """A random relu MLP as our graph (built by the test helpers' ONNX-free path)."""
    from tests.bab.nets import Net

    gen = torch.Generator().manual_seed(seed)
    sizes = [n_in] + widths + [n_out]
    layers = tuple((torch.randn(b, a, generator=gen).double().numpy() / a ** 0.5,
                    0.1 * torch.randn(b, generator=gen).double().numpy()) for a, b in zip(sizes, sizes[1:]))
    return Net(layers).graph().to("cpu", torch.float32)


def relu_case(batch: int, seconds: float) -> tuple[int, Counter]:
    graph = mlp(3, 20, [64, 64, 64], 5)
    lo, hi = -torch.ones(20), torch.ones(20)
    C = torch.zeros(4, 5)
    C[:, 0], C[range(4), range(1, 5)] = 1.0, -1.0  # y0 - yj: "class 0 is not the largest"
    d = torch.zeros(4)
    config = relu_split.ReluSplitConfig(batch_size=batch)
    return per_batch(relu_split._Search, seconds, lambda deadline: relu_split.relu_split_bab(
        graph, lo, hi, C, d, deadline, lambda x: False, config))


def input_case(batch: int, seconds: float) -> tuple[int, Counter] | None:
    from run import find_bench  # bench/run.py

    folder = find_bench("acasxu")
    if folder is None:
        return None
    from verifier import api

    problem = api.load_problem(str(folder / "onnx" / "ACASXU_run2a_3_3_batch_2000.onnx"),
                               str(folder / "vnnlib" / "prop_2.vnnlib"), api.make_options(check_model=False))
    lower, upper, clauses = api._tensors(problem.spec.properties[0], problem)
    config = input_split.InputSplitConfig(batch_size=batch)
    return per_batch(input_split.InputSplitSearch, seconds, lambda deadline: input_split.input_split_bab(
        problem.graph, lower, upper, *clauses[0], deadline, lambda x: False, config))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--batches", default="64,512", help="batch sizes to compare")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name, case in (("relu split", relu_case), ("input split", input_case)):
        for batch in (int(b) for b in args.batches.split(",")):
            got = case(batch, args.seconds)
            if got is None:
                print(f"{name}: no acasxu benchmark found, skipped")
                break
            steps, counts = got
            total = sum(counts.values())
            kinds = ", ".join(f"{k} {v / max(1, steps):.1f}" for k, v in counts.most_common())
            print(f"{name:12s} batch {batch:5d}: {steps:4d} batches, {total / max(1, steps):6.1f} round-trips "
                  f"per batch ({kinds})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
