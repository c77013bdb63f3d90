//! `set-body-field`: a plugin sets (or with `null` removes) one top-level field of a parsed
//! request.
//!
//! The edited body goes through the same parse and validation as a client's body
//! ([`ApiRequest::parse`]): a typed field (`temperature`, `max_completion_tokens`,
//! `messages`, ...) lands in its typed slot, never beside it in `extra` (which would send the
//! upstream a duplicate key and skip validation), and a value a client could not send is
//! refused with the message the client would have got. A refused edit leaves the request as
//! it was.

use serde_json::Value;

use super::request::{ApiRequest, Endpoint};

/// Fields the gateway owns: it has already routed on them (model, streaming) or estimated the
/// prompt from them. Plugins change the model with `set-model`.
const OWNED: [&str; 5] = ["model", "stream", "stream_options", "prompt", "input"];

/// Why a `set-body-field` edit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetFieldError {
    /// The gateway decides this field (see [`OWNED`]).
    #[error("field `{0}` cannot be set with set-body-field")]
    Owned(String),
    /// `messages` on a request that has none.
    #[error("field `messages` can only be set on chat requests")]
    NotChat,
    /// The edited body is one parsing would refuse; `message` is what a client would read.
    #[error("{message}")]
    Invalid { param: Option<String>, message: String },
    /// The request could not be serialized for the re-parse (not expected for parsed bodies).
    #[error("cannot serialize the request: {0}")]
    Serialize(String),
}

