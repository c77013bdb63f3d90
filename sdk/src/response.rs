//! Helpers for what plugins read and answer: request headers, OpenAI-shaped error responses.

use serde::Serialize;

use crate::{Request, Response};

/// The body of an OpenAI error:
/// `{"error":{"message":..,"type":..,"param":..,"code":..}}` (fields in that order).
pub fn error_body(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> String {
    #[derive(Serialize)]
    struct Envelope<'a> {
        error: Inner<'a>,
    }
    #[derive(Serialize)]
    struct Inner<'a> {
        message: &'a str,
        #[serde(rename = "type")]
        kind: &'a str,
        param: Option<&'a str>,
        code: Option<&'a str>,
    }
    let envelope = Envelope { error: Inner { message, kind, param, code } };
    // Serializing plain strings cannot fail; the fallback keeps this panic-free anyway.
    serde_json::to_string(&envelope).unwrap_or_else(|_| {
        r#"{"error":{"message":"internal error","type":"server_error","param":null,"code":null}}"#.into()
    })
}

/// A response with an OpenAI error body (`param: null`), e.g.
/// `error_response(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")`.
/// Add headers with [`Response::with_header`]; use [`error_body`] when `param` is set.
pub fn error_response(status: u16, message: &str, kind: &str, code: &str) -> Response {
    Response { status, headers: Vec::new(), body: error_body(message, kind, None, Some(code)) }
}

impl Response {
    /// This response with one more header (`name` should be lower case).
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl Request {
    /// The first value of header `name` (compared case-insensitively; the gateway sends lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The token of an `authorization: Bearer <token>` header (scheme case-insensitive), if
    /// present and non-empty.
    pub fn bearer_token(&self) -> Option<&str> {
        let value = self.header("authorization")?.trim();
        let (scheme, token) = value.split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    }
}

/// A request with everything empty, for plugins' native unit tests: set the fields you need
/// with struct update syntax, `Request { model: "x".into(), ..wasmgate_sdk::test_request() }`.
pub fn test_request() -> Request {
    Request {
        id: "req-test".into(),
        method: "POST".into(),
        path: "/v1/chat/completions".into(),
        headers: Vec::new(),
        tenant: None,
        identity: None,
        model: "gpt-4o-mini".into(),
        endpoint: "chat".into(),
        stream: false,
        max_tokens: None,
        prompt_tokens_estimate: 0,
        client_ip: "127.0.0.1".into(),
        body: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_openai_shape_in_order() {
        assert_eq!(
            error_body("Nope.", "invalid_request_error", Some("model"), Some("x")),
            r#"{"error":{"message":"Nope.","type":"invalid_request_error","param":"model","code":"x"}}"#
        );
        let r = error_response(401, "a \"b\"", "t", "c").with_header("www-authenticate", "Bearer");
        assert_eq!(r.status, 401);
        assert_eq!(r.body, r#"{"error":{"message":"a \"b\"","type":"t","param":null,"code":"c"}}"#);
        assert_eq!(r.headers, vec![("www-authenticate".to_string(), "Bearer".to_string())]);
    }

    #[test]
    fn bearer_parsing() {
        let with = |v: &str| Request { headers: vec![("authorization".into(), v.into())], ..test_request() };
        assert_eq!(with("Bearer sk-1").bearer_token(), Some("sk-1"));
        assert_eq!(with("bearer   sk-1 ").bearer_token(), Some("sk-1"));
        assert_eq!(with("Basic abc").bearer_token(), None);
        assert_eq!(with("Bearer ").bearer_token(), None);
        assert_eq!(test_request().bearer_token(), None);
    }
}
