//! `wasmgate plugin run`: a plugin on a recorded request, outside the gateway — the author's
//! inner loop. Prints the decision, the time per call (p50/p99) and the memory it takes.
//!
//! The request file is either a recorded request, the shape `wasmgate mock-upstream --record`
//! keeps (`{"method","path","headers":{..},"body":{..}}`, plus optional `client_ip` and
//! `tenant`), or a bare OpenAI request body (`{"model":..,"messages":[..]}`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use super::{Settings, inspect, mib, rss_bytes};
use crate::api::{ApiRequest, Endpoint};
use crate::policy::{Chain, ChainOutcome, Edit, Outcome, PolicyFailure, Recorder as Trace, RequestView};

/// Options of `plugin run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Calls to make (the first one's decision is printed in full).
    pub repeat: u32,
    /// Extra request headers (`name: value`), e.g. a key to try.
    pub headers: Vec<String>,
    /// Hand the body to the plugin (`body = true` in the gateway config).
    pub pass_body: bool,
    pub timeout: Duration,
    pub memory_limit_mib: u64,
}

/// Headers as an object (the recorder's shape) or as a list of pairs.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Headers {
    Map(BTreeMap<String, String>),
    List(Vec<(String, String)>),
}

#[derive(Debug, Deserialize)]
struct Recorded {
    method: Option<String>,
    path: Option<String>,
    headers: Option<Headers>,
    client_ip: Option<String>,
    tenant: Option<String>,
    body: Option<Value>,
}

/// Instances kept alive at once to measure the memory of one.
const LIVE_INSTANCES: usize = 16;

/// Runs `file` on the request in `request`: `opts.repeat` calls on reused instances, then
/// up to 200 on a fresh instance each; then the memory of live instances.
pub async fn run(file: &Path, request: &Path, config: Option<&Path>, opts: &RunOptions) -> Result<(), String> {
    let (template, body) = read_request(request, &opts.headers)?;
    let rss_start = rss_bytes();
    let compiled = inspect(file).await?;
    let info = &compiled.info;
    let settings = |max_reuse| Settings {
        timeout: opts.timeout,
        memory_limit_mib: opts.memory_limit_mib,
        max_reuse,
        pass_body: opts.pass_body,
    };
    let plugin = compiled.load(file, config, &settings(u32::MAX)).await?;
    println!("plugin:   {} (wasmgate:policy/{}), {} bytes", file.display(), plugin.kind().world(), info.size);
    println!(
        "compile:  {:.1} ms; precompiled {} bytes, loads in {:.2} ms",
        info.compile_time.as_secs_f64() * 1e3,
        info.precompiled_size,
        info.load_time.as_secs_f64() * 1e3
    );
    println!(
        "request:  {} {} model={} stream={} ({} headers{})",
        template.method,
        template.path,
        template.model,
        template.stream,
        template.headers.len(),
        if opts.pass_body { ", body passed" } else { ", body not passed" }
    );

    let chain = Chain::new(vec![plugin.clone()]);
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    let mut first = true;
    let reused = time_calls(&chain, &template, &body, opts.repeat.max(1), |view, out, trace| {
        if std::mem::take(&mut first) {
            println!("\ndecision: {}", describe(&template, view, out, trace));
        }
        *seen.entry(label(view, out, trace)).or_default() += 1;
    })
    .await;
    if seen.len() > 1 {
        let parts: Vec<String> = seen.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
        println!("decisions over {} calls: {}", reused.len(), parts.join(", "));
    }
    println!("\ntime per call, reused instance:  {}", stats(reused));

    // Every call on a new instance (`max-reuse = 1`): instantiate + configure + the call.
    let fresh_plugin = compiled.load(file, config, &settings(1)).await?;
    let fresh =
        time_calls(&Chain::new(vec![fresh_plugin]), &template, &body, opts.repeat.clamp(1, 200), |_, _, _| {}).await;
    println!("time per call, fresh instance:   {}", stats(fresh));

    // Memory: instances alive at once (configured, as the pool keeps them).
    // Linear memory of the instance that served the calls above (it grows with a GC heap).
    let linear = plugin.idle_instance_memory();
    // The pool's idle instance first, so every instance counted below is new.
    let warm = plugin.checkout("warm").await;
    let before = rss_bytes();
    let mut live = Vec::with_capacity(LIVE_INSTANCES);
    for i in 0..LIVE_INSTANCES {
        match plugin.checkout(&format!("live-{i}")).await {
            Ok(inst) => live.push(inst),
            Err(kind) => return Err(format!("cannot create instance {i}: {}", kind.label())),
        }
    }
    let per_instance = rss_bytes().saturating_sub(before) / LIVE_INSTANCES as u64;
    drop((warm, live));
    println!(
        "memory:   {} RSS per live configured instance ({LIVE_INSTANCES} alive), linear memory {} each; process RSS {} before load, {} now",
        kib(per_instance),
        mib(linear as u64),
        mib(rss_start),
        mib(rss_bytes()),
    );
    let failed: u32 = seen.iter().filter(|(k, _)| k.starts_with("failed")).map(|(_, n)| n).sum();
    if failed > 0 {
        return Err(format!("{failed} of {} calls failed (see the log lines above for why)", opts.repeat.max(1)));
    }
    Ok(())
}

