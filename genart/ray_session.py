"""Connect to Ray: join `address`, or start a local loopback cluster with token auth and stop it afterwards.

A cluster genart starts for itself (`genart generate/train/synthesize` without --address) is private to the
process: every socket of it listens on 127.0.0.1, every request needs a fresh per-session token (written
0600 into a 0700 directory that is removed with the cluster), and the driver and every worker have the
cluster's own address pinned in RAY_ADDRESS, so nothing in it (Ray Train's placement-group cleaner, the
state API) looks for "the" local Ray among the other instances on the machine.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import tempfile
from collections.abc import Iterator

from genart import warm_state
from genart.errors import ClusterError, ConfigError

log = logging.getLogger(__name__)

# "0": Ray keeps 127.0.0.1 as the node address (else it resolves it to the host's outward address and
# binds GCS, raylet, agents and workers on every interface)
LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
# Environment the workers need to reach storage; secrets among them are passed only to a cluster this
# process starts itself (inherited), never put into a remote job's runtime_env.
STORAGE_ENV_PUBLIC = ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION")
# Ray added token auth in 2.52.0 (off by default) and turned it on for local clusters in 2.59; genart
# relies on this Ray's behaviour (loopback binding of every agent, token loading by path, the auth config
# refreshed in-process), checked by tests/test_ray_session.py.
MIN_RAY = "2.60"
AUTH_OPT_OUT = "GENART_ALLOW_NO_AUTH"  # "1": accept RAY_AUTH_MODE=disabled for local clusters
LOOPBACK = "127.0.0.1"


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None = None, dashboard: bool = True):
    """Join `address` (or, inside a Ray job, the job's cluster named by RAY_ADDRESS, or the warm local Ray
    `genart up` keeps, found by `warm_state.find_warm`), or start a private local cluster (with the dashboard only when `dashboard`: Ray Train's controller polls the state API it
    serves; generation alone does not need it and starts ~0.7 s sooner).

    Raises ClusterError when the cluster cannot be joined or a safe local one cannot be started, and
    ConfigError when RAY_AUTH_MODE asks for an unauthenticated local cluster without the opt-out.
    """
    import ray

    if ray.is_initialized():
        yield
        return
    kwargs = _driver_kwargs()
    if address:
        _join(address, kwargs)
    elif os.environ.get("RAY_ADDRESS"):
        # a Ray job's driver (`genart submit`, `ray job submit`): the job supervisor names its cluster
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ClusterError(
                f"cannot join the Ray cluster at RAY_ADDRESS={os.environ['RAY_ADDRESS']} ({exc}); unset "
                "RAY_ADDRESS to let genart start its own local cluster"
            ) from exc
    else:
        warm = (
            warm_state.find_warm()
        )  # `genart up` running on this machine: join it, else start a private Ray
        if warm is not None:
            with _environment(warm_env(warm)), _loopback_node_address():
                failed = _join_warm(warm, kwargs)
                if failed is not None:
                    log.warning("cannot join genart up's Ray at %s (%s): running cold", warm.gcs, failed)
                else:
                    try:
                        yield
                    finally:
                        ray.shutdown()
                    return
        with _local_cluster(num_cpus, dashboard, kwargs):
            yield
        return
    try:
        yield
    finally:
        ray.shutdown()


def _join(address: str, kwargs: dict) -> None:
    import ray

    env = {k: os.environ[k] for k in STORAGE_ENV_PUBLIC if k in os.environ}
    try:
        ray.init(address=address, runtime_env={"env_vars": env} if env else None, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(
            f"cannot join the Ray cluster at {address} ({exc}); check --address and the token"
        ) from exc


def _driver_kwargs() -> dict:
    """ray.init's logging options: Ray's own INFO lines (checkpoint created, result reported) would drown
    genart's progress lines."""
    import ray

    return {
        "log_to_driver": True,
        "logging_level": logging.WARNING,
        "logging_config": ray.LoggingConfig(log_level="WARNING"),
    }


@contextlib.contextmanager
def warm_session(warm: warm_state.WarmState) -> Iterator[None]:
    """Join `genart up`'s Ray as a driver in its namespace (genart up, status). Raises ClusterError when it
    refuses."""
    import ray

    with _environment(warm_env(warm)), _loopback_node_address():
        failed = _join_warm(warm, _driver_kwargs())
        if failed is not None:
            raise ClusterError(
                f"cannot join genart up's Ray at {warm.gcs} ({failed}); `genart down` stops it"
            )
        try:
            yield
        finally:
            ray.shutdown()


def warm_env(warm: warm_state.WarmState) -> dict[str, str | None]:
    """The environment a driver of `genart up`'s Ray needs: its token and its address pinned."""
    return {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": None,
        "RAY_AUTH_TOKEN_PATH": warm.token_path,
        "RAY_ADDRESS": warm.gcs,
        LOOPBACK_ONLY: "0",
    }


