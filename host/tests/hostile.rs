//! The hostile-client suite (issue 11, item 10): attack classes the gateway already withstands,
//! pinned over raw sockets so a redesign of the request path cannot quietly loosen them.
//!
//! Every case asserts a specific outcome (a status and OpenAI error code, a closed connection,
//! an upstream request count); where the exact answer is hyper's choice (431 vs. a closed
//! connection) any answer a correct gateway may give is accepted, but never a 2xx. After each
//! risky case the gateway must still answer `/health` and a normal chat completion.
//!
//! The harness limit is `server.max-body-bytes = 65536` (see `common::base_config`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, reason = "tests spawn servers and load freely")]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::hostile::*;
use common::*;
use wasmgate::mock::MockConfig;

const LIMIT: usize = 65536;

async fn harness() -> Harness {
    Harness::with(MockConfig::default(), "").await
}

/// A chunked POST to the chat endpoint; `chunks` are framed as given, then the last chunk.
fn chunked(chunks: &[&[u8]]) -> Vec<u8> {
    let mut out = b"POST /v1/chat/completions HTTP/1.1\r\nhost: gateway.test\r\nconnection: close\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for c in chunks {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

// ---------------------------------------------------------------------------------------------
// Oversize bodies

#[tokio::test]
async fn a_body_of_exactly_the_limit_passes_and_one_byte_more_is_413() {
    let h = harness().await;
    let exact = chat_body_of_len(LIMIT);
    let over = chat_body_of_len(LIMIT + 1);

    let ex = exchange(h.gw.addr, &request("POST", "/v1/chat/completions", &[], &exact)).await;
    assert_eq!(ex.only("exact limit").status, 200, "a body of exactly max-body-bytes is served");
    let ex = exchange(h.gw.addr, &chunked(&[&exact[..1000], &exact[1000..]])).await;
    assert_eq!(ex.only("exact limit, chunked").status, 200);

    let before = upstream_requests(&h);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("content-length", request("POST", "/v1/chat/completions", &[], &over)),
        ("chunked, one chunk", chunked(&[&over])),
        ("chunked, many small chunks", chunked(&over.chunks(100).collect::<Vec<_>>())),
        ("chunked, limit then one byte", chunked(&[&over[..LIMIT], &over[LIMIT..]])),
    ];
    for (case, bytes) in &cases {
        let ex = exchange(h.gw.addr, bytes).await;
        ex.only(case).assert_openai_error(413, "request_too_large", case);
        assert_alive(&h, case).await;
    }
    // A client library's streamed upload (no Content-Length, chunked by reqwest).
    let stream =
        futures_util::stream::iter(over.chunks(4096).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>());
    let r = h
        .http
        .post(h.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(openai_error(r, 413).await["code"], "request_too_large");
    // The alive checks are the only requests that reached the upstream.
    assert_eq!(upstream_requests(&h) - before, cases.len() as u64, "an oversize body was forwarded");
}

#[tokio::test]
async fn a_huge_declared_length_is_refused_at_once_without_reading_the_body() {
    let h = harness().await;
    for declared in ["1000000000000", &(LIMIT + 1).to_string()] {
        let case = format!("content-length {declared}");
        let mut c = RawConn::connect(h.gw.addr).await;
        let head = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: gateway.test\r\ncontent-type: application/json\r\ncontent-length: {declared}\r\n\r\n"
        );
        c.send(head.as_bytes()).await.unwrap();
        // No body byte is sent: the answer must not wait for one.
        let started = Instant::now();
        let resp = c.response(Duration::from_secs(5)).await.unwrap_or_else(|| panic!("{case}: no answer"));
        resp.assert_openai_error(413, "request_too_large", &case);
        assert!(started.elapsed() < Duration::from_secs(5), "{case}");
        // The unread body cannot be skipped: the gateway closes the connection.
        assert!(c.closed_within(READ_BOUND).await, "{case}: the connection stayed open");
        assert_alive(&h, &case).await;
    }
    // Lengths hyper cannot represent (u64::MAX is its chunked marker) or parse: refused by hyper
    // itself (431 or 400 today), never read.
    for declared in ["18446744073709551615", "99999999999999999999999"] {
        let case = format!("content-length {declared}");
        let head = format!("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: {declared}\r\n\r\n");
        exchange(h.gw.addr, head.as_bytes()).await.assert_refused(&[400, 413, 431], &case);
        assert_alive(&h, &case).await;
    }
}

