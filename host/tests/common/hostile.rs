//! Raw-socket helpers for the hostile-client suite: bytes written exactly as given (no client
//! library fixing the framing), responses parsed with `httparse`, and the checks every risky
//! case ends with.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::ReadHalf;
use tokio::time::Instant;

use super::{CHAT, Harness};

/// Upper bound for one raw exchange. Generous for a noisy 2-core machine; a passing case ends
/// as soon as the gateway closes the connection, long before this.
pub const READ_BOUND: Duration = Duration::from_secs(10);

/// One parsed HTTP/1 response (interim `1xx` responses included).
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// `error.code` of an OpenAI-shaped error body.
    pub fn error_code(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        v["error"]["code"].as_str().map(str::to_string)
    }

    /// Asserts the OpenAI error shape with this status and code.
    pub fn assert_openai_error(&self, status: u16, code: &str, case: &str) {
        assert_eq!(self.status, status, "{case}: status (body {})", String::from_utf8_lossy(&self.body));
        let v: serde_json::Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{case}: body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)));
        let e = &v["error"];
        assert!(e["message"].is_string() && e["type"].is_string(), "{case}: not an OpenAI error: {v}");
        assert!(e.get("param").is_some(), "{case}: no param: {v}");
        assert_eq!(e["code"], code, "{case}: code in {v}");
    }
}

/// What came back on one connection.
#[derive(Debug)]
pub struct Exchange {
    /// Every complete response, in order (interim `100 Continue` included).
    pub responses: Vec<RawResponse>,
    /// The gateway closed (or reset) the connection within [`READ_BOUND`].
    pub closed: bool,
    /// Bytes after the last complete response.
    pub trailing: Vec<u8>,
}

impl Exchange {
    /// The final (non-1xx) responses.
    pub fn finals(&self) -> Vec<&RawResponse> {
        self.responses.iter().filter(|r| r.status >= 200).collect()
    }

    /// The one final response; fails if there are none or several.
    pub fn only(&self, case: &str) -> &RawResponse {
        let f = self.finals();
        assert_eq!(f.len(), 1, "{case}: expected one response, got {self:?}");
        f[0]
    }

    /// The request was refused: no 2xx at all, and either the first answer has one of the
    /// `allowed` statuses or the gateway closed the connection without answering. (Which of
    /// the two is hyper's or the kernel's choice: a reset can discard an answer in flight.)
    pub fn assert_refused(&self, allowed: &[u16], case: &str) {
        let finals = self.finals();
        assert!(finals.iter().all(|r| !(200..300).contains(&r.status)), "{case}: a 2xx came back: {self:?}");
        match finals.first() {
            Some(r) => assert!(allowed.contains(&r.status), "{case}: status {} not in {allowed:?}: {self:?}", r.status),
            None => assert!(self.closed, "{case}: no answer and the connection is still open after {READ_BOUND:?}"),
        }
    }
}

/// Writes `bytes` on a fresh connection while reading until the gateway closes it (or
/// [`READ_BOUND`]). Write errors are expected (the gateway may close before reading it all)
/// and ignored; a gateway that stops reading does not block the exchange either.
pub async fn exchange(addr: SocketAddr, bytes: &[u8]) -> Exchange {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let (mut r, mut w) = stream.split();
    let writer = async {
        let _ = w.write_all(bytes).await;
        std::future::pending::<()>().await
    };
    let mut buf = Vec::new();
    let closed = tokio::select! {
        _ = writer => unreachable!(),
        closed = read_to_close(&mut r, &mut buf, READ_BOUND) => closed,
    };
    parse_all(&buf, closed)
}

