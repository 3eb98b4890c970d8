//! One endpoint as a UAS under a steady call rate, for the stalls of its growing tables: every
//! call is an INVITE answered 200 at once, its ACK and a BYE, all in the same 100 ms slice of
//! virtual time. Each answered INVITE lingers 32 s (Timer L) and each BYE 32 s (Timer J), so at
//! 8,000 calls/s about 500,000 transactions linger from 32 s on. Prints the wall-clock time of
//! the slowest 100 ms slice of virtual time and of the whole run.
//!
//! `cargo bench -p parrot-proto --bench linger_stall -- [calls/s] [seconds]` (8000 and 75).

use parrot_proto::{Action, Endpoint, EndpointConfig, Request, Transport, UasHandler};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

struct Answer;
impl UasHandler for Answer {
    fn handle_invite(&mut self, _r: &Request<'_>) -> Action {
        Action::respond(200)
    }
}

const SLICE: Duration = Duration::from_millis(100);

fn request(method: &str, n: u64, branch: &str, cseq: u32, to_tag: Option<&str>) -> Vec<u8> {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "{method} sip:bob@10.0.0.2:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-{branch}-{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@10.0.0.1>;tag=a{n}\r\n\
         To: <sip:bob@10.0.0.2>{to_tag}\r\n\
         Call-ID: call-{n}@10.0.0.1\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:alice@10.0.0.1:5060>\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The To tag of a response.
fn to_tag(resp: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(resp).ok()?;
    let line = text
        .lines()
        .find(|l| l.starts_with("To:") || l.starts_with("t:"))?;
    let at = line.find(";tag=")? + 5;
    let rest = &line[at..];
    let end = rest.find([';', '>', ' ']).unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let rate: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(8000);
    let secs: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(75);
    let a_addr = SocketAddr::from(([10, 0, 0, 1], 5060));
    let b_addr = SocketAddr::from(([10, 0, 0, 2], 5060));
    let cfg = EndpointConfig {
        local_addrs: vec![(Transport::Udp, b_addr)],
        ..EndpointConfig::default()
    };
    let mut b = Endpoint::new(cfg, 2u64);
    b.set_uas_handler_factory(|| Box::new(Answer) as Box<dyn UasHandler>);
    let per_slice = rate / 10;
    let slices = secs * 10;
    let mut now = Instant::now();
    let mut n = 0u64;
    let mut slice_times = Vec::new();
    let mut most_lingering = 0;
    let started = Instant::now();
    for s in 0..slices {
        let t0 = Instant::now();
        for _ in 0..per_slice {
            n += 1;
            let dg = |b: &mut Endpoint, m: Vec<u8>| {
                b.handle_datagram(now, b_addr, a_addr, Transport::Udp, m.into())
            };
            dg(&mut b, request("INVITE", n, "i", 1, None));
            let mut tag = None;
            while let Some(t) = b.poll_transmit() {
                if t.payload.starts_with(b"SIP/2.0 200") {
                    tag = to_tag(&t.payload);
                }
            }
            while b.poll_event().is_some() {}
            let tag = tag.expect("200 with a To tag");
            dg(&mut b, request("ACK", n, "a", 1, Some(&tag)));
            dg(&mut b, request("BYE", n, "b", 2, Some(&tag)));
            while b.poll_transmit().is_some() {}
            while b.poll_event().is_some() {}
        }
        now += SLICE;
        b.handle_timeout(now);
        while b.poll_transmit().is_some() {}
        while b.poll_event().is_some() {}
        slice_times.push((t0.elapsed(), s));
        most_lingering = most_lingering.max(b.server_transactions());
    }
    let total = started.elapsed();
    slice_times.sort();
    let median = slice_times[slice_times.len() / 2].0;
    let worst: Vec<String> = (slice_times.iter().rev().take(3))
        .map(|(t, s)| {
            format!(
                "{:.1} ms at {:.1} s",
                t.as_secs_f64() * 1e3,
                *s as f64 / 10.0
            )
        })
        .collect();
    println!(
        "{n} calls at {rate}/s over {secs} s virtual: total {:.2} s wall, median 100 ms slice {:.1} ms, worst {}; most server transactions {most_lingering}",
        total.as_secs_f64(),
        median.as_secs_f64() * 1e3,
        worst.join(", "),
    );
}
