//! The logic of the `endpoint` fuzz target (kept in the crate so the target is three lines, as
//! in str0m). Bytes become a sequence of events for two endpoints wired back to back:
//! datagrams (raw or templated SIP), timeouts, application commands and deliveries. Checked
//! invariants: no panic, no response to an ACK, never two different final responses for one
//! server transaction (an INVITE answered with a non-2xx ends Timer I after its ACK, and a
//! request reusing its branch after that is a new one), and every table drains in bounded
//! virtual time once the application hangs up.

use crate::auth::DigestCredentials;
use crate::handler::{Action, Body, Reply, Request};
use crate::registration::RegisterRequest;
use crate::{Endpoint, EndpointConfig, InviteRequest, Message, Method, Transport, UasHandler};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

struct Answer(u8);

impl UasHandler for Answer {
    fn handle_invite(&mut self, _r: &Request<'_>) -> Action {
        match self.0 % 4 {
            0 => Action::Respond(Reply::new(200).body(Body::sdp(&b"v=0\r\n"[..]))),
            1 => Action::respond(486),
            2 => Action::respond(180),
            _ => Action::NoReply,
        }
    }
    fn handle_options(&mut self, _r: &Request<'_>) -> Action {
        Action::respond(200)
    }
    fn handle_register(&mut self, _r: &Request<'_>) -> Action {
        Action::Respond(Reply::new(200).header("Expires", "60"))
    }
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

const METHODS: [&str; 8] = [
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "PRACK",
];

fn template(c: &mut Cursor<'_>) -> Vec<u8> {
    let m = METHODS[c.byte().unwrap_or(0) as usize % METHODS.len()];
    let branch = c.byte().unwrap_or(0) % 4;
    let callid = c.byte().unwrap_or(0) % 4;
    let cseq = c.byte().unwrap_or(0) % 3 + 1;
    let totag = match c.byte().unwrap_or(0) % 3 {
        0 => String::new(),
        _ => format!(";tag={}", c.byte().unwrap_or(0) % 2),
    };
    let mf = c.byte().unwrap_or(70) % 72;
    let cookie = if c.byte().unwrap_or(0) % 5 == 0 {
        ""
    } else {
        "z9hG4bK"
    };
    let cm = if c.byte().unwrap_or(0) % 7 == 0 {
        "INVITE"
    } else {
        m
    };
    format!(
        "{m} sip:b@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch={cookie}{branch};rport\r\nMax-Forwards: {mf}\r\nFrom: <sip:a@10.0.0.1>;tag=f{callid}\r\nTo: <sip:b@10.0.0.2>{totag}\r\nCall-ID: fz{callid}\r\nCSeq: {cseq} {cm}\r\nContact: <sip:a@10.0.0.1>\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

struct Checker {
    finals: HashMap<(String, String, String), (u16, Instant)>,
    /// When an ACK with an RFC 3261 branch last reached an endpoint, by (endpoint, branch,
    /// sent-by host): it ends the INVITE server transaction with that branch T4 later (Timer
    /// I, §17.2.1), when that transaction's final response was not a 2xx.
    acks: HashMap<(String, String, String), Instant>,
    /// The virtual clock.
    now: Instant,
}

/// Timer I on an unreliable transport: T4, 5 s by default (§17.2.1).
const TIMER_I: Duration = Duration::from_secs(5);

impl Checker {
    /// Notes a datagram handed to endpoint `to`: an ACK may end a transaction early.
    fn delivered(&mut self, payload: &[u8], to: &str) {
        let Ok(m) = Message::parse(bytes::Bytes::copy_from_slice(payload)) else {
            return;
        };
        if m.method() != Some(Method::Ack) {
            return;
        }
        let Ok(via) = m.top_via() else { return };
        let Some(branch) = via.branch() else { return };
        let now = self.now;
        self.acks.insert(
            (to.to_owned(), branch.to_owned(), via.host.to_string()),
            now,
        );
    }

    fn check(&mut self, payload: &[u8], who: &str) {
        let Ok(m) = Message::parse(bytes::Bytes::copy_from_slice(payload)) else {
            panic!("the endpoint sent an unparseable message");
        };
        let Some(code) = m.status() else { return };
        let Ok(cseq) = m.cseq() else { return };
        assert!(cseq.method != Method::Ack, "a response to an ACK was sent");
        if code < 200 {
            return;
        }
        let Ok(via) = m.top_via() else { return };
        let Some(branch) = via.branch() else { return };
        if !branch.starts_with("z9hG4bK") {
            return; // RFC 2543 peers are matched by other fields; statelessly answered here
        }
        // Stateless rejections (no transaction is created for them) are not counted.
        if matches!(
            code,
            400 | 405 | 416 | 420 | 415 | 481 | 482 | 483 | 500 | 503
        ) {
            return;
        }
        let key = (
            branch.to_owned(),
            via.host.to_string(),
            format!(
                "{who} {} {} {}",
                cseq.method,
                cseq.seq,
                m.call_id().unwrap_or("")
            ),
        );
        // A server transaction lives at most 64*T1 after its final response (timers H, J, L);
        // a copy of the request delayed longer by the network is a new request.
        let now = self.now;
        let (prev, at) = *self.finals.entry(key.clone()).or_insert((code, now));
        // An INVITE transaction answered with a non-2xx ends Timer I after the ACK for it
        // (§17.2.1): a request with the same branch after that is a new transaction.
        let acked = cseq.method == Method::Invite
            && prev >= 300
            && self
                .acks
                .get(&(who.to_owned(), key.0.clone(), key.1.clone()))
                .is_some_and(|&ack| ack >= at && now.saturating_duration_since(ack) >= TIMER_I);
        if acked || now.saturating_duration_since(at) >= Duration::from_secs(32) {
            self.finals.insert(key, (code, now));
            return;
        }
        assert!(
            prev == code || (200..300).contains(&prev) && (200..300).contains(&code),
            "two different final responses ({prev}, {code}) for one server transaction"
        );
    }
}

/// Runs one fuzz input. Panics when an invariant breaks.
pub fn endpoint(data: &[u8]) {
    // The virtual clock's origin, its only reading of the real clock (std has no other way to
    // make an `Instant`); from here on time moves by the input, and the endpoints are given it.
    let start = Instant::now();
    let a_addr = SocketAddr::from(([10, 0, 0, 1], 5060));
    let b_addr = SocketAddr::from(([10, 0, 0, 2], 5060));
    let mk = |addr: SocketAddr, seed: u64, mode: u8| {
        let cfg = EndpointConfig {
            local_addrs: vec![(Transport::Udp, addr)],
            max_transactions: 64,
            max_lingering: 64,
            max_dialogs: 16,
            // Overload shedding, reached in a few steps: datagrams handed over without the
            // pump reporting an empty queue, and time moving on.
            shed_after: Some(Duration::from_millis(100)),
            shed_backlog: 2,
            ..EndpointConfig::default()
        };
        let mut ep = Endpoint::new(cfg, seed);
        ep.set_uas_handler_factory(move || Box::new(Answer(mode)) as Box<dyn UasHandler>);
        ep
    };
    let mut c = Cursor(data);
    let mode = c.byte().unwrap_or(0);
    let mut a = mk(a_addr, 1, mode);
    let mut b = mk(b_addr, 2, mode.wrapping_add(1));
    let mut now = start;
    let mut wire: Vec<(bool, bytes::Bytes, Instant)> = Vec::new();
    let mut checker = Checker {
        finals: HashMap::new(),
        acks: HashMap::new(),
        now: start,
    };
    let mut steps = 0;
    while let Some(op) = c.byte() {
        steps += 1;
        if steps > 256 {
            break;
        }
        match op % 9 {
            0 => {
                let n = c.byte().unwrap_or(0) as usize;
                let raw = c.take(n).to_vec();
                checker.delivered(&raw, "b");
                b.handle_datagram(now, b_addr, a_addr, Transport::Udp, raw.into());
            }
            1 | 2 => {
                let t = template(&mut c);
                checker.delivered(&t, "b");
                b.handle_datagram(now, b_addr, a_addr, Transport::Udp, t.into());
            }
            3 => {
                now += Duration::from_millis(c.byte().unwrap_or(0) as u64 * 100);
                checker.now = now;
                a.handle_timeout(now);
                b.handle_timeout(now);
            }
            4 => {
                let _ = a.invite(
                    now,
                    InviteRequest::new("sip:a@10.0.0.1", "sip:b@10.0.0.2", b_addr, Transport::Udp),
                );
            }
            5 => {
                let ep = if c.byte().unwrap_or(0) % 2 == 0 {
                    &mut a
                } else {
                    &mut b
                };
                if let Some(&d) = ep.dialog_ids().first() {
                    let _ = match c.byte().unwrap_or(0) % 3 {
                        0 => ep.bye(now, d),
                        1 => ep.cancel(now, d),
                        _ => ep
                            .request_in_dialog(now, d, Method::Invite, vec![], None)
                            .map(|_| ()),
                    };
                }
            }
            6 => {
                if let Some(&tx) = b.pending_server_transactions().first() {
                    let code = [180u16, 200, 486, 603][c.byte().unwrap_or(0) as usize % 4];
                    let _ = b.respond(now, tx, Reply::new(code));
                }
            }
            7 => {
                let _ = a.register(
                    now,
                    RegisterRequest {
                        registrar_uri: "sip:10.0.0.2".into(),
                        aor: "sip:a@10.0.0.2".into(),
                        dst: b_addr,
                        transport: Transport::Udp,
                        expires: 60,
                        credentials: Some(DigestCredentials::new("a", "b")),
                    },
                );
            }
            _ => {
                // Deliver (or drop, by the next byte) what is on the wire.
                let how = c.byte().unwrap_or(0);
                let drop = how % 4 == 0;
                pump(&mut a, &mut b, &mut wire, &mut checker);
                for (to_b, p, sent) in wire.drain(..) {
                    // The network's maximum segment lifetime is T4 (§17.1.2.2): older copies
                    // are gone, as the RFC's timers assume.
                    if drop || now.saturating_duration_since(sent) >= Duration::from_secs(4) {
                        continue;
                    }
                    checker.delivered(&p, if to_b { "b" } else { "a" });
                    if to_b {
                        b.handle_datagram(now, b_addr, a_addr, Transport::Udp, p);
                    } else {
                        a.handle_datagram(now, a_addr, b_addr, Transport::Udp, p);
                    }
                }
                if how & 4 != 0 {
                    a.receive_queue_empty();
                    b.receive_queue_empty();
                }
            }
        }
        pump(&mut a, &mut b, &mut wire, &mut checker);
    }
    a.receive_queue_empty();
    b.receive_queue_empty();
    // Hang everything up, then the tables must drain in bounded virtual time.
    let deadline = now + Duration::from_secs(4 * 3600);
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds < 100_000, "no progress");
        for ep in [&mut a, &mut b] {
            for tx in ep.pending_server_transactions() {
                let _ = ep.respond(now, tx, Reply::new(500));
            }
            for d in ep.dialog_ids() {
                let _ = ep.bye(now, d);
            }
            for r in ep.registration_ids() {
                let _ = ep.unregister(now, r);
            }
        }
        pump(&mut a, &mut b, &mut wire, &mut checker);
        if !wire.is_empty() {
            for (to_b, p, _) in wire.drain(..) {
                checker.delivered(&p, if to_b { "b" } else { "a" });
                if to_b {
                    b.handle_datagram(now, b_addr, a_addr, Transport::Udp, p);
                } else {
                    a.handle_datagram(now, a_addr, b_addr, Transport::Udp, p);
                }
            }
            continue;
        }
        let next = [a.poll_timeout(), b.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(t) => {
                assert!(
                    t <= deadline,
                    "tables did not drain in bounded virtual time"
                );
                now = now.max(t);
                checker.now = now;
                a.handle_timeout(now);
                b.handle_timeout(now);
            }
            None => break,
        }
    }
    assert!(a.is_idle() && b.is_idle(), "tables not empty: {a:?} {b:?}");
}

fn pump(
    a: &mut Endpoint,
    b: &mut Endpoint,
    wire: &mut Vec<(bool, bytes::Bytes, Instant)>,
    checker: &mut Checker,
) {
    let a_addr = SocketAddr::from(([10, 0, 0, 1], 5060));
    let b_addr = SocketAddr::from(([10, 0, 0, 2], 5060));
    while let Some(t) = a.poll_transmit() {
        checker.check(&t.payload, "a");
        if t.dst == b_addr {
            wire.push((true, t.payload, checker.now));
        }
    }
    while let Some(t) = b.poll_transmit() {
        checker.check(&t.payload, "b");
        if t.dst == a_addr {
            wire.push((false, t.payload, checker.now));
        }
    }
    while a.poll_event().is_some() {}
    while b.poll_event().is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_logic_survives_pseudo_random_inputs() {
        let mut x: u64 = 0x1234_5678;
        for len in 0..400usize {
            let data: Vec<u8> = (0..len * 3)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 24) as u8
                })
                .collect();
            endpoint(&data);
        }
    }
}
