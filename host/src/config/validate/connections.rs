//! `[server]` keys of the connection layer: deadlines, the connection cap, the backlog.
//! Defaults are applied here and documented on the raw fields.

use std::time::Duration;

use super::Ctx;
use crate::config::ConnectionLimits;
use crate::config::raw::RawServer;

const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Above the 60 s idle timeout of common load balancers, so they close first (no race).
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(75);
const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_H2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_LISTEN_BACKLOG: u32 = 1024;
/// `[server]` connection deadlines and limits.
pub(super) fn connection_limits(cx: &mut Ctx<'_>, s: &RawServer) -> ConnectionLimits {
    let max_connections = match &s.max_connections {
        Some(v) if *v.get_ref() == 0 => {
            cx.err("server.max-connections", Some(v.span()), "must be greater than zero");
            None
        }
        Some(v) => Some(usize::try_from(*v.get_ref()).unwrap_or(usize::MAX)),
        None => None,
    };
    let listen_backlog = match &s.listen_backlog {
        Some(v) if *v.get_ref() == 0 => {
            cx.err("server.listen-backlog", Some(v.span()), "must be greater than zero");
            DEFAULT_LISTEN_BACKLOG
        }
        Some(v) => *v.get_ref(),
        None => DEFAULT_LISTEN_BACKLOG,
    };
    ConnectionLimits {
        header_read_timeout: cx.duration(
            "server.header-read-timeout",
            &s.header_read_timeout,
            DEFAULT_HEADER_READ_TIMEOUT,
        ),
        idle_timeout: cx.duration("server.idle-timeout", &s.idle_timeout, DEFAULT_IDLE_TIMEOUT),
        body_timeout: cx.duration("server.body-timeout", &s.body_timeout, DEFAULT_BODY_TIMEOUT),
        http2_keep_alive_interval: cx.duration(
            "server.http2-keep-alive-interval",
            &s.http2_keep_alive_interval,
            DEFAULT_H2_KEEP_ALIVE_INTERVAL,
        ),
        max_connections,
        listen_backlog,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]
    use crate::config::Config;

    #[test]
    fn defaults_and_key_named_errors() {
        let c = Config::parse("[server]\n", None).unwrap_or_else(|e| panic!("{e}"));
        let l = &c.server.connections;
        assert_eq!(l.header_read_timeout.as_secs(), 10);
        assert_eq!(l.idle_timeout.as_secs(), 75);
        assert_eq!(l.body_timeout.as_secs(), 30);
        assert_eq!((l.max_connections, l.listen_backlog), (None, 1024));
        let text =
            "[server]\nheader-read-timeout = \"0s\"\nmax-connections = 0\nlisten-backlog = 0\nidle-timeout = \"x\"\n";
        let Err(errs) = Config::parse(text, None) else { panic!("accepted") };
        let keys: Vec<(&str, Option<usize>)> = errs.errors.iter().map(|e| (e.key.as_str(), e.line)).collect();
        assert_eq!(
            keys,
            [
                ("server.max-connections", Some(3)),
                ("server.listen-backlog", Some(4)),
                ("server.header-read-timeout", Some(2)),
                ("server.idle-timeout", Some(5)),
            ],
            "{errs}"
        );
    }
}
