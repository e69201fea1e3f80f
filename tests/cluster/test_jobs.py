"""genart submit / jobs / schedule against a real token-authenticated Ray head (see conftest.py)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from genart.generation.verify import verify

ROOT = Path(__file__).resolve().parents[2]
GENERATE = str(ROOT / "configs/generate/digits.yaml")


def tiny_sets(bundle: str, out: str) -> list[str]:
    return [f"model={bundle}", f"output={out}", "count=200", "replicas=1", "shard_size=100", "batch_size=100"]


def genart(args: list[str], env: dict, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "genart.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def client(head):
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(head.address, headers={"Authorization": f"Bearer {head.token}"})


def job_ids(head) -> list[str]:
    return [j.submission_id for j in client(head).list_jobs()]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from tests.conftest import make_tiny_bundle

    uri = str(tmp_path_factory.mktemp("bundle") / "b")
    make_tiny_bundle(uri)
    return uri


def test_submit_wait_generates_and_same_id_runs_once(ray_head, bundle, tmp_path):
    out = str(tmp_path / "out")
    sets = [a for s in tiny_sets(bundle, out) for a in ("--set", s)]
    args = ["submit", GENERATE, "--address", ray_head.address, "--wait", "--submission-id", "gen-once", *sets]
    first = genart(args, ray_head.env())
    assert first.returncode == 0, first.stderr[-3000:]
    assert "gen-once" in first.stdout.splitlines()
    assert verify(out) == []
    again = genart(args, ray_head.env())
    assert again.returncode == 0, again.stderr[-3000:]
    assert "gen-once already exists (SUCCEEDED); not submitted again" in again.stderr
    assert job_ids(ray_head).count("gen-once") == 1
    # the token travels in headers only: never in output, the job's entrypoint, metadata or runtime_env
    info = client(ray_head).get_job_info("gen-once")
    blob = json.dumps({"e": info.entrypoint, "m": info.metadata, "r": info.runtime_env})
    for text in (first.stdout, first.stderr, again.stdout, again.stderr, blob):
        assert ray_head.token not in text
    assert "AWS_SECRET_ACCESS_KEY" not in blob


def test_ray_job_submit_cli_runs_the_entrypoint(ray_head, bundle, tmp_path):
    out = str(tmp_path / "out")
    cmd = [
        str(Path(sys.executable).parent / "ray"),
        "job",
        "submit",
        "--address",
        ray_head.address,
        "--working-dir",
        ".",
        "--submission-id",
        "ray-cli",
        "--",
        "python",
        "jobs/generate.py",
        "configs/generate/digits.yaml",
        *[a for s in tiny_sets(bundle, out) for a in ("--set", s)],
    ]
    env = ray_head.env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=ray_head.token)
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "Job 'ray-cli' succeeded" in proc.stdout
    assert verify(out) == []


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_refused_without_or_with_a_wrong_token(ray_head, tmp_path, token):
    env = ray_head.env(HOME=str(tmp_path))  # no ~/.ray/auth_token either
    env.pop("RAY_AUTH_TOKEN_PATH")
    if token:
        env["RAY_AUTH_TOKEN"] = token
    for args in (
        ["jobs", "list", "--address", ray_head.address],
        ["submit", GENERATE, "--address", ray_head.address, "--set", "count=10"],
    ):
        proc = genart(args, env, timeout=60)
        assert proc.returncode == 1, proc.stderr
        assert f"authentication failed at {ray_head.address}" in proc.stderr
        assert ("no token was found" if token is None else "refused the token") in proc.stderr
        assert "Traceback" not in proc.stderr
        assert ray_head.token not in proc.stderr + proc.stdout


def test_unreachable_address_fails_fast(ray_head):
    from tests.cluster.conftest import free_port

    t0 = time.monotonic()
    proc = genart(
        ["jobs", "list", "--address", f"http://127.0.0.1:{free_port()}"], ray_head.env(), timeout=60
    )
    assert time.monotonic() - t0 < 45
    assert proc.returncode == 1
    assert "cannot reach the Ray dashboard at http://127.0.0.1:" in proc.stderr


def _schedule(tmp_path: Path, name: str, bundle: str, address: str | None) -> tuple[Path, Path, Path]:
    state, out = tmp_path / "state.json", tmp_path / "out"
    cfg = {
        "kind": "schedule",
        "name": name,
        "cron": "0 0 1 1 *",
        "timezone": "Europe/Berlin",
        "job": GENERATE,
        "overrides": {
            "model": bundle,
            "output": f"{out}/{{slot:%Y%m%d}}",
            "count": 200,
            "replicas": 1,
            "shard_size": 100,
            "batch_size": 100,
        },
        "state": str(state),
        "address": address,
        "retry_delay_s": 0,
        "poll_s": 1,
    }
    path = tmp_path / "schedule.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, state, out


def _one_run(state: Path) -> dict:
    runs = json.loads(state.read_text())["runs"]
    assert len(runs) == 1, runs
    return next(iter(runs.values()))


def test_schedule_once_twice_runs_the_slot_once(ray_head, bundle, tmp_path):
    path, state, out = _schedule(tmp_path, "twice", bundle, ray_head.address)
    first = genart(["schedule", str(path), "--once"], ray_head.env())
    assert first.returncode == 0, first.stderr[-3000:]
    second = genart(["schedule", str(path), "--once"], ray_head.env())
    assert second.returncode == 0, second.stderr[-3000:]
    run = _one_run(state)
    assert run["status"] == "succeeded" and len(run["attempts"]) == 1
    assert run["slot"].endswith("T00:00:00+01:00")
    assert job_ids(ray_head).count(run["run_id"]) == 1
    [day] = list(out.iterdir())
    assert day.name == run["slot"][:10].replace("-", "") and verify(str(day)) == []


def test_scheduler_killed_mid_run_resumes_without_a_second_run(ray_head, bundle, tmp_path):
    path, state, out = _schedule(tmp_path, "killed", bundle, ray_head.address)
    cmd = [sys.executable, "-m", "genart.cli", "schedule", str(path), "--once"]
    proc = subprocess.Popen(
        cmd, env=ray_head.env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if state.exists() and json.loads(state.read_text())["runs"]:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert _one_run(state)["status"] == "running"
    again = genart(["schedule", str(path), "--once"], ray_head.env())
    assert again.returncode == 0, again.stderr[-3000:]
    run = _one_run(state)
    assert run["status"] == "succeeded" and len(run["attempts"]) == 1
    ids = job_ids(ray_head)
    assert ids.count(run["run_id"]) == 1 and not [i for i in ids if i.startswith(f"{run['run_id']}-")]
    [day] = list(out.iterdir())
    assert verify(str(day)) == []


def test_local_schedule_once_runs_in_process(ray_head, bundle, tmp_path):
    path, state, out = _schedule(tmp_path, "local", bundle, None)
    for _ in range(2):
        proc = genart(["schedule", str(path), "--once"], ray_head.env(), timeout=180)
        assert proc.returncode == 0, proc.stderr[-3000:]
    run = _one_run(state)
    assert run["status"] == "succeeded" and len(run["attempts"]) == 1
    [day] = list(out.iterdir())
    assert verify(str(day)) == []
