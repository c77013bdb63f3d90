//! Watching the config file and plugin files with `notify`.
//!
//! Directories are watched, not files: shipping by rename (the safe way) replaces the file's
//! inode, which a file watch would lose. The directory of each file's final target is watched
//! too, so a file that is a symlink (a Kubernetes ConfigMap: `gateway.toml -> ..data/...`, with
//! `..data` swapped atomically) is followed: any event in a watched directory makes us look at
//! the files, whatever path the event names.
//!
//! What triggers a reload is a change of content, never an event alone:
//! - access events (opens and reads, including our own reads during a reload) are ignored;
//!   reacting to them made every reload trigger the next, about 19 times a second, forever;
//! - after an event, the files are read until two reads at least [`STABLE`] apart, with no
//!   event in between, give the same content: a file being written in steps is not read at
//!   its midpoint (a pause longer than that is caught by the reload guards, see `guard`);
//! - the stable content is compared with what the last reload saw (size, mtime and inode
//!   first, sha256 when those differ): an unchanged file is not reloaded.
//!
//! The tenants dir (`policy.tenants-dir`) is watched as a directory: its tenant files are
//! listed again at every look, so a file added, changed or removed is a change (and the
//! reload reads just that file again, see `config::TenantFiles`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use notify::{EventKind, RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Reloader;
use crate::config::PluginLocation;

/// Quiet time after the last event before the first read.
pub const DEBOUNCE: Duration = Duration::from_millis(50);
/// Least time between the two reads that must agree before a reload.
pub const STABLE: Duration = Duration::from_millis(250);

/// What is watched: the config and every plugin file it names, and its tenants dir.
#[derive(Debug, Default)]
struct Watched {
    files: BTreeSet<PathBuf>,
    tenant_dirs: BTreeSet<PathBuf>,
}

impl Watched {
    fn of(reloader: &Reloader) -> Watched {
        let snap = reloader.gateway().snapshot.load();
        let mut w = Watched::default();
        if let Some(p) = reloader.config_path() {
            w.files.insert(absolute(p));
        }
        for pc in snap.config.plugins.values() {
            if let PluginLocation::File(p) = &pc.location {
                w.files.insert(absolute(p));
            }
        }
        w.tenant_dirs.extend(snap.config.policy.tenants_dir.as_deref().map(absolute));
        w
    }

    /// The files to look at now: the named ones, and the tenant files the dirs hold now.
    fn files_now(&self) -> BTreeSet<PathBuf> {
        let mut files = self.files.clone();
        for dir in &self.tenant_dirs {
            files.extend(crate::config::tenant_files(dir));
        }
        files
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// What a file looked like when read; `None` in a [`Fingerprint`] = missing or unreadable.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileState {
    len: u64,
    mtime: Option<SystemTime>,
    inode: u64,
    sha256: [u8; 32],
}

type Fingerprint = BTreeMap<PathBuf, Option<FileState>>;

#[cfg(unix)]
fn inode(m: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(m)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}

/// Reads the state of every file (through symlinks). A file whose size, mtime and inode equal
/// those in `known` keeps its known hash without being read again.
fn fingerprint(files: &BTreeSet<PathBuf>, known: &Fingerprint) -> Fingerprint {
    files
        .iter()
        .map(|f| {
            let state = std::fs::metadata(f).ok().and_then(|m| {
                let (len, mtime, ino) = (m.len(), m.modified().ok(), inode(&m));
                if let Some(Some(k)) = known.get(f)
                    && (k.len, k.mtime, k.inode) == (len, mtime, ino)
                {
                    return Some(k.clone());
                }
                let bytes = std::fs::read(f).ok()?;
                Some(FileState { len, mtime, inode: ino, sha256: Sha256::digest(&bytes).into() })
            });
            (f.clone(), state)
        })
        .collect()
}

/// Only the content matters: a `touch` (new mtime, same bytes) is not a change.
fn same_content(a: &Fingerprint, b: &Fingerprint) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((pa, sa), (pb, sb))| pa == pb && sa.as_ref().map(|s| s.sha256) == sb.as_ref().map(|s| s.sha256))
}

/// The fingerprint of what `w` names now (tenant dirs listed again), off the async runtime.
async fn fingerprint_async(w: &Watched, known: &Fingerprint) -> Fingerprint {
    let (files, tenant_dirs, known) = (w.files.clone(), w.tenant_dirs.clone(), known.clone());
    let fallback = known.clone();
    let w = Watched { files, tenant_dirs };
    tokio::task::spawn_blocking(move || fingerprint(&w.files_now(), &known)).await.unwrap_or(fallback)
}

