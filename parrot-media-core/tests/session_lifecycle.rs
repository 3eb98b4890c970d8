//! MediaSession behaviour: the Parrot callback flow, the play queue with file requests,
//! pause/resume, repeat, hold/resume re-offers, DTMF sending, codec choice and stream errors.

use parrot_media_core::codec::g711::ulaw_decode;
use parrot_media_core::codec::Codec;
use parrot_media_core::dtmf::rfc4733::TelephoneEvent;
use parrot_media_core::handler::*;
use parrot_media_core::rtp::RtpPacket;
use parrot_media_core::sdp::{AttributeList, Direction, SessionDescription};
use parrot_media_core::session::*;
use parrot_media_core::wav::encode_wav_pcm16;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Script {
    calls: Vec<String>,
    on_start: Vec<MediaAction>,
    after_welcome: Option<MediaAction>,
    choice: Option<CodecChoice>,
    on_error: Option<ErrorDecision>,
}

impl MediaHandler for Script {
    fn init(&mut self, id: &str) -> Result<(), String> {
        self.calls.push(format!("init {id}"));
        Ok(())
    }
    fn handle_session_start(&mut self, _id: &str, role: Role) -> Result<(), String> {
        self.calls.push(format!("session_start {role:?}"));
        Ok(())
    }
    fn handle_offer(&mut self, _sdp: &str, origin: SdpOrigin) -> SdpDecision {
        self.calls.push(format!("offer {origin:?}"));
        SdpDecision::NoReply
    }
    fn handle_answer(&mut self, _sdp: &str, origin: SdpOrigin) -> SdpDecision {
        self.calls.push(format!("answer {origin:?}"));
        SdpDecision::NoReply
    }
    fn handle_codec_negotiation(&mut self, offered: &[Codec], supported: &[Codec]) -> CodecChoice {
        self.calls.push("codec_negotiation".into());
        self.choice
            .clone()
            .unwrap_or_else(|| CodecChoice::default_for(offered, supported))
    }
    fn handle_negotiation_complete(
        &mut self,
        _l: &str,
        _r: &str,
        codec: Codec,
    ) -> Result<(), String> {
        self.calls.push(format!("negotiation_complete {codec}"));
        Ok(())
    }
    fn handle_stream_start(&mut self, _id: &str, d: StreamDirection) -> Actions {
        self.calls.push(format!("stream_start {d:?}"));
        Actions::Many(std::mem::take(&mut self.on_start))
    }
    fn handle_play_complete(&mut self, path: &str) -> Actions {
        self.calls.push(format!("play_complete {path}"));
        if path == "welcome.wav" {
            self.after_welcome
                .take()
                .map_or(Actions::None, Actions::One)
        } else {
            Actions::None
        }
    }
    fn handle_stream_stop(&mut self, _id: &str, reason: &str) {
        self.calls.push(format!("stream_stop {reason}"));
    }
    fn handle_stream_error(&mut self, _id: &str, _e: &StreamError) -> ErrorDecision {
        self.calls.push("stream_error".into());
        self.on_error.clone().unwrap_or(ErrorDecision::Continue)
    }
    fn handle_session_stop(&mut self, _id: &str, reason: &str) {
        self.calls.push(format!("session_stop {reason}"));
    }
    fn handle_media_request(&mut self, request: &dyn std::any::Any) -> Result<Actions, String> {
        match request.downcast_ref::<&str>() {
            Some(&"beep") => Ok(MediaAction::play("beep.wav").into()),
            _ => Err("unknown request".into()),
        }
    }
}

const OFFER: &str = "v=0\r\no=peer 1 1 IN IP4 198.51.100.9\r\ns=-\r\nc=IN IP4 198.51.100.9\r\nt=0 0\r\n\
m=audio 30000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n";

fn uas(h: Script) -> (MediaSession<Script>, Instant) {
    let t0 = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let s = MediaSession::new(
        "call-1",
        Role::Uas,
        MediaConfig::new("192.0.2.1".parse().unwrap(), 20000),
        h,
        &mut rng,
        t0,
    )
    .unwrap();
    (s, t0)
}

