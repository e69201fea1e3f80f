"""preview, gallery and walk on hostile outputs and arguments: paths and URIs inside an output name nothing
outside it, every value on the page is escaped, every size is bounded, and a broken output is one clear
line. No Ray."""

from __future__ import annotations

import http.server
import io
import json
import shutil
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from genart.cli import main
from genart.errors import ConfigError
from genart.generation.runner import job_record
from genart.views import preview as preview_mod
from genart.views.limits import MAX_WALK_PIXELS
from genart.views.walk import WalkSpec

PART0 = "metadata/part-00000.parquet"


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def out(collection, tmp_path):
    """A fresh copy of the 60-item opensea collection, with the _job.json the runner writes."""
    cfg, meta, src = collection
    dst = shutil.copytree(src, tmp_path / "out")
    (dst / "_job.json").write_text(json.dumps(job_record(cfg, meta, "job-1")))
    for name in ("preview.png", "index.html"):
        (dst / name).unlink(missing_ok=True)
    return dst


def _set(out, rel: str, column: str, fn, type_=None):
    table = pq.read_table(out / rel)
    i = table.schema.get_field_index(column)
    field = table.schema.field(i) if type_ is None else pa.field(column, type_)
    pq.write_table(
        table.set_column(i, field, pa.array(fn(table.column(column).to_pylist()), field.type)), out / rel
    )


def _one_line_error(res, code: int, text: str) -> None:
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit), res.exception
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and text in lines[0], res.output


@pytest.mark.parametrize("command", ["preview", "gallery"])
@pytest.mark.parametrize("outside", ["../x.png", "ABS"])
def test_a_row_path_outside_the_output_is_refused(out, command, outside):
    secret = out.parent / "x.png"
    shutil.copy(out / "images/00000/0000000003.png", secret)
    path = outside if outside != "ABS" else str(secret)
    _set(out, PART0, "path", lambda v: [path if i == 3 else p for i, p in enumerate(v)])
    res = run(command, str(out))
    _one_line_error(
        res,
        1,
        f"id 3's path {path!r} is not the layout's 'images/00000/0000000003.png' (a tampered or foreign",
    )
    assert not (out / "preview.png").exists() and not (out / "index.html").exists()


class _Counter(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 - the http.server API
        _Counter.hits.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Counter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Counter.hits = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_a_model_uri_inside_the_output_is_not_fetched(out, http_server, collection):
    shutil.rmtree(out / "tokens")  # traits computed from the pixels: class names are looked for
    job = json.loads((out / "_job.json").read_text())
    job["config"]["model"] = f"{http_server}/bundle"
    (out / "_job.json").write_text(json.dumps(job))
    assert run("preview", str(out)).exit_code == 0
    res = run("gallery", str(out), "--limit", "5")
    assert res.exit_code == 0, res.output
    assert _Counter.hits == []
    # class names come from a bundle only when the user names one
    cfg, meta, _ = collection
    res = run("gallery", str(out), "--limit", "5", "--model", cfg.model)
    assert res.exit_code == 0 and _Counter.hits == []
    page = (out / "index.html").read_text()
    assert f'<option value="{meta["class_names"][3]}">' in page


def test_string_ids_are_refused_not_written_into_the_page(out):
    evil = '0"><img src=x onerror=alert(1)>'
    for k in range(3):
        rel = f"metadata/part-{k:05d}.parquet"
        _set(out, rel, "id", lambda v: [evil if i == 0 else str(x) for i, x in enumerate(v)], pa.string())
    res = run("gallery", str(out))
    _one_line_error(res, 1, "the id column is string, not integers")
    assert not (out / "index.html").exists()


def test_every_value_on_the_page_is_escaped(out):
    token = json.loads((out / "tokens/0.json").read_text())
    token["attributes"] = [{"trait_type": "<b>Kind</b>", "value": '"><script>alert(1)</script>'}]
    (out / "tokens/0.json").write_text(json.dumps(token))
    (out / "collection.json").write_text(
        json.dumps({"name": "<script>x</script>", "description": "<img src=x onerror=y>", "item_count": 60})
    )
    assert run("gallery", str(out), "--limit", "3").exit_code == 0
    page = (out / "index.html").read_text()
    assert "<script>alert" not in page and "<script>x" not in page and "<img src=x" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "&lt;b&gt;Kind&lt;/b&gt;" in page
    # a collection.json that is not an object falls back to the folder's name
    (out / "collection.json").write_text("[1]")
    assert run("gallery", str(out), "--limit", "3").exit_code == 0
    assert "<title>out</title>" in (out / "index.html").read_text()


@pytest.mark.parametrize("command", ["preview", "gallery"])
def test_a_decompression_bomb_is_not_decoded(out, command):
    buf = io.BytesIO()
    Image.new("L", (12000, 12000)).save(buf, format="PNG", optimize=True)
    assert len(buf.getvalue()) < 300_000  # small on disk, 144 M pixels decoded
    (out / "images/00000/0000000002.png").write_bytes(buf.getvalue())
    res = run(command, str(out))
    _one_line_error(
        res, 1, "id 2: images/00000/0000000002.png is 12000x12000, its row says 32x32: not decoded"
    )


def test_an_image_over_the_pixel_bound_without_row_sizes(tmp_path):
    """A synthesized dataset (no width/height columns): images over MAX_IMAGE_PIXELS are refused."""
    buf = io.BytesIO()
    Image.new("L", (1000, 1000)).save(buf, format="PNG")
    (tmp_path / "ds/data").mkdir(parents=True)
    pq.write_table(
        pa.table({"image": [{"bytes": buf.getvalue(), "path": "a.png"}], "label": [1]}),
        tmp_path / "ds/data/part-0.parquet",
    )
    res = run("preview", str(tmp_path / "ds"))
    _one_line_error(res, 1, "id 0: the image of id 0 is 1000x1000, over 262144 pixels: not decoded")


@pytest.mark.parametrize("command", ["preview", "gallery"])
def test_a_missing_image_is_one_clear_line(out, command):
    (out / "images/00001/0000000030.png").unlink()
    res = run(command, str(out))
    _one_line_error(res, 1, f"{out}: id 30: images/00001/0000000030.png is missing; run genart verify {out}")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "_job.json is not valid JSON ("),
        (
            lambda j: {**j, "config": {k: v for k, v in j["config"].items() if k != "seed"}},
            "config.seed is missing",
        ),
        (lambda j: {k: v for k, v in j.items() if k != "model_id"}, "_job.json: model_id is missing"),
        ("[]", "_job.json is not a JSON object"),
    ],
)
def test_a_broken_or_incomplete_job_record_is_one_clear_line(out, content, message):
    job = json.loads((out / "_job.json").read_text())
    (out / "_job.json").write_text(content if isinstance(content, str) else json.dumps(content(job)))
    for command in ("preview", "gallery"):
        _one_line_error(run(command, str(out)), 1, message)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scale", "1000000"], "Invalid value for '--scale': 1000000 is not in the range 1<=x<=16"),
        (["--frames", "1000000"], "Invalid value for '--frames': 1000000 is not in the range 1<=x<=1000"),
        (["--frame-ms", "-5"], "Invalid value for '--frame-ms': -5 is not in the range 10<=x<=60000"),
        (["--frames", "0"], "Invalid value for '--frames': 0 is not in the range 1<=x<=1000"),
        (["--frames", "400", "--seeds", "3"], "--frames 400 x 3 seeds = 1200 frames; at most 1000 in all"),
        (["--seeds", "-1"], "--seeds: -1 is outside 0..9223372036854775807"),
        (
            ["--seeds", "18446744073709551616"],
            "--seeds: 18446744073709551616 is outside 0..9223372036854775807",
        ),
        (["--seeds", ",".join(str(i) for i in range(101))], "--seeds: 103 seeds; at most 100"),
        (
            ["--frames", "300", "--scale", "16"],
            f"--scale 16, 600 frames of 512x512: over {MAX_WALK_PIXELS} pixels in all",
        ),
    ],
)
def test_walk_sizes_are_bounded(collection, tmp_path, args, message):
    cfg, _, _ = collection
    res = run("walk", cfg.model, "--seeds", "1", "2", "--class", "1", *args, "--out", str(tmp_path / "w.gif"))
    assert res.exit_code == 2 and message in res.output, res.output
    assert "Traceback" not in res.output and not (tmp_path / "w.gif").exists()


