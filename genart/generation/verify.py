"""`genart verify URI`: is a generation output complete and intact? Returns the problems (empty = OK).

Checks: _SUCCESS exists and agrees with the rows; _job.json is complete and valid; every metadata part
is readable Parquet (else it is named), has the contract's schema and only its own shard's rows; each
row's path is the layout's path for its id (the file read is always the layout's, never the row's path)
and its identity columns, seed and class id agree with _job.json and the plan (verify_rows.py); no stray
file sits under images/ or in a tar; ids are exactly 0..count-1, each once; every row's image exists and its
sha256 matches: the file (layout `files`), the tar member and its .json (`webdataset`), the embedded
`image.bytes` (`parquet`). With `market.standard: opensea` in _job.json, also: every committed item's
tokens/{id}.json exists and parses, its `image` is market.base_uri + the row's path and its name follows
the collection's naming rule (READ_CHUNK tokens per batched request), and once _SUCCESS exists,
collection.json exists and its item_count is the job's count. Memory: one part (and one tar) at a time; ids are checked shard by shard
against the range the job's shard_size gives each shard (a bitmap of all ids only for an output whose
_job.json does not say its shard_size), so 10^10-item outputs verify in flat memory. The exception: an output
made with dedupe.max_distance, whose near-duplicate check holds every item's hash in an index (about 650 bytes
per item in Python dicts: ~0.65 GB per million items).
"""

from __future__ import annotations

import json
import logging
import tarfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa

from genart.errors import JobRecordError
from genart.filters.dedupe import HashIndex
from genart.generation.job import record_config
from genart.generation.parents import parent_problems
from genart.generation.verify_rows import (
    MAX_LISTED,
    SYMLINK,
    Coverage,
    JobSettings,
    RowCheck,
    check_near_duplicates,
    check_success,
    hash_problems,
    job_count,
    job_settings,
    read_part,
    size_problem,
    stray_in_shard,
    stray_metadata,
    stray_shard_dirs,
    token_trait_problems,
)
from genart.generation.verify_vary import parent_schema
from genart.ids import num_shards, shard_range
from genart.images import sha256_hex
from genart.market import OPENSEA, READ_CHUNK, item_url, token_name
from genart.market.tokens import recorded_suffix
from genart.storage import layout, packing, safejson
from genart.storage.commit import FILTER_COLUMNS, SCHEMA, scan_metadata
from genart.storage.fs import cat_files, join
from genart.storage.output import Output

log = logging.getLogger(__name__)


class _Problems:
    def __init__(self):
        self.items: list[str] = []
        self.counts: dict[str, int] = {}

    def add(self, kind: str, message: str) -> None:
        n = self.counts[kind] = self.counts.get(kind, 0) + 1
        if n <= MAX_LISTED:
            self.items.append(message)

    def result(self) -> list[str]:
        more = [
            f"... and {n - MAX_LISTED} more {kind} problems"
            for kind, n in self.counts.items()
            if n > MAX_LISTED
        ]
        return self.items + more


def _read_json(fs, path: str):
    try:
        return safejson.loads(fs.cat_file(path))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        return exc


def _check_files(fs, root: str, rows: list[tuple], problems: _Problems) -> None:
    def check(row):
        item_id, path, digest, size = row
        try:
            data = fs.cat_file(join(root, path))
        except FileNotFoundError:
            return "missing-file", f"id {item_id}: file {path} is missing"
        if sha256_hex(data) != digest:
            return "sha256", f"id {item_id}: {path} does not match its sha256 (changed or truncated)"
        return size_problem(item_id, path, data, size)

    with ThreadPoolExecutor(max_workers=16) as pool:
        for found in pool.map(check, rows):
            if found:
                problems.add(*found)


