//! Tenants in a directory (`policy.tenants-dir`): one TOML file per tenant, the tenant id its
//! file stem, its keys those of a `[tenants.<id>]` table. An operator adds a tenant by
//! dropping a file, and a reload re-reads only the files that changed.
//!
//! Only `*.toml` files whose name does not start with `.` count: editor swap and backup files
//! (`.acme.toml.swp`, `acme.toml~`) and half-shipped ones (`acme.toml.tmp`) are ignored.
//!
//! [`TenantFiles`] remembers each file's stamp (size, mtime, inode) and validated tenant: an
//! unchanged file is neither read nor validated again, as long as what tenants are validated
//! against (the main file's plugins and upstreams, the directory) did not change. Environment
//! variables a tenant's config reads (`NAME-env`) are read when its file is validated.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::validate::{parse_tenant_file, valid_tenant_id};
use super::{Config, ConfigError, ConfigErrors, PluginConfig, TenantConfig};

/// What a file looked like (through symlinks): a file with the same stamp is not read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp {
    len: u64,
    mtime: Option<SystemTime>,
    inode: u64,
}

impl FileStamp {
    pub(crate) fn of(m: &std::fs::Metadata) -> FileStamp {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(m);
        #[cfg(not(unix))]
        let inode = 0;
        FileStamp { len: m.len(), mtime: m.modified().ok(), inode }
    }
}

/// Whether `name` (a file name in the tenants dir) is a tenant file, and its tenant id.
pub fn tenant_file_id(name: &str) -> Option<&str> {
    if name.starts_with('.') {
        return None;
    }
    name.strip_suffix(".toml").filter(|stem| !stem.is_empty())
}

/// The tenant files of `dir`, by path, with their stamps.
fn list(dir: &Path) -> Result<BTreeMap<PathBuf, FileStamp>, std::io::Error> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_str().and_then(tenant_file_id).is_none() {
            continue;
        }
        let path = entry.path();
        // A file removed between the listing and here is simply not there.
        if let Ok(m) = std::fs::metadata(&path)
            && m.is_file()
        {
            files.insert(path, FileStamp::of(&m));
        }
    }
    Ok(files)
}

/// The tenant files of `dir` (for the file watcher); empty if it cannot be read.
pub fn tenant_files(dir: &Path) -> Vec<PathBuf> {
    list(dir).map(|m| m.into_keys().collect()).unwrap_or_default()
}

/// What tenant files are validated against: a change drops every remembered result.
#[derive(Debug, PartialEq)]
struct Basis {
    dir: PathBuf,
    plugins: BTreeMap<String, PluginConfig>,
    upstreams: BTreeSet<String>,
}

/// Tenant files read so far (kept by the reloader from one reload to the next).
#[derive(Debug, Default)]
pub struct TenantFiles {
    basis: Option<Basis>,
    known: HashMap<PathBuf, (FileStamp, Result<TenantConfig, ConfigErrors>)>,
}

/// The tenants of a tenants dir: those that validated, and each broken file's errors.
#[derive(Debug, Default)]
pub struct DirTenants {
    pub tenants: BTreeMap<String, TenantConfig>,
    /// Tenant id → the errors of its file (each names the file and line).
    pub errors: BTreeMap<String, ConfigErrors>,
}

impl TenantFiles {
    /// Reads the tenants dir of `config` (whose own tenants come from the main file), reading
    /// and validating only files that changed. Err: the dir cannot be read.
    pub fn load(&mut self, config: &Config, env: &dyn Fn(&str) -> Option<String>) -> Result<DirTenants, ConfigErrors> {
        let Some(dir) = &config.policy.tenants_dir else {
            *self = TenantFiles::default();
            return Ok(DirTenants::default());
        };
        let files = list(dir).map_err(|e| {
            let msg = format!("cannot read the tenants dir {}: {e}", dir.display());
            ConfigErrors { file: file_of(config), errors: vec![ConfigError::new("policy.tenants-dir", None, msg)] }
        })?;
        let basis = Basis {
            dir: dir.clone(),
            plugins: config.plugins.clone(),
            upstreams: config.upstreams.keys().cloned().collect(),
        };
        if self.basis.as_ref() != Some(&basis) {
            self.known.clear();
            self.basis = Some(basis);
        }
        self.known.retain(|p, _| files.contains_key(p));
        let upstream_known = |name: &str| config.upstreams.contains_key(name);
        let mut out = DirTenants::default();
        for (path, stamp) in files {
            let id = path.file_name().and_then(|n| n.to_str()).and_then(tenant_file_id).unwrap_or_default().to_string();
            let result = match self.known.get(&path) {
                Some((s, r)) if *s == stamp => r.clone(),
                _ => {
                    let r = read_tenant(&path, &id, config, &upstream_known, env);
                    self.known.insert(path.clone(), (stamp, r.clone()));
                    r
                }
            };
            let result = result.and_then(|t| match config.tenants.contains_key(&id) {
                false => Ok(t),
                true => Err(duplicate(&path, &id, config)),
            });
            match result {
                Ok(t) => {
                    out.tenants.insert(id, t);
                }
                Err(e) => {
                    out.errors.insert(id, e);
                }
            }
        }
        Ok(out)
    }
}

fn file_of(config: &Config) -> Option<String> {
    config.source.as_ref().map(|p| p.display().to_string())
}

fn read_tenant(
    path: &Path,
    id: &str,
    config: &Config,
    upstream_known: &dyn Fn(&str) -> bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<TenantConfig, ConfigErrors> {
    let fail = |msg: String| ConfigErrors {
        file: Some(path.display().to_string()),
        errors: vec![ConfigError::new("", None, msg)],
    };
    if !valid_tenant_id(id) {
        return Err(fail(format!(
            "`{id}` is not a tenant id: a tenant file is named `<id>.toml`, ids use letters, digits, `-` and `_`"
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    parse_tenant_file(id, &text, path, &config.plugins, upstream_known, env)
}

fn duplicate(path: &Path, id: &str, config: &Config) -> ConfigErrors {
    let main = file_of(config).unwrap_or_else(|| "the main config".to_string());
    let msg = format!("tenant `{id}` is also defined in {main} (`[tenants.{id}]`); define it in one place only");
    ConfigErrors { file: Some(path.display().to_string()), errors: vec![ConfigError::new("", None, msg)] }
}
