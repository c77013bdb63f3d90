//! Token usage as upstreams report it (`usage` in a response or in a stream's last chunk).

use serde::Deserialize;

/// Token counts of a finished request, as upstreams report them in `usage` (and as a
/// rate-limit plugin's `settle` receives them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u32,
    #[serde(default)]
    pub completion_tokens: u32,
    #[serde(default)]
    pub total_tokens: u32,
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<Usage>,
}

/// Reads `usage` out of a JSON document; `None` when it is not JSON or has no usage.
/// (Stream events are read by [`crate::events`].)
pub fn scan_json(doc: &[u8]) -> Option<Usage> {
    serde_json::from_slice::<WithUsage>(doc).ok()?.usage
}
