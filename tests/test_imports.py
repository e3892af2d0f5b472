"""The direction of imports inside `harness/` (DESIGN.md, "Architecture"): data flows task ->
requests -> model -> scores -> report, and no room reaches back up the chain.

The imports are read from the source (AST, every `import` statement, also those inside
functions), so the test needs neither torch nor the modules themselves to import.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from harness import metrics

PACKAGE = Path(__file__).resolve().parents[1] / "harness"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return ((PACKAGE.parent / relative).with_suffix(".py").is_file()
            or (PACKAGE.parent / relative / "__init__.py").is_file())


def imports_of(source: str, package: str) -> set[tuple[str, str | None]]:
    """(module, imported name or None) for every import in `source`.

    `from harness import tasks` yields ("harness.tasks", None): the name is a module.
    Relative imports are resolved against `package`.
    """
    found: set[tuple[str, str | None]] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add((full, None) if _is_module(full) else (base, alias.name))
    return found


def harness_imports() -> dict[str, set[tuple[str, str | None]]]:
    table = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        table[name] = {(m, n) for m, n in imports_of(path.read_text(encoding="utf-8"), package)
                       if m == "harness" or m.startswith("harness.")}
    return table


def within(module: str, room: str) -> bool:
    return module == room or module.startswith(room + ".")


def violations(importer_room: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(f"{importer} imports {module}"
                  for importer, imported in harness_imports().items() if within(importer, importer_room)
                  for module, _ in imported if any(within(module, room) for room in forbidden))


def test_the_walker_sees_nested_relative_and_from_imports():
    source = ("import harness.tasks\n"
              "def f():\n    from harness import metrics\n    from ..runner import evaluate\n"
              "from harness.metrics import summarize\n")
    found = imports_of(source, "harness.models")
    assert ("harness.tasks", None) in found
    assert ("harness.metrics", None) in found  # lazily, inside a function
    assert ("harness.runner", "evaluate") in found  # relative, resolved
    assert ("harness.metrics", "summarize") in found


def test_models_never_import_tasks_metrics_runner_or_report():
    assert violations("harness.models", ("harness.tasks", "harness.metrics", "harness.runner",
                                         "harness.report")) == []


def reached_from(room: str) -> set[str]:
    """Every harness module that the modules of `room` import, directly or through others."""
    table, seen = harness_imports(), set()
    todo = [name for name in table if within(name, room)]
    while todo:
        name = todo.pop()
        if name in seen or name not in table:
            continue
        seen.add(name)
        todo.extend(module for module, _ in table[name])
    return seen


def test_models_do_not_reach_tasks_through_another_module():
    """Transitively too: whatever models/ imports must not lead back to task code."""
    forbidden = ("harness.tasks", "harness.metrics", "harness.runner", "harness.report")
    assert sorted(m for m in reached_from("harness.models")
                  if any(within(m, room) for room in forbidden)) == []


def test_the_report_never_reaches_a_model_backend():
    """The report reads a model's lineage from the registry (names, family.json), and
    nothing that loads a model, even through another module."""
    backends = ("harness.models.hf", "harness.models.hf_load", "harness.models.hf_score",
                "harness.models.hf_generate", "harness.runner", "harness.sweep")
    assert sorted(m for m in reached_from("harness.report") if m in backends) == []


def test_the_plan_decides_and_never_executes():
    """harness.plan resolves names and renders prompts; running, scoring and loading models
    are its consumers' work."""
    assert violations("harness.plan", ("harness.runner", "harness.sweep", "harness.metrics",
                                       "harness.report", "harness.models.hf")) == []
    assert {m for m, _ in harness_imports()["harness.plan"] if within(m, "harness.models")} <= {
        "harness.models.registry"}


def test_metrics_never_import_models():
    assert violations("harness.metrics", ("harness.models",)) == []


def test_report_never_imports_models():
    assert violations("harness.report", ("harness.models",)) == []


def test_report_never_imports_sweep():
    assert violations("harness.report", ("harness.sweep",)) == []


def _scoring_functions_imported_by_the_report() -> list[str]:
    used = []
    for importer, imported in harness_imports().items():
        if not within(importer, "harness.report"):
            continue
        for module, name in imported:
            if module == "harness.metrics":
                value = getattr(metrics, name) if name else metrics
                # the metric table and constants (metadata) are fine; functions score
                if name is None or inspect.isfunction(value):
                    used.append(f"{importer} imports metrics.{name or '*'}")
    return sorted(used)


def test_scoring_functions_are_told_apart_from_metadata():
    assert inspect.isfunction(metrics.summarize) and not inspect.isfunction(metrics.METRICS)


def test_report_never_imports_metrics_scoring_functions():
    """The report reads stored scores; aggregates of stored pieces come from harness.calibration."""
    assert _scoring_functions_imported_by_the_report() == []


def test_report_sections_import_shared_modules_only():
    """Sections import the shared report modules, never each other; shared modules import no
    section and not the page; no private name crosses a file."""
    table = harness_imports()
    sections = {name for name in table if within(name, "harness.report.sections") and name.count(".") == 3}
    assert {"harness.report.sections.sizes", "harness.report.sections.shots"} <= sections
    for name in sections:
        assert sorted(m for m, _ in table[name] if m in sections and m != name) == [], name
    shared = [name for name in table if within(name, "harness.report") and name not in sections
              and name not in ("harness.report", "harness.report.page", "harness.report.sections")]
    for name in shared:
        assert [m for m, _ in table[name] if within(m, "harness.report.sections")
                or m == "harness.report.page"] == [], name
    private = sorted(f"{importer} imports {module}.{imported}" for importer, found in table.items()
                     if within(importer, "harness.report") for module, imported in found
                     if imported is not None and imported.startswith("_") and imported != "__version__")
    assert private == []
