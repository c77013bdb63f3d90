//! The embedded default: what `wasmgate serve` runs without `--config`. It works offline: an
//! in-process mock upstream serves a few mock models, and the three reference plugins (built
//! into the binary) run with a documented demo key.

use std::net::SocketAddr;

use super::{Config, ConfigErrors};

/// The API key accepted by the embedded default (`Authorization: Bearer sk-wasmgate-demo`).
pub const DEMO_API_KEY: &str = "sk-wasmgate-demo";

/// The embedded config, with `{MOCK}` replaced by the in-process mock's address.
const EMBEDDED: &str = r#"
[server]
listen = "127.0.0.1:8080"
admin-listen = "127.0.0.1:9090"

[upstreams.mock]
endpoints = ["http://{MOCK}/v1"]
http2 = true

[[models]]
name = "mock-gpt-4o"
upstream = "mock"

[[models]]
name = "mock-gpt-4o-mini"
upstream = "mock"

[[models]]
name = "mock-embedding"
upstream = "mock"

[plugins.auth]
kind = "auth"
path = "builtin:auth-keys"
# sha256("sk-wasmgate-demo")
config.keys = [
  { sha256 = "aca7531d37be9f291490e7e2f1047afd4fe212921bc68880050ab2299d1d0186", subject = "demo-user", tenant = "demo", metadata = { plan = "demo" } },
]

[plugins.rewrite]
kind = "rewrite"
path = "builtin:rewrite"
config = { model-aliases = { "gpt-4o-mini" = "mock-gpt-4o-mini", "gpt-4o" = "mock-gpt-4o" }, max-tokens-cap = 4096 }

[plugins.limits]
kind = "rate-limit"
path = "builtin:rate-limit"
config = { key = "identity", requests = { limit = 600, window-ms = 60000 }, tokens = { limit = 1000000, window-ms = 60000 } }

[policy]
chain = ["auth", "rewrite", "limits"]
"#;

/// Builds the embedded default config pointing at a mock listening on `mock`.
pub fn embedded_default(mock: SocketAddr) -> Result<Config, ConfigErrors> {
    let text = EMBEDDED.replace("{MOCK}", &mock.to_string());
    Config::parse(&text, None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let c = embedded_default("127.0.0.1:1".parse().unwrap()).unwrap();
        assert_eq!(c.policy.chain, vec!["auth", "rewrite", "limits"]);
        assert_eq!(c.models.len(), 3);
    }
}