/// A 48 kHz stereo WAV of `ms` milliseconds of a 1 kHz tone.
fn tone_wav(ms: u32) -> Vec<u8> {
    let n = 48 * ms;
    let mut v = Vec::new();
    for i in 0..n {
        let s =
            (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * f64::from(i) / 48000.0).sin()) as i16;
        v.push(s);
        v.push(s);
    }
    encode_wav_pcm16(48000, 2, &v).unwrap()
}

/// A call answered (our [`OFFER`]) that plays `path` in a loop.
fn answered_playing_looped(path: &str) -> (MediaSession<Script>, Instant) {
    let opts = PlayOptions {
        repeat: 1,
        looped: true,
    };
    let (mut s, t0) = uas(Script {
        on_start: vec![MediaAction::play_with(path, opts)],
        ..Default::default()
    });
    s.process_offer(t0, OFFER).unwrap();
    (s, t0)
}

struct Sent {
    ts: u32,
    seq: u16,
    pt: u8,
    marker: bool,
    loud: bool,
    payload: Vec<u8>,
}

fn run(
    s: &mut MediaSession<Script>,
    from: Instant,
    until: Instant,
    events: &mut Vec<MediaEvent>,
) -> Vec<Sent> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1500];
    let mut now = from;
    loop {
        s.handle_timeout(now);
        while let Some(t) = s.poll_transmit(now, &mut buf) {
            if t.kind == TransmitKind::Rtp {
                let p = RtpPacket::parse(&buf[..t.len]).unwrap();
                let loud = p
                    .payload
                    .iter()
                    .any(|&c| ulaw_decode(c).unsigned_abs() > 1000);
                out.push(Sent {
                    ts: p.timestamp,
                    seq: p.sequence_number,
                    pt: p.payload_type,
                    marker: p.marker,
                    loud,
                    payload: p.payload.to_vec(),
                });
            }
        }
        while let Some(e) = s.poll_event() {
            if let MediaEvent::FileRequest { path } = &e {
                if path.ends_with(".wav") && !path.starts_with("missing") {
                    s.handle_file(now, path, &tone_wav(100));
                } else {
                    s.handle_file_error(now, path, "not found");
                }
            }
            events.push(e);
        }
        match s.poll_timeout() {
            Some(t) if t <= until => now = t.max(now),
            _ => break,
        }
    }
    out
}

#[test]
fn uas_callback_flow_follows_parrot_order_and_answer_is_valid() {
    let (mut s, t0) = uas(Script::default());
    let answer = s.process_offer(t0, OFFER).unwrap();
    let sd = SessionDescription::parse(&answer).unwrap();
    assert_eq!(sd.media[0].formats, vec!["0", "8", "101"]);
    assert_eq!(s.codec(), Some(Codec::Pcmu));
    assert_eq!(
        s.negotiated().unwrap().remote_rtp,
        Some("198.51.100.9:30000".parse().unwrap())
    );
    // The first packet goes (a session that sent nothing sends no RTCP BYE).
    assert_eq!(drain(&mut s, t0), vec![(TransmitKind::Rtp, 0x80)]); // marker, PCMU
    s.stop(t0, "bye");
    let calls = &s.handler().calls;
    assert_eq!(
        calls,
        &[
            "init call-1",
            "session_start Uas",
            "offer Inbound",
            "codec_negotiation",
            "answer Outbound",
            "negotiation_complete PCMU",
            "stream_start Bidirectional",
            "stream_stop bye",
            "session_stop bye"
        ]
    );
    // The BYE goes out after stop.
    let mut buf = [0u8; 1500];
    let t = s.poll_transmit(t0, &mut buf).unwrap();
    assert_eq!(t.kind, TransmitKind::Rtcp);
    assert!(s.poll_transmit(t0, &mut buf).is_none());
}

#[test]
fn handler_single_codec_choice_and_no_common_codec() {
    let (mut s, t0) = uas(Script {
        choice: Some(CodecChoice::One(Codec::Pcma)),
        ..Default::default()
    });
    s.process_offer(t0, OFFER).unwrap();
    assert_eq!(s.codec(), Some(Codec::Pcma));
    let (mut s, t0) = uas(Script {
        choice: Some(CodecChoice::NoCommonCodec),
        ..Default::default()
    });
    assert!(matches!(
        s.process_offer(t0, OFFER),
        Err(MediaError::Negotiation(_))
    ));
}

