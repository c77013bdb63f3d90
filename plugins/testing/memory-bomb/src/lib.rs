//! Test plugin (`rewrite` world): allocates 1 MiB blocks, touching every page, until the
//! allocation fails (the host's memory limit), which aborts: a trap the host must contain.

use std::hint::black_box;

use wasmgate_sdk::{Decision, NoConfig, Request, RewritePlugin};

const BLOCK: usize = 1 << 20;
const PAGE: usize = 4096;

struct MemoryBomb;

impl RewritePlugin for MemoryBomb {
    type Config = NoConfig;

    fn rewrite(_config: &NoConfig, _req: Request) -> Decision {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut block = vec![0u8; BLOCK];
            for page in block.chunks_mut(PAGE) {
                page[0] = 0xA5;
            }
            hoard.push(black_box(block));
        }
    }
}

wasmgate_sdk::export_rewrite!(MemoryBomb);
