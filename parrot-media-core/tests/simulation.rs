//! Deterministic simulation: two `MediaSession`s through a seeded lossy, reordering network on a
//! virtual clock that jumps to the earliest wake-up. A 60 s call with 5% loss each way.

use parrot_media_core::handler::{DtmfSource, MediaHandler, StreamDirection};
use parrot_media_core::rtp::RtpPacket;
use parrot_media_core::session::{
    MediaConfig, MediaEvent, MediaSession, RecordMode, Role, TransmitKind,
};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Recorder {
    digits: Vec<char>,
}

impl MediaHandler for Recorder {
    fn handle_dtmf(
        &mut self,
        digit: char,
        _source: DtmfSource,
    ) -> parrot_media_core::handler::Actions {
        self.digits.push(digit);
        parrot_media_core::handler::Actions::None
    }
}

struct Datagram {
    to_b: bool,
    kind: TransmitKind,
    bytes: Vec<u8>,
}

/// A seeded link: drops with probability `loss`, delays by 20 ms plus, for 10% of packets, up to
/// 40 ms more (which reorders them).
struct Network {
    rng: ChaCha8Rng,
    loss: f64,
    in_flight: BTreeMap<(Instant, u64), Datagram>,
    counter: u64,
    warmup_until: Instant,
    /// A→B RTP in send order: (seq, payload type, dropped).
    a_to_b_rtp: Vec<(u16, u8, bool)>,
}

impl Network {
    fn send(&mut self, now: Instant, to_b: bool, kind: TransmitKind, bytes: &[u8]) {
        let dropped =
            now >= self.warmup_until && (self.rng.next_u32() as f64 / u32::MAX as f64) < self.loss;
        if to_b && kind == TransmitKind::Rtp {
            let p = RtpPacket::parse(bytes).unwrap();
            self.a_to_b_rtp
                .push((p.sequence_number, p.payload_type, dropped));
        }
        if dropped {
            return;
        }
        let mut delay = Duration::from_millis(20);
        if self.rng.next_u32() % 10 == 0 {
            delay += Duration::from_millis(u64::from(self.rng.next_u32() % 40));
        }
        self.counter += 1;
        self.in_flight.insert(
            (now + delay, self.counter),
            Datagram {
                to_b,
                kind,
                bytes: bytes.to_vec(),
            },
        );
    }
}

fn drain<H: MediaHandler>(
    s: &mut MediaSession<H>,
    now: Instant,
    to_b: bool,
    net: &mut Network,
    events: &mut Vec<MediaEvent>,
    frames: &mut Vec<(u32, bool)>,
) {
    let mut buf = [0u8; 1500];
    while let Some(t) = s.poll_transmit(now, &mut buf) {
        net.send(now, to_b, t.kind, &buf[..t.len]);
    }
    while let Some(e) = s.poll_event() {
        events.push(e);
    }
    let mut pcm = [0i16; 2048];
    while let Some(f) = s.poll_audio(&mut pcm) {
        assert_eq!(f.direction, StreamDirection::Inbound);
        frames.push((f.timestamp, f.concealed));
    }
}

