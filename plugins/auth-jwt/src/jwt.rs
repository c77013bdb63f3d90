//! The pure logic: config (keys parsed once), token checks, identity, the deny responses.
//! Time is a parameter (`now_secs`) so everything here runs natively in unit tests.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rsa::RsaPublicKey;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::traits::PublicKeyParts;
use serde::Deserialize;
use sha2::Sha256;
use wasmgate_sdk::serde_json::{Map, Value};
use wasmgate_sdk::{AuthDecision, Identity, Request, Response, error_response, serde_json};

/// Shortest accepted HS256 secret, in bytes (RFC 7518 §3.2: at least the hash size).
pub const MIN_HS256_SECRET_BYTES: usize = 32;
/// Smallest accepted RSA modulus, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest accepted `leeway-seconds`.
pub const MAX_LEEWAY_SECONDS: u64 = 300;
/// Longer bearer tokens are refused before any decoding.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The plugin config; see `README.md`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// The only accepted `iss`.
    pub issuer: String,
    /// `aud` (a string or an array of strings) must contain it.
    pub audience: String,
    /// HS256 shared secret (its UTF-8 bytes), at least 32 bytes.
    #[serde(default)]
    pub hs256_secret: Option<Hs256Secret>,
    /// RS256 public key, PEM: SPKI (`BEGIN PUBLIC KEY`) or PKCS#1 (`BEGIN RSA PUBLIC KEY`).
    #[serde(default)]
    pub rs256_public_key: Option<Rs256Key>,
    /// Clock skew allowed for `exp`, `nbf` and `iat`. Default 30, at most 300.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// The claim that gives `identity.subject`. Default `sub`.
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    /// The claim that gives `identity.tenant`. Default: none (no tenant).
    #[serde(default)]
    pub tenant_claim: Option<String>,
    /// Claims copied into `identity.metadata` when present (in this order).
    #[serde(default)]
    pub metadata_claims: Vec<String>,
}

fn default_leeway() -> u64 {
    30
}

fn default_subject_claim() -> String {
    "sub".into()
}

/// An HS256 secret, checked for length when parsed. Never printed.
#[derive(Deserialize)]
#[serde(try_from = "String")]
pub struct Hs256Secret(Vec<u8>);

impl TryFrom<String> for Hs256Secret {
    type Error = String;

    fn try_from(secret: String) -> Result<Self, String> {
        if secret.len() < MIN_HS256_SECRET_BYTES {
            return Err(format!("the secret must be at least {MIN_HS256_SECRET_BYTES} bytes, got {}", secret.len()));
        }
        Ok(Self(secret.into_bytes()))
    }
}

impl fmt::Debug for Hs256Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hs256Secret(<{} bytes>)", self.0.len())
    }
}

/// An RS256 verifying key, parsed from PEM when the config is parsed.
#[derive(Deserialize)]
#[serde(try_from = "String")]
pub struct Rs256Key(VerifyingKey<Sha256>);

impl TryFrom<String> for Rs256Key {
    type Error = String;

    fn try_from(pem: String) -> Result<Self, String> {
        // Tolerate indentation and blank lines from multi-line TOML strings.
        let pem: String = pem.lines().map(str::trim).filter(|l| !l.is_empty()).fold(String::new(), |mut s, l| {
            s.push_str(l);
            s.push('\n');
            s
        });
        let key = if pem.starts_with("-----BEGIN RSA PUBLIC KEY-----") {
            RsaPublicKey::from_pkcs1_pem(&pem).map_err(|e| format!("not a PKCS#1 RSA public key PEM: {e}"))?
        } else if pem.starts_with("-----BEGIN PUBLIC KEY-----") {
            RsaPublicKey::from_public_key_pem(&pem).map_err(|e| format!("not an RSA SPKI public key PEM: {e}"))?
        } else {
            return Err("expected a PEM public key (`-----BEGIN PUBLIC KEY-----` or \
                        `-----BEGIN RSA PUBLIC KEY-----`)"
                .into());
        };
        let bits = key.size() * 8;
        if bits < MIN_RSA_BITS {
            return Err(format!("the RSA key must be at least {MIN_RSA_BITS} bits, got {bits}"));
        }
        Ok(Self(VerifyingKey::new(key)))
    }
}

impl fmt::Debug for Rs256Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = self.0.as_ref().size() * 8;
        write!(f, "Rs256Key(<{bits} bits>)")
    }
}

