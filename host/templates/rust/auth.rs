//! {{name}}: a wasmgate `auth` plugin. Allows a request whose bearer key is listed in the
//! config, as the subject the config names; denies anything else with an OpenAI 401.

use std::collections::BTreeMap;

use serde::Deserialize;
use wasmgate_sdk::{AuthDecision, AuthPlugin, Identity, Request, error_response};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// API key → subject (who the caller is, as later plugins and logs see it).
    keys: BTreeMap<String, String>,
    /// Tenant to assign the caller to, if any.
    #[serde(default)]
    tenant: Option<String>,
}

struct Plugin;

impl AuthPlugin for Plugin {
    type Config = Config;

    fn configure(config: &Config) -> Result<(), String> {
        if config.keys.is_empty() {
            return Err("`keys` must list at least one key".into());
        }
        Ok(())
    }

    fn authenticate(config: &Config, req: Request) -> AuthDecision {
        decide(config, &req)
    }
}

/// The decision, as a plain function so native unit tests can call it.
/// (For production, compare keys in constant time: see wasmgate's `plugins/auth-keys`.)
fn decide(config: &Config, req: &Request) -> AuthDecision {
    let Some(token) = req.bearer_token() else {
        return AuthDecision::Deny(error_response(
            401,
            "You didn't provide an API key.",
            "invalid_request_error",
            "missing_api_key",
        ));
    };
    match config.keys.get(token) {
        Some(subject) => AuthDecision::Allow(Identity {
            subject: subject.clone(),
            tenant: config.tenant.clone(),
            metadata: Vec::new(),
        }),
        None => AuthDecision::Deny(error_response(
            401,
            "Incorrect API key provided.",
            "invalid_request_error",
            "invalid_api_key",
        )),
    }
}

wasmgate_sdk::export_auth!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        wasmgate_sdk::parse_config(r#"{"keys":{"sk-example-1":"alice"}}"#).map_err(|e| e.to_string()).unwrap()
    }

    fn with_key(key: &str) -> Request {
        Request {
            headers: vec![("authorization".into(), format!("Bearer {key}"))],
            ..wasmgate_sdk::test_request()
        }
    }

    #[test]
    fn listed_key_is_allowed_as_its_subject() {
        match decide(&config(), &with_key("sk-example-1")) {
            AuthDecision::Allow(id) => assert_eq!(id.subject, "alice"),
            AuthDecision::Deny(r) => panic!("denied: {}", r.body),
        }
    }

    #[test]
    fn other_key_and_no_key_are_denied() {
        for req in [with_key("sk-other"), wasmgate_sdk::test_request()] {
            match decide(&config(), &req) {
                AuthDecision::Deny(r) => assert_eq!(r.status, 401),
                AuthDecision::Allow(id) => panic!("allowed as {}", id.subject),
            }
        }
    }
}