/// Calls the chain `n` times on copies of `template`; settles reservations as the gateway
/// would after the upstream (not timed); returns the sorted call times.
async fn time_calls(
    chain: &Chain,
    template: &RequestView,
    body: &[u8],
    n: u32,
    mut each: impl FnMut(&RequestView, &Result<ChainOutcome, PolicyFailure>, &Trace),
) -> Vec<Duration> {
    let mut times = Vec::with_capacity(n as usize);
    for i in 0..n {
        let mut view = template.clone();
        view.id = format!("run-{i}");
        let mut trace = Trace::with_body(bytes::Bytes::copy_from_slice(body));
        let started = Instant::now();
        let out = chain.run(0..usize::MAX, &mut view, &mut trace).await;
        times.push(started.elapsed());
        each(&view, &out, &trace);
        let outcome =
            if matches!(out, Ok(ChainOutcome::Continue)) { Outcome::Completed } else { Outcome::NotForwarded };
        for s in std::mem::take(&mut trace.settlements) {
            s.settle(None, outcome).await;
        }
    }
    times.sort_unstable();
    times
}

fn stats(times: Vec<Duration>) -> String {
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    let us = |d: Duration| format!("{:.1} µs", d.as_secs_f64() * 1e6);
    format!("p50 {}  p99 {}  max {}  ({} calls)", us(pct(0.5)), us(pct(0.99)), us(pct(1.0)), times.len())
}

fn kib(bytes: u64) -> String {
    if bytes >= 1 << 20 { mib(bytes) } else { format!("{} KiB", bytes / 1024) }
}

/// Reads the request file into the view plugins see, and the body bytes.
fn read_request(path: &Path, extra_headers: &[String]) -> Result<(RequestView, Vec<u8>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    let recorded = if value.get("model").is_some() && value.get("body").is_none() {
        Recorded { method: None, path: None, headers: None, client_ip: None, tenant: None, body: Some(value) }
    } else {
        serde_json::from_value::<Recorded>(value).map_err(|e| {
            format!(
                "{}: expected a recorded request {{\"method\",\"path\",\"headers\",\"body\"}} or an OpenAI request body: {e}",
                path.display()
            )
        })?
    };
    let body_value = recorded.body.unwrap_or(Value::Null);
    let body = match &body_value {
        Value::String(raw) => raw.clone().into_bytes(),
        v => serde_json::to_vec(v).map_err(|e| e.to_string())?,
    };
    let endpoint = match recorded.path.as_deref() {
        Some(p) if p.ends_with("/chat/completions") => Endpoint::Chat,
        Some(p) if p.ends_with("/completions") => Endpoint::Completions,
        Some(p) if p.ends_with("/embeddings") => Endpoint::Embeddings,
        Some(p) => {
            return Err(format!("{}: path {p} is not a chat, completions or embeddings endpoint", path.display()));
        }
        None if body_value.get("messages").is_some() => Endpoint::Chat,
        None if body_value.get("input").is_some() => Endpoint::Embeddings,
        None => Endpoint::Completions,
    };
    let api = ApiRequest::parse(endpoint, &body)
        .map_err(|e| format!("{}: the gateway would refuse this body: {}", path.display(), e.message))?;
    let mut headers: Vec<(String, String)> = match recorded.headers {
        Some(Headers::Map(m)) => m.into_iter().collect(),
        Some(Headers::List(l)) => l,
        None => vec![("content-type".to_string(), "application/json".to_string())],
    };
    for h in extra_headers {
        let (n, v) = h.split_once(':').ok_or_else(|| format!("--header {h:?}: expected `name: value`"))?;
        let name = n.trim().to_ascii_lowercase();
        headers.retain(|(k, _)| *k != name);
        headers.push((name, v.trim().to_string()));
    }
    for (n, _) in &mut headers {
        n.make_ascii_lowercase();
    }
    let mut view = RequestView {
        method: recorded.method.unwrap_or_else(|| "POST".to_string()),
        path: recorded.path.unwrap_or_else(|| endpoint.route().to_string()),
        headers,
        client_ip: recorded.client_ip.unwrap_or_else(|| "127.0.0.1".to_string()),
        model: api.model().to_string(),
        endpoint: api.endpoint().name(),
        stream: api.stream(),
        max_tokens: api.max_tokens(),
        prompt_tokens_estimate: api.prompt_tokens_estimate(),
        ..RequestView::default()
    };
    view.tenant = recorded.tenant;
    Ok((view, body))
}

