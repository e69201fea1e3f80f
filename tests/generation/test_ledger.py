"""The byte ledger: a resume opens only the footers of shards the saved ledger does not account for. No Ray."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from genart.bench.memory import _CountingFS
from genart.generation.ledger import ByteLedger
from genart.storage import layout
from genart.storage.commit import BYTES_KEY
from genart.storage.output import Output


def _parts(root, shards):
    (root / "metadata").mkdir()
    for k in shards:
        table = pa.table({"id": [k]}).replace_schema_metadata({BYTES_KEY: str(100 + k).encode()})
        pq.write_table(table, root / layout.metadata_path(k))


def test_resume_reads_only_unaccounted_footers(tmp_path):
    _parts(tmp_path, range(10))
    fs = _CountingFS()
    first = ByteLedger(Output.at(fs, str(tmp_path)), 12)
    for k in range(7):
        first.add(k, 100 + k)
    first.add(3, 999)  # a shard counted twice (a retried commit) adds its bytes once
    first.save(force=True)
    assert (tmp_path / "_progress.json").stat().st_size < 200

    fs = _CountingFS()
    again = ByteLedger(Output.at(fs, str(tmp_path)), 12)
    again.resume(set(range(10)))
    assert again.bytes == sum(100 + k for k in range(10))
    # one read of the ledger, then the footers of shards 7, 8, 9 only (cat_file opens through _open too)
    assert (fs.calls["cat"], fs.calls["open"] - fs.calls["cat"]) == (1, 3)
    again.remove()
    assert not (tmp_path / "_progress.json").exists()


def test_a_ledger_naming_a_deleted_shard_is_ignored(tmp_path):
    _parts(tmp_path, range(10))
    ledger = ByteLedger(Output.at(_CountingFS(), str(tmp_path)), 10)
    for k in range(10):
        ledger.add(k, 100 + k)
    ledger.save(force=True)
    (tmp_path / layout.metadata_path(4)).unlink()
    fs = _CountingFS()
    again = ByteLedger(Output.at(fs, str(tmp_path)), 10)
    again.resume(set(range(10)) - {4})
    assert (
        again.bytes == sum(100 + k for k in range(10) if k != 4) and fs.calls["open"] - fs.calls["cat"] == 9
    )
