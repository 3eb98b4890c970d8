//! Timer B and timer F (RFC 3261 §17.1.1.2, §17.1.2.2): a peer that never answers. The
//! INVITE ends as a timeout (reported as 408, §8.1.3.1) after 64*T1, the OPTIONS likewise.

mod common;
use common::*;
use parrot_proto::sim::Network;
use parrot_proto::{EndReason, Endpoint, Event, InviteRequest, Transport};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn nowhere() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 99], 5060))
}

#[test]
fn timer_b_ends_an_unanswered_invite_after_64_t1_for_1000_seeds() {
    for seed in 0..seeds() {
        let mut net = Network::new(Instant::now(), seed, lossy(0.2));
        let a = net.add(addr(1), Endpoint::new(config(1), seed));
        let start = net.now();
        net.endpoint(a)
            .invite(
                start,
                InviteRequest::new(
                    "sip:a@10.0.0.1",
                    "sip:x@10.0.0.99",
                    nowhere(),
                    Transport::Udp,
                ),
            )
            .unwrap();
        drain_and_check(&mut net, seed);
        let ea = net.take_events(a);
        assert!(ea.iter().any(|e| matches!(
            e,
            Event::CallEnded {
                reason: EndReason::Timeout,
                ..
            }
        )));
        assert_eq!(net.now() - start, Duration::from_secs(32));
    }
}

#[test]
fn timer_f_reports_408_for_an_unanswered_options_for_1000_seeds() {
    for seed in 0..seeds() {
        let mut net = Network::new(Instant::now(), seed, lossy(0.2));
        let a = net.add(addr(1), Endpoint::new(config(1), seed));
        let start = net.now();
        let r = net
            .endpoint(a)
            .options(start, "sip:x@10.0.0.99", nowhere(), Transport::Udp)
            .unwrap();
        drain_and_check(&mut net, seed);
        let ea = net.take_events(a);
        assert!(ea.iter().any(|e| matches!(e, Event::ResponseReceived { request, status: 408, response: None, .. } if *request == r)));
        assert_eq!(net.now() - start, Duration::from_secs(32));
    }
}

#[test]
fn options_to_a_live_peer_gets_200() {
    let (mut net, a, _b) = pair(1, lossy(0.0));
    let now = net.now();
    let r = net
        .endpoint(a)
        .options(now, "sip:b@10.0.0.2", addr(2), Transport::Udp)
        .unwrap();
    drain_and_check(&mut net, 1);
    assert!(net.events(a).iter().any(
        |e| matches!(e, Event::ResponseReceived { request, status: 200, .. } if *request == r)
    ));
}