/// One line per call kind, for the tally over repeats.
fn label(view: &RequestView, out: &Result<ChainOutcome, PolicyFailure>, e: &Trace) -> String {
    match out {
        Err(f) => format!("failed ({})", f.kind.label()),
        Ok(ChainOutcome::Respond(r)) => format!("respond {}", r.status),
        Ok(ChainOutcome::Continue) if view.identity.is_some() => format!("allow ({} edits)", e.edits.len()),
        Ok(ChainOutcome::Continue) if e.edits.is_empty() && e.response_headers.is_empty() => "continue".to_string(),
        Ok(ChainOutcome::Continue) => format!("mutate ({} edits)", e.edits.len() + e.response_headers.len()),
    }
}

/// The first call's decision, in full.
fn describe(
    before: &RequestView,
    view: &RequestView,
    out: &Result<ChainOutcome, PolicyFailure>,
    effects: &Trace,
) -> String {
    let mut s = String::new();
    match out {
        Err(f) => {
            s.push_str(&format!(
                "FAILED: {} — the gateway drops this instance; fail-closed answers with an error, fail-open skips the plugin",
                f.kind.label()
            ));
            return s;
        }
        Ok(ChainOutcome::Respond(r)) => {
            s.push_str(&format!("respond {} (the request ends here)", r.status));
            for (n, v) in &r.headers {
                s.push_str(&format!("\n  header {n}: {v}"));
            }
            s.push_str(&format!("\n  body {}", r.body));
            return s;
        }
        Ok(ChainOutcome::Continue) => {
            match &view.identity {
                Some(id) => {
                    s.push_str(&format!("allow: subject {:?}", id.subject));
                    if let Some(t) = &id.tenant {
                        s.push_str(&format!(", tenant {t:?}"));
                    }
                    for (k, v) in &id.metadata {
                        s.push_str(&format!("\n  metadata {k} = {v:?}"));
                    }
                }
                None if effects.edits.is_empty() && effects.response_headers.is_empty() => s.push_str("continue"),
                None => s.push_str("mutate"),
            }
            for e in &effects.edits {
                s.push_str("\n  ");
                s.push_str(&edit_line(e));
            }
            for (n, v) in &effects.response_headers {
                s.push_str(&format!("\n  response header {n}: {v}"));
            }
            for r in &effects.settlements {
                s.push_str(&format!("\n  reservation {:?} (settled after the call)", r.reservation()));
            }
            if view.model != before.model {
                s.push_str(&format!("\n  model {} → {}", before.model, view.model));
            }
        }
    }
    s
}

fn edit_line(e: &Edit) -> String {
    match e {
        Edit::SetHeader(n, v) => format!("set upstream header {n}: {v}"),
        Edit::RemoveHeader(n) => format!("remove upstream header {n}"),
        Edit::SetModel(m) => format!("set model {m}"),
        Edit::SetMaxTokens(n) => format!("set max_tokens {n}"),
        Edit::PrependSystem(t) => format!("prepend system message {t:?}"),
        Edit::SetBodyField(f, v) => format!("set body field {f} = {v}"),
        Edit::SetResponseHeader(n, v) => format!("set response header {n}: {v}"),
    }
}
