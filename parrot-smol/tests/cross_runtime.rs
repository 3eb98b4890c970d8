//! A parrot-smol agent and a parrot-tokio agent call each other on loopback: the same
//! protocol whichever runtime drives each end (no tokio runtime in the test itself; each
//! agent runs on its own thread).

use async_io::Timer;
use futures_lite::future::{self, block_on};
use parrot_media_core::handler::{Actions, MediaAction, MediaHandler, StreamDirection};
use parrot_smol::{Agent, AgentConfig, CallEventKind, CallOptions, EndedBy, MediaHandlerFactory};
use std::time::Duration;

const TONE: &[u8] = include_bytes!("../../assets/tone1k.wav");

struct PlayTone;
impl MediaHandler for PlayTone {
    fn handle_stream_start(&mut self, _: &str, _: StreamDirection) -> Actions {
        MediaAction::play("builtin:tone").into()
    }
}

fn config(ports: (u16, u16), server: bool) -> AgentConfig {
    let mut c = AgentConfig::new("127.0.0.1:0".parse().unwrap());
    c.rtp_ports = ports.0..=ports.1;
    c.builtin_files = vec![("builtin:tone".into(), bytes::Bytes::from_static(TONE))];
    c.auto_answer = server;
    c
}

fn tone_player() -> Option<MediaHandlerFactory> {
    Some(Box::new(|_, _| {
        Box::new(PlayTone) as Box<dyn MediaHandler + Send>
    }))
}

/// `caller` calls `callee` (over TCP when `tcp`), sends DTMF, hangs up; both ends must agree
/// on what happened.
fn call_across(caller: Agent, mut callee: Agent, tcp: bool) {
    block_on(async {
        let callee_events = callee.take_events().unwrap();
        let uri = if tcp {
            format!("sip:parrot@{};transport=tcp", callee.tcp_addr().unwrap())
        } else {
            format!("sip:parrot@{}", callee.local_addr())
        };
        let opts = CallOptions {
            tcp,
            ..CallOptions::default()
        };
        let mut call = caller.call(&uri, opts).await.unwrap();
        while !matches!(
            call.next_event().await.unwrap().kind,
            CallEventKind::Answered { .. }
        ) {}
        call.send_dtmf("7*");
        Timer::after(Duration::from_millis(1200)).await;
        call.hangup();
        let out = call.wait().await;
        assert!(out.answered);
        assert_eq!(out.ended_by, EndedBy::Local);
        assert!(out.media.rtp_received > 30, "{:?}", out.media);
        assert!(out.media.rtp_sent > 30, "{:?}", out.media);
        let mut digits = String::new();
        let mut ended = None;
        loop {
            let next = future::or(async { callee_events.recv().await.ok() }, async {
                Timer::after(Duration::from_secs(3)).await;
                None
            });
            let Some(ev) = next.await else { break };
            match ev.kind {
                CallEventKind::Dtmf(d) => digits.push(d),
                CallEventKind::Ended { by, media, .. } => {
                    ended = Some((by, media));
                    break;
                }
                _ => {}
            }
        }
        assert_eq!(digits, "7*");
        let (by, media) = ended.expect("the callee saw the call end");
        assert_eq!(by, EndedBy::Remote);
        assert!(media.rtp_received > 30, "{media:?}");
        caller.shutdown().await;
        callee.shutdown().await;
    });
}

#[test]
fn smol_calls_tokio() {
    let callee = parrot_tokio::start(config((46600, 46699), true), None, tone_player()).unwrap();
    let caller = parrot_smol::start(config((46700, 46799), false), None, None).unwrap();
    assert_eq!((caller.runtime(), callee.runtime()), ("smol", "tokio"));
    call_across(caller, callee, false);
}

#[test]
fn tokio_calls_smol() {
    let callee = parrot_smol::start(config((46800, 46899), true), None, tone_player()).unwrap();
    let caller = parrot_tokio::start(config((46900, 46999), false), None, None).unwrap();
    call_across(caller, callee, false);
}

#[test]
fn smol_calls_tokio_over_tcp() {
    let callee = parrot_tokio::start(config((47000, 47099), true), None, tone_player()).unwrap();
    let caller = parrot_smol::start(config((47100, 47199), false), None, None).unwrap();
    call_across(caller, callee, true);
}

#[test]
fn tokio_calls_smol_over_tcp() {
    let callee = parrot_smol::start(config((47200, 47299), true), None, tone_player()).unwrap();
    let caller = parrot_tokio::start(config((47300, 47399), false), None, None).unwrap();
    call_across(caller, callee, true);
}
