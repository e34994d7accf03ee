"""Benchmarks call the product through its public names: every script imports, and none reaches into
a room's private module (`from teacher._x import ...`), so a figure in the results log comes from the
code users run, not from a copy of its insides."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
ROOMS = {"edgekit", "edge_export", "student", "synth", "teacher"}
SCRIPTS = sorted(path for path in BENCHMARKS.glob("*.py") if not path.name.startswith("_"))


def private_imports(path: Path) -> list[str]:
    """`room._module` names a script imports, by import statement."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] in ROOMS and any(part.startswith("_") for part in parts[1:]):
                found.append(f"line {node.lineno}: {name}")
    return found


def test_there_are_benchmarks_to_check():
    assert len(SCRIPTS) >= 10


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda path: path.name)
def test_benchmark_imports_only_public_names(path, monkeypatch):
    assert private_imports(path) == []
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # as when run as a script: its helpers (_results) beside it
    spec = importlib.util.spec_from_file_location(f"benchmark_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)  # the script's imports resolve; its main() is not run
    assert callable(getattr(module, "main", None)), f"{path.name} has no main()"


def test_the_checker_sees_a_private_import(tmp_path):
    script = tmp_path / "bad.py"
    script.write_text("import teacher\nfrom teacher._training import fit\nfrom edgekit import _pipeline\n")
    assert private_imports(script) == ["line 2: teacher._training", "line 2: teacher._training.fit",
                                       "line 3: edgekit._pipeline"]
