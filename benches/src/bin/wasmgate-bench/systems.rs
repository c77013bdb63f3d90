//! The systems under test and how each is started on free loopback ports in front of a mock
//! upstream: wasmgate without plugins and with the full chain, each over an h2c and an HTTP/1.1
//! upstream (the governed lane: providers differ), the Go chi and FastAPI baselines, nginx, and
//! "direct" (the load sent straight to the mock, the floor).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::process::{Proc, free_ports};

/// The API key the chain config accepts (the embedded default's demo key); every request carries it.
pub const DEMO_KEY: &str = "sk-wasmgate-demo";
/// sha256 of [`DEMO_KEY`], as the auth-keys plugin stores keys.
const DEMO_KEY_SHA256: &str = "aca7531d37be9f291490e7e2f1047afd4fe212921bc68880050ab2299d1d0186";
/// Upstream connections the HTTP/1.1 baselines may open (Go `MaxConnsPerHost`, Python `POOL`): the
/// open-file limit is 20,000 per process, and 10,000 client sockets must fit beside them.
pub const BASELINE_POOL: u32 = 9000;

/// One system under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SystemId {
    Direct,
    Wasmgate,
    WasmgateChain,
    WasmgateH1,
    WasmgateChainH1,
    GoChi,
    FastapiHttpx,
    FastapiAiohttp,
    Nginx,
}

impl SystemId {
    /// Every system, in report order.
    pub const ALL: [SystemId; 9] = [
        SystemId::Direct,
        SystemId::Wasmgate,
        SystemId::WasmgateChain,
        SystemId::WasmgateH1,
        SystemId::WasmgateChainH1,
        SystemId::GoChi,
        SystemId::FastapiHttpx,
        SystemId::FastapiAiohttp,
        SystemId::Nginx,
    ];

    /// `--only` ids (empty: all).
    pub fn selected(only: &[String]) -> Result<Vec<SystemId>> {
        if only.is_empty() {
            return Ok(Self::ALL.to_vec());
        }
        let mut out = vec![SystemId::Direct];
        for name in only {
            match Self::ALL.iter().find(|s| s.id() == name) {
                Some(s) if !out.contains(s) => out.push(*s),
                Some(_) => {}
                None => bail!("unknown system `{name}` (known: {})", Self::ALL.map(|s| s.id()).join(", ")),
            }
        }
        Ok(out)
    }

    pub fn id(self) -> &'static str {
        match self {
            SystemId::Direct => "direct",
            SystemId::Wasmgate => "wasmgate",
            SystemId::WasmgateChain => "wasmgate-chain",
            SystemId::WasmgateH1 => "wasmgate-h1",
            SystemId::WasmgateChainH1 => "wasmgate-chain-h1",
            SystemId::GoChi => "go-chi",
            SystemId::FastapiHttpx => "fastapi-httpx",
            SystemId::FastapiAiohttp => "fastapi-aiohttp",
            SystemId::Nginx => "nginx",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SystemId::Direct => "direct to mock (no gateway)",
            SystemId::Wasmgate => "wasmgate, no plugins (h2c upstream)",
            SystemId::WasmgateChain => "wasmgate, auth+rewrite+rate-limit (h2c upstream)",
            SystemId::WasmgateH1 => "wasmgate, no plugins (HTTP/1.1 upstream)",
            SystemId::WasmgateChainH1 => "wasmgate, auth+rewrite+rate-limit (HTTP/1.1 upstream)",
            SystemId::GoChi => "Go chi",
            SystemId::FastapiHttpx => "FastAPI + httpx",
            SystemId::FastapiAiohttp => "FastAPI + aiohttp",
            SystemId::Nginx => "nginx (plain reverse proxy)",
        }
    }

    /// wasmgate with the plugin chain (either upstream protocol).
    pub fn is_chain(self) -> bool {
        matches!(self, SystemId::WasmgateChain | SystemId::WasmgateChainH1)
    }

    /// The same wasmgate without the chain (what the chain's cost is measured against).
    pub fn unchained(self) -> Option<SystemId> {
        match self {
            SystemId::WasmgateChain => Some(SystemId::Wasmgate),
            SystemId::WasmgateChainH1 => Some(SystemId::WasmgateH1),
            _ => None,
        }
    }

    /// Scenarios 1 and 2 are about the gateway's own request handling: no nginx, no direct.
    pub fn in_handling_scenarios(self) -> bool {
        !matches!(self, SystemId::Direct | SystemId::Nginx)
    }

    /// The path answering chat in-process (parse + validate + a local mock answer), if any.
    pub fn local_chat_path(self) -> Option<&'static str> {
        match self {
            SystemId::GoChi | SystemId::FastapiHttpx | SystemId::FastapiAiohttp => Some("/mock/v1/chat/completions"),
            _ => None,
        }
    }

    /// How the system reaches the upstream (and stays under the 20,000 open-file limit).
    pub fn upstream_note(self) -> String {
        match self {
            SystemId::Direct => "wrk/SSE client straight to the mock".into(),
            SystemId::Wasmgate | SystemId::WasmgateChain => {
                "HTTP/2 with prior knowledge (`http2 = true`): up to 16 h2c connections, 100 streams each, least loaded first".into()
            }
            SystemId::WasmgateH1 | SystemId::WasmgateChainH1 => {
                "HTTP/1.1 keep-alive pool (`http2 = false`), 16 lanes, 100 requests in flight each".into()
            }
            SystemId::GoChi => format!(
                "HTTP/1.1 keep-alive pool, `MaxConnsPerHost = {BASELINE_POOL}` (more requests wait for a connection)"
            ),
            SystemId::FastapiHttpx => format!("HTTP/1.1, `httpx.AsyncClient` pool of {BASELINE_POOL}"),
            SystemId::FastapiAiohttp => format!("HTTP/1.1, `aiohttp.TCPConnector(limit={BASELINE_POOL})`"),
            SystemId::Nginx => "HTTP/1.1, upstream `keepalive 2048`, 2 workers each with its own 20,000 fds".into(),
        }
    }
}

