"""Ctrl-C and SIGTERM (issue 14): exit 130 / 143 with one line, as shells and CI runners expect, and an interrupted
`run` still prints the summary of what finished.

Each test starts the CLI in a subprocess whose slow step is replaced by a sleep (announced on stderr), so the
signal always lands mid-work, and no test pays for torch.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.examples import FALSIFIABLE, ROBUST, TOY

ROOT = Path(__file__).resolve().parents[1]

# Python run as `python -c PRELUDE + PATCH`: the patch makes one step print READY and sleep. The prelude
# restores Python's own SIGINT handler, as in an interactive shell: a test run started in the background
# (`cmd &` in a script) passes SIGINT ignored to its children, and Python then leaves it ignored.
PRELUDE = "import signal, sys, time\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
SLEEP = "def _sleep(*a, **k):\n    print('READY', file=sys.stderr, flush=True)\n    time.sleep(60)\n"
PATCHES = {
    "verify": SLEEP + "import verifier.cli\nverifier.cli._set_threads = _sleep\n",
    "certify": SLEEP + "import verifier.certify.command as c\nc.run_certify = _sleep\n",
    # `run`: the first instance finishes at once (an error record), the second sleeps
    "run": SLEEP + textwrap.dedent("""
        import verifier.runner.executors as ex
        from verifier.runner.worker import failed_record
        class FakeSolver:
            def __init__(self, settings):
                self.settings, self.n = settings, 0
            def solve(self, inst):
                self.n += 1
                if self.n == 1:
                    return failed_record(inst, self.settings, "first one done")
                _sleep()
        ex.Solver = FakeSolver
        """),
}


def run_until_signalled(command: str, args: list[str], signum: int) -> subprocess.CompletedProcess:
    code = PRELUDE + PATCHES[command] + "from verifier.cli import main\nmain()\n"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", code, command, *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err_lines = []
    try:
        for line in proc.stderr:  # wait until the slow step has started
            err_lines.append(line)
            if line.strip() == "READY":
                break
        else:
            pytest.fail("the CLI ended before its slow step: " + "".join(err_lines))
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:  # never leave it sleeping behind the test run
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "".join(err_lines) + err)


def error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [l for l in stderr.splitlines() if l.startswith("error:")]


def test_verify_sigint_is_130() -> None:
    res = run_until_signalled("verify", [TOY, ROBUST], signal.SIGINT)
    assert res.returncode == 130, res.stderr
    assert error_lines(res.stderr) == ["error: interrupted"]


def test_certify_sigterm_is_143(tmp_path: Path) -> None:
    import numpy as np

    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((2, 3), np.float32), y=np.zeros(2, np.int64))
    res = run_until_signalled("certify", [TOY, "--data", str(data), "--eps", "0.01"], signal.SIGTERM)
    assert res.returncode == 143, res.stderr
    assert error_lines(res.stderr) == ["error: terminated (SIGTERM)"]


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_run_prints_the_summary_of_what_finished(signum: int, code: int) -> None:
    res = run_until_signalled("run", ["--model", TOY, ROBUST, FALSIFIABLE, ROBUST, "--quiet"], signum)
    assert res.returncode == code, res.stderr
    assert res.stdout.startswith("instances=1 ") and "error=1" in res.stdout  # the one that finished
    (line,) = error_lines(res.stderr)
    assert "interrupted" in line and "after 1 of 3 instances" in line
