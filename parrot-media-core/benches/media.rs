//! Criterion benchmarks: G.711 encode/decode, RTP write/parse, jitter buffer insert/pop, and a
//! whole media session tick (both directions of one 20 ms packet).
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use parrot_media_core::codec::g711;
use parrot_media_core::handler::DefaultHandler;
use parrot_media_core::rtp::jitter::JitterBuffer;
use parrot_media_core::rtp::{RtpHeader, RtpPacket};
use parrot_media_core::session::{MediaConfig, MediaSession, Role};
use std::time::{Duration, Instant};

// The benches' one deterministic RNG (and the setup helpers this bench does not call).
#[allow(dead_code)]
#[path = "support/setup.rs"]
mod setup;
use setup::Rng;

fn g711_benches(c: &mut Criterion) {
    let n = 1 << 16;
    let pcm: Vec<i16> = (0..n).map(|i| (i as i32 - 32768) as i16).collect();
    let mut codes = vec![0u8; n];
    let mut out = vec![0i16; n];
    let mut g = c.benchmark_group("g711");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("ulaw_encode_64k", |b| {
        b.iter(|| g711::ulaw_encode_slice(black_box(&pcm), &mut codes))
    });
    g.bench_function("alaw_encode_64k", |b| {
        b.iter(|| g711::alaw_encode_slice(black_box(&pcm), &mut codes))
    });
    g711::ulaw_encode_slice(&pcm, &mut codes);
    g.bench_function("ulaw_decode_64k", |b| {
        b.iter(|| g711::ulaw_decode_slice(black_box(&codes), &mut out))
    });
    g.bench_function("alaw_decode_64k", |b| {
        b.iter(|| g711::alaw_decode_slice(black_box(&codes), &mut out))
    });
    g.throughput(Throughput::Elements(160));
    g.bench_function("ulaw_encode_frame_160", |b| {
        b.iter(|| g711::ulaw_encode_slice(black_box(&pcm[..160]), &mut codes[..160]))
    });
    g.finish();
}

fn rtp_benches(c: &mut Criterion) {
    let payload = [0xD5u8; 160];
    let mut buf = [0u8; 1500];
    let h = RtpHeader {
        marker: false,
        payload_type: 8,
        sequence_number: 1234,
        timestamp: 5678,
        ssrc: 0xDEAD_BEEF,
        csrc: &[],
        extension: None,
    };
    let mut g = c.benchmark_group("rtp");
    g.throughput(Throughput::Elements(1));
    g.bench_function("write_packet_160", |b| {
        b.iter(|| black_box(&h).write_packet(&mut buf, black_box(&payload), 0))
    });
    let n = h.write_packet(&mut buf, &payload, 0).unwrap();
    let pkt = buf[..n].to_vec();
    g.bench_function("parse_packet_160", |b| {
        b.iter(|| RtpPacket::parse(black_box(&pkt)).map(|p| p.payload.len()))
    });
    g.finish();
}

fn jitter_benches(c: &mut Criterion) {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(64, 1500, Duration::from_millis(100), t0);
    let mut bufs = Vec::new();
    for i in 0..64u16 {
        let mut b = vec![0u8; 200];
        let h = RtpHeader {
            payload_type: 0,
            sequence_number: i,
            timestamp: u32::from(i) * 160,
            ssrc: 1,
            ..Default::default()
        };
        let n = h.write_packet(&mut b, &[0xFF; 160], 0).unwrap();
        b.truncate(n);
        bufs.push(b);
    }
    let mut seq: u16 = 0;
    let mut g = c.benchmark_group("jitter");
    g.throughput(Throughput::Elements(1));
    let mut scratch = [0u8; 200];
    g.bench_function("insert_pop_in_order", |b| {
        b.iter(|| {
            let src = &bufs[usize::from(seq % 64)];
            scratch[..src.len()].copy_from_slice(src);
            scratch[2..4].copy_from_slice(&seq.to_be_bytes());
            seq = seq.wrapping_add(1);
            let p = RtpPacket::parse(&scratch[..src.len()]).unwrap();
            jb.insert(t0, &p);
            black_box(jb.pop(t0).is_some())
        })
    });
    // Pairs swapped: every other packet waits for its predecessor.
    let mut jb = JitterBuffer::new(64, 1500, Duration::from_millis(100), t0);
    let parsed: Vec<Vec<u8>> = bufs.clone();
    let mut k: u16 = 0;
    g.bench_function("insert_pop_reordered_pairs", |b| {
        b.iter(|| {
            let s = if k % 2 == 0 {
                k.wrapping_add(1)
            } else {
                k.wrapping_sub(1)
            };
            let src = &parsed[usize::from(s % 64)];
            scratch[..src.len()].copy_from_slice(src);
            scratch[2..4].copy_from_slice(&s.to_be_bytes());
            k = k.wrapping_add(1);
            let p = RtpPacket::parse(&scratch[..src.len()]).unwrap();
            jb.insert(t0, &p);
            let mut n = 0;
            while jb.pop(t0).is_some() {
                n += 1;
            }
            black_box(n)
        })
    });
    g.finish();
}

fn session_benches(c: &mut Criterion) {
    let t0 = Instant::now();
    let mut a = MediaSession::new(
        "a",
        Role::Uac,
        MediaConfig::new("10.0.0.1".parse().unwrap(), 4000),
        DefaultHandler,
        &mut Rng(1),
        t0,
    )
    .unwrap();
    let mut b = MediaSession::new(
        "b",
        Role::Uas,
        MediaConfig::new("10.0.0.2".parse().unwrap(), 5000),
        DefaultHandler,
        &mut Rng(2),
        t0,
    )
    .unwrap();
    let offer = a.create_offer(t0).unwrap();
    let answer = b.process_offer(t0, &offer).unwrap();
    a.process_answer(t0, &answer).unwrap();
    let mut now = t0;
    let mut buf = [0u8; 1500];
    let mut g = c.benchmark_group("session");
    g.throughput(Throughput::Elements(1));
    g.bench_function("tick_20ms_both_directions", |bch| {
        bch.iter(|| {
            a.handle_timeout(now);
            b.handle_timeout(now);
            while let Some(t) = a.poll_transmit(now, &mut buf) {
                b.handle_rtp(now, &buf[..t.len]);
            }
            while let Some(t) = b.poll_transmit(now, &mut buf) {
                a.handle_rtp(now, &buf[..t.len]);
            }
            while a.poll_event().is_some() {}
            while b.poll_event().is_some() {}
            now += Duration::from_millis(20);
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    g711_benches,
    rtp_benches,
    jitter_benches,
    session_benches
);
criterion_main!(benches);
