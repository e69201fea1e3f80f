"""What `genart verify` checks of each metadata row against the job: _job.json read back as the config it
was written from, each row's path, identity columns, seed and class id, and stray files beside the rows.

A row's `path` must be the layout's path for its id (never followed as written); model_id and job_id must be
_job.json's, format its image.format; width and height one size for the whole output (and the image's own);
seeds and class ids must be the plan's (genart.generation.plan) or, for a filtered job, a redraw derived from
the plan's seed (genart.filters.draw.attempt_seeds). Memory: one part's rows at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from genart.config.generate import GenerateConfig
from genart.filters.dedupe import HashIndex
from genart.filters.draw import attempt_seeds
from genart.generation.plan import class_ids_for
from genart.generation.verify_vary import ChildCheck
from genart.ids import item_seeds, num_shards, shard_range
from genart.images import DECODE_ERRORS, header_size
from genart.storage import layout

MAX_COUNT = next(m.le for m in GenerateConfig.model_fields["count"].metadata if getattr(m, "le", None))
MAX_BITMAP = 10**8  # ids checked in one bitmap (100 MB) when _job.json does not say its shard_size
MAX_LISTED = 20  # problems of one kind listed one by one; the rest are counted
SYMLINK = "a symbolic link (an output holds its own files)"
# a filtered item's kept draw is one of its first filter.max_attempts draws; a resumed job may raise
# max_attempts (execution-only) up to the config's bound, so any draw within that bound is accepted
MAX_ATTEMPTS_BOUND = GenerateConfig.model_fields["filter"].annotation.model_fields["max_attempts"].metadata
DEEP_ROWS = 1000  # rows per part searched past _job.json's max_attempts
MAX_ATTEMPTS_BOUND = next(m.le for m in MAX_ATTEMPTS_BOUND if getattr(m, "le", None) is not None)


def hash_problems(job: dict, cfg: GenerateConfig) -> list[str]:
    """verify: _job.json's config_hash must be the hash of its config (as the runner computes it), so an
    edited config (count lowered after deleting shards, another seed) is named, not trusted. (preview and
    gallery only show an output: they do not ask.)"""
    from genart.config.identity import record_exclude
    from genart.config.loader import config_hash

    recorded = job.get("config_hash")
    if not isinstance(recorded, str):
        return [] if recorded is None else [f"{layout.JOB}: config_hash is not a string"]
    want = config_hash(cfg, exclude=record_exclude(cfg, for_hash=True))
    if recorded != want:
        return [
            f"{layout.JOB}: config_hash {recorded[:12]}... is not its config's ({want[:12]}...): "
            "the record was edited"
        ]
    return []


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the image's header (nothing is decoded); None when it is not an image."""
    try:
        return header_size(data)
    except DECODE_ERRORS:
        return None


