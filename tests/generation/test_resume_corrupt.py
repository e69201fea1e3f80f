"""A resume survives what a crash or a full disk leaves: a corrupt progress ledger is ignored with a warning,
a truncated or corrupt metadata part makes its shard be redone. No Ray."""

from __future__ import annotations

import base64
import json
import logging
import zlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genart.generation.ledger import ByteLedger
from genart.storage import layout
from genart.storage.commit import BYTES_KEY
from genart.storage.fs import get_fs
from genart.storage.output import Output


def _parts(root, shards):
    (root / "metadata").mkdir(exist_ok=True)
    for k in shards:
        table = pa.table({"id": [k]}).replace_schema_metadata({BYTES_KEY: str(100 + k).encode()})
        pq.write_table(table, root / layout.metadata_path(k))


def _bits(n: int, ones) -> str:
    bits = np.zeros(n, dtype=bool)
    bits[list(ones)] = True
    return base64.b64encode(zlib.compress(np.packbits(bits).tobytes())).decode()


LEDGERS = {
    "binary junk": b"\x00\xff\xfe garbage",
    "truncated JSON": b'{"num_shards": 10, "bytes": 5',
    "a JSON list": b"[1, 2, 3]",
    "bits not base64": json.dumps({"num_shards": 10, "bytes": 5, "bits": "%%%"}).encode(),
    "bits not zlib": json.dumps({"num_shards": 10, "bytes": 5, "bits": "AAAA"}).encode(),
    "bits too short": json.dumps({"num_shards": 10, "bytes": 5, "bits": _bits(3, [0])}).encode(),
    "negative bytes": json.dumps({"num_shards": 10, "bytes": -1, "bits": _bits(10, [0])}).encode(),
    "bytes not a number": json.dumps({"num_shards": 10, "bytes": "x", "bits": _bits(10, [0])}).encode(),
    "bits missing": json.dumps({"num_shards": 10, "bytes": 5}).encode(),
    "bits a number": json.dumps({"num_shards": 10, "bytes": 5, "bits": 7}).encode(),
}


@pytest.mark.parametrize("body", list(LEDGERS.values()), ids=list(LEDGERS))
def test_a_corrupt_ledger_is_ignored_with_a_warning(tmp_path, caplog, body):
    _parts(tmp_path, range(10))
    (tmp_path / layout.PROGRESS).write_bytes(body)
    fs, root = get_fs(str(tmp_path))
    ledger = ByteLedger(Output.at(fs, root), 10)
    with caplog.at_level(logging.WARNING, logger="genart"):
        assert ledger.resume(set(range(10))) == set()
    assert ledger.bytes == sum(100 + k for k in range(10)) and ledger.bits.all()
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [f"{layout.PROGRESS} is unreadable"]
    ledger.save(force=True)  # rebuilt
    again = ByteLedger(Output.at(fs, root), 10)
    assert again.resume(set(range(10))) == set() and again.bytes == ledger.bytes


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_an_unreadable_part_is_returned_to_be_redone(tmp_path, caplog, damage):
    _parts(tmp_path, range(5))
    part = tmp_path / layout.metadata_path(2)
    data = part.read_bytes()
    part.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "garbage": b"PAR1" * 50}[damage])
    fs, root = get_fs(str(tmp_path))
    ledger = ByteLedger(Output.at(fs, root), 5)
    with caplog.at_level(logging.WARNING, logger="genart"):
        assert ledger.resume(set(range(5))) == {2}
    assert ledger.bytes == sum(100 + k for k in (0, 1, 3, 4))
    assert ledger.bits.tolist() == [True, True, False, True, True]
    assert (
        f"{layout.metadata_path(2)} is unreadable" in caplog.text and "its shard 2 is redone" in caplog.text
    )
