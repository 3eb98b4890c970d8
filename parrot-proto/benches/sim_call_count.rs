//! Runs N whole simulated calls (the `sim_call` bench's loop) without criterion, for counting
//! instructions: run under callgrind with N and 2N and divide the difference by N.
//!
//! `cargo bench -p parrot-proto --bench sim_call_count --no-run`, then
//! `valgrind --tool=callgrind <binary> 1000`.

use std::hint::black_box;

#[path = "support/pair.rs"]
mod pair;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let mut p = pair::Pair::new();
    for _ in 0..n {
        p.whole_call();
        black_box(&p.a);
    }
    assert!(
        p.a.is_idle() && p.b.is_idle(),
        "tables drained between calls"
    );
}
