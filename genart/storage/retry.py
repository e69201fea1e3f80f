"""The retry policy for storage writes, in one place: every write is retried a bounded number of times with
exponential backoff and a description of what it writes, then raises StorageError (Ray Data's
`_FileDatasink` idiom: `call_with_retry(..., description=...)`).

Two levels retry in genart and this module is the lower one:
- a storage action (one PUT, one rename, one batch of files): `retry` here, ATTEMPTS tries BACKOFF_S apart
  and doubling; used by the shard commit (`storage/commit.py`), `_job.json`, `_SUCCESS`, tokens and
  collection.json, synthesize's dataset files;
- a whole shard whose replica died: re-queued up to `max_retries` times by the shard scheduler
  (`generation/scheduler.py`, `ShardScheduler._replica_died`); a shard task that raised is not retried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from genart.errors import StorageError

log = logging.getLogger(__name__)

ATTEMPTS = 5
BACKOFF_S = 0.2


def retry(action: Callable[[], object], what: str, attempts: int = ATTEMPTS, backoff_s: float = BACKOFF_S):
    """Run a storage action with bounded exponential backoff; returns what `action` returns.

    Raises StorageError saying `what` failed (chained from the last error) after `attempts` failures."""
    delay = backoff_s
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:  # noqa: BLE001 - backends raise many types; retried, then re-raised typed
            if attempt == attempts:
                raise StorageError(
                    f"{what} failed after {attempts} attempts ({type(exc).__name__}: {exc}); "
                    "check the output location and re-run to resume"
                ) from exc
            log.warning(
                "%s failed (attempt %d/%d, %s: %s); retrying in %.1fs",
                what,
                attempt,
                attempts,
                type(exc).__name__,
                exc,
                delay,
            )
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")
