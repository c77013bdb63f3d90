"""{{name}}: a wasmgate `rewrite` plugin. Sets a header on the request to the upstream and caps
`max_tokens`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from wasmgate_sdk import Mutate, SetHeader, SetMaxTokens, log


@dataclass
class Config:
    # Header to set on the upstream request, e.g. `x-team`.
    header: str
    # Its value.
    value: str
    # Largest `max_tokens` a request may ask for; requests without one get it.
    max_tokens_cap: Optional[int] = None


class Plugin:
    Config = Config

    @staticmethod
    def configure(config: Config) -> None:
        if not re.fullmatch(r"[A-Za-z0-9-]+", config.header):
            raise ValueError(f"`header` {config.header!r} is not a header name")

    @staticmethod
    def rewrite(config: Config, req):
        edits = [SetHeader(config.header.lower(), config.value)]
        cap = config.max_tokens_cap
        if cap is not None and (req.max_tokens is None or req.max_tokens > cap):
            log.debug(f"capping max_tokens of {req.id} at {cap}")
            edits.append(SetMaxTokens(cap))
        return Mutate(edits)