#[test]
fn play_requests_the_file_plays_it_and_completes_once_then_chains() {
    let (mut s, t0) = uas(Script {
        on_start: vec![MediaAction::play("welcome.wav")],
        after_welcome: Some(MediaAction::play("menu.wav")),
        ..Default::default()
    });
    s.process_offer(t0, OFFER).unwrap();
    let mut events = Vec::new();
    let sent = run(&mut s, t0, t0 + Duration::from_millis(600), &mut events);
    let requests: Vec<_> = events
        .iter()
        .filter_map(|e| {
            if let MediaEvent::FileRequest { path } = e {
                Some(path.as_str())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(requests, vec!["welcome.wav", "menu.wav"]);
    let completes: Vec<_> = events
        .iter()
        .filter_map(|e| {
            if let MediaEvent::PlayComplete { path } = e {
                Some(path.as_str())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(completes, vec!["welcome.wav", "menu.wav"]);
    // 100 ms + 100 ms of tone = 10 loud packets of 20 ms.
    assert_eq!(sent.iter().filter(|p| p.loud).count(), 10);
    assert!(sent[0].marker);
    // Drift-free timestamps and sequence numbers throughout.
    for w in sent.windows(2) {
        assert_eq!(w[1].ts.wrapping_sub(w[0].ts), 160);
        assert_eq!(w[1].seq.wrapping_sub(w[0].seq), 1);
    }
    assert_eq!(
        s.handler()
            .calls
            .iter()
            .filter(|c| c.starts_with("play_complete"))
            .count(),
        2
    );
}

#[test]
fn repeat_plays_n_times_and_completes_once() {
    let opts = PlayOptions {
        repeat: 3,
        looped: false,
    };
    let (mut s, t0) = uas(Script {
        on_start: vec![MediaAction::play_with("prompt.wav", opts)],
        ..Default::default()
    });
    s.process_offer(t0, OFFER).unwrap();
    let mut events = Vec::new();
    let sent = run(&mut s, t0, t0 + Duration::from_millis(1000), &mut events);
    assert_eq!(sent.iter().filter(|p| p.loud).count(), 15);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, MediaEvent::PlayComplete { .. }))
            .count(),
        1
    );
}

#[test]
fn loop_plays_until_stop() {
    let (mut s, t0) = answered_playing_looped("moh.wav");
    let mut events = Vec::new();
    let sent = run(&mut s, t0, t0 + Duration::from_millis(1000), &mut events);
    assert!(sent.iter().filter(|p| p.loud).count() >= 49);
    s.handle_command(t0 + Duration::from_millis(1000), MediaAction::Stop);
    let sent = run(
        &mut s,
        t0 + Duration::from_millis(1001),
        t0 + Duration::from_millis(1200),
        &mut events,
    );
    assert_eq!(sent.iter().filter(|p| p.loud).count(), 0);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, MediaEvent::PlayComplete { .. }))
            .count(),
        0
    );
}

#[test]
fn a_looped_file_is_sent_sample_for_sample_across_frames_and_loops() {
    let (mut s, t0) = answered_playing_looped("moh.wav");
    let mut events = Vec::new();
    // 100 ms of tone (five frames; the last one ends the file and goes the general way),
    // played three times over.
    let sent = run(&mut s, t0, t0 + Duration::from_millis(300), &mut events);
    let pcm = decode_for_playback(&tone_wav(100), 8000).unwrap();
    let mut expected = Vec::new();
    for _ in 0..3 {
        expected.extend(
            pcm.iter()
                .map(|&x| parrot_media_core::codec::g711::ulaw_encode(x)),
        );
    }
    let got: Vec<u8> = sent
        .iter()
        .flat_map(|p| p.payload.iter().copied())
        .collect();
    // Silence goes out while the file is fetched; then every sample, in order.
    let start = got
        .windows(16)
        .position(|w| w == &expected[..16])
        .expect("the file never starts");
    assert_eq!(&got[start..start + expected.len()], &expected[..]);
}

