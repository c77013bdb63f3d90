//! Hot reload: plugins and config change under a running gateway with no restart and no failed
//! request.
//!
//! A reload (file change, `POST /admin/reload`, SIGHUP) re-reads and validates the config,
//! then builds a complete new [`Snapshot`] beside the one serving: unchanged plugins (same
//! settings, same sha256) and unchanged upstreams (with their warm pools) are reused; changed
//! ones are compiled off the async runtime and configured on a canary instance. Only then is the
//! snapshot swapped, in one `ArcSwap` store. Requests load the snapshot once at their start, so
//! in-flight requests and open streams finish on the version they began with, and no request
//! sees half a change. Old versions are freed when their last request ends.
//!
//! Failures keep the last good version: an invalid config keeps the whole old snapshot; a plugin
//! that fails to compile or configure keeps its previous version (other changes still apply) and
//! is retried at the next change. Both are logged, counted and shown by `GET /admin/plugins`.
//! Quota counters live in the engine's store, keyed by plugin id, so they survive reloads.
//!
//! Keys read only at start (listeners, connection layer, shutdown grace, plugin cache dir; see
//! [`restart`]) keep their started values; a reload that changes them applies the rest and
//! names them (`restart_required`).
//!
//! A config that validates but looks like a truncated or half-written file (every auth plugin
//! gone from a chain, a chain emptied, every model removed; see [`guard`]) is refused unless
//! the reload is forced (`POST /admin/reload?force=true`); an empty file is always rejected.

mod guard;
mod restart;
mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;

use crate::config::{Config, ConfigError, ConfigErrors, TenantFiles};
use crate::server::{Built, Gateway, Snapshot, StartError};

pub use watch::spawn_watcher;

/// What the last reload attempts left behind, for the admin API.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ReloadStatus {
    /// Successful reloads (a swap happened).
    pub reloads: u64,
    /// Every reload attempt: swapped, unchanged, rejected or refused.
    pub attempts: u64,
    /// Attempts whose config was invalid or refused by a guard.
    pub rejected: u64,
    /// The last config error (cleared by a successful reload).
    pub config_error: Option<String>,
    /// Per plugin id: the last load error (cleared when a version loads).
    pub plugin_errors: BTreeMap<String, String>,
    /// Per tenant id: the errors of its broken tenant file (its previous version, if any,
    /// keeps serving); cleared when the file is fixed or removed.
    pub tenant_errors: BTreeMap<String, String>,
    pub last_reload_unix_ms: Option<u64>,
    /// Keys whose value in the last applied config waits for a restart (see [`restart`]).
    pub restart_required: Vec<String>,
}

/// Reloads one gateway.
pub struct Reloader {
    gateway: Arc<Gateway>,
    config_path: Option<PathBuf>,
    /// One reload at a time.
    lock: tokio::sync::Mutex<()>,
    status: Mutex<ReloadStatus>,
    /// What the process started with, of the keys a reload cannot apply.
    started: restart::StartOnly,
    /// Tenant files already read (only changed ones are read again).
    tenant_files: Arc<Mutex<TenantFiles>>,
}

/// The result of one reload attempt.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    /// A new snapshot is serving.
    pub swapped: bool,
    /// The config was valid but refused by a guard (applies with `force`).
    pub refused: bool,
    pub config_error: Option<String>,
    pub plugin_errors: BTreeMap<String, String>,
    /// Broken tenant files, by tenant id (see [`ReloadStatus::tenant_errors`]).
    pub tenant_errors: BTreeMap<String, String>,
    /// Plugins loaded anew (others were reused).
    pub loaded: Vec<String>,
    /// Keys that changed but apply only at a restart (everything else was applied).
    pub restart_required: Vec<String>,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(0))
        .unwrap_or(0)
}

impl Reloader {
    pub fn new(gateway: Arc<Gateway>, config_path: Option<PathBuf>) -> Arc<Reloader> {
        let started = restart::StartOnly::of(&gateway.snapshot.load().config);
        Arc::new(Reloader {
            started,
            gateway,
            config_path,
            lock: tokio::sync::Mutex::new(()),
            status: Mutex::new(ReloadStatus::default()),
            tenant_files: Arc::default(),
        })
    }

    pub fn config_path(&self) -> Option<&PathBuf> {
        self.config_path.as_ref()
    }

    pub fn status(&self) -> ReloadStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// Re-reads everything and swaps in a new snapshot if anything changed, loaded and passes
    /// the guards.
    pub async fn reload(&self) -> ReloadReport {
        self.reload_with(false).await
    }

