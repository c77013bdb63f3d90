//! The open-file limit: raised from the soft to the hard limit once at start (every client
//! and upstream connection is a descriptor, and 1,024 is a common soft default), and the
//! default connection cap derived from it.

use std::sync::OnceLock;

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors kept back from the cap for listeners, plugin and config files, logs.
const RESERVED: u64 = 64;
/// Used when the limit is unlimited or unknown.
const FALLBACK_LIMIT: u64 = 1 << 20;

static SOFT_LIMIT: OnceLock<u64> = OnceLock::new();

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (once per process; both are logged)
/// and returns the soft limit now in force.
pub(crate) fn raise() -> u64 {
    *SOFT_LIMIT.get_or_init(|| {
        let before = getrlimit(Resource::Nofile);
        let (soft, hard) = (before.current, before.maximum);
        let raised = if soft == hard {
            soft
        } else {
            match setrlimit(Resource::Nofile, Rlimit { current: hard, maximum: hard }) {
                Ok(()) => getrlimit(Resource::Nofile).current,
                Err(e) => {
                    // E.g. macOS refuses an unlimited soft limit; the old one still works.
                    tracing::warn!(error = %e, "cannot raise the open-file limit");
                    soft
                }
            }
        };
        let show = |l: Option<u64>| l.map_or_else(|| "unlimited".to_string(), |n| n.to_string());
        tracing::info!(soft_before = %show(soft), hard = %show(hard), soft_now = %show(raised), "open-file limit");
        raised.unwrap_or(FALLBACK_LIMIT)
    })
}

/// The default `max-connections`: half of what is left after the reserve, because every
/// client request may hold an upstream socket too.
pub(crate) fn default_max_connections(soft_limit: u64) -> usize {
    let share = soft_limit.saturating_sub(RESERVED) / 2;
    usize::try_from(share.max(1)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raises_to_the_hard_limit_and_derives_the_cap() {
        let soft = raise();
        let hard = getrlimit(Resource::Nofile).maximum.unwrap_or(FALLBACK_LIMIT);
        assert!(soft <= hard);
        assert_eq!(default_max_connections(1024), 480);
        assert_eq!(default_max_connections(10), 1);
    }
}
