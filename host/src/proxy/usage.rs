//! Token usage as upstreams report it (`usage` in a response or in a stream's last chunk).

use serde::Deserialize;

pub use crate::policy::Usage;

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<Usage>,
}

/// What a JSON response says about usage.
pub(crate) struct Scan {
    pub usage: Option<Usage>,
}

/// Reads `usage` out of a JSON document; `None` when it is not JSON or has no usage.
/// (Stream events are read by [`super::sse`].)
pub(crate) fn scan_json(doc: &[u8]) -> Option<Scan> {
    let w: WithUsage = serde_json::from_slice(doc).ok()?;
    Some(Scan { usage: Some(w.usage?) })
}
