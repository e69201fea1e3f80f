"""`genart train` against a real local Ray: bundles, resume, S3, bad input."""

import io
import json
import time

import numpy as np
import pytest
from PIL import Image

import genart
from genart.config import load_config
from genart.errors import ClusterError, ConfigError, DataError, StorageError
from genart.training.loop import worker_threads
from genart.training.trainer import train
from tests.config.test_configs import ROOT

# a SIGKILLed Ray Train worker and the cluster's CPU count: a fresh cluster
pytestmark = pytest.mark.own_ray

SMALL = ["model.g_width=8", "model.d_width=8", "train.batch_size=16", "train.log_every=5"]


def _cfg(name, output, *extra):
    return load_config(ROOT / "configs/train" / name, [f"output={output}", *SMALL_FOR[name], *extra])


SMALL_FOR = {
    "cgan-digits.yaml": SMALL,
    "vae-digits.yaml": ["model.width=8", "train.batch_size=16", "train.log_every=5"],
}


def test_train_exports_bundle_then_resumes(ray_local, tmp_path):
    out = tmp_path / "run"
    res = train(_cfg("cgan-digits.yaml", out, "train.steps=10", "train.checkpoint_every=5"))
    assert res.steps == 10 and res.world_size == 1
    assert {m["threads"] for m in res.metrics} == {worker_threads(1)}  # the whole machine, not Ray's 1
    meta = json.loads((out / "model" / "model.json").read_text())
    assert meta["training"]["steps"] == 10 and meta["training"]["world_size"] == 1
    assert meta["training"]["data"]["count"] == 1797 and meta["num_classes"] == 10
    ckpts = sorted(p.name for p in (out / "train").glob("checkpoint_*") if p.is_dir())
    assert len(ckpts) == 2
    grid = Image.open(out / "train" / ckpts[-1] / "samples.png")
    assert grid.size == (10 * 34 + 2, 10 * 34 + 2)
    imgs = genart.load_bundle(str(out / "model")).generate([1, 2], [3, 4])
    assert imgs.shape == (2, 32, 32, 1)

    # genart eval on the fresh bundle: a report, eval.json and loss curves from the training metrics
    from click.testing import CliRunner

    from genart.cli import main

    cli = CliRunner().invoke(main, ["eval", str(out / "model"), "--samples", "200"])
    assert cli.exit_code == 0, cli.output
    assert "classifier accuracy" in cli.output and "frechet distance" in cli.output
    report = json.loads((out / "model" / "eval.json").read_text())
    assert sorted(report["accuracy_per_class"]) == [str(c) for c in range(10)]
    assert 0.0 <= report["accuracy"] <= 1.0 and report["frechet_distance"] > 0
    assert Image.open(out / "model" / "loss_curves.png").size[0] > 100

    # the same command with more steps continues from step 10 instead of starting over
    res2 = train(_cfg("cgan-digits.yaml", out, "train.steps=15", "train.checkpoint_every=5"))
    assert res2.steps == 15
    steps = [m["step"] for m in res2.metrics]
    assert steps == [5, 10, 15]  # the history is carried over, not re-made
    assert json.loads((out / "model" / "model.json").read_text())["training"]["steps"] == 15

    # another config on this output is refused before any Ray work (was: lr/batch changes silently
    # continued; model.g_width=48 failed after Ray's retries with a tensor-size dump); --overwrite starts over
    for extra in (["train.lr_g=0.01", "train.batch_size=32"], ["model.g_width=48"], ["train.steps=12"]):
        with pytest.raises(ConfigError, match="holds training by a different config"):
            train(_cfg("cgan-digits.yaml", out, "train.checkpoint_every=5", *extra))
    res3 = train(
        _cfg("cgan-digits.yaml", out, "train.steps=2", "model.g_width=16", "scaling.threads_per_worker=1"),
        overwrite=True,
    )
    assert res3.steps == 2 and [m["step"] for m in res3.metrics] == [2]  # started over, not resumed
    assert res3.metrics[0]["threads"] == 1
    assert json.loads((out / "model" / "model.json").read_text())["generator"]["g_width"] == 16
    record = json.loads((out / "_train.json").read_text())
    assert record["identity"]["model.g_width"] == 16 and record["steps"] == 2


def test_vae_to_s3_with_image_folder_source(ray_local, s3_bucket, tmp_path):
    import fsspec

    fs = fsspec.filesystem("s3", client_kwargs={"endpoint_url": __import__("os").environ["AWS_ENDPOINT_URL"]})
    rng = np.random.default_rng(0)
    for i in range(12):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(buf, format="PNG")
        fs.pipe(f"{s3_bucket[5:]}/images/{i:02d}.png", buf.getvalue())
    fs.pipe(f"{s3_bucket[5:]}/images/broken.png", b"not a png at all")
    cfg = _cfg(
        "vae-digits.yaml",
        f"{s3_bucket}/runs/vae",
        "train.steps=4",
        "train.checkpoint_every=4",
        "model.num_classes=0",
        "model.channels=3",
        f"data.source={s3_bucket}/images/",
        "data.label_column=null",
        "train.batch_size=4",
    )
    res = train(cfg)
    assert res.steps == 4
    bundle = genart.load_bundle(f"{s3_bucket}/runs/vae/model")
    assert bundle.meta["training"]["data"]["count"] == 12
    assert bundle.meta["training"]["data"]["skipped"] == 1
    assert bundle.generate([0]).shape == (1, 32, 32, 3)
    for path in fs.find(f"{s3_bucket[5:]}/runs"):
        if path.endswith((".json", ".jsonl")):
            assert b"testing-secret-do-not-leak" not in fs.cat(path)


