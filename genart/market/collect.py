"""`genart collect PICKS... --out COLLECTION`: a publishable collection of the kept pieces of several outputs.

    images/{id:010d}.{ext}   each kept piece, renumbered 0..N-1 (picks files in the order given, kept ids
                             ascending in each); the source's bytes unchanged (checked against the source
                             row's sha256), unless a `sign` hook re-encodes them
    tokens/{id}.json         OpenSea / ERC-721 metadata (market.token_suffix "" gives tokens/{id}): the
                             collection's name, base_uri + path, the source token's attributes (or the same
                             traits computed from the pixels when the source has no tokens)
    metadata.parquet         one row per piece: id, path, sha256 (of the bytes written), format, width, height,
                             seed, class_id, model_id, source_sha256, and `provenance`
                             {output, job_id, id}: the source output and its id there
    collection.json          written last: name, description, standard, item_count, base_uri, the rarity
                             table, and `sources` (each output, job_id, model_id and kept count)

Signing hook: `sign(bytes, piece) -> bytes` is called once per image before it is written (a later `--sign`
re-encodes each image with a C2PA manifest); the row's sha256 is of the bytes it returns. Plain Python.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from genart.config.generate import MarketConfig
from genart.errors import ConfigError, DataError, StorageError
from genart.images import decode, sha256_hex
from genart.market.collection import collection_record, rarity
from genart.market.picks import Picks, load_picks, output_job
from genart.market.tokens import OPENSEA, Collection, flat_traits, json_put_options, read_tokens, token_bytes
from genart.market.traits import pixel_traits
from genart.storage import layout
from genart.storage.commit import scan_metadata
from genart.storage.fs import cat_files, exists, redact, remove_parts
from genart.storage.output import Output
from genart.storage.retry import retry

log = logging.getLogger(__name__)

METADATA = "metadata.parquet"
CHUNK = 256  # pieces read and written per batched request
COLLECTION_PARTS = (layout.IMAGES_DIR, layout.TOKENS_DIR, METADATA, layout.COLLECTION)
COLUMNS = ("id", "seed", "class_id", "path", "sha256", "format", "width", "height", "model_id", "image")
PROVENANCE = pa.struct([("output", pa.string()), ("job_id", pa.string()), ("id", pa.int64())])


@dataclass(frozen=True)
class Piece:
    """One collected piece, as the signing hook sees it."""

    id: int  # its id in the collection
    source_output: str
    source_job_id: str
    source_id: int
    seed: int
    class_id: int | None
    format: str  # png | webp | jpeg
    model_id: str
    model: str = ""  # the bundle URI its output's job names (redacted): the model's name in a C2PA manifest


Signer = Callable[[bytes, Piece], bytes]


@dataclass(frozen=True)
class CollectSummary:
    out: str  # the collection's redacted URI
    items: int
    sources: list[dict]  # {output, job_id, model_id, kept} per picks file


def collection_image_path(item_id: int, fmt: str) -> str:
    return f"{layout.IMAGES_DIR}/{item_id:010d}.{layout.extension(fmt)}"


class _Source:
    """The kept rows of one picks file's output: metadata read once, images and tokens read in chunks."""

    def __init__(self, picks: Picks, where: str, storage_options: dict | None):
        self.picks, self.where = picks, where
        self.out = Output.open(picks.output, storage_options)
        self.cfg = output_job(picks.output, storage_options)[1]
        if self.cfg.layout == "webdataset":
            raise ConfigError(
                f"{where}: {picks.output} has layout webdataset; collect reads layouts files and parquet "
                "(generate the pieces again with layout: files)"
            )
        self.rows = self._kept_rows()

    def _kept_rows(self) -> pa.Table:
        fs, root = self.out.fs, self.out.root
        tables = []
        for k in sorted(scan_metadata(fs, root)[0]):
            with fs.open(self.out.path(layout.metadata_path(k)), "rb") as f:
                pf = pq.ParquetFile(f)
                want = [c for c in COLUMNS if c in pf.schema_arrow.names]
                t = pf.read(columns=want)
            tables.append(t.filter(pc.is_in(t.column("id"), pa.array(self.picks.keep, pa.int64()))))
        rows = pa.concat_tables(tables, promote_options="default").sort_by("id") if tables else None
        found = rows.column("id").to_pylist() if rows is not None else []
        missing = sorted(set(self.picks.keep) - set(found))
        if missing:
            raise StorageError(
                f"{self.where}: kept id {missing[0]} ({len(missing)} ids) is not committed in {self.picks.output}; "
                f"resume its job, then collect again"
            )
        return rows

    def chunks(self):
        """(rows, image bytes, traits) per CHUNK kept rows. StorageError for a missing image or one whose
        bytes are not the row's sha256."""
        fs, root = self.out.fs, self.out.root
        tokens = exists(fs, self.out.path(layout.token_path(0, self.cfg.market.token_suffix)))
        for lo in range(0, self.rows.num_rows, CHUNK):
            rows = self.rows.slice(lo, CHUNK).to_pylist()
            if self.cfg.layout == "parquet":
                blobs = [(r.get("image") or {}).get("bytes") for r in rows]
            else:
                paths = [self.out.path(layout.check_item_path("files", *_where(r), r["path"])) for r in rows]
                found = cat_files(fs, paths)
                blobs = [found[p] for p in paths]
            for r, b in zip(rows, blobs):
                if b is None or isinstance(b, BaseException):
                    raise StorageError(
                        f"{self.where}: id {r['id']}'s image in {self.picks.output} is unreadable ({b})"
                    )
                if sha256_hex(b) != r["sha256"]:
                    raise StorageError(
                        f"{self.where}: id {r['id']}'s image in {self.picks.output} is not the bytes its row "
                        f"names (sha256 differs); run genart verify {self.picks.output}"
                    )
            if tokens:
                ids = [r["id"] for r in rows]
                traits = [flat_traits(t) for _, t in read_tokens(fs, root, ids, self.cfg.market.token_suffix)]
            else:
                names = None if all(r.get("class_id") is None for r in rows) else ()
                coll = Collection(MarketConfig(), rows[0]["model_id"] if rows else "", names)
                traits = [
                    coll.traits(r["seed"], r.get("class_id"), pixel_traits(decode(b)[None])[0])
                    for r, b in zip(rows, blobs)
                ]
            yield rows, blobs, traits


