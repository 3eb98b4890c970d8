//! The UAS core's checks and answers (RFC 3261 §8.2, §9.2, §12.2.2, §17.2.3, §18.2.2,
//! RFC 3581), one request at a time straight into an endpoint.

mod common;
use common::*;
use parrot_proto::{
    Action, Endpoint, EndpointConfig, Message, Reply, Request, Transmit, Transport, UasHandler,
};
use std::net::SocketAddr;
use std::time::Instant;

struct Ring;
impl UasHandler for Ring {
    fn handle_invite(&mut self, _r: &Request<'_>) -> Action {
        Action::respond(180)
    }
    fn handle_options(&mut self, _r: &Request<'_>) -> Action {
        Action::Respond(Reply::new(200))
    }
}

fn endpoint(cfg: EndpointConfig) -> Endpoint {
    let mut ep = Endpoint::new(cfg, 9u64);
    ep.set_uas_handler_factory(|| Box::new(Ring) as Box<dyn UasHandler>);
    ep
}

fn src() -> SocketAddr {
    SocketAddr::from(([198, 51, 100, 7], 40000))
}

fn feed(ep: &mut Endpoint, now: Instant, text: &str) -> Vec<(Transmit, Message)> {
    let data = text.replace('\n', "\r\n");
    ep.handle_datagram(
        now,
        addr(2),
        src(),
        Transport::Udp,
        data.into_bytes().into(),
    );
    let mut out = Vec::new();
    while let Some(t) = ep.poll_transmit() {
        let m = Message::parse(t.payload.clone()).expect("we only send parseable messages");
        out.push((t, m));
    }
    while ep.poll_event().is_some() {}
    out
}

fn statuses(out: &[(Transmit, Message)]) -> Vec<u16> {
    out.iter().filter_map(|(_, m)| m.status()).collect()
}

fn request(method: &str, branch: &str, extra: &str) -> String {
    format!(
        "{method} sip:bob@10.0.0.2 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{branch};rport\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: <sip:bob@example.com>\nCall-ID: call-{branch}\nCSeq: 1 {method}\n{extra}Content-Length: 0\n\n"
    )
}

#[test]
fn invite_gets_100_trying_then_the_handlers_answer() {
    let mut ep = endpoint(EndpointConfig::default());
    let out = feed(&mut ep, Instant::now(), &request("INVITE", "i1", ""));
    assert_eq!(statuses(&out), vec![100, 180]);
    assert!(
        out[0].1.to_header().unwrap().tag().is_none(),
        "100 carries no To tag"
    );
    assert!(out[1].1.to_header().unwrap().tag().is_some());
    assert!(
        out[1].1.contacts().next().is_some(),
        "1xx to INVITE carries Contact"
    );
}

#[test]
fn responses_carry_received_and_rport_and_go_to_the_source() {
    let mut ep = endpoint(EndpointConfig::default());
    let out = feed(&mut ep, Instant::now(), &request("OPTIONS", "o1", ""));
    let (t, m) = &out[0];
    assert_eq!(t.dst, src());
    let via = m.top_via().unwrap();
    assert_eq!(via.received(), Some("198.51.100.7"));
    assert_eq!(via.rport(), Some(Some(40000)));
}

#[test]
fn without_rport_responses_go_to_the_via_port() {
    let mut ep = endpoint(EndpointConfig::default());
    let r = request("OPTIONS", "o2", "").replace(";rport", "");
    let out = feed(&mut ep, Instant::now(), &r);
    assert_eq!(out[0].0.dst, SocketAddr::from(([198, 51, 100, 7], 5060)));
}

#[test]
fn unknown_method_gets_405_with_allow() {
    let mut ep = endpoint(EndpointConfig::default());
    let out = feed(&mut ep, Instant::now(), &request("FOO", "f1", ""));
    assert_eq!(statuses(&out), vec![405]);
    assert!(out[0].1.allow().any(|m| m == "INVITE"));
}

