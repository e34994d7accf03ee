"""Writing benchmark results."""

from __future__ import annotations

import json
from pathlib import Path


def append_json_line(path: str | Path, row: dict) -> None:
    """Print `row` and append it to the JSON-lines file at `path` (one line per measurement)."""
    print(json.dumps(row), flush=True)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        handle.write(json.dumps(row) + "\n")


def write_json(path: str | Path, result: dict) -> None:
    """Write one benchmark's result as indented JSON (through a temporary file, so an interrupted
    run leaves the previous result whole)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(result, indent=2, default=str) + "\n")
    temporary.replace(path)
