//! Shared helpers of the simulation tests.
#![allow(dead_code)]

use parrot_proto::sim::{LinkConfig, Network, NodeId};
use parrot_proto::{
    Action, Body, Endpoint, EndpointConfig, Event, Reply, Request, Transport, UasHandler,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub const SDP_OFFER: &[u8] = b"v=0\r\no=a 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
pub const SDP_ANSWER: &[u8] = b"v=0\r\no=b 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n";

/// How many seeds each scenario runs: the 1,000, fewer in unoptimised builds when
/// `PARROT_SIM_SEEDS` says so.
pub fn seeds() -> u64 {
    std::env::var("PARROT_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000)
}

pub fn addr(n: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, n], 5060))
}

pub fn config(n: u8) -> EndpointConfig {
    EndpointConfig {
        local_addrs: vec![(Transport::Udp, addr(n))],
        ..EndpointConfig::default()
    }
}

/// Answers every INVITE (initial or re-INVITE) 200 with an SDP answer; everything else 200.
pub struct Callee;

impl UasHandler for Callee {
    fn handle_invite(&mut self, _req: &Request<'_>) -> Action {
        Action::Respond(Reply::new(200).body(Body::sdp(SDP_ANSWER)))
    }
    fn handle_options(&mut self, _req: &Request<'_>) -> Action {
        Action::respond(200)
    }
    fn handle_info(&mut self, _req: &Request<'_>) -> Action {
        Action::respond(200)
    }
    fn handle_message(&mut self, _req: &Request<'_>) -> Action {
        Action::respond(200)
    }
}

pub fn lossy(loss: f64) -> LinkConfig {
    LinkConfig {
        loss,
        duplicate: 0.05,
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(60),
    }
}

/// Two endpoints, both answering with [`Callee`].
pub fn pair(seed: u64, link: LinkConfig) -> (Network, NodeId, NodeId) {
    let mut net = Network::new(Instant::now(), seed, link);
    let mut a = Endpoint::new(config(1), seed.wrapping_mul(2) + 1);
    a.set_uas_handler_factory(|| Box::new(Callee) as Box<dyn UasHandler>);
    let mut b = Endpoint::new(config(2), seed.wrapping_mul(2) + 2);
    b.set_uas_handler_factory(|| Box::new(Callee) as Box<dyn UasHandler>);
    let a = net.add(addr(1), a);
    let b = net.add(addr(2), b);
    (net, a, b)
}

pub fn count(events: &[Event], f: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

pub fn established(events: &[Event]) -> usize {
    count(events, |e| matches!(e, Event::CallEstablished { .. }))
}

pub fn ended(events: &[Event]) -> usize {
    count(events, |e| matches!(e, Event::CallEnded { .. }))
}

/// Runs until idle (bounded) and asserts every table of every endpoint is empty.
pub fn drain_and_check(net: &mut Network, seed: u64) {
    let idle = net.run_until_idle(Duration::from_secs(7200));
    assert!(idle, "seed {seed}: did not go idle");
    assert!(net.all_idle(), "seed {seed}: tables not empty: {net:?}");
}

/// Whether a datagram is a response with `code` to `method`.
pub fn is_response(p: &[u8], code: u16, method: &str) -> bool {
    let s = String::from_utf8_lossy(p);
    s.starts_with(&format!("SIP/2.0 {code} ")) && s.contains(&format!(" {method}\r\n"))
}

/// Whether a datagram is a `method` request.
pub fn is_request(p: &[u8], method: &str) -> bool {
    p.starts_with(format!("{method} ").as_bytes())
}
