//! Typed plugin config: the gateway hands `configure` a JSON string; the SDK turns it into the
//! plugin's `Config` type once and keeps it for every later call on that instance.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Parse a plugin config from the JSON the gateway passes to `configure`.
///
/// An empty string and `null` both mean "no config" and parse as `{}`, so a `Config` whose
/// fields all have defaults works without any config. The error names the offending field by
/// its path, e.g. ``invalid config at `keys[0].sha256`: expected 64 hex digits``.
pub fn parse_config<C: DeserializeOwned>(json: &str) -> Result<C, String> {
    let trimmed = json.trim();
    let text = if trimmed.is_empty() || trimmed == "null" { "{}" } else { trimmed };
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed: C = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if path.is_empty() || path == "." {
            format!("invalid config: {inner}")
        } else {
            format!("invalid config at `{path}`: {inner}")
        }
    })?;
    de.end().map_err(|err| format!("invalid config: {err}"))?;
    Ok(parsed)
}

/// The config type of a plugin that takes none: accepts only `{}` (or no config at all).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

/// Where an instance keeps its parsed config between calls. Used by the `export_*!` macros.
#[doc(hidden)]
#[derive(Debug)]
pub struct ConfigSlot<C>(RefCell<Option<Rc<C>>>);

impl<C> ConfigSlot<C> {
    /// An empty slot (not configured yet).
    pub const fn new() -> Self {
        Self(RefCell::new(None))
    }

    /// Parse `json`, run the plugin's own validation, and keep the config if both succeed.
    /// A failed configure leaves the slot empty.
    pub fn configure(&self, json: &str, validate: impl FnOnce(&C) -> Result<(), String>) -> Result<(), String>
    where
        C: DeserializeOwned,
    {
        self.0.replace(None);
        let config: C = parse_config(json)?;
        validate(&config)?;
        self.0.replace(Some(Rc::new(config)));
        Ok(())
    }

    /// The config, if `configure` succeeded.
    pub fn get(&self) -> Option<Rc<C>> {
        self.0.borrow().clone()
    }
}

impl<C> Default for ConfigSlot<C> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    struct Cfg {
        #[serde(default)]
        limit: u32,
        #[serde(default)]
        #[allow(dead_code, reason = "only parsed")]
        inner: Vec<Inner>,
    }

    #[derive(Debug, Deserialize)]
    struct Inner {
        #[allow(dead_code, reason = "only parsed")]
        n: u8,
    }

    #[test]
    fn empty_and_null_mean_defaults() {
        assert_eq!(parse_config::<Cfg>("").unwrap().limit, 0);
        assert_eq!(parse_config::<Cfg>(" null ").unwrap().limit, 0);
        assert_eq!(parse_config::<Cfg>(r#"{"limit":3}"#).unwrap().limit, 3);
    }

    #[test]
    fn errors_name_the_field() {
        let err = parse_config::<Cfg>(r#"{"inner":[{"n":1},{"n":"x"}]}"#).unwrap_err();
        assert!(err.contains("`inner[1].n`"), "{err}");
        let err = parse_config::<Cfg>(r#"{"limt":3}"#).unwrap_err();
        assert!(err.contains("unknown field `limt`"), "{err}");
        let err = parse_config::<NoConfig>(r#"{"x":1}"#).unwrap_err();
        assert!(err.contains("unknown field `x`"), "{err}");
        assert!(parse_config::<Cfg>(r#"{"limit":1} x"#).is_err());
    }

    #[test]
    fn slot_keeps_config_only_when_valid() {
        let slot = ConfigSlot::<Cfg>::new();
        assert!(slot.configure(r#"{"limit":5}"#, |_| Ok(())).is_ok());
        assert_eq!(slot.get().unwrap().limit, 5);
        let err = slot.configure(r#"{"limit":6}"#, |_| Err("nope".into()));
        assert_eq!(err, Err("nope".to_string()));
        assert!(slot.get().is_none());
    }
}