#[tokio::test]
async fn expect_100_continue_is_refused_before_the_body_when_too_large_and_continued_otherwise() {
    let h = harness().await;
    // Too large: 413 straight away, never an invitation to send 20 MB.
    let mut c = RawConn::connect(h.gw.addr).await;
    c.send(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 20000000\r\nexpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let first = c.response(Duration::from_secs(5)).await.expect("an answer to the head alone");
    first.assert_openai_error(413, "request_too_large", "expect 100-continue, 20 MB");
    assert_alive(&h, "expect 100-continue, 20 MB").await;

    // Within the limit: 100 Continue, then the body is read and served.
    let body = chat_body_of_len(2000);
    let mut c = RawConn::connect(h.gw.addr).await;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\r\n",
        body.len()
    );
    c.send(head.as_bytes()).await.unwrap();
    let interim = c.response(Duration::from_secs(5)).await.expect("100 Continue");
    assert_eq!(interim.status, 100, "{interim:?}");
    c.send(&body).await.unwrap();
    let done = c.response(Duration::from_secs(10)).await.expect("the answer");
    assert_eq!(done.status, 200, "{}", String::from_utf8_lossy(&done.body));
}

// ---------------------------------------------------------------------------------------------
// Oversize headers and request lines

#[tokio::test]
async fn oversize_headers_and_request_lines_are_refused() {
    let h = harness().await;
    let before = upstream_requests(&h);
    let many: Vec<String> = (0..10_000).map(|i| format!("x-h{i}: v")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let huge_value = format!("x-big: {}", "a".repeat(1 << 20));
    let huge_bearer = format!("authorization: Bearer {}", "k".repeat(1 << 20));
    let long_target = format!("/v1/chat/completions?{}", "q".repeat(100_000));
    let long_path = format!("/v1/{}", "p".repeat(100_000));
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        ("10,000 headers", request("POST", "/v1/chat/completions", &many, CHAT.as_bytes()), &[431]),
        ("one 1 MiB header", request("POST", "/v1/chat/completions", &[&huge_value], CHAT.as_bytes()), &[431]),
        ("1 MiB bearer", request("POST", "/v1/chat/completions", &[&huge_bearer], CHAT.as_bytes()), &[431]),
        ("100 KB query", request("POST", &long_target, &[], CHAT.as_bytes()), &[414, 431]),
        ("100 KB path", request("GET", &long_path, &[], b""), &[414, 431]),
    ];
    for (case, bytes, allowed) in &cases {
        let started = Instant::now();
        let ex = exchange(h.gw.addr, bytes).await;
        ex.assert_refused(allowed, case);
        assert!(started.elapsed() < READ_BOUND, "{case}: took {:?}", started.elapsed());
        assert_alive(&h, case).await;
    }
    assert_eq!(upstream_requests(&h) - before, cases.len() as u64, "an oversize head was forwarded");
}

// ---------------------------------------------------------------------------------------------
// Request smuggling: ambiguous framing is refused (or resolved and the connection closed), and a
// request hidden behind it is never executed.

#[tokio::test]
async fn smuggling_variants_never_execute_the_hidden_request() {
    let h = harness().await;
    let smuggled = chat_request();
    let s = String::from_utf8(smuggled.clone()).unwrap();
    let head = "POST /v1/chat/completions HTTP/1.1\r\nhost: gateway.test\r\ncontent-type: application/json\r\n";
    let te_cl_body = format!("{:x}\r\n{s}\r\n0\r\n\r\n", s.len());
    let cases: Vec<(&str, String)> = vec![
        // CL.TE: Transfer-Encoding wins (an empty body), the rest must not be read as a request.
        (
            "content-length + transfer-encoding",
            format!("{head}content-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n{s}"),
        ),
        (
            "transfer-encoding + content-length",
            format!("{head}transfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n{te_cl_body}"),
        ),
        ("two differing content-lengths", format!("{head}content-length: 0\r\ncontent-length: 40\r\n\r\n{s}")),
        ("a content-length list", format!("{head}content-length: 0, 40\r\n\r\n{s}")),
        ("content-length with a sign", format!("{head}content-length: +0\r\n\r\n{s}")),
        ("chunked, identity", format!("{head}transfer-encoding: chunked, identity\r\n\r\n0\r\n\r\n{s}")),
        (
            "chunked then identity headers",
            format!("{head}transfer-encoding: chunked\r\ntransfer-encoding: identity\r\n\r\n0\r\n\r\n{s}"),
        ),
        ("unknown transfer-encoding", format!("{head}transfer-encoding: xchunked\r\n\r\n0\r\n\r\n{s}")),
        (
            "obs-fold of transfer-encoding",
            format!("{head}content-length: 0\r\ntransfer-encoding:\r\n chunked\r\n\r\n0\r\n\r\n{s}"),
        ),
        ("obs-fold of a header", format!("{head}content-length: 0\r\nx-folded: a\r\n b\r\n\r\n{s}")),
        ("bare CR in a header", format!("{head}content-length: 0\r\nx-cr: a\rtransfer-encoding: chunked\r\n\r\n{s}")),
        ("space before the colon", format!("{head}transfer-encoding : chunked\r\ncontent-length: 0\r\n\r\n{s}")),
        (
            "transfer-encoding in HTTP/1.0",
            format!("POST /v1/chat/completions HTTP/1.0\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n{s}"),
        ),
    ];
    for (case, bytes) in &cases {
        let before = upstream_requests(&h);
        let ex = exchange(h.gw.addr, bytes.as_bytes()).await;
        ex.assert_refused(&[400], case);
        assert!(ex.finals().len() <= 1, "{case}: the hidden request was answered: {ex:?}");
        assert!(ex.closed, "{case}: the connection stayed open");
        assert_eq!(upstream_requests(&h), before, "{case}: a request reached the upstream");
        assert_alive(&h, case).await;
    }
}

