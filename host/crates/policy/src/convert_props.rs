//! Property tests of the plugin boundary: whatever a guest returns (edits, responses,
//! identities of any shape and size) converts without a panic, and what the gateway keeps
//! respects the documented bounds: valid lower-case header names, valid header values of at
//! most 64 KiB, bodies and texts of at most 1 MiB, at most 256 edits or headers, a status in
//! 100..=599, a subject of 1..=256 bytes and at most 64 metadata pairs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;

use super::*;

/// Names a plugin may be refused to set whatever their syntax (framing and hop-by-hop headers:
/// issue 11 item 7 forbids them), so the "refused only when out of bounds" direction below
/// allows a refusal for them.
fn may_be_forbidden(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "content-length"
            | "transfer-encoding"
            | "connection"
            | "host"
            | "keep-alive"
            | "te"
            | "trailer"
            | "upgrade"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
    )
}

/// Strings around every bound: short and odd (CR, LF, NUL, spaces, upper case, non-ASCII,
/// hop-by-hop names) or long, just below, at and above 64 KiB and 1 MiB.
fn text() -> impl Strategy<Value = String> {
    let short = prop_oneof![
        4 => "[a-zA-Z0-9-]{1,12}",
        2 => "[ -~\r\n\t\0é]{0,10}",
        1 => prop::sample::select(vec![
            "content-length", "Transfer-Encoding", "connection", "host", "x-ok", "", " ", "a\r\nb: c",
        ])
        .prop_map(str::to_string),
    ];
    let long = (
        prop::sample::select(vec![
            0usize,
            1,
            255,
            256,
            257,
            65535,
            65536,
            65537,
            (1 << 20) - 1,
            1 << 20,
            (1 << 20) + 1,
        ]),
        prop::sample::select(vec!['a', 'é', '\n']),
    )
        .prop_map(|(len, c)| std::iter::repeat_n(c, len / c.len_utf8()).collect::<String>());
    prop_oneof![8 => short, 1 => long]
}

fn header() -> impl Strategy<Value = (String, String)> {
    (text(), text())
}

fn wit_edit() -> impl Strategy<Value = wit::Edit> {
    prop_oneof![
        header().prop_map(wit::Edit::SetHeader),
        header().prop_map(wit::Edit::SetResponseHeader),
        text().prop_map(wit::Edit::RemoveHeader),
        text().prop_map(wit::Edit::SetModel),
        any::<u32>().prop_map(wit::Edit::SetMaxTokens),
        text().prop_map(wit::Edit::PrependSystem),
        header().prop_map(wit::Edit::SetBodyField),
    ]
}

/// A list that is usually short, sometimes around the 256 cap (made of copies: cheap).
fn many<T: Clone + std::fmt::Debug + 'static>(item: BoxedStrategy<T>) -> impl Strategy<Value = Vec<T>> {
    prop_oneof![
        6 => proptest::collection::vec(item.clone(), 0..6),
        1 => (item, prop::sample::select(vec![64usize, 65, 255, 256, 257])).prop_map(|(t, n)| vec![t; n]),
    ]
}

fn header_in_bounds(n: &str, v: &str) -> bool {
    v.len() <= 64 << 10 && http::HeaderName::try_from(n).is_ok() && http::HeaderValue::try_from(v).is_ok()
}

fn assert_header_kept(n: &str, v: &str) -> Result<(), TestCaseError> {
    prop_assert!(v.len() <= 64 << 10, "header value of {} bytes", v.len());
    prop_assert!(http::HeaderValue::try_from(v).is_ok(), "invalid value {:?}", v);
    let name: Option<String> = http::HeaderName::try_from(n).ok().map(|h| h.as_str().to_string());
    prop_assert_eq!(name.as_deref(), Some(n), "invalid name, or not in canonical lower case");
    Ok(())
}

