"""The driver's byte ledger: image bytes per committed shard, so a resume need not open every part.

`_progress.json` at the output holds a bitmap of the shards it accounts for (zlib + base64: 1.25 MB for
10^7 shards) and their total image bytes. The driver saves it every SAVE_EVERY_S seconds and when the
run ends, and removes it once _SUCCESS is written. A resume reads it (one GET), then opens the footers
of only the committed shards it does not account for; if it names a shard that is no longer committed
(someone deleted a part), it is ignored and every committed footer is read instead.
The metadata listing, not this file, decides which shards are committed.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from genart.storage import layout, safejson
from genart.storage.commit import BYTES_KEY
from genart.storage.output import Output

log = logging.getLogger(__name__)

LEDGER = layout.PROGRESS
SAVE_EVERY_S = 30.0
FOOTER_READERS = 32


def footer_bytes(out: Output, shards) -> tuple[int, set[int]]:
    """Image bytes of committed shards from each part's Parquet footer (small ranged reads, concurrent),
    and the shards whose part is unreadable (truncated or corrupt): a resume redoes those."""
    import pyarrow.parquet as pq

    def one(k: int) -> int | None:
        path = out.path(layout.metadata_path(k))
        try:
            with out.fs.open(path, "rb") as f:
                kv = pq.read_metadata(f).metadata or {}
            return int(kv.get(BYTES_KEY, b"0"))
        except FileNotFoundError:
            raise
        except (OSError, ValueError) as exc:  # pyarrow: ArrowInvalid (a ValueError) or OSError
            log.warning("%s is unreadable (%s: %s); its shard %d is redone", path, type(exc).__name__, exc, k)
            return None

    ordered = sorted(shards)
    with ThreadPoolExecutor(max_workers=FOOTER_READERS) as pool:
        got = list(pool.map(one, ordered))
    bad = {k for k, n in zip(ordered, got, strict=True) if n is None}
    return sum(n for n in got if n is not None), bad


class ByteLedger:
    def __init__(self, out: Output, num_shards: int):
        self.out, self.fs, self.path, self.num_shards = out, out.fs, out.path(LEDGER), num_shards
        self.bits = np.zeros(num_shards, dtype=bool)  # 1 byte per shard: 10 MB for 10^7 shards
        self.bytes = 0
        self._saved_at = time.monotonic()

    def add(self, shard: int, nbytes: int) -> None:
        if not self.bits[shard]:
            self.bits[shard] = True
            self.bytes += nbytes

    def _load(self) -> tuple[np.ndarray, int] | None:
        """The saved (bits, bytes), or None when there is none or it is unreadable (then footers are read)."""
        try:
            data = safejson.loads(self.fs.cat_file(self.path))
            if data.get("num_shards") != self.num_shards:
                return None
            packed = zlib.decompress(base64.b64decode(data["bits"], validate=True))
            bits = np.unpackbits(np.frombuffer(packed, np.uint8))[: self.num_shards].astype(bool)
            nbytes = int(data["bytes"])
            if len(bits) != self.num_shards or nbytes < 0:
                raise ValueError(f"{len(bits)} shard bits for {self.num_shards} shards, {nbytes} bytes")
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, zlib.error) as exc:
            # a truncated, corrupt or foreign file (ValueError covers bad JSON, UTF-8 and base64)
            log.warning(
                "%s is unreadable (%s: %s); ignoring it and reading the committed parts' footers instead",
                LEDGER,
                type(exc).__name__,
                exc,
            )
            return None
        return bits, nbytes

    def resume(self, committed: set[int]) -> set[int]:
        """Account for the shards an earlier run committed: the saved ledger plus footers of the rest.
        Returns the committed shards whose part is unreadable: they are not accounted for, to be redone."""
        if not committed:
            return set()
        saved = self._load()
        if saved is not None and set(np.flatnonzero(saved[0]).tolist()) <= committed:
            self.bits, self.bytes = saved
        else:
            self.bytes = 0
        missing = [k for k in committed if not self.bits[k]]
        bad: set[int] = set()
        if missing:
            nbytes, bad = footer_bytes(self.out, missing)
            self.bytes += nbytes
            self.bits[[k for k in missing if k not in bad]] = True
        log.info("resume: %d committed shards, %d footers read", len(committed), len(missing))
        return bad

    def save(self, force: bool = False) -> None:
        """Write the ledger (every SAVE_EVERY_S, or now with `force`). Best effort: the listing is the truth."""
        if not force and time.monotonic() - self._saved_at < SAVE_EVERY_S:
            return
        self._saved_at = time.monotonic()
        packed = base64.b64encode(zlib.compress(np.packbits(self.bits).tobytes())).decode()
        body = json.dumps({"num_shards": self.num_shards, "bytes": self.bytes, "bits": packed}).encode()
        try:
            self.fs.pipe_file(self.path, body)
        except Exception as exc:  # noqa: BLE001 - any backend error; a lost ledger only costs footer reads
            log.warning(
                "could not save %s (%s: %s); a resume will read footers", LEDGER, type(exc).__name__, exc
            )

    def remove(self) -> None:
        try:
            self.fs.rm_file(self.path)  # rm would read `[ ] * ?` in the output's path as a pattern
        except FileNotFoundError:
            pass
