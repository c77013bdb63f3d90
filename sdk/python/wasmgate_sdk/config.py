"""Typed plugin config: the gateway hands `configure` a JSON string; `parse_config` turns it
into an instance of the plugin's config dataclass, or raises `ConfigError` naming the field.

Supported field types: `str`, `int`, `float`, `bool`, `list[T]`, `dict[str, T]`,
`Optional[T]` (`T | None`) and nested dataclasses. JSON keys are the field names with `_`
written as `-` (kebab-case, like the gateway config), e.g. `replacement_text` is
`"replacement-text"`. A field without a default is required; unknown keys are errors (a typo
never silently falls back to a default).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, TypeVar

C = TypeVar("C")


class ConfigError(ValueError):
    """An invalid config. `str(err)` reads ``invalid config at `a.b[0]`: why``."""

    def __init__(self, path: str, why: str) -> None:
        self.path = path
        self.why = why
        where = f" at `{path}`" if path else ""
        super().__init__(f"invalid config{where}: {why}")


def json_key(field_name: str) -> str:
    """The JSON key of a dataclass field (`max_len` -> `max-len`)."""
    return field_name.replace("_", "-")


def parse_config(text: str, cls: type[C]) -> C:
    """Parses the JSON `text` into `cls` (a dataclass). An empty string or `null` is `{}`."""
    text = text.strip()
    try:
        raw = json.loads(text) if text else None
    except json.JSONDecodeError as e:
        raise ConfigError("", f"not JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if raw is None:
        raw = {}
    return _convert(raw, cls, "")


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    return "an object"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _convert(value: Any, ty: Any, path: str) -> Any:
    origin = typing.get_origin(ty)
    args = typing.get_args(ty)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if value is None and len(inner) < len(args):
            return None
        if len(inner) == 1:
            return _convert(value, inner[0], path)
        raise ConfigError(path, f"unsupported config type {ty}")
    if dataclasses.is_dataclass(ty):
        return _dataclass(value, ty, path)
    if ty is Any:
        return value
    if ty is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(path, f"expected a boolean, found {_type_name(value)}")
    if ty is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(path, f"expected an integer, found {_type_name(value)}")
    if ty is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(path, f"expected a number, found {_type_name(value)}")
    if ty is str:
        if isinstance(value, str):
            return value
        raise ConfigError(path, f"expected a string, found {_type_name(value)}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(path, f"expected an array, found {_type_name(value)}")
        (item,) = args or (Any,)
        return [_convert(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(path, f"expected an object, found {_type_name(value)}")
        item = args[1] if len(args) == 2 else Any
        return {k: _convert(v, item, _join(path, k)) for k, v in value.items()}
    raise ConfigError(path, f"unsupported config type {ty}")


def _dataclass(value: Any, cls: Any, path: str) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(path, f"expected an object, found {_type_name(value)}")
    hints = typing.get_type_hints(cls)
    fields = {json_key(f.name): f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in value if k not in fields]
    if unknown:
        known = ", ".join(f"`{k}`" for k in fields) or "none"
        raise ConfigError(_join(path, unknown[0]), f"unknown field (known fields: {known})")
    kwargs = {}
    for key, f in fields.items():
        if key in value:
            kwargs[f.name] = _convert(value[key], hints[f.name], _join(path, key))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(_join(path, key), "missing field")
    return cls(**kwargs)
