//! A stateful proxy between two user agents (RFC 3261 §16), on the simulated network: the
//! basic call with Record-Route and BYE from either side through the proxy, CANCEL
//! propagation, failure responses, 6xx, Timer C, Max-Forwards, loops, and forking.

mod common;
use common::*;
use parrot_proto::sim::{LinkConfig, Network, NodeId};
use parrot_proto::{
    Action, Body, DialogId, EndReason, Endpoint, Event, InviteRequest, Message, ProxyTargets,
    Reply, Request, Transport, UasHandler,
};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// The proxy's handler: every INVITE and MESSAGE goes to the targets.
struct ProxyAll(ProxyTargets);

impl UasHandler for ProxyAll {
    fn handle_invite(&mut self, _req: &Request<'_>) -> Action {
        Action::ProxyTo(self.0.clone())
    }
    fn handle_message(&mut self, _req: &Request<'_>) -> Action {
        Action::ProxyTo(self.0.clone())
    }
}

/// A callee that answers every INVITE with `code` (200 with an SDP answer; 180 leaves the call
/// ringing; 401 with a challenge).
struct Answer(u16);

impl UasHandler for Answer {
    fn handle_invite(&mut self, _req: &Request<'_>) -> Action {
        match self.0 {
            200 => Action::Respond(Reply::new(200).body(Body::sdp(SDP_ANSWER))),
            401 => Action::Respond(
                Reply::new(401).header("WWW-Authenticate", "Digest realm=\"r\", nonce=\"n\""),
            ),
            c => Action::respond(c),
        }
    }
    fn handle_message(&mut self, _req: &Request<'_>) -> Action {
        Action::respond(200)
    }
}

const PROXY: u8 = 3;

/// A UAC (10.0.0.1), a proxy (10.0.0.3) and one callee per code (10.0.0.2, .4, .5, ...).
struct World {
    net: Network,
    a: NodeId,
    p: NodeId,
    callees: Vec<NodeId>,
    wire: Rc<RefCell<Vec<String>>>,
}

fn callee_addr(i: usize) -> u8 {
    if i == 0 {
        2
    } else {
        3 + i as u8
    }
}

fn callee_uri(i: usize) -> String {
    format!("sip:u{i}@10.0.0.{}", callee_addr(i))
}

fn world(seed: u64, link: LinkConfig, codes: &[u16], targets: ProxyTargets) -> World {
    world_with(seed, link, codes, targets, |_| {})
}

fn world_with(
    seed: u64,
    link: LinkConfig,
    codes: &[u16],
    targets: ProxyTargets,
    tune: impl FnOnce(&mut parrot_proto::EndpointConfig),
) -> World {
    let mut net = Network::new(std::time::Instant::now(), seed, link);
    let a = Endpoint::new(config(1), seed.wrapping_mul(7) + 1);
    let a = net.add(addr(1), a);
    let mut pcfg = config(PROXY);
    tune(&mut pcfg);
    let mut p = Endpoint::new(pcfg, seed.wrapping_mul(7) + 3);
    p.set_uas_handler_factory(move || Box::new(ProxyAll(targets.clone())) as Box<dyn UasHandler>);
    let p = net.add(addr(PROXY), p);
    let mut callees = Vec::new();
    for (i, &code) in codes.iter().enumerate() {
        let n = callee_addr(i);
        let mut e = Endpoint::new(config(n), seed.wrapping_mul(7) + 10 + i as u64);
        e.set_uas_handler_factory(move || Box::new(Answer(code)) as Box<dyn UasHandler>);
        callees.push(net.add(addr(n), e));
    }
    let wire = Rc::new(RefCell::new(Vec::new()));
    let w = wire.clone();
    net.set_filter(move |p| {
        w.borrow_mut().push(String::from_utf8_lossy(p).into_owned());
        false
    });
    World {
        net,
        a,
        p,
        callees,
        wire,
    }
}

impl World {
    fn call(&mut self) -> DialogId {
        let now = self.net.now();
        let mut req = InviteRequest::new(
            "sip:a@10.0.0.1",
            "sip:b@example.com",
            addr(PROXY),
            Transport::Udp,
        );
        req.body = Some(Body::sdp(SDP_OFFER));
        self.net.endpoint(self.a).invite(now, req).unwrap()
    }