/// Directories to watch: the parent of each file, and of the file it finally resolves to;
/// each tenants dir, and the dir it resolves to.
fn dirs_of(w: &Watched) -> BTreeSet<PathBuf> {
    let mut dirs = BTreeSet::new();
    for f in &w.files {
        dirs.extend(f.parent().map(Path::to_path_buf));
        if let Ok(target) = std::fs::canonicalize(f) {
            dirs.extend(target.parent().map(Path::to_path_buf));
        }
    }
    for d in &w.tenant_dirs {
        dirs.insert(d.clone());
        dirs.extend(std::fs::canonicalize(d).ok());
    }
    dirs
}

/// Waits until no event in a watched directory arrived for `quiet`. `Some(true)`: quiet;
/// `Some(false)`: an event came (the caller starts over); `None`: the watcher is gone.
async fn quiet_for(
    rx: &mut mpsc::UnboundedReceiver<PathBuf>,
    dirs: &BTreeSet<PathBuf>,
    quiet: Duration,
) -> Option<bool> {
    let deadline = Instant::now() + quiet;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => return Some(true),
            Ok(None) => return None,
            Ok(Some(p)) if in_dirs(&p, dirs) => return Some(false),
            Ok(Some(_)) => {}
        }
    }
}

fn in_dirs(path: &Path, dirs: &BTreeSet<PathBuf>) -> bool {
    path.parent().is_some_and(|d| dirs.contains(d))
}

/// Starts the watcher task. It lives as long as the returned handle's task.
pub fn spawn_watcher(reloader: Arc<Reloader>) -> Result<tokio::task::JoinHandle<()>, notify::Error> {
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        for path in event.paths {
            let _ = tx.send(path);
        }
    })?;
    let mut watched = Watched::of(&reloader);
    let mut dirs = BTreeSet::new();
    watch_dirs(&mut watcher, &watched, &mut dirs);
    // What the serving config was loaded from (read now; the snapshot was built a moment ago).
    let mut seen = fingerprint(&watched.files_now(), &Fingerprint::new());
    #[allow(clippy::disallowed_methods, reason = "the watcher task; its handle is aborted at shutdown")]
    Ok(tokio::spawn(async move {
        let _keep_alive = &watcher;
        while let Some(path) = rx.recv().await {
            if !in_dirs(&path, &dirs) {
                continue;
            }
            // Read until two reads STABLE apart, with no event between them, agree.
            let mut last: Option<Fingerprint> = None;
            let stable = loop {
                let wait = if last.is_some() { STABLE } else { DEBOUNCE };
                match quiet_for(&mut rx, &dirs, wait).await {
                    None => return,
                    Some(false) => {
                        last = None;
                        continue;
                    }
                    Some(true) => {}
                }
                let now = fingerprint_async(&watched, last.as_ref().unwrap_or(&seen)).await;
                if last.as_ref().is_some_and(|prev| same_content(prev, &now)) {
                    break now;
                }
                last = Some(now);
            };
            if same_content(&stable, &seen) {
                tracing::debug!(path = %path.display(), "event without a content change; not reloading");
                seen = stable;
                continue;
            }
            tracing::info!(path = %path.display(), "change detected; reloading");
            seen = stable;
            let report = reloader.reload().await;
            if let Some(e) = &report.config_error {
                tracing::error!(error = %e, "reload rejected");
            }
            watched = Watched::of(&reloader);
            watch_dirs(&mut watcher, &watched, &mut dirs);
            // Files named for the first time: their current state is what the reload loaded.
            let files = watched.files_now();
            let added = Watched {
                files: files.iter().filter(|f| !seen.contains_key(*f)).cloned().collect(),
                ..Default::default()
            };
            let fresh = fingerprint_async(&added, &Fingerprint::new()).await;
            seen.retain(|f, _| files.contains(f));
            seen.extend(fresh);
        }
    }))
}

/// Watches the directories `files` need and unwatches those no longer needed (a ConfigMap's
/// previous `..2026_...` directory is deleted after the swap).
fn watch_dirs(watcher: &mut notify::RecommendedWatcher, watched: &Watched, dirs: &mut BTreeSet<PathBuf>) {
    let wanted = dirs_of(watched);
    for gone in dirs.difference(&wanted) {
        let _ = watcher.unwatch(gone);
    }
    dirs.retain(|d| wanted.contains(d));
    for dir in wanted {
        if !dirs.contains(&dir) {
            match watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    dirs.insert(dir);
                }
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory; changes there need POST /admin/reload")
                }
            }
        }
    }
}
