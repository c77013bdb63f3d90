//! Raw → validated config. Collects every error (not just the first), each with its key and
//! line, and documents every default where it is applied.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::raw::{RawConfig, RawPlugin, RawUpstream};
use super::*;

mod connections;
use connections::connection_limits;
mod headers;
use headers::{forward_client_headers, trusted_proxies, upstream_headers};
mod instances;
mod secure;
mod tenants;
mod upstream_limits;

pub(super) use tenants::{parse_tenant_file, valid_tenant_id};

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9090";
const DEFAULT_MAX_BODY: usize = 4 << 20;
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(600);
const DEFAULT_MAX_IDLE: usize = 512;
const DEFAULT_PLUGIN_TIMEOUT: Duration = Duration::from_millis(50);
/// `configure` parses the plugin's whole config (100,000 keys take ~1 s): far above a call.
const DEFAULT_CONFIGURE_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_PLUGIN_MEMORY_MIB: u64 = 64;
/// The policy engine's per-slot memory size (`EngineOptions::max_memory_mib`).
const MAX_PLUGIN_MEMORY_MIB: u64 = 256;
const DEFAULT_MAX_REUSE: u32 = 1000;
const DEFAULT_TENANT_CONCURRENCY: u32 = 64;

/// One problem in a config: the key it is about, the line, and what is wrong.
#[derive(Debug, Clone)]
pub struct ConfigError {
    pub key: String,
    pub line: Option<usize>,
    pub message: String,
    /// The file it is in, when not the one [`ConfigErrors::file`] names (a tenant file).
    pub file: Option<String>,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, line: Option<usize>, message: impl Into<String>) -> Self {
        ConfigError { key: key.into(), line, message: message.into(), file: None }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}: ")?;
        }
        match (self.line, self.key.is_empty()) {
            (Some(l), false) => write!(f, "line {l}: `{}`: {}", self.key, self.message),
            (Some(l), true) => write!(f, "line {l}: {}", self.message),
            (None, false) => write!(f, "`{}`: {}", self.key, self.message),
            (None, true) => write!(f, "{}", self.message),
        }
    }
}

/// Every problem found in a config.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigErrors {
    pub file: Option<String>,
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    pub fn single(e: ConfigError) -> Self {
        ConfigErrors { file: None, errors: vec![e] }
    }

    /// The errors, each naming the file it is in (to merge errors of several files).
    pub fn into_located(self) -> impl Iterator<Item = ConfigError> {
        let file = self.file;
        self.errors.into_iter().map(move |e| ConfigError { file: e.file.or_else(|| file.clone()), ..e })
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        match &self.file {
            Some(file) => writeln!(f, "{file}: {n} error{}:", if n == 1 { "" } else { "s" })?,
            None => writeln!(f, "{n} config error{}:", if n == 1 { "" } else { "s" })?,
        }
        for e in &self.errors {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

/// Collects errors with line numbers computed from spans into the source text.
struct Ctx<'a> {
    text: &'a str,
    errors: Vec<ConfigError>,
}

impl Ctx<'_> {
    fn line(&self, span: Range<usize>) -> usize {
        self.text.get(..span.start).map(|s| s.matches('\n').count() + 1).unwrap_or(1)
    }
    fn err(&mut self, key: impl Into<String>, span: Option<Range<usize>>, msg: impl Into<String>) {
        let line = span.map(|s| self.line(s));
        self.errors.push(ConfigError::new(key, line, msg));
    }
    fn duration(&mut self, key: &str, v: &Option<Spanned<String>>, default: Duration) -> Duration {
        let Some(v) = v else { return default };
        match humantime::parse_duration(v.get_ref()) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                self.err(key, Some(v.span()), "must be greater than zero");
                default
            }
            Err(e) => {
                self.err(
                    key,
                    Some(v.span()),
                    format!("`{}` is not a duration like \"5s\" or \"250ms\": {e}", v.get_ref()),
                );
                default
            }
        }
    }
    fn addr(&mut self, key: &str, v: &Option<Spanned<String>>, default: &str) -> SocketAddr {
        let fallback = SocketAddr::from(([127, 0, 0, 1], 0));
        let (text, span) = match v {
            Some(v) => (v.get_ref().as_str(), Some(v.span())),
            None => (default, None),
        };
        match text.parse() {
            Ok(a) => a,
            Err(_) => {
                self.err(key, span, format!("`{text}` is not an address like \"127.0.0.1:8080\""));
                fallback
            }
        }
    }
}

