//! Lost 200, lost ACK, lost BYE (RFC 3261 §13.3.1.4, §17): the first copy of the message is
//! always dropped, on top of 20% random loss, and the call must still converge.

mod common;
use common::*;
use parrot_proto::{Body, InviteRequest, Transport};
use std::time::Duration;

fn call_dropping_first(seed: u64, drop: fn(&[u8]) -> bool) {
    let (mut net, a, b) = pair(seed, lossy(0.2));
    let mut dropped = false;
    net.set_filter(move |p| {
        if !dropped && drop(p) {
            dropped = true;
            return true;
        }
        false
    });
    let now = net.now();
    let mut req = InviteRequest::new("sip:a@10.0.0.1", "sip:b@10.0.0.2", addr(2), Transport::Udp);
    req.body = Some(Body::sdp(SDP_OFFER));
    let d = net.endpoint(a).invite(now, req).unwrap();
    let end = now + Duration::from_secs(60);
    while net.now() < end && established(net.events(a)) == 0 && ended(net.events(a)) == 0 {
        if !net.step() {
            break;
        }
    }
    let t = net.now() + Duration::from_secs(1);
    net.run_until(t);
    let now = net.now();
    let _ = net.endpoint(a).bye(now, d);
    drain_and_check(&mut net, seed);
    let ea = net.take_events(a);
    let eb = net.take_events(b);
    assert_eq!(ended(&ea), 1, "seed {seed}: {ea:?}");
    assert!(ended(&eb) <= 1, "seed {seed}: {eb:?}");
}

#[test]
fn lost_200_is_retransmitted_until_acked() {
    for seed in 0..seeds() {
        call_dropping_first(seed, |p| is_response(p, 200, "INVITE"));
    }
}

#[test]
fn lost_ack_is_recovered_by_the_2xx_retransmission() {
    for seed in 0..seeds() {
        call_dropping_first(seed, |p| is_request(p, "ACK"));
    }
}

#[test]
fn lost_bye_is_retransmitted_by_timer_e() {
    for seed in 0..seeds() {
        call_dropping_first(seed, |p| is_request(p, "BYE"));
    }
}

#[test]
fn ack_that_never_comes_ends_the_call_with_bye() {
    let (mut net, a, b) = pair(3, lossy(0.0));
    net.set_filter(|p| is_request(p, "ACK"));
    let now = net.now();
    net.endpoint(a)
        .invite(
            now,
            InviteRequest::new("sip:a@10.0.0.1", "sip:b@10.0.0.2", addr(2), Transport::Udp),
        )
        .unwrap();
    drain_and_check(&mut net, 3);
    let eb = net.take_events(b);
    assert!(
        eb.iter().any(|e| matches!(
            e,
            parrot_proto::Event::CallEnded {
                reason: parrot_proto::EndReason::AckTimeout,
                ..
            }
        )),
        "{eb:?}"
    );
    let ea = net.take_events(a);
    assert!(
        ea.iter().any(|e| matches!(
            e,
            parrot_proto::Event::CallEnded {
                reason: parrot_proto::EndReason::RemoteBye,
                ..
            }
        )),
        "{ea:?}"
    );
}
