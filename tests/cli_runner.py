"""Runs the `edgekit` CLI in-process for the tests that drive it."""

from __future__ import annotations

import contextlib
import io

from edgekit.cli import main


def run_cli(*argv) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `edgekit ARGV`; arguments may be paths or numbers."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(arg) for arg in argv])
    return code, out.getvalue(), err.getvalue()