#[test]
fn the_first_packet_can_be_delayed_by_less_than_two_packet_times_before_it_goes() {
    let (mut s, t0) = uas(Script::default());
    s.process_offer(t0, OFFER).unwrap();
    assert_eq!(s.first_packet_due(), Some(t0));
    // Not earlier, not two whole packet times later.
    assert!(!s.delay_first_packet(t0 - Duration::from_millis(1)));
    assert!(!s.delay_first_packet(t0 + Duration::from_millis(40)));
    assert!(s.delay_first_packet(t0 + Duration::from_millis(7)));
    assert_eq!(s.first_packet_due(), Some(t0 + Duration::from_millis(7)));
    let mut events = Vec::new();
    let sent = run(&mut s, t0, t0 + Duration::from_millis(6), &mut events);
    assert!(sent.is_empty(), "nothing before the new start");
    let sent = run(
        &mut s,
        t0 + Duration::from_millis(7),
        t0 + Duration::from_millis(100),
        &mut events,
    );
    assert!(sent.len() >= 4);
    // Once a packet has gone, the clock stays.
    assert_eq!(s.first_packet_due(), None);
    assert!(!s.delay_first_packet(t0 + Duration::from_millis(9)));
}

#[test]
fn pause_and_resume_keep_timestamps_continuous_and_resume_where_paused() {
    let (mut s, t0) = uas(Script {
        on_start: vec![MediaAction::play("welcome.wav")],
        ..Default::default()
    });
    s.process_offer(t0, OFFER).unwrap();
    let mut ev = Vec::new();
    let mut all = run(&mut s, t0, t0 + Duration::from_millis(40), &mut ev);
    s.handle_command(t0 + Duration::from_millis(41), MediaAction::Pause);
    assert!(s.is_paused());
    all.extend(run(
        &mut s,
        t0 + Duration::from_millis(41),
        t0 + Duration::from_millis(300),
        &mut ev,
    ));
    s.handle_command(t0 + Duration::from_millis(301), MediaAction::Resume);
    all.extend(run(
        &mut s,
        t0 + Duration::from_millis(301),
        t0 + Duration::from_millis(600),
        &mut ev,
    ));
    for w in all.windows(2) {
        assert_eq!(
            w[1].ts.wrapping_sub(w[0].ts),
            160,
            "timestamps continuous across pause"
        );
    }
    // 5 loud packets in total, 3 before the pause and 2 after it.
    assert_eq!(all.iter().filter(|p| p.loud).count(), 5);
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, MediaEvent::PlayComplete { .. }))
            .count(),
        1
    );
}

#[test]
fn missing_file_goes_to_handle_stream_error_and_retry_requests_again() {
    let (mut s, t0) = uas(Script {
        on_start: vec![MediaAction::play("missing.raw")],
        on_error: Some(ErrorDecision::Continue),
        ..Default::default()
    });
    s.process_offer(t0, OFFER).unwrap();
    let mut ev = Vec::new();
    run(&mut s, t0, t0 + Duration::from_millis(100), &mut ev);
    assert!(ev
        .iter()
        .any(|e| matches!(e, MediaEvent::StreamError { .. })));
    assert_eq!(s.play_queue_len(), 0);

    let (mut s, t0) = uas(Script {
        on_start: vec![MediaAction::play("x.wav")],
        on_error: Some(ErrorDecision::Retry),
        ..Default::default()
    });
    s.process_offer(t0, OFFER).unwrap();
    let _ = s.poll_event();
    let _ = s.poll_event();
    s.handle_file(t0, "x.wav", b"not a wav");
    let evs: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(evs.contains(&MediaEvent::FileRequest {
        path: "x.wav".into()
    }));

    let (mut s, t0) = uas(Script {
        on_start: vec![MediaAction::play("x.wav")],
        on_error: Some(ErrorDecision::Stop("bad".into())),
        ..Default::default()
    });
    s.process_offer(t0, OFFER).unwrap();
    s.handle_file_error(t0, "x.wav", "denied");
    assert_eq!(s.state(), SessionState::Stopped);
}

#[test]
fn media_request_is_routed_to_the_handler() {
    let (mut s, t0) = uas(Script::default());
    s.process_offer(t0, OFFER).unwrap();
    s.handle_media_request(t0, &"beep").unwrap();
    assert_eq!(s.play_queue_len(), 1);
    assert!(s.handle_media_request(t0, &"nope").is_err());
}

