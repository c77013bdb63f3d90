//! The request recorder: a bounded ring of the last requests, for tests to inspect what reached
//! the upstream. The one lock on the request path; `MockConfig::record = 0` skips it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use http::HeaderMap;
use serde::{Deserialize, Serialize};

/// How many requests the recorder keeps by default (the tests' `MockConfig::default()`).
pub const CAPACITY: usize = 256;

/// One request as the mock received it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// Header names in lower case; repeated headers joined with `", "`; non-UTF-8 bytes replaced.
    pub headers: BTreeMap<String, String>,
    /// The JSON body; `null` when empty, a string holding the (lossy) raw text when not JSON.
    pub body: serde_json::Value,
}

/// A bounded, oldest-evicted log of [`RecordedRequest`]s.
#[derive(Debug)]
pub struct RequestRecorder {
    ring: Mutex<VecDeque<RecordedRequest>>,
    capacity: usize,
}

impl Default for RequestRecorder {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

impl RequestRecorder {
    /// A recorder keeping the last `capacity` requests (0: none).
    pub fn with_capacity(capacity: usize) -> Self {
        RequestRecorder { ring: Mutex::new(VecDeque::new()), capacity }
    }

    /// Append `request`, dropping the oldest beyond the capacity.
    pub fn record(&self, request: RecordedRequest) {
        if self.capacity == 0 {
            return;
        }
        // A poisoned lock only means another request panicked mid-push; the ring is still valid.
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        while ring.len() >= self.capacity {
            ring.pop_front();
        }
        ring.push_back(request);
    }

    /// Everything recorded, oldest first.
    pub fn snapshot(&self) -> Vec<RecordedRequest> {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        ring.iter().cloned().collect()
    }

    /// Forget everything recorded so far.
    pub fn clear(&self) {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

/// Headers as `mock_echo` and the recorder show them.
pub(crate) fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        out.entry(name.as_str().to_owned())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    out
}