/// Built binaries and paths the systems need.
#[derive(Debug, Clone)]
pub struct Tools {
    pub root: PathBuf,
    pub wasmgate: PathBuf,
    pub gochi: PathBuf,
    pub venv: PathBuf,
    /// Configs, logs, nginx prefix: removed when the run ends.
    pub tmp: PathBuf,
}

/// A started system.
pub struct Running {
    pub id: SystemId,
    pub addr: SocketAddr,
    /// `None` for [`SystemId::Direct`] (the mock is owned by the scenario).
    pub proc: Option<Proc>,
}

impl Running {
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(|p| p.pid)
    }

    pub fn stop(self) {
        if let Some(p) = self.proc {
            p.stop();
        }
    }
}

/// Mock upstream settings for one scenario.
#[derive(Debug, Clone, Copy)]
pub struct MockSettings {
    pub latency_ms: u64,
    pub chunks: u32,
    pub chunk_interval_ms: u64,
}

/// Starts `wasmgate mock-upstream` on a free port.
pub async fn start_mock(tools: &Tools, m: MockSettings) -> Result<(Proc, SocketAddr)> {
    let addr = free_ports(1)?[0];
    let mut cmd = Command::new(&tools.wasmgate);
    cmd.args(["mock-upstream", "--listen", &addr.to_string()])
        .args(["--latency-ms", &m.latency_ms.to_string(), "--chunks", &m.chunks.to_string()])
        .args(["--chunk-interval-ms", &m.chunk_interval_ms.to_string()])
        .env("WASMGATE_LOG", "warn");
    let mut proc = Proc::spawn("mock-upstream", cmd, &tools.tmp.join("mock.log"))?;
    proc.wait_ready(addr, "/health").await?;
    Ok((proc, addr))
}

