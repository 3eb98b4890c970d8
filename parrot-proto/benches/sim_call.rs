//! Whole simulated calls between two endpoints in memory, no sockets:
//! INVITE / 100 / 180 / 200 / ACK / BYE / 200, then the virtual clock runs every transaction
//! timer out. Also prints bytes per idle confirmed dialog and per live transaction.
//!
//! `cargo bench -p parrot-proto --bench sim_call -- --warm-up-time 1 --measurement-time 3`

use criterion::{Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

#[path = "support/pair.rs"]
mod pair;
use pair::Pair;
use parrot_proto::{Body, Reply};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim_call");
    g.throughput(Throughput::Elements(1));
    let mut p = Pair::new();
    g.bench_function("invite_100_180_200_ack_bye_200", |bch| {
        bch.iter(|| {
            p.whole_call();
            black_box(&p.a);
        })
    });
    assert!(
        p.a.is_idle() && p.b.is_idle(),
        "tables drained between calls"
    );
    g.finish();
}

fn memory() {
    const N: usize = 1000;
    let mut p = Pair::new();
    // INVITEs B has not answered yet: live server transactions (100 sent).
    p.answer = false;
    for _ in 0..N {
        p.call_up();
    }
    let live_a = p.a.memory_stats();
    let live_b = p.b.memory_stats();
    // Answered and ACKed: B's INVITE transactions linger for Timer L (RFC 6026).
    for tx in p.b.pending_server_transactions() {
        let _ = p.b.respond(p.now, tx, Reply::new(180));
        let _ =
            p.b.respond(p.now, tx, Reply::new(200).body(Body::sdp(pair::SDP)));
    }
    p.pump();
    let accepted_b = p.b.memory_stats();
    p.now += Duration::from_secs(40);
    p.a.handle_timeout(p.now);
    p.b.handle_timeout(p.now);
    p.pump();
    let idle_a = p.a.memory_stats();
    let idle_b = p.b.memory_stats();
    // Hung up: B's BYE transactions linger for Timer J.
    for d in p.a.dialog_ids() {
        let _ = p.a.bye(p.now, d);
    }
    p.pump();
    let bye_b = p.b.memory_stats();
    let per = |bytes: usize, n: usize| bytes / n.max(1);
    println!(
        "memory: idle confirmed dialog: UAC {} B, UAS {} B ({} dialogs each); live transaction: {} B (UAC side, {} txs), {} B (UAS side, {} txs); lingering server transaction: {} B (INVITE, Timer L, {} txs), {} B (BYE, Timer J, {} txs)",
        per(idle_a.dialog_bytes, idle_a.dialogs),
        per(idle_b.dialog_bytes, idle_b.dialogs),
        idle_a.dialogs,
        per(live_a.transaction_bytes, live_a.transactions),
        live_a.transactions,
        per(live_b.transaction_bytes, live_b.transactions),
        live_b.transactions,
        per(accepted_b.transaction_bytes, accepted_b.transactions),
        accepted_b.transactions,
        per(bye_b.transaction_bytes, bye_b.transactions),
        bye_b.transactions,
    );
}

fn benches() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
}

fn main() {
    memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
