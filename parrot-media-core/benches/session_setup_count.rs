//! Runs N media setups (the `session_setup` bench's loop) without criterion, for counting
//! instructions: run under callgrind with N and 2N and divide the difference by N.
//!
//! `cargo bench -p parrot-media-core --bench session_setup_count --no-run`, then
//! `valgrind --tool=callgrind <binary> 1000` (a second argument `baresip` uses the richer
//! offer).
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Instant;

#[path = "support/setup.rs"]
mod setup;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let offer = match args.next().as_deref() {
        Some("baresip") => setup::BARESIP_OFFER,
        _ => setup::SIPP_OFFER,
    };
    let t0 = Instant::now();
    let mut rng = setup::Rng(7);
    let mut buf = [0u8; 1500];
    let mut total = 0usize;
    for i in 0..n {
        total += setup::one_setup(
            black_box(offer),
            20000 + (i as u16 % 1000) * 2,
            &mut rng,
            t0,
            &mut buf,
        );
    }
    black_box(total);
}
