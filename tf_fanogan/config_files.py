"""Config files: JSON or YAML to nested dataclasses with strict keys and types, and back.

:func:`from_dict` builds a dataclass (and its nested section dataclasses) from a mapping,
refusing unknown keys and values of the wrong type with the key's path in the message;
:func:`read_mapping` / :func:`to_text` read and write the files. The value checks themselves
(ranges, choices) are the sections' ``validate`` methods in :mod:`tf_fanogan.config`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from tf_fanogan.errors import ConfigError


def from_dict(cls, data: Any, source: str):
    """``cls(**data)`` for a dataclass ``cls``, recursing into section dataclasses; unknown keys
    and wrong types are :class:`ConfigError` naming ``source`` and the key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown} for {cls.__name__}; known: {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            kwargs[name] = from_dict(type(default), value, f"{source}.{name}")
            continue
        if name == "jit_compile":  # true, false or "auto"; validate() checks the value
            kwargs[name] = value
            continue
        if default is None:  # optional budgets: an integer or null; validate() checks the value
            if value is not None and (type(value) is not int):
                raise ConfigError(f"{source}: key {name!r} of {cls.__name__} must be an integer or null, "
                                  f"got {type(value).__name__} ({value!r})")
            kwargs[name] = value
            continue
        expected = type(default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if expected is float and isinstance(value, str):
            # YAML 1.1 reads "1e-4" (no dot) as a string; accept what Python reads as a number.
            try:
                value = float(value)
            except ValueError:
                pass
        if type(value) is not expected:
            raise ConfigError(
                f"{source}: key {name!r} of {cls.__name__} must be {expected.__name__}, "
                f"got {type(value).__name__} ({value!r})"
            )
        kwargs[name] = value
    return cls(**kwargs)


def read_mapping(path: str) -> dict[str, Any]:
    """Reads a JSON or YAML file into a dict, with errors that name the file."""
    import yaml

    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        if path.endswith(".json"):
            return json.loads(text)
        return yaml.safe_load(text) or {}
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot parse: {e}") from None


def to_text(data: dict[str, Any], path: str) -> str:
    import yaml

    if path.endswith((".yaml", ".yml")):
        return yaml.safe_dump(data, sort_keys=False)
    return json.dumps(data, indent=2) + "\n"
