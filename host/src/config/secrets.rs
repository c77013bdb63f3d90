//! Secrets in plugin configs: read from the environment by the host, never printed.
//!
//! Plugins cannot read the environment (their WASI context has none), so the host resolves it
//! for them before `configure`: in a plugin's `config` (or a tenant's `config.PLUGIN`), a key
//! `NAME-env = "VAR"` is replaced by `NAME = <value of VAR>`, at any depth. The plugin sees
//! only `NAME`, so a plugin that documents `hs256-secret` takes `hs256-secret-env` with no code
//! of its own, and the secret never sits in the file. The variable must be set and non-empty
//! when the config loads (as `api-key-env`); `NAME` and `NAME-env` together are an error.
//!
//! Everything the gateway prints of a config (`wasmgate config check`, the admin API) goes
//! through [`redact_json`] / [`scrub`]: values resolved from the environment, values of keys
//! named like secrets, private PEM blocks and URL credentials are replaced; public PEM blocks
//! and key hashes are shortened to a fingerprint that identifies them without revealing them.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Secret;

/// What replaces a secret value.
pub const REDACTED: &str = "<redacted>";

/// Suffix of a key whose value names an environment variable.
const ENV_SUFFIX: &str = "-env";

/// Resolves `NAME-env` keys in `value` (a plugin config), recursively. Returns the resolved
/// values (secrets, to redact wherever the config is shown) and errors as `(key, message)`.
pub fn resolve_env_refs(
    value: &mut Value,
    key: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Vec<Secret>, Vec<(String, String)>) {
    let (mut found, mut errors) = (Vec::new(), Vec::new());
    resolve(value, key, env, &mut found, &mut errors);
    (found, errors)
}

fn resolve(
    value: &mut Value,
    key: &str,
    env: &dyn Fn(&str) -> Option<String>,
    found: &mut Vec<Secret>,
    errors: &mut Vec<(String, String)>,
) {
    match value {
        Value::Object(map) => {
            let refs: Vec<String> = map.keys().filter(|k| k.ends_with(ENV_SUFFIX)).cloned().collect();
            for r in refs {
                let name = r.trim_end_matches(ENV_SUFFIX).to_string();
                let at = format!("{key}.{r}");
                let Some(var) = map.remove(&r) else { continue };
                let Value::String(var) = var else {
                    errors.push((at, "must be the name of an environment variable (a string)".into()));
                    continue;
                };
                if name.is_empty() || map.contains_key(&name) {
                    errors.push((at, format!("set either `{name}` or `{r}`, not both")));
                    continue;
                }
                match env(&var) {
                    Some(v) if !v.trim().is_empty() => {
                        let v = v.trim().to_string();
                        found.push(Secret::new(v.clone()));
                        map.insert(name, Value::String(v));
                    }
                    _ => errors.push((at, format!("environment variable `{var}` is not set (or empty)"))),
                }
            }
            for (k, v) in map.iter_mut() {
                resolve(v, &format!("{key}.{k}"), env, found, errors);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                resolve(v, &format!("{key}[{i}]"), env, found, errors);
            }
        }
        _ => {}
    }
}

/// How a key's value is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    Plain,
    /// A secret: replaced by [`REDACTED`].
    Hidden,
    /// A hash of a secret (`sha256` of an API key): its first 8 characters only, enough to
    /// tell entries apart, too few to confirm a guessed key offline.
    Prefix,
}

/// Words that make a key a secret wherever they appear (`hs256-secret`, `db_password`).
const SECRET_WORDS: &[&str] = &[
    "secret",
    "secrets",
    "password",
    "passwd",
    "passphrase",
    "token",
    "credential",
    "credentials",
    "apikey",
    "privatekey",
    "cookie",
    "pem",
];
/// Words that make a following `key` key material (`api-key`, `signing-key`); `key` alone
/// (rate-limit's `key = "identity"`) and `public-key` are not secrets.
const KEY_QUALIFIERS: &[&str] =
    &["api", "private", "secret", "signing", "hmac", "encryption", "access", "client", "master", "shared", "session"];
