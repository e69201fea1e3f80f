"""A real Ray head for the Jobs API: `ray start --head --block` on 127.0.0.1 with token auth, stopped by PID.

`ray start --block` stays in the foreground as the parent of the node's processes and stops all of them on
SIGTERM, so the fixture tears the cluster down through the one PID it started.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Head:
    address: str
    token: str
    token_path: str
    pid: int

    def env(self, **extra: str) -> dict:
        """Environment for a client process: the token file, no RAY_ADDRESS, nothing else inherited from Ray."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("RAY_") and k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        }
        env.update(RAY_AUTH_TOKEN_PATH=self.token_path, PATH=f"{BIN}:{env.get('PATH', '')}")
        env.update(extra)
        return env


def _wait_ready(address: str, token: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Bounded wait until the Jobs API accepts a job (the dashboard agent registers after the head is up)."""
    import requests

    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {token}"}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited with {proc.returncode}")
        try:
            r = requests.post(f"{address}/api/jobs/", json={"entrypoint": "true"}, headers=headers, timeout=5)
            if r.status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise RuntimeError(f"the Jobs API at {address} did not come up within {timeout}s")


def start_head(tmp: str) -> tuple[subprocess.Popen, Head]:
    """Start `ray start --head --block` on 127.0.0.1 with token auth under `tmp`; does not wait for it."""
    token = secrets.token_hex(32)
    token_path = os.path.join(tmp, "auth_token")
    with open(os.open(token_path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write(token)
    dash = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN_PATH=token_path,
        PATH=f"{BIN}:{env.get('PATH', '')}",
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
    )  # keep the single node on 127.0.0.1
    ports = []
    for flag in (
        "--port",
        "--ray-client-server-port",
        "--node-manager-port",
        "--object-manager-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--runtime-env-agent-port",
        "--metrics-export-port",
    ):
        ports += [flag, str(free_port())]
    cmd = [
        str(BIN / "ray"),
        "start",
        "--head",
        "--block",
        "--node-ip-address",
        "127.0.0.1",
        "--dashboard-host",
        "127.0.0.1",
        "--dashboard-port",
        str(dash),
        "--num-cpus",
        "2",
        "--temp-dir",
        os.path.join(tmp, "r"),
        "--disable-usage-stats",
        *ports,
    ]
    with open(os.path.join(tmp, "head.log"), "w") as log:
        proc = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp
        )
    return proc, Head(f"http://127.0.0.1:{dash}", token, token_path, proc.pid)


def stop_head(proc: subprocess.Popen) -> None:
    """SIGTERM to the one PID started (ray start --block stops the node's processes), bounded waits."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def ray_head():
    tmp = tempfile.mkdtemp(prefix="gj-", dir="/tmp")  # short: Unix socket paths
    proc, head = start_head(tmp)
    try:
        _wait_ready(head.address, head.token, proc)
        yield head
    finally:
        stop_head(proc)
        shutil.rmtree(tmp, ignore_errors=True)