    fn run_until(&mut self, limit: Duration, done: impl Fn(&World) -> bool) {
        let end = self.net.now() + limit;
        while self.net.now() < end && !done(self) {
            if !self.net.step() {
                break;
            }
        }
    }

    fn end_reason(&self, n: NodeId) -> Option<EndReason> {
        self.net.events(n).iter().find_map(|e| match e {
            Event::CallEnded { reason, .. } => Some(reason.clone()),
            _ => None,
        })
    }

    fn incoming(&self, n: NodeId) -> Option<DialogId> {
        self.net.events(n).iter().find_map(|e| match e {
            Event::IncomingCall { dialog, .. } => Some(*dialog),
            _ => None,
        })
    }

    /// Datagrams seen on the wire that start with `start` and contain `needle`.
    fn seen(&self, start: &str, needle: &str) -> usize {
        self.wire
            .borrow()
            .iter()
            .filter(|m| m.starts_with(start) && m.contains(needle))
            .count()
    }
}

const PROXY_VIA: &str = "Via: SIP/2.0/UDP 10.0.0.3:5060;branch=z9hG4bK";

fn basic_call(seed: u64, link: LinkConfig, bye_from_callee: bool) {
    let mut w = world(seed, link, &[200], ProxyTargets::single(callee_uri(0)));
    let d = w.call();
    let a = w.a;
    w.run_until(Duration::from_secs(60), |w| {
        established(w.net.events(a)) > 0 || ended(w.net.events(a)) > 0
    });
    assert_eq!(
        established(w.net.events(a)),
        1,
        "seed {seed}: {:?}",
        w.net.events(a)
    );
    let rs = &w.net.endpoint_ref(a).dialog(d).unwrap().route_set;
    assert_eq!(rs.len(), 1, "seed {seed}: the proxy record-routes: {rs:?}");
    assert!(rs[0].contains("10.0.0.3:5060;lr"), "{rs:?}");
    // Let the ACK arrive, then hang up.
    let t = w.net.now() + Duration::from_secs(2);
    w.net.run_until(t);
    let now = w.net.now();
    let b = w.callees[0];
    if bye_from_callee {
        if let Some(db) = w.incoming(b) {
            let _ = w.net.endpoint(b).bye(now, db);
        }
    } else {
        w.net.endpoint(a).bye(now, d).unwrap();
    }
    drain_and_check(&mut w.net, seed);
    assert_eq!(ended(w.net.events(a)), 1, "seed {seed}");
    assert_eq!(ended(w.net.events(b)), 1, "seed {seed}");
    let (who, reason) = if bye_from_callee {
        (a, EndReason::RemoteBye)
    } else {
        (b, EndReason::RemoteBye)
    };
    if link.loss == 0.0 {
        assert_eq!(w.end_reason(who), Some(reason), "seed {seed}");
        assert!(w.seen("BYE ", PROXY_VIA) >= 1, "the BYE passes the proxy");
        assert!(w.seen("ACK ", PROXY_VIA) >= 1, "the ACK passes the proxy");
        assert_eq!(w.seen("SIP/2.0 100 ", "INVITE"), 2, "one 100 per hop");
    }
    assert_eq!(w.net.endpoint_ref(w.p).proxy_contexts(), 0);
}

#[test]
fn call_through_the_proxy_record_routes_and_bye_from_the_caller_passes() {
    basic_call(1, LinkConfig::default(), false);
}

#[test]
fn bye_from_the_callee_passes_the_proxy_too() {
    basic_call(2, LinkConfig::default(), true);
}

#[test]
fn proxied_calls_converge_at_20_percent_loss() {
    for seed in 0..seeds() {
        basic_call(seed, lossy(0.2), seed % 2 == 1);
    }
}

