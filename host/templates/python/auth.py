"""{{name}}: a wasmgate `auth` plugin. Allows a request whose bearer key is listed in the
config, as the subject the config names; denies anything else with an OpenAI 401."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Dict, Optional

from wasmgate_sdk import Allow, Deny, Identity, bearer_token, error_response


@dataclass
class Config:
    # API key -> subject (who the caller is, as later plugins and logs see it).
    keys: Dict[str, str]
    # Tenant to assign the caller to, if any.
    tenant: Optional[str] = None


class Plugin:
    Config = Config

    @staticmethod
    def configure(config: Config) -> None:
        if not config.keys:
            raise ValueError("`keys` must list at least one key")

    @staticmethod
    def authenticate(config: Config, req):
        token = bearer_token(req)
        if token is None:
            return Deny(error_response(401, "You didn't provide an API key.", "invalid_request_error", "missing_api_key"))
        for key, subject in config.keys.items():
            if hmac.compare_digest(key.encode(), token.encode()):
                return Allow(Identity(subject=subject, tenant=config.tenant))
        return Deny(error_response(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"))
