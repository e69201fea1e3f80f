"""The typed values the generation stages hand each other: a replica's `ShardResult` for each committed
shard (replica -> scheduler), the `Tally` of what one run committed, and the job's `JobSummary` (what
`generate()` returns and `_SUCCESS` holds)."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class ShardResult:
    """One committed shard, as the replica reports it to the scheduler."""

    shard: int
    n: int  # images in the shard
    bytes: int  # encoded image bytes written (the part's `genart.bytes` footer value)
    seconds: float  # wall time from opening the shard to its commit
    rejected_score: int = 0  # draws the quality filter rejected (and redrew) in this shard
    rejected_duplicate: int = 0  # draws the near-duplicate index rejected (and redrew)


@dataclass(frozen=True)
class JobSummary:
    """A generate job's summary. `as_dict()` is `_SUCCESS`'s JSON object, key for key and in this order."""

    count: int  # images the job holds (cfg.count)
    shards: int  # shards of the plan
    bytes: int  # encoded image bytes of every committed shard, this run's and earlier runs'
    seconds: float  # this run's wall time, rounded to ms
    images_per_s: float  # images generated in this run per second of it
    model_id: str  # sha256 of the bundle's weights
    job_id: str
    generated: int  # images generated in this run (the rest were committed by earlier runs)
    resumed_shards: int  # shards earlier runs had committed
    first_commit_s: float | None  # seconds to this run's first committed shard; None when none
    rejected_score: int | None  # draws the filters rejected in this run (redrawn from derived seeds)
    rejected_duplicate: int | None
    genart_version: str | None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> JobSummary:
        """A `_SUCCESS` object read back. Keys an older genart did not write yet are None; unknown keys are
        dropped."""
        return cls(**{f.name: data.get(f.name) for f in dataclasses.fields(cls)})


@dataclass
class Tally:
    """What one run committed: images, bytes, shards, seconds to its first commit, draws the filters rejected."""

    images: int = 0
    bytes: int = 0
    shards: int = 0
    first_commit_s: float | None = None
    rejected_score: int = 0
    rejected_duplicate: int = 0

    def add(self, res: ShardResult, t0: float, ledger, bar, shards_before: int, shards_total: int) -> None:
        """Count committed shard `res` (t0: the job's perf_counter start), record its bytes in the byte
        ledger (saved at most every few seconds) and move the progress bar."""
        self.images += res.n
        self.bytes += res.bytes
        self.shards += 1
        self.rejected_score += res.rejected_score
        self.rejected_duplicate += res.rejected_duplicate
        ledger.add(res.shard, res.bytes)
        ledger.save()
        if self.first_commit_s is None:
            self.first_commit_s = time.perf_counter() - t0
        bar.update(res.n)
        bar.set_postfix_str(f"shards {shards_before + self.shards}/{shards_total}")
