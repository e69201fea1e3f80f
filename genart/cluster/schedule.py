"""`genart schedule`: run a job config on a cron schedule, each slot at most once, history in `state`.

With `address: null` a slot's job runs in this process (the same library call as `genart <kind>`), one
at a time, so runs never overlap. With an address, a slot is submitted to the cluster with its run id as
the Ray submission id; the scheduler polls it and applies `concurrency_policy` when the next slot is due
while it is still active. A restarted scheduler reconciles `running` records against the cluster (or, for
in-process runs, against the recorded process) instead of starting the slot again.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from genart.cluster.credentials import is_credential_key, scrub, secret_values
from genart.cluster.history import (
    DONE,
    Attempt,
    History,
    RunRecord,
    due_slots,
    iso,
    next_slots,
    now_utc,
    run_id,
)
from genart.config.schedule import ScheduleConfig
from genart.errors import ConfigError, GenartError, Stopped

log = logging.getLogger(__name__)

_SLOT = re.compile(r"\{slot(?::([^}]*))?\}")


def substitute(value, slot: datetime):
    """`{slot:%Y%m%d}` (or `{slot}`, ISO 8601) in a string override becomes the slot's time."""
    if not isinstance(value, str):
        return value
    return _SLOT.sub(lambda m: slot.strftime(m.group(1)) if m.group(1) else iso(slot), value)


def slot_overrides(cfg: ScheduleConfig, slot: datetime) -> list[str]:
    """The schedule's overrides as `--set KEY=VALUE` strings (JSON values are valid YAML flow values)."""
    return [f"{k}={json.dumps(substitute(v, slot))}" for k, v in cfg.overrides.items()]


def check_job(cfg: ScheduleConfig, source: str = "schedule"):
    """Validate the job config with the schedule's overrides (as the next slot would run it), so a bad
    override fails when the schedule loads, not on every retry. With an address, also what `genart submit`
    checks (no credentials in the job). Returns the job config; raises ConfigError naming the key."""
    from genart.config import load_config

    slot = next_slots(cfg.cron, cfg.timezone, now_utc(), 1)[0]
    sets = slot_overrides(cfg, slot)
    try:
        job = load_config(cfg.job, sets)
        if job.kind not in ("train", "generate", "synthesize"):
            raise ConfigError(
                f"{cfg.job}: kind {job.kind!r} cannot be scheduled; give a train, generate "
                "or synthesize config"
            )
        if cfg.address:
            from genart.cluster.submit import build_job

            build_job(cfg.job, sets)
    except ConfigError as exc:
        text = str(exc)
        for key in sorted(cfg.overrides, key=len, reverse=True):
            text = re.sub(rf"(^|\n\s*|: ){re.escape(key)}([.:\[])", rf"\1overrides.{key}\2", text)
        raise ConfigError(f"{source}: job {cfg.job} with the schedule's overrides: {text}") from None
    return job


def config_refused(message: str) -> bool:
    """Whether a Ray job's message says its entrypoint exited with status 2, genart's config error: the
    same config fails the same way on every attempt, so it is not retried."""
    return re.search(r"failed with exit code 2\b", message) is not None


def known_secrets(cfg: ScheduleConfig, job) -> list[str]:
    """Values that must never reach the schedule's state: credential-like overrides and storage options."""
    found = [str(v) for k, v in cfg.overrides.items() if is_credential_key(k.rsplit(".", 1)[-1]) and v]
    storage = getattr(job, "storage", None)
    return found + list(secret_values(getattr(storage, "options", None) or {}))


