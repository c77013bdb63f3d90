//! Property test of [`ApiRequest::set_field`]: after any sequence of edits (typed fields,
//! untyped ones, wrong types, out-of-range values, removals, caps) the body sent upstream has
//! no duplicate key, still parses, a refused edit changes nothing, and the effective cap is
//! the smaller of `max_tokens` and `max_completion_tokens`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use serde_json::{Value, json};

use super::tests::top_level_keys;
use super::*;

/// One edit: a `set-body-field`, or the `set-max-tokens` edit.
#[derive(Debug, Clone)]
enum Op {
    Set(String, Value),
    Cap(u32),
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-2i64..200).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-3.0f64..3.0).prop_map(Value::from),
        "[a-z]{0,4}".prop_map(Value::String),
        Just(json!([{"role": "user", "content": "x"}])),
        Just(json!([])),
        Just(json!({"include_usage": true})),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let name = prop::sample::select(vec![
        "model",
        "messages",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "n",
        "presence_penalty",
        "frequency_penalty",
        "prompt",
        "input",
        "dimensions",
        "seed",
        "user",
    ]);
    prop_oneof![
        6 => (name, value()).prop_map(|(n, v)| Op::Set(n.to_string(), v)),
        1 => (1u32..5000).prop_map(Op::Cap),
    ]
}

fn start() -> impl Strategy<Value = (Endpoint, &'static [u8])> {
    prop::sample::select(vec![
        (
            Endpoint::Chat,
            &br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":300,"temperature":1,"seed":1}"#
                [..],
        ),
        (Endpoint::Chat, &br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}"#[..]),
        (Endpoint::Completions, &br#"{"model":"m","prompt":"p","max_tokens":30}"#[..]),
        (Endpoint::Embeddings, &br#"{"model":"m","input":"x","dimensions":8}"#[..]),
    ])
}

fn field(json: &Value, name: &str) -> Option<u32> {
    json.get(name).and_then(Value::as_u64).map(|n| u32::try_from(n).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn edits_never_duplicate_keys_or_skip_validation(
        (endpoint, body) in start(),
        ops in proptest::collection::vec(op(), 1..12),
    ) {
        let mut r = ApiRequest::parse(endpoint, body).unwrap();
        for op in ops {
            let before = r.to_json().unwrap();
            match &op {
                Op::Set(name, v) => {
                    if r.set_field(name, v.clone()).is_err() {
                        prop_assert_eq!(r.to_json().unwrap(), before, "refused {:?} changed the request", op);
                    }
                }
                Op::Cap(n) => {
                    r.set_max_tokens(*n);
                    if endpoint != Endpoint::Embeddings {
                        prop_assert_eq!(r.max_tokens(), Some(*n));
                    }
                }
            }
            let out = r.to_json().unwrap();
            let mut keys = top_level_keys(&out);
            let n = keys.len();
            keys.sort();
            keys.dedup();
            prop_assert_eq!(keys.len(), n, "duplicate keys after {:?}: {}", op, String::from_utf8_lossy(&out));
            // What goes upstream is a body the gateway itself accepts.
            let again = ApiRequest::parse(endpoint, &out);
            prop_assert!(again.is_ok(), "after {:?}: {:?}", op, again.err());
            let json: Value = serde_json::from_slice(&out).unwrap();
            // `max_completion_tokens` is a chat field; elsewhere it is an unknown one.
            let want = match endpoint {
                Endpoint::Chat => match (field(&json, "max_tokens"), field(&json, "max_completion_tokens")) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                },
                Endpoint::Completions => field(&json, "max_tokens"),
                Endpoint::Embeddings => None,
            };
            prop_assert_eq!(r.max_tokens(), want, "{}", String::from_utf8_lossy(&out));
        }
    }
}