#[test]
fn unsupported_require_gets_420_with_unsupported() {
    let mut ep = endpoint(EndpointConfig::default());
    let out = feed(
        &mut ep,
        Instant::now(),
        &request("OPTIONS", "r1", "Require: 100rel, foo\n"),
    );
    assert_eq!(statuses(&out), vec![420]);
    let u: Vec<&str> = out[0].1.unsupported().collect();
    assert_eq!(u, vec!["100rel", "foo"]);
}

#[test]
fn unknown_body_type_gets_415_with_accept() {
    let mut ep = endpoint(EndpointConfig::default());
    let r = request("MESSAGE", "m1", "Content-Type: application/x-strange\n")
        .replace("Content-Length: 0\n\n", "Content-Length: 2\n\nhi");
    let out = feed(&mut ep, Instant::now(), &r);
    assert_eq!(statuses(&out), vec![415]);
    assert!(out[0].1.header_str("Accept").is_some());
}

#[test]
fn a_body_encoding_other_than_identity_gets_415() {
    // Long and compact names; `identity` (any case) alone is accepted (§8.2.3).
    for (lines, refused) in [
        ("Content-Encoding: gzip\n", true),
        ("e: gzip\n", true),
        ("Content-Encoding: identity, gzip\n", true),
        ("Content-Encoding: identity\nContent-Encoding: gzip\n", true),
        ("Content-Encoding: IDENTITY\n", false),
        ("", false),
    ] {
        let mut ep = endpoint(EndpointConfig::default());
        let extra = format!("Content-Type: application/sdp\n{lines}");
        let r = request("OPTIONS", "e1", &extra)
            .replace("Content-Length: 0\n\n", "Content-Length: 2\n\nv=");
        let out = feed(&mut ep, Instant::now(), &r);
        let expected = if refused { vec![415] } else { vec![200] };
        assert_eq!(statuses(&out), expected, "{lines:?}");
    }
}

#[test]
fn configured_server_and_contact_user_are_written_only_without_line_breaks() {
    let cfg = |ua: &str, user: &str| EndpointConfig {
        user_agent: Some(ua.to_owned()),
        contact_user: user.to_owned(),
        ..EndpointConfig::default()
    };
    let mut ep = endpoint(cfg("Parrot/1", "parrot"));
    let out = feed(&mut ep, Instant::now(), &request("INVITE", "s1", ""));
    assert_eq!(statuses(&out), vec![100, 180]);
    assert!(out.iter().all(|(_, m)| m.server() == Some("Parrot/1")));
    for (ua, user) in [
        ("Parrot\r\nX-Injected: 1", "parrot"),
        ("Parrot/1", "parrot\r\nX-Injected: 1"),
    ] {
        let mut ep = endpoint(cfg(ua, user));
        let out = feed(&mut ep, Instant::now(), &request("INVITE", "s2", ""));
        assert!(
            out.iter()
                .all(|(_, m)| m.header_str("X-Injected").is_none()),
            "{ua:?} {user:?}"
        );
    }
}

#[test]
fn missing_call_id_gets_400() {
    let mut ep = endpoint(EndpointConfig::default());
    let r = request("OPTIONS", "c1", "").replace("Call-ID: call-c1\n", "");
    let out = feed(&mut ep, Instant::now(), &r);
    assert_eq!(statuses(&out), vec![400]);
}

#[test]
fn unknown_uri_scheme_gets_416() {
    let mut ep = endpoint(EndpointConfig::default());
    let r = request("OPTIONS", "u1", "")
        .replace("OPTIONS sip:bob@10.0.0.2", "OPTIONS http://example.com/x");
    let out = feed(&mut ep, Instant::now(), &r);
    assert_eq!(statuses(&out), vec![416]);
}

#[test]
fn max_forwards_zero_gets_483() {
    let mut ep = endpoint(EndpointConfig::default());
    let r = request("INVITE", "mf", "").replace("Max-Forwards: 70", "Max-Forwards: 0");
    let out = feed(&mut ep, Instant::now(), &r);
    assert_eq!(statuses(&out), vec![483]);
}

