"""`genart up | status | down`: a local Ray kept running with warm replicas, and stopping exactly it.

`up` starts `ray start --head --block` in its own session (loopback only, a fresh token in $GENART_HOME, Ray's
temp dir its own), records it in $GENART_HOME/warm.json (`genart/warm_state.py`), then loads each bundle named
into `replicas` warm actors (`genart/generation/warm.py`). `down` signals only the process recorded there
(checked by PID and start time): SIGTERM to the processes of the session it started (`ray start` runs as a session
leader, so Ray's head processes share its process group), SIGKILL to those left after DOWN_TIMEOUT_S.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from genart.errors import ClusterError
from genart.ray_session import (
    LOOPBACK,
    LOOPBACK_ONLY,
    free_port,
    local_auth_mode,
    require_ray,
    warm_session,
    write_token,
)
from genart.warm_state import (
    NAMESPACE,
    TOKEN_FILE,
    WarmState,
    ensure_home,
    find_warm,
    process_alive,
    process_start_time,
    read_state,
    remove_state,
    state_path,
    utc_now,
)

log = logging.getLogger(__name__)

START_TIMEOUT_S = 90.0
DOWN_TIMEOUT_S = 10.0
LOAD_TIMEOUT_S = 600.0
TEMP_PREFIX = "genart-up-"


def up(models: list[str], replicas: int = 2, gpus: float = 0.0) -> tuple[WarmState, list[dict]]:
    """Start the warm Ray (unless one runs) and make each bundle warm in `replicas` replicas.

    Returns (the state, one {uri, model_id, replicas, reused, since} per bundle). Raises ClusterError when
    Ray cannot start or a recorded one does not answer, BundleError when a bundle does not load. When this
    call started Ray and then fails (or is interrupted), it stops that Ray again."""
    from genart.errors import ConfigError

    if not 1 <= replicas <= 64:
        raise ConfigError(f"--replicas must be 1..64 (warm replicas per bundle), got {replicas}")
    from genart.bundle import read_meta

    for uri in models:  # a missing or foreign bundle fails before any Ray starts
        read_meta(uri)
    state, started = find_warm(), False
    if state is None:
        if read_state() is not None:
            raise ClusterError(
                f"genart up's Ray recorded in {state_path()} does not answer; run `genart down` first"
            )
        try:
            state = _start_head()
        except (
            ClusterError
        ) as exc:  # Ray gives its raylet a fixed 30 s to register: once more on a busy machine
            log.warning("%s\nstarting Ray once more", str(exc).splitlines()[0])
            state = _start_head()
        started = True
    try:
        return state, _warm_bundles(state, models, replicas, gpus)
    except BaseException:
        if started:
            _stop(state)
        raise


def _start_head() -> WarmState:
    import ray

    require_ray(ray.__version__)
    home = ensure_home()
    mode = local_auth_mode(os.environ)
    token = home / TOKEN_FILE
    token.unlink(missing_ok=True)  # the previous up's token: that Ray is gone (else find_warm found it)
    token_path = write_token(str(home)) if mode == "token" else ""
    temp = tempfile.mkdtemp(prefix=TEMP_PREFIX, dir="/tmp")  # short: Ray's socket paths stay < 108 bytes
    gcs = f"{LOOPBACK}:{free_port()}"
    ports = ["--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port",
             "--ray-client-server-port"]  # fmt: skip
    cmd = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", "--node-ip-address", LOOPBACK,
           "--port", gcs.rpartition(":")[2], "--include-dashboard", "false", "--num-cpus", str(os.cpu_count() or 1),
           "--temp-dir", temp, "--disable-usage-stats"]  # fmt: skip
    for opt in ports:
        cmd += [opt, str(free_port())]
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
    env.update({"RAY_AUTH_MODE": mode, LOOPBACK_ONLY: "0"})
    if token_path:
        env["RAY_AUTH_TOKEN_PATH"] = token_path
    env["PYTHONUNBUFFERED"] = "1"  # its "Ray runtime started." reaches the log at once
    log_path = home / "ray.log"
    offset = log_path.stat().st_size if log_path.exists() else 0
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=str(home),
        )  # fmt: skip
    state = WarmState(proc.pid, process_start_time(proc.pid), gcs, token_path, temp, str(log_path), utc_now())
    from genart.warm_state import write_state

    write_state(state)  # before waiting: a `genart down` stops even an up that never came up
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _started(log_path, offset):  # `ray start` says so once its node registered
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = _read_from(log_path, offset)[-2000:]
            _stop(state)
            raise ClusterError(f"Ray did not start (exit {proc.poll()}); the end of {log_path}:\n{tail}")
        time.sleep(0.2)
    log.info("started Ray at %s (PID %d, temp dir %s)", gcs, proc.pid, temp)
    return state


def _read_from(path: Path, offset: int) -> str:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def _started(log_path: Path, offset: int) -> bool:
    return "Ray runtime started." in _read_from(log_path, offset)


def _warm_bundles(state: WarmState, models: list[str], replicas: int, gpus: float) -> list[dict]:
    import ray

    from genart.bundle import read_meta
    from genart.generation.warm import canonical, warm_actor

    out = []
    deadline = time.monotonic() + START_TIMEOUT_S
    with _retrying_join(state, deadline):
        for uri in models:
            model_id = read_meta(uri)["model_id"]
            actors = [warm_actor(uri, gpus, i) for i in range(replicas)]
            calls = [a.load.remote(canonical(uri), None, model_id, gpus) for a in actors]
            try:
                infos = ray.get(calls, timeout=LOAD_TIMEOUT_S)
            except ray.exceptions.RayTaskError as exc:
                cause = getattr(exc, "cause", None)
                raise (cause if isinstance(cause, Exception) else ClusterError(str(exc))) from exc
            out.append({"uri": canonical(uri), "model_id": model_id, "replicas": replicas,
                        "reused": sum(i["reused"] for i in infos), "since": min(i["since"] for i in infos)})  # fmt: skip
    return out


@contextlib.contextmanager
def _retrying_join(state: WarmState, deadline: float) -> Iterator[None]:
    """warm_session, retried until `deadline` while the new head's raylet registers."""
    while True:
        session = warm_session(state)
        try:
            session.__enter__()
            break
        except ClusterError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    try:
        yield
    finally:
        session.__exit__(None, None, None)