def _where(row: dict) -> tuple[int, int, str]:
    """(shard, id, format) of a layout-files row: its shard from its path's folder (metadata rows of
    older outputs may lack the shard column)."""
    shard = layout.parse_shard_dir(row["path"].rsplit("/", 1)[0]) if "/" in row["path"] else None
    if shard is None:
        raise StorageError(f"id {row['id']}: path {row['path']!r} is not a layout path")
    return shard, row["id"], row["format"]


def _open_sources(picks_uris: list[str], storage_options: dict | None) -> list[_Source]:
    sources, seen = [], {}
    for uri in picks_uris:
        picks = load_picks(uri, storage_options)
        if picks.output in seen:
            raise ConfigError(
                f"{uri} and {seen[picks.output]} both pick from {picks.output}: keep one picks file per output"
            )
        seen[picks.output] = uri
        sources.append(_Source(picks, uri, storage_options))
    if not sum(s.rows.num_rows for s in sources):
        raise DataError(f"nothing is kept in {', '.join(picks_uris)}: keep pieces in the gallery first")
    return sources


def _check_apart(out: Output, sources: list[_Source]) -> None:
    """Refuse an --out that is a source output, lies inside one or holds one: the collection's images,
    tokens and metadata would be written among (or --overwrite would delete) a job's committed files."""
    for src in sources:
        if out.fs.protocol != src.out.fs.protocol:
            continue
        a, b = out.root.rstrip("/"), src.out.root.rstrip("/")
        how = (
            "is"
            if a == b
            else "lies inside"
            if a.startswith(b + "/")
            else "holds"
            if b.startswith(a + "/")
            else ""
        )
        if how:
            raise ConfigError(
                f"--out {out.name} {how} the source output {src.out.name}; collect into a folder of its own, "
                "outside every source output"
            )


def _prepare(out: Output, overwrite: bool) -> None:
    if exists(out.fs, out.path(layout.COLLECTION)) or exists(out.fs, out.path(METADATA)):
        if not overwrite:
            raise ConfigError(
                f"{out.name} already holds a collection; pass --overwrite or choose another --out"
            )
        remove_parts(out.fs, out.root, COLLECTION_PARTS, out.name)


