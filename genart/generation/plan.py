"""The plan of a generation job: shards of ids, and each item's seed and class. No IO, no Ray.

Shard k covers ids [k * shard_size, min((k + 1) * shard_size, count)). Shard specs are made on the
fly, so nothing here grows with `count`. Seeds and classes depend only on (job seed, id) and the
`classes` config: never on replicas, batch size or shard size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np

from genart.config.generate import ClassesConfig, GenerateConfig, blend_table
from genart.errors import ConfigError
from genart.generation.vary import Children
from genart.ids import item_seeds, mix, num_shards, shard_range

# Salt that decorrelates the weighted class draw from the latent seed of the same item.
_CLASS_SALT = np.uint64(0xC1A55E5C1A55E5C1)


@dataclass(frozen=True)
class ShardSpec:
    """One unit of work: ids [start, stop) with their seeds and (for conditional models) class ids."""

    shard: int
    start: int
    stop: int
    seeds: np.ndarray  # int64, one per id
    class_ids: np.ndarray | None  # int32, one per id; None for unconditional models
    attempt: int = 0  # how many times a replica died under this shard before (the runner's retries)

    @property
    def n(self) -> int:
        return self.stop - self.start

    @property
    def ids(self) -> np.ndarray:
        return np.arange(self.start, self.stop, dtype=np.int64)


def class_ids_for(
    classes: ClassesConfig, num_classes: int, job_seed: int, ids: np.ndarray
) -> np.ndarray | None:
    """Class id per item: every class round-robin, a cycled list, or a weighted draw hashed from (seed, id);
    with classes.blend, the blend's heaviest class (the lowest id among equals) for every item."""
    if not num_classes:
        return None
    ids = np.asarray(ids, dtype=np.int64)
    if classes.blend:
        table = blend_table(classes.blend)
        heaviest = min(table, key=lambda k: (-table[k], k))
        return np.full(len(ids), heaviest, dtype=np.int32)
    if classes.mode == "round_robin":
        return (ids % num_classes).astype(np.int32)
    table = np.asarray(classes.ids, dtype=np.int64)
    if classes.mode == "list":
        return table[ids % len(table)].astype(np.int32)
    weights = np.asarray(classes.weights, dtype=np.float64)
    cum = np.cumsum(weights / weights.sum())
    h = mix(item_seeds(job_seed, ids), _CLASS_SALT)
    u = (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)  # uniform in [0, 1)
    pick = np.minimum(np.searchsorted(cum, u, side="right"), len(table) - 1)
    return table[pick].astype(np.int32)


class Plan:
    """The job's shards, made lazily. `Plan.from_config` also checks classes against the model."""

    def __init__(
        self,
        count: int,
        shard_size: int,
        seed: int,
        classes: ClassesConfig,
        num_classes: int,
        children: Children | None = None,
    ):
        self.count, self.shard_size, self.seed = count, shard_size, seed
        self.classes, self.num_classes = classes, num_classes
        self.children = children  # a variations job's: its seeds and classes replace the plain rule
        self.num_shards = num_shards(count, shard_size)

    @classmethod
    def from_config(cls, cfg: GenerateConfig, num_classes: int) -> Plan:
        if num_classes:  # ids given with mode round_robin are checked too: a typo is never ignored
            # names are resolved first (config.generate.resolve_class_names); one left over is reported here
            ids = set(cfg.classes.ids)
            bad = sorted(c for c in ids if isinstance(c, int) and not 0 <= c < num_classes)
            bad += sorted(c for c in ids if isinstance(c, str))
            if bad:
                raise ConfigError(
                    f"classes.ids: {bad} are not classes of this model "
                    f"(it has {num_classes}: 0..{num_classes - 1})"
                )
            bad = sorted(k for k in blend_table(cfg.classes.blend) if not 0 <= k < num_classes)
            if bad:
                raise ConfigError(
                    f"classes.blend: {bad} are not classes of this model "
                    f"(it has {num_classes}: 0..{num_classes - 1})"
                )
        children = children_of(cfg, num_classes)
        if children is not None and children.count != cfg.count:
            raise ConfigError(
                f"count: a variations job over {len(children.ids)} parents makes {children.count} items, "
                f"the config says {cfg.count}; leave count out of variations jobs"
            )
        return cls(cfg.count, cfg.shard_size, cfg.seed, cfg.classes, num_classes, children)

    def shard_range(self, k: int) -> tuple[int, int]:
        if not 0 <= k < self.num_shards:
            raise IndexError(f"shard {k} is outside 0..{self.num_shards - 1}")
        return shard_range(k, self.shard_size, self.count)

    def shard(self, k: int) -> ShardSpec:
        start, stop = self.shard_range(k)
        ids = np.arange(start, stop, dtype=np.int64)
        if self.children is not None:
            return ShardSpec(k, start, stop, self.children.seeds(ids), self.children.class_ids(ids))
        return ShardSpec(
            shard=k,
            start=start,
            stop=stop,
            seeds=item_seeds(self.seed, ids),
            class_ids=class_ids_for(self.classes, self.num_classes, self.seed, ids),
        )

    def shard_len(self, k: int) -> int:
        start, stop = self.shard_range(k)
        return stop - start

    def pending(self, committed: Iterable[int] = ()) -> Iterator[ShardSpec]:
        """Specs of the shards not in `committed`, in order, made one at a time."""
        done = set(committed)
        for k in range(self.num_shards):
            if k not in done:
                yield self.shard(k)


def children_of(cfg: GenerateConfig, num_classes: int) -> Children | None:
    """The job's Children (genart.generation.vary) when it is a variations job, else None."""
    if cfg.variations is None:
        return None
    return Children(cfg, num_classes, partial(class_ids_for, cfg.classes, num_classes, cfg.seed))