impl Config {
    /// Checks serde cannot express. Keys and secrets were already checked while parsing.
    pub fn validate(&self) -> Result<(), String> {
        if self.hs256_secret.is_none() && self.rs256_public_key.is_none() {
            return Err("invalid config: at least one of `hs256-secret` and `rs256-public-key` is required".into());
        }
        if self.issuer.is_empty() {
            return Err("invalid config at `issuer`: must not be empty".into());
        }
        if self.audience.is_empty() {
            return Err("invalid config at `audience`: must not be empty".into());
        }
        if self.leeway_seconds > MAX_LEEWAY_SECONDS {
            return Err(format!("invalid config at `leeway-seconds`: at most {MAX_LEEWAY_SECONDS}"));
        }
        if self.subject_claim.is_empty() {
            return Err("invalid config at `subject-claim`: must not be empty".into());
        }
        if self.tenant_claim.as_deref() == Some("") {
            return Err("invalid config at `tenant-claim`: must not be empty".into());
        }
        if let Some(i) = self.metadata_claims.iter().position(String::is_empty) {
            return Err(format!("invalid config at `metadata-claims[{i}]`: must not be empty"));
        }
        Ok(())
    }
}

/// Why a request was refused. [`Reject::message`] never contains the token or its claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// No `authorization: Bearer <token>` header.
    Missing,
    /// Longer than [`MAX_TOKEN_BYTES`].
    TooLarge,
    /// Not three base64url parts with a JSON object header and payload.
    Malformed,
    /// `alg` is not one this config has a key for (`none`, `HS512`, RS256 without an RSA key...).
    Algorithm,
    /// `typ` is present and not `JWT`.
    Type,
    /// The header has `crit` (no extension is understood).
    Critical,
    /// The signature does not verify.
    Signature,
    /// No `exp`.
    NoExpiry,
    /// A time claim (`exp`, `nbf`, `iat`) is not a number.
    BadTime(&'static str),
    /// `exp` (plus leeway) is past.
    Expired,
    /// `nbf` (minus leeway) is in the future.
    NotYetValid,
    /// `iat` (minus leeway) is in the future.
    IssuedInFuture,
    /// `iss` is missing or not the configured issuer.
    Issuer,
    /// `aud` is missing or does not contain the configured audience.
    Audience,
    /// The subject claim is missing, empty or not a string/number.
    Subject,
}

impl Reject {
    /// The message of the 401 body.
    pub fn message(&self, config: &Config) -> String {
        match self {
            Self::Missing => "Missing bearer token.".into(),
            Self::TooLarge => "The bearer token is too large.".into(),
            Self::Malformed => "The bearer token is not a well-formed JWT.".into(),
            Self::Algorithm => "The bearer token's algorithm is not accepted.".into(),
            Self::Type => "The bearer token's type is not accepted.".into(),
            Self::Critical => "The bearer token has critical header parameters that are not supported.".into(),
            Self::Signature => "The bearer token's signature is invalid.".into(),
            Self::NoExpiry => "The bearer token has no expiry (`exp`).".into(),
            Self::BadTime(claim) => format!("The bearer token's `{claim}` claim is not a number."),
            Self::Expired => "The bearer token has expired.".into(),
            Self::NotYetValid => "The bearer token is not valid yet.".into(),
            Self::IssuedInFuture => "The bearer token was issued in the future.".into(),
            Self::Issuer => "The bearer token's issuer is not accepted.".into(),
            Self::Audience => "The bearer token's audience is not accepted.".into(),
            Self::Subject => format!("The bearer token has no `{}` claim.", config.subject_claim),
        }
    }

    /// The 401 answer: OpenAI-shaped body and `www-authenticate` (RFC 6750: no error code
    /// when no credentials were sent at all).
    pub fn response(&self, config: &Config) -> Response {
        let challenge = match self {
            Self::Missing => "Bearer",
            _ => "Bearer error=\"invalid_token\"",
        };
        error_response(401, &self.message(config), "invalid_request_error", "invalid_api_key")
            .with_header("www-authenticate", challenge)
    }
}

/// The whole decision for one request at `now_secs` (seconds since the Unix epoch).
pub fn authenticate(config: &Config, req: &Request, now_secs: u64) -> AuthDecision {
    let result = match req.bearer_token() {
        Some(token) => verify(config, token, now_secs),
        None => Err(Reject::Missing),
    };
    match result {
        Ok(identity) => AuthDecision::Allow(identity),
        Err(reject) => AuthDecision::Deny(reject.response(config)),
    }
}

