"""Browser fixtures of the view tests: Debian's Chromium (installed by tests/tools/ensure_chromium.sh when
missing) driven headless, by its command line or by Playwright."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ENSURE = Path(__file__).resolve().parents[1] / "tools" / "ensure_chromium.sh"


@pytest.fixture(scope="session")
def chromium():
    """The Chromium executable; skips when it is missing and cannot be installed."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        try:
            subprocess.run(["bash", str(ENSURE)], check=True, capture_output=True, timeout=600)
        except (subprocess.SubprocessError, OSError) as exc:
            pytest.skip(f"Chromium is not installed and {ENSURE.name} could not install it ({exc})")
        found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("Chromium is not installed (apt-get install chromium failed)")
    return found


@pytest.fixture(scope="module")
def browser(chromium):
    """A headless Chromium driven by Playwright (the system's browser: Playwright downloads none)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


JOB_ID = "job-curate-1"


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    """(cfg, output Path) of a complete 60-item opensea output with its _job.json (job JOB_ID) and its
    curation page, index.html (written without Ray by the replica, as tests/conftest.py's `collection`)."""
    from genart.generation.job import job_record, write_record
    from genart.storage.output import Output
    from genart.views.gallery import gallery
    from tests.conftest import make_tiny_bundle, market_cfg, run_without_ray

    root = tmp_path_factory.mktemp("curate")
    meta = make_tiny_bundle(str(root / "bundle"))
    cfg = market_cfg(str(root / "bundle"), str(root / "out"))
    job = job_record(cfg, meta, JOB_ID)
    (root / "out").mkdir()
    write_record(Output.open(cfg.output), job)
    run_without_ray(cfg, meta, job)
    gallery(cfg.output)
    return cfg, root / "out"