def _join_warm(warm: warm_state.WarmState, kwargs: dict) -> Exception | None:
    """Join `genart up`'s Ray in its namespace; the error when it refuses (the caller runs cold or fails)."""
    import ray

    try:
        ray.init(address=warm.gcs, namespace=warm.namespace, _node_ip_address=LOOPBACK, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        return exc
    log.debug("joined genart up's Ray at %s (up since %s)", warm.gcs, warm.started_at)
    return None


def joined_warm() -> bool:
    """Whether this process is a driver in `genart up`'s Ray (its namespace), so jobs use the warm replicas."""
    import ray

    return ray.is_initialized() and ray.get_runtime_context().namespace == warm_state.NAMESPACE


@contextlib.contextmanager
def _local_cluster(num_cpus: int | None, dashboard: bool, kwargs: dict) -> Iterator[None]:
    """Start a single-node cluster on 127.0.0.1 with its own token and pinned address; stop it after."""
    import ray

    require_ray(ray.__version__)
    mode = local_auth_mode(os.environ)
    gcs_port, dash_port = free_port(), free_port()
    gcs = f"{LOOPBACK}:{gcs_port}"
    # 0700 directory, removed after the cluster stops
    with tempfile.TemporaryDirectory(prefix="genart-ray-") as private:
        env: dict[str, str | None] = {
            "RAY_AUTH_MODE": mode,
            LOOPBACK_ONLY: "0",
            "RAY_GCS_SERVER_PORT": str(gcs_port),  # known before start, so RAY_ADDRESS can name it
            "RAY_ADDRESS": gcs,  # inherited by every Ray process of this cluster: the state API,
            # Ray Train's placement-group cleaner and jobs find this cluster, not "the" local one
            "RAY_API_SERVER_ADDRESS": f"http://{LOOPBACK}:{dash_port}" if dashboard else None,
            "RAY_AUTH_TOKEN": None,
            "RAY_AUTH_TOKEN_PATH": write_token(private) if mode == "token" else None,
        }
        with _environment(env), _loopback_node_address():
            ray.init(
                address="local",  # never join another instance found on the machine
                num_cpus=num_cpus,
                _node_ip_address=LOOPBACK,
                include_dashboard=dashboard,
                dashboard_host=LOOPBACK,
                dashboard_port=dash_port,
                **kwargs,
            )
            try:
                _check_started(gcs)
                yield
            finally:
                ray.shutdown()


def require_ray(version: str) -> None:
    """Raise ClusterError unless `version` is a Ray that starts token-authenticated loopback clusters."""
    from packaging.version import InvalidVersion, Version

    try:
        ok = Version(version) >= Version(MIN_RAY)
    except InvalidVersion:
        ok = False
    if not ok:
        raise ClusterError(
            f"genart needs Ray >= {MIN_RAY} to start a token-authenticated local cluster, but Ray {version} "
            f"is installed; upgrade it (pip install 'ray[train,data,default]>={MIN_RAY}') or join an "
            "existing cluster with --address"
        )


def local_auth_mode(environ) -> str:
    """The RAY_AUTH_MODE for a cluster genart starts: "token", or "disabled" only with the opt-out.

    Raises ConfigError for any other setting of RAY_AUTH_MODE without GENART_ALLOW_NO_AUTH=1.
    """
    asked = (environ.get("RAY_AUTH_MODE") or "token").strip().lower()
    if asked == "token":
        return "token"
    if environ.get(AUTH_OPT_OUT) == "1" and asked == "disabled":
        log.warning(
            "RAY_AUTH_MODE=disabled and %s=1: the local Ray cluster starts without token auth; any "
            "process on this machine can run code in it",
            AUTH_OPT_OUT,
        )
        return "disabled"
    raise ConfigError(
        f"RAY_AUTH_MODE={environ.get('RAY_AUTH_MODE')!r}: genart starts local Ray clusters only with token "
        f"auth (RAY_AUTH_MODE=token or unset); to run one without, set RAY_AUTH_MODE=disabled and "
        f"{AUTH_OPT_OUT}=1"
    )


def write_token(directory: str) -> str:
    """Write a fresh 256-bit token to DIRECTORY/auth_token, readable only by its owner; return the path."""
    path = os.path.join(directory, "auth_token")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return path


@contextlib.contextmanager
def _environment(changes: dict[str, str | None]) -> Iterator[None]:
    """Set (or, for None, remove) environment variables; restore them afterwards. Ray reads the auth
    settings into a process-wide config and token cache, so both are refreshed on the way in and out."""
    saved = {k: os.environ.get(k) for k in changes}
    _apply(changes)
    try:
        yield
    finally:
        _apply(saved)


def _apply(values: dict[str, str | None]) -> None:
    from ray._raylet import AuthenticationTokenLoader, Config

    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


@contextlib.contextmanager
def _loopback_node_address() -> Iterator[None]:
    """Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER once, when it is imported: make this driver (whose
    `import ray` may predate the variable) keep 127.0.0.1 as well, for this cluster's lifetime."""
    from ray._private import ray_constants

    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


def _check_started(gcs: str) -> None:
    """Raise ClusterError when the cluster Ray started is not the loopback one genart asked for."""
    import ray

    node = ray._private.worker._global_node
    where = (node.node_ip_address, node.gcs_address) if node is not None else (None, None)
    if where != (LOOPBACK, gcs):
        raise ClusterError(
            f"Ray started its local cluster at node address {where[0]} with GCS {where[1]}, not on "
            f"{LOOPBACK} at {gcs}; genart does not run a local cluster reachable from the network"
        )


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def require_resources(what: str, count: int, cpus_each: float, gpus_each: float) -> None:
    """Fail fast when the cluster can never host `count` actors of this size (instead of waiting forever)."""
    import ray

    total = ray.cluster_resources()
    need_cpu, need_gpu = count * cpus_each, count * gpus_each
    have_cpu, have_gpu = total.get("CPU", 0.0), total.get("GPU", 0.0)
    if need_cpu > have_cpu + 1e-9 or need_gpu > have_gpu + 1e-9:
        raise ClusterError(
            f"{what}: {count} x ({cpus_each:g} CPU, {gpus_each:g} GPU) needs {need_cpu:g} CPU and {need_gpu:g} GPU, "
            f"but the cluster has {have_cpu:g} CPU and {have_gpu:g} GPU in all; lower the count or the "
            "per-worker resources, or add nodes"
        )
