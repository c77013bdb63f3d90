//! Keys read once, when the gateway starts: the listeners (addresses, backlog, the connection
//! layer's deadlines and cap), the shutdown grace, the plugin cache directory and the plugin
//! instance limits (`[policy.instances]`: the engine is made once). A reload
//! cannot apply them, so it keeps the values the process started with (the serving snapshot,
//! and `/admin/config`, show what runs) and names the keys whose new values wait for a
//! restart: in a warning, in the reload's report and in the reload status.

use crate::config::Config;

/// The start-only values of a config, compared key by key.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct StartOnly {
    listen: std::net::SocketAddr,
    admin_listen: std::net::SocketAddr,
    shutdown_grace: std::time::Duration,
    header_read_timeout: std::time::Duration,
    idle_timeout: std::time::Duration,
    http2_keep_alive_interval: std::time::Duration,
    max_connections: Option<usize>,
    listen_backlog: u32,
    cache_dir: Option<std::path::PathBuf>,
    instances: crate::config::InstanceLimits,
}

impl StartOnly {
    pub(super) fn of(c: &Config) -> Self {
        let s = &c.server;
        StartOnly {
            listen: s.listen,
            admin_listen: s.admin_listen,
            shutdown_grace: s.shutdown_grace,
            header_read_timeout: s.connections.header_read_timeout,
            idle_timeout: s.connections.idle_timeout,
            http2_keep_alive_interval: s.connections.http2_keep_alive_interval,
            max_connections: s.connections.max_connections,
            listen_backlog: s.connections.listen_backlog,
            cache_dir: c.policy.cache_dir.clone(),
            instances: c.policy.instances,
        }
    }

    /// The config keys whose value in `new` differs from what the process started with.
    pub(super) fn changed_in(&self, new: &Config) -> Vec<String> {
        let n = StartOnly::of(new);
        let mut keys = Vec::new();
        let mut check = |key: &str, differs: bool| {
            if differs {
                keys.push(key.to_string());
            }
        };
        check("server.listen", self.listen != n.listen);
        check("server.admin-listen", self.admin_listen != n.admin_listen);
        check("server.shutdown-grace", self.shutdown_grace != n.shutdown_grace);
        check("server.header-read-timeout", self.header_read_timeout != n.header_read_timeout);
        check("server.idle-timeout", self.idle_timeout != n.idle_timeout);
        check("server.http2-keep-alive-interval", self.http2_keep_alive_interval != n.http2_keep_alive_interval);
        check("server.max-connections", self.max_connections != n.max_connections);
        check("server.listen-backlog", self.listen_backlog != n.listen_backlog);
        check("policy.cache-dir", self.cache_dir != n.cache_dir);
        check("policy.instances", self.instances != n.instances);
        keys
    }

    /// Puts the started values back into `new`, so the snapshot says what really runs.
    pub(super) fn pin(&self, new: &mut Config) {
        let s = &mut new.server;
        s.listen = self.listen;
        s.admin_listen = self.admin_listen;
        s.shutdown_grace = self.shutdown_grace;
        s.connections.header_read_timeout = self.header_read_timeout;
        s.connections.idle_timeout = self.idle_timeout;
        s.connections.http2_keep_alive_interval = self.http2_keep_alive_interval;
        s.connections.max_connections = self.max_connections;
        s.connections.listen_backlog = self.listen_backlog;
        new.policy.cache_dir.clone_from(&self.cache_dir);
        new.policy.instances = self.instances;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_start_only_key_is_named_and_pinned() {
        let base = "[upstreams.u]\nendpoints = [\"http://127.0.0.1:1\"]\n[[models]]\nname = \"m\"\nupstream = \"u\"\n";
        let started = Config::parse(base, None).unwrap();
        let changed = format!(
            "[server]\nlisten = \"127.0.0.1:1\"\nadmin-listen = \"127.0.0.1:2\"\nshutdown-grace = \"1s\"\n\
             header-read-timeout = \"1s\"\nidle-timeout = \"1s\"\nhttp2-keep-alive-interval = \"1s\"\n\
             max-connections = 5\nlisten-backlog = 5\nbody-timeout = \"1s\"\n[policy]\ncache-dir = \"/tmp/x\"\n\
             [policy.instances]\nidle = 3\n{base}"
        );
        let mut new = Config::parse(&changed, None).unwrap();
        let start = StartOnly::of(&started);
        let keys = start.changed_in(&new);
        assert_eq!(keys.len(), 10, "{keys:?}");
        assert!(!keys.iter().any(|k| k.contains("body-timeout")), "body-timeout applies per request: {keys:?}");
        start.pin(&mut new);
        assert!(start.changed_in(&new).is_empty());
        assert_eq!(new.server.connections.body_timeout, std::time::Duration::from_secs(1));
    }
}
