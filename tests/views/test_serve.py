"""`genart gallery OUT --serve` as a user runs it (a subprocess): the token is required, the picks are
checked and written to OUT/curation/picks.json and read back, the page saves as it is curated (Chromium),
and Ctrl-C stops it cleanly."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from genart.market.picks import load_picks
from tests.views.conftest import JOB_ID


def _request(url: str, method: str = "GET", data: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture
def served(curated, tmp_path):
    """(url, output Path, process) of `genart gallery OUT --serve` on a copy of the curated output."""
    _, src = curated
    out = tmp_path / "out"
    shutil.copytree(src, out)
    proc = subprocess.Popen(
        [sys.executable, "-m", "genart.cli", "gallery", str(out), "--serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            m = re.match(
                r"curate at (http://127\.0\.0\.1:\d+/[A-Za-z0-9_-]+/index\.html) \(Ctrl-C to stop\)", line
            )
            if m:
                break
        else:
            pytest.fail(f"no URL printed: {''.join(lines)}")
        assert lines[0] == f"{out}/index.html (60 items)\n"
        yield m.group(1), out, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def _picks(out: Path, keep, reject, job_id: str = JOB_ID) -> bytes:
    return json.dumps({"output": str(out), "job_id": job_id, "keep": keep, "reject": reject}).encode()


def test_the_token_is_required_picks_are_checked_written_and_read_back(served):
    url, out, proc = served
    base = url.rsplit("/", 2)[0]
    token = url.rsplit("/", 2)[1]
    assert len(token) >= 32
    # without the token, or with another, everything is refused
    for bad in (
        f"{base}/index.html",
        f"{base}/",
        f"{base}/x{token}/index.html",
        f"{base}/{token[:-1]}/index.html",
    ):
        assert _request(bad)[0] == 403, bad
    assert _request(f"{base}/curation/picks.json", "PUT", _picks(out, [1], []))[0] == 403
    assert not (out / "curation").exists()

    status, page = _request(url)
    assert status == 200 and b'data-save="curation/picks.json"' in page
    assert _request(f"{base}/{token}") == (200, page)  # redirected to /TOKEN/index.html
    img = "images/00000/0000000007.png"
    assert _request(f"{base}/{token}/{img}") == (200, (out / img).read_bytes())
    # only what the page needs: no job record, no hidden or parent paths
    for rel in ("_job.json", "metadata/part-00000.parquet", "images/../_job.json", ".x"):
        assert _request(f"{base}/{token}/{rel}")[0] == 404, rel
    assert _request(f"{base}/{token}/curation/picks.json")[0] == 404  # none saved yet

    status, body = _request(f"{base}/{token}/curation/picks.json", "PUT", _picks(out, [7, 3], [4]))
    assert status == 200, body
    saved = out / "curation" / "picks.json"
    want = {"output": str(out), "job_id": JOB_ID, "keep": [3, 7], "reject": [4]}
    assert json.loads(saved.read_text()) == want and json.loads(body) == want
    assert _request(f"{base}/{token}/curation/picks.json") == (200, saved.read_bytes())
    assert load_picks(str(saved)).keep == [3, 7]

    # refused picks leave the saved file as it was, with a reason
    for data, message in [
        (_picks(out, [1], [], "job-other"), "the picks sent are for"),
        (_picks(out, [60], []), "keep names id 60 (1 unknown ids)"),
        (b"{not json", "the picks sent is not valid JSON"),
        (_picks(out, [1], [1]), "id 1 is both kept and rejected"),
    ]:
        status, body = _request(f"{base}/{token}/curation/picks.json", "PUT", data)
        assert status == 422 and message in body.decode(), body
    # an oversized body is refused from its Content-Length, before it is read
    conn = http.client.HTTPConnection("127.0.0.1", int(base.rsplit(":", 1)[1]), timeout=30)
    conn.putrequest("PUT", f"/{token}/curation/picks.json")
    conn.putheader("Content-Length", str(64 * 2**20 + 1))
    conn.endheaders()
    assert conn.getresponse().status == 413
    conn.close()
    assert json.loads(saved.read_text()) == want
    assert _request(f"{base}/{token}/images/x.png", "PUT", b"1")[0] == 405

    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0 and rest.endswith("stopped\n") and "Traceback" not in rest, rest
    port = int(base.rsplit(":", 1)[1])
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # the port is closed


def test_the_served_page_saves_as_it_is_curated(served, browser):
    url, out, proc = served
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("body[data-server-read='1']")
    page.locator('.card[data-id="4"] button.keep').click()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("x")
    page.wait_for_function("+document.body.dataset.saved >= 1")
    page.wait_for_function(
        "() => fetch('curation/picks.json').then(r => r.json()).then(p => p.reject.length === 1)"
    )
    saved = json.loads((out / "curation" / "picks.json").read_text())
    assert saved == {"output": str(out), "job_id": JOB_ID, "keep": [4], "reject": [5]}
    context.close()
    # a fresh browser profile takes its picks from the server
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("body[data-server-read='1']")
    page.wait_for_function("document.body.dataset.kept === '1'")
    assert page.inner_text("#rejected") == "1" and page.inner_text("#left") == "58"
    context.close()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