def _check_tar(fs, root: str, shard: int, rows, problems: _Problems) -> None:
    rel = layout.tar_path(shard)
    odd: list[str] = []
    try:
        members = packing.read_tar(fs.cat_file(join(root, rel)), odd)
    except FileNotFoundError:
        problems.add("missing-file", f"shard {shard}: {rel} is missing")
        return
    except tarfile.TarError as exc:
        problems.add("tar", f"shard {shard}: {rel} is not a readable tar ({exc})")
        return
    for message in odd:
        problems.add("tar", f"{rel}: {message}")
    expected = set()
    for item_id, path, digest, size in rows:
        expected |= {path, f"{layout.item_key(item_id)}.json"}
        data = members.get(path)
        if data is None:
            problems.add("missing-file", f"id {item_id}: {path} is missing from {rel}")
        elif sha256_hex(data) != digest:
            problems.add(
                "sha256", f"id {item_id}: {rel}:{path} does not match its sha256 (changed or truncated)"
            )
        elif found := size_problem(item_id, f"{rel}:{path}", data, size):
            problems.add(*found)
        if f"{layout.item_key(item_id)}.json" not in members:
            problems.add(
                "missing-file", f"id {item_id}: {layout.item_key(item_id)}.json is missing from {rel}"
            )
    for name in sorted(set(members) - expected):
        problems.add("stray", f"{rel}: member {name} belongs to no row")


def _check_embedded(table, rel: str, rows, problems: _Problems) -> None:
    images = table.column("image").to_pylist()
    for (item_id, path, digest, size), image in zip(rows, images, strict=True):
        if not image or image.get("bytes") is None:
            problems.add("missing-file", f"id {item_id}: {rel} has no image bytes for it")
        elif sha256_hex(image["bytes"]) != digest:
            problems.add("sha256", f"id {item_id}: the image in {rel} does not match its sha256")
        elif found := size_problem(item_id, f"the image in {rel}", image["bytes"], size):
            problems.add(*found)
        elif image.get("path") != path:
            problems.add("path", f"id {item_id}: image.path {image.get('path')!r} is not {path!r} in {rel}")


class _TokenCheck:
    """`market.standard: opensea`: each committed item's token against its metadata row."""

    def __init__(self, fs, root: str, market: dict, model_id):
        self.fs, self.root = fs, root
        self.base_uri, self.name = market.get("base_uri", ""), market.get("name", "")
        self.suffix = recorded_suffix(market)
        self.expect = {"description": market.get("description", ""), "model_id": model_id}
        self.seeds: dict[int, int] = {}  # id -> seed of the part being checked

    def check(self, rows: list[tuple], problems: _Problems, seeds: dict[int, int] | None = None) -> None:
        self.seeds = seeds or {}
        for lo in range(0, len(rows), READ_CHUNK):
            chunk = rows[lo : lo + READ_CHUNK]
            paths = [join(self.root, layout.token_path(row[0], self.suffix)) for row in chunk]
            found = cat_files(self.fs, paths)  # concurrent; never globbed
            for (item_id, path, *_), full in zip(chunk, paths, strict=True):
                self._one(item_id, path, found.get(full), problems)

    def _one(self, item_id: int, path: str, data, problems: _Problems) -> None:
        rel = layout.token_path(item_id, self.suffix)
        if data is None or isinstance(data, FileNotFoundError):
            problems.add("missing-token", f"id {item_id}: {rel} is missing")
            return
        if isinstance(data, BaseException):
            problems.add("token", f"id {item_id}: {rel} could not be read ({data})")
            return
        try:
            token = safejson.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            problems.add("token", f"id {item_id}: {rel} is not valid JSON ({exc})")
            return
        if not isinstance(token, dict):
            problems.add("token", f"id {item_id}: {rel} is not a JSON object")
            return
        want = item_url(self.base_uri, path)
        if token.get("image") != want:
            problems.add(
                "token-image",
                f"id {item_id}: {rel} image is {token.get('image')!r}, expected {want!r} "
                "(market.base_uri + its path)",
            )
        want = token_name(self.name, item_id)
        if token.get("name") != want:
            problems.add(
                "token-name", f"id {item_id}: {rel} name is {token.get('name')!r}, expected {want!r}"
            )
        for kind, message in token_trait_problems(token, self.seeds.get(item_id), self.expect):
            problems.add(kind, f"id {item_id}: {rel} {message}")

    def check_collection(self, where: str, count: int, problems: _Problems) -> None:
        """Once _SUCCESS exists: collection.json exists, parses and counts the job's items."""
        record = _read_json(self.fs, join(self.root, layout.COLLECTION))
        if record is None or isinstance(record, Exception):
            state = "missing" if record is None else "not valid JSON"
            problems.add("collection", f"{where}/{layout.COLLECTION} is {state} although _SUCCESS exists")
        elif not isinstance(record, dict) or record.get("item_count") != count:
            got = record.get("item_count") if isinstance(record, dict) else None
            problems.add(
                "collection", f"{layout.COLLECTION} says item_count {got}, _SUCCESS says count {count}"
            )


