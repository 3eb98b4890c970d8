//! CANCEL (RFC 3261 §9): a CANCEL that crosses the 200 (the call comes up and is ended with
//! BYE), and a CANCEL of a ringing call (487).

mod common;
use common::*;
use parrot_proto::sim::Network;
use parrot_proto::{
    Action, Body, EndReason, Endpoint, Event, InviteRequest, Reply, Request, Transport, UasHandler,
};
use std::time::{Duration, Instant};

/// Rings (180) and leaves the answer to the application.
struct Ringer;
impl UasHandler for Ringer {
    fn handle_invite(&mut self, _req: &Request<'_>) -> Action {
        Action::respond(180)
    }
}

fn ringing_pair(
    seed: u64,
    loss: f64,
) -> (
    Network,
    parrot_proto::sim::NodeId,
    parrot_proto::sim::NodeId,
) {
    let mut net = Network::new(Instant::now(), seed, lossy(loss));
    let a = net.add(addr(1), Endpoint::new(config(1), seed * 2 + 1));
    let mut eb = Endpoint::new(config(2), seed * 2 + 2);
    eb.set_uas_handler_factory(|| Box::new(Ringer) as Box<dyn UasHandler>);
    let b = net.add(addr(2), eb);
    (net, a, b)
}

fn incoming_tx(events: &[Event]) -> Option<parrot_proto::ServerTxKey> {
    events.iter().find_map(|e| match e {
        Event::IncomingCall { tx, .. } => Some(*tx),
        _ => None,
    })
}

fn cancel_crossing_200(seed: u64, loss: f64) -> (Vec<Event>, Vec<Event>) {
    let (mut net, a, b) = ringing_pair(seed, loss);
    let now = net.now();
    let d = net
        .endpoint(a)
        .invite(
            now,
            InviteRequest::new("sip:a@10.0.0.1", "sip:b@10.0.0.2", addr(2), Transport::Udp),
        )
        .unwrap();
    let end = now + Duration::from_secs(60);
    while net.now() < end && incoming_tx(net.events(b)).is_none() {
        if !net.step() {
            break;
        }
    }
    if let Some(tx) = incoming_tx(net.events(b)) {
        let t = net.now() + Duration::from_millis(400);
        net.run_until(t);
        let now = net.now();
        // Both at the same instant: the CANCEL and the 200 cross on the wire.
        let _ = net.endpoint(a).cancel(now, d);
        let _ = net
            .endpoint(b)
            .respond(now, tx, Reply::new(200).body(Body::sdp(SDP_ANSWER)));
    }
    drain_and_check(&mut net, seed);
    (net.take_events(a), net.take_events(b))
}

#[test]
fn cancel_crossing_the_200_ends_both_sides_for_1000_seeds_at_20_percent_loss() {
    for seed in 0..seeds() {
        let (ea, eb) = cancel_crossing_200(seed, 0.2);
        assert_eq!(ended(&ea), 1, "seed {seed}: {ea:?}");
        assert!(ended(&eb) <= 1, "seed {seed}: {eb:?}");
        if incoming_tx(&eb).is_some() {
            assert_eq!(ended(&eb), 1, "seed {seed}: {eb:?}");
        }
    }
}

#[test]
fn cancel_crossing_the_200_on_a_clean_link_establishes_then_byes() {
    let (ea, eb) = cancel_crossing_200(7, 0.0);
    assert_eq!(established(&ea), 1);
    assert!(ea.iter().any(|e| matches!(
        e,
        Event::CallEnded {
            reason: EndReason::Cancelled,
            ..
        }
    )));
    assert!(eb.iter().any(|e| matches!(
        e,
        Event::CallEnded {
            reason: EndReason::RemoteBye,
            ..
        }
    )));
}

#[test]
fn cancel_of_a_ringing_call_gets_487_on_both_sides() {
    for seed in 0..seeds() {
        let (mut net, a, b) = ringing_pair(seed, 0.2);
        let now = net.now();
        let d = net
            .endpoint(a)
            .invite(
                now,
                InviteRequest::new("sip:a@10.0.0.1", "sip:b@10.0.0.2", addr(2), Transport::Udp),
            )
            .unwrap();
        net.run_until(now + Duration::from_secs(2));
        let now = net.now();
        let _ = net.endpoint(a).cancel(now, d);
        drain_and_check(&mut net, seed);
        let ea = net.take_events(a);
        let eb = net.take_events(b);
        assert_eq!(ended(&ea), 1, "seed {seed}: {ea:?}");
        assert_eq!(established(&ea), 0, "seed {seed}");
        if incoming_tx(&eb).is_some() {
            assert_eq!(ended(&eb), 1, "seed {seed}: {eb:?}");
        }
    }
}