pub(super) fn parse(
    text: &str,
    path: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let file = path.map(|p| p.display().to_string());
    let raw: RawConfig = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let mut cx = Ctx { text, errors: Vec::new() };
            let msg = e.message().to_string();
            // toml keeps the key path private: find it from the span, so the error names its key.
            let key = e.span().map(|span| super::keypath::key_at(text, &span)).unwrap_or_default();
            cx.err(key, e.span(), msg);
            return Err(ConfigErrors { file, errors: cx.errors });
        }
    };
    let mut cx = Ctx { text, errors: Vec::new() };
    let base_dir = path.and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();

    let server = ServerConfig {
        listen: cx.addr("server.listen", &raw.server.listen, DEFAULT_LISTEN),
        admin_listen: cx.addr("server.admin-listen", &raw.server.admin_listen, DEFAULT_ADMIN_LISTEN),
        max_body_bytes: match &raw.server.max_body_bytes {
            Some(v) if *v.get_ref() == 0 => {
                cx.err("server.max-body-bytes", Some(v.span()), "must be greater than zero");
                DEFAULT_MAX_BODY
            }
            Some(v) => usize::try_from(*v.get_ref()).unwrap_or(usize::MAX),
            None => DEFAULT_MAX_BODY,
        },
        shutdown_grace: cx.duration("server.shutdown-grace", &raw.server.shutdown_grace, DEFAULT_SHUTDOWN_GRACE),
        trusted_proxies: trusted_proxies(&mut cx, &raw.server.trusted_proxies),
        connections: connection_limits(&mut cx, &raw.server),
        admin: AdminAccess::default(),
    };
    let server = ServerConfig { admin: secure::admin_access(&mut cx, &raw.server, server.admin_listen, env), ..server };

    let mut upstreams = BTreeMap::new();
    for (name, u) in &raw.upstreams {
        upstreams.insert(name.clone(), upstream(&mut cx, name, u, env));
    }

    let mut models = Vec::new();
    for (i, m) in raw.models.iter().enumerate() {
        let key = format!("models[{i}]");
        let name = m.name.get_ref().trim();
        let pattern = match name.strip_suffix('*') {
            _ if name.is_empty() => {
                cx.err(format!("{key}.name"), Some(m.name.span()), "must not be empty");
                continue;
            }
            Some(prefix) if prefix.contains('*') => {
                cx.err(format!("{key}.name"), Some(m.name.span()), "only a single trailing `*` is supported");
                continue;
            }
            Some(prefix) => ModelPattern::Prefix(prefix.to_string()),
            None if name.contains('*') => {
                cx.err(format!("{key}.name"), Some(m.name.span()), "`*` is only supported at the end");
                continue;
            }
            None => ModelPattern::Exact(name.to_string()),
        };
        if !raw.upstreams.contains_key(m.upstream.get_ref()) {
            let known: Vec<&str> = raw.upstreams.keys().map(String::as_str).collect();
            cx.err(
                format!("{key}.upstream"),
                Some(m.upstream.span()),
                format!("no upstream named `{}` (known: {})", m.upstream.get_ref(), list(&known)),
            );
        }
        models.push(ModelRoute {
            pattern,
            upstream: m.upstream.get_ref().clone(),
            upstream_model: m.upstream_model.clone(),
        });
    }

    let mut plugins = BTreeMap::new();
    for (id, p) in &raw.plugins {
        if let Some(pc) = plugin(&mut cx, id, p, &base_dir) {
            plugins.insert(id.clone(), pc);
        }
    }
    for (id, pc) in plugins.iter_mut() {
        secure::resolve_env_refs(&mut cx, &format!("plugins.{id}.config"), pc, env);
    }

    let mut chain = Vec::new();
    if let Some(c) = &raw.policy.chain {
        for id in c.get_ref() {
            if !raw.plugins.contains_key(id) {
                let known: Vec<&str> = raw.plugins.keys().map(String::as_str).collect();
                cx.err("policy.chain", Some(c.span()), format!("no plugin named `{id}` (known: {})", list(&known)));
            } else if chain.contains(id) {
                cx.err("policy.chain", Some(c.span()), format!("plugin `{id}` appears twice"));
            } else {
                chain.push(id.clone());
            }
        }
    }
    let policy = PolicyConfig {
        chain,
        cache_dir: raw.policy.cache_dir.as_ref().map(|d| base_dir.join(d)),
        tenants_dir: raw.policy.tenants_dir.as_ref().map(|d| base_dir.join(d.get_ref())),
        forward_identity: raw.policy.forward_identity.unwrap_or(true),
        instances: instances::limits(&mut cx, &raw.policy.instances),
    };

    let mut tenants = BTreeMap::new();
    for (id, t) in &raw.tenants {
        let known = |name: &str| raw.upstreams.contains_key(name);
        if let Some(tc) = tenants::tenant(&mut cx, id, &format!("tenants.{id}."), t, &plugins, &known, env) {
            tenants.insert(id.clone(), tc);
        }
    }

    if !cx.errors.is_empty() {
        return Err(ConfigErrors { file, errors: cx.errors });
    }
    Ok(Config { server, upstreams, models, plugins, policy, tenants, source: path.map(Path::to_path_buf) })
}

