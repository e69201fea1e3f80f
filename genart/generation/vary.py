"""What each item of a variations job, or of a `classes.blend` job, is made from. No IO, no Ray.

A variations job over n kept pieces (its record's `variations.parents`, in id order) numbers its children:

    ids [i * per_item, (i + 1) * per_item)   children of parent i
    then, with cross, the n (n - 1) / 2 pairs (a, b), a < b, in the order (0, 1), (0, 2), ..., (1, 2), ...:
    cross_per_pair children each, at t = 1 / (cross_per_pair + 1), ..., cross_per_pair / (cross_per_pair + 1)

Child id i's seed is `derived_seeds(item_seeds(job seed, [i]), VARY_SALT)` (genart/ids.py), so it depends on
nothing but the job's seed and the id: never on replicas, batches or shards. Its latent is its parent's (the
record's `parents[i].latent`: `sampling.latents` of the parent's stored seed with its job's truncation, or,
for a parent that is itself a child, its own record's; genart/generation/parents.py) or, for a cross,
`slerp(parent a's, parent b's, t)`, plus `blend.offset(seed, radius)`; clamped to [-truncation, truncation]
when truncation is set, then rounded to float32. Everything is computed per item in float64.

Classes (conditional models), with `keep_class` (the default): a child of one parent has its parent's class;
a cross of parents of different classes gets the blend (1 - t) x a's class + t x b's class, and its row records
the class of the nearer parent (a's at t <= 0.5). Without `keep_class`, the job's `classes` block picks (a
`classes.blend` row records its heaviest class, the lowest id among equals). The generator always gets float
class weights (N, num_classes) in these jobs: a one-hot row gives exactly the class's embedding.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from genart.config.generate import GenerateConfig, blend_table
from genart.ids import derived_seeds, item_seeds
from genart.models.blend import class_weights, offset, slerp
from genart.models.sampling import latents

VARY_SALT = np.uint64(0x7A81A7105EED0C01)  # names the use "a child's offset" of an id's seed


def child_count(parents: int, per_item: int, cross: bool, per_pair: int) -> int:
    """How many children a variations job makes: parents x per_item, plus (with cross) per_pair for each of
    the parents (parents - 1) / 2 pairs."""
    return parents * per_item + (parents * (parents - 1) // 2 * per_pair if cross else 0)


def child_seeds(job_seed: int, ids: np.ndarray) -> np.ndarray:
    """int64 (N,) seeds of children `ids` (int (N,) >= 0): derived_seeds(item_seeds(job_seed, ids), VARY_SALT)."""
    return derived_seeds(item_seeds(job_seed, ids), VARY_SALT)


class Children:
    """The children of one variations job (`cfg.variations` with its `parents` filled in).

    `job_classes(ids) -> int32 (N,)` is the job's class plan (genart.generation.plan.class_ids_for), used when
    keep_class is false."""

    def __init__(
        self, cfg: GenerateConfig, num_classes: int, job_classes: Callable[[np.ndarray], np.ndarray]
    ):
        v = cfg.variations
        self.cfg, self.v, self.num_classes, self.job_classes = cfg, v, num_classes, job_classes
        self.ids = np.array([p.id for p in v.parents], dtype=np.int64)
        self.classes_of_parents = np.array(
            [-1 if p.class_id is None else p.class_id for p in v.parents], dtype=np.int64
        )
        n = len(self.ids)
        self.n_var = n * v.per_item
        self.count = child_count(n, v.per_item, v.cross, v.cross_per_pair)
        # the parents' latents as their jobs made them (a variations job records them: parents.py)
        lengths = {len(p.latent) for p in v.parents}
        self._base = (
            torch.tensor([p.latent for p in v.parents], dtype=torch.float32) if len(lengths) <= 1 else None
        )
        rows = np.arange(n, dtype=np.int64)
        self._pairs_before = rows * n - rows * (rows + 1) // 2  # pairs (a, b) with a < row

    def parents_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For child ids (int (N,), each in 0..count-1): (a, b, t), parent indexes a int64 (N,), b int64 (N,)
        (-1 for a child of one parent) and t float64 (N,) (0 for a child of one parent)."""
        ids = np.asarray(ids, dtype=np.int64)
        a = ids // self.v.per_item
        b = np.full(len(ids), -1, dtype=np.int64)
        t = np.zeros(len(ids), dtype=np.float64)
        crossed = ids >= self.n_var
        if crossed.any():
            c = ids[crossed] - self.n_var
            per = self.v.cross_per_pair
            pair, j = c // per, c % per
            row = np.searchsorted(self._pairs_before, pair, side="right") - 1
            a[crossed] = row
            b[crossed] = row + 1 + (pair - self._pairs_before[row])
            t[crossed] = (j + 1) / (per + 1)
        return a, b, t

    def seeds(self, ids: np.ndarray) -> np.ndarray:
        return child_seeds(self.cfg.seed, ids)

    def parent_ids(self, ids: np.ndarray) -> np.ndarray:
        """Object array (N,) of lists of the parents' ids in their output ([a] or [a, b])."""
        a, b, _ = self.parents_of(ids)
        out = np.empty(len(a), dtype=object)
        for k, (i, j) in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
            out[k] = [int(self.ids[i])] if j < 0 else [int(self.ids[i]), int(self.ids[j])]
        return out

    def class_ids(self, ids: np.ndarray) -> np.ndarray | None:
        """The class id each child's row records: int32 (N,), or None for an unconditional model."""
        if not self.num_classes:
            return None
        if not self.v.keep_class:
            return self.job_classes(ids)
        a, b, t = self.parents_of(ids)
        near = np.where((b >= 0) & (t > 0.5), b, a)
        return self.classes_of_parents[near].astype(np.int32)

    def class_rows(self, ids: np.ndarray) -> torch.Tensor | None:
        """float32 (N, num_classes) class weights the generator gets, or None (unconditional)."""
        if not self.num_classes:
            return None
        if not self.v.keep_class:
            return job_class_rows(self.cfg, self.num_classes, self.job_classes(ids))
        a, b, t = self.parents_of(ids)
        rows = torch.zeros(len(a), self.num_classes, dtype=torch.float32)
        for k, (i, j, tk) in enumerate(zip(a.tolist(), b.tolist(), t.tolist(), strict=True)):
            rows[k, self.classes_of_parents[i]] += 1.0 if j < 0 else 1.0 - tk
            if j >= 0:
                rows[k, self.classes_of_parents[j]] += tk
        return rows

    def latents(self, ids: np.ndarray, latent_dim: int) -> torch.Tensor:
        """float32 (N, latent_dim): each child's latent, computed one child at a time (module docstring).
        Raises ValueError when the record's parent latents are not latent_dim long each."""
        trunc = self.cfg.truncation
        base = self._base
        if base is None or base.shape != (len(self.ids), latent_dim):
            raise ValueError(f"the recorded parent latents are not {len(self.ids)} x {latent_dim} numbers")
        a, b, t = self.parents_of(ids)
        out = torch.empty(len(a), latent_dim, dtype=torch.float32)
        for k, (i, j, tk, s) in enumerate(zip(a.tolist(), b.tolist(), t.tolist(), self.seeds(ids).tolist())):
            z = base[i].to(torch.float64) if j < 0 else slerp(base[i], base[j], tk)
            z = z + offset(s, latent_dim, self.v.radius)
            if trunc is not None:
                z = z.clamp(-trunc, trunc)
            out[k] = z.to(torch.float32)
        return out


