"""generation/scheduler.error_cause: the one line of a Ray error a job's message quotes. No Ray running."""

from __future__ import annotations

from genart.errors import JobFailed
from genart.generation.scheduler import error_cause as cause


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
