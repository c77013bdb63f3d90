//! The on-disk cache of precompiled plugins (`policy.cache-dir`) holds native code that is
//! mapped executable without verification (`Component::deserialize_file`): whoever can write
//! a file there runs code inside the gateway. So the directory is created `0700`, a directory
//! that is writable by group or others, or owned by another user, is refused (at start, with
//! an error naming it), and files are written under an unpredictable temporary name opened
//! with `O_EXCL`, then renamed into place. A cached file is used only if it passes the same
//! owner and mode check.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the cache directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheDirError {
    #[error("policy.cache-dir {dir}: cannot create it: {source}")]
    Create { dir: PathBuf, source: std::io::Error },
    #[error("policy.cache-dir {dir}: not a directory")]
    NotADirectory { dir: PathBuf },
    #[error(
        "policy.cache-dir {dir}: writable by group or others (mode {mode:04o}); it holds native code the gateway executes. Run `chmod 700 {dir}`"
    )]
    Writable { dir: PathBuf, mode: u32 },
    #[error(
        "policy.cache-dir {dir}: owned by uid {owner}, not by the gateway's user (uid {me}); it holds native code the gateway executes"
    )]
    Owner { dir: PathBuf, owner: u32, me: u32 },
}

/// Creates `dir` (mode 0700, parents as needed) or checks an existing one.
pub fn prepare(dir: &Path) -> Result<(), CacheDirError> {
    if !dir.exists() {
        create_private(dir).map_err(|source| CacheDirError::Create { dir: dir.to_path_buf(), source })?;
    }
    check(dir)
}

#[cfg(unix)]
fn create_private(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// Refuses a directory others could write to. `symlink_metadata` is not used: a symlinked
/// cache dir is fine as long as its target passes.
#[cfg(unix)]
pub fn check(dir: &Path) -> Result<(), CacheDirError> {
    let meta = std::fs::metadata(dir).map_err(|source| CacheDirError::Create { dir: dir.to_path_buf(), source })?;
    if !meta.is_dir() {
        return Err(CacheDirError::NotADirectory { dir: dir.to_path_buf() });
    }
    owned_and_private(&meta).map_err(|e| match e {
        Unsafe::Writable(mode) => CacheDirError::Writable { dir: dir.to_path_buf(), mode },
        Unsafe::Owner(owner, me) => CacheDirError::Owner { dir: dir.to_path_buf(), owner, me },
    })?;
    Ok(())
}

#[cfg(not(unix))]
pub fn check(dir: &Path) -> Result<(), CacheDirError> {
    if !dir.is_dir() {
        return Err(CacheDirError::NotADirectory { dir: dir.to_path_buf() });
    }
    Ok(())
}

enum Unsafe {
    Writable(u32),
    Owner(u32, u32),
}

#[cfg(unix)]
fn owned_and_private(meta: &std::fs::Metadata) -> Result<(), Unsafe> {
    use std::os::unix::fs::MetadataExt;
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(Unsafe::Writable(mode));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(Unsafe::Owner(meta.uid(), me));
    }
    Ok(())
}

/// Whether a cached file may be loaded: ours, and not writable by anyone else.
pub fn trusted_file(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        let meta = std::fs::symlink_metadata(path).map_err(|e| e.to_string())?;
        if !meta.is_file() {
            return Err("not a regular file".to_string());
        }
        owned_and_private(&meta).map_err(|e| match e {
            Unsafe::Writable(mode) => format!("writable by group or others (mode {mode:04o})"),
            Unsafe::Owner(owner, me) => format!("owned by uid {owner}, not {me}"),
        })?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Writes `bytes` to `path` atomically: a new file with a random name in the same directory,
/// created exclusively (`O_EXCL`, mode 0600), then renamed over `path`. A crash leaves at
/// worst a stray temporary file, never a half-written artifact under the real name.
pub fn write_exclusive(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".wasmgate-").suffix(".tmp").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn created_private_and_refused_when_others_can_write() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b/cache");
        prepare(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        write_exclusive(&dir.join("x.cwasm"), b"abc").unwrap();
        assert_eq!(std::fs::read(dir.join("x.cwasm")).unwrap(), b"abc");
        trusted_file(&dir.join("x.cwasm")).unwrap();
        let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(Result::ok).collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = prepare(&dir).unwrap_err().to_string();
        assert!(e.contains(&dir.display().to_string()) && e.contains("0777"), "{e}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(dir.join("x.cwasm"), std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(trusted_file(&dir.join("x.cwasm")).is_err());
    }
}
