"""What is committed means the same on every machine: no absolute paths, no broken links."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from harness.locations import is_machine_path
from harness.report.page_data import inline_packed

REPO = Path(__file__).resolve().parents[1]


def _tracked() -> list[str]:
    try:
        done = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [name for name in done.stdout.decode().split("\0") if name]


def test_no_tracked_file_holds_the_checkouts_absolute_path():
    tracked = _tracked()
    done = subprocess.run(["git", "grep", "-l", "-F", str(REPO), "--", "."], cwd=REPO,
                          capture_output=True, text=True)
    assert tracked and done.returncode == 1, f"absolute checkout path in: {done.stdout[:2000]}"


def _strings(value, where: str):
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{where}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}")


def test_committed_results_hold_no_machine_path():
    """Every string in committed results JSON is a portable location, not /abs/path."""
    files = [n for n in _tracked() if n.startswith("results/") and n.endswith(".json")]
    assert len(files) > 1000
    bad = []
    for name in files:
        data = json.loads((REPO / name).read_text(encoding="utf-8"))
        bad += [f"{name}:{where}={text}" for where, text in _strings(data, "")
                if is_machine_path(text)]
    assert not bad, bad[:5]


def test_every_link_and_image_of_the_committed_report_exists():
    page = REPO / "results" / "report" / "index.html"
    if not page.exists():
        pytest.skip("no committed report")
    # the page's own markup, not the inline scripts (Vega's code builds URLs in strings)
    shown = inline_packed(page.read_text(encoding="utf-8"))  # packed sections inflated
    html = re.sub(r"<script[^>]*>.*?</script>", "", shown, flags=re.S)
    targets = set(re.findall(r'(?:src|href)="([^"#]+)"', html))
    local = {t for t in targets if not re.match(r"^[a-z]+:", t)}
    missing = sorted(t for t in local if not (page.parent / t).exists())
    assert not missing, f"{len(missing)} missing, e.g. {missing[:5]}"