/// Reads into `buf` until EOF or a reset (true) or until `within` passes (false).
async fn read_to_close(r: &mut ReadHalf<'_>, buf: &mut Vec<u8>, within: Duration) -> bool {
    let end = Instant::now() + within;
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        match tokio::time::timeout_at(end, r.read(&mut chunk)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A connection driven step by step (for `Expect: 100-continue` and pipelining by hand).
pub struct RawConn {
    stream: TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

impl RawConn {
    pub async fn connect(addr: SocketAddr) -> RawConn {
        RawConn { stream: TcpStream::connect(addr).await.unwrap(), buf: Vec::new(), eof: false }
    }

    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// The next complete response (interim ones too), or None if the connection closed first
    /// or `within` passed.
    pub async fn response(&mut self, within: Duration) -> Option<RawResponse> {
        let end = Instant::now() + within;
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            if let Some((resp, used)) = parse_one(&self.buf, self.eof) {
                self.buf.drain(..used);
                return Some(resp);
            }
            if self.eof {
                return None;
            }
            match tokio::time::timeout_at(end, self.stream.read(&mut chunk)).await {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => self.eof = true,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// The gateway closes the connection within `within` (what arrives first is discarded).
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let end = Instant::now() + within;
        let mut chunk = vec![0u8; 64 << 10];
        while !self.eof {
            match tokio::time::timeout_at(end, self.stream.read(&mut chunk)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => self.eof = true,
                Ok(Ok(_)) => {}
            }
        }
        true
    }

    /// Nothing arrives within `within` (the connection may stay open).
    pub async fn silent_for(&mut self, within: Duration) -> bool {
        let mut chunk = [0u8; 1024];
        match tokio::time::timeout(within, self.stream.read(&mut chunk)).await {
            Err(_) => true,
            Ok(Ok(0)) | Ok(Err(_)) => {
                self.eof = true;
                true
            }
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                false
            }
        }
    }
}

fn parse_all(mut buf: &[u8], closed: bool) -> Exchange {
    let mut responses = Vec::new();
    while let Some((resp, used)) = parse_one(buf, closed) {
        responses.push(resp);
        buf = &buf[used..];
    }
    Exchange { responses, closed, trailing: buf.to_vec() }
}

/// Parses one response at the start of `buf`; `eof`: a body without length ends with `buf`.
fn parse_one(buf: &[u8], eof: bool) -> Option<(RawResponse, usize)> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf).ok()? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return None,
    };
    let status = resp.code?;
    let headers: Vec<(String, String)> = resp
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned()))
        .collect();
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.trim().to_string());
    let rest = &buf[head_len..];
    let (body, used) = if status < 200 || status == 204 || status == 304 {
        (Vec::new(), 0)
    } else if get("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)?
    } else if let Some(cl) = get("content-length") {
        let n: usize = cl.parse().ok()?;
        (rest.get(..n)?.to_vec(), n)
    } else if eof {
        (rest.to_vec(), rest.len())
    } else {
        return None;
    };
    Some((RawResponse { status, headers, body }, head_len + used))
}

/// Decodes a complete chunked body; None if it is not complete yet.
fn dechunk(mut buf: &[u8]) -> Option<(Vec<u8>, usize)> {
    let start = buf.len();
    let mut body = Vec::new();
    loop {
        let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&buf[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        buf = &buf[line_end + 2..];
        if size == 0 {
            // No trailers from the gateway: the final CRLF follows.
            buf = buf.strip_prefix(b"\r\n")?;
            return Some((body, start - buf.len()));
        }
        body.extend_from_slice(buf.get(..size)?);
        buf = buf.get(size..)?.strip_prefix(b"\r\n")?;
    }
}

/// An HTTP/1.1 request with `Host`, `Connection: close` and a `Content-Length` for `body`,
/// plus `extra` header lines (each without its CRLF).
pub fn request(method: &str, target: &str, extra: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nhost: gateway.test\r\nconnection: close\r\n");
    if !body.is_empty() || method == "POST" {
        out.push_str(&format!("content-type: application/json\r\ncontent-length: {}\r\n", body.len()));
    }
    for h in extra {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A valid chat completion request (`Connection: close`): what a smuggled request looks like.
pub fn chat_request() -> Vec<u8> {
    request("POST", "/v1/chat/completions", &[], CHAT.as_bytes())
}

/// `/v1` requests the mock upstream has received so far.
pub fn upstream_requests(h: &Harness) -> u64 {
    h.mock.stats.requests.load(Ordering::SeqCst)
}

/// After a risky case: the gateway still answers `/health` and a normal chat completion.
pub async fn assert_alive(h: &Harness, case: &str) {
    let r = h.http.get(h.url("/health")).send().await.unwrap_or_else(|e| panic!("{case}: /health failed: {e}"));
    assert_eq!(r.status(), 200, "{case}: /health");
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["status"], "ok", "{case}: /health body");
    let r = h
        .http
        .post(h.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(CHAT)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{case}: chat failed: {e}"));
    assert_eq!(r.status(), 200, "{case}: chat after the case");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion", "{case}: chat body {v}");
}

/// A chat body of exactly `len` bytes (padded with an unknown field the upstream ignores).
pub fn chat_body_of_len(len: usize) -> Vec<u8> {
    let head = br#"{"model":"mock-gpt-4o","messages":[{"role":"user","content":"hi"}],"pad":""#;
    let tail = br#""}"#;
    let pad = len.checked_sub(head.len() + tail.len()).expect("len too small for a chat body");
    let mut body = head.to_vec();
    body.resize(head.len() + pad, b'x');
    body.extend_from_slice(tail);
    assert_eq!(body.len(), len);
    body
}