#[test]
fn send_dtmf_emits_rfc4733_start_updates_and_three_ends() {
    let (mut s, t0) = uas(Script::default());
    s.process_offer(t0, OFFER).unwrap();
    s.send_dtmf(t0, '7', Duration::from_millis(100)).unwrap();
    let mut ev = Vec::new();
    let sent = run(&mut s, t0, t0 + Duration::from_millis(300), &mut ev);
    let te: Vec<&Sent> = sent.iter().filter(|p| p.pt == 101).collect();
    assert_eq!(te.len(), 5 + 2);
    assert!(te[0].marker && te[1..].iter().all(|p| !p.marker));
    assert!(
        te.iter().all(|p| p.ts == te[0].ts),
        "one timestamp per event"
    );
    let evs: Vec<TelephoneEvent> = te
        .iter()
        .map(|p| TelephoneEvent::parse(&p.payload).unwrap())
        .collect();
    assert_eq!(evs.iter().filter(|e| e.end).count(), 3);
    assert_eq!(evs.last().unwrap().duration, 800);
    assert!(evs.iter().all(|e| e.event == 7));
    // Audio after the event continues on the media clock.
    for w in sent.windows(2) {
        assert_eq!(w[1].seq.wrapping_sub(w[0].seq), 1);
    }
}

#[test]
fn hold_and_resume_reoffer_with_bumped_version_and_direction() {
    let t0 = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut a = plain("a", Role::Uac, "192.0.2.1", 20000, &mut rng, t0);
    let mut b = plain("b", Role::Uas, "192.0.2.2", 30000, &mut rng, t0);
    let offer = a.create_offer(t0).unwrap();
    let v0 = SessionDescription::parse(&offer)
        .unwrap()
        .origin
        .session_version;
    let answer = b.process_offer(t0, &offer).unwrap();
    let bv0 = SessionDescription::parse(&answer)
        .unwrap()
        .origin
        .session_version;
    a.process_answer(t0, &answer).unwrap();

    let hold = a.hold(t0).unwrap();
    let hold_sd = SessionDescription::parse(&hold).unwrap();
    assert_eq!(hold_sd.origin.session_version, v0 + 1);
    assert_eq!(hold_sd.media_direction(0), Direction::SendOnly);
    let hold_answer = b.process_offer(t0, &hold).unwrap();
    let ha = SessionDescription::parse(&hold_answer).unwrap();
    assert_eq!(ha.media_direction(0), Direction::RecvOnly);
    assert_eq!(ha.origin.session_version, bv0 + 1);
    a.process_answer(t0, &hold_answer).unwrap();
    assert_eq!(a.negotiated().unwrap().direction, Direction::SendOnly);
    assert_eq!(b.negotiated().unwrap().direction, Direction::RecvOnly);
    // B, on hold, sends no RTP.
    let mut buf = [0u8; 1500];
    let later = t0 + Duration::from_millis(500);
    b.handle_timeout(later);
    while let Some(t) = b.poll_transmit(later, &mut buf) {
        assert_eq!(t.kind, TransmitKind::Rtcp);
    }

    let resume = a.resume(t0).unwrap();
    let rs = SessionDescription::parse(&resume).unwrap();
    assert_eq!(rs.origin.session_version, v0 + 2);
    assert_eq!(rs.media_direction(0), Direction::SendRecv);
    let ra = b.process_offer(t0, &resume).unwrap();
    a.process_answer(t0, &ra).unwrap();
    assert_eq!(b.negotiated().unwrap().direction, Direction::SendRecv);
    assert!(rs.media[0].rtcp_mux());
    // An unchanged re-offer keeps its version.
    let same = a.create_offer(t0).unwrap();
    assert_eq!(
        SessionDescription::parse(&same)
            .unwrap()
            .origin
            .session_version,
        v0 + 2
    );
}

#[test]
fn set_codec_switches_between_negotiated_codecs_only() {
    let (mut s, t0) = uas(Script::default());
    s.process_offer(t0, OFFER).unwrap();
    s.handle_command(t0, MediaAction::SetCodec(Codec::Pcma));
    assert_eq!(s.codec(), Some(Codec::Pcma));
    s.handle_command(t0, MediaAction::SetCodec(Codec::Opus));
    assert_eq!(s.codec(), Some(Codec::Pcma));
    assert!(std::iter::from_fn(|| s.poll_event()).any(|e| matches!(
        e,
        MediaEvent::StreamError {
            error: StreamError::CodecUnavailable(Codec::Opus)
        }
    )));
}

