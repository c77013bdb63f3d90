//! The pure logic: config, token parsing, signature and claim checks, the deny responses.
//! Time comes in as a parameter so everything is testable natively.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rsa::RsaPublicKey;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde::Deserialize;
use sha2::Sha256;
use wasmgate_sdk::serde_json::{self, Value};
use wasmgate_sdk::{AuthDecision, Identity, Request, error_response};

/// The plugin config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// `iss` must equal this.
    pub issuer: String,
    /// `aud` (a string or an array) must contain this.
    pub audience: String,
    /// HS256 shared secret (at least 32 bytes).
    #[serde(default)]
    pub hs256_secret: Option<String>,
    /// RS256 public key, PEM (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`).
    #[serde(default)]
    pub rs256_public_key: Option<String>,
    /// Clock skew allowed on `exp`, `nbf`, `iat`, seconds. Default 30, at most 300.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// Claim giving the identity's subject. Default `sub`.
    #[serde(default = "default_subject")]
    pub subject_claim: String,
    /// Claim giving the identity's tenant, if any.
    #[serde(default)]
    pub tenant_claim: Option<String>,
    /// Claims copied into the identity's metadata when present.
    #[serde(default)]
    pub metadata_claims: Vec<String>,
}

fn default_leeway() -> u64 {
    30
}

fn default_subject() -> String {
    "sub".to_string()
}

impl Config {
    /// Checks serde cannot express; errors name the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.issuer.is_empty() {
            return Err("invalid config at `issuer`: must not be empty".into());
        }
        if self.audience.is_empty() {
            return Err("invalid config at `audience`: must not be empty".into());
        }
        if self.hs256_secret.is_none() && self.rs256_public_key.is_none() {
            return Err("invalid config: set `hs256-secret`, `rs256-public-key` or both".into());
        }
        if self.hs256_secret.as_ref().is_some_and(|s| s.len() < 32) {
            return Err("invalid config at `hs256-secret`: must be at least 32 bytes".into());
        }
        if let Some(pem) = &self.rs256_public_key {
            rsa_key(pem).map_err(|e| format!("invalid config at `rs256-public-key`: {e}"))?;
        }
        if self.leeway_seconds > 300 {
            return Err("invalid config at `leeway-seconds`: at most 300".into());
        }
        Ok(())
    }
}

fn rsa_key(pem: &str) -> Result<RsaPublicKey, String> {
    RsaPublicKey::from_public_key_pem(pem.trim())
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem.trim()))
        .map_err(|_| "not an RSA public key in PEM (SPKI or PKCS#1)".to_string())
}

thread_local! {
    /// The parsed public key (parsing a PEM costs more than verifying a signature). An instance
    /// serves one config, so one entry is enough.
    static RSA_KEY: std::cell::RefCell<Option<(String, RsaPublicKey)>> = const { std::cell::RefCell::new(None) };
}

fn cached_rsa_key(pem: &str) -> Option<RsaPublicKey> {
    RSA_KEY.with(|cell| {
        let mut slot = cell.borrow_mut();
        if let Some((p, k)) = slot.as_ref()
            && p == pem
        {
            return Some(k.clone());
        }
        let key = rsa_key(pem).ok()?;
        *slot = Some((pem.to_string(), key.clone()));
        Some(key)
    })
}

/// Why a token was refused (the message never echoes the token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Malformed,
    Algorithm,
    Signature,
    Expired,
    NotYetValid,
    Issuer,
    Audience,
    Subject,
}

impl Refusal {
    fn message(self) -> &'static str {
        match self {
            Refusal::Missing => "Missing bearer token: send it as `Authorization: Bearer <jwt>`.",
            Refusal::Malformed => "The bearer token is not a well-formed JWT.",
            Refusal::Algorithm => "The bearer token's algorithm is not accepted.",
            Refusal::Signature => "The bearer token's signature is invalid.",
            Refusal::Expired => "The bearer token has expired.",
            Refusal::NotYetValid => "The bearer token is not valid yet.",
            Refusal::Issuer => "The bearer token's issuer is not accepted.",
            Refusal::Audience => "The bearer token's audience is not accepted.",
            Refusal::Subject => "The bearer token has no subject.",
        }
    }
}

fn part(s: &str) -> Result<Vec<u8>, Refusal> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).map_err(|_| Refusal::Malformed)
}

