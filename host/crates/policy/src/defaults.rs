//! What a plugin declares about itself: its failure default and the largest body it accepts.
//!
//! A plugin author knows whether a skipped call is safe (a header rewrite) or a leak (a
//! redaction), and how much body the plugin can process within its deadline. The component
//! says so in a custom section named [`SECTION`], whose payload is TOML:
//!
//! ```toml
//! failure = "fail-closed"   # or "fail-open"
//! body-limit = 262144       # bytes of request body handed to the plugin at most
//! headers = ["authorization", "x-api-key"]   # the request headers it reads ([] = none)
//! ```
//!
//! `headers` is least privilege and speed at once: the plugin is handed only those request
//! headers (credentials still only if it is an auth plugin), where without the declaration it
//! gets all of them, each copied into its memory on every call (with a client's dozen headers,
//! most of a small plugin's call). Names are matched case-insensitively.
//!
//! Written by the Rust SDK's `declare_defaults!` (a section of the core module inside the
//! component) or appended to the component by the polyglot build from the `[defaults]` table of
//! a plugin's `plugin.toml`. Precedence: the gateway config > this declaration > the default of
//! the plugin's kind. Unknown keys are ignored (a newer SDK may declare more); a known key with a
//! bad value fails the load, since the author's intent cannot be honoured.

use std::sync::Arc;

use wasmparser::{Parser, Payload};

use super::plugin::FailurePolicy;

/// Name of the custom section.
pub const SECTION: &str = "wasmgate:defaults";

/// The declaration (every field optional: none means "the gateway decides").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginDefaults {
    pub failure: Option<FailurePolicy>,
    pub body_limit: Option<usize>,
    /// The request headers the plugin reads, lower-case (`None`: every header).
    pub headers: Option<Arc<[String]>>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Raw {
    failure: Option<String>,
    body_limit: Option<u64>,
    headers: Option<Vec<String>>,
}

impl PluginDefaults {
    /// Reads the declaration from a component (or module) binary. The component's own
    /// section wins over one inside a nested core module; none at all is `Ok(default)`.
    pub fn read(bytes: &[u8]) -> Result<PluginDefaults, String> {
        let mut depth = 0usize;
        let mut outer: Option<&[u8]> = None;
        let mut nested: Option<&[u8]> = None;
        for payload in Parser::new(0).parse_all(bytes) {
            // Not a valid binary: compiling it fails with a better message.
            let Ok(payload) = payload else { return Ok(PluginDefaults::default()) };
            match payload {
                Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
                Payload::End(_) => depth = depth.saturating_sub(1),
                Payload::CustomSection(c) if c.name() == SECTION => {
                    let slot = if depth == 0 { &mut outer } else { &mut nested };
                    slot.get_or_insert(c.data());
                }
                _ => {}
            }
        }
        match outer.or(nested) {
            Some(data) => Self::parse(data),
            None => Ok(PluginDefaults::default()),
        }
    }

    fn parse(data: &[u8]) -> Result<PluginDefaults, String> {
        let text = std::str::from_utf8(data).map_err(|_| format!("its `{SECTION}` section is not UTF-8"))?;
        let raw: Raw = toml::from_str(text).map_err(|e| format!("its `{SECTION}` section is not valid TOML: {e}"))?;
        let failure = match raw.failure.as_deref() {
            None => None,
            Some("fail-closed") => Some(FailurePolicy::FailClosed),
            Some("fail-open") => Some(FailurePolicy::FailOpen),
            Some(other) => {
                return Err(format!("its `{SECTION}` section: failure `{other}` is not one of fail-closed, fail-open"));
            }
        };
        let body_limit = match raw.body_limit {
            None => None,
            Some(0) => return Err(format!("its `{SECTION}` section: body-limit must be at least 1")),
            Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        };
        let headers = match raw.headers {
            None => None,
            Some(list) => {
                let mut names = Vec::with_capacity(list.len());
                for name in list {
                    let lower = name.to_ascii_lowercase();
                    if http::HeaderName::try_from(lower.as_str()).is_err() {
                        return Err(format!("its `{SECTION}` section: headers: `{name}` is not a header name"));
                    }
                    if !names.contains(&lower) {
                        names.push(lower);
                    }
                }
                Some(names.into())
            }
        };
        Ok(PluginDefaults { failure, body_limit, headers })
    }

