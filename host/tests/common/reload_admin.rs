//! Helpers for the reload-safety and admin-surface tests: a gateway watching a config file in
//! a temporary directory, an auth-keys chain with a known key, admin calls, and HS256 JWTs.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wasmgate::config::Config;
use wasmgate::mock::{MockConfig, MockServer};
use wasmgate::server::{self, RunningGateway, Snapshot};

use super::{CHAT, base_config};

/// The API key the auth-keys plugin of [`auth_chain`] accepts.
pub const KEY: &str = "sk-reload-test-key";

/// A global chain with the builtin auth-keys plugin accepting [`KEY`].
pub fn auth_chain() -> String {
    let sha = hex::encode(Sha256::digest(KEY.as_bytes()));
    format!(
        "\n[plugins.keys]\nkind = \"auth\"\npath = \"builtin:auth-keys\"\nconfig = {{ keys = [{{ sha256 = \"{sha}\", subject = \"ci\" }}] }}\n\n[policy]\nchain = [\"keys\"]\n"
    )
}

/// Writes a file the safe way: a temporary name, then a rename over the target.
pub fn ship(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("shipping");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A gateway started from a config file that it watches.
pub struct Watched {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub gw: RunningGateway,
    pub mock: MockServer,
    pub http: reqwest::Client,
}

pub async fn mock() -> MockServer {
    MockServer::start("127.0.0.1:0".parse().unwrap(), MockConfig::default()).await.unwrap()
}

/// Starts a gateway on `config` (already written), watching it.
pub async fn watch(dir: tempfile::TempDir, config: PathBuf, mock: MockServer) -> Watched {
    let c = Config::load(&config).unwrap_or_else(|e| panic!("{e}"));
    let gw = server::start_with(Snapshot::from_config(c).await.unwrap(), Some(config.clone())).await.unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    Watched { dir, config, gw, mock, http }
}

/// Writes `base_config(mock, extra)` to `gateway.toml` in a new temporary directory and
/// starts a gateway watching it.
pub async fn watched(extra: &str) -> Watched {
    let mock = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, base_config(mock.addr, extra)).unwrap();
    watch(dir, config, mock).await
}

impl Watched {
    pub fn url(&self, p: &str) -> String {
        format!("http://{}{p}", self.gw.addr)
    }
    pub fn admin(&self, p: &str) -> String {
        format!("http://{}{p}", self.gw.admin_addr)
    }
    /// `GET /admin/reload`.
    pub async fn status(&self) -> Value {
        self.http.get(self.admin("/admin/reload")).send().await.unwrap().json().await.unwrap()
    }
    /// Polls the reload status until `f` holds; panics after `within`.
    pub async fn status_until(&self, within: Duration, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let st = self.status().await;
            if f(&st) {
                return st;
            }
            assert!(started.elapsed() < within, "{what}: not within {within:?}; status {st}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    /// A chat completion, with `key` as bearer if given; returns the status.
    pub async fn chat(&self, key: Option<&str>) -> u16 {
        chat(&self.http, &self.url("/v1/chat/completions"), key).await
    }
}

pub async fn chat(http: &reqwest::Client, url: &str, key: Option<&str>) -> u16 {
    let mut req = http.post(url).header("content-type", "application/json").body(CHAT);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.unwrap().status().as_u16()
}

/// A gateway from config text, environment variables given by `env` (no file watch).
pub async fn start_with_env(mock: &MockServer, extra: &str, env: &[(&str, &str)]) -> RunningGateway {
    let text = base_config(mock.addr, extra);
    let lookup = |name: &str| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
    let config = Config::parse_with_env(&text, None, &lookup).unwrap_or_else(|e| panic!("{e}"));
    server::start(Snapshot::from_config(config).await.unwrap_or_else(|e| panic!("{e}"))).await.unwrap()
}

/// Base64url without padding (JWT segments).
pub fn b64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// HMAC-SHA256 (RFC 2104) over `sha2`, for signing test JWTs.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).chain(msg.iter().copied()).collect();
    let inner_hash = Sha256::digest(&inner);
    let outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).chain(inner_hash.iter().copied()).collect();
    Sha256::digest(&outer).to_vec()
}

/// An HS256 JWT for issuer `https://idp.test`, audience `wasmgate`, valid for an hour.
pub fn hs256_jwt(secret: &str, sub: &str) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let h = b64(json!({"alg": "HS256", "typ": "JWT"}).to_string().as_bytes());
    let p = b64(json!({"iss": "https://idp.test", "aud": "wasmgate", "sub": sub, "exp": now + 3600})
        .to_string()
        .as_bytes());
    let s = b64(&hmac_sha256(secret.as_bytes(), format!("{h}.{p}").as_bytes()));
    format!("{h}.{p}.{s}")
}
