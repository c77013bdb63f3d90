//! The pure logic: config, key extraction, constant-time lookup, the deny responses.

use std::collections::BTreeMap;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};
use wasmgate_sdk::{AuthDecision, Identity, Request, Response, error_response};

/// The plugin config: `{"keys":[{"sha256":..,"subject":..}], "header":"authorization"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// The accepted keys, by hash. At least one.
    pub keys: Vec<KeyEntry>,
    /// Where the key is read from. Default: `authorization` (`Bearer <key>`).
    #[serde(default)]
    pub header: KeySource,
}

/// One accepted key and the identity it stands for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KeyEntry {
    /// `sha256(key)` as 64 hex digits (either case).
    pub sha256: KeyHash,
    /// The identity's subject (never the key itself).
    pub subject: String,
    /// The identity's tenant. Default: none.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Free-form identity attributes. Default: none.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// A SHA-256 digest parsed from hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct KeyHash(pub [u8; 32]);

impl TryFrom<String> for KeyHash {
    type Error = String;

    fn try_from(hex: String) -> Result<Self, String> {
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return Err(format!("expected 64 hex digits (a SHA-256), got {} characters", bytes.len()));
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let (Some(hi), Some(lo)) = (hex_digit(pair[0]), hex_digit(pair[1])) else {
                return Err(format!("not a hex digit near position {}", 2 * i));
            };
            out[i] = (hi << 4) | lo;
        }
        Ok(Self(out))
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Which request header carries the key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeySource {
    /// `authorization: Bearer <key>`.
    #[default]
    Authorization,
    /// `x-api-key: <key>`.
    XApiKey,
}

impl Config {
    /// Checks serde cannot express: at least one key, no duplicate hashes, a subject each.
    pub fn validate(&self) -> Result<(), String> {
        if self.keys.is_empty() {
            return Err("invalid config at `keys`: at least one key is required".into());
        }
        for (i, entry) in self.keys.iter().enumerate() {
            if entry.subject.is_empty() {
                return Err(format!("invalid config at `keys[{i}].subject`: must not be empty"));
            }
            if let Some(j) = self.keys[..i].iter().position(|e| e.sha256 == entry.sha256) {
                return Err(format!("invalid config at `keys[{i}].sha256`: same hash as `keys[{j}]`"));
            }
        }
        Ok(())
    }
}

/// The key the client presented, if any (trimmed, non-empty).
pub fn presented_key(source: KeySource, req: &Request) -> Option<&str> {
    match source {
        KeySource::Authorization => req.bearer_token(),
        KeySource::XApiKey => req.header("x-api-key").map(str::trim).filter(|k| !k.is_empty()),
    }
}

/// Index of the entry whose hash equals `sha256(key)`. Every entry is compared, in constant
/// time, whatever matches: the time taken does not depend on which key (if any) matched.
pub fn find_key(config: &Config, key: &str) -> Option<usize> {
    let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    let mut found = Choice::from(0);
    let mut index = 0usize;
    for (i, entry) in config.keys.iter().enumerate() {
        let hit = digest.ct_eq(&entry.sha256.0);
        // Branch-free select: index = hit ? i : index.
        let mask = usize::from(hit.unwrap_u8()).wrapping_neg();
        index = (i & mask) | (index & !mask);
        found |= hit;
    }
    bool::from(found).then_some(index)
}

/// The whole decision for one request.
pub fn authenticate(config: &Config, req: &Request) -> AuthDecision {
    let Some(key) = presented_key(config.header, req) else {
        return AuthDecision::Deny(missing_key(config.header));
    };
    match find_key(config, key).and_then(|i| config.keys.get(i)) {
        Some(entry) => AuthDecision::Allow(Identity {
            subject: entry.subject.clone(),
            tenant: entry.tenant.clone(),
            metadata: entry.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }),
        None => AuthDecision::Deny(unauthorized("Incorrect API key provided.")),
    }
}

fn missing_key(source: KeySource) -> Response {
    unauthorized(match source {
        KeySource::Authorization => "Missing API key: send it as `Authorization: Bearer <key>`.",
        KeySource::XApiKey => "Missing API key: send it as `x-api-key: <key>`.",
    })
}

fn unauthorized(message: &str) -> Response {
    error_response(401, message, "invalid_request_error", "invalid_api_key").with_header("www-authenticate", "Bearer")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
    use super::*;
    use wasmgate_sdk::{parse_config, test_request};

    fn hex(key: &str) -> String {
        Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }

    fn config(header: &str) -> Config {
        let json = format!(
            r#"{{"keys":[
                {{"sha256":"{}","subject":"alice","tenant":"acme","metadata":{{"plan":"pro"}}}},
                {{"sha256":"{}","subject":"bob"}}
            ]{header}}}"#,
            hex("sk-alice"),
            hex("sk-bob").to_uppercase()
        );
        let config: Config = parse_config(&json).unwrap();
        config.validate().unwrap();
        config
    }

    fn with_header(name: &str, value: &str) -> Request {
        Request { headers: vec![(name.into(), value.into())], ..test_request() }
    }

    #[test]
    fn valid_keys_map_to_identities() {
        let cfg = config("");
        let AuthDecision::Allow(id) = authenticate(&cfg, &with_header("authorization", "Bearer sk-alice")) else {
            panic!("alice denied");
        };
        assert_eq!(id.subject, "alice");
        assert_eq!(id.tenant.as_deref(), Some("acme"));
        assert_eq!(id.metadata, vec![("plan".to_string(), "pro".to_string())]);
        let AuthDecision::Allow(id) = authenticate(&cfg, &with_header("authorization", "Bearer sk-bob")) else {
            panic!("bob denied");
        };
        assert_eq!((id.subject.as_str(), id.tenant), ("bob", None));
    }

    #[test]
    fn wrong_and_missing_keys_are_401() {
        let cfg = config("");
        let AuthDecision::Deny(r) = authenticate(&cfg, &with_header("authorization", "Bearer sk-eve")) else {
            panic!("eve allowed");
        };
        assert_eq!(r.status, 401);
        assert_eq!(
            r.body,
            r#"{"error":{"message":"Incorrect API key provided.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#
        );
        assert_eq!(r.headers, vec![("www-authenticate".to_string(), "Bearer".to_string())]);
        let AuthDecision::Deny(r) = authenticate(&cfg, &test_request()) else { panic!("allowed") };
        assert!(r.body.contains("Missing API key: send it as `Authorization: Bearer <key>`."));
        // The key in the wrong header does not count.
        let AuthDecision::Deny(_) = authenticate(&cfg, &with_header("x-api-key", "sk-alice")) else {
            panic!("allowed")
        };
    }

    #[test]
    fn x_api_key_source() {
        let cfg = config(r#","header":"x-api-key""#);
        assert!(matches!(authenticate(&cfg, &with_header("x-api-key", " sk-bob ")), AuthDecision::Allow(_)));
        let AuthDecision::Deny(r) = authenticate(&cfg, &with_header("authorization", "Bearer sk-bob")) else {
            panic!("allowed")
        };
        assert!(r.body.contains("`x-api-key: <key>`"));
    }

    #[test]
    fn config_errors_name_the_field() {
        let err = parse_config::<Config>(r#"{"keys":[{"sha256":"zz","subject":"a"}]}"#).unwrap_err();
        assert!(err.contains("`keys[0].sha256`") && err.contains("64 hex digits"), "{err}");
        let bad_hex = format!(r#"{{"keys":[{{"sha256":"{}x","subject":"a"}}]}}"#, &hex("k")[..63]);
        let err = parse_config::<Config>(&bad_hex).unwrap_err();
        assert!(err.contains("not a hex digit"), "{err}");
        let empty: Config = parse_config(r#"{"keys":[]}"#).unwrap();
        assert!(empty.validate().unwrap_err().contains("`keys`"));
        let dup =
            format!(r#"{{"keys":[{{"sha256":"{0}","subject":"a"}},{{"sha256":"{0}","subject":"b"}}]}}"#, hex("k"));
        let dup: Config = parse_config(&dup).unwrap();
        assert!(dup.validate().unwrap_err().contains("`keys[1].sha256`"));
        let err = parse_config::<Config>(r#"{"keys":[],"header":"cookie"}"#).unwrap_err();
        assert!(err.contains("`header`"), "{err}");
    }

    #[test]
    fn find_key_scans_all() {
        let cfg = config("");
        assert_eq!(find_key(&cfg, "sk-alice"), Some(0));
        assert_eq!(find_key(&cfg, "sk-bob"), Some(1));
        assert_eq!(find_key(&cfg, ""), None);
    }
}