    /// Whether the plugin is handed request header `name` (lower-case).
    pub fn reads_header(&self, name: &str) -> bool {
        self.headers.as_ref().is_none_or(|list| list.iter().any(|h| h == name))
    }

    /// The declaration as TOML, for `plugin check` (`None` when nothing is declared).
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(f) = self.failure {
            parts.push(format!("failure = \"{}\"", f.label()));
        }
        if let Some(n) = self.body_limit {
            parts.push(format!("body-limit = {n}"));
        }
        if let Some(list) = &self.headers {
            let quoted: Vec<String> = list.iter().map(|h| format!("\"{h}\"")).collect();
            parts.push(format!("headers = [{}]", quoted.join(", ")));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// Appends a custom section to a component or module binary (valid anywhere after the
/// preamble). Used by tests and mirrors what the polyglot build does.
pub fn append_section(bytes: &mut Vec<u8>, name: &str, payload: &[u8]) {
    fn leb(out: &mut Vec<u8>, mut n: usize) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut body = Vec::new();
    leb(&mut body, name.len());
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    bytes.push(0);
    leb(bytes, body.len());
    bytes.extend_from_slice(&body);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component: preamble only.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";
    const EMPTY_MODULE: &[u8] = b"\0asm\x01\0\0\0";

    #[test]
    fn reads_an_appended_section_and_ignores_unknown_keys() {
        let mut c = EMPTY_COMPONENT.to_vec();
        append_section(&mut c, SECTION, b"failure = \"fail-closed\"\nbody-limit = 4096\nfuture-key = 1\n");
        let d = PluginDefaults::read(&c);
        assert_eq!(
            d,
            Ok(PluginDefaults { failure: Some(FailurePolicy::FailClosed), body_limit: Some(4096), headers: None })
        );
        assert_eq!(d.ok().and_then(|d| d.describe()).as_deref(), Some("failure = \"fail-closed\", body-limit = 4096"));
    }

    #[test]
    fn declared_headers_are_the_only_ones_read() {
        let mut c = EMPTY_COMPONENT.to_vec();
        append_section(&mut c, SECTION, b"headers = [\"Authorization\", \"x-api-key\", \"authorization\"]\n");
        let d = PluginDefaults::read(&c).unwrap_or_default();
        assert_eq!(d.headers.as_deref(), Some(&["authorization".to_string(), "x-api-key".to_string()][..]));
        assert!(d.reads_header("authorization") && d.reads_header("x-api-key"));
        assert!(!d.reads_header("cookie") && !d.reads_header("user-agent"));
        assert_eq!(d.describe().as_deref(), Some("headers = [\"authorization\", \"x-api-key\"]"));
        let mut none = EMPTY_COMPONENT.to_vec();
        append_section(&mut none, SECTION, b"headers = []");
        assert!(!PluginDefaults::read(&none).unwrap_or_default().reads_header("authorization"));
        assert!(PluginDefaults::default().reads_header("anything"), "undeclared: every header");
        let mut bad = EMPTY_COMPONENT.to_vec();
        append_section(&mut bad, SECTION, b"headers = [\"not a header\"]");
        assert!(PluginDefaults::read(&bad).is_err_and(|e| e.contains("not a header")));
    }

    #[test]
    fn none_declared_and_bad_values() {
        assert_eq!(PluginDefaults::read(EMPTY_COMPONENT), Ok(PluginDefaults::default()));
        let mut c = EMPTY_COMPONENT.to_vec();
        append_section(&mut c, "other", b"failure = \"fail-closed\"");
        assert_eq!(PluginDefaults::read(&c), Ok(PluginDefaults::default()), "another section's name");
        let mut c = EMPTY_COMPONENT.to_vec();
        append_section(&mut c, SECTION, b"failure = \"sometimes\"");
        assert!(PluginDefaults::read(&c).is_err_and(|e| e.contains("sometimes")));
        let mut c = EMPTY_COMPONENT.to_vec();
        append_section(&mut c, SECTION, b"body-limit = 0");
        assert!(PluginDefaults::read(&c).is_err());
    }

    #[test]
    fn reads_a_section_of_a_core_module() {
        let mut m = EMPTY_MODULE.to_vec();
        append_section(&mut m, SECTION, b"failure = \"fail-open\"");
        assert_eq!(PluginDefaults::read(&m).map(|d| d.failure), Ok(Some(FailurePolicy::FailOpen)));
    }
}
