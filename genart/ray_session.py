"""Connect to Ray: join `address`, or start a local loopback cluster and stop it afterwards."""

from __future__ import annotations

import contextlib
import logging
import os

from genart.errors import ClusterError

log = logging.getLogger(__name__)

# Environment the workers need to reach storage; secrets among them are passed only to a cluster this
# process starts itself (inherited), never put into a remote job's runtime_env.
LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": every Ray address stays on 127.0.0.1
STORAGE_ENV_PUBLIC = ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION")


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None = None, dashboard: bool = True):
    """Join `address`, or start a local cluster (with the dashboard only when `dashboard`: Ray Train's
    controller polls the state API it serves; generation alone does not need it and starts ~0.7 s sooner)."""
    import ray

    if ray.is_initialized():
        yield
        return
    # Ray's own INFO lines (checkpoint created, result reported) would drown genart's progress lines
    kwargs: dict = {
        "log_to_driver": True,
        "logging_level": logging.WARNING,
        "logging_config": ray.LoggingConfig(log_level="WARNING"),
    }
    if address:
        env = {k: os.environ[k] for k in STORAGE_ENV_PUBLIC if k in os.environ}
        try:
            ray.init(address=address, runtime_env={"env_vars": env} if env else None, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ClusterError(
                f"cannot join the Ray cluster at {address} ({exc}); check --address and the token"
            ) from exc
    else:
        # Ray resolves 127.0.0.1 to the host's outward address unless told this is a local-only cluster;
        # a local cluster genart starts stays on loopback (its workers inherit the setting)
        os.environ.setdefault(LOOPBACK_ONLY, "0")
        # the dashboard serves the state API that Ray Train's controller polls; loopback only
        ray.init(
            num_cpus=num_cpus,
            _node_ip_address="127.0.0.1",
            include_dashboard=dashboard,
            dashboard_host="127.0.0.1",
            dashboard_port=_free_port(),
            **kwargs,
        )
    try:
        yield
    finally:
        ray.shutdown()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
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