const HASH_WORDS: &[&str] = &["sha256", "hash", "digest"];

fn classify(key: &str) -> Shown {
    let lower = key.to_ascii_lowercase().replace('_', "-");
    let words: Vec<&str> = lower.split(['-', '.']).filter(|w| !w.is_empty()).collect();
    let secret = words.iter().any(|w| SECRET_WORDS.contains(w))
        || words.windows(2).any(|p| p[1] == "key" && KEY_QUALIFIERS.contains(&p[0]));
    if secret {
        Shown::Hidden
    } else if words.iter().any(|w| HASH_WORDS.contains(w)) {
        Shown::Prefix
    } else {
        Shown::Plain
    }
}

/// Whether a config key names a secret (its value is never printed).
pub fn is_secret_key(key: &str) -> bool {
    classify(key) == Shown::Hidden
}

/// Redacts a JSON config in place. `known` are values that are secret whatever their key
/// (resolved from the environment).
pub fn redact_json(value: &mut Value, known: &[Secret]) {
    redact(value, Shown::Plain, known);
}

fn redact(value: &mut Value, shown: Shown, known: &[Secret]) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let inner = if shown == Shown::Hidden { Shown::Hidden } else { classify(k) };
                redact(v, inner, known);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact(v, shown, known)),
        Value::String(s) => {
            *s = match shown {
                Shown::Hidden => REDACTED.to_string(),
                _ if known.iter().any(|k| !k.expose().is_empty() && s.contains(k.expose())) => REDACTED.to_string(),
                Shown::Prefix if s.chars().count() > 8 => format!("{}…", s.chars().take(8).collect::<String>()),
                _ => scrub(s, &[]),
            };
        }
        // Numbers and booleans under a secret key are hidden too (a numeric PIN is a secret).
        Value::Number(_) | Value::Bool(_) if shown == Shown::Hidden => *value = Value::String(REDACTED.into()),
        _ => {}
    }
}

