"""Export glue: turns a plugin class into the `WitWorld` class componentize-py exports.

A plugin class has a `Config` dataclass, optionally `configure(config)` (raise `ValueError`
to refuse the config), and the world's entry point as a static method taking the parsed
config first: `rewrite(config, req) -> Decision`, `authenticate(config, req) -> AuthDecision`,
or `admit(config, req) -> (Decision, reservation)` plus `settle(config, reservation, usage,
outcome)`. The plugin's `app.py` is then two lines:

    from wasmgate_sdk.export import export_rewrite
    WitWorld = export_rewrite(Redact)

The config is parsed once per instance in `configure`; an exception raised by the plugin at
request time is not caught: the instance traps and the gateway applies the plugin's failure
policy (and drops the instance).
"""

from __future__ import annotations

from typing import Any

from . import types as t
from .config import ConfigError, parse_config

# Set per instance by `configure`; instances serve one request at a time.
_state: dict[str, Any] = {}


def _configure(plugin: Any, text: str) -> None:
    from componentize_py_types import Err

    try:
        config = parse_config(text, plugin.Config)
        check = getattr(plugin, "configure", None)
        if check is not None:
            check(config)
    except ConfigError as e:
        raise Err(str(e)) from None
    except ValueError as e:
        raise Err(str(e) or type(e).__name__) from None
    _state["config"] = config


def _config() -> Any:
    if "config" not in _state:
        raise RuntimeError("the plugin was called before `configure` succeeded")
    return _state["config"]


def _response(r: t.Response) -> Any:
    from wit_world.imports import types as w

    return w.Response(status=r.status, headers=list(r.headers), body=r.body)


def _identity(i: t.Identity) -> Any:
    from wit_world.imports import types as w

    return w.Identity(subject=i.subject, tenant=i.tenant, metadata=list(i.metadata))


def _edit(e: t.Edit) -> Any:
    from wit_world.imports import types as w

    if isinstance(e, t.SetHeader):
        return w.Edit_SetHeader((e.name, e.value))
    if isinstance(e, t.RemoveHeader):
        return w.Edit_RemoveHeader(e.name)
    if isinstance(e, t.SetModel):
        return w.Edit_SetModel(e.model)
    if isinstance(e, t.SetMaxTokens):
        return w.Edit_SetMaxTokens(e.max_tokens)
    if isinstance(e, t.PrependSystem):
        return w.Edit_PrependSystem(e.text)
    if isinstance(e, t.SetBodyField):
        return w.Edit_SetBodyField((e.name, e.json_value))
    if isinstance(e, t.SetResponseHeader):
        return w.Edit_SetResponseHeader((e.name, e.value))
    raise TypeError(f"not an edit: {e!r}")


def to_wit_decision(d: t.Decision) -> Any:
    """Converts an SDK decision to the generated `Decision` variant."""
    from wit_world.imports import types as w

    if isinstance(d, t.Continue):
        return w.Decision_Continue()
    if isinstance(d, t.Mutate):
        return w.Decision_Mutate([_edit(e) for e in d.edits])
    if isinstance(d, t.Respond):
        return w.Decision_Respond(_response(d.response))
    raise TypeError(f"not a decision: {d!r}")


def export_rewrite(plugin: Any) -> type:
    """The `WitWorld` class of a `rewrite` plugin."""
    import wit_world

    class WitWorld(wit_world.WitWorld):
        def configure(self, config: str) -> None:
            _configure(plugin, config)

        def rewrite(self, req: Any) -> Any:
            return to_wit_decision(plugin.rewrite(_config(), req))

    return WitWorld


def export_auth(plugin: Any) -> type:
    """The `WitWorld` class of an `auth` plugin."""
    import wit_world

    class WitWorld(wit_world.WitWorld):
        def configure(self, config: str) -> None:
            _configure(plugin, config)

        def authenticate(self, req: Any) -> Any:
            d = plugin.authenticate(_config(), req)
            if isinstance(d, t.Allow):
                return wit_world.AuthDecision_Allow(_identity(d.identity))
            if isinstance(d, t.Deny):
                return wit_world.AuthDecision_Deny(_response(d.response))
            raise TypeError(f"not an auth decision: {d!r}")

    return WitWorld


def export_rate_limit(plugin: Any) -> type:
    """The `WitWorld` class of a `rate-limit` plugin."""
    import wit_world

    class WitWorld(wit_world.WitWorld):
        def configure(self, config: str) -> None:
            _configure(plugin, config)

        def admit(self, req: Any) -> Any:
            decision, reservation = plugin.admit(_config(), req)
            return wit_world.Admission(decision=to_wit_decision(decision), reservation=reservation)

        def settle(self, reservation: str, usage: Any, outcome: Any) -> None:
            plugin.settle(_config(), reservation, usage, outcome)

    return WitWorld
