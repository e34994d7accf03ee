"""Each room shows a flat public face: an `__all__` whose every name resolves, so benchmarks and users
import `from teacher import DecisionRule`, never a private module."""

from __future__ import annotations

import importlib

import pytest

ROOMS = ("teacher", "synth", "student", "edge_export", "edgekit")


@pytest.mark.parametrize("room", ROOMS)
def test_every_room_has_an_all_whose_names_resolve(room):
    module = importlib.import_module(room)
    assert module.__all__ and len(set(module.__all__)) == len(module.__all__)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []
