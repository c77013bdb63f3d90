//! What the response side costs per stream event, without plugins: decode one typical chat
//! chunk from its bytes, run it through today's filter chain (usage watch + usage strip, the
//! chat view parsed once for both), and encode it for the client. The decoder and chain are
//! reused across iterations, as one long stream would.
//!
//! Run with: cargo bench -p wasmgate-bench --bench response

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wasmgate::proxy::events::Decoder;
use wasmgate::proxy::response::{FilterChain, ResponseFilter, UsageStrip, UsageWatch};

/// A content delta as OpenAI sends it with `include_usage` on (~230 bytes).
const CHUNK: &[u8] = b"data: {\"id\":\"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_06737a9306\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" world\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n";

fn chain() -> FilterChain {
    let filters: Vec<Box<dyn ResponseFilter>> = vec![Box::new(UsageWatch), Box::new(UsageStrip)];
    FilterChain::new(filters)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("response");
    group.throughput(Throughput::Elements(1));

    group.bench_function("decode + usage watch + strip + encode (one chat chunk)", |b| {
        let mut decoder = Decoder::new();
        let mut chain = chain();
        let mut out = BytesMut::with_capacity(4096);
        b.iter(|| {
            decoder.feed(black_box(CHUNK));
            while let Some(event) = decoder.next_event() {
                chain.on_event(event, &mut out);
            }
            black_box(chain.tally.take_output());
            let sent = out.split().freeze(); // what the pump hands to the client
            black_box(sent);
        })
    });

    group.bench_function("decode + encode only (no filters)", |b| {
        let mut decoder = Decoder::new();
        let mut chain = FilterChain::new(Vec::new());
        let mut out = BytesMut::with_capacity(4096);
        b.iter(|| {
            decoder.feed(black_box(CHUNK));
            while let Some(event) = decoder.next_event() {
                chain.on_event(event, &mut out);
            }
            black_box(out.split().freeze());
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
