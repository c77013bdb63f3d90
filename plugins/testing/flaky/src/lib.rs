//! Test plugin (`rewrite` world) that misbehaves when the request asks it to, so one plugin
//! can fail for some requests (or tenants) and serve others: header `x-flaky: trap` panics (a
//! trap), `x-flaky: spin-<ms>` busy-waits that long on the host clock and then continues,
//! anything else continues. It declares `failure = "fail-closed"` (the SDK's
//! `declare_defaults!`), so a config without `failure` gets fail-closed, not rewrite's fail-open.

use std::hint::black_box;

use wasmgate_sdk::{Decision, NoConfig, Request, RewritePlugin};

struct Flaky;

impl RewritePlugin for Flaky {
    type Config = NoConfig;

    fn rewrite(_config: &NoConfig, req: Request) -> Decision {
        let mode = req.headers.iter().find(|(n, _)| n == "x-flaky").map(|(_, v)| v.as_str()).unwrap_or_default();
        if mode == "trap" {
            #[allow(clippy::panic, reason = "the trap is what this test plugin is for")]
            {
                panic!("flaky: trap requested");
            }
        }
        if let Some(ms) = mode.strip_prefix("spin-").and_then(|n| n.parse::<u64>().ok()) {
            let end = wasmgate_sdk::host::now_ms().saturating_add(ms);
            let mut spins: u64 = 0;
            while wasmgate_sdk::host::now_ms() < end {
                spins = black_box(spins.wrapping_add(1));
            }
        }
        Decision::Continue
    }
}

wasmgate_sdk::export_rewrite!(Flaky);
wasmgate_sdk::declare_defaults!(failure = "fail-closed");
