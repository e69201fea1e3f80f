"""Shared fixtures: a real local Ray cluster, a real moto S3 server over HTTP, tiny bundles.

Everything binds to 127.0.0.1 and is stopped by the fixture that started it (by handle).
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile

import pytest

from genart.config.generate import GenerateConfig


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def loopback_only_ray():
    """Keep every Ray process of the suite on 127.0.0.1 (Ray otherwise resolves it to the host's address)."""
    from genart.ray_session import LOOPBACK_ONLY

    os.environ.setdefault(LOOPBACK_ONLY, "0")
    yield


@pytest.fixture(scope="session", autouse=True)
def genart_home(tmp_path_factory):
    """GENART_HOME in a temp dir: no test joins (or stops) a `genart up` of the user running the suite."""
    home = tmp_path_factory.mktemp("genart-home")
    saved = os.environ.get("GENART_HOME")
    os.environ["GENART_HOME"] = str(home)
    yield home
    if saved is None:
        os.environ.pop("GENART_HOME", None)
    else:
        os.environ["GENART_HOME"] = saved


@pytest.fixture(scope="session")
def ray_tmp():
    """A short per-session Ray temp dir (Unix socket paths must stay short)."""
    d = tempfile.mkdtemp(prefix="gr-", dir="/tmp")
    yield d


class SharedRay:
    """One 2-CPU single-node Ray (a `ray.cluster_utils.Cluster` head on 127.0.0.1, dashboard on) that the
    modules' `ray_local` join in turn, so the suite pays Ray's start-up once instead of once per module.
    Started on first use, stopped at the end of the session or before anything that starts its own cluster
    (`own_ray` modules, `ray_cluster`), and started again by the next module that joins it."""

    def __init__(self):
        self.cluster = None

    def address(self) -> str:
        if self.cluster is None:
            import psutil
            from ray._private.authentication.authentication_token_setup import (
                enable_token_auth_by_default,
                ensure_token_if_auth_enabled,
            )
            from ray._private.utils import resolve_object_store_memory
            from ray.cluster_utils import Cluster

            # token auth, as ray.init sets it up for a local cluster (cluster_utils alone starts none): this
            # process gets RAY_AUTH_MODE=token (it stays, as after ray.init) and a token if it has none
            enable_token_auth_by_default()
            ensure_token_if_auth_enabled(None, create_token_if_missing=True)
            self.tmp = tempfile.mkdtemp(prefix="gs-", dir="/tmp")  # short: Unix socket paths
            with _keep_ray_address_file():
                self.cluster = Cluster(
                    initialize_head=True,
                    head_node_args={
                        "num_cpus": 2, "node_ip_address": "127.0.0.1", "include_dashboard": True,
                        "dashboard_host": "127.0.0.1", "temp_dir": self.tmp,
                        # what ray.init gives a local cluster (cluster_utils' default is 150 MiB)
                        "object_store_memory": resolve_object_store_memory(psutil.virtual_memory().available),
                    },
                )  # fmt: skip
        return self.cluster.address

    def stop(self) -> None:
        import ray

        if self.cluster is not None:
            if ray.is_initialized():
                ray.shutdown()
            with _keep_ray_address_file():
                self.cluster.shutdown()
            self.cluster = None


@contextlib.contextmanager
def _keep_ray_address_file():
    """cluster_utils records (and on shutdown deletes) its head in /tmp/ray/ray_current_cluster, the file a
    bare `ray.init()` anywhere on the machine joins: put back what was there."""
    from ray._common.utils import get_ray_address_file

    path = get_ray_address_file(None)
    try:
        with open(path) as f:
            before = f.read()
    except OSError:
        before = None
    try:
        yield
    finally:
        try:
            if before is None:
                os.remove(path)
            else:
                with open(path, "w") as f:
                    f.write(before)
        except OSError:
            pass


@pytest.fixture(scope="session")
def shared_ray(s3_server):
    """The session's SharedRay; it starts after the S3 server fixture so its workers inherit AWS_*."""
    shared = SharedRay()
    yield shared
    shared.stop()


@pytest.fixture(scope="module")
def ray_local(request, ray_tmp, s3_server, shared_ray):
    """A real 2-CPU local Ray on 127.0.0.1 (token auth is on by default), this process connected for the
    module and disconnected after it.

    By default the module joins the session's shared cluster (`shared_ray`). A module marked
    `pytestmark = pytest.mark.own_ray` (fault injection that kills workers, checks that need a cluster no
    other module has used) gets a fresh cluster of its own, started after the shared one is stopped and
    shut down by handle. Either starts after the S3 server fixture so its workers inherit the AWS_*
    variables, as a user's would.
    """
    import ray

    if ray.is_initialized():
        ray.shutdown()
    if request.node.get_closest_marker("own_ray") is None:
        ray.init(address=shared_ray.address(), logging_level="WARNING", log_to_driver=True)
        yield ray
        ray.shutdown()
        return
    shared_ray.stop()
    ray.init(
        num_cpus=2,
        _node_ip_address="127.0.0.1",
        include_dashboard=True,
        dashboard_host="127.0.0.1",
        dashboard_port=free_port(),
        _temp_dir=ray_tmp,
        logging_level="WARNING",
        log_to_driver=True,
    )
    yield ray
    ray.shutdown()


@pytest.fixture
def ray_cluster(ray_tmp, s3_server, shared_ray):
    """start(nodes, cpus_per_node) -> a multi-node ray.cluster_utils.Cluster on 127.0.0.1 with this process
    connected; both are shut down by handle at teardown. Starts after the S3 server (workers inherit AWS_*)."""
    import ray
    from ray.cluster_utils import Cluster

    from genart.ray_session import LOOPBACK_ONLY

    assert os.environ.get(LOOPBACK_ONLY) == "0"  # else Ray binds the host's outward address
    started = []

    def start(nodes: int, cpus_per_node: int):
        if ray.is_initialized():
            ray.shutdown()
        shared_ray.stop()  # the machine's CPUs to this cluster alone
        cluster = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": cpus_per_node, "node_ip_address": "127.0.0.1",
                            "include_dashboard": True, "dashboard_host": "127.0.0.1", "temp_dir": ray_tmp},
        )  # fmt: skip
        started.append(cluster)
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus=cpus_per_node, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()
        ray.init(address=cluster.address)
        assert len([n for n in ray.nodes() if n["Alive"]]) == nodes
        return cluster

    yield start
    ray.shutdown()
    for cluster in started:
        cluster.shutdown()


