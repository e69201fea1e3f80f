"""Scheduler faults without Ray: DST fall-back, dead schedulers with a reused PID, impossible crons,
overrides the job rejects, config errors never retried, corrupt state files."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from genart.cluster.history import (
    Attempt,
    History,
    RunRecord,
    boot_id,
    due_slots,
    iso,
    next_slots,
    process_start,
    run_id,
)
from genart.cluster.schedule import SlotScheduler
from genart.config import load_config
from genart.errors import StorageError

ROOT = Path(__file__).resolve().parents[2]
NIGHTLY = str(ROOT / "configs/schedule/nightly-digits.yaml")
UTC = timezone.utc


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "genart.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def iso_list(slots):
    return [s.isoformat() for s in slots]


def utc_hours(slots):
    return [s.astimezone(UTC).strftime("%dT%H:%MZ") for s in slots]


# -- DST ---------------------------------------------------------------------------------------------------
def test_fall_back_nightly_runs_once_at_the_first_occurrence():
    after = next_slots("0 2 * * *", "Europe/Berlin", datetime(2026, 10, 24, 12, 0, tzinfo=UTC), 3)
    assert iso_list(after) == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-26T02:00:00+01:00",
        "2026-10-27T02:00:00+01:00",
    ]
    before = due_slots("0 2 * * *", "Europe/Berlin", datetime(2026, 10, 26, 12, 0, tzinfo=UTC), 3)
    assert iso_list(before) == [
        "2026-10-24T02:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-26T02:00:00+01:00",
    ]
    assert run_id("nightly-digits", before[1]) == "nightly-digits-20261025T0000Z"


def test_fall_back_night_gives_the_shipped_scheduler_one_slot(tmp_path):
    cfg = load_config(NIGHTLY, [f"state={tmp_path / 'state.json'}"])
    now = [datetime(2026, 10, 24, 21, 0, tzinfo=UTC)]
    sched = SlotScheduler(cfg, "nightly-digits", clock=lambda: now[0])
    seen = set()
    while now[0] < datetime(2026, 10, 25, 5, 0, tzinfo=UTC):  # every 5 minutes through the night
        seen |= {run_id("nightly-digits", s) for s in sched.candidates(latest_only=False)}
        now[0] += timedelta(minutes=5)
    assert seen == {"nightly-digits-20261024T0000Z", "nightly-digits-20261025T0000Z"}


def test_spring_forward_fixed_time_runs_once_after_the_gap():
    slots = next_slots("30 2 * * *", "Europe/Berlin", datetime(2026, 3, 28, 12, 0, tzinfo=UTC), 2)
    assert iso_list(slots) == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]


@pytest.mark.parametrize(
    ("cron", "start", "expected"),
    [
        # fall back: wildcard jobs run on every real hour / half hour, the repeated hour included
        (
            "0 * * * *",
            datetime(2026, 10, 24, 22, 30, tzinfo=UTC),
            ["24T23:00Z", "25T00:00Z", "25T01:00Z", "25T02:00Z"],
        ),
        (
            "*/30 * * * *",
            datetime(2026, 10, 24, 23, 45, tzinfo=UTC),
            ["25T00:00Z", "25T00:30Z", "25T01:00Z", "25T01:30Z", "25T02:00Z"],
        ),
        # a fixed-time job over a range of hours skips only the repeated 02:00
        (
            "0 1-3 * * *",
            datetime(2026, 10, 24, 22, 30, tzinfo=UTC),
            ["24T23:00Z", "25T00:00Z", "25T02:00Z", "26T00:00Z"],
        ),
        # spring forward: the hour 02:00-03:00 does not exist; hourly jobs run every real hour
        (
            "0 * * * *",
            datetime(2026, 3, 28, 23, 30, tzinfo=UTC),
            ["29T00:00Z", "29T01:00Z", "29T02:00Z", "29T03:00Z"],
        ),
        ("*/30 * * * *", datetime(2026, 3, 29, 0, 15, tzinfo=UTC), ["29T00:30Z", "29T01:00Z", "29T01:30Z"]),
    ],
)
def test_hourly_and_minutely_across_both_transitions(cron, start, expected):
    after = next_slots(cron, "Europe/Berlin", start, len(expected))
    assert utc_hours(after) == expected
    # the same instants, looking back from the last one
    before = due_slots(cron, "Europe/Berlin", after[-1], len(expected))
    assert utc_hours(before) == expected
    assert len({run_id("s", s) for s in after}) == len(expected)


def test_every_minute_through_the_repeated_hour_runs_each_real_minute():
    slots = next_slots("* * * * *", "Europe/Berlin", datetime(2026, 10, 24, 23, 59, tzinfo=UTC), 121)
    instants = [s.astimezone(UTC) for s in slots]  # same-tzinfo datetimes subtract by wall time
    gaps = {(b - a).total_seconds() for a, b in zip(instants, instants[1:], strict=False)}
    assert gaps == {60.0} and slots[-1].astimezone(UTC) == datetime(2026, 10, 25, 2, 0, tzinfo=UTC)


# -- impossible crons, overrides the job rejects --------------------------------------------------------
@pytest.mark.parametrize("cron", ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 2,4,6,9,11 *"])
@pytest.mark.parametrize("mode", ["--dry-run", "--once"])
def test_a_cron_that_never_matches_exits_2_naming_cron(cron, mode, tmp_path):
    proc = cli("schedule", NIGHTLY, mode, "--set", f"cron={cron}", "--set", f"state={tmp_path / 's.json'}")
    assert proc.returncode == 2, proc.stderr
    assert f"cron: {cron!r} never matches a date (e.g. day 30 of February)" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "s.json").exists()


@pytest.mark.parametrize("mode", ["--dry-run", "--once"])
def test_an_override_the_job_rejects_exits_2_at_load(mode, tmp_path):
    state = tmp_path / "s.json"
    proc = cli("schedule", NIGHTLY, mode, "--set", "overrides.count=5", "--set", f"state={state}")
    assert proc.returncode == 2, proc.stderr
    assert "job configs/synthesize/digits.yaml with the schedule's overrides" in proc.stderr
    assert "overrides.count: unknown key" in proc.stderr and "Traceback" not in proc.stderr
    assert not state.exists()  # nothing ran, nothing was recorded


def test_a_config_error_at_run_time_is_not_retried(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text((ROOT / "configs/synthesize/digits.yaml").read_text())
    cfg = load_config(
        NIGHTLY, [f"job={job}", f"state={tmp_path / 's.json'}", "max_retries=2", "retry_delay_s=0"]
    )
    now = datetime(2026, 5, 4, 0, 30, tzinfo=UTC)
    sched = SlotScheduler(cfg, "nightly-digits", clock=lambda: now)  # the job config is valid when it loads
    job.write_text(job.read_text() + "\nbogus_key: 1\n")  # ... and someone breaks it before the slot runs
    rec = sched.run_once()
    assert rec.status == "failed" and len(rec.attempts) == 1 and rec.retry_at is None
    assert "bogus_key: unknown key" in rec.last.error


# -- dead schedulers -------------------------------------------------------------------------------------
def _running(state: Path, name: str, slot: datetime, **who) -> None:
    h = History(str(state), name)
    rid = run_id(name, slot)
    att = Attempt(n=1, submission_id=rid, started=iso(slot), **who)
    h.runs[rid] = RunRecord(run_id=rid, slot=iso(slot), status="running", attempts=[att])
    h.save()


def _sched(tmp_path: Path, now: datetime) -> SlotScheduler:
    cfg = load_config(NIGHTLY, [f"state={tmp_path / 's.json'}", "max_retries=0"])
    return SlotScheduler(cfg, "nightly-digits", clock=lambda: now)


SLOT = datetime(2026, 5, 4, 0, 0, tzinfo=UTC)
HOST = socket.gethostname()


@pytest.mark.parametrize(
    "who",
    [
        # the crashed scheduler had this very PID (a container restart): another start time
        {"pid": os.getpid(), "boot_id": boot_id(), "pid_start": "1"},
        # an older history without start times, recorded by "this" PID
        {"pid": os.getpid()},
        # recorded before a reboot
        {"pid": os.getpid(), "boot_id": "another-boot", "pid_start": process_start(os.getpid())},
    ],
)
def test_a_crashed_scheduler_with_the_same_host_and_pid_is_dead(tmp_path, who):
    _running(tmp_path / "s.json", "nightly-digits", SLOT, host=HOST, **who)
    sched = _sched(tmp_path, SLOT + timedelta(hours=1))
    rec = sched.history.runs[run_id("nightly-digits", SLOT)]
    sched.reconcile(rec)
    assert rec.status == "failed" and rec.last.status == "interrupted"  # max_retries=0: no retry
    assert not [r for r in sched.history.runs.values() if r.status == "running"]  # forbid blocks nothing
    again = json.loads((tmp_path / "s.json").read_text())["runs"][rec.run_id]
    assert again["status"] == "failed"


def test_a_live_recorder_stays_running_until_it_dies(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        who = {"pid": proc.pid, "boot_id": boot_id(), "pid_start": process_start(proc.pid)}
        _running(tmp_path / "s.json", "nightly-digits", SLOT, host=HOST, **who)
        sched = _sched(tmp_path, SLOT + timedelta(hours=1))
        rec = sched.history.runs[run_id("nightly-digits", SLOT)]
        sched.reconcile(rec)
        assert rec.status == "running"
    finally:
        proc.kill()
        proc.wait(timeout=30)
    sched.reconcile(rec)
    assert rec.status == "failed" and rec.last.status == "interrupted"


def test_new_attempts_record_the_process_run():
    att = Attempt.new(1, "x", "2026-01-01T00:00:00+00:00")
    assert (att.host, att.pid, att.boot_id) == (HOST, os.getpid(), boot_id())
    assert att.pid_start == process_start(os.getpid()) and att.pid_start is not None
    assert att.recorder_alive()


# -- corrupt state -----------------------------------------------------------------------------------------
CORRUPT = {
    "not-json": b"{not json",
    "binary": b"\xff\xfe\x00\x89PNG",
    "a-list": b"[]",
    "no-created": json.dumps({"schedule": "n", "runs": {}}).encode(),
    "runs-a-list": json.dumps({"schedule": "n", "created": "2026-01-01T00:00:00+00:00", "runs": []}).encode(),
    "bad-slot": json.dumps(
        {"schedule": "n", "created": "2026-01-01T00:00:00+00:00", "runs": {"r": {"run_id": "r", "slot": "x"}}}
    ).encode(),
    "bad-status": json.dumps(
        {
            "schedule": "n",
            "created": "2026-01-01T00:00:00+00:00",
            "runs": {"r": {"run_id": "r", "slot": "2026-01-01T00:00:00+00:00", "status": "weird"}},
        }
    ).encode(),
    "bad-attempt": json.dumps(
        {
            "schedule": "n",
            "created": "2026-01-01T00:00:00+00:00",
            "runs": {"r": {"run_id": "r", "slot": "2026-01-01T00:00:00+00:00", "attempts": [{"n": 1}]}},
        }
    ).encode(),
}


@pytest.mark.parametrize("content", CORRUPT.values(), ids=CORRUPT.keys())
def test_a_corrupt_state_is_a_storage_error_naming_the_file(tmp_path, content):
    path = tmp_path / "s.json"
    path.write_bytes(content)
    with pytest.raises(StorageError) as err:
        History(str(path), "n").load()
    assert str(err.value).startswith(f"schedule state {path} ")
    assert "restore it from a backup, or move it aside to start a new history" in str(err.value)


def test_a_corrupt_state_exits_1_in_one_line(tmp_path):
    state = tmp_path / "s.json"
    state.write_bytes(b"\x00\x01garbage")
    proc = cli("schedule", NIGHTLY, "--once", "--set", f"state={state}")
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith(f"error: schedule state {state} is corrupt (")
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_older_state_records_still_load(tmp_path):
    """Histories written before attempts recorded boot id and start time load unchanged."""
    path = tmp_path / "s.json"
    att = {"n": 1, "submission_id": "r", "started": "2026-01-01T00:00:00+00:00", "host": "h", "pid": 7}
    rec = {"run_id": "r", "slot": "2026-01-01T00:00:00+00:00", "status": "running", "attempts": [att]}
    path.write_text(json.dumps({"schedule": "n", "created": "2026-01-01T00:00:00+00:00", "runs": {"r": rec}}))
    h = History(str(path), "n").load()
    assert (h.runs["r"].last.pid, h.runs["r"].last.pid_start) == (7, None)


def test_once_returns_instead_of_waiting_forever_on_a_crashed_run(tmp_path):
    """The crashed run of the latest slot (same host and PID, earlier start) ends `--once` at once."""
    now = SLOT + timedelta(minutes=30)
    _running(tmp_path / "s.json", "nightly-digits", SLOT, host=HOST, pid=os.getpid(), pid_start="1")
    sched = _sched(tmp_path, now)
    sched.cfg.poll_s = 0.01
    rec = sched.run_once()
    assert (rec.run_id, rec.status, len(rec.attempts)) == ("nightly-digits-20260504T0000Z", "failed", 1)
    assert rec.last.error == f"scheduler process {os.getpid()} on {HOST} ended during the run"


@pytest.mark.parametrize(
    ("message", "refused"),
    [
        (
            "Job entrypoint command failed with exit code 2, last available logs (truncated to 20,000 chars):\nerror: x",
            True,
        ),
        ("Job entrypoint command failed with exit code 2. No logs available.", True),
        ("Job entrypoint command failed with exit code 1, last available logs ...", False),
        ("Job entrypoint command failed with exit code 21. No logs available.", False),
        ("Unexpected error occurred: 1 worker(s) were killed due to the node running low on memory.", False),
    ],
)
def test_a_cluster_job_that_refused_its_config_is_not_retried(message, refused):
    from genart.cluster.schedule import config_refused

    assert config_refused(message) is refused
