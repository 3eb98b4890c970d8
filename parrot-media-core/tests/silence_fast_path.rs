//! Silence sent while nothing plays is encoded from a static zero frame; a session recording
//! both directions takes the general path (`fill_frame`). Both must put the same bytes on the
//! wire (RFC 3550 §5.1 headers, G.711 digital silence).

use parrot_media_core::handler::DefaultHandler;
use parrot_media_core::session::*;
use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

/// Every datagram a session sends over `ticks` pacing steps, with its kind.
fn sent(
    record: RecordMode,
    send_silence: bool,
    offer: &str,
    seed: u64,
    ticks: usize,
) -> Vec<(TransmitKind, Vec<u8>)> {
    let t0 = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut config = MediaConfig::new("192.0.2.9".parse().unwrap(), 30000);
    config.record = record;
    config.send_silence = send_silence;
    let mut s = MediaSession::new("s", Role::Uas, config, DefaultHandler, &mut rng, t0).unwrap();
    s.process_offer(t0, offer).unwrap();
    let mut buf = [0u8; 1500];
    let mut out = Vec::new();
    let mut t = s.first_packet_due().unwrap_or(t0);
    for _ in 0..ticks {
        s.handle_timeout(t);
        while let Some(tx) = s.poll_transmit(t, &mut buf) {
            out.push((tx.kind, buf[..tx.len].to_vec()));
        }
        t = s.poll_timeout().unwrap_or(t + Duration::from_millis(10));
    }
    s.stop(t, "done");
    while let Some(tx) = s.poll_transmit(t, &mut buf) {
        out.push((tx.kind, buf[..tx.len].to_vec()));
    }
    out
}

proptest! {
    #[test]
    fn static_silence_sends_what_the_filled_frame_sends(
        pt in prop::sample::select(vec![0u8, 8]),
        ptime in prop::sample::select(vec![10u32, 20, 30, 40, 60]),
        send_silence in any::<bool>(),
        seed in any::<u64>(),
        ticks in 1usize..12,
    ) {
        let name = if pt == 0 { "PCMU" } else { "PCMA" };
        let offer = format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP {pt}\r\na=rtpmap:{pt} {name}/8000\r\na=ptime:{ptime}\r\n"
        );
        let fast = sent(RecordMode::Inbound, send_silence, &offer, seed, ticks);
        let general = sent(RecordMode::Both, send_silence, &offer, seed, ticks);
        prop_assert_eq!(fast, general);
    }
}
