//! A whole call between two endpoints over the simulated network: INVITE/100/200/ACK/BYE/200,
//! with and without impairments.

mod common;
use common::*;
use parrot_proto::sim::LinkConfig;
use parrot_proto::{Body, Event, InviteRequest, Transport};
use std::time::Duration;

fn call(seed: u64, link: LinkConfig) -> (usize, usize) {
    let (mut net, a, b) = pair(seed, link);
    let now = net.now();
    let mut req = InviteRequest::new(
        "sip:alice@10.0.0.1",
        "sip:bob@10.0.0.2",
        addr(2),
        Transport::Udp,
    );
    req.body = Some(Body::sdp(SDP_OFFER));
    let d = net.endpoint(a).invite(now, req).expect("invite");
    // Hang up 5 s after the call is up (or give up waiting after 2 minutes).
    let mut hung = false;
    let end = net.now() + Duration::from_secs(120);
    while net.now() < end {
        if !net.step() {
            break;
        }
        if !hung && established(net.events(a)) > 0 {
            let t = net.now() + Duration::from_secs(5);
            net.run_until(t);
            let now = net.now();
            let _ = net.endpoint(a).bye(now, d);
            hung = true;
        }
        if hung {
            break;
        }
    }
    drain_and_check(&mut net, seed);
    let ea = net.take_events(a);
    let eb = net.take_events(b);
    assert_eq!(
        ended(&ea),
        1,
        "seed {seed}: caller ends exactly once: {ea:?}"
    );
    assert_eq!(
        ended(&eb),
        1,
        "seed {seed}: callee ends exactly once: {eb:?}"
    );
    (established(&ea), established(&eb))
}

#[test]
fn basic_call_on_a_perfect_network_goes_through_the_whole_ladder() {
    let (mut net, a, b) = pair(1, LinkConfig::default());
    let now = net.now();
    let mut req = InviteRequest::new(
        "sip:alice@10.0.0.1",
        "sip:bob@10.0.0.2",
        addr(2),
        Transport::Udp,
    );
    req.body = Some(Body::sdp(SDP_OFFER));
    let d = net.endpoint(a).invite(now, req).unwrap();
    net.run_until(now + Duration::from_secs(1));
    let ea = net.take_events(a);
    let eb = net.take_events(b);
    assert!(ea.iter().any(|e| matches!(e, Event::CallEstablished { remote_sdp: Some(s), .. } if s.bytes.as_ref() == SDP_ANSWER)));
    assert!(eb.iter().any(
        |e| matches!(e, Event::IncomingCall { offer: Some(s), .. } if s.bytes.as_ref() == SDP_OFFER)
    ));
    assert!(eb.iter().any(|e| matches!(e, Event::CallEstablished { remote_sdp: Some(s), .. } if s.bytes.as_ref() == SDP_OFFER)));
    assert_eq!(net.endpoint_ref(a).dialogs(), 1);
    assert_eq!(net.endpoint_ref(b).dialogs(), 1);
    let now = net.now();
    net.endpoint(a).bye(now, d).unwrap();
    drain_and_check(&mut net, 1);
    let eb = net.take_events(b);
    assert!(eb.iter().any(|e| matches!(
        e,
        Event::CallEnded {
            reason: parrot_proto::EndReason::RemoteBye,
            ..
        }
    )));
}

#[test]
fn basic_call_converges_for_1000_seeds_at_20_percent_loss() {
    let mut both_up = 0;
    for seed in 0..seeds() {
        let (ua, ub) = call(seed, lossy(0.2));
        if ua == 1 && ub == 1 {
            both_up += 1;
        }
    }
    eprintln!("both sides established for {both_up} of {} seeds", seeds());
    // With 20% loss a call may time out; the overwhelming majority must get through.
    assert!(
        both_up as f64 >= seeds() as f64 * 0.95,
        "only {both_up} calls came up"
    );
}
