"""The local Ray cluster genart starts for itself: loopback only, token auth, its own address pinned.

The cluster starts in a fresh interpreter (as `genart generate/train` start it: no test fixture's
environment, HOME in a temp dir), beside a second Ray instance on the same machine started here with
`ray start --head --block` and stopped by its PID.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import requests

from genart.errors import ClusterError, ConfigError
from genart.ray_session import MIN_RAY, local_auth_mode, ray_session, require_ray, write_token
from tests.cluster.conftest import stop_head

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env(home: Path, **extra: str) -> dict:
    """A user's shell: no RAY_* settings (not even the suite's loopback flag), this checkout's genart."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "GENART_"))}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT), PATH=f"{BIN}:{env.get('PATH', '')}", **extra)
    return env


# ---- plain Python: no Ray started -------------------------------------------------------------------


@pytest.mark.parametrize("version", ["2.52.0", "2.58.1", "2.59.9", "not-a-version"])
def test_a_ray_without_safe_local_clusters_is_refused(version):
    with pytest.raises(ClusterError) as e:
        require_ray(version)
    assert str(e.value) == (
        f"genart needs Ray >= {MIN_RAY} to start a token-authenticated local cluster, but Ray {version} "
        f"is installed; upgrade it (pip install 'ray[train,data,default]>={MIN_RAY}') or join an "
        "existing cluster with --address"
    )


@pytest.mark.parametrize("version", ["2.60.0", "2.60.1", "2.61.0rc1", "3.0.0"])
def test_ray_with_safe_local_clusters_is_accepted(version):
    require_ray(version)


def test_pyproject_requires_the_same_ray():
    text = (ROOT / "pyproject.toml").read_text()
    assert f'"ray[train,data,default]>={MIN_RAY},<3"' in text


@pytest.mark.parametrize("env", [{}, {"RAY_AUTH_MODE": "token"}, {"RAY_AUTH_MODE": " Token "}])
def test_local_clusters_use_token_auth(env):
    assert local_auth_mode(env) == "token"


@pytest.mark.parametrize(
    "env",
    [
        {"RAY_AUTH_MODE": "disabled"},
        {"RAY_AUTH_MODE": "disabled", "GENART_ALLOW_NO_AUTH": "yes"},
        {"RAY_AUTH_MODE": "k8s", "GENART_ALLOW_NO_AUTH": "1"},
        {"RAY_AUTH_MODE": ""},
    ],
)
def test_no_auth_is_refused_without_the_explicit_opt_out(env):
    if env["RAY_AUTH_MODE"] == "":
        assert local_auth_mode(env) == "token"  # empty = unset
        return
    with pytest.raises(ConfigError) as e:
        local_auth_mode(env)
    assert str(e.value) == (
        f"RAY_AUTH_MODE={env['RAY_AUTH_MODE']!r}: genart starts local Ray clusters only with token auth "
        "(RAY_AUTH_MODE=token or unset); to run one without, set RAY_AUTH_MODE=disabled and "
        "GENART_ALLOW_NO_AUTH=1"
    )


def test_no_auth_with_the_opt_out():
    assert local_auth_mode({"RAY_AUTH_MODE": "disabled", "GENART_ALLOW_NO_AUTH": "1"}) == "disabled"


def test_refused_auth_mode_starts_nothing(monkeypatch):
    import ray

    assert not ray.is_initialized()
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.delenv("GENART_ALLOW_NO_AUTH", raising=False)
    with pytest.raises(ConfigError), ray_session(None):
        pass
    assert not ray.is_initialized()


def test_token_file_is_private_and_fresh(tmp_path):
    a = write_token(str(tmp_path))
    assert stat.S_IMODE(os.stat(a).st_mode) == 0o600
    token = Path(a).read_text()
    assert len(token) == 64 and int(token, 16) >= 0
    with pytest.raises(FileExistsError):  # never overwrites (or follows) what is already there
        write_token(str(tmp_path))
    other = tmp_path / "o"
    other.mkdir()
    b = write_token(str(other))
    assert Path(b).read_text() != token