def status() -> dict | None:
    """None when `genart up` is not running (a stale state is removed); else {state, replicas}: each warm
    actor's name and `WarmReplica.info()` (pid, started_at, open_jobs, bundles)."""
    import ray

    from genart.generation.warm import WarmReplica  # noqa: F401 - the class the handles call

    state = find_warm()
    if state is None:
        return None
    rows = []
    with warm_session(state):
        names = sorted(ray.util.list_named_actors())
        handles = [ray.get_actor(n, namespace=NAMESPACE) for n in names]
        infos = ray.get([h.info.remote() for h in handles], timeout=30)
        rows = [{"name": n, **i} for n, i in zip(names, infos)]
    return {"state": state, "replicas": rows}


def down() -> str:
    """Stop what `genart up` started (and only that); returns what was done, one line."""
    state = read_state()
    if state is None:
        if state_path().exists():
            remove_state(None)
            return f"removed an unreadable {state_path()}; nothing was stopped"
        return "genart up is not running; nothing to stop"
    was_running = process_alive(state.pid, state.pid_started)
    _stop(state)
    if was_running:
        return f"stopped genart up's Ray at {state.gcs} (PID {state.pid})"
    return f"genart up's Ray (PID {state.pid}) had already exited; removed its state"


def _members(state: WarmState) -> list:
    """The processes of the session `up` started: its process group (the head's PID), none older than it."""
    import psutil

    found = []
    for proc in psutil.process_iter(["create_time"]):
        try:
            if os.getpgid(proc.pid) == state.pid and proc.info["create_time"] >= state.pid_started - 1:
                found.append(proc)
        except (ProcessLookupError, PermissionError):
            continue
    return found


def _stop(state: WarmState) -> None:
    """SIGTERM every process of up's session at once (`ray start --block` alone takes long to stop its
    node under load), SIGKILL what is left after DOWN_TIMEOUT_S; then remove the temp dir, token and state."""
    import psutil

    members = _members(state)  # also when the head itself has exited and left processes behind
    for proc in members:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, left = psutil.wait_procs(members, timeout=DOWN_TIMEOUT_S)
    if left:
        log.info(
            "%d Ray process(es) still running %gs after SIGTERM; killing them", len(left), DOWN_TIMEOUT_S
        )
    for proc in left:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(left, timeout=DOWN_TIMEOUT_S)
    temp = Path(state.temp_dir)
    if temp.name.startswith(TEMP_PREFIX) and temp.parent == Path("/tmp"):
        shutil.rmtree(temp, ignore_errors=True)
    if state.token_path:
        Path(state.token_path).unlink(missing_ok=True)
    remove_state(state)
