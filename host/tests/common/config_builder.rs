//! A config for tests, built as a TOML document (not `format!` strings), then parsed and
//! validated like any config file.

use std::net::SocketAddr;

use toml::{Table, Value};
use wasmgate::config::Config;

/// A gateway config under construction. Listeners default to ephemeral loopback ports.
#[derive(Debug, Clone)]
pub struct TestConfig {
    doc: Table,
}

impl Default for TestConfig {
    fn default() -> Self {
        Self::new()
    }
}

fn table(v: &mut Value) -> &mut Table {
    if !v.is_table() {
        *v = Value::Table(Table::new());
    }
    v.as_table_mut().unwrap()
}

impl TestConfig {
    pub fn new() -> Self {
        let mut t = TestConfig { doc: Table::new() };
        t = t.set("server.listen", "127.0.0.1:0").set("server.admin-listen", "127.0.0.1:0");
        t.set("server.shutdown-grace", "5s")
    }

    /// Sets the value at a dotted key path (`server.max-body-bytes`, `plugins.auth.kind`).
    pub fn set(mut self, path: &str, value: impl Into<Value>) -> Self {
        let mut parts: Vec<&str> = path.split('.').collect();
        let last = parts.pop().unwrap();
        let mut cur = &mut self.doc;
        for p in parts {
            cur = table(cur.entry(p.to_string()).or_insert_with(|| Value::Table(Table::new())));
        }
        cur.insert(last.to_string(), value.into());
        self
    }

    /// An upstream `name` at `endpoint` (`http://127.0.0.1:1/v1`), serving `models`.
    pub fn upstream(mut self, name: &str, endpoint: &str, models: &[&str]) -> Self {
        self = self.set(&format!("upstreams.{name}.endpoints"), vec![endpoint.to_string()]);
        self = self.set(&format!("upstreams.{name}.first-byte-timeout"), "2s");
        let list = self.doc.entry("models".to_string()).or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = list {
            for m in models {
                let mut route = Table::new();
                route.insert("name".into(), Value::from(*m));
                route.insert("upstream".into(), Value::from(name));
                a.push(Value::Table(route));
            }
        }
        self
    }

    /// The mock upstream at `addr` as upstream `mock`, serving `mock-gpt-4o` and `mock-embedding`.
    pub fn mock(self, addr: SocketAddr) -> Self {
        self.upstream("mock", &format!("http://{addr}/v1"), &["mock-gpt-4o", "mock-embedding"])
    }

    /// A plugin `id` of `kind` from `path` (a file or `builtin:<name>`) with `config` (a TOML
    /// inline table as text, e.g. `{ keys = [] }`).
    pub fn plugin(self, id: &str, kind: &str, path: &str, config: &str) -> Self {
        let config: Table = toml::from_str(&format!("v = {config}")).unwrap();
        self.set(&format!("plugins.{id}.kind"), kind)
            .set(&format!("plugins.{id}.path"), path)
            .set(&format!("plugins.{id}.config"), config["v"].clone())
    }

    /// The global chain.
    pub fn chain(self, ids: &[&str]) -> Self {
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        let cache = format!("{}/plugin-cache", env!("CARGO_TARGET_TMPDIR"));
        self.set("policy.chain", ids).set("policy.cache-dir", cache)
    }

    /// A tenant with its chain and model allow-list (empty: every model).
    pub fn tenant(self, id: &str, chain: &[&str], models: &[&str]) -> Self {
        let chain: Vec<String> = chain.iter().map(|s| s.to_string()).collect();
        let mut t = self.set(&format!("tenants.{id}.chain"), chain);
        if !models.is_empty() {
            let models: Vec<String> = models.iter().map(|s| s.to_string()).collect();
            t = t.set(&format!("tenants.{id}.models"), models);
        }
        t
    }

    /// The config as TOML text.
    pub fn text(&self) -> String {
        toml::to_string(&self.doc).unwrap()
    }

    /// The validated config.
    pub fn build(&self) -> Config {
        let text = self.text();
        Config::parse(&text, None).unwrap_or_else(|e| panic!("{e}\n--- config:\n{text}"))
    }
}
