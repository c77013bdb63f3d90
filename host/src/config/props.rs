//! Property tests of [`Config::parse`]: it never panics, on arbitrary text or on documents
//! built from the real keys with random values, and every error it reports names a key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use toml::{Table, Value};

use super::Config;

/// Any TOML value, a couple of levels deep.
fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::Integer),
        prop::sample::select(vec![0i64, -1, 1, 64, 256, 257, 1 << 20]).prop_map(Value::Integer),
        any::<f64>().prop_map(Value::Float),
        any::<bool>().prop_map(Value::Boolean),
        ".{0,10}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z-]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Table(m.into_iter().collect())),
        ]
    })
}

fn strings(items: &[&'static str]) -> impl Strategy<Value = Value> + use<> {
    prop::sample::select(items.to_vec()).prop_map(|s| Value::String(s.to_string()))
}

/// A value of the kind the key expects (valid or nearly), or anything at all.
fn value_for(kind: &'static str) -> BoxedStrategy<Value> {
    let plausible: BoxedStrategy<Value> = match kind {
        "addr" => strings(&["127.0.0.1:0", "[::1]:0", "0.0.0.0:8080", "nope", "", "127.0.0.1:99999"]).boxed(),
        "duration" => {
            strings(&["5s", "250ms", "1h", "0s", "0ms", "5 parsecs", "", "-1s", "18446744073709551616s"]).boxed()
        }
        "bytes" => prop::sample::select(vec![0i64, 1, 65536, 4 << 20, -5, i64::MAX]).prop_map(Value::Integer).boxed(),
        "urls" => proptest::collection::vec(
            strings(&[
                "http://127.0.0.1:9/v1",
                "https://api.example/v1/",
                "ftp://x",
                "nope",
                "http://h/v1?q=1",
                "",
                "http://",
            ]),
            0..3,
        )
        .prop_map(Value::Array)
        .boxed(),
        "env" => strings(&["PATH", "WASMGATE_SURELY_UNSET", ""]).boxed(),
        "bool" => any::<bool>().prop_map(Value::Boolean).boxed(),
        "count" => {
            prop::sample::select(vec![0i64, 1, 64, 1000, -1, i64::from(u32::MAX) + 1]).prop_map(Value::Integer).boxed()
        }
        "model" => strings(&["gpt-4o", "gpt-*", "*", "a*b*", "", " ", "m"]).boxed(),
        "upstream" => strings(&["a", "b", "mock", ""]).boxed(),
        "kind" => strings(&["auth", "rewrite", "rate-limit", "filter", ""]).boxed(),
        "path" => strings(&["builtin:auth-keys", "builtin:rewrite", "builtin:nope", "p.wasm", "../x.wasm", ""]).boxed(),
        "failure" => strings(&["fail-open", "fail-closed", "open", ""]).boxed(),
        "mib" => prop::sample::select(vec![0i64, 1, 64, 256, 257, -1]).prop_map(Value::Integer).boxed(),
        "ids" => proptest::collection::vec(strings(&["p1", "p2", "auth", "nope"]), 0..4).prop_map(Value::Array).boxed(),
        "hosts" => proptest::collection::vec(strings(&["a.local", "B.Local", ""]), 0..3).prop_map(Value::Array).boxed(),
        "models" => {
            proptest::collection::vec(strings(&["gpt-4o", "gpt-*", "*x", ""]), 0..3).prop_map(Value::Array).boxed()
        }
        "table" => proptest::collection::btree_map("[a-z-]{1,6}", any_value(), 0..3)
            .prop_map(|m| Value::Table(m.into_iter().collect()))
            .boxed(),
        "overrides" => proptest::collection::btree_map(
            prop::sample::select(vec!["a", "b", "zz"]).prop_map(str::to_string),
            strings(&["a", "b", "zz"]),
            0..3,
        )
        .prop_map(|m| Value::Table(m.into_iter().collect()))
        .boxed(),
        _ => any_value().boxed(),
    };
    prop_oneof![5 => plausible, 1 => any_value()].boxed()
}

/// A table with some of `keys` (each with a value of its kind), sometimes an unknown key.
fn section(keys: &'static [(&'static str, &'static str)]) -> BoxedStrategy<Value> {
    let fields: Vec<BoxedStrategy<Option<(String, Value)>>> = keys
        .iter()
        .map(|(k, kind)| proptest::option::weighted(0.6, value_for(kind).prop_map(move |v| (k.to_string(), v))).boxed())
        .collect();
    (fields, proptest::option::weighted(0.1, ("[a-z-]{1,10}", any_value())))
        .prop_map(|(fields, unknown)| {
            let mut t = Table::new();
            for (k, v) in fields.into_iter().flatten().chain(unknown) {
                t.insert(k, v);
            }
            Value::Table(t)
        })
        .boxed()
}

const SERVER: &[(&str, &str)] =
    &[("listen", "addr"), ("admin-listen", "addr"), ("max-body-bytes", "bytes"), ("shutdown-grace", "duration")];
const UPSTREAM: &[(&str, &str)] = &[
    ("endpoints", "urls"),
    ("endpoints", "urls"),
    ("api-key-env", "env"),
    ("http2", "bool"),
    ("connect-timeout", "duration"),
    ("first-byte-timeout", "duration"),
    ("total-timeout", "duration"),
    ("max-idle-per-endpoint", "count"),
];
const MODEL: &[(&str, &str)] = &[("name", "model"), ("upstream", "upstream"), ("upstream-model", "model")];
const PLUGIN: &[(&str, &str)] = &[
    ("kind", "kind"),
    ("path", "path"),
    ("failure", "failure"),
    ("timeout", "duration"),
    ("memory-limit-mib", "mib"),
    ("body", "bool"),
    ("max-reuse", "count"),
    ("config", "table"),
];
const POLICY: &[(&str, &str)] = &[("chain", "ids"), ("cache-dir", "any"), ("forward-identity", "bool")];
const TENANT: &[(&str, &str)] = &[
    ("hosts", "hosts"),
    ("chain", "ids"),
    ("config", "table"),
    ("models", "models"),
    ("max-concurrent-plugin-calls", "count"),
    ("upstream-overrides", "overrides"),
];

fn named(
    keys: &'static [(&'static str, &'static str)],
    names: &[&'static str],
) -> impl Strategy<Value = Value> + use<> {
    proptest::collection::btree_map(prop::sample::select(names.to_vec()).prop_map(str::to_string), section(keys), 0..3)
        .prop_map(|m| Value::Table(m.into_iter().collect()))
}

/// A whole document: the real sections and keys, random values.
fn document() -> impl Strategy<Value = String> {
    (
        proptest::option::of(section(SERVER)),
        proptest::option::of(named(UPSTREAM, &["a", "b", "mock"])),
        proptest::option::of(proptest::collection::vec(section(MODEL), 0..3).prop_map(Value::Array)),
        proptest::option::of(named(PLUGIN, &["p1", "p2", "auth"])),
        proptest::option::of(section(POLICY)),
        proptest::option::of(named(TENANT, &["t1", "bad id", "t-2"])),
    )
        .prop_map(|(server, upstreams, models, plugins, policy, tenants)| {
            let mut doc = Table::new();
            let parts = [
                ("server", server),
                ("upstreams", upstreams),
                ("models", models),
                ("plugins", plugins),
                ("policy", policy),
                ("tenants", tenants),
            ];
            for (k, v) in parts {
                if let Some(v) = v {
                    doc.insert(k.to_string(), v);
                }
            }
            toml::to_string(&doc).unwrap_or_default()
        })
}

fn check_errors(text: &str, require_keys: bool) -> Result<(), TestCaseError> {
    let Err(errs) = Config::parse(text, None) else { return Ok(()) };
    prop_assert!(!errs.errors.is_empty(), "an error list without errors");
    let lines = text.matches('\n').count() + 1;
    for e in &errs.errors {
        if require_keys {
            prop_assert!(!e.key.is_empty(), "an error without a key: {}\n--- config ---\n{}", e, text);
        }
        prop_assert!(e.line.is_none_or(|l| (1..=lines).contains(&l)), "line {:?} outside the text: {}", e.line, e);
    }
    let _ = errs.to_string();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        check_errors(&text, false)?;
    }

    /// Text from TOML's own alphabet, so the parser gets further than the first byte.
    #[test]
    fn toml_like_text_never_panics(tokens in proptest::collection::vec(prop_oneof![
        Just("[server]\n"), Just("[upstreams.a]\n"), Just("[[models]]\n"), Just("[plugins.p]\n"), Just("[tenants.t]\n"),
        Just("listen = "), Just("endpoints = "), Just("name = "), Just("kind = "), Just("chain = "),
        Just("\"127.0.0.1:0\""), Just("\"5s\""), Just("[\"http://h/v1\"]"), Just("7"), Just("-1"), Just("true"),
        Just("{ a = 1 }"), Just("'x'"), Just("\"\"\"\n"), Just("\n"), Just("="), Just("."), Just("\""), Just("["), Just("]"),
        Just("#c\n"), Just("\u{0}"), Just("é"),
    ], 0..40)) {
        check_errors(&tokens.concat(), false)?;
    }

    #[test]
    fn generated_documents_never_panic_and_every_error_names_a_key(text in document()) {
        check_errors(&text, true)?;
        if let Ok(c) = Config::parse(&text, None) {
            let _ = c.describe();
        }
    }
}