#[test]
fn merged_request_gets_482() {
    let mut ep = endpoint(EndpointConfig::default());
    let now = Instant::now();
    let first = request("INVITE", "x1", "");
    feed(&mut ep, now, &first);
    let second = first.replace("branch=z9hG4bKx1", "branch=z9hG4bKx2");
    let out = feed(&mut ep, now, &second);
    assert_eq!(statuses(&out), vec![482]);
}

#[test]
fn bye_for_an_unknown_dialog_gets_481() {
    let mut ep = endpoint(EndpointConfig::default());
    let r = request("BYE", "b1", "").replace(
        "To: <sip:bob@example.com>",
        "To: <sip:bob@example.com>;tag=nope",
    );
    let out = feed(&mut ep, Instant::now(), &r);
    assert_eq!(statuses(&out), vec![481]);
}

#[test]
fn cancel_matching_nothing_gets_481() {
    let mut ep = endpoint(EndpointConfig::default());
    let out = feed(&mut ep, Instant::now(), &request("CANCEL", "nothing", ""));
    assert_eq!(statuses(&out), vec![481]);
}

#[test]
fn cancel_gets_200_and_the_invite_487() {
    let mut ep = endpoint(EndpointConfig::default());
    let now = Instant::now();
    feed(&mut ep, now, &request("INVITE", "k1", ""));
    let cancel = request("CANCEL", "k1", "");
    let out = feed(&mut ep, now, &cancel);
    let codes: Vec<(u16, String)> = out
        .iter()
        .map(|(_, m)| (m.status().unwrap(), m.cseq().unwrap().method.to_string()))
        .collect();
    assert_eq!(codes, vec![(200, "CANCEL".into()), (487, "INVITE".into())]);
    assert_eq!(ep.dialogs(), 0);
    // The ACK for the 487 is absorbed and never answered.
    let ack = request("ACK", "k1", "").replace(
        "To: <sip:bob@example.com>",
        &format!("To: {}", out[1].1.header_str("To").unwrap()),
    );
    assert!(feed(&mut ep, now, &ack).is_empty());
}

#[test]
fn retransmitted_request_gets_the_last_response_again() {
    let mut ep = endpoint(EndpointConfig::default());
    let now = Instant::now();
    let r = request("OPTIONS", "rt", "");
    let a = feed(&mut ep, now, &r);
    let b = feed(&mut ep, now, &r);
    assert_eq!(a.len(), 1);
    assert_eq!(b.len(), 1);
    assert_eq!(
        a[0].0.payload, b[0].0.payload,
        "byte-identical retransmission"
    );
    let inv = request("INVITE", "rt2", "");
    feed(&mut ep, now, &inv);
    let again = feed(&mut ep, now, &inv);
    assert_eq!(statuses(&again), vec![180]);
}

#[test]
fn ack_matching_nothing_is_never_answered() {
    let mut ep = endpoint(EndpointConfig::default());
    let r = request("ACK", "a1", "").replace(
        "To: <sip:bob@example.com>",
        "To: <sip:bob@example.com>;tag=zz",
    );
    assert!(feed(&mut ep, Instant::now(), &r).is_empty());
}

#[test]
fn rfc2543_request_without_magic_cookie_is_matched_by_its_fields() {
    let mut ep = endpoint(EndpointConfig::default());
    let now = Instant::now();
    let r = request("OPTIONS", "x", "").replace("branch=z9hG4bKx", "branch=oldstyle");
    let a = feed(&mut ep, now, &r);
    let b = feed(&mut ep, now, &r);
    assert_eq!(a[0].0.payload, b[0].0.payload);
}

