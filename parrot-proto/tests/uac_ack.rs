//! The ACK of a 2xx (RFC 3261 §13.2.2.4): not kept by the UAC, built again for each
//! retransmission of the 2xx, with the same dialog headers and CSeq.

mod common;
use common::*;
use parrot_proto::{Body, InviteRequest, Message, Transport};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// The lines of an ACK that §13.2.2.4 fixes (everything but the Via's branch).
fn dialog_lines(ack: &Message) -> Vec<String> {
    let mut lines = vec![ack.request_uri_str().unwrap_or("").to_owned()];
    for h in ack.headers() {
        let v = h.value_unfolded().to_string();
        let v = match v.find(";branch=") {
            Some(i) => v[..i].to_owned(),
            None => v,
        };
        lines.push(format!("{}: {}", h.name_str, v));
    }
    lines
}

#[test]
fn a_retransmitted_2xx_gets_an_ack_built_again_with_the_same_dialog_lines() {
    let (mut net, a, _b) = pair(7, lossy(0.0));
    let acks = Rc::new(RefCell::new(Vec::<Vec<u8>>::new()));
    let seen = acks.clone();
    // The first ACK is lost, so the UAS retransmits its 200 and the UAC ACKs it again.
    net.set_filter(move |p| {
        if is_request(p, "ACK") {
            seen.borrow_mut().push(p.to_vec());
            return seen.borrow().len() == 1;
        }
        false
    });
    let now = net.now();
    let mut req = InviteRequest::new("sip:a@10.0.0.1", "sip:b@10.0.0.2", addr(2), Transport::Udp);
    req.body = Some(Body::sdp(SDP_OFFER));
    net.endpoint(a).invite(now, req).unwrap();
    let t = net.now() + Duration::from_secs(5);
    net.run_until(t);
    let acks = acks.borrow();
    assert!(acks.len() >= 2, "{} ACKs", acks.len());
    let first = Message::parse(acks[0].clone()).unwrap();
    for again in &acks[1..] {
        let again = Message::parse(again.clone()).unwrap();
        assert_eq!(dialog_lines(&again), dialog_lines(&first));
        assert_eq!(again.cseq().unwrap().seq, first.cseq().unwrap().seq);
    }
}