def actor_nodes(class_name: str) -> list[str]:
    """Node ids of the live actors of `class_name` on the connected cluster."""
    import ray
    from ray.util.state import list_actors

    actors = list_actors(
        address=ray.get_runtime_context().gcs_address, filters=[("class_name", "=", class_name)], detail=True
    )
    return [a.node_id for a in actors]


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server over HTTP on 127.0.0.1; AWS_* variables point s3fs/boto at it. Yields the endpoint."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {
        k: os.environ.get(k)
        for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    }
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing-key-id",
            "AWS_SECRET_ACCESS_KEY": "testing-secret-do-not-leak",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    yield endpoint
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def s3_bucket(s3_server, request):
    """A fresh bucket on the moto server; yields 's3://NAME'."""
    import boto3

    name = "b-" + request.node.name.lower().replace("_", "-").replace("[", "-").replace("]", "")[:40].strip(
        "-"
    )
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=name)
    yield f"s3://{name}"


def make_tiny_bundle(
    uri: str, num_classes: int = 10, arch: str = "dcgan", seed: int = 0, class_names=None
) -> dict:
    """A randomly initialised 32x32 generator saved as a real bundle (no training: fast); `class_names`
    default to "0".."k-1"."""
    from genart.bundle import save_untrained_bundle
    from genart.bundle.store import TINY_DCGAN

    if arch == "dcgan":
        spec = {**TINY_DCGAN, "num_classes": num_classes}
    else:
        spec = {
            "arch": "vae",
            "image_size": 32,
            "channels": 1,
            "latent_dim": 8,
            "num_classes": num_classes,
            "width": 8,
        }
    return save_untrained_bundle(uri, spec, seed, class_names=class_names)