def _base_schema(settings: JobSettings, cfg) -> pa.Schema:
    """The contract's columns plus those the job's filters add (score, phash) and a variations job's parents."""
    schema = SCHEMA
    if settings.min_score is not None:
        schema = schema.append(pa.field("score", FILTER_COLUMNS["score"]))
    if settings.max_distance is not None:
        schema = schema.append(pa.field("phash", FILTER_COLUMNS["phash"]))
    return parent_schema(schema, cfg)


def _row_paths(ids: list[int], k: int, table, layout_name: str, fmt: str | None, problems, rel: str):
    """The layout's path of each row (never the row's own `path`, which is only compared with it); None for
    a row whose format names no known extension (no valid _job.json to say which)."""
    out = []
    formats = table.column("format").to_pylist() if fmt is None else [fmt] * len(ids)
    for i, path, f in zip(ids, table.column("path").to_pylist(), formats, strict=True):
        want = layout.item_path(layout_name, k, i, f) if f in layout.EXTENSIONS else None
        try:
            if want is not None:
                layout.check_item_path(layout_name, k, i, f, path)
            elif path is not None:
                raise ValueError(f"id {i}: path {path!r} is not the layout's None")
        except ValueError as exc:
            problems.add("path", f"{rel}: {exc}")
        out.append(want)
    return out


def _read_records(fs, root: str, where: str, problems: _Problems):
    """(_job.json's record ({} when missing or broken), its config or None, _SUCCESS's record or None)."""
    job = _read_json(fs, join(root, layout.JOB))
    success = _read_json(fs, join(root, layout.SUCCESS))
    cfg = None
    if job is None or isinstance(job, Exception):
        problems.add("job", f"{where}/{layout.JOB} is {'missing' if job is None else 'not valid JSON'}")
        job = {}
    else:
        try:
            cfg, found = record_config(job), []
        except JobRecordError as exc:
            found = exc.problems
        found += hash_problems(job, cfg) if cfg is not None else []
        for p in found:
            problems.add("job", p)
        if not isinstance(job, dict):
            job = {}
        if not isinstance(job.get("config"), dict):
            job["config"] = {}
    if success is None or isinstance(success, Exception) or not isinstance(success, dict):
        state = "missing: the job has not completed" if success is None else "not valid JSON"
        problems.add("success", f"{where}/{layout.SUCCESS} is {state}")
        success = None
    else:
        check_success(success, job, problems)
    return job, cfg, success


