"""`genart up | status | down` with a real local Ray: warm replicas serve later generate / walk runs with the
same bytes as a cold run, a changed bundle is loaded again, a stale state falls back to cold once, two
generates share the replicas, and `down` stops exactly what `up` started. Every command runs as the user
runs it (the installed `genart`, a subprocess) with GENART_HOME in a temp dir; every wait is bounded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

GENART = str(Path(sys.executable).with_name("genart"))
WAIT_S = 400  # per command: the shared 2-core machine can be slow to start Ray


def _env(home: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "GENART_WARM")}
    return {**env, "GENART_HOME": str(home), **extra}


def _genart(home: Path, *args: str, cwd: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [GENART, *args], cwd=cwd, env=_env(home, **env), capture_output=True, text=True, timeout=WAIT_S
    )


def _rows(output: Path) -> list[tuple]:
    """(id, seed, class_id, path, sha256 of the decoded pixels) of every committed item, by id: what must not
    depend on warmth. Pixels, not file bytes: each output is its own job, and its job_id is in every file's
    XMP disclosure."""
    import hashlib

    import numpy as np
    from PIL import Image

    t = pq.read_table(output / "metadata").sort_by("id")
    cols = ["id", "seed", "class_id", "path"]
    rows = list(zip(*(t.column(c).to_pylist() for c in cols)))
    return [(*r, hashlib.sha256(np.asarray(Image.open(output / r[3])).tobytes()).hexdigest()) for r in rows]


def _regenerated(bundle: Path, rows: list[tuple]) -> list[tuple]:
    """`rows` (as _rows gives them) with each item's pixels regenerated in this process from `bundle`."""
    import hashlib

    import genart

    images = genart.load_bundle(str(bundle)).generate([r[1] for r in rows], [r[2] for r in rows])
    return [(*r[:4], hashlib.sha256(image.tobytes()).hexdigest()) for r, image in zip(rows, images)]


def _config(where: Path, count: int = 120) -> Path:
    cfg = where / "gen.yaml"
    cfg.write_text(
        "kind: generate\nmodel: bundle\noutput: out\n"
        f"count: {count}\nreplicas: 2\nshard_size: 50\nbatch_size: 32\n"
    )
    return cfg


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """A working folder with a tiny bundle, `genart up --model bundle` running with GENART_HOME in it;
    `genart down` at teardown (by the state file: only what up started)."""
    from tests.conftest import make_tiny_bundle

    where = tmp_path_factory.mktemp("warm")
    home = where / "home"
    make_tiny_bundle(str(where / "bundle"))
    _config(where)
    p = _genart(home, "up", "--model", "bundle", cwd=where)
    assert p.returncode == 0, p.stderr
    yield where, home
    _genart(home, "down", cwd=where)


def test_up_status_generate_reuses_and_matches_cold(warm):
    where, home = warm
    state = json.loads((home / "warm.json").read_text())
    assert state["gcs"].startswith("127.0.0.1:") and state["namespace"] == "genart-warm"
    assert (home / "warm.json").stat().st_mode & 0o777 == 0o600
    assert (
        Path(state["token_path"]).stat().st_mode & 0o777 == 0o600 and (home.stat().st_mode & 0o777) == 0o700
    )
    s = _genart(home, "status", cwd=where)
    assert s.returncode == 0, s.stderr
    assert f"genart up: Ray at {state['gcs']} (PID {state['pid']}" in s.stdout
    assert f"{where / 'bundle'}  model_id " in s.stdout and "  replicas 2  " in s.stdout

    g = _genart(home, "generate", "gen.yaml", "--set", "output=warm1", cwd=where)
    assert g.returncode == 0, g.stderr
    assert "warm replicas: 2 of 2 serve this job (bundle " in g.stderr
    c = _genart(home, "generate", "gen.yaml", "--set", "output=cold1", cwd=where, GENART_WARM="0")
    assert c.returncode == 0, c.stderr
    assert "warm replicas" not in c.stderr
    rows = _rows(where / "warm1")
    assert len(rows) == 120 and rows == _rows(where / "cold1")
    assert json.loads(g.stdout.strip().splitlines()[-1])["generated"] == 120
    s2 = _genart(home, "status", cwd=where)
    assert "  jobs 1  shards 3  " in s2.stdout  # 120 images in shards of 50


