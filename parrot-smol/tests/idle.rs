//! The smol loop sleeps on its one timer between deadlines: idle agents, and two agents with a
//! call in progress, use a small share of a core (a loop whose timer or wake-up channel fired
//! early and spun would use all of it). Linux only: CPU time comes from `/proc`. A test binary
//! of its own, so that only these agents' threads are measured.
#![cfg(target_os = "linux")]

use parrot_smol::{AgentConfig, CallEventKind, CallOptions};
use std::time::{Duration, Instant};

/// User + system CPU time, in clock ticks (1/100 s), of this process's `parrot-sip` threads.
fn sip_thread_ticks() -> u64 {
    let tasks = std::fs::read_dir("/proc/self/task").unwrap().flatten();
    tasks
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter_map(|stat| {
            let (name, fields) = stat.rsplit_once(')')?;
            name.ends_with("(parrot-sip").then(|| {
                // utime and stime are the 14th and 15th fields; `fields` starts at the 3rd.
                let f: Vec<u64> = (fields.split_whitespace())
                    .skip(11)
                    .take(2)
                    .filter_map(|x| x.parse().ok())
                    .collect();
                f.iter().sum::<u64>()
            })
        })
        .sum()
}

/// Share of one core the `parrot-sip` threads used over `span`.
fn core_share(span: Duration) -> f64 {
    let (start, before) = (Instant::now(), sip_thread_ticks());
    std::thread::sleep(span);
    let used = (sip_thread_ticks() - before) as f64 / 100.0;
    used / start.elapsed().as_secs_f64()
}

#[test]
fn the_loop_sleeps_on_its_timer_between_deadlines() {
    let mut s = AgentConfig::new("127.0.0.1:0".parse().unwrap());
    s.rtp_ports = 48100..=48199;
    let srv = parrot_smol::start(s, None, None).unwrap();
    let mut c = AgentConfig::new("127.0.0.1:0".parse().unwrap());
    c.rtp_ports = 48200..=48299;
    c.auto_answer = false;
    let cli = parrot_smol::start(c, None, None).unwrap();

    let idle = core_share(Duration::from_secs(1));
    assert!(idle < 0.05, "idle: {:.0}% of a core", idle * 100.0);

    let uri = format!("sip:parrot@{}", srv.local_addr());
    let mut call = cli
        .call_blocking(&uri, CallOptions::default(), None)
        .unwrap();
    while !matches!(
        call.next_event_blocking().unwrap().kind,
        CallEventKind::Answered { .. }
    ) {}
    let busy = core_share(Duration::from_millis(1500));
    call.hangup();
    let out = call.wait_blocking();
    assert!(out.media.rtp_received > 50, "{:?}", out.media);
    eprintln!(
        "parrot-sip threads: {:.1}% of a core idle, {:.1}% with a call",
        idle * 100.0,
        busy * 100.0
    );
    assert!(busy < 0.5, "one call: {:.0}% of a core", busy * 100.0);
    cli.shutdown_blocking();
    srv.shutdown_blocking();
}
