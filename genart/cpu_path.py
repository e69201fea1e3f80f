"""How a CPU computes an item's pixels: the path each job records in _job.json ("cpu_path"), so a resumed job
keeps the arithmetic its first shards were made with and `load_bundle(uri, cpu_path=...)` regenerates them.

- "block16": the generator runs on blocks of exactly 16 rows (the last padded with zero rows), NHWC
  (channels_last) weights, one thread (`genart.models.sampling.forward_blocks`). New jobs use it.
- "item": each item alone, NCHW, one thread (`forward_per_item`): what every output whose _job.json has no
  cpu_path was made with; 1.5-3.5x slower on the shipped 32 px models.

Both keep an item's bytes independent of the batch, shard, replica and process that made it. No torch here:
the driver reads and writes job records without importing it.
"""

from __future__ import annotations

CPU_PATHS = ("block16", "item")
CPU_PATH = "block16"  # what new jobs and `genart.load_bundle(uri).generate` use
LEGACY_CPU_PATH = "item"  # what a _job.json without "cpu_path" was made with
BLOCK = 16  # rows per generator call on the block16 path


def check_cpu_path(path: str) -> str:
    """`path` when it is one of CPU_PATHS; else ValueError naming the known ones."""
    if path not in CPU_PATHS:
        raise ValueError(f"unknown cpu_path {path!r}: one of {', '.join(CPU_PATHS)}")
    return path


def cpu_path_of(job: dict) -> str:
    """The cpu_path a job record (_job.json as a dict) says its items were made with: LEGACY_CPU_PATH when it
    names none (jobs started before the key existed). Raises ValueError for an unknown one."""
    return check_cpu_path(job.get("cpu_path", LEGACY_CPU_PATH))