def test_refused_auth_mode_is_one_line_and_exit_2(tmp_path):
    """`genart train` with RAY_AUTH_MODE=disabled: exit 2, one line, no traceback, nothing trained."""
    out = tmp_path / "t"
    p = subprocess.run(
        [
            str(BIN / "genart"),
            "train",
            str(ROOT / "configs/train/cgan-digits.yaml"),
            "--set",
            f"output={out}",
        ],
        env=_clean_env(tmp_path, RAY_AUTH_MODE="disabled"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 2, p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    assert "RAY_AUTH_MODE='disabled': genart starts local Ray clusters only with token auth" in p.stderr


# ---- real clusters ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def other_ray():
    """Another Ray instance on this machine (a colleague's, a notebook's): its own temp dir and token,
    on 127.0.0.1, stopped through the one PID started here. Yields its GCS address."""
    tmp = tempfile.mkdtemp(prefix="go-", dir="/tmp")  # short: Unix socket paths
    token_path = os.path.join(tmp, "auth_token")
    with open(os.open(token_path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write(secrets.token_hex(32))
    port = _free_port()
    env = _clean_env(Path(tmp), RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=token_path)
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ports = []
    for flag in ("--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
                 "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port",
                 "--ray-client-server-port"):  # fmt: skip
        ports += [flag, str(_free_port())]
    log = open(os.path.join(tmp, "head.log"), "w")
    proc = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port),
         "--num-cpus", "1", "--include-dashboard", "false", "--temp-dir", os.path.join(tmp, "r"),
         "--disable-usage-stats", *ports],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not any(
            c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in _tree_connections(proc.pid)
        ):
            assert proc.poll() is None, Path(tmp, "head.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the other Ray head did not come up within 120 s"
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        stop_head(proc)
        log.close()
        subprocess.run(["rm", "-rf", tmp], check=False)


def _tree_connections(pid: int) -> list:
    """LISTEN and other inet sockets of `pid` and all its descendants (Ray's GCS, raylet, agents, workers)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []
    conns = []
    for p in procs:
        try:
            conns += [c for c in p.net_connections(kind="inet")]
        except psutil.NoSuchProcess:
            pass
    return conns


SESSION = r"""
import json, os, sys
import ray
from genart.ray_session import ray_session

with ray_session(None, num_cpus=1, dashboard=True):
    @ray.remote
    def probe():
        # what Ray Train's placement-group cleaner does on the cluster: the state API with no address
        from ray.util.state import list_nodes
        return os.environ.get("RAY_ADDRESS"), [n.node_ip for n in list_nodes()]

    addr, ips = ray.get(probe.remote())
    print(json.dumps({"gcs": ray.get_runtime_context().gcs_address, "worker_ray_address": addr,
                      "node_ips": ips, "mode": os.environ.get("RAY_AUTH_MODE"),
                      "token_path": os.environ.get("RAY_AUTH_TOKEN_PATH"),
                      "dashboard": os.environ.get("RAY_API_SERVER_ADDRESS")}), flush=True)
    sys.stdin.readline()  # the test inspects the running cluster, then lets it stop
print("STOPPED", json.dumps([os.environ.get(k) for k in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")]), flush=True)
"""


def test_local_cluster_listens_on_loopback_only_with_a_private_token(other_ray, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", SESSION],
        env=_clean_env(tmp_path),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        line = proc.stdout.readline()  # bounded by the module's pytest timeout
        assert line, proc.stderr.read()[-3000:]
        info = json.loads(line)
        # its own cluster, and every process of it knows which one that is
        assert info["gcs"] != other_ray and info["gcs"].startswith("127.0.0.1:")
        assert info["worker_ray_address"] == info["gcs"]
        assert info["node_ips"] == ["127.0.0.1"]
        # token auth with a fresh token only its owner can read
        assert info["mode"] == "token"
        token_path = Path(info["token_path"])
        assert stat.S_IMODE(token_path.stat().st_mode) == 0o600
        assert stat.S_IMODE(token_path.parent.stat().st_mode) == 0o700
        r = requests.get(f"{info['dashboard']}/api/jobs/", timeout=10)
        assert r.status_code == 401
        token = token_path.read_text().strip()
        ok = requests.get(
            f"{info['dashboard']}/api/jobs/", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert ok.status_code == 200
        # every listening socket of the driver and of every process it started is on loopback
        listening = [c for c in _tree_connections(proc.pid) if c.status == psutil.CONN_LISTEN]
        assert len(listening) >= 8, listening  # GCS, raylet x2, dashboard, agents, workers
        outward = [c.laddr for c in listening if not _loopback(c.laddr.ip)]
        assert outward == [], f"sockets beyond 127.0.0.1: {outward}"
        assert not (tmp_path / ".ray").exists()  # Ray did not write a token of its own into ~/.ray
        proc.stdin.write("\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == 0, err[-3000:]
    assert out.strip().splitlines()[-1] == "STOPPED " + json.dumps([None, None, None])  # environment restored
    assert not token_path.parent.exists()  # the token goes with its cluster
    assert "Found multiple active Ray instances" not in err


def _loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


@pytest.mark.slow  # a whole `genart train` (~40 s idle, minutes on a busy machine); the mechanism is in
# test_local_cluster_listens_on_loopback_only_with_a_private_token (a worker's state API call, no address)
def test_train_beside_another_ray_uses_only_its_own_cluster(other_ray, tmp_path):
    """Ray Train's placement-group cleaner asks the state API for "the" local Ray; with two instances on
    the machine it logged `ConnectionError: Found multiple active Ray instances` on every run."""
    out = tmp_path / "t"
    p = subprocess.run(
        [str(BIN / "genart"), "train", str(ROOT / "configs/train/cgan-digits.yaml"), "--set", f"output={out}",
         "--set", "train.steps=2", "--set", "train.checkpoint_every=2", "--set", "model.g_width=8",
         "--set", "model.d_width=8", "--set", "train.batch_size=16"],
        env=_clean_env(tmp_path), capture_output=True, text=True, timeout=400, cwd=tmp_path,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    assert "Found multiple active Ray instances" not in p.stdout + p.stderr
    assert "ConnectionError" not in p.stdout + p.stderr
    meta = json.loads((out / "model" / "model.json").read_text())
    assert meta["training"]["steps"] == 2
    assert not (tmp_path / ".ray").exists()
