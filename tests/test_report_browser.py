"""The report page in a real browser: headless Chromium driven by Playwright, the system browser.

Renders without console errors, opens with the headline panels and the verdict matrix, and the
explorer redraws when the reader picks another metric. Skips cleanly without Playwright or a
Chromium (Debian: `apt-get install chromium`; CI installs both).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.report import build_report
from tests.test_report import build_sweep

CHROMIUM = next((path for name in ("chromium", "chromium-browser", "google-chrome")
                 if (path := shutil.which(name))), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def page_url(tmp_path_factory) -> str:
    pytest.importorskip("altair")
    pytest.importorskip("vl_convert")
    out = build_sweep(tmp_path_factory.mktemp("browser"))
    with pytest.MonkeyPatch.context() as patch:  # every section packed, as large ones are
        patch.setattr("harness.report.page_data.PACK_SECTION_BYTES", 0)
        index = build_report(out, n_boot=50)
    assert 'data-packed="' in index.read_text(encoding="utf-8")
    return index.as_uri()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def _marks(page) -> int:
    """Points the explorer's chart drew (Vega renders into an SVG or a canvas; count SVG paths
    and symbols of its marks, or the canvas' data size as a proxy)."""
    return page.evaluate("""() => {
        const view = document.querySelector('#explorer-chart');
        const svg = view.querySelector('svg');
        if (svg) return svg.querySelectorAll('.mark-symbol path, .mark-line path').length;
        const canvas = view.querySelector('canvas');
        return canvas ? canvas.toDataURL().length : 0;
    }""")


def _open(browser, page_url: str):
    """The page, once the explorer has drawn, and the list its console and page errors go to."""
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(page_url)
    page.wait_for_selector("#explorer-chart canvas, #explorer-chart svg", timeout=20_000)
    return page, errors


def test_page_renders_headlines_matrix_and_a_reacting_explorer(page_url, browser):
    page, errors = _open(browser, page_url)
    # the first screen: headline panels, each with its figure loaded, then the matrix
    headlines = page.locator(".headline")
    assert headlines.count() >= 1
    assert page.evaluate("() => [...document.querySelectorAll('.headline img')]"
                         ".every(img => img.complete && img.naturalWidth > 0)")
    assert page.locator("table.matrix td.shape-jump").count() >= 1
    answer, matrix = page.locator("#answer").bounding_box(), page.locator("#matrix").bounding_box()
    assert answer["x"] < matrix["x"] and abs(answer["y"] - matrix["y"]) < 5  # side by side
    # the explorer reacts: another metric, another picture
    before = _marks(page)
    assert before > 0
    select = page.locator("#explorer-chart select").nth(1)  # task, metric, x axis, shots, labels
    options = select.locator("option").all_inner_texts()
    assert "target_logprob" in options
    picture = page.locator("#explorer-chart").screenshot()
    select.select_option("target_logprob")
    page.wait_for_timeout(500)
    assert page.locator("#explorer-chart").screenshot() != picture
    assert errors == []
    page.close()


def test_first_screen_holds_headlines_and_matrix(page_url, browser, tmp_path):
    """On a 1366 x 768 screen the headline panels and the verdict matrix are both in view (what
    scripts/screenshot_report.py commits as results/report/first-screen.png)."""
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.goto(page_url)
    page.wait_for_selector(".headline img")
    for selector in (".headline img", "table.matrix td.shape-jump"):
        box = page.locator(selector).first.bounding_box()
        assert box is not None and box["y"] + box["height"] / 2 < 768, selector
    matrix = page.locator("table.matrix").bounding_box()
    headline = page.locator(".headline").first.bounding_box()
    assert matrix["x"] > headline["x"] + headline["width"] - 1  # beside the headlines, not below them
    shot = Path(tmp_path) / "first-screen.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 20_000
    page.close()


def test_value_tables_are_drawn_from_the_json_block(page_url, browser):
    """The page's script draws each value table from the packed JSON block: a cell prints the
    summary's mean exactly as a static table would."""
    import json

    from harness.report.text import format_value

    page = browser.new_page()
    page.goto(page_url)
    page.wait_for_selector("[data-values] table")
    row = page.locator("[data-values] tr[data-run]").first
    run = int(row.get_attribute("data-run"))
    folder = page.evaluate("() => document.getElementById('every-run').querySelectorAll('tbody tr')"
                           f"[{run}].cells[0].textContent")
    summary = json.loads((Path(page_url.removeprefix("file://")).parents[1] / folder / "summary.json")
                         .read_text(encoding="utf-8"))
    metric = page.locator("[data-values] th[data-metric]").first.get_attribute("data-metric")
    cell = row.locator("td").nth(4)  # model, family, x, n, then the first metric
    assert cell.inner_text().split("\n")[0].strip() == format_value(summary["metrics"][metric]["mean"])
    mirage = page.locator("[data-mirage] tr[data-run]")  # the mirage check's rows, from the same block
    assert mirage.count() >= 1 and mirage.first.locator("td").count() == 8
    # packed sections were inflated in place, their tables drawn
    assert page.evaluate("() => document.querySelectorAll('[data-packed]').length") == 0
    assert page.evaluate("() => document.querySelectorAll('h2 ~ h3').length") > 0
    # every matrix cell's evidence comes from the same block as its tooltip
    titles = page.evaluate("() => [...document.querySelectorAll('td[data-tip]')].map(td => td.title)")
    assert titles and all(": " in title and "best - worst" in title for title in titles)
    page.close()


def test_explorer_draws_against_each_x_axis(page_url, browser):
    """Every x axis of the explorer's selector draws without an error; training compute (known
    for the synthetic family from its recipe) gives another picture than parameters."""
    page, errors = _open(browser, page_url)
    select = page.locator("#explorer-chart select").nth(2)  # task, metric, x axis, shots, labels
    options = select.locator("option").all_inner_texts()
    assert options == ["parameters", "training step", "training compute", "held-out loss (bits per byte)"]
    pictures, marks = {}, {}
    for option in options:
        select.select_option(option)
        page.wait_for_timeout(400)
        pictures[option], marks[option] = page.locator("#explorer-chart").screenshot(), _marks(page)
    assert marks["training compute"] > 0 and pictures["training compute"] != pictures["parameters"]
    # the synthetic results hold no loss run: no point is drawn on that axis (none placed at 0)
    assert marks["held-out loss (bits per byte)"] == 0
    assert errors == []
    page.close()
