"""Rules that travel by name and constants: written into configs and bundle manifests, read back
by the replay and the phone core, and refused when they are another rule or incomplete."""

from __future__ import annotations

from dataclasses import MISSING, asdict, fields
from typing import ClassVar


class NamedSpec:
    """For frozen dataclasses of constants: `to_dict` / `from_dict` with the rule's name.

    Subclasses set NAME (e.g. "smoothed-threshold/1") and KIND (what it is, for messages).
    """

    NAME: ClassVar[str]
    KIND: ClassVar[str]

    def to_dict(self) -> dict:
        data = {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}
        return {"name": self.NAME, **data}

    @classmethod
    def from_dict(cls, data: dict):
        """The rule a config or manifest carries; refused (ValueError) when it is another rule or
        incomplete: a missing field must not fall back to a default silently."""
        data = dict(data)
        name = data.pop("name", cls.NAME)
        if name != cls.NAME:
            raise ValueError(f"{cls.KIND} {name!r} is not implemented here (this kit implements {cls.NAME})")
        known = {field.name: field for field in fields(cls)}
        missing, unknown = sorted(set(known) - set(data)), sorted(set(data) - set(known))
        if missing or unknown:
            raise ValueError(f"{cls.KIND} {cls.NAME} {data}: missing {missing}, unknown {unknown}")
        return cls(**{key: _like_default(known[key].default, value) for key, value in data.items()})


def _like_default(default, value):
    """JSON's value as the field's type (a list back to a tuple, 1 to 1.0 where the default is a float)."""
    if default is MISSING:
        return value
    if isinstance(default, tuple):
        return tuple(value)
    return type(default)(value)
