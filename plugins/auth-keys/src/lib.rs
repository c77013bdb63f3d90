//! wasmgate plugin (`auth` world): API keys checked against configured SHA-256 hashes.
//!
//! The gateway config holds only `sha256(key)`, never a key. The presented key is hashed and
//! its digest looked up in a map built at `configure` (same cost for 1 or 100,000 keys). See
//! `README.md` for the contract.

mod keys;

use wasmgate_sdk::{AuthDecision, AuthPlugin, Request};

pub use keys::{Config, KeySource};

struct AuthKeys;

impl AuthPlugin for AuthKeys {
    type Config = Config;

    fn configure(config: &Config) -> Result<(), String> {
        config.validate()
    }

    fn authenticate(config: &Config, req: Request) -> AuthDecision {
        keys::authenticate(config, &req)
    }
}

wasmgate_sdk::export_auth!(AuthKeys);
// The key comes in one of these (the `header` config picks which).
wasmgate_sdk::declare_headers!("authorization", "x-api-key");
