//! Test plugin (`rewrite` world): returns an enormous value, to test the host's output limits.
//!
//! Config (all optional): `{"mode": "set-header" | "respond", "size-bytes": 67108864}`.
//! `set-header` (default) returns `mutate([set-header("x-huge", <size-bytes of "a">)])`;
//! `respond` returns a 200 response whose body is `size-bytes` of `a`. Default size: 64 MiB.

use serde::Deserialize;
use wasmgate_sdk::{Decision, Edit, Request, Response, RewritePlugin};

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum Mode {
    #[default]
    SetHeader,
    Respond,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Config {
    #[serde(default)]
    mode: Mode,
    #[serde(default = "default_size")]
    size_bytes: usize,
}

fn default_size() -> usize {
    64 << 20
}

struct HugeOutput;

impl RewritePlugin for HugeOutput {
    type Config = Config;

    fn rewrite(config: &Config, _req: Request) -> Decision {
        let huge = "a".repeat(config.size_bytes);
        match config.mode {
            Mode::SetHeader => Decision::Mutate(vec![Edit::SetHeader(("x-huge".into(), huge))]),
            Mode::Respond => Decision::Respond(Response { status: 200, headers: Vec::new(), body: huge }),
        }
    }
}

wasmgate_sdk::export_rewrite!(HugeOutput);
