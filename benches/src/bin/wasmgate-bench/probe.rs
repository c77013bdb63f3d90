//! Single HTTP/1.1 requests on a fresh connection (hyper's low-level client, no pool): readiness
//! checks and the correctness checks that run before any load.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long one probe may take, connect to last byte.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A collected response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET path`.
pub async fn get(addr: SocketAddr, path: &str) -> Result<Reply> {
    send(addr, "GET", path, None, crate::systems::DEMO_KEY).await
}

/// `POST path` without a body (an admin action).
pub async fn post(addr: SocketAddr, path: &str) -> Result<Reply> {
    send(addr, "POST", path, None, crate::systems::DEMO_KEY).await
}

/// `POST path` with a JSON body and `Authorization: Bearer key` (systems without auth ignore it).
pub async fn post_json(addr: SocketAddr, path: &str, body: &str, key: &str) -> Result<Reply> {
    send(addr, "POST", path, Some(body.to_string()), key).await
}

async fn send(addr: SocketAddr, method: &str, path: &str, body: Option<String>, key: &str) -> Result<Reply> {
    tokio::time::timeout(PROBE_TIMEOUT, send_inner(addr, method, path, body, key))
        .await
        .map_err(|_| anyhow!("{method} {path} on {addr}: no full answer within {PROBE_TIMEOUT:?}"))?
}

async fn send_inner(addr: SocketAddr, method: &str, path: &str, body: Option<String>, key: &str) -> Result<Reply> {
    let stream = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {key}"));
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
    let resp = sender.send_request(req).await.with_context(|| format!("{method} {path} on {addr}"))?;
    let status = resp.status().as_u16();
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let body = resp.into_body().collect().await?.to_bytes();
    driver.abort();
    Ok(Reply { status, content_type, body })
}
