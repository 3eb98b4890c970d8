//! Dialog behaviour (RFC 3261 §12-§15) and transports: early dialogs from 1xx with a tag,
//! in-dialog requests with target refresh, UacHandler callbacks, stream framing over TCP with
//! collapsed timers, and transport errors reported to the TU.

mod common;
use common::*;
use parrot_proto::dialog::DialogState;
use parrot_proto::{
    Action, Body, ConnectionId, DialogId, EndReason, Endpoint, EndpointConfig, Event,
    InviteRequest, Message, Method, Request, Transport, UacHandler, UasHandler,
};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl UacHandler for Log {
    fn on_provisional(&mut self, _d: DialogId, r: &Message) {
        self.0
            .lock()
            .unwrap()
            .push(format!("provisional {}", r.status().unwrap_or(0)));
    }
    fn on_success(&mut self, _d: DialogId, r: &Message) {
        self.0
            .lock()
            .unwrap()
            .push(format!("success {}", r.status().unwrap_or(0)));
    }
    fn on_call_established(&mut self, _d: DialogId, remote: Option<&Body>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("established {}", remote.is_some()));
    }
    fn on_call_ended(&mut self, _d: DialogId, reason: &EndReason) {
        self.0.lock().unwrap().push(format!("ended {reason:?}"));
    }
}

struct RingThenAnswer;
impl UasHandler for RingThenAnswer {
    fn handle_invite(&mut self, _r: &Request<'_>) -> Action {
        Action::respond(180)
    }
    fn handle_info(&mut self, _r: &Request<'_>) -> Action {
        Action::respond(200)
    }
}

#[test]
fn provisional_with_tag_makes_an_early_dialog_and_uac_handler_sees_the_call() {
    let mut net = parrot_proto::sim::Network::new(
        Instant::now(),
        1,
        parrot_proto::sim::LinkConfig::default(),
    );
    let a = net.add(addr(1), Endpoint::new(config(1), 1u64));
    let mut eb = Endpoint::new(config(2), 2u64);
    eb.set_uas_handler_factory(|| Box::new(RingThenAnswer) as Box<dyn UasHandler>);
    let b = net.add(addr(2), eb);
    let log = Arc::new(Mutex::new(Vec::new()));
    let now = net.now();
    let mut req = InviteRequest::new("sip:a@10.0.0.1", "sip:b@10.0.0.2", addr(2), Transport::Udp);
    req.handler = Some(Box::new(Log(log.clone())));
    req.body = Some(Body::sdp(SDP_OFFER));
    let d = net.endpoint(a).invite(now, req).unwrap();
    net.run_until(now + Duration::from_millis(500));
    let dlg = net.endpoint_ref(a).dialog(d).unwrap().clone();
    assert_eq!(dlg.state, DialogState::Early);
    assert!(
        !dlg.remote_tag.is_empty(),
        "the 180's To tag is the remote tag"
    );
    let tx = net.events(b).iter().find_map(|e| match e {
        Event::IncomingCall { tx, .. } => Some(*tx),
        _ => None,
    });
    let now = net.now();
    net.endpoint(b)
        .respond(
            now,
            tx.unwrap(),
            parrot_proto::Reply::new(200).body(Body::sdp(SDP_ANSWER)),
        )
        .unwrap();
    net.run_until(now + Duration::from_millis(500));
    assert_eq!(
        net.endpoint_ref(a).dialog(d).unwrap().state,
        DialogState::Confirmed
    );
    // An in-dialog INFO goes to the remote target and gets its final response as an event.
    let now = net.now();
    let r = net
        .endpoint(a)
        .request_in_dialog(
            now,
            d,
            Method::Info,
            vec![],
            Some(Body::new("application/dtmf-relay", "Signal=1\r\n")),
        )
        .unwrap();
    net.run_until(now + Duration::from_millis(500));
    assert!(net.events(a).iter().any(
        |e| matches!(e, Event::ResponseReceived { request, status: 200, .. } if *request == r)
    ));
    let now = net.now();
    net.endpoint(a).bye(now, d).unwrap();
    drain_and_check(&mut net, 1);
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        vec![
            "provisional 100".to_string(),
            "provisional 180".into(),
            "success 200".into(),
            "established true".into(),
            "ended LocalBye".into()
        ]
    );
}

