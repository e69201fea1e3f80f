"""Submit job configs to a Ray cluster through its Jobs API (token-authenticated) and manage the jobs.

`genart submit CONFIG` runs `python jobs/<kind>.py CONFIG --set ...` on the cluster with this checkout
as the job's working_dir, so the cluster runs the same code as `genart <kind> CONFIG` here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from genart.errors import ClusterError, ConfigError, JobFailed
from genart.ray_session import STORAGE_ENV_PUBLIC

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINTS = {"train": "jobs/train.py", "generate": "jobs/generate.py", "synthesize": "jobs/synthesize.py"}
# Never uploaded with the working_dir (Ray also honours .gitignore and .rayignore).
EXCLUDES = [
    ".git",
    ".venv",
    "venv",
    "out",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    "*.egg-info",
    "build",
    "dist",
    "cluster/.local",
]
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
CONNECT_TIMEOUT_S, READ_TIMEOUT_S = 10.0, 120.0
# A head that is still starting refuses connections until its dashboard is up, then answers "No available
# agent" until its job agent registers (over a minute on a busy 2-core machine): `genart submit` waits this
# long by default (--wait-for-cluster).
CLUSTER_WAIT_S = 120.0
RETRY_EVERY_S = 2.0


def read_token() -> str | None:
    """The token from where Ray looks for it: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token."""
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return os.environ["RAY_AUTH_TOKEN"].strip()
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token")
    try:
        return Path(path).read_text().strip() or None
    except FileNotFoundError:
        if os.environ.get("RAY_AUTH_TOKEN_PATH"):
            raise ClusterError(f"RAY_AUTH_TOKEN_PATH names {path}, which does not exist") from None
        return None
    except OSError as exc:
        raise ClusterError(f"cannot read the Ray token file {path} ({exc.strerror})") from None


def _client_class():
    from ray.job_submission import JobSubmissionClient

    class _BoundedClient(JobSubmissionClient):
        """Every HTTP request gets a timeout (Ray's client has none), so a dead address fails quickly."""

        def _do_request(self, method, endpoint, **kwargs):
            kwargs.setdefault("timeout", (CONNECT_TIMEOUT_S, READ_TIMEOUT_S))
            return super()._do_request(method, endpoint, **kwargs)

    return _BoundedClient


def _auth_failed(address: str, exc: Exception, token: str | None) -> ClusterError:
    why = (
        "no token was found: set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH, or write ~/.ray/auth_token"
        if token is None
        else "the cluster refused the token: check it is this cluster's token"
    )
    return ClusterError(f"authentication failed at {address}: {why}")


def connect(address: str, wait_s: float = 0.0):
    """A JobSubmissionClient for `address` that sends the token on every request (it is never logged).

    Waits up to `wait_s` seconds for a dashboard that does not answer yet (a head still starting), saying
    so once. Raises ConfigError for an address that is no URL, ClusterError when authentication fails or
    the dashboard does not answer in time."""
    import requests
    from ray.exceptions import AuthenticationError

    if not address.startswith(("http://", "https://")):
        raise ConfigError(f"--address {address!r}: give the Ray dashboard URL, e.g. http://127.0.0.1:8265")
    token = read_token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    waiting = _Waiting(wait_s, f"the Ray dashboard at {address} to answer")
    while True:
        try:
            return _client_class()(address, headers=headers)
        except AuthenticationError as exc:
            raise _auth_failed(address, exc, token) from None
        except (ConnectionError, requests.exceptions.RequestException) as exc:
            if waiting.again(type(exc).__name__):
                continue
            raise ClusterError(
                f"cannot reach the Ray dashboard at {address} ({type(exc).__name__}{waiting.waited()}); "
                "check the address, that the cluster is up, and your SSH tunnel if it is remote"
            ) from None


class _Waiting:
    """A bounded wait for the cluster: `again()` sleeps and returns True while time is left (logging what it
    waits for once), False when the time is up."""

    def __init__(self, wait_s: float, what: str):
        self.wait_s, self.what = max(0.0, wait_s), what
        self.t0 = time.monotonic()
        self.said = False

    def again(self, why: str) -> bool:
        left = self.wait_s - (time.monotonic() - self.t0)
        if left <= 0:
            return False
        if not self.said:
            log.info("waiting up to %.0fs for %s (%s)", self.wait_s, self.what, why)
            self.said = True
        time.sleep(min(RETRY_EVERY_S, left))
        return True

    def waited(self) -> str:
        return f"; waited {time.monotonic() - self.t0:.0f}s" if self.said else ""


def _call(address: str, fn: Callable, *args, **kwargs):
    """Run one client call; authentication and connection problems become ClusterError."""
    import requests
    from ray.exceptions import AuthenticationError

    try:
        return fn(*args, **kwargs)
    except AuthenticationError as exc:
        raise _auth_failed(address, exc, read_token()) from None
    except requests.exceptions.RequestException as exc:
        raise ClusterError(f"lost the Ray dashboard at {address} ({type(exc).__name__})") from None


def refuse_credentials(cfg, config: str | Path) -> None:
    """Refuse a config (file or `--set`) that would carry credentials to the cluster.

    A submitted job's arguments are its entrypoint (kept in the job table, shown by the dashboard and
    `genart jobs list`) and its config file travels in the uploaded working_dir, so credential-like
    storage options (key, secret, token, password, session, credential...) and URLs with a password
    or a signed query never may. Raises ConfigError (exit 2) naming the first such key.
    """
    from genart.cluster.credentials import credential_paths

    options = getattr(getattr(cfg, "storage", None), "options", None) or {}
    found = [f"storage.options.{p}" for p in credential_paths(options)]
    found += [p for p in credential_paths(cfg.model_dump(mode="json"), by_name=False) if p not in found]
    if found:
        raise ConfigError(
            f"{config}: {found[0]}: credentials cannot be submitted with a job (they would be stored in "
            "the job's entrypoint and uploaded working_dir, visible to everyone who can list the cluster's "
            "jobs); remove it and give the cluster's nodes their credentials through their own environment "
            "(e.g. AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or an instance role) or the cluster's secret store"
        )


def _secret_files() -> list[str]:
    """Other YAML files of the checkout that hold credentials: left out of the uploaded working_dir."""
    from genart.cluster.credentials import credential_files

    found = credential_files(REPO_ROOT)
    for rel in found:
        log.warning("not uploading %s with the job: it holds credential-like keys", rel)
    return [f"/{rel}" for rel in found]  # anchored at the working_dir's root (gitignore syntax)


@dataclass(frozen=True)
class JobSpec:
    """What `genart submit` sends: the entrypoint command, the runtime environment and metadata."""

    kind: str
    entrypoint: str
    runtime_env: dict
    metadata: dict


def build_job(config: str | Path, overrides: Iterable[str] = ()) -> JobSpec:
    """Validate CONFIG here (before uploading anything); describe the job that runs it on a cluster."""
    from genart.config import load_config

    overrides = list(overrides)
    cfg = load_config(config, overrides)
    if cfg.kind not in ENTRYPOINTS:
        raise ConfigError(
            f"{config}: kind {cfg.kind!r} cannot be submitted; submit a train or generate config"
        )
    refuse_credentials(cfg, config)
    if overrides:  # the file travels whole in the working_dir, whatever `--set` replaced
        try:
            as_filed = load_config(config)
        except ConfigError:
            as_filed = None  # the file alone is incomplete; what it holds was validated above
        if as_filed is not None:
            refuse_credentials(as_filed, config)
    entry = ENTRYPOINTS[cfg.kind]
    if not (REPO_ROOT / entry).is_file():
        raise ConfigError(f"{config}: kind {cfg.kind!r} has no entrypoint {entry} in this checkout yet")
    try:
        rel = Path(config).resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        raise ConfigError(
            f"{config}: the config must live inside the checkout {REPO_ROOT} (uploaded as the working_dir)"
        ) from None
    # Inside a Ray job, ray.init() joins the job's own cluster (RAY_ADDRESS): the job runs with address null.
    args = ["python", entry, rel, *[a for o in overrides for a in ("--set", o)], "--set", "address=null"]
    env = {k: os.environ[k] for k in STORAGE_ENV_PUBLIC if os.environ.get(k)}  # endpoints/region, no secrets
    hidden = [p for p in _secret_files() if p != f"/{rel}"]  # the job's own config was checked above
    runtime_env = {"working_dir": str(REPO_ROOT), "excludes": EXCLUDES + hidden, "env_vars": env}
    return JobSpec(cfg.kind, shlex.join(args), runtime_env, {"genart_kind": cfg.kind, "genart_config": rel})


def shown_entrypoint(entrypoint: str) -> str:
    """A job's entrypoint safe to print: credential-like `KEY=VALUE` values and URL passwords masked
    (for jobs that were submitted by other tools or older genart versions)."""
    from genart.cluster.credentials import is_credential_key, scrub

    try:
        words = shlex.split(entrypoint)
    except ValueError:
        return scrub(entrypoint)
    out = []
    for w in words:
        key, sep, _ = w.partition("=")
        last = key.rsplit(".", 1)[-1].lstrip("-")
        out.append(f"{key}=***" if sep and is_credential_key(last) else scrub(w))
    return shlex.join(out)


def submit(
    client, address: str, spec: JobSpec, submission_id: str | None = None, wait_s: float = CLUSTER_WAIT_S
) -> tuple[str, bool]:
    """Submit `spec`; returns (submission id, True when a job with this id already existed: not rerun).

    A head whose job agent is not up yet ("No available agent") is retried for up to `wait_s` seconds.
    Raises ClusterError when the cluster refuses the job or its agent does not come up in time."""
    waiting = _Waiting(wait_s, f"the job agent of the cluster at {address} to come up")
    while True:
        try:
            sid = _call(
                address,
                client.submit_job,
                entrypoint=spec.entrypoint,
                runtime_env=spec.runtime_env,
                metadata=spec.metadata,
                submission_id=submission_id,
            )
            log.info("submitted %s", sid)
            return sid, False
        except RuntimeError as exc:
            text = str(exc)
            if submission_id and "already exists" in text:
                log.info("job %s already exists; not submitting it again", submission_id)
                return submission_id, True
            if "No available agent" in text:
                if waiting.again("No available agent to submit job"):
                    continue
                raise ClusterError(
                    f"the cluster at {address} has no job agent up yet (No available agent to submit job"
                    f"{waiting.waited()}); wait longer with --wait-for-cluster SECONDS, or check the head's "
                    "dashboard_agent log"
                ) from None
            raise ClusterError(f"the cluster at {address} refused the job: {text[:500]}") from None


def status(client, address: str, job_id: str) -> str:
    """The job's status, or MISSING when the cluster has no job with this id."""
    try:
        return str(_call(address, client.get_job_status, job_id).value)
    except RuntimeError as exc:
        if "does not exist" in str(exc):
            return "MISSING"
        raise ClusterError(f"cannot read the status of job {job_id} at {address}: {str(exc)[:300]}") from None


def info(client, address: str, job_id: str):
    return _call(address, client.get_job_info, job_id)


def list_jobs(client, address: str) -> list:
    return _call(address, client.list_jobs)


def logs(client, address: str, job_id: str) -> str:
    return _call(address, client.get_job_logs, job_id)


def stop(client, address: str, job_id: str) -> bool:
    return bool(_call(address, client.stop_job, job_id))


def follow(
    client, address: str, job_id: str, on_text: Callable[[str], None] | None = None, poll_s: float = 1.0
) -> str:
    """Stream the job's logs to `on_text` until it ends (or just poll when on_text is None); final status."""
    if on_text is not None:

        async def _tail() -> None:
            async for chunk in client.tail_job_logs(job_id):
                on_text(chunk)

        try:
            asyncio.run(_tail())
        except (RuntimeError, OSError) as exc:  # the log socket closed early: fall back to polling
            log.warning("log stream of %s ended early (%s); waiting for the job to finish", job_id, exc)
    while (st := status(client, address, job_id)) not in TERMINAL:
        time.sleep(poll_s)
    return st


def require_success(client, address: str, job_id: str, final: str) -> None:
    if final != "SUCCEEDED":
        message = getattr(info(client, address, job_id), "message", "") or ""
        raise JobFailed(
            f"job {job_id} ended {final}: {message[:500]}; `genart jobs logs {job_id} "
            f"--address {address}` shows its output"
        )
