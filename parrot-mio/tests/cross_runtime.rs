//! parrot-mio and parrot-tokio talk to each other: the same user agent behind two different
//! loops, over UDP and TCP, with media and DTMF both ways. Only the blocking API is used (a
//! tokio agent runs on its own thread and needs no runtime from the caller).

mod common;

use common::{next_within, tone_player as tone, until_answered};
use parrot_mio::parrot_ua::async_channel::Receiver;
use parrot_mio::{Agent, AgentConfig, CallEvent, CallEventKind, CallOptions, EndedBy};
use std::time::Duration;

/// A server (answers, listens on TCP too) or a client (neither).
fn config(ports: (u16, u16), server: bool) -> AgentConfig {
    let mut c = common::config(ports);
    c.auto_answer = server;
    c.tcp = server;
    c
}

/// `caller` calls `callee` (over TCP when `tcp`), sends DTMF, hangs up; both sides' view of
/// the call is checked (`callee_events`: the callee's events of every call).
fn call(caller: &Agent, callee: &Agent, callee_events: &Receiver<CallEvent>, tcp: bool) {
    assert_ne!(caller.runtime(), callee.runtime());
    let uri = if tcp {
        format!("sip:parrot@{};transport=tcp", callee.tcp_addr().unwrap())
    } else {
        format!("sip:parrot@{}", callee.local_addr())
    };
    let opts = CallOptions {
        tcp,
        ..CallOptions::default()
    };
    let mut call = caller.call_blocking(&uri, opts, None).unwrap();
    until_answered(&mut call);
    call.send_dtmf("19");
    std::thread::sleep(Duration::from_millis(1200));
    call.hangup();
    let out = call.wait_blocking();
    assert!(out.answered);
    assert_eq!(out.ended_by, EndedBy::Local);
    assert!(out.media.rtp_received > 30, "{:?}", out.media);
    assert!(out.media.rtp_sent > 30, "{:?}", out.media);
    let (mut digits, mut ended, mut number) = (String::new(), None, None);
    while let Some(ev) = next_within(callee_events, Duration::from_secs(3)) {
        if matches!(ev.kind, CallEventKind::Incoming { .. }) {
            number = Some(ev.call);
        }
        if number != Some(ev.call) {
            // An earlier call's (this agent as the caller).
            continue;
        }
        match ev.kind {
            CallEventKind::Dtmf(d) => digits.push(d),
            CallEventKind::Ended { by, media, .. } => {
                ended = Some((by, media));
                break;
            }
            _ => {}
        }
    }
    assert_eq!(digits, "19");
    let (by, media) = ended.expect("the callee saw the call end");
    assert_eq!(by, EndedBy::Remote);
    assert!(media.rtp_received > 30, "{media:?}");
}

#[test]
fn mio_calls_tokio() {
    let cli = parrot_mio::start(config((44200, 44299), false), None, None).unwrap();
    let mut srv = parrot_tokio::start(config((44300, 44399), true), None, tone()).unwrap();
    let events = srv.take_events().unwrap();
    call(&cli, &srv, &events, false);
    cli.shutdown_blocking();
    srv.shutdown_blocking();
}

#[test]
fn tokio_calls_mio() {
    let cli = parrot_tokio::start(config((44400, 44499), false), None, None).unwrap();
    let mut srv = parrot_mio::start(config((44500, 44599), true), None, tone()).unwrap();
    let events = srv.take_events().unwrap();
    call(&cli, &srv, &events, false);
    cli.shutdown_blocking();
    srv.shutdown_blocking();
}

#[test]
fn mio_calls_tokio_over_tcp_and_back() {
    let mut mio = parrot_mio::start(config((44600, 44699), true), None, tone()).unwrap();
    let mut tokio = parrot_tokio::start(config((44700, 44799), true), None, tone()).unwrap();
    let (mio_events, tokio_events) = (mio.take_events().unwrap(), tokio.take_events().unwrap());
    call(&mio, &tokio, &tokio_events, true);
    call(&tokio, &mio, &mio_events, true);
    mio.shutdown_blocking();
    tokio.shutdown_blocking();
}