fn claim_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Verifies `token` at `now` (Unix seconds) and returns the identity.
pub fn verify(config: &Config, token: &str, now: u64) -> Result<Identity, Refusal> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(Refusal::Malformed);
    };
    let header: Value = serde_json::from_slice(&part(h)?).map_err(|_| Refusal::Malformed)?;
    if header.get("typ").is_some_and(|t| t.as_str().is_none_or(|t| !t.eq_ignore_ascii_case("JWT"))) {
        return Err(Refusal::Malformed);
    }
    let signed = &token[..h.len() + 1 + p.len()];
    let sig = part(s)?;
    match header.get("alg").and_then(Value::as_str) {
        Some("HS256") => {
            let secret = config.hs256_secret.as_ref().ok_or(Refusal::Algorithm)?;
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| Refusal::Signature)?;
            mac.update(signed.as_bytes());
            // `verify_slice` compares in constant time.
            mac.verify_slice(&sig).map_err(|_| Refusal::Signature)?;
        }
        Some("RS256") => {
            let pem = config.rs256_public_key.as_ref().ok_or(Refusal::Algorithm)?;
            let key = cached_rsa_key(pem).ok_or(Refusal::Algorithm)?;
            let signature = Signature::try_from(sig.as_slice()).map_err(|_| Refusal::Signature)?;
            VerifyingKey::<Sha256>::new(key).verify(signed.as_bytes(), &signature).map_err(|_| Refusal::Signature)?;
        }
        _ => return Err(Refusal::Algorithm),
    }
    let claims: Value = serde_json::from_slice(&part(p)?).map_err(|_| Refusal::Malformed)?;
    let leeway = config.leeway_seconds;
    let exp = claims.get("exp").and_then(Value::as_u64).ok_or(Refusal::Expired)?;
    if now > exp.saturating_add(leeway) {
        return Err(Refusal::Expired);
    }
    for c in ["nbf", "iat"] {
        if claims.get(c).and_then(Value::as_u64).is_some_and(|t| t > now.saturating_add(leeway)) {
            return Err(Refusal::NotYetValid);
        }
    }
    if claims.get("iss").and_then(Value::as_str) != Some(config.issuer.as_str()) {
        return Err(Refusal::Issuer);
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => *a == config.audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(config.audience.as_str())),
        _ => false,
    };
    if !aud_ok {
        return Err(Refusal::Audience);
    }
    let subject = claims.get(&config.subject_claim).and_then(claim_text).filter(|s| !s.is_empty());
    let subject = subject.ok_or(Refusal::Subject)?;
    let tenant = config.tenant_claim.as_ref().and_then(|c| claims.get(c)).and_then(claim_text);
    let metadata = config
        .metadata_claims
        .iter()
        .filter_map(|c| claims.get(c).and_then(claim_text).map(|v| (c.clone(), v)))
        .collect();
    Ok(Identity { subject, tenant, metadata })
}

