"""GeneratorReplica as a plain class (no Ray): a shard regenerates from its seeds, whatever the batch size."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

import genart
from genart.bundle import read_meta
from genart.generation.plan import Plan
from genart.generation.replica import GeneratorReplica
from genart.images import decode


def test_shard_bytes_do_not_depend_on_batch_size(tiny_bundle, tmp_path, make_cfg):
    meta = read_meta(tiny_bundle, None)
    outs = []
    for batch in (1, 7, 64):
        cfg = make_cfg(tiny_bundle, str(tmp_path / f"b{batch}"), count=40, shard_size=20, batch_size=batch)
        replica = GeneratorReplica(cfg, "job", meta["model_id"])
        summary = replica.run_shard(Plan.from_config(cfg, 10).shard(1))
        assert (summary.shard, summary.n) == (1, 20)
        table = pq.read_table(tmp_path / f"b{batch}" / "metadata" / "part-00001.parquet")
        assert table.column("id").to_pylist() == list(range(20, 40))
        assert summary.bytes == sum(
            (tmp_path / f"b{batch}" / p).stat().st_size for p in table.column("path").to_pylist()
        )
        outs.append(table.column("sha256").to_pylist())
    assert outs[0] == outs[1] == outs[2]
    row = table.slice(5, 1).to_pylist()[0]
    stored = decode((tmp_path / "b64" / row["path"]).read_bytes())
    again = genart.load_bundle(tiny_bundle).generate([row["seed"]], [row["class_id"]])[0]
    assert np.array_equal(stored, again)  # bit-exact, not within a level (tests/generation/test_exact.py)


def test_lossy_formats_hash_the_stored_pixels(tiny_bundle, tmp_path, make_cfg):
    """With JPEG the phash column (and so the near-duplicate guarantee) is that of the decoded file, not of the
    pixels before encoding."""
    from genart.filters.dedupe import HashIndex
    from genart.filters.score import phash64

    meta = read_meta(tiny_bundle, None)
    cfg = make_cfg(
        tiny_bundle,
        str(tmp_path / "jpeg"),
        count=200,
        shard_size=200,
        batch_size=50,
        image={"format": "jpeg", "quality": 95},
        dedupe={"max_distance": 0},
    )
    index = HashIndex(0)
    replica = GeneratorReplica(cfg, "job", meta["model_id"], claim=index.claim)
    replica.run_shard(Plan.from_config(cfg, 10).shard(0))
    table = pq.read_table(tmp_path / "jpeg" / "metadata" / "part-00000.parquet")
    files = np.stack([decode((tmp_path / "jpeg" / p).read_bytes()) for p in table.column("path").to_pylist()])
    assert np.array_equal(table.column("phash").to_numpy(), phash64(files))
    assert len(index) == 200


@pytest.fixture
def varied_bundle(tmp_path):
    """A tiny conditional DCGAN whose samples differ (BatchNorm gain 4): near-duplicates are rare, not all."""
    from genart.bundle import save_untrained_bundle
    from genart.bundle.store import TINY_DCGAN

    uri = str(tmp_path / "varied-bundle")
    save_untrained_bundle(uri, dict(TINY_DCGAN), seed=0, bn_gain=4)
    return uri


def test_lossy_formats_with_dedupe_encode_each_kept_image_once(
    varied_bundle, tmp_path, make_cfg, monkeypatch
):
    """JPEG/WebP with the near-duplicate filter: every draw that is hashed is encoded once, and a kept draw's
    bytes are those the hash saw (no second encode); the files are what encoding the regenerated pixels
    gives."""
    from genart.filters.dedupe import HashIndex
    from genart.generation import replica as replica_mod
    from genart.images import encode
    from genart.market.xmp import Provenance

    calls = []

    def counting_encode(image, fmt="png", quality=90):
        calls.append(fmt)
        return encode(image, fmt, quality)

    monkeypatch.setattr(replica_mod, "encode", counting_encode)
    meta = read_meta(varied_bundle, None)
    for fmt in ("jpeg", "webp"):
        calls.clear()
        out = tmp_path / fmt
        cfg = make_cfg(
            varied_bundle,
            str(out),
            count=120,
            shard_size=120,
            batch_size=40,
            image={"format": fmt, "quality": 80},
            dedupe={"max_distance": 10},
        )
        replica = GeneratorReplica(cfg, "job", meta["model_id"], claim=HashIndex(10).claim)
        summary = replica.run_shard(Plan.from_config(cfg, 10).shard(0))
        assert summary.rejected_duplicate > 0  # redraws happened, so rejected draws were encoded too
        assert calls == [fmt] * (120 + summary.rejected_duplicate)  # was 2 x 120 + rejected
        table = pq.read_table(out / "metadata" / "part-00000.parquet")
        again = genart.load_bundle(varied_bundle).generate(
            table.column("seed").to_pylist(), table.column("class_id").to_pylist()
        )
        stored = [(out / p).read_bytes() for p in table.column("path").to_pylist()]
        stamp = Provenance(meta["model_id"], "job")  # the XMP disclosure, put in after the one encode
        ids, seeds = table.column("id").to_pylist(), table.column("seed").to_pylist()
        assert stored == stamp.stamp_all([encode(im, fmt, 80) for im in again], fmt, ids, seeds)


def test_png_with_dedupe_encodes_in_the_writer_only(varied_bundle, tmp_path, make_cfg, monkeypatch):
    """PNG is lossless: the hash sees the generated pixels, nothing is encoded before the write."""
    from genart.filters.dedupe import HashIndex
    from genart.generation import replica as replica_mod
    from genart.images import encode

    calls = []
    monkeypatch.setattr(
        replica_mod, "encode", lambda im, fmt="png", q=90: calls.append(fmt) or encode(im, fmt, q)
    )
    meta = read_meta(varied_bundle, None)
    cfg = make_cfg(varied_bundle, str(tmp_path / "png"), count=60, shard_size=60, batch_size=30,
                   dedupe={"max_distance": 10})  # fmt: skip
    replica = GeneratorReplica(cfg, "job", meta["model_id"], claim=HashIndex(10).claim)
    replica.run_shard(Plan.from_config(cfg, 10).shard(0))
    assert calls == ["png"] * 60


@pytest.mark.parametrize("layout", ["files", "webdataset", "parquet"])
def test_provenance_xmp_off_writes_the_plain_encoded_bytes(tiny_bundle, tmp_path, make_cfg, layout):
    """`provenance.xmp: false`: no packet, the bytes are images.encode's; on (the default) every layout's
    stored bytes carry it (the stamp happens before the shard writer packs them)."""
    from genart.images import encode, sha256_hex
    from genart.market.xmp import disclosure, read_xmp

    meta = read_meta(tiny_bundle, None)
    again = None
    for xmp in (False, True):
        out = tmp_path / f"{layout}-{xmp}"
        cfg = make_cfg(tiny_bundle, str(out), count=20, shard_size=20, layout=layout, provenance={"xmp": xmp})
        GeneratorReplica(cfg, "job-x", meta["model_id"]).run_shard(Plan.from_config(cfg, 10).shard(0))
        table = pq.read_table(out / "metadata" / "part-00000.parquet")
        if again is None:
            again = genart.load_bundle(tiny_bundle).generate(
                table.column("seed").to_pylist(), table.column("class_id").to_pylist()
            )
        plain = [encode(im, "png") for im in again]
        hashes = table.column("sha256").to_pylist()
        if not xmp:
            assert hashes == [sha256_hex(b) for b in plain]
            continue
        assert all(h != sha256_hex(b) for h, b in zip(hashes, plain))
        if layout == "parquet":
            blobs = [b["bytes"] for b in table.column("image").to_pylist()]
            assert [disclosure(b)["id"] for b in blobs] == [str(i) for i in range(20)]
            assert all(read_xmp(b) is not None for b in blobs)
