"""{{name}}: a wasmgate `rate-limit` plugin. At most `requests` requests per `window-ms` per
caller (the subject an auth plugin established, else the client IP), counted by the gateway's
quota store so every instance sees the same count."""

from __future__ import annotations

from dataclasses import dataclass

from wasmgate_sdk import Mutate, Respond, SetResponseHeader, error_response

try:  # The host import exists only inside the gateway; tests pass their own `consume`.
    from wit_world.imports.host import quota_consume
except ImportError:  # pragma: no cover
    quota_consume = None


@dataclass
class Config:
    # Requests allowed per window and caller.
    requests: int
    # Window length in milliseconds.
    window_ms: int = 60000


def caller(req) -> str:
    """Who is counted: the authenticated subject, else the client IP."""
    if req.identity is not None:
        return f"subject:{req.identity.subject}"
    return f"ip:{req.client_ip}"


def decide(allowed: bool, limit: int, remaining: int, reset_ms: int):
    """Admit with OpenAI-style `x-ratelimit-*` headers, or refuse with a 429 and `retry-after`."""
    headers = [
        ("x-ratelimit-limit-requests", str(limit)),
        ("x-ratelimit-remaining-requests", str(remaining)),
        ("x-ratelimit-reset-requests", f"{reset_ms}ms"),
    ]
    if allowed:
        return Mutate([SetResponseHeader(n, v) for n, v in headers])
    resp = error_response(429, f"Rate limit reached: {limit} requests per window. Retry later.", "requests", "rate_limit_exceeded")
    resp.headers = [("retry-after", str(-(-reset_ms // 1000)))] + headers
    return Respond(resp)


class Plugin:
    Config = Config

    @staticmethod
    def configure(config: Config) -> None:
        if config.requests < 1 or config.window_ms < 1:
            raise ValueError("`requests` and `window-ms` must be at least 1")

    @staticmethod
    def admit(config: Config, req, consume=None):
        status = (consume or quota_consume)(caller(req), 1, config.requests, config.window_ms)
        return decide(status.allowed, status.limit, status.remaining, status.reset_ms), None

    @staticmethod
    def settle(config: Config, reservation, usage, outcome) -> None:
        """Nothing to correct: a request costs 1 whatever its tokens were."""