/// The whole decision for a request.
pub fn authenticate(config: &Config, req: &Request, now: u64) -> AuthDecision {
    let refusal = match req.bearer_token() {
        None => Refusal::Missing,
        Some(token) => match verify(config, token, now) {
            Ok(identity) => return AuthDecision::Allow(identity),
            Err(r) => r,
        },
    };
    AuthDecision::Deny(
        error_response(401, refusal.message(), "invalid_request_error", "invalid_api_key")
            .with_header("www-authenticate", "Bearer error=\"invalid_token\""),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use rsa::pkcs1v15::SigningKey;
    use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
    use rsa::signature::{SignatureEncoding, Signer};
    use wasmgate_sdk::serde_json::json;

    const SECRET: &str = "test-secret-0123456789abcdef-0123456789";
    const NOW: u64 = 1_800_000_000;
    const RSA_PRIVATE: &str = include_str!("../testdata/rsa-private.pem");

    fn b64(b: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(b)
    }

    fn config(hs: bool, rs: bool) -> Config {
        let public = rs.then(|| {
            let key = rsa::RsaPrivateKey::from_pkcs8_pem(RSA_PRIVATE).unwrap();
            key.to_public_key().to_public_key_pem(rsa::pkcs8::LineEnding::LF).unwrap()
        });
        Config {
            issuer: "https://idp".into(),
            audience: "gw".into(),
            hs256_secret: hs.then(|| SECRET.to_string()),
            rs256_public_key: public,
            leeway_seconds: 30,
            subject_claim: "sub".into(),
            tenant_claim: Some("tenant".into()),
            metadata_claims: vec!["email".into(), "level".into()],
        }
    }

    fn claims() -> Value {
        json!({"iss": "https://idp", "aud": "gw", "sub": "ann", "tenant": "acme", "email": "a@x", "level": 3, "exp": NOW + 60})
    }

    fn hs(header: Value, claims: &Value) -> String {
        let signed = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(signed.as_bytes());
        format!("{signed}.{}", b64(&mac.finalize().into_bytes()))
    }

    fn rs(claims: &Value) -> String {
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(RSA_PRIVATE).unwrap();
        let signed = format!(
            "{}.{}",
            b64(json!({"alg": "RS256", "typ": "JWT"}).to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = SigningKey::<Sha256>::new(key).sign(signed.as_bytes());
        format!("{signed}.{}", b64(&sig.to_bytes()))
    }

    fn hs256(claims: &Value) -> String {
        hs(json!({"alg": "HS256", "typ": "JWT"}), claims)
    }

    #[test]
    fn valid_tokens_give_the_identity() {
        let id = verify(&config(true, false), &hs256(&claims()), NOW).unwrap();
        assert_eq!(id.subject, "ann");
        assert_eq!(id.tenant.as_deref(), Some("acme"));
        assert_eq!(id.metadata, vec![("email".into(), "a@x".into()), ("level".into(), "3".into())]);
        let id = verify(&config(false, true), &rs(&claims()), NOW).unwrap();
        assert_eq!(id.subject, "ann");
    }

    #[test]
    fn time_claims_honour_the_leeway() {
        let c = config(true, false);
        let mut cl = claims();
        cl["exp"] = json!(NOW - 20);
        assert!(verify(&c, &hs256(&cl), NOW).is_ok(), "within leeway");
        cl["exp"] = json!(NOW - 31);
        assert_eq!(verify(&c, &hs256(&cl), NOW).unwrap_err(), Refusal::Expired);
        let mut cl = claims();
        cl["nbf"] = json!(NOW + 100);
        assert_eq!(verify(&c, &hs256(&cl), NOW).unwrap_err(), Refusal::NotYetValid);
        let mut cl = claims();
        cl.as_object_mut().unwrap().remove("exp");
        assert_eq!(verify(&c, &hs256(&cl), NOW).unwrap_err(), Refusal::Expired);
    }

    #[test]
    fn issuer_audience_and_signature_are_checked() {
        let c = config(true, false);
        let mut cl = claims();
        cl["iss"] = json!("https://evil");
        assert_eq!(verify(&c, &hs256(&cl), NOW).unwrap_err(), Refusal::Issuer);
        let mut cl = claims();
        cl["aud"] = json!(["other", "gw"]);
        assert!(verify(&c, &hs256(&cl), NOW).is_ok());
        cl["aud"] = json!(["other"]);
        assert_eq!(verify(&c, &hs256(&cl), NOW).unwrap_err(), Refusal::Audience);
        let mut t = hs256(&claims());
        t.pop();
        t.push(if t.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(verify(&c, &t, NOW).unwrap_err(), Refusal::Signature);
        let mut tampered = claims();
        tampered["sub"] = json!("root");
        let good = hs256(&claims());
        let forged = format!(
            "{}.{}.{}",
            good.split('.').next().unwrap(),
            b64(tampered.to_string().as_bytes()),
            good.split('.').nth(2).unwrap()
        );
        assert_eq!(verify(&c, &forged, NOW).unwrap_err(), Refusal::Signature);
    }

    #[test]
    fn algorithm_none_and_confusion_are_refused() {
        let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(claims().to_string().as_bytes()));
        assert_eq!(verify(&config(true, true), &none, NOW).unwrap_err(), Refusal::Algorithm);
        // RS256 token, only an HS key configured; HS256 token, only an RSA key configured.
        assert_eq!(verify(&config(true, false), &rs(&claims()), NOW).unwrap_err(), Refusal::Algorithm);
        assert_eq!(verify(&config(false, true), &hs256(&claims()), NOW).unwrap_err(), Refusal::Algorithm);
        assert_eq!(verify(&config(true, false), "a.b", NOW).unwrap_err(), Refusal::Malformed);
        assert_eq!(verify(&config(true, false), "!!.??.**", NOW).unwrap_err(), Refusal::Malformed);
    }

    #[test]
    fn requests_without_a_valid_token_get_401() {
        let c = config(true, false);
        let mut req = wasmgate_sdk::test_request();
        req.headers.retain(|(n, _)| n != "authorization");
        let AuthDecision::Deny(r) = authenticate(&c, &req, NOW) else { panic!("allowed") };
        assert_eq!(r.status, 401);
        assert!(r.body.contains("invalid_api_key") && r.body.contains("Missing bearer token"));
        req.headers.push(("authorization".into(), format!("Bearer {}", hs256(&claims()))));
        assert!(matches!(authenticate(&c, &req, NOW), AuthDecision::Allow(_)));
    }

    #[test]
    fn config_errors_name_the_field() {
        let mut c = config(false, false);
        assert!(c.validate().unwrap_err().contains("hs256-secret"));
        c.hs256_secret = Some("short".into());
        assert!(c.validate().unwrap_err().contains("`hs256-secret`"));
        c.hs256_secret = None;
        c.rs256_public_key = Some("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----".into());
        assert!(c.validate().unwrap_err().contains("`rs256-public-key`"));
        assert!(config(true, true).validate().is_ok());
    }
}
