"""What `genart verify` checks of a variations job's rows: each child's seed and class id are the ones its id
gives (genart/generation/vary.py), `parent_job` is the record's and `parent_ids` are the child's parents.
Whether those parents exist in the output they come from is `parents.parent_problems`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from genart.config.generate import GenerateConfig
from genart.generation.plan import children_of
from genart.storage.commit import FILTER_COLUMNS

PARENT_COLUMNS = ("parent_job", "parent_ids")


def parent_schema(schema: pa.Schema, cfg: GenerateConfig | None) -> pa.Schema:
    """`schema` with a variations job's parent columns appended (unchanged for any other job)."""
    if cfg is None or cfg.variations is None:
        return schema
    for name in PARENT_COLUMNS:
        schema = schema.append(pa.field(name, FILTER_COLUMNS[name]))
    return schema


class ChildCheck:
    """Checks each part's child rows against the record's variations block (one part at a time)."""

    def __init__(self, cfg: GenerateConfig, num_classes: int | None):
        self.cfg = cfg
        if num_classes is None:  # a record without num_classes: enough classes for its parents'
            num_classes = 1 + max(
                (p.class_id for p in cfg.variations.parents if p.class_id is not None), default=-1
            )
        self.children = children_of(cfg, num_classes)
        self.told = False  # whether the count mismatch was reported (once per output)

    def check(self, table: pa.Table, ids: np.ndarray, rel: str, problems) -> None:
        """Adds (kind, message) problems for rows whose seed, class_id, parent_job or parent_ids are not
        their id's; ids outside 0..count-1 are left to the id-range check."""
        if self.children.count != self.cfg.count and not self.told:
            self.told = True
            problems.add(
                "job",
                f"_job.json: count {self.cfg.count} is not the {self.children.count} children its variations "
                f"make ({len(self.children.ids)} parents)",
            )
        ok = (ids >= 0) & (ids < self.children.count)
        ids, rows = ids[ok], np.flatnonzero(ok)
        seeds = table.column("seed").to_numpy(zero_copy_only=False)[rows]
        for j in np.flatnonzero(seeds != self.children.seeds(ids)):
            problems.add("seed", f"{rel}: id {int(ids[j])}: seed {int(seeds[j])} is not the child's seed")
        got = table.column("class_id").to_pylist()
        want = self.children.class_ids(ids)
        want = [None] * len(ids) if want is None else want.tolist()
        for j, r in enumerate(rows.tolist()):
            if got[r] != want[j]:
                problems.add(
                    "class", f"{rel}: id {int(ids[j])}: class_id {got[r]} is not the child's ({want[j]})"
                )
        parent_job = table.column("parent_job").to_pylist()
        parent_ids = table.column("parent_ids").to_pylist()
        expect = self.children.parent_ids(ids)
        for j, r in enumerate(rows.tolist()):
            if parent_job[r] != self.cfg.variations.parent_job:
                problems.add(
                    "parents",
                    f"{rel}: id {int(ids[j])}: parent_job {parent_job[r]!r} is not _job.json's "
                    f"{self.cfg.variations.parent_job!r}",
                )
            if parent_ids[r] != expect[j]:
                problems.add(
                    "parents",
                    f"{rel}: id {int(ids[j])}: parent_ids {parent_ids[r]} are not its parents {expect[j]}",
                )
