//! The key a TOML deserialization error is about. `toml`'s error knows the key path but keeps
//! it private, and only reports a span; the document is parsed again (spans kept) to find the
//! innermost key whose key or value covers that span, so every config error can name a key
//! (`upstreams.a.connect-timeout`, `models[1].name`), as the validation errors do.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// The dotted key path at `span` in `text`; empty if the text does not parse or no key covers it.
pub(super) fn key_at(text: &str, span: &Range<usize>) -> String {
    DeTable::parse(text).ok().and_then(|doc| in_table(doc.get_ref(), span)).unwrap_or_default()
}

fn covers(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && outer.start < outer.end
}

/// The deepest key under `t` at `span`. Children are searched first and regardless of their
/// parent's span: a table opened by a `[header]` spans only its header, not its keys.
fn in_table(t: &DeTable<'_>, span: &Range<usize>) -> Option<String> {
    t.iter().find_map(|(k, v)| match in_value(v.get_ref(), span) {
        Some(rest) => Some(format!("{}{rest}", k.get_ref())),
        None => (covers(&k.span(), span) || covers(&v.span(), span)).then(|| k.get_ref().to_string()),
    })
}

/// The rest of the path below a value (`.key...` or `[i]...`).
fn in_value(v: &DeValue<'_>, span: &Range<usize>) -> Option<String> {
    match v {
        DeValue::Table(t) => in_table(t, span).map(|p| format!(".{p}")),
        DeValue::Array(items) => items.iter().enumerate().find_map(|(i, item)| match in_value(item.get_ref(), span) {
            Some(rest) => Some(format!("[{i}]{rest}")),
            None => covers(&item.span(), span).then(|| format!("[{i}]")),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key_of_error(text: &str) -> String {
        let err = toml::from_str::<super::super::raw::RawConfig>(text).unwrap_err();
        key_at(text, &err.span().unwrap())
    }

    #[test]
    fn type_errors_name_their_key() {
        assert_eq!(key_of_error("[server]\nmax-body-bytes = \"big\"\n"), "server.max-body-bytes");
        assert_eq!(key_of_error("[upstreams.a]\nendpoints = [\"http://h\"]\nhttp2 = 3\n"), "upstreams.a.http2");
        assert_eq!(
            key_of_error("[[models]]\nname = \"m\"\nupstream = \"a\"\n[[models]]\nname = 5\n"),
            "models[1].name"
        );
    }

    #[test]
    fn unknown_and_missing_keys_name_a_key() {
        assert_eq!(key_of_error("[server]\nlisten-port = 3\n"), "server.listen-port");
        assert!(key_of_error("[upstreams.a]\nhttp2 = true\n").starts_with("upstreams.a"));
    }
}