fn list(items: &[&str]) -> String {
    if items.is_empty() { "none".to_string() } else { items.join(", ") }
}

fn upstream(cx: &mut Ctx<'_>, name: &str, u: &RawUpstream, env: &dyn Fn(&str) -> Option<String>) -> UpstreamConfig {
    let key = format!("upstreams.{name}");
    let mut endpoints = Vec::new();
    if u.endpoints.get_ref().is_empty() {
        cx.err(format!("{key}.endpoints"), Some(u.endpoints.span()), "needs at least one URL");
    }
    for url in u.endpoints.get_ref() {
        match parse_endpoint(url) {
            Ok(e) => endpoints.push(e),
            Err(msg) => cx.err(format!("{key}.endpoints"), Some(u.endpoints.span()), msg),
        }
    }
    let api_key = u.api_key_env.as_ref().and_then(|var| match env(var.get_ref()) {
        Some(v) if !v.trim().is_empty() => Some((var.get_ref().clone(), Secret::new(v.trim().to_string()))),
        _ => {
            cx.err(
                format!("{key}.api-key-env"),
                Some(var.span()),
                format!("environment variable `{}` is not set (or empty)", var.get_ref()),
            );
            None
        }
    });
    UpstreamConfig {
        name: name.to_string(),
        endpoints,
        api_key,
        http2: u.http2,
        connect_timeout: cx.duration(&format!("{key}.connect-timeout"), &u.connect_timeout, DEFAULT_CONNECT_TIMEOUT),
        first_byte_timeout: cx.duration(
            &format!("{key}.first-byte-timeout"),
            &u.first_byte_timeout,
            DEFAULT_FIRST_BYTE_TIMEOUT,
        ),
        total_timeout: cx.duration(&format!("{key}.total-timeout"), &u.total_timeout, DEFAULT_TOTAL_TIMEOUT),
        max_idle_per_endpoint: u.max_idle_per_endpoint.unwrap_or(DEFAULT_MAX_IDLE),
        headers: upstream_headers(cx, &key, u),
        forward_client_headers: forward_client_headers(cx, &key, u),
        limits: upstream_limits::validate(cx, &key, u),
    }
}

/// Parses `http(s)://host[:port][/base]`.
pub(crate) fn parse_endpoint(url: &str) -> Result<Endpoint, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    let scheme = uri.scheme().cloned().ok_or_else(|| format!("`{url}` has no scheme (http:// or https://)"))?;
    if scheme != http::uri::Scheme::HTTP && scheme != http::uri::Scheme::HTTPS {
        return Err(format!("`{url}`: only http and https are supported"));
    }
    let authority = uri.authority().cloned().ok_or_else(|| format!("`{url}` has no host"))?;
    if uri.query().is_some() {
        return Err(format!("`{url}`: a base URL cannot have a query"));
    }
    let base_path = uri.path().trim_end_matches('/').to_string();
    Ok(Endpoint { scheme, authority, base_path })
}