#[tokio::test]
async fn invalid_chunk_framing_is_refused_and_what_follows_is_not_executed() {
    let h = harness().await;
    let s = String::from_utf8(chat_request()).unwrap();
    let head = "POST /v1/chat/completions HTTP/1.1\r\nhost: gateway.test\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    let cases: Vec<(&str, String)> = vec![
        ("non-hex size", format!("{head}zz\r\n{{}}\r\n0\r\n\r\n{s}")),
        ("negative size", format!("{head}-2\r\n{{}}\r\n0\r\n\r\n{s}")),
        ("size overflowing u64", format!("{head}fffffffffffffffffff\r\n{{}}\r\n0\r\n\r\n{s}")),
        ("size with a 0x prefix", format!("{head}0x2\r\n{{}}\r\n0\r\n\r\n{s}")),
        ("chunk longer than its size", format!("{head}1\r\n{{}}\r\n0\r\n\r\n{s}")),
        ("bare LF after the size", format!("{head}2\n{{}}\r\n0\r\n\r\n{s}")),
        ("bare CR after the size", format!("{head}2\r{{}}\r\n0\r\n\r\n{s}")),
        ("empty size line", format!("{head}\r\n{{}}\r\n0\r\n\r\n{s}")),
    ];
    for (case, bytes) in &cases {
        let before = upstream_requests(&h);
        let ex = exchange(h.gw.addr, bytes.as_bytes()).await;
        ex.assert_refused(&[400], case);
        if let Some(r) = ex.finals().first() {
            // hyper hands the framing error to the body reader: the gateway's own 400.
            r.assert_openai_error(400, "invalid_body", case);
        }
        assert!(ex.finals().len() <= 1, "{case}: the hidden request was answered: {ex:?}");
        assert_eq!(upstream_requests(&h), before, "{case}: a request reached the upstream");
        assert_alive(&h, case).await;
    }
}

#[tokio::test]
async fn a_request_pipelined_after_a_malformed_one_is_not_executed() {
    let h = harness().await;
    let good = chat_request();
    let mut keep_alive = good.clone();
    // The same request without `connection: close`, so a second one may follow it.
    let at = keep_alive.windows(19).position(|w| w == b"connection: close\r\n").unwrap();
    keep_alive.drain(at..at + 19);

    // Control: two valid pipelined requests are both answered and executed (the counts below
    // can see an executed request).
    let before = upstream_requests(&h);
    let ex = exchange(h.gw.addr, &[keep_alive.clone(), good.clone()].concat()).await;
    let statuses: Vec<u16> = ex.finals().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![200, 200], "{ex:?}");
    assert_eq!(upstream_requests(&h) - before, 2);

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage line", b"GARBAGE\r\n\r\n".to_vec()),
        ("no version", b"POST /v1/chat/completions\r\nhost: x\r\n\r\n".to_vec()),
        ("HTTP/1.2", b"POST /v1/chat/completions HTTP/1.2\r\nhost: x\r\ncontent-length: 0\r\n\r\n".to_vec()),
        (
            "space in a header name",
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nbad name: v\r\ncontent-length: 0\r\n\r\n".to_vec(),
        ),
        (
            "NUL in a header value",
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-n: a\0b\r\ncontent-length: 0\r\n\r\n".to_vec(),
        ),
        (
            "empty header name",
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n: v\r\ncontent-length: 0\r\n\r\n".to_vec(),
        ),
        (
            "non-UTF-8 in the target",
            b"POST /v1/chat/\xff\xfe HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n".to_vec(),
        ),
    ];
    for (case, bad) in &cases {
        let before = upstream_requests(&h);
        let ex = exchange(h.gw.addr, &[bad.clone(), good.clone()].concat()).await;
        ex.assert_refused(&[400, 404, 505], case);
        assert!(ex.finals().len() <= 1, "{case}: the pipelined request was answered: {ex:?}");
        assert!(ex.closed, "{case}");
        assert_eq!(upstream_requests(&h), before, "{case}: the pipelined request was executed");
        assert_alive(&h, case).await;
    }
}

