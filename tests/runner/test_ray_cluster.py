"""`run --executor ray --ray-address` against a real Ray cluster: a head node started by `ray start` as a
separate process, driven by `cli.py run` in another process, gives the local executor's verdicts.

The cluster is stopped by what this test started only: `ray start --block` runs in its own session and is
terminated with its process group, then any process still naming this test's Ray temp dir is killed by pid.
`ray stop` is never used: it stops every Ray process on the machine, other users' clusters included.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.runner.helpers import ROOT, TOY, make_specs, read_jsonl

pytest.importorskip("ray")

RAY_START_SECONDS = 90


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ray_cli() -> list[str]:
    """The `ray` command of this interpreter's environment (CI's venv may not be on PATH)."""
    script = Path(sys.executable).with_name("ray")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ray.scripts.scripts"]


def _pids_naming(marker: str) -> list[int]:
    """Processes whose command line mentions `marker` (this test's Ray temp dir), not this one."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _stop(head: subprocess.Popen, temp_dir: str) -> None:
    """Terminates the head's process group, then whatever still names temp_dir (workers, raylet)."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        if head.poll() is None:
            try:
                os.killpg(head.pid, sig)
            except ProcessLookupError:
                pass
            try:
                head.wait(wait)
            except subprocess.TimeoutExpired:
                continue
    deadline = time.monotonic() + 10
    while (left := _pids_naming(temp_dir)) and time.monotonic() < deadline:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)


# Ray (2.5x) turns token authentication on for `ray start` whenever ~/.ray/auth_token exists (any local
# `ray.init()` writes one), but a driver connecting by address sends no token unless RAY_AUTH_MODE=token:
# head and driver share an explicit token of this test's own, whatever else runs on the machine.
_TOKEN = secrets.token_hex(32)


def _env() -> dict[str, str]:
    """Workers and the driver import this checkout's package, single-threaded, without usage reporting,
    authenticated by this test's token."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": _TOKEN}


@pytest.fixture
def ray_head(tmp_path: Path) -> Iterator[str]:
    """A 2-CPU Ray head on a free port in its own process; yields its address and always stops it."""
    # Ray's unix sockets live under the temp dir and must stay under ~100 characters: a short folder in the
    # system temp dir when tmp_path is too deep.
    base = tmp_path if len(str(tmp_path)) < 40 else Path(tempfile.mkdtemp(prefix="vray"))
    temp_dir = str(base / "ray")
    port = _free_port()
    log = (tmp_path / "ray-head.log").open("w")
    head = subprocess.Popen(
        [*_ray_cli(), "start", "--head", "--block", "--port", str(port), "--num-cpus", "2",
         "--node-ip-address", "127.0.0.1", "--temp-dir", temp_dir, "--include-dashboard", "false",
         "--disable-usage-stats"],
        stdout=log, stderr=subprocess.STDOUT, env=_env(), start_new_session=True)
    try:
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + RAY_START_SECONDS
        while True:  # up once the GCS answers on its port
            if head.poll() is not None:
                pytest.fail(f"ray start exited {head.returncode}: {(tmp_path / 'ray-head.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("ray start: the head did not come up in time")
                time.sleep(0.5)
        yield address
    finally:
        _stop(head, temp_dir)
        log.close()
        if base != tmp_path:
            shutil.rmtree(base, ignore_errors=True)


def _run(tmp_path: Path, name: str, *extra: str) -> list[dict]:
    results = tmp_path / f"{name}.jsonl"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "run", "--model", str(TOY), str(tmp_path / "specs"),
         "--results", str(results), "--quiet", "--timeout", "30", *extra],
        capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]  # the gate: sat instances fail it with 1
    return sorted(read_jsonl(results), key=lambda r: r["index"])


def test_ray_cluster_matches_local(tmp_path: Path, ray_head: str) -> None:
    make_specs(tmp_path / "specs", 4)
    local = _run(tmp_path, "local")
    distributed = _run(tmp_path, "ray", "--executor", "ray", "--ray-address", ray_head, "--jobs", "2")
    assert [r["index"] for r in distributed] == [0, 1, 2, 3]  # each instance once
    assert [(r["index"], r["verdict"]) for r in distributed] == [(r["index"], r["verdict"]) for r in local]
    assert [r["verdict"] for r in local] == ["unsat", "sat", "unsat", "sat"]
    assert all(r["config"]["executor"] == "ray" for r in distributed)
