"""Redaction of e-mail addresses and phone numbers in chat prompts (the plugin's logic, free
of any wasm binding so it runs natively in the unit tests)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from wasmgate_sdk import Continue, Decision, Mutate, SetResponseHeader, log, set_body_json

DETECTORS = ("email", "phone")

EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
# A candidate: optional +country code, optional (area), then groups of digits split by one
# space, dot or dash. `_is_phone` then checks the digit count, so dates, versions and IPs
# (which also match the shape) are left alone.
PHONE = re.compile(r"(?<![\w+(.-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,5}){1,4}(?![\w.-]?\d)")
IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
DATE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{4}$")


@dataclass
class Config:
    """The plugin's config (JSON keys in kebab-case)."""

    # Which detectors run: any of "email", "phone".
    detectors: List[str] = field(default_factory=lambda: list(DETECTORS))
    # What a match is replaced with; `{detector}` is replaced by the detector's name.
    replacement: str = "[REDACTED]"
    # Message roles whose content is redacted (all by default).
    roles: Optional[List[str]] = None
    # If set, a response header with the number of redactions made (only when > 0).
    count_header: Optional[str] = None


def configure(config: Config) -> None:
    """Refuses configs that cannot work (called once per instance)."""
    for i, d in enumerate(config.detectors):
        if d not in DETECTORS:
            raise ValueError(f"invalid config at `detectors[{i}]`: unknown detector `{d}` (known: email, phone)")
    if not config.detectors:
        raise ValueError("invalid config at `detectors`: empty; enable at least one of email, phone")
    if config.count_header is not None and not re.fullmatch(r"[a-z0-9-]+", config.count_header):
        raise ValueError("invalid config at `count-header`: must be a lower-case header name")


def _is_phone(candidate: str) -> bool:
    digits = sum(c.isdigit() for c in candidate)
    if IPV4.match(candidate) or DATE.match(candidate):
        return False
    marked = candidate.startswith("+") or candidate.startswith("(")
    return 7 <= digits <= 15 if marked else 9 <= digits <= 15


def redact_text(text: str, config: Config) -> Tuple[str, int]:
    """`text` with every enabled detector's matches replaced, and the number of replacements."""
    count = 0

    def replace(detector: str):
        def sub(m: "re.Match[str]") -> str:
            nonlocal count
            if detector == "phone" and not _is_phone(m.group(0)):
                return m.group(0)
            count += 1
            return config.replacement.replace("{detector}", detector)

        return sub

    # E-mail first: its local part may contain digits that look like a phone number.
    if "email" in config.detectors:
        text = EMAIL.sub(replace("email"), text)
    if "phone" in config.detectors:
        text = PHONE.sub(replace("phone"), text)
    return text, count


def redact_messages(messages: List[Dict[str, Any]], config: Config) -> int:
    """Redacts `messages` in place (string content and the `text` of content parts)."""
    total = 0
    for m in messages:
        if not isinstance(m, dict) or (config.roles is not None and m.get("role") not in config.roles):
            continue
        content = m.get("content")
        if isinstance(content, str):
            m["content"], n = redact_text(content, config)
            total += n
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                    part["text"], n = redact_text(part["text"], config)
                    total += n
    return total


class Redact:
    """The `rewrite` plugin."""

    Config = Config
    configure = staticmethod(configure)

    @staticmethod
    def rewrite(config: Config, req: Any) -> Decision:
        if req.endpoint != "chat":
            return Continue()
        if req.body is None:
            log.warn("redact-py needs the request body: set `body = true` in its gateway config")
            return Continue()
        messages = json.loads(req.body).get("messages")
        if not isinstance(messages, list):
            return Continue()
        count = redact_messages(messages, config)
        if count == 0:
            return Continue()
        log.info(f"redacted {count} item(s)")
        edits = [set_body_json("messages", messages)]
        if config.count_header is not None:
            edits.append(SetResponseHeader(config.count_header, str(count)))
        return Mutate(edits)