def test_walk_on_the_warm_replica_writes_the_cold_bytes(warm):
    where, home = warm
    args = ["walk", "bundle", "--seeds", "1", "2", "--class", "3", "--frames", "4", "--scale", "1"]
    w = _genart(home, *args, "--out", "warm.gif", cwd=where)
    c = _genart(home, *args, "--out", "cold.gif", cwd=where, GENART_WARM="0")
    assert w.returncode == 0 and c.returncode == 0, (w.stderr, c.stderr)
    assert "warm replica: walk_frames on bundle bundle" in w.stderr and "warm replica" not in c.stderr
    assert (where / "warm.gif").read_bytes() == (where / "cold.gif").read_bytes()
    bad = _genart(home, "walk", "bundle", "--seeds", "1", "2", "--out", "x.gif", cwd=where)
    assert bad.returncode == 2 and "this model is class-conditional: pass --class 0..9" in bad.stderr


def test_two_generates_share_the_warm_replicas(warm):
    where, home = warm
    procs = [
        subprocess.Popen(
            [GENART, "generate", "gen.yaml", "--set", f"output=both{i}", "--set", f"seed={i}"],
            cwd=where,
            env=_env(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in (0, 1)
    ]
    outs = [p.communicate(timeout=WAIT_S) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert all("warm replicas: 2 of 2 serve this job" in err for _, err in outs)
    assert _rows(where / "both0") == _rows(where / "cold1")  # seed 0: the cold run's items
    assert _rows(where / "both1") != _rows(where / "both0") and len(_rows(where / "both1")) == 120


def test_a_changed_bundle_is_loaded_again_not_reused(warm, tmp_path):
    from tests.conftest import make_tiny_bundle

    where, home = warm
    make_tiny_bundle(str(tmp_path / "b"))  # a bundle folder the warm replicas have not seen
    make_tiny_bundle(str(tmp_path / "b"), seed=7)  # retrained in place: a new model_id at the same URI
    cfg = where / "gen.yaml"
    first = _genart(
        home, "generate", str(cfg), "--set", f"model={tmp_path / 'b'}", "--set", "output=nb1", cwd=where
    )
    assert first.returncode == 0 and "2 loaded" in first.stderr and "(not loaded yet)" in first.stderr, (
        first.stderr
    )
    make_tiny_bundle(str(tmp_path / "b"), seed=8)
    again = _genart(
        home, "generate", str(cfg), "--set", f"model={tmp_path / 'b'}", "--set", "output=nb2", cwd=where
    )
    assert again.returncode == 0 and "(the bundle changed on disk)" in again.stderr, again.stderr
    # the reloaded replica made the new weights' pixels: every item as the bundle regenerates it here (what a
    # cold run writes, test_up_status_generate_reuses_and_matches_cold; no third Ray start for it)
    rows = _rows(where / "nb2")
    assert len(rows) == 120 and rows == _regenerated(tmp_path / "b", rows)
    assert _rows(where / "nb1") != _rows(where / "nb2")
    # weights replaced behind model.json's back: refused as a cold run refuses it
    weights = tmp_path / "b" / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 1
    weights.write_bytes(bytes(blob))
    bad = _genart(
        home, "generate", str(cfg), "--set", f"model={tmp_path / 'b'}", "--set", "output=nb4", cwd=where
    )
    assert bad.returncode == 1 and "the weights were changed or truncated: re-export the bundle" in bad.stderr


def test_a_stale_state_runs_cold_and_says_so_once(tmp_path):
    from tests.conftest import make_tiny_bundle

    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    make_tiny_bundle(str(tmp_path / "bundle"))
    _config(tmp_path, count=40)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    import psutil

    started = psutil.Process(gone.pid).create_time()
    gone.wait(timeout=60)
    state = {"pid": gone.pid, "pid_started": started, "gcs": "127.0.0.1:9", "token_path": "", "temp_dir": "/nonexistent",
             "log_path": "", "started_at": "2026-01-01T00:00:00Z", "namespace": "genart-warm", "format": "genart-warm/1"}  # fmt: skip
    (home / "warm.json").write_text(json.dumps(state))
    first = _genart(home, "generate", "gen.yaml", "--set", "output=o1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert (
        first.stderr.count(
            f"genart up's Ray (PID {gone.pid}, started 2026-01-01T00:00:00Z) is no longer running: running cold"
        )
        == 1
    )
    assert not (home / "warm.json").exists()
    second = _genart(home, "generate", "gen.yaml", "--set", "output=o2", cwd=tmp_path)
    assert second.returncode == 0 and "genart up" not in second.stderr and "warm" not in second.stderr
    assert _rows(tmp_path / "o1") == _rows(tmp_path / "o2")
    assert _genart(home, "status", cwd=tmp_path).stdout == "genart up: not running\n"
    assert _genart(home, "down", cwd=tmp_path).stdout == "genart up is not running; nothing to stop\n"


def test_down_stops_exactly_what_up_started(tmp_path):
    import psutil

    from tests.conftest import make_tiny_bundle

    home = tmp_path / "home"
    make_tiny_bundle(str(tmp_path / "bundle"))
    bystander = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
    )
    try:
        assert _genart(home, "up", "--model", "bundle", "--replicas", "1", cwd=tmp_path).returncode == 0
        state = json.loads((home / "warm.json").read_text())
        status = _genart(home, "status", cwd=tmp_path).stdout
        replica_pid = int(status.rsplit("pids ", 1)[1].split()[0])
        ours = [psutil.Process(state["pid"]), psutil.Process(replica_pid)]
        d = _genart(home, "down", cwd=tmp_path)
        assert (
            d.returncode == 0
            and d.stdout == f"stopped genart up's Ray at {state['gcs']} (PID {state['pid']})\n"
        )
        _, alive = psutil.wait_procs(ours, timeout=60)
        assert alive == []
        assert bystander.poll() is None  # not ours: untouched
        assert not (home / "warm.json").exists() and not Path(state["temp_dir"]).exists()
        assert not Path(state["token_path"]).exists()
        from genart.warm_state import answers

        deadline = time.monotonic() + 30
        while answers(state["gcs"], 0.5) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not answers(state["gcs"], 0.5)
        assert _genart(home, "down", cwd=tmp_path).stdout == "genart up is not running; nothing to stop\n"
    finally:
        bystander.kill()
        bystander.wait(timeout=30)


def test_up_bad_input(tmp_path):
    home = tmp_path / "home"
    p = _genart(home, "up", "--model", "bundle", "--replicas", "0", cwd=tmp_path)
    assert p.returncode == 2 and "--replicas must be 1..64 (warm replicas per bundle), got 0" in p.stderr
    p = _genart(home, "up", "--model", "nobundle", cwd=tmp_path)
    assert p.returncode == 1 and "bundle nobundle has no model.json" in p.stderr
    assert not (home / "warm.json").exists()  # checked before any Ray starts
    for cmd in ("up", "status", "down"):
        assert _genart(home, cmd, "--help", cwd=tmp_path).returncode == 0


def test_a_killed_warm_replica_is_replaced_under_its_name(warm):
    """A detached actor's name is taken for a moment after it dies (ray#20611): the next job recreates it
    (bounded retries) and writes the same bytes as before the kill."""
    import psutil

    where, home = warm
    before = _genart(home, "generate", "gen.yaml", "--set", "output=before_kill", cwd=where)
    assert before.returncode == 0, before.stderr
    status = _genart(home, "status", cwd=where).stdout
    line = next(ln for ln in status.splitlines() if ln.startswith(f"  {where / 'bundle'}  "))
    victim = int(line.rsplit("pids ", 1)[1].split(",")[0])
    proc = psutil.Process(victim)
    proc.kill()
    proc.wait(timeout=60)
    g = _genart(home, "generate", "gen.yaml", "--set", "output=after_kill", cwd=where)
    assert g.returncode == 0, g.stderr
    assert "warm replicas: 1 of 2 reused; 1 loaded" in g.stderr and "(not loaded yet)" in g.stderr
    assert _rows(where / "after_kill") == _rows(where / "before_kill")
