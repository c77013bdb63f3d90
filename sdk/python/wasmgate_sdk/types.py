"""The values that cross the plugin boundary, as plain Python dataclasses.

They mirror the WIT records and variants of `wasmgate:policy` (`wit/policy.wit`) with the same
field names, so plugin logic can be written and unit-tested natively with these, and the
export glue (`wasmgate_sdk.export`) converts them to the componentize-py bindings.
Requests arrive as the generated `Request` (same fields as `Request` here).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import List, Optional, Tuple, Union

Header = Tuple[str, str]


@dataclass
class Identity:
    """Who the caller is, as an `auth` plugin established it."""

    subject: str
    tenant: Optional[str] = None
    metadata: List[Tuple[str, str]] = field(default_factory=list)


@dataclass
class Request:
    """The request as a policy sees it (WIT `request`). `body` is set only with `body = true`."""

    id: str = "req-test"
    method: str = "POST"
    path: str = "/v1/chat/completions"
    headers: List[Header] = field(default_factory=list)
    # The TCP peer's address as the gateway saw it (never a forwarded-for header).
    client_ip: str = "127.0.0.1"
    tenant: Optional[str] = None
    identity: Optional[Identity] = None
    model: str = "gpt-4o-mini"
    endpoint: str = "chat"
    stream: bool = False
    max_tokens: Optional[int] = None
    prompt_tokens_estimate: int = 0
    body: Optional[str] = None


@dataclass
class Response:
    """A response the plugin answers with itself (WIT `response`)."""

    status: int
    body: str
    headers: List[Header] = field(default_factory=list)


# Edits (WIT `edit`).
@dataclass
class SetHeader:
    name: str
    value: str


@dataclass
class RemoveHeader:
    name: str


@dataclass
class SetModel:
    model: str


@dataclass
class SetMaxTokens:
    max_tokens: int


@dataclass
class PrependSystem:
    text: str


@dataclass
class SetBodyField:
    """Set a top-level body field to `json_value` (JSON text; `null` removes the field)."""

    name: str
    json_value: str


@dataclass
class SetResponseHeader:
    name: str
    value: str


Edit = Union[SetHeader, RemoveHeader, SetModel, SetMaxTokens, PrependSystem, SetBodyField, SetResponseHeader]


# Decisions of `rewrite` and `rate-limit` (WIT `decision`).
@dataclass
class Continue:
    pass


@dataclass
class Mutate:
    edits: List[Edit]


@dataclass
class Respond:
    response: Response


Decision = Union[Continue, Mutate, Respond]


# Decisions of `auth` (WIT `auth-decision`).
@dataclass
class Allow:
    identity: Identity


@dataclass
class Deny:
    response: Response


AuthDecision = Union[Allow, Deny]


def set_body_json(name: str, value: object) -> SetBodyField:
    """`SetBodyField` with `value` serialized as JSON."""
    return SetBodyField(name, json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def error_body(message: str, kind: str, param: Optional[str] = None, code: Optional[str] = None) -> str:
    """The OpenAI error body `{"error":{"message":..,"type":..,"param":..,"code":..}}`."""
    inner = {"message": message, "type": kind, "param": param, "code": code}
    return json.dumps({"error": inner}, ensure_ascii=False, separators=(",", ":"))


def error_response(status: int, message: str, kind: str, code: str, param: Optional[str] = None) -> Response:
    """A response with an OpenAI error body, e.g.
    `error_response(403, "Not allowed.", "invalid_request_error", "forbidden")`."""
    return Response(status=status, body=error_body(message, kind, param, code))


def header(req: object, name: str) -> Optional[str]:
    """The first value of header `name` (case-insensitive; the gateway sends lower case)."""
    wanted = name.lower()
    for n, v in getattr(req, "headers", []):
        if n.lower() == wanted:
            return v
    return None


def bearer_token(req: object) -> Optional[str]:
    """The token of an `authorization: Bearer <token>` header, if present and non-empty."""
    value = (header(req, "authorization") or "").strip()
    scheme, _, token = value.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