def test_walk_spec_bounds_hold_without_the_cli():
    for kwargs in ({"frames": 0}, {"scale": 17}, {"frame_ms": -5}, {"frames": 1001}):
        with pytest.raises(ConfigError):
            WalkSpec((1, 2), **kwargs)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["preview", "--limit", "0"], "Invalid value for '--limit': 0 is not in the range 1<=x<=10000"),
        (
            ["preview", "--limit", "10001"],
            "Invalid value for '--limit': 10001 is not in the range 1<=x<=10000",
        ),
        (["gallery", "--limit", "1000000"], "Invalid value for '--limit': 1000000 is not in the range"),
    ],
)
def test_view_limits_are_bounded(out, args, message):
    res = run(args[0], str(out), *args[1:])
    assert res.exit_code == 2 and message in res.output, res.output


def test_held_pixels_are_bounded(out, monkeypatch):
    monkeypatch.setattr(preview_mod, "MAX_HELD_PIXELS", 32 * 32 * 10)
    res = run("preview", str(out), "--limit", "20")
    _one_line_error(res, 2, "--limit 20: 11 items of 32x32 would exceed 10240 pixels; lower --limit")


def test_a_named_model_that_cannot_be_read_is_an_error_not_a_silent_fallback(out, tmp_path):
    res = run("gallery", str(out), "--model", str(tmp_path / "no-bundle"))
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert str(tmp_path / "no-bundle") in res.output and not (out / "index.html").exists()


@pytest.mark.parametrize("command", ["preview", "gallery"])
def test_a_truncated_metadata_part_is_named_in_one_line(out, command):
    data = (out / PART0).read_bytes()
    (out / PART0).write_bytes(data[:300])
    _one_line_error(
        run(command, str(out)), 1, f"{out}: {PART0} is not a readable Parquet file (truncated or corrupt: "
    )


@pytest.mark.parametrize("command", ["preview", "gallery"])
@pytest.mark.parametrize(
    "text", ["[" * 100_000 + "]" * 100_000, '{"config": ' + "9" * 5000 + "}"], ids=["deep", "huge-int"]
)
def test_hostile_json_in_the_job_record_is_one_line(out, command, text):
    (out / "_job.json").write_text(text)
    _one_line_error(run(command, str(out)), 1, f"{out}/_job.json is not valid JSON (")


def test_hostile_collection_json_falls_back_to_the_folder_name(out):
    (out / "collection.json").write_text("[" * 100_000 + "]" * 100_000)
    res = run("gallery", str(out))
    assert res.exit_code == 0, res.output
    assert "<title>out</title>" in (out / "index.html").read_text()