class SlotScheduler:
    def __init__(
        self, cfg: ScheduleConfig, name: str, clock: Callable[[], datetime] = now_utc, source: str = ""
    ):
        """Raises ConfigError when the job config rejects the overrides, StorageError for a bad state."""
        self.cfg, self.name, self.clock = cfg, name, clock
        self.job = check_job(cfg, source or name)
        self.secrets = known_secrets(cfg, self.job)
        self.history = History(cfg.state, name).load()
        self._mine: set[str] = set()  # submission ids this process started (its own runs)
        self.stop_event = threading.Event()
        self._in_local_run = False
        self._client = None

    # -- remote helpers ------------------------------------------------------------------------------------
    def client(self):
        from genart.cluster import submit

        if self._client is None:
            self._client = submit.connect(self.cfg.address)
        return self._client

    def _remote_status(self, sid: str) -> str:
        from genart.cluster import submit

        return submit.status(self.client(), self.cfg.address, sid)

    def _remote_message(self, sid: str) -> str:
        from genart.cluster import submit

        return getattr(submit.info(self.client(), self.cfg.address, sid), "message", "") or ""

    # -- one slot ------------------------------------------------------------------------------------------
    def _finish(self, rec: RunRecord, status: str, error: str | None = None, retry: bool = True) -> None:
        """Record the attempt's end; a failure is retried (bounded) unless `retry` is False (config errors).
        The error is stored with URLs redacted and known secrets masked."""
        att = rec.last
        error = scrub(error, self.secrets) if error else error
        att.status, att.finished, att.error = status, iso(self.clock()), error
        if status == "succeeded":
            rec.status, rec.retry_at = "succeeded", None
        elif not retry:
            rec.status, rec.retry_at = "failed", None
            log.error("%s: attempt %d %s (%s); not retried", rec.run_id, att.n, status, error)
        elif len(rec.attempts) > self.cfg.max_retries:
            rec.status, rec.retry_at = "failed", None
            log.error("%s: attempt %d %s; no retries left", rec.run_id, att.n, status)
        else:
            rec.status = "retry"
            rec.retry_at = iso(self.clock() + timedelta(seconds=self.cfg.retry_delay_s))
            log.warning(
                "%s: attempt %d %s (%s); retrying at %s", rec.run_id, att.n, status, error, rec.retry_at
            )
        self.history.save()

    def reconcile(self, rec: RunRecord) -> None:
        """Bring a `running` record up to date: poll its Ray job, or notice its in-process run died."""
        att = rec.last
        if att is None:
            return
        if self.cfg.address:
            st = self._remote_status(att.submission_id)
            if st == "MISSING":  # the scheduler stopped between recording and submitting: submit it now
                log.info("%s: %s never reached the cluster; submitting it", rec.run_id, att.submission_id)
                self._submit(rec, datetime.fromisoformat(rec.slot), att.submission_id)
            elif st == "SUCCEEDED":
                self._finish(rec, "succeeded")
            elif st in ("FAILED", "STOPPED"):
                refused = st == "FAILED" and config_refused(self._remote_message(att.submission_id))
                why = "; the job refused its config (exit status 2): not retried" if refused else ""
                self._finish(
                    rec, st.lower(), f"Ray job {att.submission_id} ended {st}{why}", retry=not refused
                )
        elif att.submission_id not in self._mine and not att.recorder_alive():
            self._finish(
                rec, "interrupted", f"scheduler process {att.pid} on {att.host} ended during the run"
            )

    def _start(self, rec: RunRecord, slot: datetime) -> None:
        n = len(rec.attempts) + 1
        sid = rec.run_id if n == 1 else f"{rec.run_id}-attempt{n}"
        rec.attempts.append(Attempt.new(n, sid, iso(self.clock())))
        self._mine.add(sid)
        rec.status, rec.retry_at = "running", None
        self.history.save()  # before the job starts: a restart sees `running` and never starts it again
        log.info("%s: starting attempt %d for slot %s", rec.run_id, n, rec.slot)
        if self.cfg.address:
            self._submit(rec, slot, sid)
        else:
            self._run_local(rec, slot)

    def _submit(self, rec: RunRecord, slot: datetime, sid: str) -> None:
        from genart.cluster import submit

        try:
            spec = submit.build_job(self.cfg.job, slot_overrides(self.cfg, slot))
            submit.submit(self.client(), self.cfg.address, spec, submission_id=sid)
        except ConfigError as exc:  # the same config fails the same way every time: never retried
            self._finish(rec, "failed", str(exc)[:500], retry=False)
        except GenartError as exc:
            self._finish(rec, "failed", str(exc)[:500])

    def _run_local(self, rec: RunRecord, slot: datetime) -> None:
        from genart.config import load_config

        self._in_local_run = True
        try:
            cfg = load_config(self.cfg.job, slot_overrides(self.cfg, slot))
            if cfg.kind == "generate":
                from genart.generation.runner import generate

                generate(cfg, progress=False)
            elif cfg.kind == "train":
                from genart.training.trainer import train

                train(cfg)
            elif cfg.kind == "synthesize":
                from genart.synthesis.runner import synthesize

                synthesize(cfg, progress=False)
            else:
                raise GenartError(f"job {self.cfg.job}: kind {cfg.kind!r} cannot be scheduled")
        except ConfigError as exc:
            self._finish(rec, "failed", str(exc)[:500], retry=False)
        except Stopped:
            self._in_local_run = False
            self._finish(rec, "interrupted", "scheduler stopped (SIGTERM/SIGINT) during the run")
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the job is recorded, then retried (bounded)
            log.exception("%s: run failed", rec.run_id)
            self._finish(rec, "failed", f"{type(exc).__name__}: {exc}"[:500])
        else:
            self._finish(rec, "succeeded")
        finally:
            self._in_local_run = False

    def _stop_remote(self, rec: RunRecord) -> None:
        from genart.cluster import submit

        submit.stop(self.client(), self.cfg.address, rec.last.submission_id)
        rec.last.status, rec.last.finished, rec.status = "stopped", iso(self.clock()), "replaced"
        self.history.save()
        log.info("%s: stopped (concurrency_policy: replace)", rec.run_id)

    # -- a pass over the due slots -------------------------------------------------------------------------
    def candidates(self, latest_only: bool) -> list[datetime]:
        now = self.clock()
        slots = due_slots(self.cfg.cron, self.cfg.timezone, now, 1 if latest_only else self.cfg.catchup + 1)
        created = datetime.fromisoformat(self.history.created)
        return [s for i, s in enumerate(slots) if i == len(slots) - 1 or s >= created]

    def tick(self, latest_only: bool = False) -> list[RunRecord]:
        """Reconcile active runs, then start every due slot that may start; returns the slots' records."""
        for rec in [r for r in self.history.runs.values() if r.status == "running"]:
            self.reconcile(rec)
        now, out = self.clock(), []
        for slot in self.candidates(latest_only):
            rid = run_id(self.name, slot)
            rec = self.history.runs.get(rid)
            if rec is None:
                rec = self.history.runs[rid] = RunRecord(run_id=rid, slot=iso(slot))
                late = (now - slot).total_seconds()
                if self.cfg.starting_deadline_s is not None and late > self.cfg.starting_deadline_s:
                    rec.status = "missed"
                    self.history.save()
                    log.warning("%s: missed (%.0fs late > starting_deadline_s)", rid, late)
            out.append(rec)
            if rec.status in DONE or rec.status == "running":
                continue
            if rec.retry_at and datetime.fromisoformat(rec.retry_at) > now:
                continue
            active = [r for r in self.history.runs.values() if r.status == "running"]
            if active and self.cfg.concurrency_policy == "forbid":
                log.info(
                    "%s: waiting, %s is still running (concurrency_policy: forbid)", rid, active[0].run_id
                )
                continue
            if active and self.cfg.concurrency_policy == "replace":
                for other in active:
                    self._stop_remote(other)
            self._start(rec, slot)
        return out

    # -- entry points --------------------------------------------------------------------------------------
    def run_once(self) -> RunRecord:
        """Run the latest due slot unless it already ran; wait for it (and its bounded retries)."""
        with self._signals():
            while True:
                rec = self.tick(latest_only=True)[-1]
                if rec.status in DONE:
                    return rec
                self._sleep(min(self.cfg.poll_s, 2.0) if rec.status == "running" else self._until_retry(rec))

    def run_forever(self) -> None:
        with self._signals():
            try:
                while True:
                    self.tick()
                    self._sleep(self.cfg.poll_s)
            except Stopped:
                pass
        log.info("scheduler stopped; history at %s is consistent", self.cfg.state)

    def _until_retry(self, rec: RunRecord) -> float:
        if not rec.retry_at:
            return 0.0
        return max(0.0, (datetime.fromisoformat(rec.retry_at) - self.clock()).total_seconds())

    def _sleep(self, seconds: float) -> None:
        if self.stop_event.wait(seconds):
            raise Stopped("stopped by signal")

    def _signals(self):
        import contextlib

        @contextlib.contextmanager
        def ctx():
            def handler(signum, _frame):
                log.warning("received %s; stopping", signal.Signals(signum).name)
                self.stop_event.set()
                if self._in_local_run:  # unwind the in-process job; its record becomes `interrupted`
                    raise Stopped(f"stopped by {signal.Signals(signum).name} during a run")

            old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
            try:
                yield
            finally:
                for s, h in old.items():
                    signal.signal(s, h)

        return ctx()
