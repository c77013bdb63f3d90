//! Watching the config file and plugin files with `notify`.
//!
//! Directories are watched, not files: shipping by rename (the safe way) replaces the file's
//! inode, which a file watch would lose. Events for the files we care about are debounced
//! (editors and `cp` write several events per save) and then trigger one reload. A file whose
//! content did not change (same sha256) is not reloaded; a half-written file fails to compile,
//! keeps the previous version, and is retried on its next event.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::Reloader;
use crate::config::PluginLocation;

/// Quiet time after the last event before reloading.
pub const DEBOUNCE: Duration = Duration::from_millis(50);

/// Files whose changes trigger a reload: the config and every plugin file it names.
fn watched_files(reloader: &Reloader) -> BTreeSet<PathBuf> {
    let snap = reloader.gateway().snapshot.load();
    let mut files = BTreeSet::new();
    if let Some(p) = reloader.config_path() {
        files.insert(absolute(p));
    }
    for pc in snap.config.plugins.values() {
        if let PluginLocation::File(p) = &pc.location {
            files.insert(absolute(p));
        }
    }
    files
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Starts the watcher task. It lives as long as the returned handle's task.
pub fn spawn_watcher(reloader: Arc<Reloader>) -> Result<tokio::task::JoinHandle<()>, notify::Error> {
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(event) = res {
            for path in event.paths {
                let _ = tx.send(path);
            }
        }
    })?;
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
    let mut files = watched_files(&reloader);
    watch_dirs(&mut watcher, &files, &mut dirs);
    Ok(tokio::spawn(async move {
        let _keep_alive = &watcher;
        while let Some(path) = rx.recv().await {
            if !files.contains(&path) {
                continue;
            }
            // Debounce: wait until no event for our files arrived for DEBOUNCE.
            loop {
                match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                    Ok(Some(_)) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            tracing::info!(path = %path.display(), "change detected; reloading");
            let report = reloader.reload().await;
            if let Some(e) = &report.config_error {
                tracing::error!(error = %e, "reload rejected");
            }
            files = watched_files(&reloader);
            watch_dirs(&mut watcher, &files, &mut dirs);
        }
    }))
}

fn watch_dirs(watcher: &mut notify::RecommendedWatcher, files: &BTreeSet<PathBuf>, dirs: &mut BTreeSet<PathBuf>) {
    for f in files {
        let Some(dir) = f.parent() else { continue };
        if dirs.insert(dir.to_path_buf())
            && let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive)
        {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory; changes there need POST /admin/reload");
            dirs.remove(dir);
        }
    }
}
