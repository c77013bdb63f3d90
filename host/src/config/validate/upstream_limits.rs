//! `[upstreams.X]` connection sharing and stream watchdogs: validated with key-named errors,
//! defaults applied here.

use std::time::Duration;

use toml::Spanned;

use super::{Ctx, RawUpstream};
use crate::config::{MAX_H2_WINDOW, UpstreamLimits};

const DEFAULT_CONNECTIONS: usize = 16;
const DEFAULT_STREAMS: usize = 100;
const DEFAULT_STREAM_WINDOW: u32 = 256 << 10;
/// Below this the default HTTP/2 window (RFC 9113 §6.9.2) would be shrunk.
const MIN_STREAM_WINDOW: u32 = 65_535;
const DEFAULT_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);
const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_CLIENT_STALL: Duration = Duration::from_secs(30);
const DEFAULT_CHUNK_IDLE: Duration = Duration::from_secs(60);

pub(super) fn validate(cx: &mut Ctx<'_>, key: &str, u: &RawUpstream) -> UpstreamLimits {
    let connections = count(
        cx,
        &format!("{key}.max-connections-per-endpoint"),
        &u.max_connections_per_endpoint,
        DEFAULT_CONNECTIONS,
        1024,
    );
    let streams =
        count(cx, &format!("{key}.max-streams-per-connection"), &u.max_streams_per_connection, DEFAULT_STREAMS, 10_000);
    let window_key = format!("{key}.http2-stream-window");
    let window = match &u.http2_stream_window {
        None => DEFAULT_STREAM_WINDOW,
        Some(v) => match u32::try_from(*v.get_ref()) {
            Ok(w) if (MIN_STREAM_WINDOW..=MAX_H2_WINDOW).contains(&w) => w,
            _ => {
                cx.err(
                    &window_key,
                    Some(v.span()),
                    format!("must be between {MIN_STREAM_WINDOW} and {MAX_H2_WINDOW} bytes"),
                );
                DEFAULT_STREAM_WINDOW
            }
        },
    };
    if u64::from(window) * streams as u64 > u64::from(MAX_H2_WINDOW) {
        let span = u.http2_stream_window.as_ref().or(u.max_streams_per_connection.as_ref()).map(Spanned::span);
        cx.err(
            &window_key,
            span,
            format!(
                "times `max-streams-per-connection` ({streams}) must fit the largest HTTP/2 connection window ({MAX_H2_WINDOW} bytes)"
            ),
        );
    }
    UpstreamLimits {
        max_connections_per_endpoint: connections,
        max_streams_per_connection: streams,
        http2_stream_window: window,
        http2_keep_alive_interval: cx.duration(
            &format!("{key}.http2-keep-alive-interval"),
            &u.http2_keep_alive_interval,
            DEFAULT_KEEP_ALIVE_INTERVAL,
        ),
        http2_keep_alive_timeout: cx.duration(
            &format!("{key}.http2-keep-alive-timeout"),
            &u.http2_keep_alive_timeout,
            DEFAULT_KEEP_ALIVE_TIMEOUT,
        ),
        client_stall_timeout: cx.duration(
            &format!("{key}.client-stall-timeout"),
            &u.client_stall_timeout,
            DEFAULT_CLIENT_STALL,
        ),
        chunk_idle_timeout: cx.duration(
            &format!("{key}.chunk-idle-timeout"),
            &u.chunk_idle_timeout,
            DEFAULT_CHUNK_IDLE,
        ),
    }
}

fn count(cx: &mut Ctx<'_>, key: &str, v: &Option<Spanned<u64>>, default: usize, max: usize) -> usize {
    let Some(v) = v else { return default };
    match usize::try_from(*v.get_ref()) {
        Ok(n) if (1..=max).contains(&n) => n,
        _ => {
            cx.err(key, Some(v.span()), format!("must be between 1 and {max}"));
            default
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::config::Config;

    fn errors(extra: &str) -> String {
        let text = format!(
            "[upstreams.a]\nendpoints = [\"http://127.0.0.1:9/v1\"]\n{extra}\n[[models]]\nname = \"m\"\nupstream = \"a\"\n"
        );
        match Config::parse(&text, None) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_and_key_named_errors() {
        let text =
            "[upstreams.a]\nendpoints = [\"http://127.0.0.1:9/v1\"]\n[[models]]\nname = \"m\"\nupstream = \"a\"\n";
        let l = Config::parse(text, None).unwrap().upstreams["a"].limits.clone();
        assert_eq!((l.max_connections_per_endpoint, l.max_streams_per_connection), (16, 100));
        assert_eq!(l.http2_connection_window(), 100 * (256 << 10));
        assert_eq!(l.client_stall_timeout, std::time::Duration::from_secs(30));
        assert!(errors("max-streams-per-connection = 0").contains("line 3: `upstreams.a.max-streams-per-connection`"));
        assert!(errors("http2-stream-window = 100").contains("`upstreams.a.http2-stream-window`"));
        let e = errors("http2-stream-window = 100000000\nmax-streams-per-connection = 100");
        assert!(e.contains("`upstreams.a.http2-stream-window`") && e.contains("connection window"), "{e}");
        assert!(errors("client-stall-timeout = \"0s\"").contains("`upstreams.a.client-stall-timeout`"));
        assert!(errors("chunk-idle-timeout = \"soon\"").contains("`upstreams.a.chunk-idle-timeout`"));
    }
}
