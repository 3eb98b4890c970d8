//! The loop sleeps in `poll` between deadlines: an agent with nothing to do, and one with a
//! call in progress, use a small share of a core (a loop that woke early and spun would use
//! all of it). Linux only: CPU time comes from `/proc`.
#![cfg(target_os = "linux")]

mod common;

use parrot_mio::{AgentConfig, CallOptions};
use std::time::{Duration, Instant};

/// CPU time (user + system, in clock ticks) of this process's threads named `parrot-sip`.
fn sip_ticks() -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ... utime stime: fields 14 and 15, counted after the comm.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if !head.ends_with("(parrot-sip") {
            continue;
        }
        let f: Vec<&str> = rest.split_whitespace().collect();
        total += f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    }
    total
}

/// Share of one core the SIP threads used over `d`.
fn share_over(d: Duration) -> f64 {
    let (t0, c0) = (Instant::now(), sip_ticks());
    std::thread::sleep(d);
    let ticks = sip_ticks() - c0;
    // Clock ticks are 1/100 s on Linux.
    ticks as f64 / 100.0 / t0.elapsed().as_secs_f64()
}

#[test]
fn the_loop_sleeps_between_deadlines() {
    let mut sc = AgentConfig::new("127.0.0.1:0".parse().unwrap());
    sc.rtp_ports = 46000..=46099;
    let srv = parrot_mio::start(sc, None, None).unwrap();
    let mut cc = AgentConfig::new("127.0.0.1:0".parse().unwrap());
    cc.rtp_ports = 46100..=46199;
    cc.auto_answer = false;
    let cli = parrot_mio::start(cc, None, None).unwrap();

    let idle = share_over(Duration::from_millis(1000));
    assert!(
        idle < 0.05,
        "idle agents use {:.0}% of a core",
        idle * 100.0
    );

    let uri = format!("sip:parrot@{}", srv.local_addr());
    let mut call = cli
        .call_blocking(&uri, CallOptions::default(), None)
        .unwrap();
    common::until_answered(&mut call);
    let busy = share_over(Duration::from_millis(1500));
    call.hangup();
    let out = call.wait_blocking();
    assert!(out.media.rtp_received > 50, "{:?}", out.media);
    eprintln!(
        "SIP threads: {:.1}% of a core idle, {:.1}% with a call",
        idle * 100.0,
        busy * 100.0
    );
    assert!(
        busy < 0.5,
        "two agents with one call use {:.0}% of a core",
        busy * 100.0
    );
    cli.shutdown_blocking();
    srv.shutdown_blocking();
}