#[test]
fn cancelled_and_forked_calls_converge_at_20_percent_loss() {
    for seed in 0..seeds() / 2 {
        // A parallel fork where one callee answers and the other rings, or a ringing callee
        // the caller gives up on: either way every table empties and each side ends once.
        let cancel = seed % 2 == 0;
        let (codes, targets): (&[u16], _) = if cancel {
            (&[180], ProxyTargets::single(callee_uri(0)))
        } else {
            (
                &[180, 200],
                ProxyTargets::parallel(vec![callee_uri(0), callee_uri(1)]),
            )
        };
        let mut w = world(seed, lossy(0.2), codes, targets);
        let d = w.call();
        let a = w.a;
        w.run_until(Duration::from_secs(20), |w| {
            ended(w.net.events(a)) > 0
                || established(w.net.events(a)) > 0
                || w.net
                    .events(a)
                    .iter()
                    .any(|e| matches!(e, Event::CallProgress { status: 180, .. }))
        });
        let now = w.net.now();
        if cancel {
            let _ = w.net.endpoint(a).cancel(now, d);
        } else {
            w.run_until(Duration::from_secs(20), |w| {
                ended(w.net.events(a)) > 0 || established(w.net.events(a)) > 0
            });
            let now = w.net.now();
            let _ = w.net.endpoint(a).bye(now, d);
        }
        drain_and_check(&mut w.net, seed);
        assert_eq!(ended(w.net.events(a)), 1, "seed {seed}");
        for &c in &w.callees {
            assert!(ended(w.net.events(c)) <= 1, "seed {seed}");
        }
        if !cancel {
            let ringing = w.callees[0];
            assert_ne!(
                w.end_reason(ringing),
                Some(EndReason::RemoteBye),
                "seed {seed}: the ringing branch never got the call"
            );
        }
    }
}

#[test]
fn callee_busy_486_is_forwarded() {
    let mut w = world(
        3,
        LinkConfig::default(),
        &[486],
        ProxyTargets::single(callee_uri(0)),
    );
    w.call();
    drain_and_check(&mut w.net, 3);
    assert_eq!(w.end_reason(w.a), Some(EndReason::Rejected(486)));
    assert_eq!(w.seen("ACK ", ""), 2, "each hop ACKs the 486 itself");
}

#[test]
fn cancel_reaches_the_ringing_callee() {
    let mut w = world(
        4,
        LinkConfig::default(),
        &[180],
        ProxyTargets::single(callee_uri(0)),
    );
    let d = w.call();
    let a = w.a;
    w.run_until(Duration::from_secs(10), |w| {
        w.net
            .events(a)
            .iter()
            .any(|e| matches!(e, Event::CallProgress { status: 180, .. }))
    });
    let now = w.net.now();
    w.net.endpoint(a).cancel(now, d).unwrap();
    drain_and_check(&mut w.net, 4);
    assert_eq!(w.end_reason(a), Some(EndReason::Cancelled));
    assert_eq!(w.end_reason(w.callees[0]), Some(EndReason::Cancelled));
    assert_eq!(
        w.seen("CANCEL ", PROXY_VIA),
        1,
        "the proxy sent its own CANCEL"
    );
}

#[test]
fn a_6xx_cancels_the_other_branches() {
    let targets = ProxyTargets::parallel(vec![callee_uri(0), callee_uri(1)]);
    let mut w = world(5, LinkConfig::default(), &[180, 603], targets);
    w.call();
    drain_and_check(&mut w.net, 5);
    assert_eq!(w.end_reason(w.a), Some(EndReason::Rejected(603)));
    assert_eq!(w.end_reason(w.callees[0]), Some(EndReason::Cancelled));
}

#[test]
fn parallel_fork_one_answers_the_other_is_cancelled() {
    let targets = ProxyTargets::parallel(vec![callee_uri(0), callee_uri(1)]);
    let mut w = world(6, LinkConfig::default(), &[180, 200], targets);
    let d = w.call();
    let a = w.a;
    w.run_until(Duration::from_secs(10), |w| {
        established(w.net.events(a)) > 0
    });
    assert_eq!(established(w.net.events(a)), 1);
    let t = w.net.now() + Duration::from_secs(2);
    w.net.run_until(t);
    let now = w.net.now();
    w.net.endpoint(a).bye(now, d).unwrap();
    drain_and_check(&mut w.net, 6);
    assert_eq!(w.end_reason(w.callees[0]), Some(EndReason::Cancelled));
    assert_eq!(w.end_reason(w.callees[1]), Some(EndReason::RemoteBye));
    assert_eq!(w.end_reason(a), Some(EndReason::LocalBye));
}

