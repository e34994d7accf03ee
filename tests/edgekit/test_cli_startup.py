"""`edgekit --help` answers at once: importing the CLI, and asking any command for its help, loads
none of the heavy libraries (torch alone is about 1 GB and seconds to import). Timings are not
asserted (machines are noisy); what makes them fast is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgekit.cli import build_parser

REPO_ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "torchvision", "executorch", "wfdb", "matplotlib", "numpy")


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


def _loaded_heavy(code: str) -> list[str]:
    """The heavy modules in sys.modules after running `code` in a fresh interpreter."""
    result = _python(f"{code}\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    assert result.returncode == 0, result.stderr
    return [name for name in result.stdout.splitlines()[-1].split(",") if name]


def _commands(parser=None, prefix=()) -> list[tuple[str, ...]]:
    """Every command and subcommand of the parser, e.g. ("teacher", "train")."""
    parser = parser or build_parser()
    found = []
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        for name, sub in action.choices.items():
            found.append((*prefix, name))
            found += _commands(sub, (*prefix, name))
    return found


def test_importing_the_cli_loads_no_heavy_module():
    assert _loaded_heavy("import edgekit, edgekit.cli, edgekit._store, edgekit._ledger") == []


@pytest.mark.parametrize("command", [(), *_commands()], ids=lambda command: " ".join(command) or "edgekit")
def test_help_of_every_command_loads_no_heavy_module(command):
    code = (f"from edgekit.cli import main\ntry:\n    main({[*command, '--help']!r})\nexcept SystemExit as stop:\n"
            "    assert stop.code == 0, stop.code")
    assert _loaded_heavy(code) == []


def test_help_exits_0_and_lists_every_command():
    result = subprocess.run([sys.executable, "-m", "edgekit.cli", "--help"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    top = [command[0] for command in _commands() if len(command) == 1]
    assert {"teacher", "synth", "student", "export", "replay", "explain", "unlearn", "guides", "rebuild", "ledger",
            "runs", "prune", "demo"} <= set(top)
    for name in top:
        assert name in result.stdout


def test_the_edgekit_package_keeps_its_public_names():
    result = _python("import edgekit\nprint(sorted(edgekit.__all__) == sorted(n for n in edgekit.__all__ "
                     "if hasattr(edgekit, n)))\nprint(edgekit.ArtifactStore.__module__)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "edgekit._store"]
