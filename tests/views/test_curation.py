"""The curation page (`genart gallery`) in a real headless Chromium driven by Playwright: clicking, the
keyboard, the counter, filters, export (a real download), reload keeps the state, paging at scale."""

from __future__ import annotations

import json
import re

import pytest

from genart.market.picks import load_picks
from genart.views.gallery_page import PAGE, render
from tests.views.conftest import JOB_ID

W, H = 1200, 900


def _open(browser, url: str):
    context = browser.new_context(accept_downloads=True, viewport={"width": W, "height": H})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    return context, page, errors


def _ready(page) -> None:
    """The page has rendered and its first thumbnails have decoded (the rest load lazily on scroll)."""
    page.wait_for_function(
        "() => { const b = document.body.dataset; "
        "return !!b.page && +b.imagesLoaded >= Math.min(6, +b.shown); }"
    )


def _attr(page, name: str) -> str:
    return page.get_attribute("body", name)


def _counter(page) -> tuple[str, str, str]:
    return tuple(page.inner_text(f"#{k}") for k in ("kept", "rejected", "left"))


def _card(page, item_id: int):
    return page.locator(f'.card[data-id="{item_id}"]')


def _shown_ids(page) -> list[int]:
    return [int(x) for x in page.eval_on_selector_all(".card", "cs => cs.map(c => c.dataset.id)")]


def test_keep_reject_by_mouse_and_keyboard_export_reload_and_filter(browser, curated, tmp_path):
    _, out = curated
    url = (out / "index.html").as_uri()
    context, page, errors = _open(browser, url)
    _ready(page)
    assert _counter(page) == ("0", "0", "60") and _shown_ids(page) == list(range(60))
    # crisp pixels: thumbnails are upscaled without smoothing
    assert page.eval_on_selector(".card img", "i => getComputedStyle(i).imageRendering") == "pixelated"

    # mouse: keep 0 and 5, reject 1 (the clicked card becomes the cursor)
    _card(page, 0).locator("button.keep").click()
    _card(page, 5).locator("button.keep").click()
    _card(page, 1).locator("button.reject").click()
    assert _counter(page) == ("2", "1", "57") and _attr(page, "data-cursor") == "1"
    assert _card(page, 0).get_attribute("class") == "card kept"
    assert _card(page, 1).get_attribute("class") == "card cursor rejected"

    # keyboard: right -> 2, k keeps; down one row, x rejects; u undecides; k twice toggles back
    cols = page.evaluate(
        "() => { const c = [...document.querySelectorAll('.card')]; "
        "return c.filter(x => x.offsetTop === c[0].offsetTop).length; }"
    )
    assert cols == 6  # 1200 px wide: six 186 px cards
    page.keyboard.press("ArrowRight")
    assert _attr(page, "data-cursor") == "2"
    page.keyboard.press("k")
    page.keyboard.press("ArrowDown")
    assert _attr(page, "data-cursor") == str(2 + cols)
    page.keyboard.press("x")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("x")
    page.keyboard.press("u")  # 9 undecided again
    page.keyboard.press("ArrowUp")
    page.keyboard.press("k")
    page.keyboard.press("k")  # 3: kept, then undecided again
    page.keyboard.press("ArrowLeft")
    assert _attr(page, "data-cursor") == "2"
    assert _counter(page) == ("3", "2", "55")

    # export: a real download of picks.json, which genart reads back and checks against the output
    with page.expect_download() as dl:
        page.click("#export")
    assert dl.value.suggested_filename == "picks.json"
    saved = tmp_path / "picks.json"
    dl.value.save_as(saved)
    want = {"output": str(out), "job_id": JOB_ID, "keep": [0, 2, 5], "reject": [1, 8]}
    assert json.loads(saved.read_text()) == want
    assert load_picks(str(saved)).model_dump() == want

    # reload: the choices come back from localStorage
    page.reload()
    _ready(page)
    assert _counter(page) == ("3", "2", "55")
    assert [int(i) for i in page.eval_on_selector_all(".card.kept", "cs => cs.map(c => c.dataset.id)")] == [
        0,
        2,
        5,
    ]

    # filters: only kept, only undecided (kept in the #fragment), combined with a trait
    page.select_option("#status", "kept")
    assert _shown_ids(page) == [0, 2, 5] and _attr(page, "data-shown") == "3"
    assert page.evaluate("location.hash") == "#status=kept"
    page.select_option("#status", "undecided")
    assert _shown_ids(page) == [i for i in range(60) if i not in (0, 1, 2, 5, 8)]
    page.select_option('select[data-trait="Class"]', "3")
    assert _shown_ids(page) == [3, 13, 23, 33, 43, 53]
    assert page.inner_text("#shown") == "6" and _counter(page) == ("3", "2", "55")
    # keeping in the undecided view: the counter moves at once
    page.keyboard.press("k")
    assert _counter(page) == ("4", "2", "54")
    page.goto("about:blank")
    page.goto(url + "#status=kept")
    _ready(page)
    assert _shown_ids(page) == [0, 2, 3, 5]
    assert errors == []
    context.close()

    # another browser profile (a fresh context) starts undecided: the state is the browser's, not the page's
    context, page, _ = _open(browser, url)
    _ready(page)
    assert _counter(page) == ("0", "0", "60")
    context.close()


