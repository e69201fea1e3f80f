"""Every cluster definition parses, names existing entrypoints and configs of the matching kind, pins its
images, keeps SSH and the local cluster's tokens to this machine, and runs the Ray genart requires."""

from __future__ import annotations

import re
import shlex
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from genart.config import load_config
from genart.ray_session import MIN_RAY

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "cluster").rglob("*.yaml"))
PATHS = re.compile(r"\b((?:jobs|configs)/[\w./-]+\.(?:py|yaml))")


def _strings(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)
    elif isinstance(node, str):
        yield node


def test_there_are_kuberay_and_cloud_definitions():
    names = {p.relative_to(ROOT).as_posix() for p in MANIFESTS}
    assert "cluster/cloud.yaml" in names
    kinds = {
        d["kind"] for p in MANIFESTS if "kuberay" in p.parts for d in yaml.safe_load_all(p.read_text()) if d
    }
    assert {"RayCluster", "RayJob", "CronJob"} <= kinds


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_parses_and_names_existing_files(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs
    named = set()
    for doc in docs:
        for s in _strings(doc):
            if s.lstrip().startswith("apiVersion"):  # a manifest embedded in a ConfigMap must parse too
                assert [d for d in yaml.safe_load_all(s) if d]
            named |= set(PATHS.findall(s))
    for rel in named:
        assert (ROOT / rel).is_file(), f"{path.name} names {rel}, which does not exist"
    if any(d.get("kind") in ("RayJob", "CronJob") for d in docs):
        assert any(n.startswith("jobs/") for n in named), f"{path.name} names no entrypoint"


def test_every_cluster_uses_token_auth_and_a_private_dashboard():
    cloud = (ROOT / "cluster/cloud.yaml").read_text()
    cfg = yaml.safe_load(cloud)
    starts = cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"]
    assert (
        all("RAY_AUTH_MODE=token" in c for c in starts if "ray start" in c)
        and "--dashboard-host=127.0.0.1" in cloud
    )
    assert "0.0.0.0/0" not in yaml.safe_dump(yaml.safe_load(cloud))
    for p in MANIFESTS:
        if "kuberay" in p.parts:
            text = p.read_text()
            assert "mode: token" in text and "NodePort" not in text and "LoadBalancer" not in text


def test_local_script_is_executable_and_valid_bash():
    script = ROOT / "cluster/local.sh"
    assert script.stat().st_mode & stat.S_IXUSR
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    assert "RAY_AUTH_MODE=token" in text and "--dashboard-host 127.0.0.1" in text and "chmod 600" in text
    assert "ray stop" not in text.replace("`ray stop`", "")


def test_rayignore_leaves_out_environments_and_outputs():
    lines = (ROOT / ".rayignore").read_text().splitlines()
    assert {".venv/", "out/", ".git/", "__pycache__/"} <= set(lines)


def _docs(path: Path) -> list[dict]:
    """The YAML documents of a manifest, with the manifests embedded in ConfigMaps among them."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for doc in list(docs):
        for s in _strings(doc):
            if s.lstrip().startswith("apiVersion"):
                docs += [d for d in yaml.safe_load_all(s) if d]
    return docs


def _entrypoints(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "entrypoint" and isinstance(v, str):
                yield v
            else:
                yield from _entrypoints(v)
    elif isinstance(node, list):
        for v in node:
            yield from _entrypoints(v)


ENTRYPOINTS = [(p, e) for p in MANIFESTS for d in _docs(p) for e in _entrypoints(d)]


def test_every_kuberay_job_has_an_entrypoint():
    assert {p.name for p, _ in ENTRYPOINTS} == {"rayjob-generate.yaml", "raycronjob-nightly.yaml"}


@pytest.mark.parametrize("path,entrypoint", ENTRYPOINTS, ids=lambda x: getattr(x, "name", "entrypoint"))
def test_entrypoint_runs_a_config_of_its_own_kind_with_accepted_overrides(path, entrypoint):
    """`python jobs/KIND.py CONFIG --set ...`: CONFIG's kind is KIND and genart accepts every override."""
    argv = shlex.split(entrypoint)
    assert argv[0] == "python" and re.fullmatch(r"jobs/\w+\.py", argv[1]), entrypoint
    kind = Path(argv[1]).stem
    config = ROOT / argv[2]
    assert yaml.safe_load(config.read_text())["kind"] == kind, f"{path.name}: {argv[1]} runs {argv[2]}"
    sets = [argv[i + 1].replace("__SLOT__", "20260101") for i, a in enumerate(argv) if a == "--set"]
    assert len(sets) == argv.count("--set") and len(argv) == 3 + 2 * len(sets), entrypoint
    cfg = load_config(config, sets)  # raises ConfigError for a key or value the job would refuse
    assert cfg.address is None  # inside a RayJob the driver joins the job's own cluster


def test_nightly_cronjob_mirrors_the_nightly_schedule():
    schedule = yaml.safe_load((ROOT / "configs/schedule/nightly-digits.yaml").read_text())
    docs = _docs(ROOT / "cluster/kuberay/raycronjob-nightly.yaml")
    cron = next(d for d in docs if d["kind"] == "CronJob")["spec"]
    assert cron["schedule"] == schedule["cron"] and cron["timeZone"] == schedule["timezone"]
    assert cron["concurrencyPolicy"].lower() == schedule["concurrency_policy"]
    assert cron["startingDeadlineSeconds"] == schedule["starting_deadline_s"]
    (entrypoint,) = [e for d in docs if d["kind"] == "RayJob" for e in _entrypoints(d)]
    argv = shlex.split(entrypoint)
    job_kind = yaml.safe_load((ROOT / schedule["job"]).read_text())["kind"]
    assert argv[1:3] == [f"jobs/{job_kind}.py", schedule["job"]]
    assert "--set" in argv and any(a.startswith("output=") and "__SLOT__" in a for a in argv)


def _images(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "image" and isinstance(v, str):
                yield v
            else:
                yield from _images(v)
    elif isinstance(node, list):
        for v in node:
            yield from _images(v)


IMAGES = sorted({i for p in MANIFESTS for d in _docs(p) for i in _images(d)})
# Repositories whose tags were removed or frozen: bitnami's Docker Hub images (moved to bitnamilegacy, 2025)
# and rayproject/ray-ml (no longer built for current Ray releases).
GONE = ("bitnami/", "docker.io/bitnami/", "rayproject/ray-ml")
PYPROJECT_VERSION = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)[1]


def test_there_are_images_to_check():
    assert {"rayproject/ray:2.60.0-py311-gpu", "alpine/k8s:1.31.5"} <= set(IMAGES)


@pytest.mark.parametrize("image", IMAGES)
def test_every_image_is_pinned_to_a_full_version_or_digest(image):
    assert not image.startswith(GONE), f"{image}: that repository's tags no longer exist"
    if "@sha256:" in image:
        assert re.fullmatch(r"[\w./:-]+@sha256:[0-9a-f]{64}", image)
        return
    name, _, tag = image.rpartition(":")
    assert name and "/" in name, f"{image}: no tag"
    # a full version: a floating tag (latest, 1.31, nightly) changes under the manifest or disappears
    assert re.fullmatch(r"v?\d+\.\d+\.\d+([.-][\w.-]+)?", tag), f"{image}: tag {tag!r} is not a full version"
    if name == "rayproject/ray":
        assert tuple(map(int, tag.split("-")[0].split("."))) >= tuple(map(int, MIN_RAY.split(".")))
    if name.endswith("/genart"):
        assert tag == PYPROJECT_VERSION  # the image of this checkout


def test_every_ray_version_is_one_genart_accepts():
    minimum = tuple(map(int, MIN_RAY.split(".")))
    versions = [v for p in MANIFESTS for v in re.findall(r'rayVersion: "([\d.]+)"', p.read_text())]
    versions += re.findall(r"rayproject/ray:([\d.]+)", (ROOT / "cluster/cloud.yaml").read_text())
    assert len(versions) >= 4
    for v in versions:
        assert tuple(map(int, v.split("."))) >= minimum, v


def test_cloud_cluster_brings_its_own_security_group_and_keeps_local_tokens_home():
    """Ray's AWS provider adds SSH from 0.0.0.0/0 to any security group it creates or fills itself (beside the
    config's own IpPermissions); it leaves alone the groups named in every node type's SecurityGroupIds."""
    cfg = yaml.safe_load((ROOT / "cluster/cloud.yaml").read_text())
    assert "security_group" not in cfg["provider"]
    for name, node_type in cfg["available_node_types"].items():
        assert node_type["node_config"].get("SecurityGroupIds"), (
            f"{name} lets Ray make a group open to 0.0.0.0/0"
        )
    assert "0.0.0.0/0" not in yaml.safe_dump(cfg)
    # nothing from cluster/.local (the local cluster's token, PIDs, logs) travels to the nodes
    for remote, local in cfg["file_mounts"].items():
        src = Path(local).expanduser()
        assert ".local" not in Path(local).parts and not str(local).startswith("./cluster"), (remote, local)
        if local in (".", "./"):
            assert "**/cluster/.local" in cfg["rsync_exclude"]  # the checkout, less that folder
        else:
            assert not src.resolve().is_relative_to(ROOT), f"{local}: a secret inside the checkout"
    assert ".gitignore" in cfg.get("rsync_filter", [])
    starts = cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"]
    assert all("RAY_AUTH_MODE=token" in c for c in starts if "ray start" in c)


def test_rsync_exclude_really_leaves_out_the_local_token(tmp_path):
    """What `ray up` runs (rsync with the config's excludes) copies the checkout without cluster/.local."""
    cfg = yaml.safe_load((ROOT / "cluster/cloud.yaml").read_text())
    src = tmp_path / "src"
    (src / "cluster" / ".local").mkdir(parents=True)
    (src / "cluster" / ".local" / "auth_token").write_text("secret")
    (src / "cluster" / ".local" / "head.log").write_text("log")
    (src / "jobs").mkdir()
    (src / "jobs" / "generate.py").write_text("")
    args = ["rsync", "-a"] + [f"--exclude={e}" for e in cfg["rsync_exclude"]]
    if subprocess.run(["which", "rsync"], capture_output=True).returncode != 0:
        pytest.skip("rsync is not installed here")
    subprocess.run([*args, f"{src}/", f"{tmp_path / 'dst'}/"], check=True, timeout=60)
    copied = sorted(p.relative_to(tmp_path / "dst").as_posix() for p in (tmp_path / "dst").rglob("*"))
    assert copied == ["cluster", "jobs", "jobs/generate.py"]
