//! A `MioAgent` inside a loop the application owns, next to the application's own socket.

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use parrot_mio::{AgentConfig, CallEventKind, CallOptions, MioAgent};
use std::time::{Duration, Instant};

#[test]
fn an_agent_shares_a_poll_with_the_application() {
    let mut poll = Poll::new().unwrap();
    // The application's own socket, under a token below the agent's.
    let mut mine = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let my_addr = mine.local_addr().unwrap();
    poll.registry()
        .register(&mut mine, Token(0), Interest::READABLE)
        .unwrap();
    let mut cfg = AgentConfig::new("127.0.0.1:0".parse().unwrap());
    cfg.rtp_ports = 44800..=44899;
    let mut sip = MioAgent::new(cfg, None, None, poll.registry(), Token(100)).unwrap();
    let events = sip.take_events().unwrap();

    // The far end: an ordinary agent on its own thread.
    let mut far = AgentConfig::new("127.0.0.1:0".parse().unwrap());
    far.rtp_ports = 44900..=44999;
    let far = parrot_mio::start(far, None, None).unwrap();
    let far_addr = far.local_addr();

    // Place a call through the driver, as a command would.
    let (ev_tx, call_events) = parrot_mio::parrot_ua::async_channel::unbounded();
    let (reply, number) = parrot_mio::parrot_ua::async_channel::bounded(1);
    sip.driver_mut().handle_command(
        Instant::now(),
        parrot_mio::parrot_ua::Command::Call {
            target: format!("sip:parrot@{far_addr}"),
            dst: far_addr,
            opts: CallOptions::default(),
            device: None,
            reply,
            events: ev_tx,
        },
    );
    sip.flush();
    let call = number.try_recv().unwrap();

    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"ping", my_addr)
        .unwrap();
    let mut got_mine = false;
    let mut answered_at = None;
    let mut ended = false;
    let mut evs = Events::with_capacity(64);
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end && !(ended && got_mine) {
        poll.poll(&mut evs, sip.timeout()).unwrap();
        for ev in evs.iter() {
            if sip.handle_event(ev) {
                continue;
            }
            assert_eq!(ev.token(), Token(0));
            let mut b = [0u8; 16];
            while let Ok((n, _)) = mine.recv_from(&mut b) {
                assert_eq!(&b[..n], b"ping");
                got_mine = true;
            }
        }
        while let Ok(e) = call_events.try_recv() {
            match e.kind {
                CallEventKind::Answered { .. } => answered_at = Some(Instant::now()),
                CallEventKind::Ended { by, media, .. } => {
                    assert_eq!(by, parrot_mio::EndedBy::Local);
                    assert!(media.rtp_sent > 10, "{media:?}");
                    ended = true;
                }
                _ => {}
            }
        }
        if answered_at.is_some_and(|t| t.elapsed() > Duration::from_millis(500)) {
            answered_at = None;
            sip.driver_mut().ua.hangup(Instant::now(), call);
            sip.flush();
        }
    }
    assert!(got_mine, "the application's socket was served");
    assert!(ended, "the call was answered and hung up");
    assert!(events.try_recv().is_ok(), "every call's events arrive too");
    far.shutdown_blocking();
}
