"""The scheduler's run history: slots, run ids and a JSON file at the schedule's `state` URI.

Every change is written whole and atomically (temp object, then rename), so a scheduler killed at any
moment leaves either the old or the new history, never a torn one. A run record is written as `running`
before its job starts; a restarted scheduler reconciles such records instead of starting the slot again.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from genart.errors import ConfigError, StorageError
from genart.storage import safejson
from genart.storage.fs import get_fs, join, redact, write_atomic

_EPS = timedelta(microseconds=1)  # so a slot exactly at `now` counts as due
DONE = {"succeeded", "failed", "missed", "replaced"}  # a slot in one of these states is never started again
STATUSES = DONE | {"pending", "running", "retry"}


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


def run_id(name: str, slot: datetime) -> str:
    """Deterministic id of a slot's run (and its Ray submission id): the schedule name + the slot in UTC."""
    return f"{name}-{slot.astimezone(timezone.utc):%Y%m%dT%H%MZ}"


# -- slots -----------------------------------------------------------------------------------------------
def _fixed_time(cron: str) -> bool:
    """Vixie cron's distinction: a job whose minute and hour fields are not wildcards (`0 2 * * *`) runs at a
    wall-clock time; `*`, `*/15`... in either field make it a wildcard job that runs on elapsed time."""
    minute, hour = cron.split()[:2]
    return not (minute.startswith("*") or hour.startswith("*"))


def _repeated(slot: datetime) -> bool:
    """True when `slot` is the second occurrence of its wall-clock time (the hour repeated when clocks go
    back): the same wall time at its first occurrence has another UTC offset."""
    first = slot.replace(tzinfo=None).replace(tzinfo=slot.tzinfo, fold=0)
    return first.utcoffset() != slot.utcoffset()


def _slots(cron: str, tz: str, start: datetime, count: int, backwards: bool) -> list[datetime]:
    """`count` cron times from `start` (exclusive) in the schedule's zone. A fixed-time job whose wall time
    occurs twice (clocks going back) runs once, at the first occurrence; a wall time skipped by clocks going
    forward runs at the first instant after the gap (croniter's and Vixie cron's rule). Raises ConfigError
    for a cron expression that never matches (`0 0 30 2 *`)."""
    from croniter import CroniterError, croniter

    fixed, out = _fixed_time(cron), []
    try:
        it = croniter(cron, start.astimezone(ZoneInfo(tz)))
        while len(out) < count:
            slot = it.get_prev(datetime) if backwards else it.get_next(datetime)
            if not (fixed and _repeated(slot)):
                out.append(slot)
    except CroniterError as exc:
        raise ConfigError(f"cron: {cron!r} never matches a date ({exc})") from None
    return out


def due_slots(cron: str, tz: str, now: datetime, count: int) -> list[datetime]:
    """The `count` latest cron times at or before `now`, oldest first, in the schedule's time zone."""
    # by instant: datetimes sharing a tzinfo compare by wall time, which misorders the repeated hour
    return sorted(
        _slots(cron, tz, now + _EPS, count, backwards=True), key=lambda s: s.astimezone(timezone.utc)
    )


def next_slots(cron: str, tz: str, now: datetime, count: int) -> list[datetime]:
    """The next `count` cron times after `now`, in the schedule's time zone."""
    return _slots(cron, tz, now, count, backwards=False)


