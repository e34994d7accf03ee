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
