"""The retry policy (storage/retry.py): bounded attempts with doubling backoff, then a StorageError naming
what failed; `cause` picks the telling line of a Ray error's text. No Ray."""

from __future__ import annotations

import pytest

from genart.errors import StorageError
from genart.storage import retry as policy
from genart.storage.retry import retry


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


def test_the_retry_policy_holds_no_ray_error_scraping():
    import inspect

    from genart.storage import commit, retry

    assert not hasattr(retry, "cause")
    assert list(inspect.signature(commit.ShardWriter.__init__).parameters)[:3] == [
        "self",
        "out",
        "shard_format",
    ]
