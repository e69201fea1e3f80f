"""The state file of `genart up`: which local Ray it started, where, with which token. No Ray here.

It lives in the per-user directory $GENART_HOME (default ~/.genart, mode 0700) as `warm.json` (mode 0600),
next to the cluster's `auth_token`. Every later `genart generate / synthesize / walk` on this machine reads
it (`find_warm`) to join that Ray instead of starting a private one; `genart down` stops exactly the process
recorded here (its PID and start time, so a reused PID is never signalled).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from genart.errors import ClusterError

log = logging.getLogger(__name__)

HOME_ENV = "GENART_HOME"
WARM_ENV = "GENART_WARM"  # "0": ignore a running `genart up` (this run starts its own cold local Ray)
NAMESPACE = "genart-warm"  # the Ray namespace of the warm replicas (named, detached actors)
STATE_FILE = "warm.json"
TOKEN_FILE = "auth_token"
FORMAT = "genart-warm/1"


@dataclass(frozen=True)
class WarmState:
    """What `genart up` started: the `ray start --head --block` process (`pid`, its start time `pid_started`
    in seconds since the epoch as psutil reports it), the GCS address (127.0.0.1:PORT), the token file, Ray's
    temp dir and log, and when (`started_at`, UTC ISO 8601)."""

    pid: int
    pid_started: float
    gcs: str
    token_path: str
    temp_dir: str
    log_path: str
    started_at: str
    namespace: str = NAMESPACE
    format: str = FORMAT


def home() -> Path:
    """$GENART_HOME, or ~/.genart."""
    return Path(os.environ.get(HOME_ENV) or "~/.genart").expanduser()


def ensure_home() -> Path:
    """The home directory, created owner-only (0700). Raises ClusterError when it cannot be."""
    path = home()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)
    except OSError as exc:
        raise ClusterError(
            f"cannot create {path} for genart up's state ({exc}); set {HOME_ENV} to a writable folder"
        ) from exc
    return path


def state_path() -> Path:
    return home() / STATE_FILE


def read_state() -> WarmState | None:
    """The recorded state, or None when there is none. A file that is not a state genart wrote is reported
    and treated as none (it is left in place for `genart down` to remove)."""
    path = state_path()
    try:
        raw = json.loads(path.read_text())
        state = WarmState(**raw)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        log.warning("%s is not a genart up state file (%s); ignoring it (genart down removes it)", path, exc)
        return None
    return state if state.format == FORMAT else None


def write_state(state: WarmState) -> Path:
    """Write the state atomically (a 0600 temp file renamed over warm.json)."""
    path = ensure_home() / STATE_FILE
    tmp = path.with_name(f".{STATE_FILE}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(state), f, indent=2)
    os.replace(tmp, path)
    return path


def remove_state(state: WarmState | None) -> None:
    """Remove warm.json when it still records `state` (a newer `genart up` may have replaced it); None
    removes whatever is there."""
    if state is not None and read_state() != state:
        return
    try:
        state_path().unlink()
    except FileNotFoundError:
        pass


def process_alive(pid: int, started: float) -> bool:
    """Whether the process `pid` runs and is the one started at `started` (not a reused PID)."""
    import psutil

    try:
        return abs(psutil.Process(pid).create_time() - started) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def process_start_time(pid: int) -> float:
    import psutil

    return psutil.Process(pid).create_time()


def answers(address: str, timeout_s: float = 1.0) -> bool:
    """Whether something accepts TCP connections at HOST:PORT."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def find_warm() -> WarmState | None:
    """The running `genart up` this process may join, or None (run cold, as without `up`).

    A state whose Ray process is gone is stale: said once (a warning) and removed, so later runs are cold
    without a word. A Ray that runs but does not answer is reported and left alone. GENART_WARM=0 skips it."""
    if os.environ.get(WARM_ENV) == "0":
        return None
    state = read_state()
    if state is None:
        return None
    if not process_alive(state.pid, state.pid_started):
        log.warning(
            "genart up's Ray (PID %d, started %s) is no longer running: running cold (a private local Ray); "
            "removed its stale state file %s",
            state.pid,
            state.started_at,
            state_path(),
        )
        remove_state(state)
        return None
    if not answers(state.gcs):
        log.warning("genart up's Ray at %s does not answer: running cold; `genart down` stops it", state.gcs)
        return None
    return state


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
