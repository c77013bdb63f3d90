//! `examples/multi-tenant.toml` as shipped: three tenants served at the same time by one
//! gateway, each with its own auth method, rewrites and limits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, reason = "tests spawn servers and load freely")]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::reload_admin::{b64, hmac_sha256};
use common::*;
use serde_json::{Value, json};
use wasmgate::config::Config;
use wasmgate::mock::{MockConfig, MockServer};
use wasmgate::server::{self, Snapshot};

fn globex_token(exp_offset: i64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let h = b64(json!({"alg": "HS256", "typ": "JWT"}).to_string().as_bytes());
    let p = b64(json!({"iss": "https://idp.globex.example", "aud": "wasmgate", "sub": "ann", "tenant": "globex",
        "email": "ann@globex.example", "exp": now + exp_offset})
    .to_string()
    .as_bytes());
    let s = b64(&hmac_sha256(b"globex-demo-secret-0123456789abcdef", format!("{h}.{p}").as_bytes()));
    format!("{h}.{p}.{s}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_three_example_tenants_get_their_own_behaviour_at_the_same_time() {
    let mock = MockServer::start("127.0.0.1:0".parse().unwrap(), MockConfig::default()).await.unwrap();
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/multi-tenant.toml"))
        .unwrap()
        .replace("127.0.0.1:9000", &mock.addr.to_string())
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace("127.0.0.1:9090", "127.0.0.1:0")
        .replace(".wasmgate-cache", &format!("{}/plugin-cache", env!("CARGO_TARGET_TMPDIR")));
    let config = Config::parse(&text, None).unwrap_or_else(|e| panic!("{e}"));
    let gw = server::start(Snapshot::from_config(config).await.unwrap_or_else(|e| panic!("{e}"))).await.unwrap();
    let http = reqwest::Client::new();
    let url = |p: &str| format!("http://{}{p}", gw.addr);
    let body = r#"{"model":"mock-gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;

    let acme = {
        let (http, u) = (http.clone(), url("/t/acme/v1/chat/completions"));
        tokio::spawn(async move {
            let mut codes = Vec::new();
            for _ in 0..6 {
                codes
                    .push(http.post(&u).bearer_auth("sk-acme-demo").body(body).send().await.unwrap().status().as_u16());
            }
            codes
        })
    };
    let globex = {
        let (http, u) = (http.clone(), url("/v1/chat/completions"));
        tokio::spawn(async move {
            let ok = http
                .post(&u)
                .header("host", "globex.localhost")
                .bearer_auth(globex_token(3600))
                .body(body)
                .send()
                .await
                .unwrap();
            let status = ok.status().as_u16();
            let v: Value = ok.json().await.unwrap();
            let expired = http
                .post(&u)
                .header("host", "globex.localhost")
                .bearer_auth(globex_token(-3600))
                .body(body)
                .send()
                .await
                .unwrap();
            (status, v, expired.status().as_u16(), expired.text().await.unwrap())
        })
    };
    let free = {
        let (http, u) = (http.clone(), url("/t/free/v1/chat/completions"));
        tokio::spawn(async move {
            let ok = http.post(&u).bearer_auth("sk-free-demo").body(body).send().await.unwrap();
            let limit = ok.headers()["x-ratelimit-limit-tokens"].to_str().unwrap().to_string();
            let big = r#"{"model":"mock-gpt-4o-mini","max_tokens":5000,"messages":[{"role":"user","content":"hi"}]}"#;
            let refused = http.post(&u).bearer_auth("sk-free-demo").body(big).send().await.unwrap();
            (ok.status().as_u16(), limit, refused.status().as_u16())
        })
    };

    assert_eq!(acme.await.unwrap(), vec![200, 200, 200, 200, 200, 429], "acme: 5 requests per minute");
    let (status, v, expired, why) = globex.await.unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["model"], "mock-gpt-4o", "globex pins the model");
    assert_eq!(v["mock_echo"]["messages"][0]["content"], "You are Globex's assistant. Answer briefly.");
    assert_eq!(v["mock_echo"]["headers"]["x-wasmgate-subject"], "ann");
    assert_eq!(v["mock_echo"]["headers"]["x-wasmgate-tenant"], "globex");
    assert_eq!(expired, 401, "{why}");
    assert!(why.contains("expired"), "{why}");
    let (ok, limit, refused) = free.await.unwrap();
    assert_eq!((ok, limit.as_str(), refused), (200, "2000", 429), "free: token budget");

    let e = openai_error(http.post(url("/v1/chat/completions")).body(body).send().await.unwrap(), 401).await;
    assert_eq!(e["code"], "tenant_not_identified");
}