#[test]
fn recording_both_directions_tags_frames() {
    let t0 = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut cfg = MediaConfig::new("192.0.2.1".parse().unwrap(), 20000);
    cfg.record = RecordMode::Both;
    let mut s = MediaSession::new("r", Role::Uas, cfg, DefaultHandler, &mut rng, t0).unwrap();
    s.process_offer(t0, OFFER).unwrap();
    let mut buf = [0u8; 1500];
    while s.poll_transmit(t0, &mut buf).is_some() {}
    let hdr = parrot_media_core::rtp::RtpHeader {
        payload_type: 0,
        sequence_number: 1,
        timestamp: 160,
        ssrc: 9,
        ..Default::default()
    };
    for k in 0..3u16 {
        let h = parrot_media_core::rtp::RtpHeader {
            sequence_number: 1 + k,
            timestamp: 160 * u32::from(k + 1),
            ..hdr
        };
        let n = h.write_packet(&mut buf, &[0xFF; 160], 0).unwrap();
        s.handle_rtp(t0, &buf[..n]);
    }
    let mut pcm = [0i16; 2048];
    let frames: Vec<AudioFrame> = std::iter::from_fn(|| s.poll_audio(&mut pcm)).collect();
    assert!(frames
        .iter()
        .any(|f| f.direction == StreamDirection::Outbound && f.len == 160));
    assert_eq!(
        frames
            .iter()
            .filter(|f| f.direction == StreamDirection::Inbound)
            .count(),
        3
    );
}

