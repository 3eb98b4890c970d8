//! With the `opus` feature, two sessions negotiate Opus (RFC 7587) with a 48 kHz
//! telephone-event, carry audio and DTMF, and the codec plugs in without session changes.
#![cfg(feature = "opus")]

use parrot_media_core::codec::Codec;
use parrot_media_core::handler::{DefaultHandler, MediaAction};
use parrot_media_core::session::{MediaConfig, MediaEvent, MediaSession, RecordMode, Role};
use parrot_media_core::wav::encode_wav_pcm16;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

#[test]
fn opus_call_carries_audio_and_dtmf() {
    let t0 = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut cfg_a = MediaConfig::new("10.0.0.1".parse().unwrap(), 4000);
    cfg_a.local.codecs = vec![Codec::Opus, Codec::Pcmu].into();
    let mut cfg_b = MediaConfig::new("10.0.0.2".parse().unwrap(), 5000);
    cfg_b.local.codecs = vec![Codec::Opus, Codec::Pcmu].into();
    cfg_b.record = RecordMode::Inbound;
    let mut a = MediaSession::new("a", Role::Uac, cfg_a, DefaultHandler, &mut rng, t0).unwrap();
    let mut b = MediaSession::new("b", Role::Uas, cfg_b, DefaultHandler, &mut rng, t0).unwrap();
    let offer = a.create_offer(t0).unwrap();
    assert!(offer.contains("a=rtpmap:96 opus/48000/2\r\n"), "{offer}");
    assert!(offer.contains("telephone-event/48000"));
    let answer = b.process_offer(t0, &offer).unwrap();
    a.process_answer(t0, &answer).unwrap();
    assert_eq!(a.codec(), Some(Codec::Opus));
    assert_eq!(b.negotiated().unwrap().telephone_event_pt, Some(102));

    a.handle_command(t0, MediaAction::play("tone.wav"));
    while a.poll_event().is_some() {}
    let tone: Vec<i16> = (0..16000)
        .map(|n| {
            (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * f64::from(n) / 16000.0).sin()) as i16
        })
        .collect();
    a.handle_file(t0, "tone.wav", &encode_wav_pcm16(16000, 1, &tone).unwrap());
    a.send_dtmf(
        t0 + Duration::from_millis(500),
        '5',
        Duration::from_millis(100),
    )
    .unwrap();

    let mut buf = [0u8; 1500];
    let mut pcm = [0i16; 2048];
    let mut loud = 0;
    let mut now = t0;
    let mut digits = Vec::new();
    while now < t0 + Duration::from_millis(1500) {
        a.handle_timeout(now);
        while let Some(t) = a.poll_transmit(now, &mut buf) {
            b.handle_rtp(now, &buf[..t.len]);
        }
        while let Some(f) = b.poll_audio(&mut pcm) {
            assert_eq!(f.sample_rate, 48000);
            if pcm[..f.len].iter().any(|s| s.unsigned_abs() > 2000) {
                loud += 1;
            }
        }
        while let Some(e) = b.poll_event() {
            if let MediaEvent::DtmfReceived { digit, .. } = e {
                digits.push(digit);
            }
        }
        while a.poll_event().is_some() {}
        now = a.poll_timeout().unwrap();
    }
    assert!(loud >= 40, "{loud} loud frames");
    assert_eq!(digits, vec!['5']);
}
