//! Bounded memory: bytes per idle confirmed dialog stay under the 2 KiB.

mod common;
use common::*;
use parrot_proto::{Body, InviteRequest, Transport};
use std::time::Duration;

#[test]
fn idle_confirmed_dialog_costs_under_2_kib() {
    let (mut net, a, b) = pair(1, lossy(0.0));
    for _ in 0..200 {
        let now = net.now();
        let mut req = InviteRequest::new(
            "sip:alice@10.0.0.1",
            "sip:bob@10.0.0.2",
            addr(2),
            Transport::Udp,
        );
        req.body = Some(Body::sdp(SDP_OFFER));
        net.endpoint(a).invite(now, req).unwrap();
    }
    let t = net.now() + Duration::from_secs(60);
    net.run_until(t);
    for n in [a, b] {
        let ep = net.endpoint_ref(n);
        assert_eq!(ep.server_transactions() + ep.client_transactions(), 0);
        let m = ep.memory_stats();
        assert_eq!(m.dialogs, 200);
        let per = m.dialog_bytes / m.dialogs;
        assert!(per < 2048, "{per} bytes per idle dialog");
    }
}
