//! Whole proxied calls in memory, no sockets: UAC -> stateful record-routing proxy -> UAS
//! (RFC 3261 §16): INVITE / 100 / 180 / 200 / ACK / BYE / 200 on both hops, then the virtual
//! clock runs every transaction timer out. Criterion times the whole call (three endpoints);
//! afterwards the time spent inside the proxy endpoint alone is printed as proxied calls per
//! second per core.
//!
//! `cargo bench -p parrot-proto --bench sim_proxy_call -- --warm-up-time 1 --measurement-time 3`

use criterion::{Criterion, Throughput};
use parrot_proto::{
    Action, Body, Endpoint, EndpointConfig, InviteRequest, Reply, Request, Transport, UasHandler,
};
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const SDP: &[u8] = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";

struct ProxyTo(String);
impl UasHandler for ProxyTo {
    fn handle_invite(&mut self, _r: &Request<'_>) -> Action {
        Action::Proxy(self.0.clone())
    }
}

struct Answer;
impl UasHandler for Answer {
    fn handle_invite(&mut self, r: &Request<'_>) -> Action {
        if r.message.to_header().is_ok_and(|t| t.tag().is_some()) {
            return Action::respond(200);
        }
        Action::Respond(Reply::new(200).body(Body::sdp(SDP)))
    }
}

struct Trio {
    eps: [Endpoint; 3],
    addrs: [SocketAddr; 3],
    now: Instant,
    /// Wall time spent inside the proxy endpoint (index 1).
    in_proxy: Duration,
}

impl Trio {
    fn new() -> Self {
        let addrs = [1u8, 3, 2].map(|n| SocketAddr::from(([10, 0, 0, n], 5060)));
        let cfg = |addr| EndpointConfig {
            local_addrs: vec![(Transport::Udp, addr)],
            ..EndpointConfig::default()
        };
        let a = Endpoint::new(cfg(addrs[0]), 1u64);
        let mut p = Endpoint::new(cfg(addrs[1]), 3u64);
        p.set_uas_handler_factory(|| {
            Box::new(ProxyTo("sip:bob@10.0.0.2".into())) as Box<dyn UasHandler>
        });
        let mut b = Endpoint::new(cfg(addrs[2]), 2u64);
        b.set_uas_handler_factory(|| Box::new(Answer) as Box<dyn UasHandler>);
        Trio {
            eps: [a, p, b],
            addrs,
            now: Instant::now(),
            in_proxy: Duration::ZERO,
        }
    }

    /// Moves datagrams to the endpoint they are addressed to until nothing moves.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            for i in 0..3 {
                let t0 = (i == 1).then(Instant::now);
                let mut out = Vec::new();
                while let Some(t) = self.eps[i].poll_transmit() {
                    out.push(t);
                }
                while self.eps[i].poll_event().is_some() {}
                if let Some(t0) = t0 {
                    self.in_proxy += t0.elapsed();
                }
                for t in out {
                    moved = true;
                    let Some(j) = self.addrs.iter().position(|a| *a == t.dst) else {
                        continue;
                    };
                    let t0 = (j == 1).then(Instant::now);
                    self.eps[j].handle_datagram(
                        self.now,
                        self.addrs[j],
                        self.addrs[i],
                        Transport::Udp,
                        t.payload,
                    );
                    if let Some(t0) = t0 {
                        self.in_proxy += t0.elapsed();
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn whole_call(&mut self) {
        let mut req = InviteRequest::new(
            "sip:alice@10.0.0.1",
            "sip:bob@example.com",
            self.addrs[1],
            Transport::Udp,
        );
        req.body = Some(Body::sdp(SDP));
        let d = self.eps[0].invite(self.now, req).expect("invite");
        self.pump();
        self.eps[0].bye(self.now, d).expect("bye");
        self.pump();
        self.now += Duration::from_secs(40);
        for i in 0..3 {
            let t0 = (i == 1).then(Instant::now);
            self.eps[i].handle_timeout(self.now);
            if let Some(t0) = t0 {
                self.in_proxy += t0.elapsed();
            }
        }
        self.pump();
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("sim_proxy_call");
    g.throughput(Throughput::Elements(1));
    let mut t = Trio::new();
    g.bench_function("uac_proxy_uas_call_with_record_route", |bch| {
        bch.iter(|| {
            t.whole_call();
            black_box(&t.eps[1]);
        })
    });
    g.finish();
    assert!(
        t.eps.iter().all(Endpoint::is_idle),
        "tables drained between calls"
    );
    // The proxy alone, over a fixed number of calls.
    let mut t = Trio::new();
    const N: u32 = 20_000;
    for _ in 0..N {
        t.whole_call();
    }
    let per_call = t.in_proxy / N;
    println!(
        "proxy endpoint alone: {:.1} µs per proxied call = {:.0} proxied calls/s per core",
        per_call.as_secs_f64() * 1e6,
        1.0 / per_call.as_secs_f64()
    );
    c.final_summary();
}
