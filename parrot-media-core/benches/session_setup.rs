//! Criterion benchmark: one incoming call's whole media setup and teardown (see
//! `support/setup.rs`), with SIPp's one-codec offer and a richer baresip-style one.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use std::time::Instant;

#[path = "support/setup.rs"]
mod setup;

fn setup_benches(c: &mut Criterion) {
    let t0 = Instant::now();
    let mut rng = setup::Rng(7);
    let mut buf = [0u8; 1500];
    let mut g = c.benchmark_group("session_setup");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sipp_offer", |b| {
        b.iter(|| setup::one_setup(black_box(setup::SIPP_OFFER), 20000, &mut rng, t0, &mut buf))
    });
    g.bench_function("baresip_offer", |b| {
        b.iter(|| {
            setup::one_setup(
                black_box(setup::BARESIP_OFFER),
                20000,
                &mut rng,
                t0,
                &mut buf,
            )
        })
    });
    g.finish();
}

criterion_group!(benches, setup_benches);
criterion_main!(benches);
