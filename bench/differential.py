#!/usr/bin/env python3
"""The differential test bed's long profile: random networks x random specs x every (--method, --bab),
judged against exact ground truth (MILP by HiGHS for relu / max-pool / residual nets; sampling plus the
known violating point otherwise), for N minutes.

    python bench/differential.py --minutes 30 [--seed S] [--timeout 5] [--out DIR] [--planted-share 0.2]

Prints one line per case and, at the end, the count of cases, verdicts, failures (exceptions, `error` on
valid input, wrong verdicts, counterexamples that do not replay) and overruns (wall time past the timeout
by more than 2 s + 50 %, reported, not failed). Each failing case is written to DIR (net.onnx,
spec.vnnlib, case.txt) so that `verifier verify DIR/N/net.onnx DIR/N/spec.vnnlib` reproduces it.
Exit status 1 when anything failed.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import onnx  # noqa: E402

from tests.differential.judge import MODES, judge  # noqa: E402
from tests.differential.networks import float32_net, random_net, to_onnx  # noqa: E402
from tests.differential.planted import bump_case  # noqa: E402
from tests.differential.specs import Case, make_case  # noqa: E402


def save(case: Case, folder: Path, note: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(to_onnx(case.net), str(folder / "net.onnx"))
    (folder / "spec.vnnlib").write_text(case.text())
    (folder / "case.txt").write_text(f"{note}\ntruth={case.truth} minimum={case.minimum!r} exact={case.exact}\n")


def next_case(rng: np.random.Generator, planted_share: float) -> Case:
    if rng.random() < planted_share:
        return bump_case(rng, int(rng.integers(5, 51)))
    net = float32_net(random_net(rng))
    margin = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.005, 0.2))
    return make_case(rng, net, margin, time_limit=20.0, regression=net.n_outputs == 1 and rng.random() < 0.7)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=5.0, help="verify's timeout per case")
    ap.add_argument("--out", type=Path, default=Path("differential-failures"))
    ap.add_argument("--planted-share", type=float, default=0.2, help="share of planted narrow-bump cases")
    args = ap.parse_args(argv)

    from verifier.runtime import tune_process

    tune_process(1)
    rng = np.random.default_rng(args.seed)
    end = time.monotonic() + 60 * args.minutes
    tally: Counter[str] = Counter()
    failures = overruns = cases = 0
    while time.monotonic() < end:
        case = next_case(rng, args.planted_share)
        method, bab = MODES[int(rng.integers(len(MODES)))]
        v = judge(case, method, bab, args.timeout)
        cases += 1
        tally[v.verdict] += 1
        overran = v.seconds > 1.5 * args.timeout + 2.0
        overruns += overran
        flag = f"  FAIL {v.failure}" if v.failure else ("  OVERRAN" if overran else "")
        print(f"{cases:5d} {case.kind or case.net.name:18s} n={case.net.n_inputs:2d} m={case.net.n_outputs:2d} "
              f"boxes={len(case.boxes)} rows={[len(c[0]) for c in case.clauses]} truth={case.truth:5s} "
              f"{method}/{bab}: {v.verdict} {v.seconds:.1f}s{flag}", flush=True)
        if v.failure or overran:
            failures += bool(v.failure)
            save(case, args.out / f"{args.seed}-{cases}", f"{method}/{bab} timeout {args.timeout}: {v.verdict} "
                                                          f"{v.failure or 'overran'}")
    print("-" * 100)
    print(f"cases={cases} " + " ".join(f"{k}={n}" for k, n in sorted(tally.items()))
          + f" failures={failures} overruns={overruns}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
