"""Scheduler pieces without Ray: slots, run ids, substitution, --dry-run and config errors (exit 2)."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from genart.cli import main
from genart.cluster.history import History, RunRecord, due_slots, next_slots, run_id
from genart.cluster.schedule import slot_overrides, substitute

ROOT = Path(__file__).resolve().parents[2]
NIGHTLY = str(ROOT / "configs/schedule/nightly-digits.yaml")


def test_slots_follow_the_time_zone_across_dst():
    now = datetime(2026, 3, 30, 12, 0, tzinfo=timezone.utc)
    slots = due_slots("0 2 * * *", "Europe/Berlin", now, 3)
    assert [s.isoformat() for s in slots] == [
        "2026-03-28T02:00:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:00:00+02:00",
    ] or slots[-1].isoformat() == "2026-03-30T02:00:00+02:00"
    assert next_slots("0 2 * * *", "UTC", now, 1)[0].isoformat() == "2026-03-31T02:00:00+00:00"
    assert run_id("nightly", slots[-1]) == "nightly-20260330T0000Z"


def test_slot_exactly_now_is_due():
    now = datetime(2026, 1, 1, 0, 0, tzinfo=timezone.utc)
    assert due_slots("0 0 * * *", "UTC", now, 1)[0] == now


def test_substitution_and_overrides():
    slot = datetime(2026, 5, 4, 2, 0, tzinfo=timezone.utc)
    assert substitute("out/{slot:%Y%m%d}/x", slot) == "out/20260504/x"
    assert substitute("{slot}", slot) == "2026-05-04T02:00:00+00:00"
    assert substitute(7, slot) == 7


def test_history_round_trip_is_atomic(tmp_path):
    h = History(str(tmp_path / "s" / "state.json"), "n")
    h.runs["r"] = RunRecord(run_id="r", slot="2026-01-01T00:00:00+00:00")
    h.save()
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["state.json"]  # no temp file left behind
    again = History(str(tmp_path / "s" / "state.json"), "n").load()
    assert again.runs["r"].status == "pending" and again.created == h.created


def test_dry_run_prints_iso_slots_with_offset():
    res = CliRunner().invoke(main, ["schedule", NIGHTLY, "--dry-run"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 5
    for line in lines:
        slot, rid = line.split("\t")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT02:00:00\+0[12]:00", slot)
        assert rid.startswith("nightly-digits-")


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("cron=0 2 * *", "cron:"),
        ("cron=61 * * * *", "cron:"),
        ("timezone=Mars/Olympus", "timezone:"),
        ("job=configs/generate/nope.yaml", "job:"),
        ("concurrency_policy=sometimes", "concurrency_policy:"),
    ],
)
def test_bad_schedule_configs_exit_2_naming_the_key(override, key):
    proc = subprocess.run(
        [sys.executable, "-m", "genart.cli", "schedule", NIGHTLY, "--dry-run", "--set", override],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert key in proc.stderr and "Traceback" not in proc.stderr


def test_overrides_travel_as_set_args(tmp_path):
    from genart.config import load_config

    cfg = load_config(NIGHTLY)
    slot = datetime(2026, 5, 4, 2, 0, tzinfo=timezone.utc)
    assert slot_overrides(cfg, slot) == ['output="out/nightly/20260504"']


def test_submit_builds_the_entrypoint_without_secrets(monkeypatch):
    from genart.cluster.submit import build_job

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cret")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    for name in (
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
    ):  # the S3 fixture may have set them earlier in the session
        monkeypatch.delenv(name, raising=False)
    spec = build_job(ROOT / "configs/generate/digits.yaml", ["count=5", "output=out/a b"])
    assert spec.entrypoint == (
        "python jobs/generate.py configs/generate/digits.yaml --set count=5 "
        "--set 'output=out/a b' --set address=null"
    )
    assert spec.runtime_env["env_vars"] == {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    assert ".venv" in spec.runtime_env["excludes"] and "s3cret" not in repr(spec)


def test_new_commands_have_help():
    for args in (
        ["submit", "--help"],
        ["jobs", "--help"],
        ["jobs", "list", "--help"],
        ["jobs", "logs", "--help"],
        ["jobs", "status", "--help"],
        ["jobs", "stop", "--help"],
        ["schedule", "--help"],
    ):
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 0 and "Usage:" in res.output, args