class RowCheck:
    """Checks each part's rows against the job's config and record (one part at a time)."""

    def __init__(self, cfg: GenerateConfig, job: dict):
        self.cfg, self.model_id, self.job_id = cfg, job["model_id"], job["job_id"]
        self.filtered = cfg.filter.min_score is not None or cfg.dedupe.max_distance is not None
        # class count: _job.json's num_classes when it records one; else (round_robin) the first id > 0 whose
        # row asks for class 0 (ids before it ask for their own id), found in id order over the parts
        nc = job.get("num_classes")
        self.num_classes = nc if isinstance(nc, int) and not isinstance(nc, bool) else None
        self.conditional: bool | None = None if self.num_classes is None else self.num_classes > 0
        self.size: tuple[int, int] | None = None  # the output's (width, height): the first row's
        self.children = None if cfg.variations is None else ChildCheck(cfg, self.num_classes)

    def check(self, table: pa.Table, k: int, rel: str, problems) -> None:
        ids = table.column("id").to_numpy()
        for col, want in (
            ("model_id", self.model_id),
            ("job_id", self.job_id),
            ("format", self.cfg.image.format),
        ):
            values = table.column(col).to_pylist()
            for i, v in zip(ids.tolist(), values, strict=True):
                if v != want:
                    problems.add(col, f"{rel}: id {i}: {col} {v!r} is not _job.json's {want!r}")
        self._sizes(table, ids, rel, problems)
        if self.children is not None:  # a variations job: seeds, classes and parents are its children's
            self.children.check(table, ids, rel, problems)
            return
        self._seeds(table, ids, rel, problems)
        self._classes(table, ids, rel, problems)

    def _sizes(self, table, ids: np.ndarray, rel: str, problems) -> None:
        sizes = zip(table.column("width").to_pylist(), table.column("height").to_pylist(), strict=True)
        for i, size in zip(ids.tolist(), sizes, strict=True):
            if self.size is None:
                self.size = size
            elif size != self.size:
                problems.add(
                    "size",
                    f"{rel}: id {i}: {size[0]}x{size[1]}, the output's items are {self.size[0]}x{self.size[1]}",
                )

    def _seeds(self, table, ids: np.ndarray, rel: str, problems) -> None:
        seeds = table.column("seed").to_numpy(zero_copy_only=False)
        plan = item_seeds(self.cfg.seed, np.maximum(ids, 0))
        bad = np.flatnonzero(seeds != plan)
        if self.filtered and len(bad):
            bad = self._not_redraws(plan, seeds, bad)
        what = "nor a redraw derived from it" if self.filtered else ""
        for j in bad:
            problems.add(
                "seed",
                f"{rel}: id {int(ids[j])}: seed {int(seeds[j])} is not the plan's ({int(plan[j])}) {what}".rstrip(),
            )

    def _not_redraws(self, plan: np.ndarray, seeds: np.ndarray, todo: np.ndarray) -> np.ndarray:
        """Rows (of `todo`) whose seed is none of their first draws: up to _job.json's filter.max_attempts for
        every row, then up to MAX_ATTEMPTS_BOUND (a resume may raise max_attempts) for at most DEEP_ROWS rows,
        so a part full of forged seeds costs at most DEEP_ROWS x MAX_ATTEMPTS_BOUND draws."""
        rest = todo[:0]
        for attempt in range(1, MAX_ATTEMPTS_BOUND):
            if attempt == self.cfg.filter.max_attempts:
                todo, rest = todo[:DEEP_ROWS], todo[DEEP_ROWS:]  # the rest stay reported as foreign
            hit = attempt_seeds(plan[todo], attempt) == seeds[todo]
            todo = todo[~hit]
            if not len(todo):
                break
        return np.sort(np.concatenate([todo, rest]))

    def _classes(self, table, ids: np.ndarray, rel: str, problems) -> None:
        col = table.column("class_id")
        if self.conditional is None and len(col):
            self.conditional = col.null_count < len(col)
        if not self.conditional:
            for j in np.flatnonzero(~np.asarray(col.is_null().to_numpy(zero_copy_only=False)))[:20]:
                problems.add(
                    "class",
                    f"{rel}: id {int(ids[j])}: class_id {col[int(j)].as_py()} on an unconditional job",
                )
            return
        got = col.to_pylist()
        if self.cfg.classes.mode == "round_robin" and not self.cfg.classes.blend:
            want = self._round_robin(ids, got)
        else:
            want = class_ids_for(self.cfg.classes, 1, self.cfg.seed, np.maximum(ids, 0)).tolist()
        for i, c, w in zip(ids.tolist(), got, want, strict=True):
            if c != w:
                problems.add("class", f"{rel}: id {i}: class_id {c} is not the plan's ({w})")

    def _round_robin(self, ids: np.ndarray, got: list) -> list:
        if self.num_classes is not None:
            return (ids % self.num_classes).tolist() if self.num_classes else [None] * len(ids)
        want = [None] * len(ids)
        for j in np.argsort(ids, kind="stable").tolist():
            i, c = int(ids[j]), got[j]
            if self.num_classes is None and c == 0 and i > 0:
                self.num_classes = i  # the first wrap of round-robin: id n asks for class 0
            want[j] = i if self.num_classes is None else i % self.num_classes
        return want