/// Starts `id` forwarding to the mock at `upstream` and waits until its `/health` answers.
pub async fn start(id: SystemId, tools: &Tools, upstream: SocketAddr) -> Result<Running> {
    if id == SystemId::Direct {
        return Ok(Running { id, addr: upstream, proc: None });
    }
    let ports = free_ports(2)?;
    let (addr, admin) = (ports[0], ports[1]);
    let log = tools.tmp.join(format!("{}.log", id.id()));
    let cmd = match id {
        SystemId::Direct => bail!("direct has no process of its own"),
        SystemId::Wasmgate | SystemId::WasmgateChain | SystemId::WasmgateH1 | SystemId::WasmgateChainH1 => {
            let config = tools.tmp.join(format!("{}.toml", id.id()));
            let cache = tools.tmp.join("plugin-cache");
            let http2 = matches!(id, SystemId::Wasmgate | SystemId::WasmgateChain);
            let text = wasmgate_config(addr, admin, upstream, id.is_chain().then_some(&*cache), http2);
            std::fs::write(&config, text).with_context(|| format!("writing {}", config.display()))?;
            let mut cmd = Command::new(&tools.wasmgate);
            cmd.arg("serve").arg("--config").arg(&config).env("WASMGATE_LOG", "warn");
            cmd
        }
        SystemId::GoChi => {
            let mut cmd = Command::new(&tools.gochi);
            cmd.args(["-listen", &addr.to_string(), "-upstream", &format!("http://{upstream}/v1")])
                .args(["-max-conns", &BASELINE_POOL.to_string()]);
            cmd
        }
        SystemId::FastapiHttpx | SystemId::FastapiAiohttp => {
            let client = if id == SystemId::FastapiHttpx { "httpx" } else { "aiohttp" };
            let mut cmd = Command::new(tools.venv.join("bin/uvicorn"));
            cmd.current_dir(tools.root.join("benches/baselines/python-fastapi"))
                .args(["main:app", "--host", "127.0.0.1", "--port", &addr.port().to_string()])
                .args(["--no-access-log", "--log-level", "warning", "--backlog", "4096"])
                .env("UPSTREAM", format!("http://{upstream}/v1"))
                .env("CLIENT", client)
                .env("POOL", BASELINE_POOL.to_string());
            cmd
        }
        SystemId::Nginx => {
            let prefix = tools.tmp.join("nginx");
            std::fs::create_dir_all(prefix.join("logs"))?;
            let conf = prefix.join("nginx.conf");
            std::fs::write(&conf, nginx_config(&prefix, addr, upstream))?;
            let mut cmd = Command::new("nginx");
            cmd.arg("-p").arg(&prefix).arg("-c").arg(&conf).arg("-e").arg(prefix.join("logs/error.log"));
            cmd
        }
    };
    let mut proc = Proc::spawn(id.id(), cmd, &log)?;
    proc.wait_ready(addr, "/health").await?;
    Ok(Running { id, addr, proc: Some(proc) })
}

/// wasmgate's config: the mock over h2c (`http2`) or HTTP/1.1; with a chain (`Some(cache dir)`), auth-keys (demo key) +
/// rewrite (alias, cap) + rate-limit (limits far above what a bench reaches, so nothing is
/// rejected), precompiled into `policy.cache-dir` as a production restart would find them.
pub fn wasmgate_config(
    listen: SocketAddr,
    admin: SocketAddr,
    upstream: SocketAddr,
    chain: Option<&Path>,
    http2: bool,
) -> String {
    let head = format!(
        "[server]\nlisten = \"{listen}\"\nadmin-listen = \"{admin}\"\n\n[upstreams.mock]\nendpoints = [\"http://{upstream}/v1\"]\nhttp2 = {http2}\n\n"
    );
    let Some(cache) = chain else {
        return head + "[[models]]\nname = \"gpt-4o-mini\"\nupstream = \"mock\"\n";
    };
    let cache = cache.display();
    head + &format!(
        r#"[[models]]
name = "mock-gpt-4o-mini"
upstream = "mock"

[plugins.auth]
kind = "auth"
path = "builtin:auth-keys"
config.keys = [{{ sha256 = "{DEMO_KEY_SHA256}", subject = "bench-user", tenant = "bench" }}]

[plugins.rewrite]
kind = "rewrite"
path = "builtin:rewrite"
config = {{ model-aliases = {{ "gpt-4o-mini" = "mock-gpt-4o-mini" }}, max-tokens-cap = 4096 }}

[plugins.limits]
kind = "rate-limit"
path = "builtin:rate-limit"
config = {{ key = "identity", requests = {{ limit = 1000000000000, window-ms = 60000 }}, tokens = {{ limit = 1000000000000000, window-ms = 60000 }} }}

[policy]
chain = ["auth", "rewrite", "limits"]
cache-dir = "{cache}"
"#
    )
}

/// nginx as a plain reverse proxy: foreground, temp prefix, no access log, streaming
/// (`proxy_buffering off`), upstream keep-alive, `reuseport` so both workers get connections.
fn nginx_config(prefix: &Path, listen: SocketAddr, upstream: SocketAddr) -> String {
    let p = prefix.display();
    format!(
        r#"daemon off;
master_process on;
worker_processes auto;
worker_rlimit_nofile 20000;
pid {p}/nginx.pid;
error_log {p}/logs/error.log warn;
events {{ worker_connections 19000; }}
http {{
  access_log off;
  client_body_temp_path {p}/client_body;
  proxy_temp_path {p}/proxy;
  fastcgi_temp_path {p}/fastcgi;
  uwsgi_temp_path {p}/uwsgi;
  scgi_temp_path {p}/scgi;
  upstream mock {{
    server {upstream};
    keepalive 2048;
    # Keep upstream connections (as Go's pool does) instead of reconnecting every 1,000 requests.
    keepalive_requests 1000000;
    keepalive_timeout 300s;
  }}
  server {{
    listen {listen} reuseport backlog=4096;
    location = /health {{
      default_type application/json;
      return 200 '{{"status":"ok"}}';
    }}
    location /v1/ {{
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
"#
    )
}
