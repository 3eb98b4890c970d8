//! Every datagram duplicated (and 20% lost): the INVITE reaches the handler once (§17.2.3), the
//! retransmitted INVITE gets the last response again.

mod common;
use common::*;
use parrot_proto::sim::LinkConfig;
use parrot_proto::{Event, InviteRequest, Transport};
use std::time::Duration;

#[test]
fn duplicated_invite_reaches_the_handler_once_for_1000_seeds() {
    for seed in 0..seeds() {
        let link = LinkConfig {
            loss: 0.2,
            duplicate: 1.0,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(80),
        };
        let (mut net, a, b) = pair(seed, link);
        let now = net.now();
        let d = net
            .endpoint(a)
            .invite(
                now,
                InviteRequest::new("sip:a@10.0.0.1", "sip:b@10.0.0.2", addr(2), Transport::Udp),
            )
            .unwrap();
        net.run_until(now + Duration::from_secs(40));
        let now = net.now();
        let _ = net.endpoint(a).bye(now, d);
        drain_and_check(&mut net, seed);
        let eb = net.take_events(b);
        let incoming = count(&eb, |e| matches!(e, Event::IncomingCall { .. }));
        assert!(incoming <= 1, "seed {seed}: {incoming} IncomingCall");
        assert!(established(&eb) <= 1, "seed {seed}");
        assert_eq!(ended(&net.take_events(a)), 1, "seed {seed}");
    }
}
