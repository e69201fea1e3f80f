"""`genart verify URI`: is a generation output complete and intact? Returns the problems (empty = OK).

Checks: _SUCCESS exists and agrees with the rows; every metadata part has the contract's schema and
only its own shard's rows; ids are exactly 0..count-1, each once; every row's image exists and its
sha256 matches: the file (layout `files`), the tar member and its .json (`webdataset`), the embedded
`image.bytes` (`parquet`). Memory: one part (and one tar) at a time plus a bitmap of seen ids.
"""

from __future__ import annotations

import json
import logging
import tarfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow.parquet as pq

from genart.generation.encode import sha256_hex
from genart.storage import layout, packing
from genart.storage.fs import get_fs, join, redact
from genart.storage.writer import SCHEMA, scan_metadata

log = logging.getLogger(__name__)

MAX_LISTED = 20  # problems of one kind listed one by one; the rest are counted


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
        return json.loads(fs.cat_file(path))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        return exc


def _check_files(fs, root: str, rows: list[tuple[int, str, str]], problems: _Problems) -> None:
    def check(row):
        item_id, path, digest = row
        try:
            data = fs.cat_file(join(root, path))
        except FileNotFoundError:
            return "missing-file", f"id {item_id}: file {path} is missing"
        if sha256_hex(data) != digest:
            return "sha256", f"id {item_id}: {path} does not match its sha256 (changed or truncated)"
        return None

    with ThreadPoolExecutor(max_workers=16) as pool:
        for found in pool.map(check, rows):
            if found:
                problems.add(*found)


def _check_tar(fs, root: str, shard: int, rows, problems: _Problems) -> None:
    rel = layout.tar_path(shard)
    try:
        members = packing.read_tar(fs.cat_file(join(root, rel)))
    except FileNotFoundError:
        problems.add("missing-file", f"shard {shard}: {rel} is missing")
        return
    except tarfile.TarError as exc:
        problems.add("tar", f"shard {shard}: {rel} is not a readable tar ({exc})")
        return
    for item_id, path, digest in rows:
        data = members.get(path)
        if data is None:
            problems.add("missing-file", f"id {item_id}: {path} is missing from {rel}")
        elif sha256_hex(data) != digest:
            problems.add(
                "sha256", f"id {item_id}: {rel}:{path} does not match its sha256 (changed or truncated)"
            )
        if f"{layout.item_key(item_id)}.json" not in members:
            problems.add(
                "missing-file", f"id {item_id}: {layout.item_key(item_id)}.json is missing from {rel}"
            )


def _check_embedded(table, rel: str, rows, problems: _Problems) -> None:
    images = table.column("image").to_pylist()
    for (item_id, path, digest), image in zip(rows, images, strict=True):
        if not image or image.get("bytes") is None:
            problems.add("missing-file", f"id {item_id}: {rel} has no image bytes for it")
        elif sha256_hex(image["bytes"]) != digest:
            problems.add("sha256", f"id {item_id}: the image in {rel} does not match its sha256")
        elif image.get("path") != path:
            problems.add("path", f"id {item_id}: image.path {image.get('path')!r} is not {path!r} in {rel}")


def verify(uri: str, options: dict | None = None) -> list[str]:
    """Problems found at the generation output `uri`, one message each; [] when it is complete and intact."""
    fs, root = get_fs(uri, options)
    fs.invalidate_cache(root)
    problems = _Problems()
    where = redact(uri)
    job = _read_json(fs, join(root, layout.JOB))
    success = _read_json(fs, join(root, layout.SUCCESS))
    if job is None or isinstance(job, Exception):
        problems.add("job", f"{where}/{layout.JOB} is {'missing' if job is None else 'not valid JSON'}")
        job = {}
    if success is None or isinstance(success, Exception):
        state = "missing: the job has not completed" if success is None else "not valid JSON"
        problems.add("success", f"{where}/{layout.SUCCESS} is {state}")
        success = {}
    count = success.get("count", job.get("config", {}).get("count"))
    if not isinstance(count, int):
        return problems.result() + ["cannot tell the job's count: neither _SUCCESS nor _job.json names it"]
    if job and job.get("config", {}).get("count") != count:
        problems.add(
            "count", f"_SUCCESS says count {count}, _job.json says {job.get('config', {}).get('count')}"
        )

    layout_name = job.get("config", {}).get("layout", "files")
    schema = packing.schema_for(SCHEMA, layout_name)
    shards, _ = scan_metadata(fs, root)
    seen = np.zeros(count, dtype=bool)
    rows_total = 0
    for k in sorted(shards):
        rel = layout.metadata_path(k)
        with fs.open(join(root, rel), "rb") as f:
            table = pq.read_table(f)
        if not table.schema.remove_metadata().equals(schema):
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
        ok = ids[(ids >= 0) & (ids < count)]
        uniq, n = np.unique(ok, return_counts=True)
        dup = np.concatenate([uniq[n > 1], uniq[seen[uniq]]])
        for i in dup:
            problems.add("duplicate", f"id {int(i)} appears more than once (again in {rel})")
        seen[uniq] = True
        rows = list(
            zip(
                ids.tolist(),
                table.column("path").to_pylist(),
                table.column("sha256").to_pylist(),
                strict=True,
            )
        )
        if layout_name == "webdataset":
            _check_tar(fs, root, k, rows, problems)
        elif layout_name == "parquet":
            _check_embedded(table, rel, rows, problems)
        else:
            _check_files(fs, root, rows, problems)

    missing = np.flatnonzero(~seen)
    if len(missing):
        head = ", ".join(str(int(i)) for i in missing[:10])
        problems.add("missing-id", f"{len(missing)} ids have no row (first: {head})")
    if success:
        if success.get("shards") != len(shards):
            problems.add(
                "success", f"_SUCCESS says {success.get('shards')} shards, metadata/ holds {len(shards)}"
            )
        if rows_total != count:
            problems.add("success", f"_SUCCESS says count {count}, the metadata holds {rows_total} rows")
    result = problems.result()
    log.info("verify %s: %s", where, "OK" if not result else f"{len(result)} problem(s)")
    return result
