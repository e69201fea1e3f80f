"""The Batch record: slicing keeps every per-item field aligned, None stays None, it is frozen. No Ray."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from genart.images import Batch


def _batch() -> Batch:
    ids = np.arange(10, 16, dtype=np.int64)
    images = np.arange(6 * 8 * 5 * 3, dtype=np.uint8).reshape(6, 8, 5, 3)  # 6 items, 5 wide, 8 high
    return Batch(ids, ids * 7, None, images, blobs=[b"x%d" % i for i in ids], phash=ids.astype(np.uint64))


def test_a_slice_slices_every_field_alike():
    b = _batch()
    part = b[2:5]
    assert len(b) == 6 and len(part) == 3
    assert part.ids.tolist() == [12, 13, 14] and part.seeds.tolist() == [84, 91, 98]
    assert part.blobs == [b"x12", b"x13", b"x14"] and part.phash.dtype == np.uint64
    assert part.class_ids is None and part.score is None and part.judged is None
    assert np.array_equal(part.images, b.images[2:5])
    assert b.size == part.size == (5, 8)  # (width, height)


def test_frozen_replace_and_bad_index():
    b = _batch()
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.ids = np.arange(3)
    scored = b.replace(score=np.ones(6, np.float32))
    assert b.score is None and scored.score.tolist() == [1.0] * 6 and scored.ids is b.ids
    with pytest.raises(TypeError, match="a Batch is sliced with a slice, not int"):
        b[0]
