//! Validation of `[policy.instances]`: the plugin instance slots and the idle budget.
//!
//! The defaults fit any number of tenants: instances are made on a plugin's first call and
//! kept idle under one engine-wide budget, so slots bound concurrency plus the warm set, not
//! the tenant count. The idle memory default follows the machine (1/64 of its memory, within
//! 64..=1024 MiB): 384 MiB on a 24 GiB host.

use std::time::Duration;

use toml::Spanned;

use super::Ctx;
use crate::config::InstanceLimits;
use crate::config::raw::RawInstances;

const DEFAULT_MAX: u32 = 1000;
/// The pooling allocator reserves address space per slot (two memories of 288 MiB): 10,000
/// slots are ~5.6 TiB of the 128 TiB a process may map.
const MAX_MAX: u32 = 10_000;
const DEFAULT_IDLE: u32 = 512;
const DEFAULT_IDLE_PER_PLUGIN: u32 = 16;
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

pub(super) fn limits(cx: &mut Ctx<'_>, raw: &RawInstances) -> InstanceLimits {
    let max = bounded(cx, "policy.instances.max", &raw.max, 1, MAX_MAX, DEFAULT_MAX);
    // Unwritten, `idle` is 512, or half of `max` when that is smaller: `max = 100` alone is a
    // valid config.
    let idle = match &raw.idle {
        Some(_) => bounded(cx, "policy.instances.idle", &raw.idle, 0, MAX_MAX, DEFAULT_IDLE),
        None if max > DEFAULT_IDLE => DEFAULT_IDLE,
        None => max / 2,
    };
    if idle >= max
        && let Some(span) = raw.idle.as_ref().map(Spanned::span)
    {
        cx.err(
            "policy.instances.idle",
            Some(span),
            format!("must be below `policy.instances.max` ({max}): idle instances hold slots that calls need"),
        );
    }
    let per_plugin =
        bounded(cx, "policy.instances.idle-per-plugin", &raw.idle_per_plugin, 0, MAX_MAX, DEFAULT_IDLE_PER_PLUGIN);
    let memory_mib = match &raw.idle_memory_mib {
        Some(m) => *m.get_ref(),
        None => default_idle_memory_mib(),
    };
    InstanceLimits {
        max,
        idle: idle.min(max.saturating_sub(1)),
        idle_memory_bytes: usize::try_from(memory_mib << 20).unwrap_or(usize::MAX),
        idle_per_plugin: per_plugin,
        idle_timeout: cx.duration("policy.instances.idle-timeout", &raw.idle_timeout, DEFAULT_IDLE_TIMEOUT),
    }
}

fn bounded(cx: &mut Ctx<'_>, key: &str, v: &Option<Spanned<u32>>, lo: u32, hi: u32, default: u32) -> u32 {
    match v {
        Some(n) if (lo..=hi).contains(n.get_ref()) => *n.get_ref(),
        Some(n) => {
            cx.err(key, Some(n.span()), format!("must be in {lo}..={hi}"));
            default
        }
        None => default,
    }
}

/// 1/64 of the machine's memory, within 64..=1024 MiB (256 MiB when it cannot be read).
fn default_idle_memory_mib() -> u64 {
    let total_kib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    });
    match total_kib {
        Some(kib) => (kib / 1024 / 64).clamp(64, 1024),
        None => 256,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::config::Config;

    const BASE: &str =
        "[upstreams.u]\nendpoints = [\"http://127.0.0.1:1\"]\n[[models]]\nname = \"m\"\nupstream = \"u\"\n";

    #[test]
    fn idle_follows_max_unless_written_and_must_stay_below_it() {
        let c = Config::parse(&format!("[policy.instances]\nmax = 100\n{BASE}"), None).unwrap();
        assert_eq!((c.policy.instances.max, c.policy.instances.idle), (100, 50));
        let c = Config::parse(BASE, None).unwrap();
        assert_eq!((c.policy.instances.max, c.policy.instances.idle), (super::DEFAULT_MAX, 512));
        let err = Config::parse(&format!("[policy.instances]\nmax = 100\nidle = 100\n{BASE}"), None).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("policy.instances.idle") && text.contains("must be below"), "{text}");
    }
}