#[tokio::test]
async fn bare_lf_line_endings_frame_one_request_consistently() {
    let h = harness().await;
    // A recipient may accept LF as a line end (RFC 9112 §2.2); then it must frame the request
    // exactly as the CRLF one: one answer, one upstream request, nothing hidden after it.
    let s = String::from_utf8(chat_request()).unwrap();
    let lf = format!(
        "POST /v1/chat/completions HTTP/1.1\nhost: x\nconnection: close\ncontent-type: application/json\ncontent-length: {}\n\n{CHAT}{s}",
        CHAT.len()
    );
    let before = upstream_requests(&h);
    let ex = exchange(h.gw.addr, lf.as_bytes()).await;
    let finals = ex.finals();
    assert_eq!(finals.len(), 1, "{ex:?}");
    assert!([200, 400].contains(&finals[0].status), "{ex:?}");
    let executed = upstream_requests(&h) - before;
    assert_eq!(executed, u64::from(finals[0].status == 200), "only the framed request may run");
    assert!(ex.closed);
    assert_alive(&h, "bare LF").await;
}

// ---------------------------------------------------------------------------------------------
// JSON bodies

#[tokio::test]
async fn malformed_and_deeply_nested_json_is_400_without_a_stack_overflow() {
    let h = harness().await;
    let deep_arrays =
        format!(r#"{{"model":"mock-gpt-4o","messages":[{{"role":"user","content":{}}}]}}"#, "[".repeat(10_000));
    let deep_objects = format!(r#"{{"model":"mock-gpt-4o","x":{}1{}}}"#, r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    let deep_balanced = format!(
        r#"{{"model":"mock-gpt-4o","messages":[{{"role":"user","content":"x"}}],"x":{}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let cases: Vec<(&str, String)> = vec![
        ("truncated", r#"{"model":"mock-gpt-4o","messages":[{"role":"user""#.to_string()),
        ("wrong bracket", r#"{"model":"mock-gpt-4o","messages":[}"#.to_string()),
        ("trailing garbage", format!("{CHAT} x")),
        ("two documents", format!("{CHAT}{CHAT}")),
        ("single quotes", "{'model':'mock-gpt-4o'}".to_string()),
        ("not an object", "[1,2,3]".to_string()),
        ("a bare string", r#""hello""#.to_string()),
        ("empty body", String::new()),
        ("whitespace only", " \n\t ".to_string()),
        (
            "number out of range",
            r#"{"model":"mock-gpt-4o","messages":[{"role":"user","content":"x"}],"x":1e400}"#.to_string(),
        ),
        (
            "lone surrogate escape",
            r#"{"model":"mock-gpt-4o","messages":[{"role":"user","content":"\ud800"}]}"#.to_string(),
        ),
        ("10,000 nested arrays (unclosed)", deep_arrays),
        ("10,000 nested objects", deep_objects),
        ("10,000 balanced arrays in an unknown field", deep_balanced),
    ];
    for (case, body) in &cases {
        let started = Instant::now();
        let r = h.post("/v1/chat/completions", body).await;
        let e = openai_error(r, 400).await;
        assert_eq!(e["code"], "invalid_json", "{case}: {e}");
        assert!(started.elapsed() < Duration::from_secs(10), "{case}");
        assert_alive(&h, case).await;
    }
    // Control: nesting below the parser's limit in an unknown field is passed on untouched.
    let fine = format!(
        r#"{{"model":"mock-gpt-4o","messages":[{{"role":"user","content":"x"}}],"x":{}{}}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    assert_eq!(h.post("/v1/chat/completions", &fine).await.status(), 200);
}

#[tokio::test]
async fn non_utf8_and_nul_bytes() {
    let h = harness().await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "invalid UTF-8 in content",
            b"{\"model\":\"mock-gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"caf\xe9\"}]}".to_vec(),
        ),
        ("UTF-16 body", "{\"model\":\"m\"}".encode_utf16().flat_map(|u| u.to_le_bytes()).collect()),
        (
            "overlong UTF-8",
            b"{\"model\":\"mock-gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"\xc0\xaf\"}]}".to_vec(),
        ),
        (
            "raw NUL in a string",
            b"{\"model\":\"mock-gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"a\0b\"}]}".to_vec(),
        ),
        (
            "raw NUL between tokens",
            b"{\"model\":\"mock-gpt-4o\",\0\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}".to_vec(),
        ),
        ("BOM", [b"\xef\xbb\xbf".as_slice(), CHAT.as_bytes()].concat()),
    ];
    for (case, body) in &cases {
        let ex = exchange(h.gw.addr, &request("POST", "/v1/chat/completions", &[], body)).await;
        ex.only(case).assert_openai_error(400, "invalid_json", case);
        assert_alive(&h, case).await;
    }
    // An escaped NUL is valid JSON: served, and it reaches the upstream as sent.
    h.mock.clear_recorded();
    let body = r#"{"model":"mock-gpt-4o","messages":[{"role":"user","content":"a\u0000b"}]}"#;
    assert_eq!(h.post("/v1/chat/completions", body).await.status(), 200);
    assert_eq!(h.mock.recorded().last().unwrap().body["messages"][0]["content"], "a\u{0}b");

    // Header values that are not UTF-8 (obs-text) do not break the request.
    let ex =
        exchange(h.gw.addr, &request("POST", "/v1/chat/completions", &["x-latin1: caf\u{e9}"], CHAT.as_bytes())).await;
    assert_eq!(ex.only("UTF-8 header value").status, 200);
    let mut raw = request("POST", "/v1/chat/completions", &["x-latin1: cafX"], CHAT.as_bytes());
    let at = raw.windows(4).position(|w| w == b"cafX").unwrap();
    raw[at + 3] = 0xe9;
    let ex = exchange(h.gw.addr, &raw).await;
    assert_eq!(ex.only("latin-1 header value").status, 200, "{ex:?}");
    assert_alive(&h, "non-UTF-8 header value").await;
}

// ---------------------------------------------------------------------------------------------
// Methods and request targets

#[tokio::test]
async fn unknown_and_odd_methods_on_api_paths_are_405() {
    let h = harness().await;
    let before = upstream_requests(&h);
    for method in ["FOO", "TRACE", "OPTIONS", "DELETE", "PUT", "PATCH", "GET", "post", "M-SEARCH"] {
        for path in ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"] {
            let case = format!("{method} {path}");
            let ex = exchange(h.gw.addr, &request(method, path, &[], CHAT.as_bytes())).await;
            ex.only(&case).assert_openai_error(405, "method_not_allowed", &case);
        }
    }
    // TRACE must not echo the request (cross-site tracing): the credential stays out of the body.
    let ex = exchange(h.gw.addr, &request("TRACE", "/v1/chat/completions", &["authorization: Bearer sk-echo-me"], b""))
        .await;
    assert!(!String::from_utf8_lossy(&ex.only("TRACE").body).contains("sk-echo-me"));
    assert_eq!(upstream_requests(&h), before, "a wrong method reached the upstream");
    assert_alive(&h, "odd methods").await;
}

/// A listener that only counts connections: the gateway must never dial it.
async fn canary() -> (SocketAddr, Arc<AtomicU64>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let hits = Arc::new(AtomicU64::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = l.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    (addr, hits)
}

#[tokio::test]
async fn connect_absolute_form_and_asterisk_targets_never_reach_another_host() {
    let h = harness().await;
    let (canary, hits) = canary().await;

    // CONNECT is not a tunnel here.
    for target in [canary.to_string(), format!("{canary}/v1/chat/completions"), "/v1/chat/completions".to_string()] {
        let case = format!("CONNECT {target}");
        let ex = exchange(h.gw.addr, &request("CONNECT", &target, &[], b"")).await;
        ex.assert_refused(&[400, 404, 405], &case);
        assert_alive(&h, &case).await;
    }

    // Absolute form naming another host: served by the gateway itself, by path only.
    let before = upstream_requests(&h);
    let target = format!("http://{canary}/v1/chat/completions");
    let ex = exchange(h.gw.addr, &request("POST", &target, &[], CHAT.as_bytes())).await;
    assert_eq!(ex.only("absolute form").status, 200, "{ex:?}");
    assert_eq!(upstream_requests(&h) - before, 1, "served by the configured upstream");
    let target = format!("http://{canary}/admin/plugins");
    let ex = exchange(h.gw.addr, &request("GET", &target, &[], b"")).await;
    ex.only("absolute form, admin path").assert_openai_error(404, "unknown_url", "absolute form, admin path");

    // Asterisk form: no resource, no 2xx.
    for method in ["OPTIONS", "GET", "POST"] {
        let case = format!("{method} *");
        let ex = exchange(h.gw.addr, &request(method, "*", &[], b"")).await;
        ex.assert_refused(&[400, 404, 405], &case);
        assert_alive(&h, &case).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the gateway connected to a host named by a client");
}

// ---------------------------------------------------------------------------------------------
// Admin surface on the public port, path traversal in tenant names

#[tokio::test]
async fn admin_paths_on_the_public_port_are_404() {
    let h = harness().await;
    let admin_host = format!("host: {}", h.gw.admin_addr);
    let paths = [
        "/admin/reload",
        "/admin/reload?force=true",
        "/admin/plugins",
        "/metrics",
        "/admin",
        "/admin/",
        "//metrics",
        "/admin/../metrics",
        "/v1/../admin/plugins",
        "/%61dmin/plugins",
        "/ADMIN/RELOAD",
        "/metrics/",
    ];
    for path in paths {
        for method in ["GET", "POST"] {
            for extra in [vec![], vec![admin_host.as_str()]] {
                let case = format!("{method} {path} {extra:?}");
                let ex = exchange(h.gw.addr, &request(method, path, &extra, b"")).await;
                ex.only(&case).assert_openai_error(404, "unknown_url", &case);
            }
        }
    }
    // Control: the admin listener does serve them.
    assert_eq!(h.http.get(h.admin_url("/metrics")).send().await.unwrap().status(), 200);
    assert_alive(&h, "admin paths").await;
}

#[tokio::test]
async fn path_traversal_in_tenant_names_never_selects_a_tenant() {
    let h = Harness::with(MockConfig::default(), "[tenants.acme]\n\n[tenants.other]\n").await;
    let chat = |path: &str| request("POST", path, &[], CHAT.as_bytes());
    // Control: a tenant named by the path is served.
    let ex = exchange(h.gw.addr, &chat("/t/acme/v1/chat/completions")).await;
    assert_eq!(ex.only("control").status, 200, "{ex:?}");

    let before = upstream_requests(&h);
    let long = format!("/t/{}/v1/chat/completions", "a".repeat(8000));
    let cases: Vec<(&str, &str)> = vec![
        ("/t/../v1/chat/completions", "tenant_not_found"),
        ("/t/./v1/chat/completions", "tenant_not_found"),
        ("/t/%2e%2e/v1/chat/completions", "tenant_not_found"),
        ("/t/acme%2f..%2fother/v1/chat/completions", "tenant_not_found"),
        ("/t/..%2facme/v1/chat/completions", "tenant_not_found"),
        ("/t/acme%00/v1/chat/completions", "tenant_not_found"),
        ("/t/acme%20/v1/chat/completions", "tenant_not_found"),
        ("/t/ACME/v1/chat/completions", "tenant_not_found"),
        ("/t//v1/chat/completions", "tenant_not_found"),
        (&long, "tenant_not_found"),
        ("/t/acme/../other/v1/chat/completions", "unknown_url"),
        ("/t/acme/v1/../../other/v1/chat/completions", "unknown_url"),
        ("/t/acme/other/v1/chat/completions", "unknown_url"),
    ];
    for (path, code) in &cases {
        let path: &str = path;
        let case = path.get(..80).unwrap_or(path);
        let ex = exchange(h.gw.addr, &chat(path)).await;
        let r = ex.only(case);
        r.assert_openai_error(404, code, case);
        assert!(r.body.len() < 1024, "{case}: the error echoes the whole name");
    }
    assert_eq!(upstream_requests(&h), before, "a traversal reached the upstream");
    let ex = exchange(h.gw.addr, &chat("/t/other/v1/chat/completions")).await;
    assert_eq!(ex.only("after traversal").status, 200);
    assert_eq!(h.http.get(h.url("/health")).send().await.unwrap().status(), 200);
}