#[test]
fn reinvite_is_answered_acked_and_refreshes_the_remote_target() {
    let (mut net, a, b) = pair(4, parrot_proto::sim::LinkConfig::default());
    let now = net.now();
    let d = net
        .endpoint(a)
        .invite(
            now,
            InviteRequest::new("sip:a@10.0.0.1", "sip:b@10.0.0.2", addr(2), Transport::Udp),
        )
        .unwrap();
    net.run_until(now + Duration::from_secs(1));
    let db = net
        .events(b)
        .iter()
        .find_map(|e| match e {
            Event::IncomingCall { dialog, .. } => Some(*dialog),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        &*net.endpoint_ref(b).dialog(db).unwrap().remote_target,
        "sip:parrot@10.0.0.1:5060"
    );
    assert_eq!(
        &*net.endpoint_ref(a).dialog(d).unwrap().remote_target,
        "sip:parrot@10.0.0.2:5060"
    );
    let now = net.now();
    let r = net
        .endpoint(a)
        .request_in_dialog(now, d, Method::Invite, vec![], Some(Body::sdp(SDP_OFFER)))
        .unwrap();
    net.run_until(now + Duration::from_secs(1));
    assert!(net.events(a).iter().any(
        |e| matches!(e, Event::ResponseReceived { request, status: 200, .. } if *request == r)
    ));
    assert_eq!(
        count(net.events(b), |e| matches!(e, Event::AckReceived { .. })),
        2,
        "the re-INVITE's 2xx is ACKed"
    );
    assert_eq!(net.endpoint_ref(a).dialog(d).unwrap().local_cseq, 2);
    assert!(net.events(b).iter().any(|e| matches!(
        e,
        Event::RequestReceived { method: Method::Invite, body: Some(s), .. } if s.bytes.as_ref() == SDP_OFFER
    )), "the re-INVITE's offer reaches the adapter as an event");
    let now = net.now();
    net.endpoint(a).bye(now, d).unwrap();
    drain_and_check(&mut net, 4);
}

#[test]
fn tcp_stream_is_framed_and_reliable_timers_collapse() {
    let mut ep = Endpoint::new(
        EndpointConfig {
            local_addrs: vec![(Transport::Tcp, addr(2))],
            ..EndpointConfig::default()
        },
        3u64,
    );
    ep.set_uas_handler_factory(|| Box::new(Callee) as Box<dyn UasHandler>);
    let conn = ConnectionId(7);
    let peer = SocketAddr::from(([192, 0, 2, 1], 40000));
    ep.handle_connection_opened(conn, addr(2), peer, Transport::Tcp);
    let now = Instant::now();
    let msg = "OPTIONS sip:b@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bKtcp1\r\nMax-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: tcp-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let (x, y) = msg.as_bytes().split_at(40);
    ep.handle_stream_bytes(now, conn, x);
    assert!(
        ep.poll_transmit().is_none(),
        "half a message is not a message"
    );
    ep.handle_stream_bytes(now, conn, y);
    let t = ep.poll_transmit().expect("200 to OPTIONS");
    assert_eq!(
        t.conn,
        Some(conn),
        "responses go back on the request's connection (§18.2.2)"
    );
    assert_eq!(t.dst, peer);
    // Timer J is zero on TCP: the transaction ends at once.
    assert_eq!(ep.poll_timeout(), Some(now));
    ep.handle_timeout(now);
    assert!(ep.is_idle());
    // A CRLF CRLF ping gets a pong (RFC 5626 §3.5.1).
    ep.handle_stream_bytes(now, conn, b"\r\n\r\n");
    assert_eq!(&ep.poll_transmit().unwrap().payload[..], b"\r\n");
}

#[test]
fn transport_error_ends_the_call_and_is_reported() {
    let mut ep = Endpoint::new(config(1), 5u64);
    let now = Instant::now();
    let d = ep
        .invite(
            now,
            InviteRequest::new("sip:a@10.0.0.1", "sip:b@10.0.0.2", addr(2), Transport::Udp),
        )
        .unwrap();
    while ep.poll_transmit().is_some() {}
    ep.handle_transport_error(now, addr(2), Transport::Udp);
    let evs: Vec<Event> = std::iter::from_fn(|| ep.poll_event()).collect();
    assert!(evs
        .iter()
        .any(|e| matches!(e, Event::TransportError { .. })));
    assert!(evs.iter().any(|e| matches!(e, Event::CallEnded { dialog, reason: EndReason::TransportError } if *dialog == d)));
    assert!(ep.is_idle());
}

struct Redirect;
impl UasHandler for Redirect {
    fn handle_invite(&mut self, _r: &Request<'_>) -> Action {
        Action::Respond(parrot_proto::Reply::new(302).header("Contact", "<sip:bob@10.0.0.7:5060>"))
    }
}

#[test]
fn redirect_is_surfaced_with_its_contacts() {
    let mut net = parrot_proto::sim::Network::new(
        Instant::now(),
        1,
        parrot_proto::sim::LinkConfig::default(),
    );
    let a = net.add(addr(1), Endpoint::new(config(1), 1u64));
    let mut eb = Endpoint::new(config(2), 2u64);
    eb.set_uas_handler_factory(|| Box::new(Redirect) as Box<dyn UasHandler>);
    net.add(addr(2), eb);
    let now = net.now();
    net.endpoint(a)
        .invite(
            now,
            InviteRequest::new("sip:a@10.0.0.1", "sip:b@10.0.0.2", addr(2), Transport::Udp),
        )
        .unwrap();
    drain_and_check(&mut net, 1);
    let ev = net.take_events(a);
    assert!(ev.iter().any(|e| matches!(e, Event::CallRedirected { contacts, .. } if contacts == &vec!["sip:bob@10.0.0.7:5060".to_string()])), "{ev:?}");
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::CallEnded {
            reason: EndReason::Rejected(302),
            ..
        }
    )));
}
