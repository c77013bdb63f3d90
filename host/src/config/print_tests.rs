//! `config check --print` prints TOML that loads back to the same config.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::super::secrets;
use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "UP_KEY" => Some("sk-upstream-secret".into()),
        "ADMIN" => Some("admin-token-secret".into()),
        "JWT" => Some("jwt-secret-from-env".into()),
        _ => None,
    }
}

/// What can differ after a print and a load: where it came from, and redacted values.
fn modulo_redaction(mut c: Config) -> Config {
    c.source = None;
    let redact = |p: &mut PluginConfig| {
        p.config_json = secrets::redact_config_json(&p.config_json, &p.secrets);
        p.secrets.clear();
    };
    c.plugins.values_mut().for_each(redact);
    for u in c.upstreams.values_mut() {
        for (name, value) in &mut u.headers {
            if !matches!(name.as_str(), "openai-organization" | "openai-project") {
                *value = http::HeaderValue::from_static(secrets::REDACTED);
            }
        }
    }
    c.tenants.values_mut().flat_map(|t| t.chain.iter_mut()).for_each(redact);
    c
}

/// Prints `c`, checks the text is TOML, loads it; returns the loaded config and the text.
fn reload(c: &Config) -> (Config, String) {
    let text = c.describe();
    toml::from_str::<toml::Table>(&text).unwrap_or_else(|e| panic!("not TOML: {e}\n{text}"));
    let again = Config::parse_with_env(&text, None, &env).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (again, text)
}

#[test]
fn printed_configs_load_back_equal() {
    let mut configs =
        vec![("embedded default".to_string(), embedded_default("127.0.0.1:4000".parse().unwrap()).unwrap())];
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
    for entry in std::fs::read_dir(examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            configs.push((path.display().to_string(), Config::parse_with_env(&text, Some(&path), &env).unwrap()));
        }
    }
    assert!(configs.len() >= 2, "no example configs found in {examples}");
    for (name, c) in configs {
        let (again, text) = reload(&c);
        assert_eq!(modulo_redaction(again), modulo_redaction(c), "{name}:\n{text}");
    }
}

/// Every key set, secrets only from the environment: equal without any allowance.
#[test]
fn a_config_without_literal_secrets_loads_back_exactly() {
    let text = r#"
[server]
listen = "127.0.0.1:8181"
admin-listen = "127.0.0.1:9191"
max-body-bytes = 1000
shutdown-grace = "1m 30s"
trusted-proxies = ["10.0.0.0/8", "192.168.1.1"]
header-read-timeout = "3s"
idle-timeout = "20s"
body-timeout = "5s"
http2-keep-alive-interval = "250ms"
max-connections = 99
listen-backlog = 64
admin-token-env = "ADMIN"
admin-token-metrics = true
admin-hosts = ["Admin.Example"]

[upstreams.a]
endpoints = ["http://127.0.0.1:9/v1/", "https://b.example"]
api-key-env = "UP_KEY"
http2 = true
organization = "org-1"
project = "proj-1"
headers = { "x-team" = "research", "a-first" = "1" }
forward-client-headers = ["openai-project"]
connect-timeout = "2s"
max-connections-per-endpoint = 7
client-stall-timeout = "9s"

[upstreams.b]
endpoints = ["http://127.0.0.1:10"]

[[models]]
name = "gpt-*"
upstream = "a"
upstream-model = "real-model"

[[models]]
name = "other"
upstream = "b"

[plugins.auth]
kind = "auth"
path = "builtin:auth-jwt"
failure = "fail-open"
timeout = "20ms"
memory-limit-mib = 32
body = true
max-reuse = 5
body-limit = 4096
config = { issuer = "i", hs256-secret-env = "JWT", nested = { list = [1, 2.5, "x", true] } }

[plugins.rl]
kind = "rate-limit"
path = "builtin:rate-limit"
config = { key = "identity", requests = { limit = 5, window-ms = 60000 } }

[policy]
chain = ["auth"]
cache-dir = "/tmp/wasmgate-cache"
forward-identity = false

[tenants.t1]
hosts = ["T1.example"]
chain = ["rl"]
config.rl = { key = "ip", requests = { limit = 1, window-ms = 1000 } }
models = ["gpt-*", "other"]
max-concurrent-plugin-calls = 3
upstream-overrides = { a = "b" }
allow-global-identities = true

[tenants.t2]
chain = ["rl"]
"#;
    let c = Config::parse_with_env(text, None, &env).unwrap();
    let (again, printed) = reload(&c);
    // The env-resolved JWT secret and the `headers` values are redacted: compare them apart.
    assert!(
        !printed.contains("jwt-secret-from-env")
            && !printed.contains("sk-upstream")
            && !printed.contains("admin-token-secret"),
        "{printed}"
    );
    assert_eq!(modulo_redaction(again.clone()), modulo_redaction(c.clone()), "{printed}");
    let (mut a, mut b) = (again, c);
    a.plugins.remove("auth");
    b.plugins.remove("auth");
    a.upstreams.get_mut("a").unwrap().headers.retain(|(n, _)| n.as_str().starts_with("openai-"));
    b.upstreams.get_mut("a").unwrap().headers.retain(|(n, _)| n.as_str().starts_with("openai-"));
    assert_eq!(a, b, "{printed}");
    for key in [
        "[server]",
        "[upstreams.a]",
        "[[models]]",
        "[plugins.auth]",
        "[policy]",
        "[tenants.t1]",
        "kind = \"rate-limit\"",
        "failure = \"fail-open\"",
    ] {
        assert!(printed.contains(key), "no {key} in:\n{printed}");
    }
    assert!(printed.find("cache-dir").unwrap() < printed.find("[tenants").unwrap(), "{printed}");
}
