"""Logging through the gateway (`host.log`): lines are tagged with the plugin and request id.

Inside the gateway this calls the host import; natively (unit tests) it writes to stderr.
"""

from __future__ import annotations

import sys

try:  # Only importable inside a component built by componentize-py.
    from wit_world.imports import host as _host
    from wit_world.imports.types import Level as _Level
except ImportError:  # pragma: no cover - depends on where we run
    _host = None
    _Level = None


def _log(level: str, message: str) -> None:
    if _host is not None and _Level is not None:
        _host.log(getattr(_Level, level.upper()), message)
    else:
        print(f"[{level}] {message}", file=sys.stderr)


def trace(message: str) -> None:
    _log("trace", message)


def debug(message: str) -> None:
    _log("debug", message)


def info(message: str) -> None:
    _log("info", message)


def warn(message: str) -> None:
    _log("warn", message)


def error(message: str) -> None:
    _log("error", message)
