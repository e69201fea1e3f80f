"""Every cluster definition parses, and every entrypoint and config it names exists in the repository."""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

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
        if "synthesize" in rel:  # not built yet; the manifests say so
            continue
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
