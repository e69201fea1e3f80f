"""`genart train`: Ray Train's TorchTrainer around the per-worker loop, then the bundle export (imports ray)."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass

import torch

from genart.bundle import save_bundle
from genart.config.loader import config_hash
from genart.config.train import DataConfig, TrainConfig
from genart.errors import JobFailed
from genart.models.registry import build_generator, generator_spec
from genart.ray_session import ray_session, require_resources
from genart.storage import safejson
from genart.storage.fs import join
from genart.storage.output import Output
from genart.training import identity
from genart.training.identity import RUN_NAME
from genart.training.loop import (
    TrainingState,
    build_state,
    cached_batches,
    run_training,
    sample_grid_png,
    worker_threads,
)

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    bundle_uri: str
    steps: int
    world_size: int
    seconds: float
    metrics: list[dict]


def _worker_logging() -> None:
    """genart's progress lines at INFO in the worker (Ray forwards them to the driver); Ray's own stay quiet."""
    logger = logging.getLogger("genart")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    try:  # Ray Train V2 logs every ray.train.report at INFO under a logger named by its file's path
        from ray.train.v2._internal.execution import context as _ctx

        logging.getLogger(_ctx.__file__).setLevel(logging.WARNING)
    except ImportError:  # an internal module: other Ray versions may not have it
        pass


def _worker_loop(config: dict) -> None:
    """Runs in each Ray Train worker."""
    import ray.train
    import ray.train.torch

    _worker_logging()
    cfg = TrainConfig.model_validate(config)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device()
    wrap = ray.train.torch.prepare_model if world > 1 else (lambda m: m)
    threads = cfg.scaling.threads_per_worker or worker_threads(ctx.get_local_world_size())
    torch.set_num_threads(threads)
    state = build_state(cfg, device, wrap=wrap, rank=rank)
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as d:
            state.load_state_dict(
                torch.load(os.path.join(d, "state.pt"), map_location=device, weights_only=True)
            )
            with open(os.path.join(d, "metrics.jsonl"), encoding="utf-8", errors="replace") as f:
                state.metrics = safejson.loads_lines(f.read(), "the checkpoint's metrics.jsonl")
        if rank == 0:
            log.info("resumed from checkpoint at step %d", state.step)
    if state.step >= cfg.train.steps:
        return
    nodes = _count_nodes(world)
    if rank == 0 and world > 1:
        log.info("%d workers on %d node(s)", world, nodes)
    shard = ray.train.get_dataset_shard("train")
    batches = cached_batches(
        shard.iter_batches(batch_size=1024, batch_format="numpy"),
        cfg.train.batch_size,
        cfg.train.seed + state.step,
        rank,
    )

    def on_report(st: TrainingState, metrics: dict, is_checkpoint: bool) -> None:
        metrics["nodes"] = nodes
        if rank == 0:
            losses = "  ".join(
                f"{k} {v:.4f}" for k, v in metrics.items() if k.startswith(("loss", "recon", "kl"))
            )
            log.info(
                "step %d/%d  %s  %.0f samples/s  ETA %.0fs",
                metrics["step"],
                cfg.train.steps,
                losses,
                metrics["samples_per_s"],
                metrics["eta_s"],
            )
        if not is_checkpoint:
            ray.train.report(metrics)
            return
        with tempfile.TemporaryDirectory() as tmp:
            if rank == 0:  # one copy of the state; the other workers report metrics only
                torch.save(st.state_dict(), os.path.join(tmp, "state.pt"))
                with open(os.path.join(tmp, "metrics.jsonl"), "w") as f:
                    f.writelines(json.dumps(m) + "\n" for m in st.metrics)
                with open(os.path.join(tmp, "samples.png"), "wb") as f:
                    f.write(sample_grid_png(st.exported, cfg.model.num_classes, cfg.model.latent_dim, device))
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))
            else:
                ray.train.report(metrics)

    run_training(state, batches, device, world, on_report)


def _count_nodes(world: int) -> int:
    """How many distinct Ray nodes the workers run on (gathered over the process group)."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    if world == 1:
        return 1
    import torch.distributed as dist

    gathered: list = [None] * world
    dist.all_gather_object(gathered, node)
    return len(set(gathered))


def _storage(out: Output):
    """(storage_path, pyarrow filesystem or None) for RunConfig."""
    if "://" not in out.uri or out.uri.startswith("file://"):
        return os.path.abspath(out.uri.removeprefix("file://")), None
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    return out.root, PyFileSystem(FSSpecHandler(out.fs))


def _hash_exclude(cfg: TrainConfig) -> dict:
    """What the bundle's config_hash leaves out: address and storage, and data keys newer than 0.1.0 while
    they hold their defaults (so a digits bundle keeps its model.json bytes)."""
    defaults = DataConfig()
    new_keys = {k: True for k in ("background", "fit") if getattr(cfg.data, k) == getattr(defaults, k)}
    exclude = {"address": True, "storage": True, **({"data": new_keys} if new_keys else {})}
    if cfg.scaling.threads_per_worker is None:
        exclude["scaling"] = {"threads_per_worker": True}
    return exclude