#[test]
fn sequential_fork_tries_the_next_target_after_a_failure() {
    let targets = ProxyTargets::sequential(vec![callee_uri(0), callee_uri(1)]);
    let mut w = world(7, LinkConfig::default(), &[486, 200], targets);
    let d = w.call();
    let a = w.a;
    w.run_until(Duration::from_secs(10), |w| {
        established(w.net.events(a)) > 0
    });
    assert_eq!(established(w.net.events(a)), 1, "{:?}", w.net.events(a));
    let now = w.net.now();
    w.net.endpoint(a).bye(now, d).unwrap();
    drain_and_check(&mut w.net, 7);
    assert_eq!(w.end_reason(w.callees[0]), Some(EndReason::Rejected(486)));
}

#[test]
fn best_response_merges_challenges_and_turns_503_into_500() {
    let targets = ProxyTargets::parallel(vec![callee_uri(0), callee_uri(1)]);
    let mut w = world(8, LinkConfig::default(), &[401, 401], targets);
    w.call();
    drain_and_check(&mut w.net, 8);
    assert_eq!(w.end_reason(w.a), Some(EndReason::Rejected(401)));
    let merged = w
        .wire
        .borrow()
        .iter()
        .filter(|m| m.starts_with("SIP/2.0 401 ") && m.matches("WWW-Authenticate:").count() == 2)
        .count();
    assert!(merged >= 1, "one 401 carries both challenges");

    let mut w = world(
        9,
        LinkConfig::default(),
        &[503],
        ProxyTargets::single(callee_uri(0)),
    );
    w.call();
    drain_and_check(&mut w.net, 9);
    assert_eq!(w.end_reason(w.a), Some(EndReason::Rejected(500)));
}

#[test]
fn timer_c_cancels_a_branch_that_rings_too_long() {
    let targets = ProxyTargets::single(callee_uri(0));
    let mut w = world_with(10, LinkConfig::default(), &[180], targets, |c| {
        c.proxy.timer_c = Duration::from_secs(100);
    });
    let start = w.net.now();
    w.call();
    let a = w.a;
    w.run_until(Duration::from_secs(300), |w| ended(w.net.events(a)) > 0);
    let took = w.net.now() - start;
    assert!(
        took >= Duration::from_secs(100) && took < Duration::from_secs(110),
        "{took:?}"
    );
    assert_eq!(w.end_reason(a), Some(EndReason::Timeout));
    drain_and_check(&mut w.net, 10);
    assert_eq!(w.end_reason(w.callees[0]), Some(EndReason::Cancelled));
}

#[test]
fn a_request_that_loops_back_gets_482() {
    // The proxy sends every INVITE to itself: one spiral (new Request-URI), then the loop.
    let mut w = world(
        11,
        LinkConfig::default(),
        &[],
        ProxyTargets::single("sip:b@10.0.0.3"),
    );
    w.call();
    drain_and_check(&mut w.net, 11);
    assert_eq!(w.end_reason(w.a), Some(EndReason::Rejected(482)));
}

#[test]
fn max_forwards_zero_gets_483_and_the_decrement_is_seen_downstream() {
    let mut p = Endpoint::new(config(PROXY), 1);
    p.set_uas_handler_factory(|| {
        Box::new(ProxyAll(ProxyTargets::single(callee_uri(0)))) as Box<dyn UasHandler>
    });
    let now = std::time::Instant::now();
    let invite = |mf: u8| {
        format!(
            "INVITE sip:b@10.0.0.3 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKmf{mf}\r\nMax-Forwards: {mf}\r\nFrom: <sip:a@10.0.0.1>;tag=1\r\nTo: <sip:b@10.0.0.3>\r\nCall-ID: mf{mf}\r\nCSeq: 1 INVITE\r\nContact: <sip:a@10.0.0.1>\r\nContent-Length: 0\r\n\r\n"
        )
    };
    p.handle_datagram(now, addr(PROXY), addr(1), Transport::Udp, invite(0).into());
    let out: Vec<String> = std::iter::from_fn(|| p.poll_transmit())
        .map(|t| String::from_utf8_lossy(&t.payload).into_owned())
        .collect();
    assert!(out.iter().any(|m| m.starts_with("SIP/2.0 483 ")), "{out:?}");
    assert!(!out.iter().any(|m| m.starts_with("INVITE ")));

    p.handle_datagram(now, addr(PROXY), addr(1), Transport::Udp, invite(1).into());
    let out: Vec<parrot_proto::Transmit> = std::iter::from_fn(|| p.poll_transmit()).collect();
    let fwd = out
        .iter()
        .find(|t| t.payload.starts_with(b"INVITE "))
        .expect("forwarded");
    assert_eq!(fwd.dst, addr(2));
    let m = Message::parse(fwd.payload.clone()).unwrap();
    assert_eq!(m.max_forwards().unwrap(), Some(0));
    assert_eq!(m.request_uri_str(), Some(callee_uri(0).as_str()));
    assert_eq!(m.via().count(), 2);
    assert_eq!(m.record_routes().count(), 1);
}

