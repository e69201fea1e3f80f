"""`genart collect` end to end on two outputs made by real small generate jobs (a real 2-CPU local Ray): one
opensea output in layout files (PNG, tokens), one plain output in layout parquet (WebP, traits computed):
exact ids, byte-identical images (sha256), row counts, provenance, the signing hook, refusals."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from genart.cli import main
from genart.config.generate import MarketConfig
from genart.errors import ConfigError, StorageError
from genart.generation.runner import generate
from genart.market.collect import Piece, collect
from tests.market.conftest import market_cfg

BASE = "ipfs://bafyCOLLECTION/"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def outputs(ray_local, tmp_path_factory):
    """(A, B, job ids, source rows by (output, id)) of two generated outputs."""
    from tests.conftest import make_tiny_bundle

    root = tmp_path_factory.mktemp("collect")
    make_tiny_bundle(str(root / "bundle"))
    a, b = root / "a", root / "b"
    cfg_a = market_cfg(str(root / "bundle"), str(a), count=40, shard_size=16, replicas=1)
    cfg_b = market_cfg(
        str(root / "bundle"),
        str(b),
        count=30,
        shard_size=10,
        replicas=1,
        layout="parquet",
        image={"format": "webp", "quality": 80},
        market={"standard": "none"},
    )
    jobs = (generate(cfg_a, progress=False).job_id, generate(cfg_b, progress=False).job_id)
    rows = {}
    for out in (a, b):
        for r in pq.read_table(out / "metadata").to_pylist():
            rows[(str(out), r["id"])] = r
    return a, b, jobs, rows


def _picks(path, out, job_id, keep, reject=()):
    path.write_text(json.dumps({"output": str(out), "job_id": job_id, "keep": keep, "reject": list(reject)}))
    return str(path)


def _source_bytes(out, row) -> bytes:
    if row.get("image"):
        return row["image"]["bytes"]
    return (out / row["path"]).read_bytes()


def test_collect_two_outputs_end_to_end(outputs, tmp_path):
    a, b, (job_a, job_b), rows = outputs
    pa_ = _picks(tmp_path / "a.json", a, job_a, [39, 3, 17], reject=[0, 1])
    pb = _picks(tmp_path / "b.json", b, job_b, [29, 0, 5])
    coll = tmp_path / "coll"
    args = [
        "collect",
        pa_,
        pb,
        "--out",
        str(coll),
        "--name",
        "Picked",
        "--description",
        "d",
        "--base-uri",
        BASE,
    ]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert res.output == f"{coll}: 6 pieces from 2 outputs\n"

    sources = [(a, 3), (a, 17), (a, 39), (b, 0), (b, 5), (b, 29)]
    exts = ["png"] * 3 + ["webp"] * 3
    paths = [f"images/{k:010d}.{e}" for k, e in enumerate(exts)]
    assert sorted(p.relative_to(coll).as_posix() for p in (coll / "images").iterdir()) == paths
    table = pq.read_table(coll / "metadata.parquet")
    assert table.num_rows == 6 and table.column_names == [
        "id", "path", "sha256", "format", "width", "height", "seed", "class_id", "model_id", "source_sha256",
        "provenance",
    ]  # fmt: skip
    meta = table.to_pylist()
    assert [m["id"] for m in meta] == list(range(6)) and [m["path"] for m in meta] == paths
    for k, ((out, i), m) in enumerate(zip(sources, meta)):
        src = rows[(str(out), i)]
        data = (coll / paths[k]).read_bytes()
        assert data == _source_bytes(out, src)  # byte-identical
        assert _sha(data) == m["sha256"] == m["source_sha256"] == src["sha256"]
        assert m["provenance"] == {"output": str(out), "job_id": job_a if out == a else job_b, "id": i}
        assert (m["seed"], m["class_id"], m["model_id"]) == (src["seed"], src["class_id"], src["model_id"])
        assert (m["format"], m["width"], m["height"]) == (src["format"], 32, 32)

    tokens = sorted(p.name for p in (coll / "tokens").iterdir())
    assert tokens == [f"{k}.json" for k in range(6)]
    for k, (out, i) in enumerate(sources):
        tok = json.loads((coll / "tokens" / f"{k}.json").read_text())
        assert tok["name"] == f"Picked #{k}" and tok["image"] == BASE + paths[k] and tok["description"] == "d"
        src = rows[(str(out), i)]
        if out == a:  # the source token's attributes, unchanged
            assert tok["attributes"] == json.loads((a / "tokens" / f"{i}.json").read_text())["attributes"]
        assert tok["attributes"][:3] == [
            {"trait_type": "Seed", "value": str(src["seed"])},
            {"trait_type": "Class", "value": str(src["class_id"])},
            {"trait_type": "Model", "value": src["model_id"][:12]},
        ]
        assert [t["trait_type"] for t in tok["attributes"]][3:] == [
            "Background",
            "Dominant colour",
            "Brightness",
        ]
    record = json.loads((coll / "collection.json").read_text())
    assert (record["name"], record["item_count"], record["standard"], record["base_uri"]) == (
        "Picked",
        6,
        "opensea",
        BASE,
    )
    assert record["sources"] == [
        {"output": str(a), "job_id": job_a, "model_id": rows[(str(a), 3)]["model_id"], "kept": 3},
        {"output": str(b), "job_id": job_b, "model_id": rows[(str(b), 0)]["model_id"], "kept": 3},
    ]
    assert record["model_id"] == rows[(str(a), 3)]["model_id"]
    for values in record["rarity"].values():
        assert sum(v["count"] for v in values.values()) == 6

    # again: refused without --overwrite; with it, the same bytes
    before = {p.relative_to(coll): p.read_bytes() for p in coll.rglob("*") if p.is_file()}
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2 and f"error: {coll} already holds a collection; pass --overwrite" in res.output
    assert CliRunner().invoke(main, [*args, "--overwrite"]).exit_code == 0
    assert {p.relative_to(coll): p.read_bytes() for p in coll.rglob("*") if p.is_file()} == before


def test_the_signing_hook_sees_each_piece_and_its_bytes_are_recorded(outputs, tmp_path):
    a, b, (job_a, _), rows = outputs
    seen: list[Piece] = []

    def sign(data: bytes, piece: Piece) -> bytes:
        seen.append(piece)
        return data + b"signed"

    market = MarketConfig(standard="opensea", base_uri=BASE, name="S")
    summary = collect([_picks(tmp_path / "a.json", a, job_a, [7, 2])], str(tmp_path / "c"), market, sign=sign)
    assert summary.items == 2
    src = rows[(str(a), 2)]
    bundle = str(a.parent / "bundle")
    assert seen[0] == Piece(0, str(a), job_a, 2, src["seed"], src["class_id"], "png", src["model_id"], bundle)
    assert [p.source_id for p in seen] == [2, 7]
    meta = pq.read_table(tmp_path / "c" / "metadata.parquet").to_pylist()
    data = (tmp_path / "c" / "images" / "0000000000.png").read_bytes()
    assert data == (a / src["path"]).read_bytes() + b"signed"
    assert meta[0]["sha256"] == _sha(data) and meta[0]["source_sha256"] == src["sha256"]


def test_altered_or_missing_sources_and_duplicate_outputs_are_refused(outputs, tmp_path):
    a, _, (job_a, _), rows = outputs
    copy = tmp_path / "a"
    shutil.copytree(a, copy)
    market = MarketConfig(standard="opensea", base_uri=BASE)
    picks = _picks(tmp_path / "p.json", copy, job_a, [5])
    (copy / rows[(str(a), 5)]["path"]).write_bytes(b"\x89PNG not the same")
    with pytest.raises(
        StorageError, match=r"id 5's image in .* is not the bytes its row names \(sha256 differs\)"
    ):
        collect([picks], str(tmp_path / "c1"), market)
    (copy / "metadata" / "part-00000.parquet").unlink()
    with pytest.raises(StorageError, match=r"kept id 5 \(1 ids\) is not committed in .*; resume its job"):
        collect([picks], str(tmp_path / "c1"), market)
    twice = _picks(tmp_path / "q.json", a, job_a, [1])
    res = CliRunner().invoke(
        main, ["collect", twice, twice, "--out", str(tmp_path / "c2"), "--base-uri", BASE]
    )
    assert res.exit_code == 2 and f"both pick from {a}: keep one picks file per output" in res.output
    none = _picks(tmp_path / "n.json", a, job_a, [], reject=[1])
    res = CliRunner().invoke(main, ["collect", none, "--out", str(tmp_path / "c3"), "--base-uri", BASE])
    assert res.exit_code == 1 and "nothing is kept in" in res.output
    assert (
        not (tmp_path / "c1").exists() and not (tmp_path / "c2").exists() and not (tmp_path / "c3").exists()
    )


def test_collect_sign_gives_every_image_a_valid_c2pa_manifest(outputs, tmp_path):
    from click.testing import CliRunner

    from genart.cli import main
    from genart.market.c2pa_sign import MODEL_ASSERTION, read_credentials
    from genart.market.xmp import disclosure
    from tests.conftest import make_c2pa_chain

    a, b, (job_a, job_b), rows = outputs
    cert, key = make_c2pa_chain(tmp_path)
    picks = [_picks(tmp_path / "a.json", a, job_a, [5, 9]), _picks(tmp_path / "b.json", b, job_b, [3])]
    out = tmp_path / "signed"
    args = ["collect", *picks, "--out", str(out), "--base-uri", BASE, "--sign", "--cert", cert, "--key", key]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    meta = pq.read_table(out / "metadata.parquet").to_pylist()
    assert [(m["id"], m["provenance"]["id"]) for m in meta] == [(0, 5), (1, 9), (2, 3)]
    for m, (src_out, sid) in zip(meta, [(a, 5), (a, 9), (b, 3)]):
        data = (out / m["path"]).read_bytes()
        fmt = m["path"].rsplit(".", 1)[1]
        state, manifest = read_credentials(data, fmt)
        assert state == "Valid", (m["path"], state)
        assertions = {x["label"]: x["data"] for x in manifest["assertions"]}
        (created,) = assertions["c2pa.actions.v2"]["actions"]  # the SDK writes c2pa.actions as v2
        assert created["action"] == "c2pa.created"
        assert created["digitalSourceType"].endswith("/trainedAlgorithmicMedia")
        model = assertions[MODEL_ASSERTION]
        assert model["model_id"] == rows[(str(src_out), sid)]["model_id"] and model["id"] == m["id"]
        assert m["sha256"] == _sha(data) and m["source_sha256"] == rows[(str(src_out), sid)]["sha256"]
        assert disclosure(data) is not None  # the XMP disclosure survives signing
    assert key not in result.output and "PRIVATE KEY" not in (out / "collection.json").read_text()


@pytest.mark.parametrize(
    "case, message",
    [
        ("other-key", "does not match"),
        ("expired", "expired"),
        (
            "no-key",
            "--sign needs a certificate chain and its private key: pass --cert CHAIN.pem --key KEY.pem",
        ),
        ("no-sign", "--cert/--key sign the collection only with --sign"),
    ],
)
def test_collect_sign_refuses_a_bad_signer_before_writing_anything(
    outputs, tmp_path, monkeypatch, case, message
):
    from click.testing import CliRunner

    from genart.cli import main
    from tests.conftest import make_c2pa_chain

    monkeypatch.delenv("GENART_C2PA_CERT", raising=False)
    monkeypatch.delenv("GENART_C2PA_KEY", raising=False)
    a, _, (job_a, _), _ = outputs
    cert, key = make_c2pa_chain(
        tmp_path, other_key=case == "other-key", days=(-30, -1) if case == "expired" else (-1, 30)
    )
    flags = {
        "other-key": ["--sign", "--cert", cert, "--key", key],
        "expired": ["--sign", "--cert", cert, "--key", key],
        "no-key": ["--sign"],
        "no-sign": ["--cert", cert],
    }[case]
    out = tmp_path / "c"
    result = CliRunner().invoke(
        main,
        [
            "collect",
            _picks(tmp_path / "a.json", a, job_a, [1]),
            "--out",
            str(out),
            "--base-uri",
            BASE,
            *flags,
        ],
    )
    assert result.exit_code == 2, result.output
    assert message in result.output and not out.exists()


@pytest.mark.parametrize("where, how", [("a", "is"), ("a/images/00000", "lies inside"), (".", "holds")])
def test_collect_refuses_an_out_that_is_inside_or_holds_a_source_output(outputs, tmp_path, where, how):
    a, _, (job_a, _), _ = outputs
    out = a if where == "a" else a / "images" / "00000" if where != "." else a.parent
    before = sorted(str(p.relative_to(a)) for p in a.rglob("*"))
    market = MarketConfig(standard="opensea", base_uri=BASE, name="S")
    with pytest.raises(
        ConfigError, match=f"^--out {re.escape(str(out))} {how} the source output {re.escape(str(a))}; "
    ):
        collect([_picks(tmp_path / "a.json", a, job_a, [1])], str(out), market, overwrite=True)
    assert sorted(str(p.relative_to(a)) for p in a.rglob("*")) == before  # nothing written or deleted
