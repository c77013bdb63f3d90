//! `POST /v1/embeddings`: deterministic unit vectors derived from a hash of each input.
//!
//! `input` is a string, an array of strings, a token array, or an array of token arrays.
//! `dimensions` (default 8, at most [`MAX_DIMENSIONS`]) sets the vector length;
//! `encoding_format: "base64"` (what the official Python client asks for by default) returns
//! the little-endian `f32` bytes in base64. `prompt_tokens` sums `max(1, ceil(chars / 4))` per
//! input (a token array counts its length).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use serde::Serialize;
use serde_json::Value;

use super::completion::{Echo, text_units, tokens};
use super::controls::invalid_request;
use super::state::{Shared, admit, delay};

const DEFAULT_DIMENSIONS: usize = 8;
/// Larger than any real model (3072), small enough that a typo cannot allocate gigabytes.
pub const MAX_DIMENSIONS: usize = 4096;

pub(crate) async fn embeddings(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let admitted = match admit(&state, &method, &uri, &headers, &body).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let Some(request) = admitted.body.as_object() else {
        return invalid_request("The request body must be a JSON object.", None);
    };
    let Some(model) = request.get("model").and_then(Value::as_str) else {
        return invalid_request("You must provide a model parameter.", Some("model"));
    };
    let Some(items) = request.get("input").and_then(inputs) else {
        return invalid_request(
            "'input' must be a non-empty string, array of strings, token array or array of token arrays.",
            Some("input"),
        );
    };
    let dimensions = match request.get("dimensions") {
        None | Some(Value::Null) => DEFAULT_DIMENSIONS,
        Some(d) => match d.as_u64().and_then(|d| usize::try_from(d).ok()) {
            Some(d @ 1..=MAX_DIMENSIONS) => d,
            _ => {
                return invalid_request(
                    &format!("'dimensions' must be an integer between 1 and {MAX_DIMENSIONS}."),
                    Some("dimensions"),
                );
            }
        },
    };
    let base64 = match request.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(_) => {
            return invalid_request("'encoding_format' must be 'float' or 'base64'.", Some("encoding_format"));
        }
    };
    delay(admitted.controls.latency).await;

    let prompt_tokens: u64 = items.iter().map(|item| tokens(text_units(item))).sum();
    let data = items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let vector = vector(item, dimensions);
            EmbeddingObject {
                object: "embedding",
                index,
                embedding: if base64 { Embedding::Base64(encode_base64(&vector)) } else { Embedding::Floats(vector) },
            }
        })
        .collect();
    let mut echo = Echo::new(&admitted.headers, request);
    echo.input = request.get("input");
    Json(EmbeddingList {
        object: "list",
        data,
        model,
        usage: EmbeddingUsage { prompt_tokens, total_tokens: prompt_tokens },
        mock_echo: echo,
    })
    .into_response()
}

/// The individual inputs of `input`, or `None` when its shape is not one OpenAI accepts.
fn inputs(input: &Value) -> Option<Vec<&Value>> {
    match input {
        Value::String(_) => Some(vec![input]),
        Value::Array(items) if items.is_empty() => None,
        Value::Array(items) if items.iter().all(Value::is_u64) => Some(vec![input]),
        Value::Array(items)
            if items.iter().all(|item| {
                item.is_string() || item.as_array().is_some_and(|t| !t.is_empty() && t.iter().all(Value::is_u64))
            }) =>
        {
            Some(items.iter().collect())
        }
        _ => None,
    }
}

/// A unit vector of `dimensions` components, a pure function of `item`.
fn vector(item: &Value, dimensions: usize) -> Vec<f32> {
    let mut state = match item {
        Value::String(s) => fnv1a(0xcbf2_9ce4_8422_2325, s.as_bytes()),
        other => other
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .fold(0x8422_2325_cbf2_9ce4, |h, t| fnv1a(h, &t.to_le_bytes())),
    };
    let mut v: Vec<f32> = (0..dimensions)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let bits = splitmix64(state) >> 40; // 24 bits: exact in an f32
            #[allow(clippy::cast_precision_loss)] // 24-bit integer, exactly representable
            let unit = bits as f32 / (1u64 << 24) as f32;
            unit * 2.0 - 1.0
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Standard base64 (with padding) of the little-endian bytes of `values`.
fn encode_base64(values: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n = group.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= group.len() {
                let index = (n >> (18 - 6 * i)) & 0x3f;
                out.push(char::from(ALPHABET[index as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<EmbeddingObject>,
    model: &'a str,
    usage: EmbeddingUsage,
    mock_echo: Echo<'a>,
}

#[derive(Serialize)]
struct EmbeddingObject {
    object: &'static str,
    index: usize,
    embedding: Embedding,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Embedding {
    Floats(Vec<f32>),
    Base64(String),
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

#[cfg(test)]
mod tests {
    use super::encode_base64;

    #[test]
    fn base64_matches_the_standard_alphabet() {
        // 1.0f32 = 00 00 80 3f; 2.0f32 = 00 00 00 40
        assert_eq!(encode_base64(&[1.0]), "AACAPw==");
        assert_eq!(encode_base64(&[1.0, 2.0]), "AACAPwAAAEA=");
    }
}
