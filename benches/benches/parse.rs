#![allow(missing_docs)] // criterion_group! generates undocumented items
//! Parse a message and read the headers every transaction and dialog needs (top Via branch,
//! From tag, To URI and tag, Call-ID, CSeq), for Parrot and three other Rust SIP parsers in the
//! same run, so the ratios are measured on the same machine at the same time.
//!
//! `cargo bench -p parrot-benches --bench parse`

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use parrot_benches::{parrot, rsip, rsipstack, sipx, MESSAGES};

fn parse_and_read(c: &mut Criterion) {
    for (name, raw) in MESSAGES {
        let b = Bytes::from_static(raw);
        // Every parser must read the same message before its time means anything.
        assert!(parrot(&b) > 0 && rsipstack(&b) > 0 && rsip(&b) > 0 && sipx(&b) > 0);
        let mut g = c.benchmark_group(format!("parse_read/{name}"));
        g.throughput(Throughput::Elements(1));
        g.bench_function("parrot", |x| x.iter(|| parrot(black_box(&b))));
        g.bench_function("rsipstack", |x| x.iter(|| rsipstack(black_box(&b))));
        g.bench_function("sipx-sip", |x| x.iter(|| sipx(black_box(&b))));
        g.bench_function("rsip", |x| x.iter(|| rsip(black_box(&b))));
        g.finish();
    }
}

fn serialize(c: &mut Criterion) {
    use parrot_proto::{Message, RequestBuilder, ResponseBuilder};
    for (name, raw) in MESSAGES {
        let b = Bytes::from_static(raw);
        let ours = Message::parse(b.clone()).expect("parse");
        let theirs_stack = rsipstack::sip::parser::parse_message(&b).expect("parse");
        let theirs_rsip = rsip::SipMessage::try_from(&b[..]).expect("parse");
        let theirs_sipx =
            sipx_sip::parse_datagram(b.clone(), &sipx_sip::Limits::default()).expect("parse");
        let mut g = c.benchmark_group(format!("serialize/{name}"));
        g.throughput(Throughput::Elements(1));
        // A parsed message serializes to the bytes it came from: no copy at all.
        g.bench_function("parrot_parsed", |x| x.iter(|| black_box(&ours).to_bytes()));
        // Building from parts writes the message and parses it back to check it.
        g.bench_function("parrot_builder", |x| {
            x.iter(|| {
                let m = black_box(&ours);
                if m.is_request() {
                    RequestBuilder::from_message(m).map(|r| r.build())
                } else {
                    let mut r = ResponseBuilder::new(m.status().unwrap_or(200));
                    for h in m.headers() {
                        r = r.raw_header(h.name_str, h.value);
                    }
                    Some(r.build())
                }
            })
        });
        g.bench_function("rsipstack", |x| {
            x.iter(|| black_box(&theirs_stack).to_bytes())
        });
        g.bench_function("sipx-sip", |x| {
            x.iter(|| black_box(&theirs_sipx).to_bytes())
        });
        g.bench_function("rsip", |x| x.iter(|| black_box(&theirs_rsip).to_string()));
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = parse_and_read, serialize
}
criterion_main!(benches);