#[test]
fn message_is_proxied_without_record_route() {
    let mut w = world(
        12,
        LinkConfig::default(),
        &[200],
        ProxyTargets::single(callee_uri(0)),
    );
    let now = w.net.now();
    let req = parrot_proto::OutOfDialogRequest {
        method: parrot_proto::Method::Message,
        uri: "sip:b@example.com".into(),
        from: "sip:a@10.0.0.1".into(),
        to: "sip:b@example.com".into(),
        dst: addr(PROXY),
        transport: Transport::Udp,
        headers: Vec::new(),
        body: Some(Body::new("text/plain", &b"hi"[..])),
        credentials: None,
    };
    let a = w.a;
    w.net.endpoint(a).request(now, req).unwrap();
    drain_and_check(&mut w.net, 12);
    let ok = w
        .net
        .events(a)
        .iter()
        .any(|e| matches!(e, Event::ResponseReceived { status: 200, .. }));
    assert!(ok, "{:?}", w.net.events(a));
    assert_eq!(w.seen("MESSAGE ", "Record-Route"), 0);
}

#[test]
fn a_strict_router_upstream_gets_its_request_uri_restored_from_the_last_route() {
    // §16.4: the Request-URI is the Record-Route value we wrote; the real target is the last Route.
    let mut p = Endpoint::new(config(PROXY), 1);
    let now = std::time::Instant::now();
    let bye = "BYE sip:10.0.0.3:5060;lr SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKsr1\r\nRoute: <sip:u0@10.0.0.2:5060>\r\nMax-Forwards: 70\r\nFrom: <sip:a@10.0.0.1>;tag=1\r\nTo: <sip:b@10.0.0.3>;tag=2\r\nCall-ID: sr1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";
    p.handle_datagram(now, addr(PROXY), addr(1), Transport::Udp, bye.into());
    let out: Vec<parrot_proto::Transmit> = std::iter::from_fn(|| p.poll_transmit()).collect();
    let fwd = out
        .iter()
        .find(|t| t.payload.starts_with(b"BYE "))
        .expect("forwarded, not answered 481");
    assert_eq!(fwd.dst, addr(2));
    let m = Message::parse(fwd.payload.clone()).unwrap();
    assert_eq!(m.request_uri_str(), Some("sip:u0@10.0.0.2:5060"));
    assert_eq!(m.routes().count(), 0);
    assert_eq!(m.max_forwards().unwrap(), Some(69));
}

#[test]
fn an_unknown_proxy_require_gets_420() {
    let mut p = Endpoint::new(config(PROXY), 1);
    p.set_uas_handler_factory(|| {
        Box::new(ProxyAll(ProxyTargets::single(callee_uri(0)))) as Box<dyn UasHandler>
    });
    let now = std::time::Instant::now();
    let inv = "INVITE sip:b@10.0.0.3 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKpr1\r\nMax-Forwards: 70\r\nProxy-Require: foo\r\nFrom: <sip:a@10.0.0.1>;tag=1\r\nTo: <sip:b@10.0.0.3>\r\nCall-ID: pr1\r\nCSeq: 1 INVITE\r\nContact: <sip:a@10.0.0.1>\r\nContent-Length: 0\r\n\r\n";
    p.handle_datagram(now, addr(PROXY), addr(1), Transport::Udp, inv.into());
    let out: Vec<String> = std::iter::from_fn(|| p.poll_transmit())
        .map(|t| String::from_utf8_lossy(&t.payload).into_owned())
        .collect();
    let r = out
        .iter()
        .find(|m| m.starts_with("SIP/2.0 420 "))
        .expect("420");
    assert!(r.contains("Unsupported: foo"), "{r}");
    assert!(!out.iter().any(|m| m.starts_with("INVITE ")));
}

