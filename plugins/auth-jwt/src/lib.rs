//! `auth-jwt`: an `auth` plugin accepting HS256 and RS256 JWTs (issuer, audience, expiry,
//! not-before, clock skew); claims become the caller's identity and tenant. See README.md.

mod jwt;

use wasmgate_sdk::{AuthDecision, AuthPlugin, Request};

struct AuthJwt;

impl AuthPlugin for AuthJwt {
    type Config = jwt::Config;

    fn configure(config: &jwt::Config) -> Result<(), String> {
        config.validate()
    }

    fn authenticate(config: &jwt::Config, req: Request) -> AuthDecision {
        let now = wasmgate_sdk::host::now_ms() / 1000;
        jwt::authenticate(config, &req, now)
    }
}

wasmgate_sdk::export_auth!(AuthJwt);
