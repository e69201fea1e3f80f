"""Credentials never travel with a submitted job and never reach printed URIs or the schedule's state."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from genart.cluster.credentials import credential_files, holds_credentials, is_credential_key, scrub
from genart.cluster.history import Attempt, RunRecord, iso
from genart.cluster.schedule import SlotScheduler
from genart.cluster.submit import build_job, shown_entrypoint
from genart.config import load_config
from genart.errors import ConfigError
from genart.storage.fs import redact

ROOT = Path(__file__).resolve().parents[2]
GENERATE = ROOT / "configs/generate/digits.yaml"
NIGHTLY = str(ROOT / "configs/schedule/nightly-digits.yaml")
SECRET = "s3cr3t-Value/with@odd"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "genart.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("s3://bucket/x", "s3://bucket/x"),
        ("s3://bucket/a@2x/b.png", "s3://bucket/a@2x/b.png"),
        ("s3://user:pw@bucket/x", "s3://bucket/x"),
        ("s3://user:pa/ss@bucket/x", "s3://bucket/x"),
        ("ftp://user:p@ss@host/x", "ftp://host/x"),
        ("sftp://user:pa/s@s@host:22/p", "sftp://host:22/p"),
        ("sftp://user:p?w#d@host/p", "sftp://host/p"),
        ("ftp://anonymous@host/pub", "ftp://host/pub"),
        ("zip://inner/x.png::https://u:pw@h/x.zip", "zip://inner/x.png::https://h/x.zip"),
        ("simplecache::s3://k:s@b/x", "simplecache::s3://b/x"),
        (
            "https://h/x?X-Amz-Credential=AK%2F1&X-Amz-Signature=abc&X-Amz-Security-Token=t&part=1",
            "https://h/x?X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Security-Token=***&part=1",
        ),
        (
            "https://acct.blob.core.windows.net/c/x?sv=2024&sig=zz",
            "https://acct.blob.core.windows.net/c/x?sv=2024&sig=***",
        ),
        ("http://h/x?token=1#frag", "http://h/x?token=***#frag"),
        ("https://u:pa::ss@h/x", "https://h/x"),
        ("zip://x.png::https://u:pa::ss@h/x.zip", "zip://x.png::https://h/x.zip"),
        ("simplecache::zip://x::s3://k:s@b/x", "simplecache::zip://x::s3://b/x"),
        ("https://h/cb#access_token=abc&state=1", "https://h/cb#access_token=***&state=1"),
        ("https://h/x?a=1#id_token=abc", "https://h/x?a=1#id_token=***"),
        ("https://h/x#?token=abc", "https://h/x#?token=***"),
        ("https://h/x?%74oken=S", "https://h/x?%74oken=***"),
        ("https://h/x?%2574oken=S&a=1", "https://h/x?%2574oken=***&a=1"),
        ("https://h/x?my+s%65cret=S", "https://h/x?my+s%65cret=***"),
        ("https://h/x#%74oken=S", "https://h/x#%74oken=***"),
        ("https://h/x;token=S", "https://h/x;token=***"),
        ("https://h/a;%74oken=S;v=1/b.png?x=1", "https://h/a;%74oken=***;v=1/b.png?x=1"),
        ("s3://b/p;jsessionid=S/x", "s3://b/p;jsessionid=***/x"),
        ("https://h/x;v=1", "https://h/x;v=1"),
        ("out/a b/x", "out/a b/x"),
        ("file:///abs/out", "file:///abs/out"),
    ],
)
def test_redact(uri, shown):
    assert redact(uri) == shown


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("key", True),
        ("secret", True),
        ("token", True),
        ("password", True),
        ("aws_secret_access_key", True),
        ("aws_session_token", True),
        ("SessionToken", True),
        ("credentials", True),
        ("sas_token", True),
        ("endpoint_url", False),
        ("region_name", False),
        ("anon", False),
        ("SSEKMSKeyId", False),
        ("ServerSideEncryption", False),
        # adlfs / Azure: a connection string carries AccountKey= or SharedAccessSignature=
        ("connection_string", True),
        ("ConnectionString", True),
        ("conn_str", True),
        ("connection_timeout", False),
        ("max_connections", False),
    ],
)
def test_credential_names(name, secret):
    assert is_credential_key(name) is secret


@pytest.mark.parametrize(
    ("override", "key"),
    [
        (f"storage.options.secret={SECRET}", "storage.options.secret"),
        (f"storage.options.key={SECRET}", "storage.options.key"),
        (f"storage.options.token={SECRET}", "storage.options.token"),
        (f"storage.options.password={SECRET}", "storage.options.password"),
        (f"storage.options.aws_session_token={SECRET}", "storage.options.aws_session_token"),
        (
            f"storage.options.connection_string='AccountName=a;AccountKey={SECRET}'",
            "storage.options.connection_string",
        ),
        (f"output=sftp://u:{SECRET}@127.0.0.1/out", "output"),
        (f"model=https://h/bundle?X-Amz-Signature={SECRET}", "model"),
        # nested storage options (s3fs passes client_kwargs on to botocore)
        (
            f"storage.options.client_kwargs={{aws_secret_access_key: {SECRET}}}",
            "storage.options.client_kwargs.aws_secret_access_key",
        ),
    ],
)
def test_submit_refuses_credentials_in_set_exit_2(override, key):
    proc = cli("submit", str(GENERATE), "--address", "http://127.0.0.1:1", "--set", override)
    assert proc.returncode == 2, proc.stderr
    assert f"{GENERATE}: {key}: credentials cannot be submitted with a job" in proc.stderr
    assert "cluster's secret store" in proc.stderr and "Traceback" not in proc.stderr
    assert SECRET not in proc.stderr + proc.stdout  # refused before connecting, and not echoed


def test_submit_refuses_a_config_file_with_credentials_even_when_set_hides_them(tmp_path):
    data = yaml.safe_load(GENERATE.read_text())
    data["storage"] = {"options": {"secret": SECRET}}
    cfg = tmp_path / "job.yaml"
    cfg.write_text(yaml.safe_dump(data))
    for sets in ([], ["storage.options={}"]):
        with pytest.raises(ConfigError, match=r"storage\.options\.secret: credentials cannot be submitted"):
            build_job(cfg, sets)


def test_submit_keeps_harmless_storage_options():
    spec = build_job(
        GENERATE, ["storage.options.endpoint_url=http://127.0.0.1:9", "storage.options.SSEKMSKeyId=k1"]
    )
    assert "--set storage.options.SSEKMSKeyId=k1" in spec.entrypoint


def test_a_remote_schedule_with_credential_overrides_exits_2_at_load(tmp_path):
    proc = cli(
        "schedule",
        NIGHTLY,
        "--dry-run",
        "--set",
        "address=http://127.0.0.1:1",
        "--set",
        f"overrides={{storage.options.secret: {SECRET!r}}}",
        "--set",
        f"state={tmp_path / 's.json'}",
    )
    assert proc.returncode == 2, proc.stderr
    assert "overrides.storage.options.secret: credentials cannot be submitted with a job" in proc.stderr
    assert SECRET not in proc.stderr


def test_schedule_state_never_stores_secrets(tmp_path):
    state = tmp_path / "s.json"
    cfg = load_config(NIGHTLY, [f"state={state}", f"overrides={{storage.options.secret: {SECRET!r}}}"])
    sched = SlotScheduler(cfg, "nightly-digits")
    slot = datetime(2026, 5, 4, 0, 0, tzinfo=timezone.utc)
    rec = sched.history.runs["r"] = RunRecord(run_id="r", slot=iso(slot), status="running")
    rec.attempts.append(Attempt.new(1, "r", iso(slot)))
    sched._finish(rec, "failed", f"boom: got {SECRET!r} at https://u:{SECRET}@h/x and sftp://u:pw@h/y")
    text = state.read_text()
    assert SECRET not in text and "pw@" not in text
    assert "boom: got '***' at https://h/x and sftp://h/y" in text


def test_entrypoints_are_shown_without_credentials():
    ep = f"python jobs/generate.py c.yaml --set storage.options.secret={SECRET} --set 'output=out/a b' --set model=https://u:pw@h/m"
    assert shown_entrypoint(ep) == (
        "python jobs/generate.py c.yaml --set 'storage.options.secret=***' --set 'output=out/a b' --set model=https://h/m"
    )
    assert scrub(f"x {SECRET} y", [SECRET]) == "x *** y"


@pytest.mark.parametrize(
    ("text", "held"),
    [
        ("storage:\n  options:\n    secret: abc\n", True),
        ("storage: {options: {secret: abc, anon: false}}\n", True),
        ('  "aws_secret_access_key": x\n', True),
        ("output: sftp://u:pw@h/x\n", True),
        ("storage:\n  options:\n    endpoint_url: http://127.0.0.1:9\n", False),
        ("secretRef: {name: genart-storage}\n", False),
        ("mode: token\n", False),
        ("a: 1  # token: described in a comment\n", False),
    ],
)
def test_yaml_holding_credentials(text, held):
    assert holds_credentials(text) is held


def test_other_configs_with_credentials_are_not_uploaded(tmp_path, monkeypatch):
    import genart.cluster.submit as submit

    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs/generate.py").write_text("")
    (tmp_path / "configs/private").mkdir(parents=True)
    (tmp_path / "configs/private/s3.yaml").write_text(f"storage:\n  options:\n    secret: {SECRET}\n")
    (tmp_path / "configs/job.yaml").write_text(GENERATE.read_text())
    (tmp_path / "out").mkdir()
    (tmp_path / "out/creds.yaml").write_text("token: t\n")  # never uploaded anyway: not read
    assert credential_files(tmp_path) == ["configs/private/s3.yaml"]
    monkeypatch.setattr(submit, "REPO_ROOT", tmp_path)
    spec = build_job(tmp_path / "configs/job.yaml")
    assert spec.runtime_env["excludes"][-1] == "/configs/private/s3.yaml"
    assert spec.entrypoint.startswith("python jobs/generate.py configs/job.yaml ")
