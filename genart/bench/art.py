"""`genart bench art DATA`: the shipped folder config (configs/train/cgan-folder.yaml) on a labelled source,
judged three ways side by side: an untrained model of the same spec (the floor), trained without
train.augment, and trained with train.augment as shipped (same steps). Each run is trained by the real
`genart.training.trainer.train` (one worker, a private local Ray as `genart train` starts) and scored by the
judge of `genart eval --data` (`genart.views.evaluate.evaluate`).

Layout under OUT: `config.yaml` (the augmented run's config: the judge reads its data section, so the real
images are decoded with the config's fit and background), and per run `untrained/`, `no-augment/`,
`augment/`: the training output (`model/`, `train/`) and the judge's `eval.json`, `class_grids.png`
(and `loss_curves.png` for trained runs). The three run folders are deleted first: a benchmark always
trains from step 0.
"""

from __future__ import annotations

import os
from glob import has_magic

import yaml

from genart.bench.common import ROOT, print_table
from genart.config.bounds import int_in
from genart.errors import ConfigError
from genart.storage.fs import get_fs, join, redact

FOLDER_CONFIG = ROOT / "configs" / "train" / "cgan-folder.yaml"
RUNS = ("untrained", "no augment", "augment")
HEADER = (
    "run",
    "train min",
    "real acc",
    "GAN-test",
    "vs real",
    "GAN-train",
    "FD",
    "precision",
    "recall",
    "diversity",
)
REPORT_KEYS = (
    "real_test_acc",
    "gan_test_acc",
    "gan_test_ratio",
    "gan_train_acc",
    "frechet_distance",
    "precision",
    "recall",
    "diversity_ratio",
)


def run_dir(run: str) -> str:
    """The folder name of a run under OUT (`no augment` -> `no-augment`)."""
    return run.replace(" ", "-")


def data_classes(data: str) -> tuple[str, ...]:
    """The class names of `data` from its listing (nothing decoded). Raises ConfigError (naming DATA) when a
    local DATA does not exist or the source has fewer than 2 classes; list_source's errors as they come."""
    from genart.data.catalog import list_source

    if "://" not in data and not has_magic(data) and not os.path.exists(data):
        raise ConfigError(
            f"DATA {data}: no such folder or file; give a folder with one subfolder per class "
            "(or a labelled imagefolder or Parquet source)"
        )
    names = list_source(data, None).class_names
    if names is None or len(names) < 2:
        found = "no class labels" if names is None else f"1 class ({names[0]!r})"
        raise ConfigError(
            f"DATA {redact(data)} has {found}; bench art trains class-conditional models: "
            "give at least 2 classes (one subfolder per class)"
        )
    return names


def run_configs(data: str, names: tuple[str, ...], out: str, steps: int | None, overrides=()) -> dict:
    """{run: TrainConfig} of the two trained runs: the folder config with `overrides` (KEY=VALUE), DATA,
    its class count and OUT/<run> as output; `steps` also sets checkpoint_every (one checkpoint) and
    log_every. Raises ConfigError for a bad override."""
    from genart.config import load_config

    sets = list(overrides)
    if steps is not None:
        sets += [
            f"train.steps={steps}",
            f"train.checkpoint_every={steps}",
            f"train.log_every={max(steps // 10, 1)}",
        ]
    sets += [f"data.source={data}", f"model.num_classes={len(names)}"]
    return {
        "augment": load_config(FOLDER_CONFIG, [*sets, f"output={join(out, 'augment')}"], expect_kind="train"),
        "no augment": load_config(
            FOLDER_CONFIG, [*sets, f"output={join(out, 'no-augment')}", "train.augment="], expect_kind="train"
        ),
    }


def _clear(out: str) -> None:
    """Delete OUT's run folders (only those) and make OUT."""
    fs, path = get_fs(out)
    for run in RUNS:
        p = join(path, run_dir(run))
        if fs.exists(p):
            fs.rm(p, recursive=True)
    fs.makedirs(path, exist_ok=True)


def _row(run: str, minutes: float, report: dict) -> dict:
    return {"run": run, "train_minutes": round(minutes, 2), **{k: report.get(k) for k in REPORT_KEYS}}


def _cell(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table_rows(rows: list[dict]) -> list[tuple]:
    """The printed table's rows (strings) of bench_art's rows."""
    return [
        (
            r["run"],
            _cell(r["train_minutes"], 1),
            _cell(r["real_test_acc"]),
            _cell(r["gan_test_acc"]),
            _cell(r["gan_test_ratio"], 2),
            _cell(r["gan_train_acc"]),
            _cell(r["frechet_distance"], 2),
            _cell(r["precision"]),
            _cell(r["recall"]),
            _cell(r["diversity_ratio"]),
        )
        for r in rows
    ]


def bench_art(
    data: str, steps: int | None = None, samples: int = 1000, out: str = "out/bench-art", overrides=()
) -> list[dict]:
    """Train and judge the three runs (RUNS) on `data`; print the table; return its rows, one dict per run
    in RUNS order: run, train_minutes (0 untrained) and the judge's REPORT_KEYS. Raises ConfigError for a
    missing DATA, fewer than 2 classes, bad --samples/--steps or overrides (all before any training);
    the errors of training and of the judge as they come."""
    from genart.bundle import save_untrained_bundle
    from genart.models.registry import generator_spec
    from genart.ray_session import ray_session
    from genart.training.trainer import train
    from genart.views.evaluate import MAX_SAMPLES, MIN_SAMPLES, evaluate

    int_in("--samples", samples, MIN_SAMPLES, MAX_SAMPLES)
    names = data_classes(data)
    cfgs = run_configs(data, names, out, steps, overrides)
    _clear(out)
    judge_config = join(out, "config.yaml")
    fs, path = get_fs(judge_config)
    dumped = cfgs["augment"].model_dump(mode="json")
    dumped["storage"][
        "options"
    ] = {}  # never write credentials to OUT: the judge reads them from the environment
    fs.pipe_file(path, yaml.safe_dump(dumped).encode())
    base = cfgs["augment"]
    bundles = {"untrained": join(out, "untrained", "model")}
    save_untrained_bundle(
        bundles["untrained"], generator_spec(base.model), seed=base.train.seed, class_names=names
    )
    minutes = {"untrained": 0.0}
    with ray_session(base.address):
        for run in ("no augment", "augment"):
            result = train(cfgs[run])
            bundles[run], minutes[run] = result.bundle_uri, result.seconds / 60
    rows = []
    for run in RUNS:
        report = evaluate(bundles[run], data=judge_config, samples=samples, out=join(out, run_dir(run)))
        rows.append(_row(run, minutes[run], report))
    steps_done = base.train.steps
    print_table(
        f"bench art: {FOLDER_CONFIG.name} on {redact(data)} ({len(names)} classes), {steps_done} steps, "
        f"{base.model.image_size}px x{base.model.channels}, augment {base.train.augment or 'off'}, "
        f"{samples} samples; reports under {redact(out)}",
        table_rows(rows),
        HEADER,
    )
    return rows
