//! re-INVITE glare (RFC 3261 §14.1, §14.2): both sides re-INVITE at once, both get 491, both
//! back off (2.1-4 s for the Call-ID owner, 0-2 s for the other) and both re-INVITEs succeed.

mod common;
use common::*;
use parrot_proto::{Body, Event, InviteRequest, Method, Transport};
use std::time::Duration;

fn glare(seed: u64, loss: f64) -> (usize, usize) {
    let (mut net, a, b) = pair(seed, lossy(loss));
    let now = net.now();
    let d = net
        .endpoint(a)
        .invite(
            now,
            InviteRequest::new("sip:a@10.0.0.1", "sip:b@10.0.0.2", addr(2), Transport::Udp),
        )
        .unwrap();
    let end = now + Duration::from_secs(60);
    while net.now() < end && !(established(net.events(a)) > 0 && established(net.events(b)) > 0) {
        if !net.step() {
            break;
        }
    }
    let db = net.events(b).iter().find_map(|e| match e {
        Event::IncomingCall { dialog, .. } => Some(*dialog),
        _ => None,
    });
    let mut ok = (0, 0);
    if let (Some(db), true) = (
        db,
        established(net.events(a)) > 0 && established(net.events(b)) > 0,
    ) {
        let t = net.now() + Duration::from_secs(1);
        net.run_until(t);
        let now = net.now();
        let ra = net.endpoint(a).request_in_dialog(
            now,
            d,
            Method::Invite,
            vec![],
            Some(Body::sdp(SDP_OFFER)),
        );
        let rb = net.endpoint(b).request_in_dialog(
            now,
            db,
            Method::Invite,
            vec![],
            Some(Body::sdp(SDP_ANSWER)),
        );
        let t = net.now() + Duration::from_secs(60);
        net.run_until(t);
        let got = |evs: &[Event], r: Result<parrot_proto::RequestId, _>| {
            let Ok(r) = r else { return 0 };
            evs.iter()
                .filter(|e| matches!(e, Event::ResponseReceived { request, status: 200, .. } if *request == r))
                .count()
        };
        ok = (got(net.events(a), ra), got(net.events(b), rb));
        let now = net.now();
        let _ = net.endpoint(a).bye(now, d);
    }
    drain_and_check(&mut net, seed);
    ok
}

#[test]
fn glare_on_a_clean_link_resolves_with_491_and_back_off() {
    assert_eq!(glare(2, 0.0), (1, 1));
}

#[test]
fn glare_converges_for_1000_seeds_at_20_percent_loss() {
    let mut both = 0;
    for seed in 0..seeds() {
        if glare(seed, 0.2) == (1, 1) {
            both += 1;
        }
    }
    eprintln!(
        "glare resolved on both sides for {both} of {} seeds",
        seeds()
    );
    assert!(
        both as f64 >= seeds() as f64 * 0.8,
        "only {both} glares resolved"
    );
}