def verify(uri: str, storage_options: dict | None = None) -> list[str]:
    """Check the generation output at `uri` against its _job.json, plan and layout. Returns the problems
    (list of str, one message each, bounded per kind; [] when complete and intact): the output's own faults
    are returned, never raised. Raises StorageError when `uri` cannot be opened (unknown protocol, bad
    storage options)."""
    out = Output.open(uri, storage_options)
    fs, root, where = out.fs, out.root, out.name
    fs.invalidate_cache(root)
    problems = _Problems()
    job, cfg, success = _read_records(fs, root, where, problems)
    config = job["config"] if job else {}
    count, why = job_count(cfg, config, success)
    if why:
        return problems.result() + [f"cannot tell the job's count: {why}"]
    if job and success and "count" in success and success["count"] != config.get("count"):
        problems.add("count", f"_SUCCESS says count {success['count']}, _job.json says {config.get('count')}")

    settings = job_settings(cfg, config)
    layout_name = settings.layout
    if layout_name not in layout.LAYOUTS:
        return problems.result() + [
            f"_job.json: config.layout {layout_name!r} is not one of {layout.LAYOUTS}"
        ]
    schema = packing.schema_for(_base_schema(settings, cfg), layout_name)
    # layout `parquet` parts written before class_id became int64 (the HF ClassLabel type) keep int32 there
    schemas = [schema.remove_metadata()]
    if layout_name == "parquet":
        schemas.append(_base_schema(settings, cfg).append(pa.field("image", packing.IMAGE_TYPE)))
    max_distance = settings.max_distance
    near = HashIndex(max_distance, count) if isinstance(max_distance, int) else None
    shards, _ = scan_metadata(fs, root)
    shard_size = cfg.shard_size if cfg is not None else None
    coverage = Coverage(count, shard_size)
    if coverage.unchecked:
        problems.add("missing-id", coverage.unchecked)
    market = settings.market
    tokens = None
    if market.get("standard") == OPENSEA:
        try:
            tokens = _TokenCheck(fs, root, market, job.get("model_id"))
        except ValueError:  # an invalid token_suffix: record_config reported it
            tokens = None
    n_shards = num_shards(count, shard_size) if shard_size else None
    check = RowCheck(cfg, job) if cfg is not None else None
    fmt = cfg.image.format if cfg is not None else None
    rows_total = 0
    for k in sorted(shards):
        rel = layout.metadata_path(k)
        if n_shards is not None and k >= n_shards:
            problems.add(
                "shard", f"{rel}: shard {k} is beyond the plan's {n_shards} shards (0..{n_shards - 1})"
            )
        table = read_part(fs, root, rel, problems)
        if table is None:
            continue
        if not any(table.schema.remove_metadata().equals(s) for s in schemas):
            problems.add(
                "schema", f"{rel}: schema differs from the contract: {table.schema.remove_metadata()}"
            )
            continue
        rows_total += table.num_rows
        ids = table.column("id").to_numpy()
        if np.any(table.column("shard").to_numpy() != k):
            problems.add("shard", f"{rel}: holds rows of another shard")
        bad = ids[(ids < 0) | (ids >= count)]
        for i in bad[:MAX_LISTED]:
            problems.add("id-range", f"{rel}: id {int(i)} is outside 0..{count - 1}")
        coverage.add(k, ids[(ids >= 0) & (ids < count)], rel, problems)
        if check is not None:
            check.check(table, k, rel, problems)
        paths = _row_paths(ids.tolist(), k, table, layout_name, fmt, problems, rel)
        sizes = zip(table.column("width").to_pylist(), table.column("height").to_pylist(), strict=True)
        rows = list(zip(ids.tolist(), paths, table.column("sha256").to_pylist(), sizes, strict=True))
        if layout_name == "webdataset":
            _check_tar(fs, root, k, [r for r in rows if r[1] is not None], problems)
        elif layout_name == "parquet":
            _check_embedded(table, rel, rows, problems)
        else:
            _check_files(fs, root, [r for r in rows if r[1] is not None], problems)
            expected = {p.rsplit("/", 1)[-1] for p in paths if p is not None}
            if fmt is not None:  # a file of an id without a row is that id's (reported missing), not stray
                lo, hi = shard_range(k, cfg.shard_size, count)
                expected |= {layout.member_name(i, fmt) for i in range(lo, hi)}
            for name, link in stray_in_shard(fs, root, k, expected):
                if link:
                    problems.add("symlink", f"{name}: {SYMLINK}")
                else:
                    problems.add("stray", f"{name}: a file no row of {rel} names")
        if tokens is not None:
            seeds = dict(zip(ids.tolist(), table.column("seed").to_pylist(), strict=True))
            tokens.check([r for r in rows if 0 <= r[0] < count and r[1] is not None], problems, seeds)
        if near is not None:
            check_near_duplicates(near, ids, table.column("phash").to_numpy(), rel, problems)

    for name, link in stray_metadata(fs, root):
        problems.add(
            "symlink" if link else "stray", f"{name}: {SYMLINK if link else 'not a file genart writes'}"
        )
    if layout_name == "files":
        for name, link in stray_shard_dirs(fs, root, shards, success is not None, n_shards or 0):
            if link:
                problems.add("symlink", f"{name}: {SYMLINK}")
            else:
                problems.add("stray", f"{name}: no committed shard owns it")
    n_missing, first = coverage.missing(shards)
    if n_missing:
        head = ", ".join(str(i) for i in first)
        problems.add("missing-id", f"{n_missing} ids have no row (first: {head})")
    if success is not None:
        if n_shards is not None and "shards" in success and success["shards"] != n_shards:
            problems.add("success", f"_SUCCESS says {success['shards']} shards, the plan has {n_shards}")
        if "shards" in success and success.get("shards") != len(shards):
            problems.add(
                "success", f"_SUCCESS says {success.get('shards')} shards, metadata/ holds {len(shards)}"
            )
        if rows_total != count:
            problems.add("success", f"_SUCCESS says count {count}, the metadata holds {rows_total} rows")
        if tokens is not None:
            tokens.check_collection(where, count, problems)
    if cfg is not None and cfg.variations is not None:
        for message in parent_problems(cfg, storage_options):
            problems.add("parents", message)
    result = problems.result()
    log.debug("verify %s: %s", where, "OK" if not result else f"{len(result)} problem(s)")
    return result
