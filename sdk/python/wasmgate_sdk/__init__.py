"""Write wasmgate policy plugins in Python (componentize-py 0.25.1).

A plugin is a class with a `Config` dataclass and the world's entry point; `app.py` exports it:

    from dataclasses import dataclass
    from wasmgate_sdk import Continue, Mutate, SetModel, log

    @dataclass
    class Config:
        model: str                      # required: `{"model": "..."}`

    class PinModel:
        Config = Config

        @staticmethod
        def rewrite(config, req):
            if req.model == config.model:
                return Continue()
            log.info(f"pinning {req.model} to {config.model}")
            return Mutate([SetModel(config.model)])

    # app.py
    from wasmgate_sdk.export import export_rewrite
    WitWorld = export_rewrite(PinModel)

Build: `componentize-py -d wit -w rewrite componentize app -p . -p sdk/python -o plugin.wasm`.
Everything but `wasmgate_sdk.export` works natively, so plugin logic is unit-tested with plain
`python3 -m unittest` (requests: `wasmgate_sdk.Request(...)`, which has the WIT field names).
"""

from . import log
from .config import ConfigError, parse_config
from .types import (
    Allow,
    AuthDecision,
    Continue,
    Decision,
    Deny,
    Edit,
    Identity,
    Mutate,
    PrependSystem,
    RemoveHeader,
    Request,
    Respond,
    Response,
    SetBodyField,
    SetHeader,
    SetMaxTokens,
    SetModel,
    SetResponseHeader,
    bearer_token,
    error_body,
    error_response,
    header,
    set_body_json,
)

__all__ = [
    "Allow",
    "AuthDecision",
    "ConfigError",
    "Continue",
    "Decision",
    "Deny",
    "Edit",
    "Identity",
    "Mutate",
    "PrependSystem",
    "RemoveHeader",
    "Request",
    "Respond",
    "Response",
    "SetBodyField",
    "SetHeader",
    "SetMaxTokens",
    "SetModel",
    "SetResponseHeader",
    "bearer_token",
    "error_body",
    "error_response",
    "header",
    "log",
    "parse_config",
    "set_body_json",
]
