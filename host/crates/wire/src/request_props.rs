//! Property tests of [`ApiRequest::parse`]: it never panics, whatever the bytes; every error is
//! a 400 in the OpenAI shape; and what it emits (`to_json`) parses back to the same request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;

const ENDPOINTS: [Endpoint; 3] = [Endpoint::Chat, Endpoint::Completions, Endpoint::Embeddings];

fn endpoint() -> impl Strategy<Value = Endpoint> {
    prop::sample::select(ENDPOINTS.to_vec())
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (-3.0f64..3.0).prop_map(Value::from),
        (0u32..200).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// Field names: the ones the gateway reads, and others.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "model", "messages", "stream", "stream_options", "include_usage", "max_tokens",
            "max_completion_tokens", "temperature", "top_p", "n", "presence_penalty",
            "frequency_penalty", "prompt", "input", "dimensions", "role", "content", "tool_calls",
            "function_call", "text", "seed", "user",
        ])
        .prop_map(str::to_string),
        1 => "[a-z_]{1,10}",
    ]
}

/// A chat message that is often valid.
fn message() -> impl Strategy<Value = Value> {
    let role = prop_oneof![
        4 => prop::sample::select(vec!["system", "developer", "user", "assistant", "tool", "function"]).prop_map(Value::from),
        1 => json_value(),
    ];
    let content = prop_oneof![
        4 => ".{0,16}".prop_map(Value::String),
        2 => proptest::collection::vec(
            ".{0,8}".prop_map(|t| json!({"type": "text", "text": t})), 0..3).prop_map(Value::Array),
        1 => json_value(),
    ];
    (role, proptest::option::of(content), proptest::collection::btree_map(key(), json_value(), 0..3)).prop_map(
        |(role, content, extra)| {
            let mut m: Map<String, Value> = extra.into_iter().collect();
            m.insert("role".into(), role);
            match content {
                Some(c) => m.insert("content".into(), c),
                None => m.remove("content"),
            };
            Value::Object(m)
        },
    )
}

/// A body near the shape of a real request: the typed fields often valid, sometimes not, plus
/// unknown fields.
fn request_body() -> impl Strategy<Value = Value> {
    let number = prop_oneof![(0u32..5000).prop_map(Value::from), (-3.0f64..3.0).prop_map(Value::from), json_value(),];
    let fields = (
        prop_oneof![3 => "[a-z0-9-]{1,12}".prop_map(Value::String), 1 => json_value()],
        proptest::collection::vec(message(), 0..4).prop_map(Value::Array),
        prop_oneof![".{0,12}".prop_map(Value::String), json_value()],
        proptest::option::of(any::<bool>().prop_map(Value::Bool)),
        proptest::option::of(number.clone()),
        proptest::option::of(number.clone()),
        proptest::option::of(number),
        proptest::collection::btree_map(key(), json_value(), 0..4),
    );
    fields.prop_map(|(model, messages, text, stream, max_tokens, temperature, n, extra)| {
        let mut m: Map<String, Value> = extra.into_iter().collect();
        m.insert("model".into(), model);
        m.insert("messages".into(), messages);
        m.insert("prompt".into(), text.clone());
        m.insert("input".into(), text);
        for (k, v) in [("stream", stream), ("max_tokens", max_tokens), ("temperature", temperature), ("n", n)] {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        }
        Value::Object(m)
    })
}

/// Parses, and checks the error shape on failure.
fn parse_checked(endpoint: Endpoint, body: &[u8]) -> Result<Option<ApiRequest>, TestCaseError> {
    match ApiRequest::parse(endpoint, body) {
        Ok(r) => Ok(Some(r)),
        Err(e) => {
            prop_assert_eq!(e.status.as_u16(), 400, "{:?}", e);
            prop_assert_eq!(e.kind, "invalid_request_error");
            prop_assert!(e.code.is_some(), "an error without a code: {:?}", e);
            prop_assert!(!e.message.is_empty());
            Ok(None)
        }
    }
}

/// `to_json` of an accepted request parses back to a request that serializes the same, with
/// the same routing-relevant fields.
fn assert_round_trip(endpoint: Endpoint, r: &ApiRequest) -> Result<(), TestCaseError> {
    let emitted = r.to_json().map_err(|e| TestCaseError::fail(format!("to_json failed: {e}")))?;
    let again = ApiRequest::parse(endpoint, &emitted)
        .map_err(|e| TestCaseError::fail(format!("re-parse of {} failed: {e:?}", String::from_utf8_lossy(&emitted))))?;
    let a: Value = serde_json::from_slice(&emitted).unwrap();
    let b: Value = serde_json::from_slice(&again.to_json().unwrap()).unwrap();
    prop_assert_eq!(a, b);
    prop_assert_eq!(r.model(), again.model());
    prop_assert_eq!(r.stream(), again.stream());
    prop_assert_eq!(r.max_tokens(), again.max_tokens());
    prop_assert_eq!(r.wants_stream_usage(), again.wants_stream_usage());
    prop_assert_eq!(r.prompt_tokens_estimate(), again.prompt_tokens_estimate());
    Ok(())
}

fn check(endpoint: Endpoint, body: &[u8]) -> Result<(), TestCaseError> {
    match parse_checked(endpoint, body)? {
        Some(r) => {
            // An accepted body is exactly one JSON document to a strict parser too: the raw
            // bytes are what the upstream receives.
            let strict = serde_json::from_slice::<serde::de::IgnoredAny>(body);
            prop_assert!(strict.is_ok(), "accepted but not one JSON document: {:?}", String::from_utf8_lossy(body));
            assert_round_trip(endpoint, &r)
        }
        None => Ok(()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(endpoint in endpoint(), body in proptest::collection::vec(any::<u8>(), 0..256)) {
        check(endpoint, &body)?;
    }

    #[test]
    fn arbitrary_json_values_never_panic(endpoint in endpoint(), v in json_value()) {
        check(endpoint, &serde_json::to_vec(&v).unwrap())?;
    }

    /// Near-valid requests: many are accepted, so the round trip is exercised.
    #[test]
    fn accepted_requests_round_trip(endpoint in endpoint(), v in request_body()) {
        check(endpoint, &serde_json::to_vec(&v).unwrap())?;
    }

    /// Bodies written as text, so keys may repeat (serde's duplicate-field path).
    #[test]
    fn duplicate_keys_never_panic(endpoint in endpoint(), pairs in proptest::collection::vec((key(), json_value()), 0..8)) {
        let fields: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}:{}", serde_json::to_string(k).unwrap(), v))
            .collect();
        check(endpoint, format!("{{{}}}", fields.join(",")).as_bytes())?;
    }

    /// A valid body with bytes changed, cut or inserted.
    #[test]
    fn mutated_valid_bodies_never_panic(
        endpoint in endpoint(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut body = match endpoint {
            Endpoint::Chat => br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":5,"temperature":0.5}"#.to_vec(),
            Endpoint::Completions => br#"{"model":"m","prompt":["a","b"],"max_tokens":5,"top_p":0.9}"#.to_vec(),
            Endpoint::Embeddings => br#"{"model":"m","input":"x","dimensions":8}"#.to_vec(),
        };
        for (at, byte, op) in edits {
            let i = at.index(body.len() + 1);
            match op {
                0 if i < body.len() => body[i] = byte,
                1 if i < body.len() => { body.remove(i); }
                _ => body.insert(i, byte),
            }
        }
        check(endpoint, &body)?;
    }
}