fn plugin(cx: &mut Ctx<'_>, id: &str, p: &RawPlugin, base_dir: &Path) -> Option<PluginConfig> {
    let key = format!("plugins.{id}");
    let kind = match p.kind.get_ref().as_str() {
        "auth" => PluginKindConfig::Auth,
        "rewrite" => PluginKindConfig::Rewrite,
        "rate-limit" => PluginKindConfig::RateLimit,
        other => {
            cx.err(
                format!("{key}.kind"),
                Some(p.kind.span()),
                format!("`{other}` is not one of auth, rewrite, rate-limit"),
            );
            return None;
        }
    };
    let path = p.path.get_ref();
    let location = match path.strip_prefix("builtin:") {
        Some(name) if crate::builtin_plugins::get(name).is_some() => PluginLocation::Builtin(name.to_string()),
        Some(name) => {
            cx.err(
                format!("{key}.path"),
                Some(p.path.span()),
                format!("no builtin plugin `{name}` (known: {})", crate::builtin_plugins::NAMES.join(", ")),
            );
            return None;
        }
        None => PluginLocation::File(base_dir.join(path)),
    };
    let failure = match p.failure.as_ref().map(|f| f.get_ref().as_str()) {
        None if kind == PluginKindConfig::Rewrite => FailureMode::FailOpen,
        None => FailureMode::FailClosed,
        Some("fail-closed") => FailureMode::FailClosed,
        Some("fail-open") => FailureMode::FailOpen,
        Some(other) => {
            let span = p.failure.as_ref().map(|f| f.span());
            cx.err(format!("{key}.failure"), span, format!("`{other}` is not one of fail-closed, fail-open"));
            FailureMode::FailClosed
        }
    };
    let memory_mib = match &p.memory_limit_mib {
        Some(m) if *m.get_ref() == 0 || *m.get_ref() > MAX_PLUGIN_MEMORY_MIB => {
            cx.err(
                format!("{key}.memory-limit-mib"),
                Some(m.span()),
                format!("must be in 1..={MAX_PLUGIN_MEMORY_MIB}"),
            );
            DEFAULT_PLUGIN_MEMORY_MIB
        }
        Some(m) => *m.get_ref(),
        None => DEFAULT_PLUGIN_MEMORY_MIB,
    };
    let max_reuse = match &p.max_reuse {
        Some(m) if *m.get_ref() == 0 => {
            cx.err(format!("{key}.max-reuse"), Some(m.span()), "must be at least 1 (1 = a fresh instance per request)");
            DEFAULT_MAX_REUSE
        }
        Some(m) => *m.get_ref(),
        None => DEFAULT_MAX_REUSE,
    };
    let config_json = match &p.config {
        Some(t) => serde_json::to_string(t).unwrap_or_else(|_| "{}".to_string()),
        None => "{}".to_string(),
    };
    Some(PluginConfig {
        id: id.to_string(),
        kind,
        location,
        config_json,
        failure,
        timeout: cx.duration(&format!("{key}.timeout"), &p.timeout, DEFAULT_PLUGIN_TIMEOUT),
        configure_timeout: cx.duration(
            &format!("{key}.configure-timeout"),
            &p.configure_timeout,
            DEFAULT_CONFIGURE_TIMEOUT,
        ),
        memory_limit_bytes: usize::try_from(memory_mib << 20).unwrap_or(usize::MAX),
        pass_body: p.body,
        max_reuse,
        failure_explicit: p.failure.is_some(),
        body_limit: plugin_body_limit(cx, &key, p),
        secrets: Vec::new(),
    })
}

/// `plugins.X.body-limit`: at least 1 byte when set.
fn plugin_body_limit(cx: &mut Ctx<'_>, key: &str, p: &RawPlugin) -> Option<usize> {
    let limit = p.body_limit.as_ref()?;
    if *limit.get_ref() == 0 {
        cx.err(format!("{key}.body-limit"), Some(limit.span()), "must be at least 1 (bytes)");
        return None;
    }
    Some(usize::try_from(*limit.get_ref()).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    pub(super) fn check(text: &str) -> Result<Config, ConfigErrors> {
        parse(text, None, &|v| (v == "SET").then(|| "sk-secret".to_string()))
    }

    #[test]
    fn every_error_is_reported_with_its_line() {
        let text = r#"
[server]
listen = "nope"

[upstreams.a]
endpoints = ["ftp://x"]
api-key-env = "UNSET"
connect-timeout = "5 parsecs"

[[models]]
name = "m"
upstream = "b"
"#;
        let errs = check(text).unwrap_err();
        let lines: Vec<(String, Option<usize>)> = errs.errors.iter().map(|e| (e.key.clone(), e.line)).collect();
        assert!(lines.contains(&("server.listen".into(), Some(3))), "{errs}");
        assert!(lines.contains(&("upstreams.a.endpoints".into(), Some(6))), "{errs}");
        assert!(lines.contains(&("upstreams.a.api-key-env".into(), Some(7))), "{errs}");
        assert!(lines.contains(&("upstreams.a.connect-timeout".into(), Some(8))), "{errs}");
        assert!(lines.contains(&("models[0].upstream".into(), Some(12))), "{errs}");
        assert_eq!(errs.errors.len(), 5, "{errs}");
    }

    #[test]
    fn unknown_keys_are_rejected_with_line() {
        let errs = check("[server]\nlisten = \"127.0.0.1:1\"\nlisten-port = 3\n").unwrap_err();
        assert_eq!(errs.errors[0].line, Some(3), "{errs}");
        assert!(errs.errors[0].message.contains("listen-port"), "{errs}");
    }

    #[test]
    fn valid_config_resolves_defaults_and_hides_secrets() {
        let c = check(
            "[upstreams.a]\nendpoints = [\"http://127.0.0.1:9/v1/\"]\napi-key-env = \"SET\"\n[[models]]\nname = \"gpt-*\"\nupstream = \"a\"\n",
        )
        .unwrap();
        assert_eq!(c.upstreams["a"].endpoints[0].base_path, "/v1");
        assert_eq!(c.models[0].pattern, ModelPattern::Prefix("gpt-".into()));
        assert!(c.models[0].pattern.matches("gpt-4o"));
        assert_eq!(c.server.max_body_bytes, 4 << 20);
        let text = c.describe();
        assert!(!text.contains("sk-secret"), "{text}");
        assert!(!format!("{c:?}").contains("sk-secret"));
    }
}
