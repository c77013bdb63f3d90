//! Test plugin (`rewrite` world): spins forever on every rewrite. Only the host's epoch or
//! fuel deadline ends the call.

use std::hint::black_box;

use wasmgate_sdk::{Decision, NoConfig, Request, RewritePlugin};

struct BusyLoop;

impl RewritePlugin for BusyLoop {
    type Config = NoConfig;

    fn rewrite(_config: &NoConfig, _req: Request) -> Decision {
        let mut spins: u64 = 0;
        loop {
            // black_box keeps the loop observable so the optimizer cannot reason about it.
            spins = black_box(spins.wrapping_add(1));
        }
    }
}

wasmgate_sdk::export_rewrite!(BusyLoop);