/// The forwarded requests `p` sent, parsed, with where they went.
fn sent(p: &mut Endpoint, start: &str) -> Vec<(std::net::SocketAddr, Message)> {
    std::iter::from_fn(|| p.poll_transmit())
        .filter(|t| t.payload.starts_with(start.as_bytes()))
        .map(|t| (t.dst, Message::parse(t.payload.clone()).unwrap()))
        .collect()
}

fn route_values(m: &Message) -> Vec<String> {
    m.header_values(parrot_proto::HeaderName::Route)
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_strict_router_downstream_gets_the_request_uri_as_the_last_route() {
    // §16.6 item 6: the next hop (top Route, no `lr`) is a strict router; it becomes the
    // Request-URI and the target goes to the end of the Route set. The copy is sent to it.
    let mut p = Endpoint::new(config(PROXY), 1);
    p.set_uas_handler_factory(|| {
        Box::new(ProxyAll(ProxyTargets::single(callee_uri(0)))) as Box<dyn UasHandler>
    });
    let now = std::time::Instant::now();
    let inv = "INVITE sip:b@10.0.0.3 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKst1\r\nRoute: <sip:10.0.0.9:5070>, <sip:10.0.0.8;lr>\r\nMax-Forwards: 70\r\nFrom: <sip:a@10.0.0.1>;tag=1\r\nTo: <sip:b@10.0.0.3>\r\nCall-ID: st1\r\nCSeq: 1 INVITE\r\nContact: <sip:a@10.0.0.1>\r\nContent-Length: 0\r\n\r\n";
    p.handle_datagram(now, addr(PROXY), addr(1), Transport::Udp, inv.into());
    let out = sent(&mut p, "INVITE ");
    assert_eq!(out.len(), 1);
    let (dst, m) = &out[0];
    assert_eq!(*dst, "10.0.0.9:5070".parse().unwrap());
    assert_eq!(m.request_uri_str(), Some("sip:10.0.0.9:5070"));
    assert_eq!(
        route_values(m),
        [
            "<sip:10.0.0.8;lr>".to_owned(),
            format!("<{}>", callee_uri(0))
        ]
    );
    assert_eq!(m.max_forwards().unwrap(), Some(69));

    // A loose router on top leaves the Request-URI alone.
    let inv = inv
        .replace("<sip:10.0.0.9:5070>, ", "")
        .replace("st1", "st2");
    p.handle_datagram(now, addr(PROXY), addr(1), Transport::Udp, inv.into());
    let out = sent(&mut p, "INVITE ");
    let (dst, m) = &out[0];
    assert_eq!(*dst, "10.0.0.8:5060".parse().unwrap());
    assert_eq!(m.request_uri_str(), Some(callee_uri(0).as_str()));
    assert_eq!(route_values(m), ["<sip:10.0.0.8;lr>"]);
}

#[test]
fn in_dialog_requests_and_acks_routed_through_us_to_a_strict_router() {
    // The Route set after ours starts with a strict router: BYE (stateful) and ACK
    // (stateless, §16.11) both go to it with the Request-URI appended as the last Route.
    let mut p = Endpoint::new(config(PROXY), 1);
    let now = std::time::Instant::now();
    for (method, branch) in [("BYE", "z9hG4bKsd1"), ("ACK", "z9hG4bKsd2")] {
        let cseq = if method == "BYE" { "2 BYE" } else { "1 ACK" };
        let req = format!("{method} sip:u0@10.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}\r\nRoute: <sip:10.0.0.3:5060;lr>, <sip:10.0.0.9:5070>, <sip:10.0.0.8;lr>\r\nMax-Forwards: 70\r\nFrom: <sip:a@10.0.0.1>;tag=1\r\nTo: <sip:b@10.0.0.3>;tag=2\r\nCall-ID: sd1\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n");
        p.handle_datagram(now, addr(PROXY), addr(1), Transport::Udp, req.into());
        let out = sent(&mut p, &format!("{method} "));
        assert_eq!(out.len(), 1, "{method}");
        let (dst, m) = &out[0];
        assert_eq!(*dst, "10.0.0.9:5070".parse().unwrap(), "{method}");
        assert_eq!(m.request_uri_str(), Some("sip:10.0.0.9:5070"), "{method}");
        assert_eq!(
            route_values(m),
            ["<sip:10.0.0.8;lr>", "<sip:u0@10.0.0.2:5060>"],
            "{method}"
        );
        assert_eq!(m.via().count(), 2, "{method}: our Via on top");
    }
}

/// A proxy at 10.0.0.3 whose handler is `h`, with `defer_uas_checks` as given.
fn lone_proxy(defer: bool, h: impl Fn() -> Box<dyn UasHandler> + Send + 'static) -> Endpoint {
    let mut cfg = config(PROXY);
    cfg.proxy.defer_uas_checks = defer;
    let mut p = Endpoint::new(cfg, 1);
    p.set_uas_handler_factory(h);
    p
}

/// An INVITE from 10.0.0.1 with a `Require` and a body the UAS core does not accept.
fn exotic_invite(call_id: &str) -> String {
    let body = "<x/>";
    format!(
        "INVITE sip:b@10.0.0.3 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{call_id}\r\nMax-Forwards: 70\r\nRequire: foo\r\nFrom: <sip:a@10.0.0.1>;tag=1\r\nTo: <sip:b@10.0.0.3>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:a@10.0.0.1>\r\nContent-Type: application/x-exotic\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn statuses(out: &[parrot_proto::Transmit]) -> Vec<u16> {
    out.iter()
        .filter_map(|t| Message::parse(t.payload.clone()).ok()?.status())
        .collect()
}

#[test]
fn with_deferred_uas_checks_a_proxy_forwards_require_and_bodies_it_does_not_know() {
    // §16.3: a proxy checks Proxy-Require, not Require, and leaves the body alone.
    let mut p = lone_proxy(true, || {
        Box::new(ProxyAll(ProxyTargets::single(callee_uri(0)))) as Box<dyn UasHandler>
    });
    let now = std::time::Instant::now();
    p.handle_datagram(
        now,
        addr(PROXY),
        addr(1),
        Transport::Udp,
        exotic_invite("dr1").into(),
    );
    let out: Vec<parrot_proto::Transmit> = std::iter::from_fn(|| p.poll_transmit()).collect();
    assert_eq!(statuses(&out), [100], "only the 100 Trying upstream");
    let fwd = out
        .iter()
        .find(|t| t.payload.starts_with(b"INVITE "))
        .expect("forwarded");
    assert_eq!(fwd.dst, addr(2));
    let m = Message::parse(fwd.payload.clone()).unwrap();
    assert_eq!(m.header(parrot_proto::HeaderName::Require), Some("foo"));
    assert_eq!(m.body_slice(), b"<x/>");
    assert!(
        !std::iter::from_fn(|| p.poll_event()).any(|e| matches!(e, Event::IncomingCall { .. })),
        "a proxied INVITE is no call of ours"
    );
}

#[test]
fn with_deferred_uas_checks_requests_the_handler_keeps_still_get_the_uas_answers() {
    let now = std::time::Instant::now();
    // The handler answers the INVITE itself: the held-back 420 wins and no call surfaces.
    let mut p = lone_proxy(true, || Box::new(Answer(200)) as Box<dyn UasHandler>);
    p.handle_datagram(
        now,
        addr(PROXY),
        addr(1),
        Transport::Udp,
        exotic_invite("dk1").into(),
    );
    let out: Vec<parrot_proto::Transmit> = std::iter::from_fn(|| p.poll_transmit()).collect();
    assert_eq!(statuses(&out), [100, 420]);
    assert!(String::from_utf8_lossy(&out[1].payload).contains("Unsupported: foo"));
    assert!(
        !std::iter::from_fn(|| p.poll_event()).any(|e| matches!(e, Event::IncomingCall { .. })),
        "the refused INVITE never became a call"
    );
    // Without Require, the body type is next: 415.
    let inv = exotic_invite("dk2").replace("Require: foo\r\n", "");
    p.handle_datagram(now, addr(PROXY), addr(1), Transport::Udp, inv.into());
    let out: Vec<parrot_proto::Transmit> = std::iter::from_fn(|| p.poll_transmit()).collect();
    assert_eq!(statuses(&out), [100, 415]);
    // Methods outside `allow`: MESSAGE, which the handler proxies, is forwarded; INFO, which
    // it does not, gets 405 with Allow.
    let mut cfg = config(PROXY);
    cfg.proxy.defer_uas_checks = true;
    cfg.allow.retain(|m| {
        !matches!(
            m,
            parrot_proto::Method::Message | parrot_proto::Method::Info
        )
    });
    let mut p = Endpoint::new(cfg, 1);
    p.set_uas_handler_factory(|| {
        Box::new(ProxyAll(ProxyTargets::single(callee_uri(0)))) as Box<dyn UasHandler>
    });
    let req = |m: &str, id: &str| {
        format!("{m} sip:b@10.0.0.3 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{id}\r\nMax-Forwards: 70\r\nFrom: <sip:a@10.0.0.1>;tag=1\r\nTo: <sip:b@10.0.0.3>\r\nCall-ID: {id}\r\nCSeq: 1 {m}\r\nContent-Length: 0\r\n\r\n")
    };
    p.handle_datagram(
        now,
        addr(PROXY),
        addr(1),
        Transport::Udp,
        req("MESSAGE", "dm1").into(),
    );
    let out: Vec<parrot_proto::Transmit> = std::iter::from_fn(|| p.poll_transmit()).collect();
    assert!(statuses(&out).is_empty(), "{:?}", statuses(&out));
    assert!(out
        .iter()
        .any(|t| t.payload.starts_with(b"MESSAGE ") && t.dst == addr(2)));
    p.handle_datagram(
        now,
        addr(PROXY),
        addr(1),
        Transport::Udp,
        req("INFO", "dm2").into(),
    );
    let out: Vec<parrot_proto::Transmit> = std::iter::from_fn(|| p.poll_transmit()).collect();
    assert_eq!(statuses(&out), [405]);
    let r = String::from_utf8_lossy(&out[0].payload);
    let allow = r.lines().find(|l| l.starts_with("Allow: ")).expect("Allow");
    assert!(!allow.contains("INFO") && allow.contains("INVITE"), "{r}");
}

#[test]
fn without_deferred_uas_checks_the_uas_core_answers_first() {
    // The default: a plain user agent's checks run before any handler, proxying or not.
    let mut p = lone_proxy(false, || {
        Box::new(ProxyAll(ProxyTargets::single(callee_uri(0)))) as Box<dyn UasHandler>
    });
    let now = std::time::Instant::now();
    p.handle_datagram(
        now,
        addr(PROXY),
        addr(1),
        Transport::Udp,
        exotic_invite("nd1").into(),
    );
    let out: Vec<parrot_proto::Transmit> = std::iter::from_fn(|| p.poll_transmit()).collect();
    assert_eq!(statuses(&out), [420]);
    assert!(!out.iter().any(|t| t.payload.starts_with(b"INVITE ")));
}

#[test]
fn with_deferred_uas_checks_a_register_is_still_checked_before_its_handler() {
    // A registrar's handler changes bindings as it answers: REGISTER keeps the UAS order
    // (§10.3 step 2), the handler never sees a REGISTER the core refuses.
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    struct Counting(Arc<AtomicUsize>);
    impl UasHandler for Counting {
        fn handle_register(&mut self, _req: &Request<'_>) -> Action {
            self.0.fetch_add(1, Ordering::Relaxed);
            Action::respond(200)
        }
    }
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    let mut p = lone_proxy(true, move || {
        Box::new(Counting(s.clone())) as Box<dyn UasHandler>
    });
    let now = std::time::Instant::now();
    let reg = |id: &str, require: &str| {
        format!("REGISTER sip:10.0.0.3 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{id}\r\nMax-Forwards: 70\r\n{require}From: <sip:a@10.0.0.3>;tag=1\r\nTo: <sip:a@10.0.0.3>\r\nCall-ID: {id}\r\nCSeq: 1 REGISTER\r\nContact: <sip:a@10.0.0.1>\r\nContent-Length: 0\r\n\r\n")
    };
    p.handle_datagram(
        now,
        addr(PROXY),
        addr(1),
        Transport::Udp,
        reg("rg1", "Require: foo\r\n").into(),
    );
    let out: Vec<parrot_proto::Transmit> = std::iter::from_fn(|| p.poll_transmit()).collect();
    assert_eq!(statuses(&out), [420]);
    assert_eq!(seen.load(Ordering::Relaxed), 0);
    p.handle_datagram(
        now,
        addr(PROXY),
        addr(1),
        Transport::Udp,
        reg("rg2", "").into(),
    );
    let out: Vec<parrot_proto::Transmit> = std::iter::from_fn(|| p.poll_transmit()).collect();
    assert_eq!(statuses(&out), [200]);
    assert_eq!(seen.load(Ordering::Relaxed), 1);
}