def test_a_page_of_thousands_shows_one_page_at_a_time(browser, tmp_path):
    """450 items on 3 pages: only PAGE cards in the DOM, arrows and PageDown cross pages, images load
    lazily (only those near the viewport)."""
    n = 450
    (tmp_path / "px.png").write_bytes(
        bytes.fromhex(
            "89504e470d0a1a0a0000000d4948445200000001000000010800000000"
            "3a7e9b550000000a49444154789c6360000000020001e221bc330000000049454e44ae426082"
        )
    )
    rows = [[i, "px.png", [str(i % 7)]] for i in range(n)]
    table = {"Kind": {str(k): {"count": 0, "share": 0} for k in range(7)}}
    html = render("t", "", {"output": "/x", "job_id": "j"}, ["Kind"], rows, table, "")
    (tmp_path / "index.html").write_text(html)
    context, page, errors = _open(browser, (tmp_path / "index.html").as_uri())
    page.wait_for_selector("body[data-page='1']")
    assert len(_shown_ids(page)) == PAGE == 200 and page.inner_text("#page") == "1 of 3"
    loaded = int(page.evaluate("[...document.images].filter(i => i.complete && i.naturalWidth).length"))
    assert 0 < loaded < PAGE  # lazy: the rows far below the viewport are not fetched yet
    page.keyboard.press("End")  # not bound: nothing moves
    page.keyboard.press("PageDown")
    assert _attr(page, "data-page") == "2" and _attr(page, "data-cursor") == "200"
    assert _shown_ids(page) == list(range(200, 400))
    page.keyboard.press("ArrowLeft")
    assert _attr(page, "data-page") == "1" and _attr(page, "data-cursor") == "199"
    page.click("#next")
    page.click("#next")
    assert _shown_ids(page) == list(range(400, 450)) and page.inner_text("#page") == "3 of 3"
    page.keyboard.press("x")
    assert _counter(page) == ("0", "1", "449")
    page.select_option('select[data-trait="Kind"]', "3")
    assert _shown_ids(page) == [i for i in range(n) if i % 7 == 3] and page.inner_text("#page") == "1 of 1"
    assert errors == []
    context.close()


@pytest.mark.parametrize("evil", ["</script><script>alert(1)</script>", "<!--", "a&b<c>"])
def test_values_cannot_break_out_of_the_data_block(browser, tmp_path, evil):
    rows = [[0, "x.png", [evil]]]
    html = render("t", "", {"output": "/x", "job_id": evil}, ["K"], rows, {"K": {evil: {"count": 1}}}, "")
    assert len(re.findall(r"</script>", html)) == 2  # the data block's and the script's own
    (tmp_path / "index.html").write_text(html)
    context, page, errors = _open(browser, (tmp_path / "index.html").as_uri())
    page.wait_for_selector(".card")
    assert page.inner_text(".card dd") == evil and errors == []
    context.close()
