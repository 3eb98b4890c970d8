//! A server transaction past its final response keeps only what answers a retransmission
//! (issue 5): the retransmitted BYE gets the same 200 again until Timer J (§17.2.2), an ACK for
//! the 2xx still reaches the call during Timer L (RFC 6026 §8.7), and the lingering record is
//! small.

use bytes::Bytes;
use parrot_proto::{Endpoint, EndpointConfig, Event, Reply, Transport};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn b_addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 2], 5060))
}
fn a_addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], 5060))
}

fn request(method: &str, to_tag: &str, cseq: u32, branch: &str) -> Bytes {
    let to = if to_tag.is_empty() {
        "<sip:bob@10.0.0.2>".to_owned()
    } else {
        format!("<sip:bob@10.0.0.2>;tag={to_tag}")
    };
    Bytes::from(format!(
        "{method} sip:bob@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@10.0.0.1>;tag=a1\r\nTo: {to}\r\nCall-ID: c1@10.0.0.1\r\nCSeq: {cseq} {method}\r\nContact: <sip:alice@10.0.0.1:5060>\r\nContent-Length: 0\r\n\r\n"
    ))
}

fn drain(ep: &mut Endpoint) -> Vec<Bytes> {
    let mut out = Vec::new();
    while let Some(t) = ep.poll_transmit() {
        out.push(t.payload);
    }
    out
}

fn to_tag_of(resp: &[u8]) -> String {
    let s = std::str::from_utf8(resp).unwrap();
    let to = s.lines().find(|l| l.starts_with("To:")).unwrap();
    to.split(";tag=").nth(1).unwrap().trim().to_owned()
}

#[test]
fn lingering_server_transactions_answer_retransmissions_and_stay_small() {
    let cfg = EndpointConfig {
        local_addrs: vec![(Transport::Udp, b_addr())],
        ..EndpointConfig::default()
    };
    let mut b = Endpoint::new(cfg, 5u64);
    let mut now = Instant::now();
    let invite = request("INVITE", "", 1, "z9hG4bKinv1");
    b.handle_datagram(now, b_addr(), a_addr(), Transport::Udp, invite.clone());
    assert_eq!(drain(&mut b).len(), 1, "100 Trying");
    let mut tx = None;
    while let Some(e) = b.poll_event() {
        if let Event::IncomingCall { tx: t, .. } = e {
            tx = Some(t);
        }
    }
    let tx = tx.expect("IncomingCall");
    let live = b.memory_stats().transaction_bytes;
    b.respond(now, tx, Reply::new(200)).unwrap();
    let ok = drain(&mut b);
    assert_eq!(ok.len(), 1);
    let tag = to_tag_of(&ok[0]);
    // Answered: the INVITE transaction lingers for Timer L.
    assert_eq!(b.server_transactions(), 1);
    assert_eq!(b.pending_server_transactions(), vec![]);
    assert_eq!(
        b.respond(now, tx, Reply::new(486)),
        Err(parrot_proto::CommandError::AlreadyAnswered)
    );
    let lingering = b.memory_stats().transaction_bytes;
    assert!(
        lingering * 4 < live,
        "lingering INVITE {lingering} B, live {live} B"
    );
    // A retransmitted INVITE is absorbed (the call retransmits the 2xx itself).
    b.handle_datagram(now, b_addr(), a_addr(), Transport::Udp, invite);
    assert!(drain(&mut b).is_empty());
    // The ACK for the 2xx still reaches the call.
    now += Duration::from_millis(10);
    let ack = request("ACK", &tag, 1, "z9hG4bKack1");
    b.handle_datagram(now, b_addr(), a_addr(), Transport::Udp, ack);
    let mut established = false;
    while let Some(e) = b.poll_event() {
        established |= matches!(e, Event::CallEstablished { .. });
    }
    assert!(established);
    // BYE: 200, then each retransmission gets the same bytes again.
    let bye = request("BYE", &tag, 2, "z9hG4bKbye1");
    b.handle_datagram(now, b_addr(), a_addr(), Transport::Udp, bye.clone());
    let first = drain(&mut b);
    assert_eq!(first.len(), 1);
    assert!(first[0].starts_with(b"SIP/2.0 200 "));
    now += Duration::from_secs(10);
    b.handle_timeout(now);
    b.handle_datagram(now, b_addr(), a_addr(), Transport::Udp, bye.clone());
    assert_eq!(drain(&mut b), first);
    let m = b.memory_stats();
    assert_eq!(m.transactions, 2);
    assert!(
        m.transaction_bytes / 2 < 1024,
        "{} B per lingering transaction",
        m.transaction_bytes / 2
    );
    // Timers L and J run out: nothing is left, and a late BYE finds no dialog.
    now += Duration::from_secs(30);
    b.handle_timeout(now);
    assert_eq!(b.server_transactions(), 0);
    assert!(b.is_idle());
    b.handle_datagram(now, b_addr(), a_addr(), Transport::Udp, bye);
    let late = drain(&mut b);
    assert_eq!(late.len(), 1);
    assert!(late[0].starts_with(b"SIP/2.0 481 "));
}
