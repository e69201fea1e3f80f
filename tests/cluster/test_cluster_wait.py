"""`genart submit` right after `ray start --head`: it waits (bounded, configurable) for the dashboard and
the job agent instead of failing with "No available agent to submit job"."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.cluster.conftest import free_port, start_head, stop_head

ROOT = Path(__file__).resolve().parents[2]
GENERATE = str(ROOT / "configs/generate/digits.yaml")


def submit(address: str, env: dict | None, *args: str, timeout: float) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "genart.cli", "submit", GENERATE, "--address", address, *args]
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_the_wait_is_bounded_and_says_what_it_waits_for():
    address = f"http://127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    proc = submit(address, None, "--wait-for-cluster", "3", "--set", "count=10", timeout=60)
    took = time.monotonic() - t0
    assert proc.returncode == 1, proc.stderr
    assert f"waiting up to 3s for the Ray dashboard at {address} to answer (ConnectionError)" in proc.stderr
    assert f"error: cannot reach the Ray dashboard at {address} (ConnectionError; waited 3s)" in proc.stderr
    assert 3 <= took < 30 and "Traceback" not in proc.stderr


def test_submit_right_after_ray_start_waits_for_the_cluster():
    from ray.job_submission import JobSubmissionClient

    tmp = tempfile.mkdtemp(prefix="gw-", dir="/tmp")  # short: Unix socket paths
    proc, head = start_head(tmp)
    try:
        # a job that fails fast on the cluster (no such bundle): only its submission matters here
        res = submit(
            head.address,
            head.env(),
            "--wait-for-cluster",
            "240",
            "--submission-id",
            "fresh-head",
            "--set",
            "model=/nonexistent/bundle",
            "--set",
            "count=10",
            timeout=400,
        )
        assert res.returncode == 0, res.stderr[-3000:]
        assert res.stdout.splitlines() == ["fresh-head"]
        # it said what it waited for (the dashboard, then perhaps the job agent)
        assert f"waiting up to 240s for the Ray dashboard at {head.address} to answer" in res.stderr, (
            res.stderr
        )
        client = JobSubmissionClient(head.address, headers={"Authorization": f"Bearer {head.token}"})
        assert [j.submission_id for j in client.list_jobs()] == ["fresh-head"]
    finally:
        stop_head(proc)
        shutil.rmtree(tmp, ignore_errors=True)
