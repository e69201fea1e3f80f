"""The retry policy (storage/retry.py): bounded attempts with doubling backoff, then a StorageError naming
what failed; `cause` picks the telling line of a Ray error's text. No Ray."""

from __future__ import annotations

import pytest

from genart.errors import JobFailed, StorageError
from genart.storage import retry as policy
from genart.storage.retry import cause, retry


def test_retry_returns_once_the_action_succeeds(monkeypatch):
    sleeps: list[float] = []
    monkeypatch.setattr(policy.time, "sleep", sleeps.append)
    calls = iter([OSError("a"), OSError("b"), "done"])

    def action():
        v = next(calls)
        if isinstance(v, Exception):
            raise v
        return v

    assert retry(action, "writing x", attempts=3, backoff_s=0.5) == "done"
    assert sleeps == [0.5, 1.0]


def test_retry_gives_up_after_the_attempts_with_a_storage_error(monkeypatch):
    sleeps: list[float] = []
    monkeypatch.setattr(policy.time, "sleep", sleeps.append)
    n = 0

    def action():
        nonlocal n
        n += 1
        raise TimeoutError(f"slow {n}")

    with pytest.raises(StorageError) as err:
        retry(action, "writing out/_SUCCESS")
    assert n == policy.ATTEMPTS == 5 and sleeps == [0.2, 0.4, 0.8, 1.6]
    assert str(err.value) == (
        "writing out/_SUCCESS failed after 5 attempts (TimeoutError: slow 5); "
        "check the output location and re-run to resume"
    )
    assert isinstance(err.value.__cause__, TimeoutError)


class _RayLike(Exception):
    def __init__(self, text: str, inner: BaseException | None = None):
        super().__init__(text)
        self.cause = inner


def test_cause_prefers_the_tasks_own_genart_error():
    assert cause(_RayLike("noise", JobFailed("shard 3 failed"))) == "JobFailed: shard 3 failed"


def test_cause_takes_the_innermost_error_line_else_the_first_line():
    text = "ray.exceptions.RayTaskError(OSError): task failed\n  File x\nOSError: disk full\n  more text"
    assert cause(_RayLike(text)) == "OSError: disk full"
    assert cause(_RayLike("the actor died unexpectedly\nsecond: line")) == "the actor died unexpectedly"
    assert cause(_RayLike("")) == "_RayLike"
    assert cause(_RayLike("ValueError: " + "x" * 600)) == ("ValueError: " + "x" * 600)[:500]
