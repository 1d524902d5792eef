"""ARCHITECTURE.md, enforced: every import in the tree points down a layer, never up or sideways.

The imports are read from the source (``ast``), not by importing anything, so
an import inside a function counts too, unless the rule says it may be lazy.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FOUNDATION = {"eat_curate", "errors", "exit_codes", "runs", "records", "incremental", "lazy_exports"}

# What each part of the tree may import besides itself and the foundation (ARCHITECTURE.md's table).
ALLOWED: dict[str, set[str]] = {
    "foundation": set(),
    "io": set(),
    "model": set(),
    "sinks": set(),
    "samples": {"io"},
    "scoring": {"io", "model"},
    "library": {"io", "sinks"},
    "report": {"io", "library", "sinks"},
    "benchmarks": {"io", "model", "scoring", "sinks", "library", "samples"},
    "commands": {"io", "model", "scoring", "sinks", "library", "samples", "report", "benchmarks", "cli",
                 "pipelines (lazily)", "training (lazily)"},
    "cli": {"commands", "pipelines (lazily)", "training (lazily)"},
    "pipelines": {"io", "model", "scoring", "sinks", "cli"},
    "training": {"io", "model", "scoring"},
    "training.recipes": {"io", "model", "scoring", "samples", "training"},
}


@dataclass(frozen=True)
class Import:
    source: Path
    line: int
    module: str
    lazy: bool  # inside a function body


def part_of(module: str) -> str | None:
    """The part of the tree (a key of ALLOWED) that ``module`` belongs to; None outside the project."""
    parts = module.split(".")
    if parts[0] == "eat_curate":
        inner = parts[1] if len(parts) > 1 else "eat_curate"
        return "foundation" if inner in FOUNDATION else inner
    if parts[0] == "training":
        return "training.recipes" if parts[1:2] == ["recipes"] else "training"
    if parts[0] == "pipelines":
        return "pipelines"
    return None


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def imports_of(path: Path) -> list[Import]:
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend(Import(path, child.lineno, alias.name, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.append(Import(path, child.lineno, child.module, in_function))
            visit(child, inside)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


def project_files() -> list[Path]:
    return sorted(path for top in ("eat_curate", "pipelines", "training") for path in (ROOT / top).rglob("*.py"))


def violations() -> list[str]:
    problems = []
    for path in project_files():
        source = part_of(module_name(path))
        for found in imports_of(path):
            target = part_of(found.module)
            if target is None or target == source or target == "foundation":
                continue
            allowed = ALLOWED[source]
            if target in allowed or (found.lazy and f"{target} (lazily)" in allowed):
                continue
            how = "at module level" if f"{target} (lazily)" in allowed else "at all"
            problems.append(f"{found.source.relative_to(ROOT)}:{found.line}: {source} may not import {found.module} {how}")
    return problems


def test_every_import_points_down_a_layer():
    assert violations() == []


def test_the_command_line_uses_the_write_and_read_sides_through_their_surfaces():
    inner = [
        f"{found.source.relative_to(ROOT)}:{found.line}: {found.module}"
        for path in sorted((ROOT / "eat_curate" / "commands").glob("*.py"))
        for found in imports_of(path)
        if found.module.startswith(("eat_curate.sinks.", "eat_curate.library."))
    ]
    assert inner == []


def test_the_foundation_and_the_sinks_know_nothing_of_sources():
    offenders = [
        f"{found.source.relative_to(ROOT)}:{found.line}"
        for path in project_files()
        if part_of(module_name(path)) in {"foundation", "sinks"}
        for found in imports_of(path)
        if found.module.startswith("eat_curate.io")
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("source", "code", "expected"),
    [
        ("eat_curate/io/decode.py", "from eat_curate.scoring.preprocess import normalize_batch\n",
         "io may not import eat_curate.scoring.preprocess at all"),
        ("eat_curate/commands/score.py", "from pipelines.ray_engine import RayEngine\n",
         "commands may not import pipelines.ray_engine at module level"),
        ("eat_curate/sinks/sql/sink.py", "import eat_curate.library.queries\n",
         "sinks may not import eat_curate.library.queries at all"),
    ],
)
def test_the_rule_catches_an_import_that_runs_up_a_floor(tmp_path, monkeypatch, source, code, expected):
    # The checker itself must be able to fail: plant one wrong import in a copy of the tree.
    planted = tmp_path / source
    planted.parent.mkdir(parents=True)
    planted.write_text(code)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert [problem.split(": ", 1)[1] for problem in violations()] == [expected]
