"""generate() against a real 2-CPU local Ray: full layout, resume, refusal, and fault injection
(replica SIGKILL, replicas that always die, driver SIGKILL)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

import genart
from genart.errors import ConfigError, JobFailed
from genart.generation.runner import generate
from genart.generation.verify import verify
from genart.images import decode, encode, sha256_hex
from genart.market.xmp import TRAINED_ALGORITHMIC_MEDIA, Provenance, disclosure

# fault injection (SIGKILLed replicas, a SIGKILLed driver, hung replicas killed): a fresh cluster
pytestmark = pytest.mark.own_ray

REPO = Path(__file__).resolve().parents[2]
TYPES = {
    "id": pa.int64(),
    "seed": pa.int64(),
    "class_id": pa.int32(),
    "path": pa.string(),
    "sha256": pa.string(),
    "width": pa.int32(),
    "height": pa.int32(),
    "format": pa.string(),
    "model_id": pa.string(),
    "shard": pa.int32(),
    "job_id": pa.string(),
    "created_at": pa.timestamp("us", tz="UTC"),
}


def part_mtimes(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (out / "metadata").glob("part-*.parquet")}


def snapshot(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}


def read_rows(out: Path) -> pa.Table:
    return pq.read_table(out / "metadata").sort_by("id")


def assert_every_id_once(out: Path, count: int) -> None:
    ids = read_rows(out).column("id").to_numpy()
    assert len(ids) == count
    assert np.array_equal(ids, np.arange(count))
    assert verify(str(out)) == []


def wait_for_parts(out: Path, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(list((out / "metadata").glob("part-*.parquet"))) < n if (out / "metadata").is_dir() else True:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {n} shards committed at {out} after {timeout}s")
        time.sleep(0.01)


def test_generate_writes_the_full_layout(ray_local, tiny_bundle, tmp_path, make_cfg, capfd):
    out = tmp_path / "out"
    summary = generate(make_cfg(tiny_bundle, str(out)), progress=True)

    meta = json.loads((Path(tiny_bundle) / "model.json").read_text())
    assert json.loads((out / "_SUCCESS").read_text()) == summary.as_dict()
    assert (summary.count, summary.shards, summary.generated) == (2000, 10, 2000)
    assert summary.resumed_shards == 0
    assert summary.model_id == meta["model_id"] and summary.images_per_s > 0 and summary.seconds > 0
    job = json.loads((out / "_job.json").read_text())
    assert job["job_id"] == summary.job_id and job["model_id"] == meta["model_id"]
    assert job["config"]["count"] == 2000 and job["genart_version"] == genart.__version__
    assert "storage" not in job["config"] and "address" not in job["config"] and len(job["config_hash"]) == 64

    table = read_rows(out)
    assert {f.name: f.type for f in table.schema} == TYPES
    assert table.num_rows == 2000 and table.column("id").to_pylist() == list(range(2000))
    assert table.column("shard").to_pylist() == [i // 200 for i in range(2000)]
    assert table.column("class_id").to_pylist() == [i % 10 for i in range(2000)]
    assert set(table.column("job_id").to_pylist()) == {summary.job_id}
    assert set(table.column("format").to_pylist()) == {"png"}
    assert len(set(table.column("seed").to_pylist())) == 2000
    assert sorted(p.name for p in (out / "metadata").iterdir()) == [
        f"part-{k:05d}.parquet" for k in range(10)
    ]
    files = sorted(str(p.relative_to(out)) for p in (out / "images").rglob("*") if p.is_file())
    assert files == table.column("path").to_pylist()
    assert summary.bytes == sum((out / p).stat().st_size for p in files)

    bundle = genart.load_bundle(tiny_bundle)
    for row in table.take([0, 777, 1999]).to_pylist():
        with Image.open(out / row["path"]) as im:
            assert (im.format, im.size, im.mode) == ("PNG", (row["width"], row["height"]), "L")
        stored = decode((out / row["path"]).read_bytes())
        again = bundle.generate([row["seed"]], [row["class_id"]])[0]
        assert np.array_equal(stored, again)  # bit-exact, whichever of the 2 replicas made it
        # the XMP disclosure (provenance.xmp, on by default): the file's bytes and sha256 regenerate exactly
        data = (out / row["path"]).read_bytes()
        assert disclosure(data) == {
            "DigitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
            "model_id": meta["model_id"],
            "job_id": summary.job_id,
            "id": str(row["id"]),
            "seed": str(row["seed"]),
        }
        regenerated = Provenance(meta["model_id"], job["job_id"]).stamp(
            encode(again, "png"), "png", row["id"], row["seed"]
        )
        assert regenerated == data and sha256_hex(regenerated) == row["sha256"]
    assert verify(str(out)) == []
    assert "shards 10/10" in capfd.readouterr().err


def test_resume_skips_committed_shards_and_refuses_a_different_config(
    ray_local, tiny_bundle, tmp_path, make_cfg
):
    out = tmp_path / "out"
    cfg = make_cfg(tiny_bundle, str(out), count=1000, shard_size=100)
    first = generate(cfg, progress=False)
    # an interrupted job: _SUCCESS and three commits missing (their images are still there)
    (out / "_SUCCESS").unlink()
    for k in (2, 5, 9):
        (out / "metadata" / f"part-0000{k}.parquet").unlink()
    kept = part_mtimes(out)
    # replicas/batch size only say how to run: a resume may change them
    again = generate(cfg.model_copy(update={"replicas": 1, "batch_size": 32}), progress=False)
    assert (again.generated, again.resumed_shards, again.job_id) == (300, 7, first.job_id)
    assert again.bytes == first.bytes
    now = part_mtimes(out)
    assert {k: now[k] for k in kept} == kept and len(now) == 10
    assert_every_id_once(out, 1000)

    before = snapshot(out)
    assert generate(cfg, progress=False) == again  # complete: nothing to do
    with pytest.raises(ConfigError, match=r"differing keys: count, seed\. Pass --overwrite"):
        generate(cfg.model_copy(update={"seed": 8, "count": 900}), progress=False)
    with pytest.raises(ConfigError, match=r"differing keys: image.format"):
        generate(
            cfg.model_copy(update={"image": cfg.image.model_copy(update={"format": "webp"})}), progress=False
        )
    assert snapshot(out) == before

    third = generate(cfg.model_copy(update={"seed": 8, "count": 900}), overwrite=True, progress=False)
    assert third.job_id != first.job_id and third.generated == 900
    assert_every_id_once(out, 900)


# the packed layouts' kill runs are `make slow` (about 20 s each): the kill, the retry and exactly-once ids are
# the [files] run's; a packed shard re-made on a re-run is test_layouts.py's test_webdataset_layout /
# test_parquet_layout (_resume_after_losing_shard_2), its temp files tests/storage/test_commit.py's
# test_scan_ignores_and_reports_temp_files and test_webdataset_tar_is_written_before_the_metadata
@pytest.mark.parametrize(
    "layout",
    [
        "files",
        pytest.param("webdataset", marks=pytest.mark.slow),
        pytest.param("parquet", marks=pytest.mark.slow),
    ],
)
def test_replica_killed_mid_job(ray_local, slow_bundle, tmp_path, make_cfg, caplog, layout):
    from ray._private import state

    out = tmp_path / "out"
    cfg = make_cfg(slow_bundle, str(out), count=3000, shard_size=100, batch_size=50, layout=layout)
    killed: dict = {}

    def kill_one_replica():
        wait_for_parts(out, 1)
        alive = [
            a["Pid"]
            for a in state.actors().values()
            if a["ActorClassName"] == "GeneratorReplica" and a["State"] == "ALIVE"
        ]
        killed["committed"] = len(part_mtimes(out))
        os.kill(alive[0], signal.SIGKILL)
        killed["pid"] = alive[0]

    killer = threading.Thread(target=kill_one_replica, daemon=True)
    killer.start()
    summary = generate(cfg, progress=False)
    killer.join(timeout=10)
    assert killed.get("pid") and killed["committed"] < 30, killed
    assert any("died" in r.getMessage() for r in caplog.records if r.name == "genart.generation.scheduler")
    assert summary.generated == 3000
    assert_every_id_once(out, 3000)
    if layout == "webdataset":
        assert sorted(p.name for p in (out / "shards").iterdir()) == [f"{k:05d}.tar" for k in range(30)]


def test_replicas_that_always_die_stop_the_job(ray_local, tiny_bundle, tmp_path, make_cfg):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-16])  # model.json still reads fine on the driver
    out = tmp_path / "out"
    t0 = time.monotonic()
    with pytest.raises(JobFailed, match=r"replica died 3 time\(s\).*BundleError: bundle .* has sha256"):
        generate(make_cfg(str(broken), str(out), max_retries=2), progress=False)
    assert time.monotonic() - t0 < 120
    assert not (out / "_SUCCESS").exists() and part_mtimes(out) == {}


DRIVER = """
import json, sys
import ray
from genart.config.generate import GenerateConfig
from genart.generation.runner import generate
ray.init(num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False, _temp_dir=sys.argv[2],
         logging_level="WARNING")