impl ApiRequest {
    /// Sets (or with `null`, removes) the top-level field `name`, validated as parsing
    /// validates it. On error the request is unchanged.
    pub fn set_field(&mut self, name: &str, value: Value) -> Result<(), SetFieldError> {
        if OWNED.contains(&name) {
            return Err(SetFieldError::Owned(name.to_string()));
        }
        let endpoint = self.endpoint();
        if name == "messages" && endpoint != Endpoint::Chat {
            return Err(SetFieldError::NotChat);
        }
        let serialized = match self {
            ApiRequest::Chat(r) => serde_json::to_value(r),
            ApiRequest::Completions(r) => serde_json::to_value(r),
            ApiRequest::Embeddings(r) => serde_json::to_value(r),
        };
        let Value::Object(mut body) = serialized.map_err(|e| SetFieldError::Serialize(e.to_string()))? else {
            return Err(SetFieldError::Serialize("a request did not serialize to a JSON object".into()));
        };
        if value.is_null() {
            body.remove(name);
        } else {
            body.insert(name.to_string(), value);
        }
        let bytes = serde_json::to_vec(&body).map_err(|e| SetFieldError::Serialize(e.to_string()))?;
        let edited = ApiRequest::parse(endpoint, &bytes).map_err(|e| {
            let d = e.into_details();
            SetFieldError::Invalid { param: d.param, message: d.message }
        })?;
        *self = edited;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use serde_json::json;

    use super::*;

    fn chat(extra: &str) -> ApiRequest {
        let body = format!(r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}]{extra}}}"#);
        ApiRequest::parse(Endpoint::Chat, body.as_bytes()).unwrap()
    }

    /// The top-level keys of a JSON object, in order, repeats included.
    pub(super) fn top_level_keys(json: &[u8]) -> Vec<String> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = Vec<String>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut keys = Vec::new();
                while let Some((k, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                    keys.push(k);
                }
                Ok(keys)
            }
        }
        let mut de = serde_json::Deserializer::from_slice(json);
        serde::Deserializer::deserialize_map(&mut de, Keys).unwrap()
    }

    fn assert_unique_keys(r: &ApiRequest) {
        let json = r.to_json().unwrap();
        let mut keys = top_level_keys(&json);
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n, "duplicate keys in {}", String::from_utf8_lossy(&json));
    }

    #[test]
    fn typed_fields_land_in_their_slot_once() {
        let mut r = chat(r#","temperature":0.5,"max_tokens":100"#);
        r.set_field("temperature", json!(0.9)).unwrap();
        r.set_field("max_completion_tokens", json!(50)).unwrap();
        r.set_field("seed", json!(7)).unwrap();
        r.set_field("top_p", json!(0.5)).unwrap();
        assert_unique_keys(&r);
        let ApiRequest::Chat(c) = &r else { panic!("chat") };
        assert_eq!((c.temperature, c.top_p, c.max_completion_tokens), (Some(0.9), Some(0.5), Some(50)));
        assert!(!c.extra.contains_key("temperature") && !c.extra.contains_key("max_completion_tokens"));
        assert_eq!(c.extra["seed"], 7);
        // `null` removes a typed field and an untyped one.
        r.set_field("temperature", Value::Null).unwrap();
        r.set_field("seed", Value::Null).unwrap();
        let v: Value = serde_json::from_slice(&r.to_json().unwrap()).unwrap();
        assert!(v.get("temperature").is_none() && v.get("seed").is_none(), "{v}");
    }

    #[test]
    fn values_parsing_refuses_are_refused_with_its_message() {
        let mut r = chat(r#","temperature":0.5"#);
        let before = r.to_json().unwrap();
        for (field, value, says) in [
            ("temperature", json!(3), "3 is not in [0, 2] - 'temperature'"),
            ("temperature", json!("hot"), "Invalid value for 'temperature'"),
            ("top_p", json!(1.5), "'top_p'"),
            ("n", json!(0), "'n'"),
            ("max_tokens", json!(0), "minimum of 1 - 'max_tokens'"),
            ("max_completion_tokens", json!(-1), "Invalid value for 'max_completion_tokens'"),
            ("max_completion_tokens", json!(5_000_000_000u64), "Invalid value for 'max_completion_tokens'"),
            ("messages", json!([]), "'messages' must be a non-empty array"),
            ("messages", json!([{"role":"bot","content":"x"}]), "messages[0].role"),
            ("messages", json!("x"), "Invalid value for 'messages'"),
        ] {
            let e = r.set_field(field, value.clone()).expect_err(&format!("{field} = {value}"));
            let SetFieldError::Invalid { message, .. } = &e else { panic!("{field}: {e:?}") };
            assert!(message.contains(says), "{field} = {value}: {message}");
            assert_eq!(r.to_json().unwrap(), before, "a refused edit changed the request");
        }
        assert_eq!(r.set_field("model", json!("x")), Err(SetFieldError::Owned("model".into())));
        assert_eq!(r.set_field("stream", json!(true)), Err(SetFieldError::Owned("stream".into())));
        assert!(matches!(r.set_field("messages", Value::Null), Err(SetFieldError::Invalid { .. })));
        let mut e = ApiRequest::parse(Endpoint::Embeddings, br#"{"model":"m","input":"x"}"#).unwrap();
        assert_eq!(e.set_field("messages", json!([])), Err(SetFieldError::NotChat));
        let e = e.set_field("dimensions", json!(0)).unwrap_err();
        assert!(e.to_string().contains("'dimensions'"), "{e}");
    }

    #[test]
    fn the_cap_sees_max_completion_tokens_however_it_was_set() {
        // Set through set-body-field: the effective cap is the smaller field.
        let mut r = chat(r#","max_tokens":100"#);
        r.set_field("max_completion_tokens", json!(100_000)).unwrap();
        assert_eq!(r.max_tokens(), Some(100));
        r.set_field("max_completion_tokens", json!(40)).unwrap();
        assert_eq!(r.max_tokens(), Some(40));
        // Capping caps both fields, so whichever the upstream reads is capped.
        r.set_max_tokens(10);
        let v: Value = serde_json::from_slice(&r.to_json().unwrap()).unwrap();
        assert_eq!((v["max_tokens"].as_u64(), v["max_completion_tokens"].as_u64()), (Some(10), Some(10)));
        assert_eq!(r.max_tokens(), Some(10));
        // Only `max_completion_tokens`: capped there, `max_tokens` not added.
        let mut r = chat("");
        r.set_field("max_completion_tokens", json!(9000)).unwrap();
        assert_eq!(r.max_tokens(), Some(9000));
        r.set_max_tokens(4096);
        let v: Value = serde_json::from_slice(&r.to_json().unwrap()).unwrap();
        assert_eq!(v["max_completion_tokens"], 4096);
        assert!(v.get("max_tokens").is_none(), "{v}");
        assert_unique_keys(&r);
    }

    #[test]
    fn messages_can_be_replaced_by_valid_chat_messages_only() {
        let mut r =
            ApiRequest::parse(Endpoint::Chat, br#"{"model":"m","messages":[{"role":"user","content":"a@b.com"}]}"#)
                .unwrap();
        let redacted = json!([{"role":"user","content":[{"type":"text","text":"[REDACTED]"}],"name":"x"}]);
        r.set_field("messages", redacted.clone()).unwrap();
        let v: Value = serde_json::from_slice(&r.to_json().unwrap()).unwrap();
        assert_eq!(v["messages"], redacted);
        for bad in [json!([]), json!([{"role":"bot","content":"x"}]), json!("x")] {
            assert!(r.set_field("messages", bad).is_err());
        }
        assert_eq!(serde_json::from_slice::<Value>(&r.to_json().unwrap()).unwrap()["messages"], redacted);
    }
}

#[cfg(test)]
#[path = "edit_props.rs"]
mod props;
