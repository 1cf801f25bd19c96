"""Compare the verdicts of a `verifier run --results FILE.jsonl` with those printed by `bench/run.py`.

    python bench/run.py mnist_fc --timeout-scale 0.05 > bench.log
    verifier run ../shared/benchmarks/mnist_fc/instances.csv --timeout-scale 0.05 --results run.jsonl --quiet
    python bench/compare_verdicts.py run.jsonl bench.log

Prints how many instances were compared and agree, then each disagreement (near a timeout, a busy machine can
turn one side's late proof into a timeout; anything else is a bug).
"""
from __future__ import annotations

import json
import re
import sys

_BENCH_LINE = re.compile(r"(onnx/\S+)\s+(vnnlib/\S+)\s+(\w+)\s")


def run_verdicts(path: str) -> dict[tuple[str, str], str]:
    out = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                record = json.loads(line)
                out[(record["onnx"], record["vnnlib"])] = record["verdict"]
    return out


def bench_verdicts(path: str) -> dict[tuple[str, str], str]:
    with open(path, encoding="utf-8") as fh:
        return {(m[1], m[2]): m[3] for m in map(_BENCH_LINE.match, fh) if m}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 3
    run, bench = run_verdicts(argv[0]), bench_verdicts(argv[1])
    keys = sorted(set(run) & set(bench))
    differ = [k for k in keys if run[k] != bench[k]]
    print(f"compared {len(keys)}, agree {len(keys) - len(differ)}")
    for onnx, vnnlib in differ:
        print(f"  {onnx} {vnnlib}: run {run[(onnx, vnnlib)]}, bench {bench[(onnx, vnnlib)]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
