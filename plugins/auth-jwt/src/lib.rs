//! wasmgate plugin (`auth` world): JWT bearer tokens (HS256 and/or RS256) checked for
//! signature, issuer, audience, expiry and clock skew. See `README.md` for the contract.

mod jwt;

use wasmgate_sdk::{AuthDecision, AuthPlugin, Request};

pub use jwt::{Config, Reject};

struct AuthJwt;

impl AuthPlugin for AuthJwt {
    type Config = Config;

    fn configure(config: &Config) -> Result<(), String> {
        config.validate()
    }

    fn authenticate(config: &Config, req: Request) -> AuthDecision {
        let now_secs = wasmgate_sdk::host::now_ms() / 1000;
        jwt::authenticate(config, &req, now_secs)
    }
}

wasmgate_sdk::export_auth!(AuthJwt);

// A token check skipped is a bypass: never fail open, whatever the kind's default.
wasmgate_sdk::declare_defaults!(failure = "fail-closed");
// The token comes as `Authorization: Bearer`.
wasmgate_sdk::declare_headers!("authorization");
