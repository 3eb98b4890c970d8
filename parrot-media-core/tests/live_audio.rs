//! Live audio (a capture device) goes out when no file plays, through a bounded FIFO; and the
//! handler's recording and hang-up actions reach the driver as events.

use parrot_media_core::codec::g711::ulaw_decode;
use parrot_media_core::handler::*;
use parrot_media_core::rtp::RtpPacket;
use parrot_media_core::session::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

fn pair(
    h: impl MediaHandler,
) -> (
    MediaSession<impl MediaHandler>,
    MediaSession<DefaultHandler>,
    Instant,
) {
    let now = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut a = MediaSession::new(
        "a",
        Role::Uac,
        MediaConfig::new("127.0.0.1".parse().unwrap(), 20000),
        h,
        &mut rng,
        now,
    )
    .unwrap();
    let mut b = MediaSession::new(
        "b",
        Role::Uas,
        MediaConfig::new("127.0.0.1".parse().unwrap(), 30000),
        DefaultHandler,
        &mut rng,
        now,
    )
    .unwrap();
    let offer = a.create_offer(now).unwrap();
    let answer = b.process_offer(now, &offer).unwrap();
    a.process_answer(now, &answer).unwrap();
    (a, b, now)
}

#[test]
fn live_samples_are_sent_when_no_file_plays_and_the_fifo_is_bounded() {
    let (mut a, _b, start) = pair(DefaultHandler);
    let tone: Vec<i16> = (0..800)
        .map(|i| if i % 2 == 0 { 8000 } else { -8000 })
        .collect();
    a.handle_audio_in(&tone);
    let mut buf = [0u8; 1500];
    let mut now = start;
    let mut loud = 0;
    for _ in 0..10 {
        a.handle_timeout(now);
        while let Some(t) = a.poll_transmit(now, &mut buf) {
            if t.kind == TransmitKind::Rtp {
                let p = RtpPacket::parse(&buf[..t.len]).unwrap();
                let peak = p
                    .payload
                    .iter()
                    .map(|&b| ulaw_decode(b).unsigned_abs())
                    .max()
                    .unwrap_or(0);
                if peak > 4000 {
                    loud += 1;
                }
            }
        }
        now += Duration::from_millis(20);
    }
    assert_eq!(
        loud, 5,
        "800 samples are five 20 ms frames, sent once three are buffered"
    );
    let (_, underruns) = a.live_stats();
    assert_eq!(
        underruns, 1,
        "one underrun, then it waits for a new cushion"
    );
    // Far more than two seconds at once: the oldest are dropped and counted, nothing grows.
    a.handle_audio_in(&vec![1i16; 40_000]);
    let (overrun, _) = a.live_stats();
    assert_eq!(overrun, 40_000 - 16_000);
}

struct Actor;
impl MediaHandler for Actor {
    fn handle_stream_start(&mut self, _: &str, _: StreamDirection) -> Actions {
        vec![
            MediaAction::StartRecording("m.wav".into()),
            MediaAction::StopRecording,
            MediaAction::Hangup("done".into()),
        ]
        .into()
    }
}

#[test]
fn recording_and_hangup_actions_become_driver_events() {
    let (mut a, _b, now) = pair(Actor);
    a.handle_timeout(now);
    let mut events = Vec::new();
    while let Some(e) = a.poll_event() {
        events.push(e);
    }
    let want = [
        MediaEvent::RecordingStarted {
            path: "m.wav".into(),
        },
        MediaEvent::RecordingStopped {
            path: "m.wav".into(),
        },
        MediaEvent::HangupRequested {
            reason: "done".into(),
        },
    ];
    for w in want {
        assert!(events.contains(&w), "{w:?} in {events:?}");
    }
}
