"""The filters without Ray: the near-duplicate index, derived seeds, rejection sampling, the scorers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genart.bundle import load_bundle, load_discriminator, read_meta, save_untrained_bundle
from genart.config.filters import GenerateFilter
from genart.errors import BundleError, ConfigError
from genart.filters.dedupe import HashIndex
from genart.filters.draw import FilteredDraw, FilterExhausted, attempt_seeds
from genart.filters.score import CALIBRATION_SEED, check_filter, make_scorer, phash64
from genart.ids import item_seeds


def _brute_conflict(accepted: list[int], h: int, d: int) -> bool:
    return any((h ^ g).bit_count() <= d for g in accepted)


@pytest.mark.parametrize("expected", [100, 10**6, 10**9])
@pytest.mark.parametrize("d", [0, 3, 6, 8, 17, 64])
def test_hash_index_matches_brute_force(d, expected):
    rng = np.random.default_rng(d)
    base = rng.integers(0, 2**63, 40, dtype=np.int64).astype(np.uint64)
    # clusters of near copies: flip a few random bits of a base hash
    hashes = []
    for _ in range(600):
        h = int(base[rng.integers(len(base))])
        for bit in rng.choice(64, size=rng.integers(0, 12), replace=False):
            h ^= 1 << int(bit)
        hashes.append(h)
    index, accepted, want = HashIndex(d, expected_items=expected), [], []
    got = index.claim(list(range(len(hashes))), hashes)
    for h in hashes:
        ok = not _brute_conflict(accepted, h, d)
        want.append(ok)
        if ok:
            accepted.append(h)
    assert got == want
    assert len(index) == sum(want) and index.stats()["claims"] == 600
    a = np.array(accepted, dtype=np.uint64)
    dist = np.bitwise_count(a[:, None] ^ a[None, :])
    np.fill_diagonal(dist, 65)
    assert len(a) == 1 or dist.min() > d


def test_range_choice_trades_probes_for_bucket_size():
    from genart.filters.dedupe import choose_ranges

    assert choose_ranges(0, 10**9) == 1  # exact matches: one table keyed by the whole hash
    assert choose_ranges(6, 1000) == 7  # small index: exact probes of 9-bit ranges
    assert choose_ranges(6, 10**7) == 3  # large index: 21-bit ranges, probing values within 2 bits
    index = HashIndex(6, expected_items=10**7)
    assert (len(index.ranges), index.r, len(index.flips[0])) == (3, 2, 1 + 21 + 210)


def test_hash_index_owner_reclaims_and_replaces():
    index = HashIndex(2)
    assert index.claim([5, 6], [0b1111, 0b1110]) == [True, False]  # 6 is 1 bit from 5's hash
    assert index.claim([5], [0b1111]) == [True]  # a retried shard re-claims its own hash
    assert index.claim([5], [0b1111 << 40]) == [True]  # an item owns one hash: the old one is released
    assert index.claim([6], [0b1110]) == [True] and len(index) == 2
    assert index.near(0b1110 | (1 << 63)) == 6 and index.near(1 << 20) is None


def test_hash_index_refuses_claims_of_an_older_shard_attempt():
    index = HashIndex(2)
    assert index.claim([5], [0b1111], 2) == [True]  # attempt 2 of the shard (a replacement replica)
    # a late call of the replica killed during attempt 1 must not replace what attempt 2 claimed
    assert index.claim([5], [0b1111 << 30], 1) == [False]
    assert index.owned[5] == 0b1111 and index.near(0b1110) == 5
    assert index.claim([5], [0b1111], 2) == [True] and index.claim([6], [1 << 50], 0) == [True]


def test_attempt_seeds_are_deterministic_distinct_and_non_negative():
    seeds = item_seeds(7, np.arange(1000))
    assert np.array_equal(attempt_seeds(seeds, 0), seeds)
    a1, a2 = attempt_seeds(seeds, 1), attempt_seeds(seeds, 2)
    assert np.array_equal(a1, attempt_seeds(seeds, 1))
    assert (a1 >= 0).all() and (a2 >= 0).all()
    assert len(set(seeds) | set(a1) | set(a2)) == 3000


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    uri = str(tmp_path_factory.mktemp("b") / "bundle")
    save_untrained_bundle(uri, discriminator=True)
    return uri


def _pixel_hash_scorer(images, class_ids):
    """A deterministic score of the pixels, uniform in [0, 1) whatever the class: the first byte of sha256."""
    import hashlib

    return np.array([hashlib.sha256(im.tobytes()).digest()[0] / 256 for im in images], np.float32)


def test_filtered_draw_keeps_counts_and_regenerable_seeds(bundle):
    b = load_bundle(bundle)
    ids = np.arange(300)
    seeds, cls = item_seeds(3, ids), (ids % 10).astype(np.int32)
    plain = _pixel_hash_scorer(b.generate(seeds, cls), cls)
    threshold = float(np.median(plain))  # about half the first draws fail
    index = HashIndex(10)
    draw = FilteredDraw(
        lambda s, c: b.generate(s, c),
        min_score=threshold,
        scorer=_pixel_hash_scorer,
        max_distance=10,
        claim=index.claim,
        max_attempts=40,
    )
    drawn = draw(ids, seeds, cls)
    out = drawn.batch
    assert out.images.shape == (300, 32, 32, 1) and len(out.seeds) == 300
    assert drawn.rejected_score >= 100 and (out.score >= threshold).all()
    # every kept item regenerates from the seed the metadata would store
    assert np.array_equal(b.generate(out.seeds, cls), out.images)
    kept_first = plain >= threshold
    assert np.array_equal(out.seeds[kept_first], seeds[kept_first]) or drawn.rejected_duplicate > 0
    assert np.array_equal(out.phash, phash64(out.images))
    dist = np.bitwise_count(out.phash[:, None] ^ out.phash[None, :])
    np.fill_diagonal(dist, 65)
    assert dist.min() > 10 and len(index) == 300
    # the same call again is the same result (the index answers its owners the same)
    again = draw(ids, seeds, cls).batch
    assert np.array_equal(again.seeds, out.seeds)


def test_filtered_draw_stops_after_max_attempts(bundle):
    b = load_bundle(bundle)
    draw = FilteredDraw(
        lambda s, c: b.generate(s, c), min_score=1.5, scorer=_pixel_hash_scorer, max_attempts=3
    )
    with pytest.raises(FilterExhausted) as err:
        draw(np.arange(10, 14), item_seeds(0, np.arange(10, 14)), np.arange(4, dtype=np.int32))
    msg = str(err.value)
    assert "4 item(s), first id 10 (class 0)" in msg and "filter.max_attempts=3" in msg
    assert (
        "12 draws scored below filter.min_score=1.5" in msg and "Raise filter.max_attempts and re-run" in msg
    )
    assert "scores of this batch's draws: median 0." in msg and ", best 0." in msg


def test_bundle_carries_a_checked_discriminator(bundle, tmp_path):
    meta = read_meta(bundle)
    assert meta["discriminator"]["file"] == "discriminator.safetensors"
    disc = load_discriminator(bundle)
    imgs = load_bundle(bundle).generate(item_seeds(0, np.arange(8)), np.arange(8, dtype=np.int32))
    scorer = make_scorer(GenerateFilter(min_score=0.5, scorer="discriminator"), meta, bundle)
    scores = scorer(imgs, np.arange(8))
    assert scores.shape == (8,) and scores.dtype == np.float32 and ((scores >= 0) & (scores <= 1)).all()
    # scores are percentile ranks within the class among fixed calibration samples: those samples
    # themselves rank 1/M, 2/M, ..., 1
    m = len(scorer.table[3])
    calib = load_bundle(bundle).generate(item_seeds(CALIBRATION_SEED, np.arange(m)), np.full(m, 3))
    assert np.allclose(np.sort(scorer(calib, np.full(m, 3))), np.arange(1, m + 1) / m)
    assert set(scorer.table) == set(range(10)) and m == 256
    assert sum(p.numel() for p in disc.parameters()) > 0
    # tampered D weights are refused
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(bundle, bad)
    raw = bytearray((bad / "discriminator.safetensors").read_bytes())
    raw[-1] ^= 0xFF
    (bad / "discriminator.safetensors").write_bytes(bytes(raw))
    with pytest.raises(BundleError, match="does not match the sha256"):
        load_discriminator(str(bad))


def test_check_filter_names_what_cannot_work(tmp_path):
    plain = str(tmp_path / "plain")
    save_untrained_bundle(plain)  # no discriminator
    uncond = str(tmp_path / "uncond")
    save_untrained_bundle(
        uncond,
        {
            "arch": "dcgan",
            "image_size": 32,
            "channels": 1,
            "latent_dim": 16,
            "num_classes": 0,
            "g_width": 8,
            "attention": False,
        },
    )
    with pytest.raises(ConfigError, match="carries no discriminator"):
        check_filter(GenerateFilter(min_score=0.5, scorer="discriminator"), read_meta(plain), plain)
    with pytest.raises(ConfigError, match="unconditional"):
        check_filter(GenerateFilter(min_score=0.5), read_meta(uncond), uncond)
    with pytest.raises(BundleError, match="carries no discriminator"):
        load_discriminator(plain)
    meta = read_meta(plain)
    meta["training"]["data"]["source"] = "s3://bucket/faces/"
    with pytest.raises(ConfigError, match="trained on s3://bucket/faces/"):
        check_filter(GenerateFilter(min_score=0.5), meta, plain)
    assert make_scorer(GenerateFilter(), meta, plain) is None
    assert json.loads((tmp_path / "plain" / "model.json").read_text()).get("discriminator") is None