#[test]
fn deferred_answer_through_respond() {
    struct Later;
    impl UasHandler for Later {
        fn handle_invite(&mut self, _r: &Request<'_>) -> Action {
            Action::NoReply
        }
    }
    let mut ep = Endpoint::new(EndpointConfig::default(), 1u64);
    ep.set_uas_handler_factory(|| Box::new(Later) as Box<dyn UasHandler>);
    let now = Instant::now();
    let data = request("INVITE", "d1", "").replace('\n', "\r\n");
    ep.handle_datagram(
        now,
        addr(2),
        src(),
        Transport::Udp,
        data.into_bytes().into(),
    );
    let tx = std::iter::from_fn(|| ep.poll_event())
        .find_map(|e| match e {
            parrot_proto::Event::IncomingCall { tx, .. } => Some(tx),
            _ => None,
        })
        .unwrap();
    while ep.poll_transmit().is_some() {}
    ep.respond(now, tx, Reply::new(486)).unwrap();
    let t = ep.poll_transmit().unwrap();
    assert!(t.payload.starts_with(b"SIP/2.0 486"));
    assert_eq!(
        ep.respond(now, tx, Reply::new(200)),
        Err(parrot_proto::CommandError::AlreadyAnswered)
    );
}

#[test]
fn handler_answers_later_from_an_application_message() {
    struct Lookup;
    impl UasHandler for Lookup {
        fn handle_invite(&mut self, _r: &Request<'_>) -> Action {
            Action::NoReply // e.g. waiting for a database
        }
        fn handle_app_message(
            &mut self,
            _dialog: Option<parrot_proto::DialogId>,
            msg: &mut dyn std::any::Any,
        ) -> Action {
            match msg.downcast_ref::<u16>() {
                Some(code) => Action::respond(*code),
                None => Action::NoReply,
            }
        }
    }
    let mut ep = Endpoint::new(EndpointConfig::default(), 1u64);
    ep.set_uas_handler_factory(|| Box::new(Lookup) as Box<dyn UasHandler>);
    let now = Instant::now();
    let data = request("INVITE", "db1", "").replace('\n', "\r\n");
    ep.handle_datagram(
        now,
        addr(2),
        src(),
        Transport::Udp,
        data.into_bytes().into(),
    );
    let d = std::iter::from_fn(|| ep.poll_event())
        .find_map(|e| match e {
            parrot_proto::Event::IncomingCall { dialog, .. } => Some(dialog),
            _ => None,
        })
        .unwrap();
    while ep.poll_transmit().is_some() {}
    ep.send_to_handler(now, Some(d), &mut 486u16).unwrap();
    let t = ep.poll_transmit().unwrap();
    assert!(t.payload.starts_with(b"SIP/2.0 486"));
}

#[test]
fn with_a_trying_delay_an_invite_answered_at_once_gets_no_100() {
    let cfg = EndpointConfig {
        trying_delay: std::time::Duration::from_millis(100),
        ..EndpointConfig::default()
    };
    let mut ep = endpoint(cfg);
    let now = Instant::now();
    let out = feed(&mut ep, now, &request("INVITE", "t1", ""));
    assert_eq!(statuses(&out), vec![180], "the 180 makes the 100 needless");
    ep.handle_timeout(now + std::time::Duration::from_millis(150));
    assert!(
        ep.poll_transmit().is_none(),
        "no late 100 after the 180 went"
    );
}

#[test]
fn with_a_trying_delay_an_unanswered_invite_gets_its_100_when_the_delay_runs_out() {
    struct Later;
    impl UasHandler for Later {
        fn handle_invite(&mut self, _r: &Request<'_>) -> Action {
            Action::NoReply
        }
    }
    let delay = std::time::Duration::from_millis(100);
    let cfg = EndpointConfig {
        trying_delay: delay,
        ..EndpointConfig::default()
    };
    let mut ep = Endpoint::new(cfg, 1u64);
    ep.set_uas_handler_factory(|| Box::new(Later) as Box<dyn UasHandler>);
    let now = Instant::now();
    let out = feed(&mut ep, now, &request("INVITE", "t2", ""));
    assert!(out.is_empty(), "nothing before the delay runs out");
    assert_eq!(ep.poll_timeout(), Some(now + delay));
    ep.handle_timeout(now + delay);
    let t = ep.poll_transmit().expect("the held-back 100");
    let m = Message::parse(t.payload).unwrap();
    assert_eq!(m.status(), Some(100));
    assert!(
        m.to_header().unwrap().tag().is_none(),
        "100 carries no To tag"
    );
    assert!(ep.poll_transmit().is_none());
}
