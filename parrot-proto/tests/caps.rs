//! Bounded state: past the caps on transactions and dialogs, new requests get 503 with
//! Retry-After and nothing is stored; a flood of distinct INVITEs cannot grow the tables.

mod common;
use common::*;
use parrot_proto::{Endpoint, EndpointConfig, Message, Transport, UasHandler};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[test]
fn flood_of_distinct_invites_is_capped_with_503_retry_after() {
    let mut ep = callee(EndpointConfig {
        max_transactions: 50,
        max_lingering: 30,
        max_dialogs: 20,
        ..config(2)
    });
    let (now, src) = (Instant::now(), peer());
    let mut busy = 0;
    for i in 0..5000 {
        let r = format!("INVITE sip:b@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK{i}\r\nMax-Forwards: 70\r\nFrom: <sip:a@x>;tag={i}\r\nTo: <sip:b@y>\r\nCall-ID: flood-{i}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
        ep.handle_datagram(now, addr(2), src, Transport::Udp, r.into_bytes().into());
        while let Some(t) = ep.poll_transmit() {
            let m = Message::parse(t.payload).unwrap();
            if m.status() == Some(503) {
                busy += 1;
                assert!(m.retry_after().unwrap().is_some());
            }
        }
        while ep.poll_event().is_some() {}
        assert!(ep.server_transactions() + ep.client_transactions() <= 50 + 30);
        assert!(ep.dialogs() <= 20);
    }
    assert!(busy >= 4900);
    // Without ACKs the calls end by themselves (§13.3.1.4) and every table drains.
    drains_within_ten_minutes(&mut ep, now);
}

#[test]
fn answered_transactions_past_max_lingering_let_the_oldest_go_and_new_requests_are_still_taken() {
    let mut ep = callee(EndpointConfig {
        max_transactions: 10,
        max_lingering: 100,
        ..config(2)
    });
    let (now, src) = (Instant::now(), peer());
    let options = |i: u32| {
        format!("OPTIONS sip:b@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKo{i}\r\nMax-Forwards: 70\r\nFrom: <sip:a@x>;tag={i}\r\nTo: <sip:b@y>\r\nCall-ID: ping-{i}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
    };
    let mut answered = 0;
    for i in 0..1000 {
        ep.handle_datagram(
            now,
            addr(2),
            src,
            Transport::Udp,
            options(i).into_bytes().into(),
        );
        while let Some(t) = ep.poll_transmit() {
            let m = Message::parse(t.payload).unwrap();
            assert_ne!(m.status(), Some(503), "request {i} refused");
            answered += 1;
        }
        while ep.poll_event().is_some() {}
        // Each answered transaction lingers for Timer J (32 s); at most 100 are kept.
        assert!(
            ep.server_transactions() <= 100,
            "{}",
            ep.server_transactions()
        );
    }
    assert_eq!(answered, 1000);
    // The newest still absorbs a retransmission: the same response again, byte for byte.
    let again = |ep: &mut Endpoint, i: u32| {
        ep.handle_datagram(
            now,
            addr(2),
            src,
            Transport::Udp,
            options(i).into_bytes().into(),
        );
        let t = ep.poll_transmit().expect("an answer");
        while ep.poll_event().is_some() {}
        t.payload
    };
    let first = again(&mut ep, 999);
    assert_eq!(again(&mut ep, 999), first);
    drains_within_ten_minutes(&mut ep, now);
}

/// Runs every timer out, dropping what the endpoint sends; every table must be empty within
/// ten minutes of virtual time.
fn drains_within_ten_minutes(ep: &mut Endpoint, now: Instant) {
    while let Some(t) = ep.poll_timeout() {
        ep.handle_timeout(t);
        while ep.poll_transmit().is_some() {}
        while ep.poll_event().is_some() {}
        assert!(t - now < Duration::from_secs(600));
    }
    assert!(ep.is_idle());
}

/// An endpoint whose calls are answered by [`Callee`].
fn callee(cfg: EndpointConfig) -> Endpoint {
    let mut ep = Endpoint::new(cfg, 1u64);
    ep.set_uas_handler_factory(|| Box::new(Callee) as Box<dyn UasHandler>);
    ep
}

/// Where the requests come from.
fn peer() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], 5060))
}

/// An INVITE for call `i` (its own Call-ID, From tag and branch), as a datagram.
fn invite(i: u32) -> bytes::Bytes {
    format!("INVITE sip:b@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKs{i}\r\nMax-Forwards: 70\r\nFrom: <sip:a@x>;tag={i}\r\nTo: <sip:b@y>\r\nCall-ID: shed-{i}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n").into_bytes().into()
}

