//! Token usage as upstreams report it (`usage` in a response or in a stream's last chunk).

use serde::Deserialize;

pub use crate::policy::Usage;

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    choices: Option<Vec<serde::de::IgnoredAny>>,
}

/// What a JSON document (a response, or one SSE event's data) says about usage.
pub(crate) struct Scan {
    pub usage: Option<Usage>,
    /// True for a stream chunk that only carries usage (`"choices": []`).
    pub usage_only: bool,
}

/// Reads `usage` out of a JSON document; `None` when it is not JSON or has no usage.
pub(crate) fn scan_json(doc: &[u8]) -> Option<Scan> {
    let w: WithUsage = serde_json::from_slice(doc).ok()?;
    let usage = w.usage?;
    let usage_only = matches!(&w.choices, Some(c) if c.is_empty());
    Some(Scan { usage: Some(usage), usage_only })
}