/// Check `token` completely and build the identity from its claims.
pub fn verify(config: &Config, token: &str, now_secs: u64) -> Result<Identity, Reject> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Reject::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Reject::Malformed);
    };
    let header = decode_object(header_b64)?;
    let signature = URL_SAFE_NO_PAD.decode(sig_b64).map_err(|_| Reject::Malformed)?;

    if let Some(typ) = header.get("typ")
        && !typ.as_str().is_some_and(|t| t.eq_ignore_ascii_case("JWT"))
    {
        return Err(Reject::Type);
    }
    if header.contains_key("crit") {
        return Err(Reject::Critical);
    }

    // The signature covers the two first parts exactly as sent.
    let signed = &token[..header_b64.len() + 1 + payload_b64.len()];
    match header.get("alg").and_then(Value::as_str) {
        Some("HS256") => {
            let secret = config.hs256_secret.as_ref().ok_or(Reject::Algorithm)?;
            let mut mac = Hmac::<Sha256>::new_from_slice(&secret.0).map_err(|_| Reject::Signature)?;
            mac.update(signed.as_bytes());
            // Constant-time comparison (`subtle` inside `hmac`).
            mac.verify_slice(&signature).map_err(|_| Reject::Signature)?;
        }
        Some("RS256") => {
            let key = config.rs256_public_key.as_ref().ok_or(Reject::Algorithm)?;
            let signature = Signature::try_from(signature.as_slice()).map_err(|_| Reject::Signature)?;
            key.0.verify(signed.as_bytes(), &signature).map_err(|_| Reject::Signature)?;
        }
        Some(_) => return Err(Reject::Algorithm),
        None => return Err(Reject::Malformed),
    }

    // Only now, with the signature checked, is the payload trusted enough to read.
    let claims = decode_object(payload_b64)?;
    check_times(&claims, now_secs, config.leeway_seconds)?;
    if claims.get("iss").and_then(Value::as_str) != Some(config.issuer.as_str()) {
        return Err(Reject::Issuer);
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => *aud == config.audience,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(config.audience.as_str())),
        _ => false,
    };
    if !audience_ok {
        return Err(Reject::Audience);
    }

    let subject = claims.get(&config.subject_claim).and_then(scalar_text).filter(|s| !s.is_empty());
    let subject = subject.ok_or(Reject::Subject)?;
    let tenant = config.tenant_claim.as_ref().and_then(|name| claims.get(name)).and_then(scalar_text);
    let metadata = config
        .metadata_claims
        .iter()
        .filter_map(|name| Some((name.clone(), scalar_text(claims.get(name)?)?)))
        .collect();
    Ok(Identity { subject, tenant, metadata })
}

/// A base64url (no padding) part that must be a JSON object.
fn decode_object(part: &str) -> Result<Map<String, Value>, Reject> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| Reject::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| Reject::Malformed)
}

/// `exp` required and not past; `nbf` and `iat` not in the future; all within `leeway`.
fn check_times(claims: &Map<String, Value>, now_secs: u64, leeway: u64) -> Result<(), Reject> {
    // NumericDate may be fractional; f64 is exact for any realistic epoch second.
    let time = |name: &'static str| -> Result<Option<f64>, Reject> {
        match claims.get(name) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or(Reject::BadTime(name)),
        }
    };
    let now = now_secs as f64;
    let leeway = leeway as f64;
    let exp = time("exp")?.ok_or(Reject::NoExpiry)?;
    if now > exp + leeway {
        return Err(Reject::Expired);
    }
    if time("nbf")?.is_some_and(|nbf| nbf > now + leeway) {
        return Err(Reject::NotYetValid);
    }
    if time("iat")?.is_some_and(|iat| iat > now + leeway) {
        return Err(Reject::IssuedInFuture);
    }
    Ok(())
}

/// Strings as they are, numbers and booleans as text; anything else is not usable.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]
    use super::*;
    use rsa::RsaPrivateKey;
    use rsa::pkcs1v15::SigningKey;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};
    use wasmgate_sdk::{parse_config, test_request};

    const NOW: u64 = 1_800_000_000;
    const SECRET: &str = "0123456789abcdef0123456789abcdef-test";
    const ISS: &str = "https://idp.example.com";

    /// Test-only RSA 2048 key pair (generated with `openssl genrsa 2048`), PKCS#8.
    const RSA_PRIVATE_PEM: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCVE4Hgym8OtTvM\n\
