//! Zero allocations per packet in steady state, send and receive (counted with the
//! `allocation-counter` crate, since the crate forbids `unsafe` and a custom `GlobalAlloc` needs
//! it).

use parrot_media_core::handler::{DefaultHandler, MediaAction};
use parrot_media_core::session::{MediaConfig, MediaSession, RecordMode, Role};
use parrot_media_core::wav::encode_wav_pcm16;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

#[test]
fn steady_state_send_and_receive_allocate_nothing() {
    let t0 = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut cfg_a = MediaConfig::new("10.0.0.1".parse().unwrap(), 4000);
    cfg_a.record = RecordMode::Both;
    let mut a = MediaSession::new("a", Role::Uac, cfg_a, DefaultHandler, &mut rng, t0).unwrap();
    let mut b = MediaSession::new(
        "b",
        Role::Uas,
        MediaConfig::new("10.0.0.2".parse().unwrap(), 5000),
        DefaultHandler,
        &mut rng,
        t0,
    )
    .unwrap();
    let offer = a.create_offer(t0).unwrap();
    let answer = b.process_offer(t0, &offer).unwrap();
    a.process_answer(t0, &answer).unwrap();
    // A long prompt, loaded before measuring.
    a.handle_command(t0, MediaAction::play("long.wav"));
    while a.poll_event().is_some() {}
    let pcm: Vec<i16> = (0..8000 * 60).map(|i| ((i % 100) * 100) as i16).collect();
    a.handle_file(t0, "long.wav", &encode_wav_pcm16(8000, 1, &pcm).unwrap());

    let mut buf = [0u8; 1500];
    let mut audio = [0i16; 2048];
    let mut step = |now: Instant,
                    a: &mut MediaSession<DefaultHandler>,
                    b: &mut MediaSession<DefaultHandler>| {
        let mut n = 0;
        a.handle_timeout(now);
        b.handle_timeout(now);
        while let Some(t) = a.poll_transmit(now, &mut buf) {
            b.handle_rtp(now, &buf[..t.len]);
            n += 1;
        }
        while let Some(t) = b.poll_transmit(now, &mut buf) {
            a.handle_rtp(now, &buf[..t.len]);
            n += 1;
        }
        while a.poll_event().is_some() {}
        while b.poll_event().is_some() {}
        while a.poll_audio(&mut audio).is_some() {}
        n
    };
    // Warm up: first packets, first RTCP, probation, buffers at their working size.
    let mut now = t0;
    for _ in 0..500 {
        step(now, &mut a, &mut b);
        now += Duration::from_millis(20);
    }
    let mut packets = 0;
    let info = allocation_counter::measure(|| {
        for _ in 0..1000 {
            packets += step(now, &mut a, &mut b);
            now += Duration::from_millis(20);
        }
    });
    assert!(packets >= 2000, "{packets} packets");
    assert_eq!(
        info.count_total, 0,
        "allocations over {packets} packets (RTP and RTCP, both directions)"
    );
}