def collect(
    picks_uris: list[str],
    out_uri: str,
    market: MarketConfig,
    sign: Signer | None = None,
    overwrite: bool = False,
    storage_options: dict | None = None,
) -> CollectSummary:
    """Build the collection at `out_uri` from the kept pieces of each picks file (see the module doc).
    `market`: name, description, base_uri, token_suffix of the collection (standard is opensea). `sign`: the
    signing hook (None: bytes copied unchanged). Raises ConfigError for bad picks (genart.market.picks), two
    picks files of one output, or an existing collection without `overwrite`; DataError when nothing is
    kept; StorageError for a missing or altered source image or a failed write."""
    market = market.model_copy(update={"standard": OPENSEA})
    sources = _open_sources(picks_uris, storage_options)
    out = Output.open(out_uri, storage_options)
    _check_apart(out, sources)
    _prepare(out, overwrite)
    rows_out, all_traits, new_id = [], [], 0
    coll = Collection(market, "", None)
    for src in sources:
        for rows, blobs, traits in src.chunks():
            files, tokens = {}, {}
            for r, blob, tr in zip(rows, blobs, traits):
                piece = Piece(
                    new_id, src.picks.output, src.picks.job_id, r["id"], r["seed"], r.get("class_id"),
                    r["format"], r["model_id"], redact(src.cfg.model),
                )  # fmt: skip
                data = sign(blob, piece) if sign else blob
                path = collection_image_path(new_id, r["format"])
                files[out.path(path)] = data
                tokens[out.path(layout.token_path(new_id, market.token_suffix))] = token_bytes(
                    coll.token(new_id, path, tr)
                )
                rows_out.append(_row(piece, r, path, data))
                all_traits.append(tr)
                new_id += 1
            _put(out, files, {}, f"{len(files)} images")
            _put(out, tokens, json_put_options(out.fs), f"{len(tokens)} tokens")
    table = pa.Table.from_pylist(rows_out, schema=_schema())
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    _put(out, {out.path(METADATA): sink.getvalue().to_pybytes()}, {}, METADATA)
    srcs = [
        {"output": s.picks.output, "job_id": s.picks.job_id, "model_id": _model(s), "kept": s.rows.num_rows}
        for s in sources
    ]
    n, rarity_table = rarity(all_traits)
    models = sorted({s["model_id"] for s in srcs})
    record = collection_record(market, n, rarity_table, {"model_id": models[0] if len(models) == 1 else None})
    record.pop("job_id")
    record["sources"] = srcs
    data = json.dumps(record, indent=2, ensure_ascii=False).encode()
    _put(out, {out.path(layout.COLLECTION): data}, json_put_options(out.fs), layout.COLLECTION)
    log.debug("collection of %d pieces from %d outputs: %s", n, len(sources), out.name)
    return CollectSummary(out.name, n, srcs)


def _model(src: _Source) -> str:
    return str(src.rows.column("model_id")[0].as_py()) if src.rows.num_rows else ""


def _row(piece: Piece, r: dict, path: str, data: bytes) -> dict:
    return {
        "id": piece.id, "path": path, "sha256": sha256_hex(data), "format": r["format"],
        "width": r["width"], "height": r["height"], "seed": r["seed"], "class_id": r.get("class_id"),
        "model_id": r["model_id"], "source_sha256": r["sha256"],
        "provenance": {"output": piece.source_output, "job_id": piece.source_job_id, "id": piece.source_id},
    }  # fmt: skip


def _schema() -> pa.Schema:
    return pa.schema(
        [("id", pa.int64()), ("path", pa.string()), ("sha256", pa.string()), ("format", pa.string()),
         ("width", pa.int32()), ("height", pa.int32()), ("seed", pa.int64()), ("class_id", pa.int32()),
         ("model_id", pa.string()), ("source_sha256", pa.string()), ("provenance", PROVENANCE)]
    )  # fmt: skip


def _put(out: Output, files: dict[str, bytes], options: dict, what: str) -> None:
    def put():
        for d in {p.rsplit("/", 1)[0] for p in files}:
            out.fs.makedirs(d, exist_ok=True)  # local folders; a no-op on object stores
        out.fs.pipe(files, **options)

    if files:
        retry(put, f"writing {out.name}: {what}")
