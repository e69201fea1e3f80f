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
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from genart.errors import StorageError
from genart.storage.fs import get_fs, join, redact

_EPS = timedelta(microseconds=1)  # so a slot exactly at `now` counts as due
DONE = {"succeeded", "failed", "missed", "replaced"}  # a slot in one of these states is never started again


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


def run_id(name: str, slot: datetime) -> str:
    """Deterministic id of a slot's run (and its Ray submission id): the schedule name + the slot in UTC."""
    return f"{name}-{slot.astimezone(timezone.utc):%Y%m%dT%H%MZ}"


def due_slots(cron: str, tz: str, now: datetime, count: int) -> list[datetime]:
    """The `count` latest cron times at or before `now`, oldest first, in the schedule's time zone."""
    from croniter import croniter

    it = croniter(cron, now.astimezone(ZoneInfo(tz)) + _EPS)
    return sorted(it.get_prev(datetime) for _ in range(count))


def next_slots(cron: str, tz: str, now: datetime, count: int) -> list[datetime]:
    from croniter import croniter

    it = croniter(cron, now.astimezone(ZoneInfo(tz)))
    return [it.get_next(datetime) for _ in range(count)]


@dataclass
class Attempt:
    n: int
    submission_id: str
    started: str
    status: str = "running"  # running, succeeded, failed, interrupted, stopped
    finished: str | None = None
    error: str | None = None
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)


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


class History:
    """The JSON history at `uri`: {"schedule", "created", "runs": {run_id: RunRecord}}."""

    def __init__(self, uri: str, name: str):
        self.uri, self.name = uri, name
        self.fs, self.path = get_fs(uri)
        self.created = iso(now_utc())
        self.runs: dict[str, RunRecord] = {}

    def load(self) -> History:
        try:
            raw = json.loads(self.fs.cat_file(self.path))
        except FileNotFoundError:
            return self
        except (OSError, json.JSONDecodeError) as exc:
            raise StorageError(
                f"schedule state {redact(self.uri)} cannot be read ({exc}); fix or move it"
            ) from exc
        if raw.get("schedule") != self.name:
            raise StorageError(
                f"schedule state {redact(self.uri)} belongs to schedule {raw.get('schedule')!r}, "
                f"not {self.name!r}; give each schedule its own `state`"
            )
        self.created = raw["created"]
        for rid, rec in raw.get("runs", {}).items():
            attempts = [Attempt(**a) for a in rec.pop("attempts", [])]
            self.runs[rid] = RunRecord(**rec, attempts=attempts)
        return self

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
            self.fs.pipe_file(tmp, json.dumps(payload, indent=2).encode())
            self.fs.mv(tmp, self.path)
        except OSError as exc:
            raise StorageError(f"cannot write schedule state {redact(self.uri)} ({exc})") from exc
