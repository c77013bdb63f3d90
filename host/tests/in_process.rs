//! The fast test speed (STYLE #11): the API router in-process with `oneshot`, no listener, for
//! everything the phases decide before a byte goes upstream. The real-socket tests cover the rest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, reason = "tests spawn servers and load freely")]

mod common;

use std::sync::Arc;

use axum::body::Body;
use common::config_builder::TestConfig;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use wasmgate::server::{Gateway, Snapshot, api_router};

/// An address nothing listens on: a request that reached the forward phase fails there.
const NOWHERE: &str = "http://127.0.0.1:1/v1";

fn key_hash(k: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(k.as_bytes()))
}

async fn gateway(cfg: TestConfig) -> Arc<Gateway> {
    Gateway::new(Snapshot::from_config(cfg.build()).await.unwrap())
}

fn base() -> TestConfig {
    TestConfig::new().upstream("nowhere", NOWHERE, &["gpt-x", "gpt-y"])
}

fn with_auth() -> TestConfig {
    let keys = format!(
        r#"{{ keys = [{{ sha256 = "{}", subject = "alice", tenant = "t1" }}, {{ sha256 = "{}", subject = "bob", tenant = "t2" }}] }}"#,
        key_hash("sk-alice"),
        key_hash("sk-bob")
    );
    base().plugin("auth", "auth", "builtin:auth-keys", &keys).chain(&["auth"])
}

async fn send(gw: &Arc<Gateway>, req: Request<Body>) -> (StatusCode, http::HeaderMap, Value) {
    let resp = api_router(gw.clone()).oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (parts.status, parts.headers, json)
}

fn chat(path: &str, key: Option<&str>, body: &str) -> Request<Body> {
    let mut b = Request::post(path).header("content-type", "application/json");
    if let Some(k) = key {
        b = b.header("authorization", format!("Bearer {k}"));
    }
    b.body(Body::from(body.to_string())).unwrap()
}

const CHAT: &str = r#"{"model":"gpt-x","messages":[{"role":"user","content":"hi"}]}"#;

#[tokio::test]
async fn invalid_json_is_a_400_naming_the_problem_with_a_request_id() {
    let gw = gateway(base()).await;
    let mut req = chat("/v1/chat/completions", None, r#"{"model":"gpt-x","messages":"#);
    req.headers_mut().insert("x-request-id", "rid-42".parse().unwrap());
    let (status, headers, body) = send(&gw, req).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_json");
    assert_eq!(headers["x-request-id"], "rid-42");
}

#[tokio::test]
async fn an_anonymous_caller_gets_401_before_its_body_is_even_parsed() {
    let gw = gateway(with_auth()).await;
    // Not JSON at all: the 401 comes from the header-only auth step, before the read phase.
    let (status, _, body) = send(&gw, chat("/v1/chat/completions", None, "not json")).await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test]
async fn an_unknown_model_is_404_after_the_chain() {
    let gw = gateway(with_auth()).await;
    let body = r#"{"model":"nope","messages":[{"role":"user","content":"hi"}]}"#;
    let (status, _, err) = send(&gw, chat("/v1/chat/completions", Some("sk-alice"), body)).await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], "model_not_found");
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502_naming_it() {
    let gw = gateway(base()).await;
    let (status, _, err) = send(&gw, chat("/v1/chat/completions", None, CHAT)).await;
    assert_eq!(status, 502);
    assert_eq!(err["error"]["code"], "upstream_unreachable");
    assert!(err["error"]["message"].as_str().unwrap().contains("nowhere"));
}

#[tokio::test]
async fn a_tenant_path_on_a_gateway_without_tenants_is_404() {
    let gw = gateway(base()).await;
    let (status, _, err) = send(&gw, chat("/t/acme/v1/chat/completions", None, CHAT)).await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], "tenant_not_found");
}

#[tokio::test]
async fn each_tenant_lists_only_its_models() {
    let cfg = with_auth().tenant("t1", &[], &["gpt-x"]).tenant("t2", &[], &[]);
    let gw = gateway(cfg).await;
    let list = |key: &'static str, path: &'static str| {
        Request::get(path).header("authorization", format!("Bearer {key}")).body(Body::empty()).unwrap()
    };
    let ids = |v: &Value| -> Vec<String> {
        v["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect()
    };
    let (status, _, v) = send(&gw, list("sk-alice", "/t/t1/v1/models")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(ids(&v), ["gpt-x"]);
    let (_, _, v) = send(&gw, list("sk-alice", "/v1/models")).await;
    assert_eq!(ids(&v), ["gpt-x"], "the key's own tenant, without a path");
    let (_, _, v) = send(&gw, list("sk-bob", "/v1/models")).await;
    assert_eq!(ids(&v), ["gpt-x", "gpt-y"], "no allow-list: every model");
    // Another tenant's key cannot list this tenant's models.
    let (status, _, _) = send(&gw, list("sk-bob", "/t/t1/v1/models")).await;
    assert_eq!(status, 403);
    let (status, _, _) = send(&gw, Request::get("/v1/models").body(Body::empty()).unwrap()).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_tenant_cannot_use_a_model_outside_its_allow_list() {
    let cfg = with_auth().tenant("t1", &[], &["gpt-x"]);
    let gw = gateway(cfg).await;
    let body = r#"{"model":"gpt-y","messages":[{"role":"user","content":"hi"}]}"#;
    let (status, _, err) = send(&gw, chat("/v1/chat/completions", Some("sk-alice"), body)).await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], "model_not_found");
}
