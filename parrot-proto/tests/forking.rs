//! A forked INVITE answered 200 by two phones (RFC 3261 §13.2.2.4): the caller keeps one
//! dialog, ACKs the other 2xx and ends it with BYE.

mod common;
use common::*;
use parrot_proto::sim::Network;
use parrot_proto::{EndReason, Endpoint, Event, InviteRequest, Transport, UasHandler};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn forked_call(seed: u64, loss: f64) {
    let mut net = Network::new(Instant::now(), seed, lossy(loss));
    let a = net.add(addr(1), Endpoint::new(config(1), seed * 3 + 1));
    let mut b1 = Endpoint::new(config(2), seed * 3 + 2);
    b1.set_uas_handler_factory(|| Box::new(Callee) as Box<dyn UasHandler>);
    let mut b2 = Endpoint::new(config(3), seed * 3 + 3);
    b2.set_uas_handler_factory(|| Box::new(Callee) as Box<dyn UasHandler>);
    let b1 = net.add(addr(2), b1);
    let b2 = net.add(addr(3), b2);
    let fork: SocketAddr = SocketAddr::from(([10, 0, 0, 9], 5060));
    net.fork(fork, b1);
    net.fork(fork, b2);
    let now = net.now();
    let d = net
        .endpoint(a)
        .invite(
            now,
            InviteRequest::new("sip:a@10.0.0.1", "sip:b@example.com", fork, Transport::Udp),
        )
        .unwrap();
    net.run_until(now + Duration::from_secs(40));
    let now = net.now();
    let _ = net.endpoint(a).bye(now, d);
    drain_and_check(&mut net, seed);
    let ea = net.take_events(a);
    assert!(
        established(&ea) <= 1,
        "seed {seed}: one dialog survives: {ea:?}"
    );
    assert_eq!(ended(&ea), 1, "seed {seed}");
    for b in [b1, b2] {
        let eb = net.take_events(b);
        assert!(ended(&eb) <= 1, "seed {seed}: {eb:?}");
        if count(&eb, |e| matches!(e, Event::IncomingCall { .. })) == 1 {
            assert_eq!(ended(&eb), 1, "seed {seed}: {eb:?}");
        }
    }
}

#[test]
fn forked_invite_with_two_2xx_keeps_one_dialog_and_byes_the_other() {
    forked_call(11, 0.0);
}

#[test]
fn forked_invite_converges_for_1000_seeds_at_20_percent_loss() {
    for seed in 0..seeds() {
        forked_call(seed, 0.2);
    }
}

#[test]
fn the_extra_2xx_gets_a_bye_on_a_clean_link() {
    let mut net = Network::new(Instant::now(), 5, lossy(0.0));
    let a = net.add(addr(1), Endpoint::new(config(1), 1));
    let mut b1 = Endpoint::new(config(2), 2);
    b1.set_uas_handler_factory(|| Box::new(Callee) as Box<dyn UasHandler>);
    let mut b2 = Endpoint::new(config(3), 3);
    b2.set_uas_handler_factory(|| Box::new(Callee) as Box<dyn UasHandler>);
    let b1 = net.add(addr(2), b1);
    let b2 = net.add(addr(3), b2);
    let fork = SocketAddr::from(([10, 0, 0, 9], 5060));
    net.fork(fork, b1);
    net.fork(fork, b2);
    let now = net.now();
    net.endpoint(a)
        .invite(
            now,
            InviteRequest::new("sip:a@10.0.0.1", "sip:b@example.com", fork, Transport::Udp),
        )
        .unwrap();
    net.run_until(now + Duration::from_secs(2));
    let byes = [b1, b2]
        .iter()
        .map(|b| {
            count(net.events(*b), |e| {
                matches!(
                    e,
                    Event::CallEnded {
                        reason: EndReason::RemoteBye,
                        ..
                    }
                )
            })
        })
        .sum::<usize>();
    assert_eq!(byes, 1, "exactly one fork was hung up");
    assert_eq!(net.endpoint_ref(a).dialogs(), 1);
}