9c9oVxDCqLEfi+AtMSx1uCdWrhGWFfXnmjv9TszVOrbsGMn1ZLLOAsmZFNE++A2W\n\
l24VB+IdTJbhjS1WUA7t+BaZHoYlf0jtNBJyEENJsiZPCmVjO7sVoQWCCIzS0cTV\n\
vaeHA3yZJIVALbz7D5ivX6EiIXp44jd3eLai0qgBKaMiUhNqVeeoaZ4E4yimEDEC\n\
vcfth9dx0wnARDWZkUm6x9vC6O7TOQLGQ3kZbjxzJTnReWzAZxuD+gOu5VycfOWr\n\
f+kFLgR8iQfJnLqM1e55RSeNOlQFWNZFN3+rqo98uBXl6f/AHF+UNVCUmTe4gVlc\n\
zybl017ZAgMBAAECggEABajP7XDB9pT6yDUswpFLmZg94Sy2PgD35yAuniPNlx0O\n\
UNSSInOzYwTvnNb0E9TW1OtWK/GWYAWavnTRQQsjkmkt8TIi3nv7lR0t/nIiNZo3\n\
confiWUEqO+SdL24S6Qg3hlW1DDu57H+/v5MNdv0BvxT8rPJ0N4utbmzrFAJDj25\n\
cBz/BsuPK9d2wmUA2NKN9iTthIuzfQVZUiHcxw4sRER50VZMKoEiAow5Wbxut6rr\n\
I5610aVE7O+rks6pArra+fNAmVCYn0ui5602XqseMcPc8qugQaqlvsB41P6S1jI2\n\
EUH9li5b8tHflFaN2xnKT14/yZYVarIfYgntLRl9gQKBgQDQeISzVl9lhAiGaAQm\n\
J8VEANABa2ElFcF2Yk/Lql5RtdYr7/Y2KgzzvJX6xXuM68R81Rd6PZ+p6QEN213R\n\
f2B2Mfh33zn6kuwwmjAUAVq8XE9j0qtBuRhg8ILNbAiN/osebUbU/YrvfQabD/E1\n\
5pMUBCazN2P09yg+dwPtoKyw3QKBgQC3EGaE92ZMbaFBlA1jMcCB1WYzFa2jLkQy\n\
3DEvNAq5V3ym4zmtCblgULEQ8U7hEhc35KJhmaMXqcV094Y5J+8CqkP1hxv0kcUp\n\
nTxHCJx0EtfRY4pG5LpSH5RMZZO+81oJzTuxP2pQCCYe07HFkE/w5Zt13qltepq+\n\
Rsp7OPDoLQKBgQCP0iVSiAsGQQGUoFwEarmYAat+3zLE3+55GrgMPPwXCQi5hTHq\n\
CjanTHp36Bglj14d9PDef3cQRFRa1/Uwm9zTjgPpxxH7wbK6kRUMKCcN/e0zY9qM\n\
XALqleLXj2mTdIFLu337YPOh5zJQdb4mPm1HiNmeGF+YV47nETqfjJK27QKBgAwb\n\
K4xzh/JZ9aYOkmwS6DYt1JpgPqFh9+SdJyuF94eWP4oR0MiesgGqlGsYaiz8M0jg\n\
99QYgu6XrZU0oU26VFYKyH++NZ0Q3scHvOq9qQsMC/Wu7YAOtDumFvqOZRzlnviy\n\
99Wa6f7s6why23jDOGYn6QX8eZvh1cXrjIxlkZjpAoGAZvy4qBtOusRIYVfBkvFm\n\
nnxP2/ttvXWr9+GKjEOh8SognR0b+FwSgCPdgEVd16t03f0SIkiQfz5fW0NTGcgB\n\
sIS2gGp+kdznnYnHuPr1MJ7D+jQKBtCnaAJ2M0KqOeMAKMdByiF7eSzvITKZBixW\n\
ykjRDhkVsaW7jjLdZq2qAQ4=\n\
-----END PRIVATE KEY-----\n\
";
    /// Its public key, SPKI.
    const RSA_PUBLIC_PEM: &str = "\
-----BEGIN PUBLIC KEY-----\n\
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAlROB4MpvDrU7zPXPaFcQ\n\
wqixH4vgLTEsdbgnVq4RlhX155o7/U7M1Tq27BjJ9WSyzgLJmRTRPvgNlpduFQfi\n\
HUyW4Y0tVlAO7fgWmR6GJX9I7TQSchBDSbImTwplYzu7FaEFggiM0tHE1b2nhwN8\n\
mSSFQC28+w+Yr1+hIiF6eOI3d3i2otKoASmjIlITalXnqGmeBOMophAxAr3H7YfX\n\
cdMJwEQ1mZFJusfbwuju0zkCxkN5GW48cyU50XlswGcbg/oDruVcnHzlq3/pBS4E\n\
fIkHyZy6jNXueUUnjTpUBVjWRTd/q6qPfLgV5en/wBxflDVQlJk3uIFZXM8m5dNe\n\
2QIDAQAB\n\
-----END PUBLIC KEY-----\n\
";
    /// The same public key, PKCS#1.
    const RSA_PUBLIC_PKCS1_PEM: &str = "\
-----BEGIN RSA PUBLIC KEY-----\n\
MIIBCgKCAQEAlROB4MpvDrU7zPXPaFcQwqixH4vgLTEsdbgnVq4RlhX155o7/U7M\n\
1Tq27BjJ9WSyzgLJmRTRPvgNlpduFQfiHUyW4Y0tVlAO7fgWmR6GJX9I7TQSchBD\n\
SbImTwplYzu7FaEFggiM0tHE1b2nhwN8mSSFQC28+w+Yr1+hIiF6eOI3d3i2otKo\n\
ASmjIlITalXnqGmeBOMophAxAr3H7YfXcdMJwEQ1mZFJusfbwuju0zkCxkN5GW48\n\
cyU50XlswGcbg/oDruVcnHzlq3/pBS4EfIkHyZy6jNXueUUnjTpUBVjWRTd/q6qP\n\
fLgV5en/wBxflDVQlJk3uIFZXM8m5dNe2QIDAQAB\n\
-----END RSA PUBLIC KEY-----\n\
";
    /// Another 2048-bit public key (its private half was thrown away).
    const OTHER_PUBLIC_PEM: &str = "\
-----BEGIN PUBLIC KEY-----\n\
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtxnfNliUZ8QSPgKZnk7w\n\
VFhn5cxGV0nwyWRYj6qcG/av13HVxBo7wwY2CqcpCZDcySBIAJwludXADV3IHj1S\n\
E4rBMqHhFjl3+Ao1mTTc92i1HGDMNnSgchKswGAs9VULboE0k2Lynn2owjPUWnZs\n\
3msi8vC5G0lzTTUtBP9GVAaOBpQJTXNG1dULdj6mZ9rG8u4PEEcthADdcAYblXzb\n\
OWw+CHAaG5Kah2jUDX2kIyYX0FaxN01frLHyMZzdQ4Sy3JcnmbVBrI/ex1pqRevs\n\
2btFJgKBuZTsr+KFrLTeK60UHF3dgnzb/eYkOZQGXqQlrILJrDNxCTOxB9h1LxKR\n\
7QIDAQAB\n\
-----END PUBLIC KEY-----\n\
";
    /// A 1024-bit public key: too small.
    const SMALL_PUBLIC_PEM: &str = "\
-----BEGIN PUBLIC KEY-----\n\
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC86tXyrJSCg4LGwNqBXdDzTTTW\n\
YVA9MCC311dnO7RY0APwL95VXTIFguOYSTPuw9JflbLeLw9x8T/SlO8Oh8wzL0D9\n\
yyv9JiM8dk+BXZOAtJf1V15WWnJdOpEUCzwjpDYGw+nR5zjSot7T03bh5jHoDMK+\n\
21+nFR7CnmLfFgWyVwIDAQAB\n\
-----END PUBLIC KEY-----\n\
";

    fn config_json(extra: &str) -> String {
        format!(r#"{{"issuer":"{ISS}","audience":"wasmgate"{extra}}}"#)
    }

    fn config(extra: &str) -> Config {
        let config: Config = parse_config(&config_json(extra)).unwrap();
        config.validate().unwrap();
        config
    }

    fn json_str(s: &str) -> String {
        serde_json::to_string(s).unwrap()
    }

    fn hs_config() -> Config {
        config(&format!(
            r#","hs256-secret":"{SECRET}","tenant-claim":"tenant","metadata-claims":["email","plan","admin","missing","obj"]"#
        ))
    }

    fn rs_config() -> Config {
        config(&format!(r#","rs256-public-key":{},"tenant-claim":"tenant""#, json_str(RSA_PUBLIC_PEM)))
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn claims() -> Value {
        serde_json::json!({
            "iss": ISS, "aud": "wasmgate", "sub": "user-1", "tenant": "acme",
            "email": "a@example.com", "plan": "pro", "admin": true, "obj": {"x": 1},
            "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 600,
        })
    }

    fn with(mut claims: Value, key: &str, value: Value) -> Value {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(key);
        } else {
            claims[key] = value;
        }
        claims
    }

    fn unsigned(alg: &str, claims: &Value) -> String {
        let header = serde_json::json!({"alg": alg, "typ": "JWT"});
        format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()))
    }

    fn hs256(claims: &Value) -> String {
        let signed = unsigned("HS256", claims);
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(signed.as_bytes());
        format!("{signed}.{}", b64(&mac.finalize().into_bytes()))
    }

    fn rs256_with_header(alg: &str, claims: &Value) -> String {
        let signed = unsigned(alg, claims);
        let key = SigningKey::<Sha256>::new(RsaPrivateKey::from_pkcs8_pem(RSA_PRIVATE_PEM).unwrap());
        format!("{signed}.{}", b64(&key.sign(signed.as_bytes()).to_vec()))
    }

    fn rs256(claims: &Value) -> String {
        rs256_with_header("RS256", claims)
    }

    fn bearer(token: &str) -> Request {
        Request { headers: vec![("authorization".into(), format!("Bearer {token}"))], ..test_request() }
    }

    #[test]
    fn valid_hs256_token_gives_identity() {
        let cfg = hs_config();
        let AuthDecision::Allow(id) = authenticate(&cfg, &bearer(&hs256(&claims())), NOW) else {
            panic!("denied");
        };
        assert_eq!(id.subject, "user-1");
        assert_eq!(id.tenant.as_deref(), Some("acme"));
        let pairs = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        // Configured order; absent and non-scalar claims skipped; booleans as text.
        assert_eq!(id.metadata, pairs(&[("email", "a@example.com"), ("plan", "pro"), ("admin", "true")]));
    }

    #[test]
    fn valid_rs256_token_gives_identity_spki_and_pkcs1() {
        let token = rs256(&with(claims(), "sub", serde_json::json!(42)));
        let id = verify(&rs_config(), &token, NOW).unwrap();
        assert_eq!((id.subject.as_str(), id.tenant.as_deref()), ("42", Some("acme")));
        assert!(id.metadata.is_empty());
        let pkcs1 = config(&format!(r#","rs256-public-key":{}"#, json_str(RSA_PUBLIC_PKCS1_PEM)));
        let id = verify(&pkcs1, &token, NOW).unwrap();
        assert_eq!((id.subject.as_str(), id.tenant), ("42", None));
    }

    #[test]
    fn both_keys_configured_accept_both_algorithms() {
        let cfg = config(&format!(r#","hs256-secret":"{SECRET}","rs256-public-key":{}"#, json_str(RSA_PUBLIC_PEM)));
        assert!(verify(&cfg, &hs256(&claims()), NOW).is_ok());
        assert!(verify(&cfg, &rs256(&claims()), NOW).is_ok());
    }

    #[test]
    fn expiry_with_leeway() {
        let cfg = hs_config();
        let token = hs256(&with(claims(), "exp", serde_json::json!(NOW - 20)));
        assert!(verify(&cfg, &token, NOW).is_ok(), "20 s late is within the default 30 s");
        let token = hs256(&with(claims(), "exp", serde_json::json!(NOW - 31)));
        assert_eq!(verify(&cfg, &token, NOW).unwrap_err(), Reject::Expired);
        let strict = config(&format!(r#","hs256-secret":"{SECRET}","leeway-seconds":0"#));
        let token = hs256(&with(claims(), "exp", serde_json::json!(NOW - 1)));
        assert_eq!(verify(&strict, &token, NOW).unwrap_err(), Reject::Expired);
        let token = hs256(&with(claims(), "exp", Value::Null));
        assert_eq!(verify(&cfg, &token, NOW).unwrap_err(), Reject::NoExpiry);
        let token = hs256(&with(claims(), "exp", serde_json::json!("soon")));
        assert_eq!(verify(&cfg, &token, NOW).unwrap_err(), Reject::BadTime("exp"));
    }

    #[test]
    fn not_before_and_issued_at_in_the_future() {
        let cfg = hs_config();
        let token = hs256(&with(claims(), "nbf", serde_json::json!(NOW + 25)));
        assert!(verify(&cfg, &token, NOW).is_ok(), "within leeway");
        let token = hs256(&with(claims(), "nbf", serde_json::json!(NOW + 60)));
        assert_eq!(verify(&cfg, &token, NOW).unwrap_err(), Reject::NotYetValid);
        let token = hs256(&with(claims(), "iat", serde_json::json!(NOW + 60)));
        assert_eq!(verify(&cfg, &token, NOW).unwrap_err(), Reject::IssuedInFuture);
    }

    #[test]
    fn wrong_issuer() {
        let cfg = hs_config();
        for iss in [serde_json::json!("https://evil.example.com"), serde_json::json!(1), Value::Null] {
            let token = hs256(&with(claims(), "iss", iss));
            assert_eq!(verify(&cfg, &token, NOW).unwrap_err(), Reject::Issuer);
        }
    }

    #[test]
    fn audience_string_or_array() {
        let cfg = hs_config();
        let token = hs256(&with(claims(), "aud", serde_json::json!(["other", "wasmgate"])));
        assert!(verify(&cfg, &token, NOW).is_ok());
        for aud in [serde_json::json!("other"), serde_json::json!(["other", "x"]), serde_json::json!([]), Value::Null] {
            let token = hs256(&with(claims(), "aud", aud));
            assert_eq!(verify(&cfg, &token, NOW).unwrap_err(), Reject::Audience);
        }
    }

    #[test]
    fn bad_signatures() {
        let cfg = hs_config();
        let token = hs256(&claims());
        // Another payload under the original signature.
        let (_, sig) = token.rsplit_once('.').unwrap();
        let forged = format!("{}.{sig}", unsigned("HS256", &with(claims(), "sub", serde_json::json!("root"))));
        assert_eq!(verify(&cfg, &forged, NOW).unwrap_err(), Reject::Signature);
        // A truncated signature.
        let truncate = |token: &str| {
            let (signed, sig) = token.rsplit_once('.').unwrap();
            let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
            format!("{signed}.{}", b64(&sig[..sig.len() - 3]))
        };
        assert_eq!(verify(&cfg, &truncate(&token), NOW).unwrap_err(), Reject::Signature);
        // Signed with another RSA key than the configured one.
        let other = config(&format!(r#","rs256-public-key":{}"#, json_str(OTHER_PUBLIC_PEM)));
        assert_eq!(verify(&other, &rs256(&claims()), NOW).unwrap_err(), Reject::Signature);
        // An RSA signature of the wrong length.
        assert_eq!(verify(&rs_config(), &truncate(&rs256(&claims())), NOW).unwrap_err(), Reject::Signature);
    }

    #[test]
    fn alg_none_and_unknown_algorithms_refused() {
        let cfg = hs_config();
        let none = format!("{}.", unsigned("none", &claims()));
        assert_eq!(verify(&cfg, &none, NOW).unwrap_err(), Reject::Algorithm);
        let hs512 = hs256(&claims()).replacen(&b64(br#"{"alg":"HS256","typ":"JWT"}"#), &b64(br#"{"alg":"HS512"}"#), 1);
        assert_eq!(verify(&cfg, &hs512, NOW).unwrap_err(), Reject::Algorithm);
        let no_alg = format!("{}.{}.", b64(br#"{"typ":"JWT"}"#), b64(claims().to_string().as_bytes()));
        assert_eq!(verify(&cfg, &no_alg, NOW).unwrap_err(), Reject::Malformed);
    }

    #[test]
    fn algorithm_must_match_the_configured_key() {
        // RS256 token, only an HS256 secret configured.
        assert_eq!(verify(&hs_config(), &rs256(&claims()), NOW).unwrap_err(), Reject::Algorithm);
        // HS256 token, only an RSA key configured, even when "signed" with the public key PEM
        // (the classic RS/HS confusion).
        let signed = unsigned("HS256", &claims());
        let mut mac = Hmac::<Sha256>::new_from_slice(RSA_PUBLIC_PEM.as_bytes()).unwrap();
        mac.update(signed.as_bytes());
        let confused = format!("{signed}.{}", b64(&mac.finalize().into_bytes()));
        assert_eq!(verify(&rs_config(), &confused, NOW).unwrap_err(), Reject::Algorithm);
        // RSA signature under an HS256 header with both keys configured: HMAC check fails.
        let both = config(&format!(r#","hs256-secret":"{SECRET}","rs256-public-key":{}"#, json_str(RSA_PUBLIC_PEM)));
        let relabelled = rs256_with_header("HS256", &claims());
        assert_eq!(verify(&both, &relabelled, NOW).unwrap_err(), Reject::Signature);
    }

    #[test]
    fn header_typ_and_crit() {
        let cfg = hs_config();
        let sign = |header: &str| {
            let signed = format!("{}.{}", b64(header.as_bytes()), b64(claims().to_string().as_bytes()));
            let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
            mac.update(signed.as_bytes());
            format!("{signed}.{}", b64(&mac.finalize().into_bytes()))
        };
        assert!(verify(&cfg, &sign(r#"{"alg":"HS256"}"#), NOW).is_ok());
        assert!(verify(&cfg, &sign(r#"{"alg":"HS256","typ":"jwt","kid":"k1"}"#), NOW).is_ok());
        assert_eq!(verify(&cfg, &sign(r#"{"alg":"HS256","typ":"JOSE"}"#), NOW).unwrap_err(), Reject::Type);
        let crit = sign(r#"{"alg":"HS256","crit":["exp"],"exp":1}"#);
        assert_eq!(verify(&cfg, &crit, NOW).unwrap_err(), Reject::Critical);
    }

    #[test]
    fn malformed_tokens() {
        let cfg = hs_config();
        let good = hs256(&claims());
        let (header, rest) = good.split_once('.').unwrap();
        for token in [
            "abc".to_string(),
            "a.b".to_string(),
            format!("{good}.x"),
            format!("!!!.{rest}"),
            format!("{header}.{rest}="),
            format!("{}.{rest}", b64(b"[1,2]")),
            format!("{}.{rest}", b64(b"not json")),
        ] {
            assert_eq!(verify(&cfg, &token, NOW).unwrap_err(), Reject::Malformed, "{token}");
        }
        // A correctly signed payload that is not a JSON object.
        let signed = format!("{header}.{}", b64(b"\"x\""));
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(signed.as_bytes());
        let token = format!("{signed}.{}", b64(&mac.finalize().into_bytes()));
        assert_eq!(verify(&cfg, &token, NOW).unwrap_err(), Reject::Malformed);
        assert_eq!(verify(&cfg, &"a".repeat(MAX_TOKEN_BYTES + 1), NOW).unwrap_err(), Reject::TooLarge);
    }

    #[test]
    fn subject_claim_required_and_configurable() {
        let cfg = hs_config();
        let token = hs256(&with(claims(), "sub", Value::Null));
        assert_eq!(verify(&cfg, &token, NOW).unwrap_err(), Reject::Subject);
        let token = hs256(&with(claims(), "sub", serde_json::json!("")));
        assert_eq!(verify(&cfg, &token, NOW).unwrap_err(), Reject::Subject);
        let by_email = config(&format!(r#","hs256-secret":"{SECRET}","subject-claim":"email""#));
        let id = verify(&by_email, &hs256(&claims()), NOW).unwrap();
        assert_eq!((id.subject.as_str(), id.tenant), ("a@example.com", None));
    }

    #[test]
    fn deny_responses_are_openai_shaped_and_do_not_echo_the_token() {
        let cfg = hs_config();
        let token = hs256(&with(claims(), "exp", serde_json::json!(NOW - 3600)));
        let AuthDecision::Deny(r) = authenticate(&cfg, &bearer(&token), NOW) else { panic!("allowed") };
        assert_eq!(r.status, 401);
        assert_eq!(
            r.body,
            r#"{"error":{"message":"The bearer token has expired.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#
        );
        assert_eq!(r.headers, vec![("www-authenticate".to_string(), "Bearer error=\"invalid_token\"".to_string())]);
        assert!(!r.body.contains(&token) && !r.body.contains("user-1"));

        let AuthDecision::Deny(r) = authenticate(&cfg, &test_request(), NOW) else { panic!("allowed") };
        assert!(r.body.contains("\"Missing bearer token.\""), "{}", r.body);
        assert_eq!(r.headers, vec![("www-authenticate".to_string(), "Bearer".to_string())]);
        let basic = Request { headers: vec![("authorization".into(), "Basic dXNlcjpwYXNz".into())], ..test_request() };
        assert!(matches!(authenticate(&cfg, &basic, NOW), AuthDecision::Deny(_)));

        let AuthDecision::Deny(r) =
            authenticate(&cfg, &bearer(&hs256(&with(claims(), "aud", serde_json::json!("x")))), NOW)
        else {
            panic!("allowed")
        };
        assert!(r.body.contains("The bearer token's audience is not accepted."));
    }

    #[test]
    fn config_errors_name_the_field() {
        let err = |extra: &str| match parse_config::<Config>(&config_json(extra)) {
            Ok(cfg) => cfg.validate().unwrap_err(),
            Err(e) => e,
        };
        let e = err("");
        assert!(e.contains("`hs256-secret`") && e.contains("`rs256-public-key`"), "{e}");
        let e = err(r#","hs256-secret":"short""#);
        assert!(e.contains("`hs256-secret`") && e.contains("at least 32 bytes"), "{e}");
        let e = err(r#","rs256-public-key":"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n""#);
        assert!(e.contains("`rs256-public-key`"), "{e}");
        let e = err(r#","rs256-public-key":"ssh-rsa AAAA""#);
        assert!(e.contains("`rs256-public-key`") && e.contains("expected a PEM"), "{e}");
        let e = err(&format!(r#","rs256-public-key":{}"#, json_str(SMALL_PUBLIC_PEM)));
        assert!(e.contains("`rs256-public-key`") && e.contains("2048"), "{e}");
        let e = err(&format!(r#","hs256-secret":"{SECRET}","leeway-seconds":301"#));
        assert!(e.contains("`leeway-seconds`"), "{e}");
        let e = err(&format!(r#","hs256-secret":"{SECRET}","subject-claim":"""#));
        assert!(e.contains("`subject-claim`"), "{e}");
        let e = err(&format!(r#","hs256-secret":"{SECRET}","metadata-claims":["a",""]"#));
        assert!(e.contains("`metadata-claims[1]`"), "{e}");
        let e = err(&format!(r#","hs256-secret":"{SECRET}","algorithm":"HS256""#));
        assert!(e.contains("unknown field `algorithm`"), "{e}");
        let e = parse_config::<Config>(&format!(r#"{{"audience":"a","hs256-secret":"{SECRET}"}}"#)).unwrap_err();
        assert!(e.contains("missing field `issuer`"), "{e}");
        // The secret never shows up in Debug output.
        assert!(!format!("{:?}", hs_config()).contains(SECRET));
        // Indented multi-line PEM (as a TOML multi-line string may give) is fine.
        let indented: String = RSA_PUBLIC_PEM.lines().map(|l| format!("    {l}\n")).collect();
        assert!(
            parse_config::<Config>(&config_json(&format!(r#","rs256-public-key":{}"#, json_str(&indented)))).is_ok()
        );
    }
}
