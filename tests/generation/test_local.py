"""Quick jobs in the driver (genart/generation/local.py): with nothing to join, a job estimated under
in_process_below_s runs through one GeneratorReplica in this process, without starting Ray, and writes what
Ray replicas write. The CLI runs are real processes (`genart generate`), as a user starts them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from genart.errors import JobFailed
from genart.generation.local import InProcess, may_run_here
from genart.generation.plan import Plan
from genart.generation.runner import generate

GENART = str(Path(sys.executable).with_name("genart"))


def _ray_free() -> None:
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():  # another module's Ray: this module's jobs must not join it
        ray.shutdown()


def _rows(out: Path) -> list[tuple]:
    parts = sorted((out / "metadata").glob("part-*.parquet"))
    table = pq.read_table(parts, columns=["id", "seed", "class_id", "sha256", "path"]) if parts else None
    return sorted(zip(*(table.column(c).to_pylist() for c in ("id", "seed", "class_id", "sha256", "path"))))


@pytest.fixture
def ray_tmpdir():
    """A short RAY_TMPDIR (Unix socket paths stay under 108 bytes): where a Ray these runs start would be."""
    d = tempfile.mkdtemp(prefix="gl-", dir="/tmp")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def _cli(args: list[str], raytmp: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS",)}
    env["RAY_TMPDIR"] = str(raytmp)
    return subprocess.run([GENART, *args], env=env, capture_output=True, text=True, timeout=300)


def test_a_quick_cli_job_runs_without_ray_and_writes_what_ray_replicas_write(
    tiny_bundle, tmp_path, ray_tmpdir
):
    common = ["--set", f"model={tiny_bundle}", "--set", "count=300", "--set", "shard_size=100",
              "--set", "provenance.xmp=false"]  # fmt: skip
    cfg = str(Path(__file__).parents[2] / "configs" / "generate" / "digits.yaml")
    here = _cli(["generate", cfg, "--set", f"output={tmp_path / 'here'}", *common], ray_tmpdir)
    assert here.returncode == 0, here.stderr
    assert "300 items: about" in here.stderr and "generating in this process, without Ray" in here.stderr
    assert list(ray_tmpdir.iterdir()) == []  # no Ray was started
    ray = _cli(
        ["generate", cfg, "--set", f"output={tmp_path / 'ray'}", "--set", "in_process_below_s=0", *common],
        ray_tmpdir,
    )
    assert ray.returncode == 0, ray.stderr
    assert "without Ray" not in ray.stderr and [p.name for p in ray_tmpdir.iterdir()] == ["ray"]
    a, b = _rows(tmp_path / "here"), _rows(tmp_path / "ray")
    assert len(a) == 300 and [r[0] for r in a] == list(range(300))
    assert a == b  # ids, seeds, classes, file bytes (sha256) and paths alike
    assert _cli(["verify", str(tmp_path / "here")], ray_tmpdir).returncode == 0
    success = json.loads((tmp_path / "here" / "_SUCCESS").read_text())
    assert success["generated"] == 300 and success["shards"] == 3


def test_an_in_process_job_resumes_only_its_missing_shard_with_the_same_bytes(
    tiny_bundle, tmp_path, make_cfg
):
    _ray_free()
    out = tmp_path / "out"
    cfg = make_cfg(tiny_bundle, str(out), count=250, shard_size=100, dedupe={"max_distance": 0})
    assert may_run_here(cfg)
    threads = torch.get_num_threads()
    first = generate(cfg, progress=False)
    assert first.generated == 250 and torch.get_num_threads() == threads  # the caller's threads given back
    before = _rows(out)
    (out / "metadata" / "part-00001.parquet").unlink()  # as if the run had died before shard 1's commit
    (out / "_SUCCESS").unlink()
    again = generate(cfg, progress=False)
    assert (again.generated, again.resumed_shards) == (100, 2)
    assert _rows(out) == before  # the near-duplicate index was reloaded from shards 0 and 2: same draws


def test_a_job_estimated_over_the_limit_is_left_to_ray(tiny_bundle, tmp_path, make_cfg):
    _ray_free()
    cfg = make_cfg(tiny_bundle, str(tmp_path / "out"), count=100_000, in_process_below_s=1.0)
    plan = Plan.from_config(cfg, 10)
    job = {"job_id": "j", "model_id": json.loads((Path(tiny_bundle) / "model.json").read_text())["model_id"]}
    threads = torch.get_num_threads()
    assert InProcess.open_if_quick(cfg, plan, job, 100_000) is None  # 100,000 tiny items take over 1 s
    assert torch.get_num_threads() == threads
    here = InProcess.open_if_quick(cfg.model_copy(update={"in_process_below_s": 3600.0}), plan, job, 100_000)
    assert here is not None
    here.close()


@pytest.mark.parametrize(
    "update, env",
    [
        ({"in_process_below_s": 0.0}, {}),
        ({"address": "ray://127.0.0.1:1"}, {}),
        ({"gpus_per_replica": 1.0}, {}),
        ({}, {"RAY_ADDRESS": "127.0.0.1:1"}),
    ],
)
def test_jobs_with_a_cluster_to_join_a_gpu_or_the_opt_out_never_run_here(
    update, env, tmp_path, make_cfg, monkeypatch
):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    cfg = make_cfg("/nowhere", str(tmp_path / "out")).model_copy(update=update)
    assert not may_run_here(cfg)


def test_a_failing_shard_stops_an_in_process_job_naming_shard_and_path(tiny_bundle, tmp_path, make_cfg):
    _ray_free()
    out = tmp_path / "out"
    (out / "images").mkdir(parents=True)
    (out / "images" / "00003").write_text("a file where shard 3's folder goes: every write there fails")
    cfg = make_cfg(tiny_bundle, str(out), count=1000, shard_size=100, replicas=2)
    with pytest.raises(
        JobFailed, match=r"shard 3 failed: StorageError: shard 3: writing .*images/00003.*re-run"
    ):
        generate(cfg, progress=False)
    parts = sorted(p.name for p in (out / "metadata").glob("part-*.parquet"))
    assert "part-00003.parquet" not in parts and "part-00000.parquet" in parts
    assert not (out / "_SUCCESS").exists()


def test_ctrl_c_stops_an_in_process_job_after_its_current_shards_and_it_resumes(
    slow_bundle, tmp_path, ray_tmpdir
):
    """SIGINT to `genart generate` running in the driver: exit 130 within seconds (the replica threads
    finish the shard they hold, take no other), committed parts are whole, the re-run completes the job."""
    import signal
    import time

    out = tmp_path / "out"
    cfg = str(Path(__file__).parents[2] / "configs" / "generate" / "digits.yaml")
    args = [GENART, "generate", cfg, "--set", f"model={slow_bundle}", "--set", f"output={out}",
            "--set", "count=3000", "--set", "shard_size=100", "--set", "batch_size=50"]  # fmt: skip
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "RAY_TMPDIR": str(ray_tmpdir)}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list((out / "metadata").glob("part-*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert time.monotonic() - t0 < 20  # two shards of 100 at most, not the other 28
    assert "without Ray" in err and not (out / "_SUCCESS").exists()
    done = len(_rows(out))
    assert 100 <= done < 3000 and done % 100 == 0  # whole shards only
    again = _cli(["generate", cfg, "--set", f"model={slow_bundle}", "--set", f"output={out}",
                  "--set", "count=3000", "--set", "shard_size=100", "--set", "batch_size=50"], ray_tmpdir)  # fmt: skip
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout.strip().splitlines()[-1])
    assert summary["resumed_shards"] == done // 100 and summary["generated"] == 3000 - done
    assert [r[0] for r in _rows(out)] == list(range(3000))


def test_a_filtered_in_process_job_keeps_the_same_draws_on_one_or_two_threads(tmp_path, make_cfg):
    """The discriminator quality filter and the near-duplicate index on replica threads: the kept draws, their
    seeds and bytes are those of a one-thread run (the index's lock serialises claims as its actor does)."""
    from tests.generation.test_exact import make_bundle

    _ray_free()
    bundle = make_bundle(str(tmp_path / "bundle"), "dcgan", discriminator=True)
    filters = {
        "filter": {"min_score": 0.5, "scorer": "discriminator"},
        "dedupe": {"max_distance": 0},
        "provenance": {"xmp": False},
    }  # fmt: skip  (XMP carries the job_id: compare the bytes)
    rows = {}
    for n in (1, 2):
        out = tmp_path / f"r{n}"
        summary = generate(make_cfg(bundle, str(out), count=300, shard_size=100, replicas=n, **filters),
                           progress=False)  # fmt: skip
        assert summary.generated == 300 and summary.rejected_score > 0  # the filter redrew
        rows[n] = _rows(out)
    assert rows[1] == rows[2] and len(rows[1]) == 300