/// Whether the gateway must accept this edit (within every bound, and not a name that may be
/// forbidden).
fn edit_in_bounds(e: &wit::Edit) -> bool {
    match e {
        wit::Edit::SetHeader((n, v)) | wit::Edit::SetResponseHeader((n, v)) => {
            header_in_bounds(n, v) && !may_be_forbidden(n)
        }
        wit::Edit::RemoveHeader(n) => http::HeaderName::try_from(n.as_str()).is_ok() && !may_be_forbidden(n),
        wit::Edit::SetModel(m) => !m.is_empty() && m.len() <= 256,
        wit::Edit::SetMaxTokens(n) => *n > 0,
        wit::Edit::PrependSystem(t) => t.len() <= 1 << 20,
        wit::Edit::SetBodyField((_, v)) => v.len() <= 1 << 20,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn edits_convert_within_bounds(list in many(wit_edit().boxed())) {
        let all_in_bounds = list.len() <= 256 && list.iter().all(edit_in_bounds);
        match edits(list.clone()) {
            Ok(out) => {
                prop_assert!(out.len() <= 256);
                prop_assert_eq!(out.len(), list.len(), "an edit was dropped silently");
                for (e, w) in out.iter().zip(&list) {
                    match (e, w) {
                        (Edit::SetHeader(n, v), wit::Edit::SetHeader(_)) |
                        (Edit::SetResponseHeader(n, v), wit::Edit::SetResponseHeader(_)) => assert_header_kept(n, v)?,
                        (Edit::RemoveHeader(n), wit::Edit::RemoveHeader(_)) => {
                            let name: Option<String> = http::HeaderName::try_from(n.as_str()).ok().map(|h| h.as_str().to_string());
                            prop_assert_eq!(name.as_deref(), Some(n.as_str()));
                        }
                        (Edit::SetModel(m), wit::Edit::SetModel(_)) => prop_assert!(!m.is_empty() && m.len() <= 256),
                        (Edit::SetMaxTokens(n), wit::Edit::SetMaxTokens(_)) => prop_assert!(*n > 0),
                        (Edit::PrependSystem(t), wit::Edit::PrependSystem(_)) => prop_assert!(t.len() <= 1 << 20),
                        (Edit::SetBodyField(_, v), wit::Edit::SetBodyField(_)) => prop_assert!(v.len() <= 1 << 20),
                        (e, w) => prop_assert!(false, "{:?} became {:?}", w, e),
                    }
                }
            }
            Err(kind) => {
                prop_assert_eq!(kind, FailureKind::BadOutput);
                prop_assert!(!all_in_bounds, "edits within every bound were refused: {:?}", list);
            }
        }
    }

    #[test]
    fn responses_convert_within_bounds(status in prop_oneof![100u16..600, any::<u16>()], headers in many(header().boxed()), body in text()) {
        let r = wit::Response { status, headers: headers.clone(), body: body.clone() };
        let in_bounds = (100..=599).contains(&status)
            && body.len() <= 1 << 20
            && headers.len() <= 256
            && headers.iter().all(|(n, v)| header_in_bounds(n, v) && !may_be_forbidden(n));
        match response(r) {
            Ok(local) => {
                prop_assert!((100..=599).contains(&local.status));
                prop_assert!(local.body.len() <= 1 << 20);
                prop_assert!(local.headers.len() <= 256);
                for (n, v) in &local.headers {
                    prop_assert!(header_in_bounds(n, v), "{:?}: {:?}", n, v);
                }
                prop_assert_eq!(local.body, body);
            }
            Err(kind) => {
                prop_assert_eq!(kind, FailureKind::BadOutput);
                prop_assert!(!in_bounds, "a response within bounds was refused");
            }
        }
    }

    #[test]
    fn identities_convert_within_bounds(subject in text(), tenant in proptest::option::of(text()), metadata in many(header().boxed())) {
        let i = wit::Identity { subject: subject.clone(), tenant, metadata: metadata.clone() };
        let in_bounds = !subject.is_empty() && subject.len() <= 256 && metadata.len() <= 64;
        match identity(i) {
            Ok(id) => {
                prop_assert!(!id.subject.is_empty() && id.subject.len() <= 256);
                prop_assert!(id.metadata.len() <= 64);
            }
            Err(kind) => {
                prop_assert_eq!(kind, FailureKind::BadOutput);
                prop_assert!(!in_bounds);
            }
        }
    }

    /// The other direction of the boundary: a non-auth plugin never sees a credential header.
    #[test]
    fn requests_hide_credentials_from_non_auth_plugins(headers in many(header().boxed()), pass_body in any::<bool>(), body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut headers = headers;
        headers.push(("authorization".into(), "Bearer sk-x".into()));
        headers.push(("cookie".into(), "s=1".into()));
        let view = RequestView { headers, ..RequestView::default() };
        for kind in [PluginKind::Auth, PluginKind::Rewrite, PluginKind::RateLimit] {
            let req = request(&view, kind, &PluginDefaults::default(), pass_body.then_some(body.as_slice()));
            let creds = req.headers.iter().filter(|(n, _)| is_credential(n)).count();
            if kind == PluginKind::Auth {
                prop_assert!(creds >= 2);
            } else {
                prop_assert_eq!(creds, 0);
            }
            prop_assert_eq!(req.body.is_some(), pass_body);
            // A plugin declaring the headers it reads gets those only (credentials still only
            // if it is an auth plugin), in the client's order.
            let first = view.headers[0].0.clone();
            let declared = PluginDefaults { headers: Some(vec!["authorization".to_string(), first.clone()].into()), ..PluginDefaults::default() };
            let req = request(&view, kind, &declared, None);
            let want: Vec<_> = view.headers.iter()
                .filter(|(n, _)| (n == "authorization" || *n == first) && (kind == PluginKind::Auth || !is_credential(n)))
                .cloned().collect();
            prop_assert_eq!(&req.headers, &want);
        }
    }
}
