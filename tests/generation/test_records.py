"""The typed records between generation stages: JobSummary.as_dict() is _SUCCESS key for key, in order;
a _SUCCESS read back becomes the same JobSummary; ShardResult and JobSummary are frozen. No Ray."""

from __future__ import annotations

import dataclasses
import json

import pytest

from genart.generation.records import JobSummary, ShardResult

# _SUCCESS as genart 0.2 writes it (the keys in this order)
SUCCESS_KEYS = [
    "count",
    "shards",
    "bytes",
    "seconds",
    "images_per_s",
    "model_id",
    "job_id",
    "generated",
    "resumed_shards",
    "first_commit_s",
    "rejected_score",
    "rejected_duplicate",
    "genart_version",
]


def _summary(**kw) -> JobSummary:
    values = dict(
        count=2000,
        shards=10,
        bytes=123456,
        seconds=4.25,
        images_per_s=470.59,
        model_id="m" * 64,
        job_id="20261130T000000Z-0123abcd",
        generated=2000,
        resumed_shards=0,
        first_commit_s=0.5,
        rejected_score=0,
        rejected_duplicate=0,
        genart_version="0.2.0",
    )
    return JobSummary(**{**values, **kw})


def test_as_dict_is_the_success_object_key_for_key():
    s = _summary()
    assert list(s.as_dict()) == SUCCESS_KEYS
    assert json.dumps(s.as_dict(), indent=2) == (
        "{\n"
        '  "count": 2000,\n  "shards": 10,\n  "bytes": 123456,\n  "seconds": 4.25,\n  "images_per_s": 470.59,\n'
        f'  "model_id": "{"m" * 64}",\n  "job_id": "20261130T000000Z-0123abcd",\n  "generated": 2000,\n'
        '  "resumed_shards": 0,\n  "first_commit_s": 0.5,\n  "rejected_score": 0,\n  "rejected_duplicate": 0,\n'
        '  "genart_version": "0.2.0"\n}'
    )


def test_a_success_object_read_back_is_the_same_summary():
    s = _summary(first_commit_s=None)
    assert JobSummary.from_dict(json.loads(json.dumps(s.as_dict()))) == s


def test_a_success_object_of_an_older_genart_leaves_the_missing_keys_none():
    old = {k: v for k, v in _summary().as_dict().items() if not k.startswith("rejected_")}
    s = JobSummary.from_dict({**old, "unknown": 1})
    assert (s.rejected_score, s.rejected_duplicate, s.generated) == (None, None, 2000)


def test_records_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        _summary().count = 1
    r = ShardResult(shard=3, n=100, bytes=999, seconds=1.5)
    assert (r.rejected_score, r.rejected_duplicate) == (0, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.n = 1
