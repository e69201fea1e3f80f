"""A curator's picks: which items of one generation output were kept and which rejected.

    {"output": "<the output URI the gallery was built from>", "job_id": "...", "keep": [ids], "reject": [ids]}

`genart gallery OUT` exports it from the browser ("Export picks"), `genart gallery OUT --serve` writes it to
OUT/curation/picks.json, and `genart collect PICKS...` reads it back here. A picks file belongs to one job:
once the output holds another job (`--overwrite` replaced it), its ids name other pieces, so a job_id that no
longer matches the output's _job.json is refused. Plain Python (no Ray); market sits below generation, so
the job record is read here from storage, not through genart.generation.job.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from genart.config.generate import GenerateConfig
from genart.errors import ConfigError
from genart.storage import layout, safejson
from genart.storage.fs import get_fs, join
from genart.storage.output import Output
from genart.storage.retry import retry

CURATION_DIR = "curation"
PICKS = f"{CURATION_DIR}/picks.json"  # where `genart gallery OUT --serve` writes them, relative to OUT
MAX_PICKS_BYTES = 64 * 2**20  # a picks file of 100,000 ids is ~1 MB; anything far larger is not one


class Picks(BaseModel):
    """The picks file. ids are item ids (int64 >= 0) of `output`, each in at most one of keep / reject."""

    model_config = ConfigDict(extra="forbid", strict=True)

    output: str
    job_id: str
    keep: list[int]
    reject: list[int]

    @field_validator("output", "job_id")
    @classmethod
    def _not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    @field_validator("keep", "reject")
    @classmethod
    def _ids(cls, v: list[int]) -> list[int]:
        bad = [i for i in v if not 0 <= i < 2**63]
        if bad:
            raise ValueError(f"ids are integers 0..2**63-1, got {bad[0]}")
        seen: set[int] = set()
        twice = sorted({i for i in v if i in seen or seen.add(i)})
        if twice:
            raise ValueError(f"id {twice[0]} is listed twice")
        return sorted(v)

    @model_validator(mode="after")
    def _disjoint(self) -> Picks:
        both = sorted(set(self.keep) & set(self.reject))
        if both:
            raise ValueError(f"id {both[0]} is both kept and rejected ({len(both)} such ids)")
        return self


def picks_bytes(picks: Picks) -> bytes:
    """Deterministic JSON bytes (keys in the documented order, ids ascending)."""
    return (json.dumps(picks.model_dump(), indent=1, ensure_ascii=False) + "\n").encode()


def parse_picks(data: bytes | str, where: str) -> Picks:
    """Picks from a file's bytes. Raises ConfigError naming `where` and what is wrong: not JSON, not an
    object, a missing or unknown key, an id that is not an integer, listed twice or both kept and rejected."""
    if len(data) > MAX_PICKS_BYTES:
        raise ConfigError(f"{where}: {len(data)} bytes is not a picks file (at most {MAX_PICKS_BYTES})")
    try:
        record = safejson.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{where} is not valid JSON ({exc}); export the picks again from the gallery"
        ) from None
    if not isinstance(record, dict):
        raise ConfigError(
            f'{where} is not a picks file: expected an object {{"output", "job_id", "keep", "reject"}}'
        )
    try:
        return Picks.model_validate(record)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "picks"
        raise ConfigError(f"{where}: {key}: {err['msg'].removeprefix('Value error, ')}") from None


def output_job(output: str, storage_options: dict | None = None) -> tuple[str, GenerateConfig]:
    """(job_id, config) of the generation output at `output`, from its _job.json. Raises ConfigError when
    it has no readable job record (not a generation output, or one `genart verify` would fail)."""
    out = Output.open(output, storage_options)
    where = f"{out.name}/{layout.JOB}"
    try:
        record = safejson.loads(out.fs.cat_file(out.path(layout.JOB)))
    except FileNotFoundError:
        raise ConfigError(f"{out.name} has no {layout.JOB}: it is not a generation output") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where} is not valid JSON ({exc}); run genart verify {out.name}") from None
    job_id = record.get("job_id") if isinstance(record, dict) else None
    if not isinstance(job_id, str):
        raise ConfigError(f"{where} has no job_id; run genart verify {out.name}")
    try:
        cfg = GenerateConfig.model_validate(record.get("config"))
    except ValidationError as exc:
        raise ConfigError(
            f"{where}: its config does not validate ({exc.errors()[0]['msg']}); run genart verify {out.name}"
        ) from None
    return job_id, cfg


def check_picks(picks: Picks, where: str, storage_options: dict | None = None) -> None:
    """Refuse picks that no longer describe their output: a job_id other than the output's (ConfigError
    naming both), or an id outside the output's 0..count-1."""
    job_id, cfg = output_job(picks.output, storage_options)
    count = cfg.count
    if picks.job_id != job_id:
        raise ConfigError(
            f"{where} was made for job {picks.job_id}, but {picks.output} now holds job {job_id} (it was "
            "regenerated or overwritten): curate the output again and export new picks"
        )
    for name, ids in (("keep", picks.keep), ("reject", picks.reject)):
        unknown = [i for i in ids if i >= count]
        if unknown:
            raise ConfigError(
                f"{where}: {name} names id {unknown[0]} ({len(unknown)} unknown ids), but {picks.output} "
                f"holds ids 0..{count - 1}"
            )


def load_picks(uri: str, storage_options: dict | None = None, check: bool = True) -> Picks:
    """Read a picks file at `uri` (a path or fsspec URI); with `check`, also check_picks against its output.
    Raises ConfigError (see parse_picks, check_picks), StorageError when no filesystem serves `uri`."""
    fs, path = get_fs(uri, storage_options)
    try:
        data = fs.cat_file(path)
    except FileNotFoundError:
        raise ConfigError(f"picks file {uri} does not exist; export it from `genart gallery`") from None
    picks = parse_picks(data, uri)
    if check:
        check_picks(picks, uri, storage_options)
    return picks


def write_picks(out: Output, picks: Picks) -> str:
    """OUT/curation/picks.json (the storage retry policy); returns its URI. StorageError when it still fails."""
    data = picks_bytes(picks)

    def put():
        out.fs.makedirs(out.path(CURATION_DIR), exist_ok=True)  # local folders; a no-op on object stores
        out.fs.pipe_file(out.path(PICKS), data)

    retry(put, f"writing {out.name}/{PICKS}")
    return join(out.name, PICKS)