# -- which process recorded an attempt -----------------------------------------------------------------
def boot_id() -> str | None:
    """The kernel's boot id (Linux): a reboot changes it; a container restart keeps it."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def process_start(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot on Linux), or None when it does not exist.

    A restarted scheduler that got the crashed one's PID (containers start PIDs from 1) has another start
    time, so (host, boot id, pid, start) names one process run, unlike (host, pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the `(comm)` field
    except (OSError, IndexError):
        pass
    try:
        import psutil

        return repr(psutil.Process(pid).create_time())
    except Exception:  # noqa: BLE001 - psutil missing, no such process, or no permission: unknown
        return None


def this_process() -> dict:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "boot_id": boot_id(), "pid_start": process_start(pid)}


@dataclass
class Attempt:
    n: int
    submission_id: str
    started: str
    status: str = "running"  # running, succeeded, failed, interrupted, stopped
    finished: str | None = None
    error: str | None = None
    host: str | None = None
    pid: int | None = None
    boot_id: str | None = None  # with pid_start: the recording process run (see process_start)
    pid_start: str | None = None

    @classmethod
    def new(cls, n: int, submission_id: str, started: str) -> Attempt:
        return cls(n=n, submission_id=submission_id, started=started, **this_process())

    def recorder_alive(self) -> bool:
        """Whether the process that recorded this attempt still runs (on this host; another host: no).

        Compares the boot id and the process's start time, not only the PID: a scheduler restarted with
        the crashed one's PID is not the crashed one. A record without a start time (older history) is
        alive only while a process other than this one holds its PID."""
        if self.host != socket.gethostname() or self.pid is None:
            return False
        if self.boot_id and self.boot_id != boot_id():
            return False
        started = process_start(self.pid)
        if started is None:
            return False
        if self.pid_start is not None:
            return started == self.pid_start
        return self.pid != os.getpid()


@dataclass
class RunRecord:
    run_id: str
    slot: str
    status: str = "pending"  # pending, running, retry, succeeded, failed, missed, replaced
    attempts: list[Attempt] = field(default_factory=list)
    retry_at: str | None = None

    @property
    def last(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None


def _parse_attempt(raw: dict) -> Attempt:
    known = {f.name for f in fields(Attempt)}
    att = Attempt(**{k: v for k, v in raw.items() if k in known})
    if not isinstance(att.n, int) or not isinstance(att.submission_id, str):
        raise ValueError(f"attempt {raw!r} has no number or submission id")
    datetime.fromisoformat(att.started)
    return att


def _parse_record(rid: str, raw: dict) -> RunRecord:
    attempts = [_parse_attempt(a) for a in raw.get("attempts", [])]
    rec = RunRecord(run_id=raw["run_id"], slot=raw["slot"], status=raw.get("status", "pending"))
    rec.attempts, rec.retry_at = attempts, raw.get("retry_at")
    if rec.run_id != rid or rec.status not in STATUSES:
        raise ValueError(f"run {rid!r} has run_id {rec.run_id!r} and status {rec.status!r}")
    datetime.fromisoformat(rec.slot)
    if rec.retry_at is not None:
        datetime.fromisoformat(rec.retry_at)
    return rec


class History:
    """The JSON history at `uri`: {"schedule", "created", "runs": {run_id: RunRecord}}."""

    def __init__(self, uri: str, name: str):
        self.uri, self.name = uri, name
        self.fs, self.path = get_fs(uri)
        self.created = iso(now_utc())
        self.runs: dict[str, RunRecord] = {}

    def load(self) -> History:
        """Read the history (none yet: empty). Raises StorageError naming the file when it cannot be read,
        is not a genart schedule history, or belongs to another schedule."""
        try:
            data = self.fs.cat_file(self.path)
        except FileNotFoundError:
            return self
        except OSError as exc:
            raise StorageError(f"schedule state {redact(self.uri)} cannot be read ({exc})") from exc
        try:
            raw = safejson.loads(data)
            owner = raw.get("schedule")
        except (ValueError, AttributeError) as exc:
            raise self._corrupt(f"not a JSON object: {str(exc)[:120]}") from None
        if owner != self.name:
            raise StorageError(
                f"schedule state {redact(self.uri)} belongs to schedule {owner!r}, "
                f"not {self.name!r}; give each schedule its own `state`"
            )
        try:
            datetime.fromisoformat(raw["created"])
            runs = {rid: _parse_record(rid, rec) for rid, rec in raw.get("runs", {}).items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise self._corrupt(f"{type(exc).__name__}: {str(exc)[:120]}") from None
        self.created, self.runs = raw["created"], runs
        return self

    def _corrupt(self, why: str) -> StorageError:
        return StorageError(
            f"schedule state {redact(self.uri)} is corrupt ({why}); restore it from a backup, or move it "
            "aside to start a new history (its runs are then forgotten: the latest due slot runs again)"
        )

    def save(self) -> None:
        payload = {
            "schedule": self.name,
            "created": self.created,
            "runs": {rid: asdict(r) for rid, r in sorted(self.runs.items())},
        }
        parent = self.path.rsplit("/", 1)[0] if "/" in self.path else "."
        tmp = join(parent, f".{self.path.rsplit('/', 1)[-1]}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            self.fs.makedirs(parent, exist_ok=True)
            write_atomic(self.fs, self.path, tmp, json.dumps(payload, indent=2).encode())
        except OSError as exc:
            raise StorageError(f"cannot write schedule state {redact(self.uri)} ({exc})") from exc
