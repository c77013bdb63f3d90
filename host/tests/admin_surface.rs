//! The admin listener as an attacker meets it, over real sockets: the admin token, DNS
//! rebinding (a foreign `Host`) and cross-site requests refused, no public admin listener
//! without a token, and no secret in `wasmgate config check` or any admin answer, including
//! auth-jwt's `hs256-secret` given inline or through `hs256-secret-env`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods, reason = "tests spawn servers and load freely")]

mod common;

use std::process::Command;

use common::reload_admin::*;
use common::*;
use serde_json::Value;
use wasmgate::config::Config;

const TOKEN: &str = "adm-0123456789abcdef0123456789";

#[tokio::test]
async fn the_admin_token_guards_admin_paths_and_optionally_metrics() {
    let mock = mock().await;
    let extra = "admin-token-env = \"WG_ADMIN\"\n";
    let gw = start_with_env_server(&mock, extra).await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("http://{}{p}", gw.admin_addr);
    for path in ["/admin/plugins", "/admin/reload", "/admin/tenants", "/admin/config", "/admin/nope"] {
        let e = openai_error(http.get(url(path)).send().await.unwrap(), 401).await;
        assert_eq!(e["code"], "invalid_admin_token", "{path}");
        let r = http.get(url(path)).bearer_auth("wrong-token").send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    let r = http.post(url("/admin/reload")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let r = http.get(url("/admin/plugins")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http.post(url("/admin/reload")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // `/metrics` stays open unless asked, `/health` always.
    assert_eq!(http.get(url("/metrics")).send().await.unwrap().status(), 200);
    assert_eq!(http.get(url("/health")).send().await.unwrap().status(), 200);
    gw.shutdown().await;

    let gw = start_with_env_server(&mock, &format!("{extra}admin-token-metrics = true\n")).await;
    let url = |p: &str| format!("http://{}{p}", gw.admin_addr);
    assert_eq!(http.get(url("/metrics")).send().await.unwrap().status(), 401);
    assert_eq!(http.get(url("/metrics")).bearer_auth(TOKEN).send().await.unwrap().status(), 200);
    gw.shutdown().await;
}

/// A gateway whose `[server]` section gets `extra`, with `WG_ADMIN` = [`TOKEN`].
async fn start_with_env_server(mock: &wasmgate::mock::MockServer, extra: &str) -> wasmgate::server::RunningGateway {
    let text = base_config(mock.addr, "").replacen("[server]\n", &format!("[server]\n{extra}"), 1);
    let env = |v: &str| (v == "WG_ADMIN").then(|| TOKEN.to_string());
    let config = Config::parse_with_env(&text, None, &env).unwrap_or_else(|e| panic!("{e}"));
    wasmgate::server::start(wasmgate::server::Snapshot::from_config(config).await.unwrap()).await.unwrap()
}

async fn attempts(http: &reqwest::Client, admin: std::net::SocketAddr) -> u64 {
    let v: Value = http.get(format!("http://{admin}/admin/reload")).send().await.unwrap().json().await.unwrap();
    v["attempts"].as_u64().unwrap()
}

#[tokio::test]
async fn a_foreign_host_or_a_cross_site_request_is_refused() {
    let mock = mock().await;
    let gw = start_with_env_server(&mock, "admin-hosts = [\"gw-admin.internal\"]\n").await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("http://{}{p}", gw.admin_addr);

    // DNS rebinding: the attacker's name resolves to us, the browser sends its Host.
    for host in ["evil.example", "evil.example:9090", "localhost.evil.example"] {
        let r = http.get(url("/admin/plugins")).header("host", host).send().await.unwrap();
        assert_eq!(openai_error(r, 403).await["code"], "admin_host_not_allowed", "{host}");
    }
    let r = http.get(url("/metrics")).header("host", "evil.example").send().await.unwrap();
    assert_eq!(r.status(), 403, "metrics are not readable by rebinding either");
    for host in
        [format!("localhost:{}", gw.admin_addr.port()), "gw-admin.internal".to_string(), gw.admin_addr.to_string()]
    {
        let r = http.get(url("/admin/plugins")).header("host", &host).send().await.unwrap();
        assert_eq!(r.status(), 200, "{host}");
    }

    // CSRF: a form or `fetch` from any page, text/plain so no preflight.
    let csrf = |origin: Option<&str>, site: Option<&str>| {
        let mut req = http.post(url("/admin/reload")).header("content-type", "text/plain").body("x");
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(s) = site {
            req = req.header("sec-fetch-site", s);
        }
        req.send()
    };
    let before = attempts(&http, gw.admin_addr).await;
    let other_port = format!("http://127.0.0.1:{}", gw.addr.port());
    for (origin, site) in [
        (Some("http://evil.example"), None),
        (Some("null"), None),
        (Some(other_port.as_str()), None),
        (Some("http://evil.example"), Some("same-origin")),
        (None, Some("cross-site")),
        (None, Some("same-site")),
    ] {
        let r = csrf(origin, site).await.unwrap();
        assert_eq!(openai_error(r, 403).await["code"], "admin_cross_site", "{origin:?} {site:?}");
    }
    assert_eq!(attempts(&http, gw.admin_addr).await, before, "no refused request reached the reloader");
    let same = format!("http://{}", gw.admin_addr);
    let r = csrf(Some(&same), Some("same-origin")).await.unwrap();
    assert_eq!(r.status(), 200, "the admin page's own origin may post");
    assert_eq!(attempts(&http, gw.admin_addr).await, before + 1);
    gw.shutdown().await;
}

#[test]
fn a_public_admin_listener_needs_a_token() {
    let text = "[server]\nadmin-listen = \"0.0.0.0:0\"\n";
    let err = Config::parse(text, None).unwrap_err().to_string();
    assert!(err.contains("line 2") && err.contains("server.admin-listen") && err.contains("admin-token-env"), "{err}");
    let env = |v: &str| (v == "WG_ADMIN").then(|| TOKEN.to_string());
    let with_token = format!("{text}admin-token-env = \"WG_ADMIN\"\n");
    assert!(Config::parse_with_env(&with_token, None, &env).is_ok());
    let err = Config::parse(&with_token, None).unwrap_err().to_string();
    assert!(err.contains("server.admin-token-env") && err.contains("WG_ADMIN"), "{err}");
    let err = Config::parse("[server]\nadmin-token-metrics = true\n", None).unwrap_err().to_string();
    assert!(err.contains("server.admin-token-metrics"), "{err}");

    // `--admin-listen` on the command line follows the same rule.
    let out = Command::new(env!("CARGO_BIN_EXE_wasmgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-listen", "0.0.0.0:0"])
        .env("WASMGATE_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("not a loopback address"), "{stderr}");
}

const INLINE_SECRET: &str = "inline-jwt-secret-0123456789abcdefXYZ";
const ENV_SECRET: &str = "env-jwt-secret-0123456789abcdef-QRS";
const UPSTREAM_KEY: &str = "sk-upstream-provider-key-777";
const PRIVATE_PEM: &str =
    "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\\n-----END PRIVATE KEY-----\\n";

/// A config with secrets in every place a config can hold one.
fn secret_config(mock: std::net::SocketAddr) -> String {
    let jwt = "kind = \"auth\"\npath = \"builtin:auth-jwt\"\n";
    base_config(
        mock,
        &format!(
            r#"
[upstreams.provider]
endpoints = ["https://bob:hunter2-pw@api.provider.example/v1"]
api-key-env = "WG_UPSTREAM_KEY"

[plugins.jwt]
{jwt}config = {{ issuer = "https://idp.test", audience = "wasmgate", hs256-secret = "{INLINE_SECRET}" }}

[plugins.pin]
kind = "rewrite"
path = "builtin:rewrite"
config = {{ system-prompt = "{PRIVATE_PEM}" }}

[tenants.inline]
hosts = ["inline.localhost"]
chain = ["jwt"]

[tenants.fromenv]
hosts = ["fromenv.localhost"]
chain = ["jwt", "pin"]
config.jwt = {{ issuer = "https://idp.test", audience = "wasmgate", hs256-secret-env = "WG_JWT_SECRET" }}
"#
        ),
    )
}

const SECRETS: &[&str] =
    &[INLINE_SECRET, ENV_SECRET, UPSTREAM_KEY, "hunter2-pw", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw", TOKEN];

fn assert_no_secret(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} shows `{s}`:\n{text}");
    }
}

#[test]
fn config_check_prints_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.toml");
    let text = secret_config("127.0.0.1:9".parse().unwrap()).replacen(
        "[server]\n",
        "[server]\nadmin-token-env = \"WG_ADMIN\"\n",
        1,
    );
    std::fs::write(&file, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wasmgate"))
        .args(["config", "check", "--print", file.to_str().unwrap()])
        .env("WG_JWT_SECRET", ENV_SECRET)
        .env("WG_UPSTREAM_KEY", UPSTREAM_KEY)
        .env("WG_ADMIN", TOKEN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_no_secret("config check", &stdout);
    assert!(stdout.contains(r#"hs256-secret = "<redacted>""#), "{stdout}");
    assert!(
        stdout.contains("<redacted PEM PRIVATE KEY>") && stdout.contains("https://<redacted>@api.provider.example"),
        "{stdout}"
    );
    assert!(stdout.contains("admin-token-env = \"WG_ADMIN\""), "{stdout}");
    // The issuer, audience and key env names stay readable.
    assert!(stdout.contains("https://idp.test") && stdout.contains("WG_UPSTREAM_KEY"), "{stdout}");

    // Without the variable, the error names the key.
    let out = Command::new(env!("CARGO_BIN_EXE_wasmgate"))
        .args(["config", "check", file.to_str().unwrap()])
        .env("WG_UPSTREAM_KEY", UPSTREAM_KEY)
        .env("WG_ADMIN", TOKEN)
        .env_remove("WG_JWT_SECRET")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("tenants.fromenv.config.jwt.hs256-secret-env"), "{stderr}");
}

#[tokio::test]
async fn admin_answers_show_no_secret_and_hs256_secret_env_authenticates() {
    let mock = mock().await;
    let env = |v: &str| match v {
        "WG_JWT_SECRET" => Some(ENV_SECRET.to_string()),
        "WG_UPSTREAM_KEY" => Some(UPSTREAM_KEY.to_string()),
        _ => None,
    };
    let config = Config::parse_with_env(&secret_config(mock.addr), None, &env).unwrap_or_else(|e| panic!("{e}"));
    let gw = wasmgate::server::start(wasmgate::server::Snapshot::from_config(config).await.unwrap()).await.unwrap();
    let http = reqwest::Client::new();
    let chat_as = |host: &'static str, token: String| {
        http.post(format!("http://{}/v1/chat/completions", gw.addr))
            .header("host", host)
            .header("content-type", "application/json")
            .bearer_auth(token)
            .body(CHAT)
            .send()
    };
    // The secret from the environment is the one the plugin checks; the inline one is not it.
    assert_eq!(chat_as("fromenv.localhost", hs256_jwt(ENV_SECRET, "ann")).await.unwrap().status(), 200);
    assert_eq!(chat_as("fromenv.localhost", hs256_jwt(INLINE_SECRET, "ann")).await.unwrap().status(), 401);
    assert_eq!(chat_as("inline.localhost", hs256_jwt(INLINE_SECRET, "bob")).await.unwrap().status(), 200);

    for path in ["/admin/plugins", "/admin/tenants", "/admin/config", "/admin/reload"] {
        let text = http.get(format!("http://{}{path}", gw.admin_addr)).send().await.unwrap().text().await.unwrap();
        assert_no_secret(path, &text);
    }
    let v: Value =
        http.get(format!("http://{}/admin/plugins", gw.admin_addr)).send().await.unwrap().json().await.unwrap();
    let jwt = v["plugins"].as_array().unwrap().iter().find(|p| p["id"] == "fromenv/jwt").unwrap();
    assert_eq!(jwt["config"]["hs256-secret"], "<redacted>", "{v}");
    assert_eq!(jwt["config"]["issuer"], "https://idp.test", "{v}");
    gw.shutdown().await;
}
