"""The first screen of a built report, as a reader sees it: results/report/first-screen.png.

Usage:
    .venv/bin/python scripts/screenshot_report.py                       # results/report/index.html
    .venv/bin/python scripts/screenshot_report.py OUT/report/index.html --size 1366x768

Opens the page in headless Chromium (the system browser, `apt-get install chromium`) through
Playwright, waits for the headline figures and the explorer, and saves the viewport (not the
whole page) as first-screen.png beside the page.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

VIEWPORT = (1366, 768)


def screenshot(index: Path, size: tuple[int, int] = VIEWPORT) -> Path:
    from playwright.sync_api import sync_playwright

    chromium = next((path for name in ("chromium", "chromium-browser", "google-chrome")
                     if (path := shutil.which(name))), None)
    if chromium is None:
        raise SystemExit("no Chromium installed (apt-get install chromium)")
    shot = index.parent / "first-screen.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": size[0], "height": size[1]})
        page.goto(index.resolve().as_uri())
        page.wait_for_selector(".headline img")
        page.wait_for_selector("#explorer-chart svg, #explorer-chart canvas", timeout=30_000)
        page.wait_for_function("() => [...document.querySelectorAll('.headline img')]"
                               ".every(img => img.complete)")
        page.screenshot(path=str(shot))
        browser.close()
    return shot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", nargs="?", type=Path, default=Path("results/report/index.html"))
    parser.add_argument("--size", default=f"{VIEWPORT[0]}x{VIEWPORT[1]}", help="viewport, WIDTHxHEIGHT")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    print(screenshot(args.index, (width, height)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