    /// Like [`Reloader::reload`]; `force` skips the guards (not validation).
    pub async fn reload_with(&self, force: bool) -> ReloadReport {
        let _one_at_a_time = self.lock.lock().await;
        if let Ok(mut st) = self.status.lock() {
            st.attempts += 1;
        }
        let old = self.gateway.snapshot.load_full();
        let (mut config, broken) = match &self.config_path {
            Some(path) => match self.load(path).await {
                Ok(c) => c,
                Err(e) => return self.fail_config(e.to_string().trim_end().to_string(), false),
            },
            None => ((*old.config).clone(), BTreeMap::new()),
        };
        let tenant_errors = keep_previous_tenants(&mut config, &old.config, broken);
        let restart_required = self.started.changed_in(&config);
        self.started.pin(&mut config);
        let refusals = guard::refusals(&old.config, &config);
        if !refusals.is_empty() {
            if !force {
                let msg = format!(
                    "reload refused: {}; the current config keeps serving (POST /admin/reload?force=true applies it anyway)",
                    refusals.join("; ")
                );
                return self.fail_config(msg, true);
            }
            tracing::warn!(reasons = ?refusals, "forced reload: applying a config the guards would refuse");
        }
        let mut changed = !same_config(&old.config, &config);
        let built = match Snapshot::build_from(config, old.engine.clone(), Some(&old)).await {
            Ok(b) => b,
            Err(StartError::Plugins(e) | StartError::Upstreams(e)) => return self.fail_config(e, false),
            Err(e) => return self.fail_config(e.to_string(), false),
        };
        let Built { snapshot, plugins_changed, errors, loaded } = built;
        changed |= plugins_changed;

        if changed {
            let live: BTreeSet<String> = std::iter::once(&snapshot.chain)
                .chain(snapshot.tenants.values().map(|t| &t.chain))
                .flat_map(|c| c.plugins().iter().map(|p| p.sha256().to_string()))
                .collect();
            self.gateway.snapshot.store(Arc::new(snapshot));
            let keep: Vec<&str> = live.iter().map(String::as_str).collect();
            old.engine.forget_compiled(&keep);
            metrics::counter!("wasmgate_reloads_total", "result" => "swapped").increment(1);
        } else {
            metrics::counter!("wasmgate_reloads_total", "result" => "unchanged").increment(1);
        }
        if !restart_required.is_empty() {
            tracing::warn!(
                keys = ?restart_required,
                "reload applied, but these keys changed and apply only at a restart (the started values keep serving)"
            );
        }
        let mut st = self.status.lock().unwrap_or_else(|e| e.into_inner());
        st.restart_required.clone_from(&restart_required);
        if changed {
            st.reloads += 1;
        }
        st.config_error = None;
        st.last_reload_unix_ms = Some(unix_ms());
        for id in &loaded {
            st.plugin_errors.remove(id);
        }
        st.plugin_errors.extend(errors.clone());
        st.tenant_errors.clone_from(&tenant_errors);
        ReloadReport {
            swapped: changed,
            refused: false,
            config_error: None,
            plugin_errors: errors,
            tenant_errors,
            loaded,
            restart_required,
        }
    }

    /// Reads the config file and the tenant files that changed, off the async runtime (a
    /// tenants dir of thousands of files is thousands of `stat`s).
    async fn load(&self, path: &std::path::Path) -> Result<(Config, BTreeMap<String, ConfigErrors>), ConfigErrors> {
        let (path, files) = (path.to_path_buf(), self.tenant_files.clone());
        tokio::task::spawn_blocking(move || {
            let mut files = files.lock().unwrap_or_else(|e| e.into_inner());
            Config::load_with(&path, &mut files)
        })
        .await
        .unwrap_or_else(|e| Err(ConfigErrors::single(ConfigError::new("", None, format!("config reader failed: {e}")))))
    }

    fn fail_config(&self, msg: String, refused: bool) -> ReloadReport {
        tracing::error!(error = %msg, "config reload rejected; the current config keeps serving");
        metrics::counter!("wasmgate_reloads_total", "result" => "rejected").increment(1);
        if let Ok(mut st) = self.status.lock() {
            st.rejected += 1;
            st.config_error = Some(msg.clone());
            st.last_reload_unix_ms = Some(unix_ms());
        }
        ReloadReport {
            swapped: false,
            refused,
            config_error: Some(msg),
            plugin_errors: BTreeMap::new(),
            tenant_errors: BTreeMap::new(),
            loaded: Vec::new(),
            restart_required: Vec::new(),
        }
    }
}

/// A broken tenant file does not take its tenant down: the tenant keeps the version `old`
/// served (a tenant new in this reload stays absent). Returns each broken tenant's errors.
fn keep_previous_tenants(
    config: &mut Config,
    old: &Config,
    broken: BTreeMap<String, ConfigErrors>,
) -> BTreeMap<String, String> {
    let mut errors = BTreeMap::new();
    for (id, e) in broken {
        let e = e.to_string().trim_end().to_string();
        match old.tenants.get(&id) {
            Some(prev) if !config.tenants.contains_key(&id) => {
                tracing::error!(tenant = %id, error = %e, "tenant file rejected; the tenant's previous version keeps serving");
                config.tenants.insert(id.clone(), prev.clone());
            }
            _ => tracing::error!(tenant = %id, error = %e, "tenant file rejected; the tenant is not served"),
        }
        errors.insert(id, e);
    }
    errors
}

/// Whether two configs route and serve the same way (plugins are compared separately).
/// Compared field by field: printing both (`describe`) cost milliseconds per thousand tenants.
fn same_config(a: &Config, b: &Config) -> bool {
    a == b
}