def read_part(fs, root: str, rel: str, problems):
    """The part's table, or None (a problem naming it) when it cannot be read as Parquet."""
    try:
        with fs.open(f"{root.rstrip('/')}/{rel}", "rb") as f:
            return pq.read_table(f)
    except (pa.ArrowException, OSError, ValueError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        problems.add("part", f"{rel} is not a readable Parquet file (truncated or corrupt: {exc})")
        return None


def stray_in_shard(fs, root: str, k: int, expected: set[str]) -> list[tuple[str, bool]]:
    """(path relative to the output, is a symlink) of each entry in images/{k:05d}/ that is not the image of
    one of its rows, or is a symbolic link (local outputs: an output holds its own files)."""
    folder = f"{layout.shard_dir(k)}"
    try:
        entries = fs.ls(f"{root.rstrip('/')}/{folder}", detail=True)
    except FileNotFoundError:
        return []
    links = {e["name"].rsplit("/", 1)[-1] for e in entries if e.get("islink")}
    names = [e["name"] for e in entries]
    stray = {n.rsplit("/", 1)[-1] for n in layout.stray_image_names(names, k, expected)}
    return [(f"{folder}/{n}", n in links) for n in sorted(stray | links)]


def stray_metadata(fs, root: str) -> list[tuple[str, bool]]:
    """(path, is a symlink) of each entry of metadata/ that genart does not write there (any name but a
    committed part's or its commit's temp file, any folder) and of every symbolic link."""
    try:
        entries = fs.ls(f"{root.rstrip('/')}/{layout.METADATA_DIR}", detail=True)
    except FileNotFoundError:
        return []
    out = []
    for e in entries:
        name = e["name"].rstrip("/").rsplit("/", 1)[-1]
        link = bool(e.get("islink"))
        if link or e.get("type") == "directory" or not layout.is_metadata_name(name):
            out.append((f"{layout.METADATA_DIR}/{name}", link))
    return sorted(out)


def stray_shard_dirs(
    fs, root: str, committed: set[int], complete: bool, num_shards: int
) -> list[tuple[str, bool]]:
    """(path, is a symlink) of each entry of images/ that no committed shard owns: any file; a shard folder
    once the job is complete (before, an uncommitted shard's folder is work in progress), or one outside
    the plan's shards; and every symbolic link (an output holds its own files)."""
    try:
        entries = fs.ls(f"{root.rstrip('/')}/{layout.IMAGES_DIR}", detail=True)
    except FileNotFoundError:
        return []
    out = []
    for e in entries:
        name = e["name"].rstrip("/").rsplit("/", 1)[-1]
        if e.get("islink"):
            out.append((f"{layout.IMAGES_DIR}/{name}", True))
            continue
        k = layout.parse_shard_dir(name) if e.get("type") == "directory" else None
        if k in committed:
            continue
        if k is None or complete or not 0 <= k < num_shards:
            out.append((f"{layout.IMAGES_DIR}/{name}", False))
    return sorted(out)


def _span(lo_hi: tuple[int, int]) -> int:
    return lo_hi[1] - lo_hi[0]


class Coverage:
    """Which ids have rows: per shard when shard_size is known (shard k owns [k * size, (k + 1) * size)),
    else one bitmap of `count` booleans."""

    def __init__(self, count: int, shard_size: int | None):
        self.count, self.size, self.unchecked = count, shard_size, ""
        if not shard_size and count > MAX_BITMAP:  # 10^10 booleans would not fit: say so instead
            self.unchecked = (
                f"ids not checked one by one: without _job.json's shard_size, {count} ids are more than "
                f"one bitmap holds ({MAX_BITMAP})"
            )
        self.seen = None if shard_size or self.unchecked else np.zeros(count, dtype=bool)
        self.holes: dict[int, np.ndarray] = {}  # shard -> its ids without a row (per-shard mode)

    def add(self, k: int, ids: np.ndarray, rel: str, problems) -> None:
        """`ids`: the part's ids within 0..count-1."""
        if self.unchecked:
            return
        if self.size is None:
            uniq, n = np.unique(ids, return_counts=True)
            dup = np.concatenate([uniq[n > 1], uniq[self.seen[uniq]]])
            self.seen[uniq] = True
        else:
            lo, hi = shard_range(k, self.size, self.count)
            for i in ids[(ids < lo) | (ids >= hi)][:MAX_LISTED]:
                problems.add("shard", f"{rel}: id {int(i)} belongs to shard {int(i) // self.size}")
            uniq, n = np.unique(ids[(ids >= lo) & (ids < hi)], return_counts=True)
            dup = uniq[n > 1]
            if hi > lo:
                mask = np.zeros(hi - lo, dtype=bool)
                mask[uniq - lo] = True
                if not mask.all():
                    self.holes[k] = lo + np.flatnonzero(~mask)
        for i in dup:
            problems.add("duplicate", f"id {int(i)} appears more than once (again in {rel})")

    def missing(self, shards: set[int]) -> tuple[int, list[int]]:
        """(how many ids have no row, the first 10 of them). Per shard, the total is counted from the
        committed shards' ranges and holes, and the head walks at most len(shards) + 10 shards: bounded work
        whatever count a record claims."""
        if self.unchecked:
            return 0, []
        if self.size is None:
            missing = np.flatnonzero(~self.seen)
            return len(missing), missing[:10].tolist()
        n_shards = num_shards(self.count, self.size)
        covered = sum(
            _span(shard_range(k, self.size, self.count)) - len(self.holes.get(k, ()))
            for k in shards
            if 0 <= k < n_shards
        )
        head: list[int] = []
        for k in range(n_shards):
            if len(head) >= 10:
                break
            if k in shards:
                ids = self.holes.get(k, ())
            else:
                lo = k * self.size
                ids = range(lo, min(lo + 10, self.count))
            head += [int(i) for i in ids[: 10 - len(head)]]
        return self.count - covered, head


def token_trait_problems(token: dict, seed, expect: dict) -> list[tuple[str, str]]:
    """(kind, message) for each of a token's description, Seed and Model attributes that is not the job's
    (expect: description, model_id) or the row's (seed). Class and pixel traits need the bundle and the
    decoded image: not checked here."""
    out = []
    if token.get("description", "") != expect["description"]:
        out.append(
            (
                "token-description",
                f"description is {token.get('description')!r}, expected {expect['description']!r}",
            )
        )
    attrs = token.get("attributes", [])
    if not isinstance(attrs, list) or not all(
        isinstance(a, dict) and isinstance(a.get("trait_type"), str) and "value" in a for a in attrs
    ):
        return out + [("token-traits", "attributes is not a list of {trait_type, value}")]
    traits = {a["trait_type"]: a["value"] for a in attrs}
    wants = {"Seed": None if seed is None else str(int(seed))}
    if isinstance(expect["model_id"], str):
        wants["Model"] = expect["model_id"][:12]
    for name, want in wants.items():
        if want is not None and traits.get(name) != want:
            out.append(("token-traits", f"{name} is {traits.get(name)!r}, expected {want!r}"))
    return out


def section(config: dict, key: str) -> dict:
    """config[key] when it is a mapping, else {} (an invalid _job.json is reported by record_config, not raised)."""
    value = config.get(key) if isinstance(config, dict) else None
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class JobSettings:
    """What verify checks an output against, beyond its count: its layout, filter.min_score,
    dedupe.max_distance and market block (a dict, as _job.json writes it)."""

    layout: object  # a layout name when _job.json validated; else whatever the record says (checked)
    min_score: object
    max_distance: object
    market: dict


def job_settings(cfg: GenerateConfig | None, config: dict) -> JobSettings:
    """The job's settings from the parsed `cfg` when _job.json validated; else from the raw `config` dict
    of a broken record (values unchecked: verify reports what they cannot serve). Never raises."""
    if cfg is not None:
        market = cfg.market.model_dump(mode="json")
        return JobSettings(cfg.layout, cfg.filter.min_score, cfg.dedupe.max_distance, market)
    return JobSettings(
        config.get("layout", "files"),
        section(config, "filter").get("min_score"),
        section(config, "dedupe").get("max_distance"),
        section(config, "market"),
    )


def job_count(cfg: GenerateConfig | None, config: dict, success: dict | None) -> tuple[int, str]:
    """(the count verify checks against, "" or why there is none): _job.json's validated count; without a
    valid _job.json, _SUCCESS's or the raw config's, if it is an integer within a job's bounds."""
    if cfg is not None:
        return cfg.count, ""
    count = (success or {}).get("count", config.get("count"))
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        return 0, "neither _SUCCESS nor _job.json names it"
    if count > MAX_COUNT:
        return 0, f"{count} is more than any job's (at most {MAX_COUNT})"
    return count, ""


def check_success(success: dict, job: dict, problems) -> None:
    """_SUCCESS names the job's count and shards, and (when it names them) _job.json's model_id and job_id."""
    for key in ("count", "shards"):
        if key not in success:
            problems.add("success", f"{layout.SUCCESS}: {key} is missing")
    for key in ("model_id", "job_id"):
        if key in success and key in job and success[key] != job[key]:
            problems.add(
                "success", f"{layout.SUCCESS}: {key} {success[key]!r} is not _job.json's {job[key]!r}"
            )


def size_problem(item_id: int, where: str, data: bytes, size) -> tuple[str, str] | None:
    """The image's own size (its header) must be its row's width x height."""
    got = image_size(data)
    if got != size:
        what = "is not a readable image" if got is None else f"is {got[0]}x{got[1]}"
        return "size", f"id {item_id}: {where} {what}, its row says {size[0]}x{size[1]}"
    return None


def check_near_duplicates(index: HashIndex, ids, hashes, rel: str, problems) -> None:
    """With dedupe.max_distance: no two items of the whole output within that distance (one index over every
    shard's phash column; about 650 bytes per item, see the module's docstring)."""
    for i, h in zip(ids.tolist(), hashes.tolist(), strict=True):
        other = index.near(h, owner=i)
        if other is not None:
            problems.add(
                "near-duplicate",
                f"{rel}: item {i} is within dedupe.max_distance={index.d} of item {other} (phash)",
            )
        index.add(i, h)