generate(GenerateConfig.model_validate(json.loads(sys.argv[1])), progress=False)
"""


def test_hung_replicas_are_killed_and_the_job_stops_in_bounded_time(
    ray_local, slow_bundle, tmp_path, make_cfg
):
    """A replica that commits nothing within shard_timeout_s is treated as hung (killed, replaced, its shard
    retried); when that keeps happening the job stops with a clear error instead of waiting forever."""
    out = tmp_path / "out"
    t0 = time.monotonic()
    with pytest.raises(JobFailed, match=r"killed as hung: no shard committed within shard_timeout_s=0.3"):
        # 0.3 s is shorter than any replica needs to start and commit its first shard
        generate(make_cfg(slow_bundle, str(out), max_retries=1, shard_timeout_s=0.3), progress=False)
    assert time.monotonic() - t0 < 60
    assert not (out / "_SUCCESS").exists()


def test_driver_killed_mid_job_then_resumed(ray_local, slow_bundle, tmp_path, make_cfg):
    import psutil  # ray ships it (ray/thirdparty_files, on sys.path once ray is imported)

    out = tmp_path / "out"
    cfg = make_cfg(slow_bundle, str(out), count=3000, shard_size=100, batch_size=50)
    ray_dir = tempfile.mkdtemp(prefix="gd-", dir="/tmp")
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, cfg.model_dump_json(), ray_dir],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started: list = []
    try:
        wait_for_parts(out, 3)
        driver = psutil.Process(proc.pid)
        started = driver.children(recursive=True)  # its local Ray: gcs, raylet, workers, ...
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in started:  # only the processes this test's driver started, by PID (psutil checks identity)
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(started, timeout=30)
        shutil.rmtree(ray_dir, ignore_errors=True)
    assert not (out / "_SUCCESS").exists()
    committed = part_mtimes(out)
    assert 3 <= len(committed) < 30

    summary = generate(cfg, progress=False)
    assert summary.resumed_shards == len(committed)
    assert summary.generated == 3000 - 100 * len(committed)
    now = part_mtimes(out)
    assert {k: now[k] for k in committed} == committed
    assert not [p for p in (out / "metadata").iterdir() if p.name.endswith(".tmp")]
    assert_every_id_once(out, 3000)
    bundle, rows = genart.load_bundle(slow_bundle), read_rows(out).to_pylist()
    for row in (rows[0], rows[1500], rows[2999]):  # made before the kill and after the resume
        again = bundle.generate([row["seed"]], [row["class_id"]])[0]
        assert np.array_equal(decode((out / row["path"]).read_bytes()), again)


def test_storage_failure_stops_the_job_naming_shard_and_path(ray_local, tiny_bundle, tmp_path, make_cfg):
    out = tmp_path / "out"
    (out / "images").mkdir(parents=True)
    (out / "images" / "00003").write_text("a file where shard 3's folder goes: every write there fails")
    with pytest.raises(JobFailed, match=r"shard 3 failed: .*StorageError: shard 3: writing .*images/00003"):
        generate(make_cfg(tiny_bundle, str(out), count=1000, shard_size=100), progress=False)
    assert not (out / "_SUCCESS").exists() and "part-00003.parquet" not in part_mtimes(out)


def test_classes_by_name_record_ids_and_resume_as_the_same_job(ray_local, tmp_path, make_cfg):
    """classes.ids may name classes (the bundle's class_names); _job.json records the ids, so the job is the
    one an id-based config makes, and an unknown name stops it before anything is written."""
    from tests.conftest import make_tiny_bundle

    bundle = str(tmp_path / "named")
    make_tiny_bundle(bundle, num_classes=2, class_names=["Food & Drink", "Flags"])
    classes = {"mode": "list", "ids": ["Flags", "Food & Drink", "Flags"]}
    out = tmp_path / "out"
    cfg = make_cfg(bundle, str(out), count=30, shard_size=10, replicas=1, classes=classes)
    summary = generate(cfg, progress=False)
    job = json.loads((out / "_job.json").read_text())
    assert job["config"]["classes"] == {"mode": "list", "ids": [1, 0, 1], "weights": []}
    assert read_rows(out).column("class_id").to_pylist() == [1, 0, 1] * 10
    assert verify(str(out)) == []
    by_id = make_cfg(
        bundle, str(out), count=30, shard_size=10, replicas=1, classes={"mode": "list", "ids": [1, 0, 1]}
    )
    assert generate(by_id, progress=False) == summary  # the same job, already complete
    bad = make_cfg(bundle, str(tmp_path / "bad"), count=30, classes={"mode": "list", "ids": ["Flag"]})
    with pytest.raises(
        ConfigError, match="^classes.ids: 'Flag' is not a class of this model; its classes are"
    ):
        generate(bad, progress=False)
    assert not (tmp_path / "bad").exists()
