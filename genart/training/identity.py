"""Which `genart train` runs are the same job: the identity recorded at OUTPUT/_train.json (no Ray).

Re-running train on an output continues from its latest checkpoint, which is only sound for the same
job. The identity is the train config minus what only says where and how it runs:

- `output`, `address`, `storage` and every `scaling.*` key (a location, credentials, the cluster);
- `train.log_every` and `train.checkpoint_every` (how often it reports, not what it learns);
- `train.steps` may grow: a larger value continues training to it; a smaller one than the output's
  is refused (its checkpoints are already past, or aimed past, that step).

Any other difference (model, data, learning rates, batch size, seed, EMA, ...) is refused with exit 2
naming the keys, unless `--overwrite` starts the output over.
"""

from __future__ import annotations

import json
import logging
import shutil

from genart.config.identity import flatten
from genart.config.loader import show
from genart.config.train import TrainConfig
from genart.errors import ConfigError, StorageError
from genart.storage import safejson
from genart.storage.fs import redact
from genart.storage.output import Output

log = logging.getLogger(__name__)

RECORD = "_train.json"
RUN_NAME = "train"  # checkpoints live at OUTPUT/train/checkpoint_*
BUNDLE = "model"
FORMAT = "genart-train-job/1"
TRAIN_EXECUTION_KEYS = {"output", "address", "storage", "scaling"}
EXECUTION_TRAIN_KEYS = {"log_every", "checkpoint_every", "steps"}  # steps: compared on its own (may grow)


def identity(cfg: TrainConfig) -> dict:
    """{dotted key: value} of everything that decides what the job trains (see the module docstring)."""
    exclude = {
        **dict.fromkeys(TRAIN_EXECUTION_KEYS, True),
        "train": dict.fromkeys(EXECUTION_TRAIN_KEYS, True),
    }
    return flatten(cfg.model_dump(mode="json", exclude=exclude))


def record(cfg: TrainConfig) -> dict:
    """What OUTPUT/_train.json holds for `cfg`."""
    from genart import __version__

    return {
        "format": FORMAT,
        "identity": identity(cfg),
        "steps": cfg.train.steps,
        "genart_version": __version__,
    }


def differences(recorded: dict, cfg: TrainConfig) -> list[str]:
    """The keys in which `cfg` is a different job than the one `recorded` (a _train.json) describes, each as
    `key: recorded -> now`. Keys a newer genart added (absent from the record) are not compared."""
    old, new = recorded.get("identity", {}), identity(cfg)
    keys = sorted(k for k in set(old) | set(new) if k in old and old.get(k) != new.get(k))
    diffs = [f"{k}: {show(old.get(k), 60)} -> {show(new.get(k), 60)}" for k in keys]
    steps = recorded.get("steps")
    if isinstance(steps, int) and cfg.train.steps < steps:
        diffs.append(f"train.steps: {steps} -> {cfg.train.steps} (may only grow, to continue training)")
    return diffs


def read_record(out: Output) -> dict | None:
    """OUTPUT/_train.json (`out`: the job's output, opened once by train()), or None when the output holds
    none. Raises StorageError when it is unreadable."""
    try:
        with out.fs.open(out.path(RECORD), "rb") as f:
            raw = f.read(1 << 20)
    except FileNotFoundError:
        return None
    try:
        rec = safejson.loads(raw)
        if (
            not isinstance(rec, dict)
            or rec.get("format") != FORMAT
            or not isinstance(rec.get("identity"), dict)
        ):
            raise ValueError("not a genart train record")
    except (ValueError, UnicodeDecodeError) as exc:
        raise StorageError(
            f"{out.name}/{RECORD} is unreadable ({exc}); run with --overwrite to start this output over"
        ) from None
    return rec


def check_same_job(cfg: TrainConfig, out: Output, overwrite: bool) -> None:
    """Refuse (ConfigError, exit 2) to continue an output that another train config wrote, unless overwrite.

    An output holding checkpoints but no record (written by an older genart) is continued, with a warning."""
    if overwrite:
        return
    rec = read_record(out)
    if rec is None:
        if out.fs.exists(out.path(RUN_NAME)):
            log.warning(
                "%s holds training state but no %s (an older genart wrote it): continuing without checking "
                "that it is the same job",
                out.name,
                RECORD,
            )
        return
    diffs = differences(rec, cfg)
    if diffs:
        raise ConfigError(
            f"output {out.name} holds training by a different config ({'; '.join(diffs)}); "
            "use the same config to continue, another output, or --overwrite to start over"
        )


def start(cfg: TrainConfig, out: Output, overwrite: bool) -> None:
    """Once the job is known to be able to run: with overwrite, delete the output's training state and
    bundle; then record this config's identity at OUTPUT/_train.json. Raises StorageError."""
    if overwrite:
        for name in (RECORD, RUN_NAME, BUNDLE):
            _remove(out.fs, out.path(name), out.name)
    try:
        out.fs.makedirs(out.root, exist_ok=True)
        with out.fs.open(out.path(RECORD), "w") as f:
            json.dump(record(cfg), f, indent=2, sort_keys=True)
    except OSError as exc:
        raise StorageError(f"cannot write {out.name}/{RECORD} ({exc})") from exc


def _remove(fs, target: str, output_name: str) -> None:
    """Delete the file or folder `target` (its literal name: never a glob pattern). Raises StorageError."""
    from fsspec.implementations.local import LocalFileSystem

    try:
        if isinstance(fs, LocalFileSystem):
            import os

            if os.path.isdir(target):
                shutil.rmtree(target)
            elif os.path.lexists(target):
                os.remove(target)
            return
        if fs.isfile(target):
            fs.rm_file(target)
            return
        for file in fs.find(target):
            fs.rm_file(file)
    except OSError as exc:
        raise StorageError(
            f"--overwrite could not delete {redact(target)} ({exc}); {output_name} may hold part of the "
            "previous training: run again with --overwrite, or delete it yourself"
        ) from exc
