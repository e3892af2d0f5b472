"""Crash-safe writes: whole files or none, with the permissions of any other file."""

from __future__ import annotations

import os

import pytest

from harness.errors import HarnessError
from harness.io import atomic_write_json, atomic_write_text


def test_atomic_write_leaves_no_temporary_and_uses_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "summary.json", {"n": 1})
        atomic_write_text(tmp_path / "index.html", "<p>x</p>")
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html", "summary.json"]
    for name in ("summary.json", "index.html"):  # mkstemp alone would give 0600
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "summary.json").read_text() == '{\n "n": 1\n}\n'


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    target.write_text("old")

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(HarnessError, match="cannot write .*No space left"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]