/// The string values under secret-named keys of a config JSON (to scrub them from text).
pub fn secret_values(json: &str) -> Vec<String> {
    fn walk(v: &Value, hidden: bool, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => m.iter().for_each(|(k, v)| walk(v, hidden || is_secret_key(k), out)),
            Value::Array(a) => a.iter().for_each(|v| walk(v, hidden, out)),
            Value::String(s) if hidden => out.push(s.clone()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_str::<Value>(json) {
        walk(&v, false, &mut out);
    }
    out
}

/// A config JSON string, redacted (for display). Invalid JSON is hidden entirely.
pub fn redact_config_json(json: &str, known: &[Secret]) -> String {
    match serde_json::from_str::<Value>(json) {
        Ok(mut v) => {
            redact_json(&mut v, known);
            v.to_string()
        }
        Err(_) => format!("\"{REDACTED}\""),
    }
}

/// Removes secrets from free text (error messages, URLs): every occurrence of a `known`
/// value, PEM blocks (private ones hidden, public ones as a fingerprint) and the credentials
/// of `scheme://user:pass@host` URLs.
pub fn scrub(text: &str, known: &[&str]) -> String {
    let mut out = text.to_string();
    for k in known.iter().filter(|k| k.len() >= 4) {
        out = out.replace(k, REDACTED);
    }
    out = scrub_pem(&out);
    scrub_url_credentials(&out)
}

fn scrub_pem(text: &str) -> String {
    const BEGIN: &str = "-----BEGIN ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        out.push_str(&rest[..start]);
        let block = &rest[start..];
        let label_end = block[BEGIN.len()..].find("-----").map(|i| i + BEGIN.len());
        let label = label_end.map(|e| &block[BEGIN.len()..e]).unwrap_or("");
        // The block ends after `-----END <label>-----`, or at the end of the text.
        let end_marker = format!("-----END {label}-----");
        let end = block.find(&end_marker).map(|i| i + end_marker.len()).unwrap_or(block.len());
        let public = label.ends_with("PUBLIC KEY") || label == "CERTIFICATE";
        if public && end < block.len() {
            let fp = hex::encode(Sha256::digest(&block.as_bytes()[..end]));
            out.push_str(&format!("<PEM {label}, sha256 {}>", &fp[..16]));
        } else {
            out.push_str(&format!("<redacted PEM {}>", if label.is_empty() { "block" } else { label }));
        }
        rest = &block[end..];
    }
    out.push_str(rest);
    out
}

fn scrub_url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let authority_end = tail.find(['/', ' ', '"', '\'', '?', '#']).unwrap_or(tail.len());
        match tail[..authority_end].rfind('@') {
            Some(at) => {
                out.push_str(REDACTED);
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use serde_json::json;

    use super::*;

    #[test]
    fn secret_keys_are_recognised_without_hiding_ordinary_settings() {
        for k in
            ["hs256-secret", "api-key", "api_key", "apikey", "password", "db-password", "access-token", "private-key"]
        {
            assert!(is_secret_key(k), "{k}");
        }
        for k in
            ["key", "keys", "tokens", "max-tokens-cap", "default-max-tokens", "rs256-public-key", "issuer", "subject"]
        {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn env_refs_are_resolved_at_any_depth_and_reported_by_key() {
        let env = |v: &str| (v == "JWT").then(|| "s3cr3t-value".to_string());
        let mut v = json!({"hs256-secret-env": "JWT", "nested": [{"token-env": "NOPE"}], "a": 1, "a-env": "JWT"});
        let (found, errors) = resolve_env_refs(&mut v, "plugins.jwt.config", &env);
        assert_eq!(v["hs256-secret"], "s3cr3t-value");
        assert!(v.get("hs256-secret-env").is_none());
        assert_eq!(found.len(), 1);
        let keys: Vec<&str> = errors.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.contains(&"plugins.jwt.config.nested[0].token-env"), "{errors:?}");
        assert!(keys.contains(&"plugins.jwt.config.a-env"), "{errors:?}");
    }

    #[test]
    fn redaction_hides_secrets_pem_and_url_credentials() {
        let pem_priv = "-----BEGIN PRIVATE KEY-----\nMIIEabc\n-----END PRIVATE KEY-----\n";
        let pem_pub = "-----BEGIN PUBLIC KEY-----\nMIIBIjAN\n-----END PUBLIC KEY-----\n";
        let mut v = json!({
            "hs256-secret": "shh-0123456789", "rs256-public-key": pem_pub, "cert": pem_priv,
            "keys": [{"sha256": "953d0ab8229abd463060e52204c8", "subject": "ci"}],
            "opaque": "from-env-value", "url": "https://bob:hunter2@idp.example/x", "key": "identity",
            "credentials": {"pin": 9876}
        });
        redact_json(&mut v, &[Secret::new("from-env-value".into())]);
        let text = v.to_string();
        for leaked in ["shh-0123456789", "MIIEabc", "MIIBIjAN", "953d0ab8229a", "from-env-value", "hunter2"] {
            assert!(!text.contains(leaked), "{leaked} in {text}");
        }
        assert_eq!(v["keys"][0]["sha256"], "953d0ab8…");
        assert!(v["rs256-public-key"].as_str().unwrap().starts_with("<PEM PUBLIC KEY, sha256 "), "{text}");
        assert_eq!(v["url"], "https://<redacted>@idp.example/x");
        assert_eq!(v["key"], "identity");
        assert_eq!(v["credentials"]["pin"], REDACTED);
        assert_eq!(scrub("bad secret abcd1234 here", &["abcd1234"]), "bad secret <redacted> here");
    }
}
