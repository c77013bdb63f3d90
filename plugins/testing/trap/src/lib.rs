//! Test plugin (`rewrite` world): panics on every rewrite. Built with `panic = "abort"`, the
//! panic is a wasm trap; the host must contain it (fail the request, replace the instance).

use wasmgate_sdk::{Decision, NoConfig, Request, RewritePlugin};

struct Trap;

impl RewritePlugin for Trap {
    type Config = NoConfig;

    #[allow(clippy::panic, reason = "trapping is the whole point of this test plugin")]
    fn rewrite(_config: &NoConfig, req: Request) -> Decision {
        panic!("trap: this plugin panics on every request (request {})", req.id)
    }
}

wasmgate_sdk::export_rewrite!(Trap);
