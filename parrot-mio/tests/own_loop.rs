//! A `MioAgent` inside a loop the application owns, next to the application's own socket;
//! another thread drives it through the usual blocking `Agent` handle.

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use parrot_mio::{AgentConfig, CallOptions, EndedBy, MioAgent};
use parrot_ua::testing::fixtures::until_answered;
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
    let mine_rtp = parrot_ua::testing::fixtures::free_ports(44800, 100);
    cfg.rtp_ports = mine_rtp..=mine_rtp + 99;
    cfg.auto_answer = false;
    let mut sip = MioAgent::new(cfg, None, None, poll.registry(), Token(100)).unwrap();
    let agent = sip.handle(poll.registry()).unwrap();
    assert!(sip.handle(poll.registry()).is_err(), "one handle");

    // The far end: an ordinary agent on its own thread.
    let mut far = AgentConfig::new("127.0.0.1:0".parse().unwrap());
    let far_rtp = parrot_ua::testing::fixtures::free_ports(44900, 100);
    far.rtp_ports = far_rtp..=far_rtp + 99;
    let far = parrot_mio::start(far, None, None).unwrap();
    let uri = format!("sip:parrot@{}", far.local_addr());

    // Another thread places a call through the handle, then shuts the agent down.
    let user = std::thread::spawn(move || {
        let mut call = agent
            .call_blocking(&uri, CallOptions::default(), None)
            .unwrap();
        until_answered(&mut call);
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .send_to(b"ping", my_addr)
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        call.hangup();
        let out = call.wait_blocking();
        agent.shutdown_blocking();
        out
    });

    let mut got_mine = false;
    let mut evs = Events::with_capacity(64);
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let timeout = sip.timeout();
        if sip.is_done() {
            break;
        }
        assert!(Instant::now() < end, "the loop ends after the shutdown");
        poll.poll(&mut evs, timeout).unwrap();
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
    }
    let out = user.join().unwrap();
    assert!(out.answered, "{out:?}");
    assert_eq!(out.ended_by, EndedBy::Local);
    assert!(out.media.rtp_sent > 10, "{:?}", out.media);
    assert!(got_mine, "the application's socket was served");
    far.shutdown_blocking();
}
