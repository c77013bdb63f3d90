//! Helpers of the header and clarity tests: raw HTTP/1.1 over a socket (to send exactly the
//! bytes a hostile client would), API keys for `builtin:auth-keys`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The hex SHA-256 of an API key, as `builtin:auth-keys` configs hold it.
pub fn key_sha(key: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A `[plugins.NAME]` auth-keys plugin accepting `keys`: `(key, subject, tenant)`.
pub fn auth_keys_plugin(name: &str, keys: &[(&str, &str, Option<&str>)]) -> String {
    let entries: Vec<String> = keys
        .iter()
        .map(|(k, subject, tenant)| {
            let t = tenant.map(|t| format!(", tenant = \"{t}\"")).unwrap_or_default();
            format!("{{ sha256 = \"{}\", subject = \"{subject}\"{t} }}", key_sha(k))
        })
        .collect();
    format!("[plugins.{name}]\nkind = \"auth\"\npath = \"builtin:auth-keys\"\nconfig.keys = [{}]\n", entries.join(", "))
}

/// A response read off a raw socket.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Writes `head` (the request line and headers, without the blank line) and `body`, and reads
/// the response head and its `content-length` body within `within`; `None` if no complete
/// response came in time.
pub async fn raw_request(addr: SocketAddr, head: &str, body: &[u8], within: Duration) -> Option<RawResponse> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("{head}\r\n\r\n").as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    tokio::time::timeout(within, async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let text = String::from_utf8_lossy(&buf[..end]).to_string();
                let mut lines = text.split("\r\n");
                let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                let len: usize =
                    headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
                while buf.len() < end + 4 + len {
                    let n = s.read(&mut chunk).await.ok()?;
                    if n == 0 {
                        return None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                return Some(RawResponse { status, headers, body });
            }
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .ok()
    .flatten()
}
