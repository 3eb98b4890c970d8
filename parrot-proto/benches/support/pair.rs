//! The two endpoints of the simulated-call benches, wired back to back in memory.

use parrot_proto::{
    Action, Body, Endpoint, EndpointConfig, Event, InviteRequest, Reply, Request, Transport,
    UasHandler,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub const SDP: &[u8] = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";

struct Defer;
impl UasHandler for Defer {
    fn handle_invite(&mut self, _r: &Request<'_>) -> Action {
        Action::NoReply
    }
}

pub struct Pair {
    pub a: Endpoint,
    pub b: Endpoint,
    a_addr: SocketAddr,
    b_addr: SocketAddr,
    pub now: Instant,
    /// Whether B answers an incoming call (180 then 200) as soon as it arrives.
    pub answer: bool,
}

impl Pair {
    pub fn new() -> Self {
        let a_addr = SocketAddr::from(([10, 0, 0, 1], 5060));
        let b_addr = SocketAddr::from(([10, 0, 0, 2], 5060));
        let cfg = |addr| EndpointConfig {
            local_addrs: vec![(Transport::Udp, addr)],
            ..EndpointConfig::default()
        };
        let a = Endpoint::new(cfg(a_addr), 1u64);
        let mut b = Endpoint::new(cfg(b_addr), 2u64);
        b.set_uas_handler_factory(|| Box::new(Defer) as Box<dyn UasHandler>);
        Pair {
            a,
            b,
            a_addr,
            b_addr,
            now: Instant::now(),
            answer: true,
        }
    }

    /// Moves every datagram across; B answers 180 then 200 as soon as the call arrives.
    pub fn pump(&mut self) -> Vec<Event> {
        let mut a_events = Vec::new();
        loop {
            let mut moved = false;
            while let Some(t) = self.a.poll_transmit() {
                moved = true;
                self.b.handle_datagram(
                    self.now,
                    self.b_addr,
                    self.a_addr,
                    Transport::Udp,
                    t.payload,
                );
            }
            while let Some(e) = self.b.poll_event() {
                if let (true, Event::IncomingCall { tx, .. }) = (self.answer, e) {
                    let _ = self.b.respond(self.now, tx, Reply::new(180));
                    let _ = self
                        .b
                        .respond(self.now, tx, Reply::new(200).body(Body::sdp(SDP)));
                }
            }
            while let Some(t) = self.b.poll_transmit() {
                moved = true;
                self.a.handle_datagram(
                    self.now,
                    self.a_addr,
                    self.b_addr,
                    Transport::Udp,
                    t.payload,
                );
            }
            while let Some(e) = self.a.poll_event() {
                a_events.push(e);
            }
            if !moved {
                return a_events;
            }
        }
    }

    pub fn call_up(&mut self) -> parrot_proto::DialogId {
        let mut req = InviteRequest::new(
            "sip:alice@10.0.0.1",
            "sip:bob@10.0.0.2",
            self.b_addr,
            Transport::Udp,
        );
        req.body = Some(Body::sdp(SDP));
        let d = self.a.invite(self.now, req).expect("invite");
        self.pump();
        d
    }

    pub fn whole_call(&mut self) {
        let d = self.call_up();
        self.a.bye(self.now, d).expect("bye");
        self.pump();
        // Let every timer (K, J, L, M, ...) run out.
        self.now += Duration::from_secs(40);
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
        self.pump();
    }
}