#[test]
fn inband_dtmf_tones_are_detected_once() {
    let t0 = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut cfg = MediaConfig::new("192.0.2.1".parse().unwrap(), 20000);
    cfg.inband_dtmf = true;
    let mut s = MediaSession::new("r", Role::Uas, cfg, DefaultHandler, &mut rng, t0).unwrap();
    s.process_offer(t0, OFFER).unwrap();
    let mut buf = [0u8; 1500];
    let tone: Vec<u8> = (0..8000)
        .map(|n| {
            let t = n as f64 / 8000.0;
            let v = if n < 800 {
                5000.0
                    * ((2.0 * std::f64::consts::PI * 852.0 * t).sin()
                        + (2.0 * std::f64::consts::PI * 1477.0 * t).sin())
            } else {
                0.0
            };
            parrot_media_core::codec::g711::ulaw_encode(v as i16)
        })
        .collect();
    for (k, chunk) in tone.chunks(160).enumerate() {
        let h = parrot_media_core::rtp::RtpHeader {
            payload_type: 0,
            sequence_number: k as u16,
            timestamp: 160 * k as u32,
            ssrc: 9,
            ..Default::default()
        };
        let n = h.write_packet(&mut buf, chunk, 0).unwrap();
        s.handle_rtp(t0 + Duration::from_millis(20 * k as u64), &buf[..n]);
    }
    let digits: Vec<char> = std::iter::from_fn(|| s.poll_event())
        .filter_map(|e| {
            if let MediaEvent::DtmfReceived {
                digit,
                source: DtmfSource::InBand,
            } = e
            {
                Some(digit)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(digits, vec!['9']);
}

#[test]
fn remote_ssrc_change_restarts_reception_and_recording_becomes_a_wav() {
    let t0 = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let mut cfg = MediaConfig::new("192.0.2.1".parse().unwrap(), 20000);
    cfg.record = RecordMode::Inbound;
    let mut s = MediaSession::new("r", Role::Uas, cfg, DefaultHandler, &mut rng, t0).unwrap();
    s.process_offer(t0, OFFER).unwrap();
    let mut buf = [0u8; 1500];
    let mut pcm = [0i16; 2048];
    let mut recorded: Vec<i16> = Vec::new();
    for (ssrc, first_seq) in [(0x1111_1111u32, 65530u16), (0x2222_2222, 100)] {
        for k in 0..10u16 {
            let h = parrot_media_core::rtp::RtpHeader {
                payload_type: 0,
                sequence_number: first_seq.wrapping_add(k),
                timestamp: u32::from(k) * 160,
                ssrc,
                ..Default::default()
            };
            let n = h.write_packet(&mut buf, &[0x80; 160], 0).unwrap();
            s.handle_rtp(t0 + Duration::from_millis(u64::from(k) * 20), &buf[..n]);
            while let Some(f) = s.poll_audio(&mut pcm) {
                recorded.extend_from_slice(&pcm[..f.len]);
            }
        }
        assert_eq!(s.remote_ssrc(), Some(ssrc));
    }
    assert_eq!(s.jitter_stats().ssrc_changes, 1);
    assert_eq!(s.jitter_stats().lost, 0);
    assert_eq!(recorded.len(), 20 * 160);
    // The adapter writes the frames with hound; what it writes reads back.
    let wav = parrot_media_core::wav::encode_wav_pcm16(8000, 1, &recorded).unwrap();
    let mut r = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
    assert_eq!(r.spec().sample_rate, 8000);
    let back: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
    assert_eq!(back, recorded);
}

#[test]
fn ipv6_offer_is_answered_with_ipv6_addresses() {
    let t0 = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let mut s = plain("v6", Role::Uas, "2001:db8::1", 20000, &mut rng, t0);
    let offer = "v=0\r\no=- 1 1 IN IP6 2001:db8::9\r\ns=-\r\nt=0 0\r\nm=audio 30000 RTP/AVP 8\r\nc=IN IP6 2001:db8::9\r\n";
    let answer = s.process_offer(t0, offer).unwrap();
    assert!(answer.contains("c=IN IP6 2001:db8::1\r\n"), "{answer}");
    assert!(answer.contains("o=- "));
    assert_eq!(
        s.negotiated().unwrap().remote_rtp,
        Some("[2001:db8::9]:30000".parse().unwrap())
    );
    assert_eq!(s.codec(), Some(Codec::Pcma));
}

#[test]
fn holding_a_call_the_peer_already_holds_offers_inactive() {
    let t0 = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut a = plain("a", Role::Uac, "192.0.2.1", 20000, &mut rng, t0);
    let mut b = plain("b", Role::Uas, "192.0.2.2", 30000, &mut rng, t0);
    let answer = b.process_offer(t0, &a.create_offer(t0).unwrap()).unwrap();
    a.process_answer(t0, &answer).unwrap();
    let answer = b.process_offer(t0, &a.hold(t0).unwrap()).unwrap();
    a.process_answer(t0, &answer).unwrap();
    // B is held (recvonly); B now holds too: inactive (RFC 3264 §8.4).
    let reoffer = b.hold(t0).unwrap();
    assert_eq!(
        SessionDescription::parse(&reoffer)
            .unwrap()
            .media_direction(0),
        Direction::Inactive
    );
    let answer = a.process_offer(t0, &reoffer).unwrap();
    assert_eq!(
        SessionDescription::parse(&answer)
            .unwrap()
            .media_direction(0),
        Direction::Inactive
    );
    b.process_answer(t0, &answer).unwrap();
    assert_eq!(b.negotiated().unwrap().direction, Direction::Inactive);
}

#[test]
fn session_is_send_for_multithreaded_adapters() {
    fn assert_send<T: Send>() {}
    assert_send::<MediaSession<DefaultHandler>>();
    assert_send::<MediaSession<Box<dyn MediaHandler + Send>>>();
}

#[test]
fn late_wakeup_sends_a_bounded_burst_and_timestamps_follow_the_clock() {
    let (mut s, t0) = uas(Script::default());
    s.process_offer(t0, OFFER).unwrap();
    let mut buf = [0u8; 1500];
    let mut ts = Vec::new();
    let mut send = |s: &mut MediaSession<Script>, now: Instant, ts: &mut Vec<u32>| {
        s.handle_timeout(now);
        while let Some(t) = s.poll_transmit(now, &mut buf) {
            if t.kind == TransmitKind::Rtp {
                ts.push(RtpPacket::parse(&buf[..t.len]).unwrap().timestamp);
            }
        }
    };
    send(&mut s, t0, &mut ts);
    // The driver oversleeps by a full second.
    send(&mut s, t0 + Duration::from_millis(1000), &mut ts);
    assert_eq!(ts.len(), 1 + 3, "one packet, then a burst of max_burst");
    assert_eq!(
        ts[1].wrapping_sub(ts[0]),
        48 * 160,
        "skipped packets leave a timestamp gap"
    );
    assert_eq!(s.packets_skipped(), 47);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_millis(1020)));
}

#[test]
fn packets_polled_ahead_of_time_carry_their_place_on_the_packet_clock() {
    let (mut s, t0) = uas(Script::default());
    s.process_offer(t0, OFFER).unwrap();
    assert_eq!(s.next_transmit_due(), Some(t0));
    let mut buf = [0u8; 1500];
    // Polled 50 ms ahead: the packets due by then come out, each with its own due time.
    let ahead = t0 + Duration::from_millis(50);
    let mut dues = Vec::new();
    while let Some(t) = s.poll_transmit(ahead, &mut buf) {
        if t.kind == TransmitKind::Rtp {
            dues.push(t.due);
        }
    }
    let want: Vec<Instant> = (0..3).map(|k| t0 + Duration::from_millis(20 * k)).collect();
    assert_eq!(dues, want);
    assert_eq!(s.next_transmit_due(), Some(t0 + Duration::from_millis(60)));
    // The other timers are not moved: the session's own deadline is no later than that.
    assert!(s
        .poll_timeout()
        .is_some_and(|t| t <= t0 + Duration::from_millis(60)));
}

/// Drains what the session sends at `now`: (kind, second octet: the RTCP packet type).
fn drain(s: &mut MediaSession<Script>, now: Instant) -> Vec<(TransmitKind, u8)> {
    let mut buf = [0u8; 1500];
    std::iter::from_fn(|| s.poll_transmit(now, &mut buf).map(|t| (t.kind, buf[1]))).collect()
}

#[test]
fn a_session_that_sent_nothing_leaves_without_an_rtcp_bye() {
    let (mut s, t0) = uas(Script::default());
    s.process_offer(t0, OFFER).unwrap();
    // Stopped before its first packet was due: RFC 3550 §6.3.7, no BYE.
    s.stop(t0, "hang-up");
    assert_eq!(drain(&mut s, t0 + Duration::from_millis(100)), vec![]);
}

#[test]
fn a_session_that_sent_media_leaves_with_an_rtcp_bye() {
    let (mut s, t0) = uas(Script::default());
    s.process_offer(t0, OFFER).unwrap();
    let sent = drain(&mut s, t0);
    assert!(sent.iter().any(|&(k, _)| k == TransmitKind::Rtp));
    let t1 = t0 + Duration::from_millis(5);
    s.stop(t1, "hang-up");
    let bye = drain(&mut s, t1);
    assert_eq!(bye.len(), 1, "{bye:?}");
    assert_eq!(bye[0].0, TransmitKind::Rtcp);
    // A compound packet: a report first (SR 200 or RR 201), the BYE after it.
    assert!(matches!(bye[0].1, 200 | 201));
}

#[test]
fn stored_descriptions_follow_the_first_offer_and_a_re_offer() {
    let t0 = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut b = plain("b", Role::Uas, "192.0.2.2", 30000, &mut rng, t0);
    let first = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    let answer = b.process_offer(t0, first).unwrap();
    assert_eq!(
        b.remote_sdp(),
        Some(&SessionDescription::parse(first).unwrap())
    );
    assert_eq!(
        b.local_sdp(),
        Some(&SessionDescription::parse(&answer).unwrap())
    );
    let again = "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4002 RTP/AVP 8\r\na=sendonly\r\n";
    let answer2 = b.process_offer(t0, again).unwrap();
    assert_eq!(
        b.remote_sdp(),
        Some(&SessionDescription::parse(again).unwrap())
    );
    assert_eq!(
        b.local_sdp(),
        Some(&SessionDescription::parse(&answer2).unwrap())
    );
    assert_ne!(answer, answer2);
}

/// A session with the default handler on `ip:port`.
fn plain(
    name: &str,
    role: Role,
    ip: &str,
    port: u16,
    rng: &mut ChaCha8Rng,
    t0: Instant,
) -> MediaSession<DefaultHandler> {
    MediaSession::new(
        name,
        role,
        MediaConfig::new(ip.parse().unwrap(), port),
        DefaultHandler,
        rng,
        t0,
    )
    .unwrap()
}