/// A CRLF keep-alive (RFC 5626 §3.5.1): a datagram that asks nothing.
fn keep_alive() -> bytes::Bytes {
    bytes::Bytes::from_static(b"\r\n\r\n")
}

/// The status of every response the endpoint sends now, and the To tag of the last one.
fn answers(ep: &mut Endpoint) -> (Vec<u16>, Option<String>) {
    let (mut codes, mut tag) = (Vec::new(), None);
    while let Some(t) = ep.poll_transmit() {
        let m = Message::parse(t.payload).unwrap();
        if let Some(code) = m.status() {
            codes.push(code);
            if code == 503 {
                assert!(
                    m.retry_after().unwrap().is_some(),
                    "503 without Retry-After"
                );
            }
            tag = m.to_header().unwrap().tag().map(str::to_owned);
        }
    }
    while ep.poll_event().is_some() {}
    (codes, tag)
}

#[test]
fn new_invites_get_503_while_the_receive_queue_has_not_emptied_for_shed_after() {
    let mut ep = callee(EndpointConfig {
        shed_after: Some(Duration::from_millis(100)),
        ..config(2)
    });
    let (t0, src) = (Instant::now(), peer());
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    ep.receive_queue_empty();
    ep.handle_datagram(at(0), addr(2), src, Transport::Udp, invite(0));
    let (codes, tag) = answers(&mut ep);
    assert_eq!(codes.last(), Some(&200));
    // Still within `shed_after` of the first datagram since the queue was empty: taken.
    ep.handle_datagram(at(99), addr(2), src, Transport::Udp, invite(1));
    assert_eq!(answers(&mut ep).0.last(), Some(&200));
    let dialogs = ep.dialogs();
    // 100 ms behind but only two datagrams taken: one slow turn of the loop, not a flood.
    assert!(!ep.is_shedding(at(100)));
    for _ in 2..ep.config().shed_backlog {
        ep.handle_datagram(at(100), addr(2), src, Transport::Udp, keep_alive());
    }
    // Behind for 100 ms with a backlog: a new INVITE is refused and nothing is kept for it.
    assert!(ep.is_shedding(at(100)));
    ep.handle_datagram(at(100), addr(2), src, Transport::Udp, invite(2));
    assert_eq!(answers(&mut ep).0, vec![503]);
    assert_eq!(ep.dialogs(), dialogs);
    assert_eq!(ep.shed_requests(), 1);
    // A retransmission of an answered INVITE is its transaction's (absorbed in Accepted,
    // RFC 6026 §8.7; the 2xx is resent on the dialog's own timer), not a new request.
    ep.handle_datagram(at(101), addr(2), src, Transport::Udp, invite(0));
    assert_eq!(answers(&mut ep).0, Vec::<u16>::new());
    assert_eq!(ep.shed_requests(), 1);
    // A BYE inside a dialog is served: ending calls is what lets the queue empty.
    let tag = tag.expect("the 200 has a To tag");
    let bye = format!("BYE sip:b@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKb0\r\nMax-Forwards: 70\r\nFrom: <sip:a@x>;tag=0\r\nTo: <sip:b@y>;tag={tag}\r\nCall-ID: shed-0\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n");
    ep.handle_datagram(
        at(102),
        addr(2),
        src,
        Transport::Udp,
        bye.into_bytes().into(),
    );
    assert_eq!(answers(&mut ep).0, vec![200]);
    // Once the queue has emptied, new calls are taken again.
    ep.receive_queue_empty();
    assert!(!ep.is_shedding(at(103)));
    ep.handle_datagram(at(103), addr(2), src, Transport::Udp, invite(3));
    assert_eq!(answers(&mut ep).0.last(), Some(&200));
    assert_eq!(ep.shed_requests(), 1);
}

#[test]
fn an_endpoint_whose_caller_never_reports_an_empty_queue_never_sheds() {
    let mut ep = callee(EndpointConfig {
        shed_after: Some(Duration::from_millis(100)),
        ..config(2)
    });
    let (t0, src) = (Instant::now(), peer());
    for i in 0..3 {
        let now = t0 + Duration::from_secs(u64::from(i));
        for _ in 0..ep.config().shed_backlog {
            ep.handle_datagram(now, addr(2), src, Transport::Udp, keep_alive());
        }
        ep.handle_datagram(now, addr(2), src, Transport::Udp, invite(i));
        assert_eq!(answers(&mut ep).0.last(), Some(&200), "call {i}");
    }
    assert_eq!(ep.shed_requests(), 0);
}