def export_bundle(cfg: TrainConfig, state_dict: dict, world_size: int, data_info: dict) -> str:
    spec = generator_spec(cfg.model)
    generator = build_generator(spec)
    key = "G_ema" if cfg.model.arch == "dcgan" else "VAE"
    weights = state_dict["modules"][key]
    if cfg.model.arch == "vae":
        weights = {k.removeprefix("decoder."): v for k, v in weights.items() if k.startswith("decoder.")}
    generator.load_state_dict(weights)
    uri = join(cfg.output.rstrip("/"), "model")
    training = {
        "steps": int(state_dict["step"]),
        "world_size": world_size,
        "data": data_info,
        "config_hash": config_hash(cfg, exclude=_hash_exclude(cfg)),
        "loss": cfg.model.loss if cfg.model.arch == "dcgan" else "vae",
    }
    disc = None
    if cfg.model.arch == "dcgan":  # D travels with G: `filter.scorer: discriminator` scores with it
        m = cfg.model
        d_spec = {
            "image_size": m.image_size,
            "channels": m.channels,
            "num_classes": m.num_classes,
            "d_width": m.d_width,
            "attention": m.attention,
            "spectral_norm": m.spectral_norm,
            "loss": m.loss,
        }
        disc = (d_spec, state_dict["modules"]["D"])
    names = data_info.get("class_names")
    n = cfg.model.num_classes
    if n and names is not None and len(names) != n:  # a bundle names each of its classes (bundle/check.py)
        names = [*names[:n], *(str(i) for i in range(len(names), n))]
    save_bundle(uri, generator, spec, training, names, cfg.storage.options, discriminator=disc)
    return uri


def train(cfg: TrainConfig, overwrite: bool = False) -> TrainResult:
    """Train per `cfg` on a local Ray (or the cluster at cfg.address) and export OUTPUT/model.

    Returns a TrainResult: `bundle_uri` (the exported bundle, OUTPUT/model), `steps` (optimizer steps taken,
    resumed ones included), `world_size` (training workers), `seconds` (wall time of this call), `metrics`
    (the rows of the last checkpoint's metrics.jsonl, one dict per logged step).

    An output already trained by a different config (genart.training.identity) is refused with a
    ConfigError unless `overwrite`, which deletes its training state and bundle once resources and data
    are known to be there. Raises (all from `genart.errors`):
    - ConfigError: the output holds a different training run (without `overwrite`);
    - StorageError: the output is not writable, or its train record cannot be read or written;
    - ClusterError: the Ray cluster cannot be joined or cannot host scaling.num_workers workers;
    - DataError: data.source yields nothing usable (or does not match model.channels);
    - JobFailed: Ray Train's fit failed (the cause chained) or produced no checkpoint.
    Writing the exported bundle is not retried: a backend error there propagates as raised."""
    out = Output.open(cfg.output, cfg.storage.options)  # resolved once, passed down
    out.check_writable()  # before any cluster or data work
    identity.check_same_job(cfg, out, overwrite)
    from ray.train import CheckpointConfig, FailureConfig, LoggingConfig, RunConfig
    from ray.train import ScalingConfig as RayScaling
    from ray.train.torch import TorchTrainer

    from genart.data.sources import build_dataset

    s = cfg.scaling
    start = time.perf_counter()
    with ray_session(cfg.address):
        require_resources(
            "scaling.num_workers", s.num_workers, s.cpus_per_worker, s.gpus_per_worker if s.use_gpu else 0
        )
        dataset, data_info = build_dataset(cfg)
        identity.start(cfg, out, overwrite)  # the job can run: only now is an overwritten output deleted
        storage_path, storage_fs = _storage(out)
        resources = {"CPU": s.cpus_per_worker, **({"GPU": s.gpus_per_worker} if s.use_gpu else {})}
        trainer = TorchTrainer(
            _worker_loop,
            train_loop_config=cfg.model_dump(mode="json"),
            scaling_config=RayScaling(
                num_workers=s.num_workers,
                use_gpu=s.use_gpu,
                resources_per_worker=resources,
                placement_strategy=s.placement_strategy,
            ),
            run_config=RunConfig(
                name=RUN_NAME,
                storage_path=storage_path,
                storage_filesystem=storage_fs,
                failure_config=FailureConfig(max_failures=2),
                checkpoint_config=CheckpointConfig(num_to_keep=2),
                logging_config=LoggingConfig(log_level="WARNING"),  # genart logs its own progress
            ),
            datasets={"train": dataset},
        )
        try:
            result = trainer.fit()
        except Exception as exc:  # Ray Train raises TrainingFailedError and friends; keep the cause chained
            raise JobFailed(
                f"training failed: {type(exc).__name__}: {str(exc).splitlines()[0][:500]}"
            ) from exc
        if result.checkpoint is None:
            raise JobFailed(f"training under {out.name} produced no checkpoint")
        with result.checkpoint.as_directory() as d:
            state = torch.load(os.path.join(d, "state.pt"), map_location="cpu", weights_only=True)
            with open(os.path.join(d, "metrics.jsonl"), encoding="utf-8", errors="replace") as f:
                metrics = safejson.loads_lines(f.read(), "the checkpoint's metrics.jsonl")
    uri = export_bundle(cfg, state, s.num_workers, data_info)
    return TrainResult(uri, int(state["step"]), s.num_workers, time.perf_counter() - start, metrics)
