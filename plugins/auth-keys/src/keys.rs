//! The pure logic: config, key extraction, lookup by digest, the deny responses.
//!
//! A presented key is looked up by its SHA-256 digest in a hash map built once, at
//! `configure`: the cost is the same for 1 key or 1,000,000. The map's layout and probe times
//! depend only on digests, and learning anything about a configured digest (even all of it)
//! does not help find its key: that is a SHA-256 preimage. So a lookup leaks nothing useful,
//! where the former constant-time scan of every entry cost 2.1 ms a request at 4,000 keys.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use serde::Deserialize;
use sha2::{Digest, Sha256};
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
    /// digest → index in `keys`, built by [`Config::validate`] (at `configure`).
    #[serde(skip)]
    index: OnceLock<KeyIndex>,
}

type KeyIndex = HashMap<[u8; 32], usize, BuildHasherDefault<DigestHasher>>;

/// Hashes a SHA-256 digest by taking 8 of its bytes: they are uniformly distributed already,
/// so hashing them again (SipHash) would only cost time. A client choosing keys so that their
/// digests share a bucket only slows its own lookups, which walk configured entries alone.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // `[u8; 32]` hashes as its length (8 bytes) then its 32 bytes: keep the digest's.
        if bytes.len() >= 8 {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[..8]);
            self.0 = u64::from_le_bytes(b);
        }
    }
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
    /// Checks serde cannot express (at least one key, no duplicate hashes, a subject each) and
    /// builds the digest index: O(n), so 100,000 keys configure well within the deadline.
    pub fn validate(&self) -> Result<(), String> {
        if self.keys.is_empty() {
            return Err("invalid config at `keys`: at least one key is required".into());
        }
        let index = build_index(&self.keys)?;
        // Already set only if validated before: same keys, same index.
        let _ = self.index.set(index);
        Ok(())
    }

    fn index(&self) -> &KeyIndex {
        // `configure` validated the config before any request; a config that failed
        // validation never serves one, so the fallback only runs in unit tests.
        self.index.get_or_init(|| build_index(&self.keys).unwrap_or_default())
    }
}

fn build_index(keys: &[KeyEntry]) -> Result<KeyIndex, String> {
    let mut index = KeyIndex::with_capacity_and_hasher(keys.len(), BuildHasherDefault::default());
    for (i, entry) in keys.iter().enumerate() {
        if entry.subject.is_empty() {
            return Err(format!("invalid config at `keys[{i}].subject`: must not be empty"));
        }
        if let Some(j) = index.insert(entry.sha256.0, i) {
            return Err(format!("invalid config at `keys[{i}].sha256`: same hash as `keys[{j}]`"));
        }
    }
    Ok(index)
}

/// The key the client presented, if any (trimmed, non-empty).
pub fn presented_key(source: KeySource, req: &Request) -> Option<&str> {
    match source {
        KeySource::Authorization => req.bearer_token(),
        KeySource::XApiKey => req.header("x-api-key").map(str::trim).filter(|k| !k.is_empty()),
    }
}

/// Index of the entry whose hash equals `sha256(key)`: one digest and one map lookup.
pub fn find_key(config: &Config, key: &str) -> Option<usize> {
    let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    config.index().get(&digest).copied()
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
    fn find_key_looks_up_the_digest() {
        let cfg = config("");
        assert_eq!(find_key(&cfg, "sk-alice"), Some(0));
        assert_eq!(find_key(&cfg, "sk-bob"), Some(1));
        assert_eq!(find_key(&cfg, ""), None);
    }

    #[test]
    fn a_hundred_thousand_keys_each_found_and_duplicates_named() {
        let keys: Vec<String> =
            (0..100_000).map(|i| format!(r#"{{"sha256":"{}","subject":"u{i}"}}"#, hex(&format!("sk-{i}")))).collect();
        let cfg: Config = parse_config(&format!(r#"{{"keys":[{}]}}"#, keys.join(","))).unwrap();
        cfg.validate().unwrap();
        for i in [0, 1, 4_999, 99_999] {
            assert_eq!(find_key(&cfg, &format!("sk-{i}")), Some(i));
        }
        assert_eq!(find_key(&cfg, "sk-100000"), None);
        let mut dup = keys;
        dup.push(format!(r#"{{"sha256":"{}","subject":"again"}}"#, hex("sk-42")));
        let cfg: Config = parse_config(&format!(r#"{{"keys":[{}]}}"#, dup.join(","))).unwrap();
        assert_eq!(cfg.validate().unwrap_err(), "invalid config at `keys[100000].sha256`: same hash as `keys[42]`");
    }
}