#[test]
fn sixty_second_call_with_five_percent_loss_and_reordering() {
    let t0 = Instant::now();
    let mut seed = ChaCha8Rng::seed_from_u64(7);
    let mut cfg_a = MediaConfig::new("10.0.0.1".parse().unwrap(), 4000);
    cfg_a.cname = "a@sim".into();
    let mut cfg_b = MediaConfig::new("10.0.0.2".parse().unwrap(), 5000);
    cfg_b.record = RecordMode::Inbound;
    let mut a =
        MediaSession::new("a", Role::Uac, cfg_a, Recorder::default(), &mut seed, t0).unwrap();
    let mut b =
        MediaSession::new("b", Role::Uas, cfg_b, Recorder::default(), &mut seed, t0).unwrap();
    let offer = a.create_offer(t0).unwrap();
    let answer = b.process_offer(t0, &offer).unwrap();
    a.process_answer(t0, &answer).unwrap();

    let mut net = Network {
        rng: ChaCha8Rng::seed_from_u64(42),
        loss: 0.05,
        in_flight: BTreeMap::new(),
        counter: 0,
        warmup_until: t0 + Duration::from_millis(200),
        a_to_b_rtp: Vec::new(),
    };
    let (mut ev_a, mut ev_b) = (Vec::new(), Vec::new());
    let (mut fr_a, mut fr_b) = (Vec::new(), Vec::new());
    let digits: Vec<char> = "0123456789*#ABCD".chars().collect();
    let mut next_digit = 0;
    let end = t0 + Duration::from_secs(60);
    let mut now = t0;
    let mut steps = 0u64;
    while now < end + Duration::from_millis(500) {
        steps += 1;
        // DTMF every 3 s from t=1 s.
        if next_digit < digits.len() && now >= t0 + Duration::from_secs(1 + 3 * next_digit as u64) {
            a.send_dtmf(now, digits[next_digit], Duration::from_millis(100))
                .unwrap();
            next_digit += 1;
        }
        while let Some((&(at, k), _)) = net.in_flight.iter().next() {
            if at > now {
                break;
            }
            let d = net.in_flight.remove(&(at, k)).unwrap();
            let s_rtp = |s: &mut dyn FnMut(&[u8]), bytes: &[u8]| s(bytes);
            if d.to_b {
                match d.kind {
                    TransmitKind::Rtp => s_rtp(&mut |x| b.handle_rtp(now, x), &d.bytes),
                    TransmitKind::Rtcp => b.handle_rtcp(now, &d.bytes),
                }
            } else {
                match d.kind {
                    TransmitKind::Rtp => a.handle_rtp(now, &d.bytes),
                    TransmitKind::Rtcp => a.handle_rtcp(now, &d.bytes),
                }
            }
        }
        if now >= end && a.state() != parrot_media_core::session::SessionState::Stopped {
            a.stop(now, "hangup");
            b.stop(now, "hangup");
        }
        a.handle_timeout(now);
        b.handle_timeout(now);
        drain(&mut a, now, true, &mut net, &mut ev_a, &mut fr_a);
        drain(&mut b, now, false, &mut net, &mut ev_b, &mut fr_b);
        let next = [
            a.poll_timeout(),
            b.poll_timeout(),
            net.in_flight.keys().next().map(|k| k.0),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else { break };
        assert!(next >= now, "time never goes backwards");
        now = next.max(now + Duration::from_micros(1));
    }
    assert!(steps < 200_000, "{steps} steps");

    // Every DTMF digit exactly once, in order.
    assert_eq!(b.handler().digits, digits);
    let dtmf_events: Vec<char> = ev_b
        .iter()
        .filter_map(|e| {
            if let MediaEvent::DtmfReceived { digit, .. } = e {
                Some(*digit)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(dtmf_events, digits);

    // Loss reported equals loss inflicted (up to the last packet that arrived; the first packet
    // is the RFC 3550 §A.1 probation packet and never dropped).
    let sent = &net.a_to_b_rtp;
    let stats = *b.receiver_stats().unwrap();
    let last_seq = stats.extended_max() as u16;
    let last_idx = sent
        .iter()
        .rposition(|(s, _, d)| *s == last_seq && !d)
        .unwrap();
    let dropped = sent[..=last_idx].iter().filter(|(_, _, d)| *d).count() as i64;
    assert!(dropped > 100, "5% of ~3000 packets, got {dropped}");
    assert_eq!(stats.cumulative_lost(), dropped);

    // Every audio packet that arrived was delivered, in order; each drop became one concealed frame.
    let arrived_audio = sent[..=last_idx]
        .iter()
        .filter(|(_, pt, d)| !d && *pt != 101)
        .count();
    let delivered: Vec<u32> = fr_b.iter().filter(|(_, c)| !c).map(|(ts, _)| *ts).collect();
    let js = b.jitter_stats();
    assert_eq!(js.late, 0);
    assert_eq!(js.duplicates, 0);
    assert!(js.reordered > 0, "the network did reorder");
    assert_eq!(delivered.len(), arrived_audio);
    assert!(
        delivered
            .windows(2)
            .all(|w| w[1].wrapping_sub(w[0]) as i32 > 0),
        "in order"
    );
    assert_eq!(js.lost as i64, dropped);

    // RTCP flowed both ways: A learnt its loss and RTT from B's reports.
    let rr = a.remote_report().expect("receiver report from B");
    assert!(rr.cumulative_lost > 0 && i64::from(rr.cumulative_lost) <= dropped);
    let rtt = a.rtt().expect("rtt");
    assert!((0.03..0.2).contains(&rtt), "rtt {rtt}");
    assert!(
        ev_a.iter().any(|e| matches!(e, MediaEvent::RemoteBye))
            || ev_b.iter().any(|e| matches!(e, MediaEvent::RemoteBye))
    );
    assert!(ev_b
        .iter()
        .any(|e| matches!(e, MediaEvent::SessionStopped { .. })));
}