@pytest.fixture
def tiny_bundle(tmp_path):
    """URI of a tiny class-conditional (10 classes) DCGAN bundle in a temp folder."""
    uri = str(tmp_path / "bundle")
    make_tiny_bundle(uri)
    return uri


# A small opensea collection written by GeneratorReplica without Ray: used by tests/market and tests/views.
BASE_URI = "ipfs://bafyCID/"
COUNT, SHARD = 60, 25  # three shards, the last one partial


def market_cfg(bundle: str, output: str, **overrides) -> GenerateConfig:
    data = {
        "kind": "generate",
        "model": bundle,
        "output": output,
        "count": COUNT,
        "seed": 3,
        "shard_size": SHARD,
        "batch_size": 16,
        "market": {"standard": "opensea", "base_uri": BASE_URI, "name": "Tiny Digits", "description": "test"},
    }
    data.update(overrides)
    return GenerateConfig.model_validate(data)


def run_without_ray(cfg: GenerateConfig, meta: dict, job: dict) -> None:
    from genart.generation.plan import Plan
    from genart.generation.replica import GeneratorReplica
    from genart.market import write_collection
    from genart.storage.output import Output

    replica = GeneratorReplica(cfg, job["job_id"], meta["model_id"])
    plan = Plan.from_config(cfg, meta["num_classes"])
    for k in range(plan.num_shards):
        replica.run_shard(plan.shard(k))
    write_collection(cfg, job, Output.open(cfg.output, cfg.storage.options))


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """(cfg, bundle meta, output Path) of a complete 60-item opensea output (no _job.json, no _SUCCESS)."""
    root = tmp_path_factory.mktemp("market")
    meta = make_tiny_bundle(str(root / "bundle"))
    cfg = market_cfg(str(root / "bundle"), str(root / "out"))
    run_without_ray(cfg, meta, {"job_id": "job-1", "model_id": meta["model_id"]})
    return cfg, meta, root / "out"


# A throwaway C2PA certificate chain (root CA -> signing certificate), made with `cryptography`: what
# genart.market.c2pa_sign checks and c2pa-python's validator accepts. Used by tests/market and collect's tests.
C2PA_SIGNING_EKUS = ("1.3.6.1.5.5.7.3.4",)  # id-kp-emailProtection, one of the EKUs C2PA accepts


def make_c2pa_chain(
    folder,
    name: str = "signer",
    *,
    days: tuple[int, int] = (-1, 30),
    other_key: bool = False,
    ekus: tuple[str, ...] = C2PA_SIGNING_EKUS,
) -> tuple[str, str]:
    """Write `folder/{name}-chain.pem` (signing certificate, then the root CA) and `folder/{name}-key.pem`
    (PKCS#8, unencrypted, EC P-256); returns their paths. `days`: the signing certificate's validity, in
    days from now (start, end); `other_key`: the key file holds a fresh key that does not match; `ekus`: the
    signing certificate's extended key usages (dotted OIDs)."""
    import datetime as dt
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def dn(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "genart tests")])  # fmt: skip

    def usage(sign: bool) -> x509.KeyUsage:
        return x509.KeyUsage(sign, False, False, False, False, not sign, not sign, False, False)

    now = dt.datetime.now(dt.timezone.utc)
    root_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = (
        x509.CertificateBuilder().subject_name(dn("genart test root")).issuer_name(dn("genart test root"))
        .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=2)).not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(sign=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )  # fmt: skip
    leaf = (
        x509.CertificateBuilder().subject_name(dn(name)).issuer_name(root.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=days[0])).not_valid_after(now + dt.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(sign=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.ObjectIdentifier(o) for o in ekus]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )  # fmt: skip
    if other_key:
        key = ec.generate_private_key(ec.SECP256R1())
    chain, key_path = Path(folder) / f"{name}-chain.pem", Path(folder) / f"{name}-key.pem"
    chain.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, root)))
    pkcs8, plain = serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, pkcs8, plain))
    return str(chain), str(key_path)


@pytest.fixture
def c2pa_chain(tmp_path):
    """(chain PEM path, key PEM path) of a valid throwaway C2PA signing chain (see make_c2pa_chain)."""
    return make_c2pa_chain(tmp_path)
