"""Function shape (STYLE.md, habit 23): no function in `harness/` is over 60 lines or takes
over 7 parameters, unless ALLOWED says why.

Read from the source with `ast` (no imports): lines run from the `def` to the last line of
the body, docstring included; parameters count every argument but `self` and `cls`.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "harness"
MAX_LINES = 60
MAX_PARAMS = 7

ALLOWED: dict[str, str] = {
    # the public entry points: each parameter is a keyword a caller sets (the CLI, tests), and a
    # settings object would only move the same list into a constructor
    "harness.emergence.series.analyze_series": "public entry point: keyword options of one series",
    "harness.report.build_report": "public entry point: keyword options of the CLI's report command",
}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    args = node.args
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return len([n for n in names if n not in ("self", "cls")])


def functions(source: str, prefix: str):
    """(qualified name, lines, parameters) of every function and method, nested ones too."""
    def walk(node: ast.AST, scope: str):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{scope}.{child.name}"
                yield name, child.end_lineno - child.lineno + 1, _parameters(child)
                yield from walk(child, name)
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{scope}.{child.name}")
    yield from walk(ast.parse(source), prefix)


def offenders() -> dict[str, str]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for name, lines, params in functions(path.read_text(encoding="utf-8"), _module(path)):
            if lines > MAX_LINES or params > MAX_PARAMS:
                found[name] = f"{lines} lines, {params} parameters"
    return found


def test_the_walker_counts_lines_and_parameters_of_methods_and_nested_functions():
    body = "\n".join(f"    x{i} = {i}" for i in range(70))
    source = (f"class A:\n  def m(self, a, *b, c, **d):\n    pass\n"
              f"def outer(a1, a2, a3, a4, a5, a6, a7, a8):\n  def inner():\n{body}\n")
    found = {name: (lines, params) for name, lines, params in functions(source, "mod")}
    assert found["mod.A.m"] == (2, 4)
    assert found["mod.outer"] == (72, 8)
    assert found["mod.outer.inner"] == (71, 0)


def test_no_function_is_over_60_lines_or_7_parameters_unless_allowed():
    unexplained = {name: shape for name, shape in offenders().items() if name not in ALLOWED}
    assert unexplained == {}