def job_class_rows(cfg: GenerateConfig, num_classes: int, class_ids: np.ndarray) -> torch.Tensor:
    """float32 (N, num_classes) class weights of a job's own classes: its classes.blend on every row, or the
    one-hot of each of `class_ids` (int (N,))."""
    if cfg.classes.blend:
        row = class_weights(blend_table(cfg.classes.blend), num_classes)
        return row.expand(len(class_ids), num_classes).clone()
    return torch.nn.functional.one_hot(
        torch.as_tensor(np.asarray(class_ids), dtype=torch.long), num_classes
    ).float()


def needs_inputs(cfg: GenerateConfig) -> bool:
    """Whether a job's items are made from more than (seed, class id): variations or a classes.blend."""
    return cfg.variations is not None or bool(cfg.classes.blend)


def item_inputs(
    cfg: GenerateConfig, children: Children | None, num_classes: int, latent_dim: int, ids, seeds, class_ids
):
    """The generator's inputs for items `ids` (int64 (N,)) with `seeds` and `class_ids` (int (N,) or None)
    of a job `needs_inputs` names: (z float32 (N, latent_dim), y float32 (N, num_classes) or None), on the
    CPU. `children` is the job's Children for a variations job, else None."""
    if children is not None:
        return children.latents(ids, latent_dim), children.class_rows(ids)
    z = latents(seeds, latent_dim, cfg.truncation)
    return z, None if not num_classes else job_class_rows(cfg, num_classes, class_ids)