def test_no_readable_images_is_a_clear_error(ray_local, tmp_path):
    src = tmp_path / "imgs"
    src.mkdir()
    (src / "a.png").write_bytes(b"garbage")
    (src / "b.jpg").write_bytes(b"more garbage")
    cfg = _cfg("vae-digits.yaml", tmp_path / "o", f"data.source={src}", "model.num_classes=0")
    with pytest.raises(DataError, match=r"holds no readable images \(2 files, all unreadable\)"):
        train(cfg)
    assert not (tmp_path / "o" / "model").exists()


def test_conditional_model_on_an_unlabelled_image_folder_is_refused(ray_local, tmp_path):
    src = tmp_path / "imgs"
    src.mkdir()
    (src / "a.png").write_bytes(b"not read: refused before any image is")
    cfg = _cfg("cgan-digits.yaml", tmp_path / "o", f"data.source={src}")
    with pytest.raises(
        DataError, match=r"is an image folder, which carries no labels, but model.num_classes is 10"
    ):
        train(cfg)
    assert not (tmp_path / "o" / "model").exists()


def test_more_workers_than_the_cluster_can_host_fails_fast(ray_local, tmp_path):
    cfg = _cfg("cgan-digits.yaml", tmp_path / "o", "scaling.num_workers=8", "scaling.cpus_per_worker=1")
    start = time.monotonic()
    with pytest.raises(ClusterError, match="needs 8 CPU .* but the cluster has 2 CPU"):
        train(cfg)
    assert time.monotonic() - start < 30


def test_unwritable_output_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cfg = _cfg("cgan-digits.yaml", blocker / "sub")
    with pytest.raises(StorageError, match="is not writable"):
        train(cfg)  # no Ray needed: the check runs first


@pytest.mark.slow  # `make slow`: tests/training/test_multinode.py covers multi-node DDP too
def test_two_nodes_two_workers_on_different_nodes(tmp_path, ray_cluster):
    """Two Ray nodes on this machine (ray.cluster_utils.Cluster); DDP across them over gloo."""
    ray_cluster(nodes=2, cpus_per_node=2)
    # 1.5 CPU per worker: two cannot share a 2-CPU node, so they land on different nodes
    cfg = _cfg(
        "cgan-digits.yaml",
        tmp_path / "o",
        "train.steps=6",
        "train.checkpoint_every=6",
        "scaling.num_workers=2",
        "scaling.cpus_per_worker=1.5",
    )
    res = train(cfg)
    assert res.world_size == 2 and res.steps == 6
    assert res.metrics[-1]["nodes"] == 2
    meta = json.loads((tmp_path / "o" / "model" / "model.json").read_text())
    assert meta["training"]["world_size"] == 2


def test_worker_killed_mid_training_resumes_from_last_checkpoint(ray_local, tmp_path):
    """SIGKILL the Ray Train worker once a checkpoint exists: FailureConfig restarts it from that checkpoint."""
    import os
    import signal
    import threading

    from ray.util.state import list_actors

    out = tmp_path / "o"
    killed: list[int] = []
    errors: list[str] = []
    gcs = ray_local.get_runtime_context().gcs_address  # this cluster's, even if others run on the machine

    def kill_worker_after_first_checkpoint():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            if any(p.is_dir() for p in (out / "train").glob("checkpoint_*")):
                try:
                    actors = list_actors(address=gcs, filters=[("state", "=", "ALIVE")], timeout=10)
                except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                    errors.append(repr(exc))
                    actors = []
                for actor in actors:
                    if actor.class_name.endswith("RayTrainWorker"):
                        os.kill(actor.pid, signal.SIGKILL)
                        killed.append(actor.pid)
            time.sleep(0.2)

    killer = threading.Thread(target=kill_worker_after_first_checkpoint, daemon=True)
    killer.start()
    res = train(
        _cfg("cgan-digits.yaml", out, "train.steps=200", "train.checkpoint_every=20", "train.log_every=20")
    )
    killer.join(timeout=5)
    assert killed, f"the worker finished before it could be killed; raise train.steps ({errors[:1]})"
    assert res.steps == 200
    steps = [m["step"] for m in res.metrics]
    assert steps == list(range(20, 201, 20))  # resumed from a checkpoint: no step reported twice, none lost


def test_parquet_source_with_hf_image_structs_and_labels(ray_local, tmp_path):
    """Parquet with the Hugging Face Image struct and a label column (what `genart synthesize` writes)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from genart.data.digits import load_digits_arrays

    imgs, labels = load_digits_arrays(32)
    rows = []
    for i in range(40):
        buf = io.BytesIO()
        Image.fromarray(imgs[i, :, :, 0]).save(buf, format="PNG")
        rows.append({"bytes": buf.getvalue(), "path": f"{i}.png"})
    rows.append({"bytes": b"\x89PNG but truncated", "path": "bad.png"})
    table = pa.table({"image": rows, "label": [int(x) for x in labels[:40]] + [3]})
    (tmp_path / "data").mkdir()
    pq.write_table(table, tmp_path / "data" / "train-00000-of-00001.parquet")
    cfg = _cfg(
        "cgan-digits.yaml",
        tmp_path / "o",
        f"data.source={tmp_path / 'data'}",
        "train.steps=3",
        "train.checkpoint_every=3",
    )
    res = train(cfg)
    assert res.steps == 3
    data = json.loads((tmp_path / "o" / "model" / "model.json").read_text())["training"]["data"]
    assert (data["count"], data["skipped"]) == (40, 1)
