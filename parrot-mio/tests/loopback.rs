//! The adapter against itself on loopback: real sockets, real timers, two agents, and only
//! the blocking API (no executor anywhere).

mod common;

use common::{config, next_within, tone_player, until_answered};
use parrot_media_core::handler::{Actions, MediaAction, MediaHandler, StreamDirection};
use parrot_mio::{
    Agent, CallEventKind, CallHandle, CallOptions, EndedBy, MediaHandlerFactory, UasFactory,
};
use parrot_proto::{Action, Reply, Request, UasHandler};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn server(ports: (u16, u16), uas: Option<UasFactory>) -> Agent {
    parrot_mio::start(config(ports), uas, tone_player()).unwrap()
}

fn client(ports: (u16, u16)) -> Agent {
    let mut c = config(ports);
    c.auto_answer = false;
    c.tcp = false;
    parrot_mio::start(c, None, None).unwrap()
}

#[test]
fn call_is_answered_media_flows_and_dtmf_arrives() {
    let mut srv = server((43000, 43099), None);
    assert_eq!(srv.runtime(), "mio");
    let srv_events = srv.take_events().unwrap();
    let cli = client((43100, 43199));
    let uri = format!("sip:parrot@{}", srv.local_addr());
    let mut call = cli
        .call_blocking(&uri, CallOptions::default(), None)
        .unwrap();
    until_answered(&mut call);
    call.send_dtmf("5#");
    std::thread::sleep(Duration::from_millis(1500));
    call.hangup();
    let out = call.wait_blocking();
    assert!(out.answered);
    assert_eq!(out.ended_by, EndedBy::Local);
    assert!(out.media.rtp_received > 50, "{:?}", out.media);
    assert!(out.media.rtp_sent > 50, "{:?}", out.media);
    let mut digits = String::new();
    let mut ended = false;
    while let Some(ev) = next_within(&srv_events, Duration::from_secs(2)) {
        match ev.kind {
            CallEventKind::Dtmf(d) => digits.push(d),
            CallEventKind::Ended { by, .. } => {
                assert_eq!(by, EndedBy::Remote);
                ended = true;
                break;
            }
            _ => {}
        }
    }
    assert_eq!(digits, "5#");
    assert!(ended);
    cli.shutdown_blocking();
    srv.shutdown_blocking();
}

struct PanicOnSecond(Arc<AtomicU64>);
impl UasHandler for PanicOnSecond {
    fn handle_invite(&mut self, _req: &Request<'_>) -> Action {
        if self.0.fetch_add(1, Ordering::SeqCst) == 1 {
            panic!("deliberate test panic");
        }
        Action::NoReply
    }
}

#[test]
fn a_panicking_handler_ends_only_its_own_call() {
    let n = Arc::new(AtomicU64::new(0));
    let uas: UasFactory =
        Box::new(move || Box::new(PanicOnSecond(n.clone())) as Box<dyn UasHandler>);
    let srv = server((43200, 43299), Some(uas));
    let cli = client((43300, 43399));
    let uri = format!("sip:parrot@{}", srv.local_addr());
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        let mut call = cli
            .call_blocking(&uri, CallOptions::default(), None)
            .unwrap();
        loop {
            match call.next_event_blocking().map(|e| e.kind) {
                Some(CallEventKind::Answered { .. }) => {
                    std::thread::sleep(Duration::from_millis(200));
                    call.hangup();
                }
                Some(CallEventKind::Ended { .. }) | None => break,
                _ => {}
            }
        }
        outcomes.push(call.wait_blocking());
    }
    assert!(outcomes[0].answered);
    assert!(!outcomes[1].answered);
    assert_eq!(outcomes[1].status, Some(500));
    assert!(outcomes[2].answered, "the endpoint survives the panic");
    cli.shutdown_blocking();
    srv.shutdown_blocking();
}

#[test]
fn shutdown_ends_live_calls_with_bye() {
    let srv = server((43400, 43499), None);
    let cli = client((43500, 43599));
    let uri = format!("sip:parrot@{}", srv.local_addr());
    let mut call = cli
        .call_blocking(&uri, CallOptions::default(), None)
        .unwrap();
    until_answered(&mut call);
    let t = Instant::now();
    srv.shutdown_blocking();
    assert!(t.elapsed() < Duration::from_secs(5));
    let out = call.wait_blocking();
    assert_eq!(out.ended_by, EndedBy::Remote);
    cli.shutdown_blocking();
}

#[test]
fn dropping_the_agent_stops_its_loop() {
    let srv = server((43450, 43459), None);
    let addr = srv.local_addr();
    drop(srv);
    // The loop saw the shutdown and closed its socket: the port can be bound again.
    let end = Instant::now() + Duration::from_secs(5);
    while std::net::UdpSocket::bind(addr).is_err() {
        assert!(Instant::now() < end, "the SIP socket stays open");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn calls_work_over_tcp() {
    let srv = server((43600, 43699), None);
    let cli = client((43700, 43799));
    let uri = format!("sip:parrot@{};transport=tcp", srv.tcp_addr().unwrap());
    let opts = CallOptions {
        tcp: true,
        ..CallOptions::default()
    };
    let mut call = cli.call_blocking(&uri, opts, None).unwrap();
    until_answered(&mut call);
    std::thread::sleep(Duration::from_millis(300));
    call.hangup();
    let out = call.wait_blocking();
    assert!(out.answered);
    assert_eq!(out.ended_by, EndedBy::Local);
    assert!(out.media.rtp_received > 5);
    cli.shutdown_blocking();
    srv.shutdown_blocking();
}

struct Registrar;
impl UasHandler for Registrar {
    fn handle_register(&mut self, req: &Request<'_>) -> Action {
        let contact = req
            .message
            .header(parrot_proto::HeaderName::Contact)
            .unwrap_or("*")
            .to_owned();
        Action::Respond(Reply::new(200).header("Contact", format!("{contact};expires=120")))
    }
    fn handle_options(&mut self, _req: &Request<'_>) -> Action {
        Action::Respond(
            Reply::new(200)
                .header("Allow", "INVITE, BYE")
                .header("Supported", "path"),
        )
    }
}

#[test]
fn register_and_options_report_the_answer() {
    let uas: UasFactory = Box::new(|| Box::new(Registrar) as Box<dyn UasHandler>);
    let srv = server((43800, 43899), Some(uas));
    let cli = client((43900, 43999));
    let uri = format!("sip:{}", srv.local_addr());
    let granted = cli
        .register_blocking(&uri, "sip:alice@example.com", None, 300)
        .unwrap();
    assert_eq!(granted, Ok(120));
    let o = cli.options_blocking(&uri).unwrap().unwrap();
    assert_eq!(o.status, 200);
    assert_eq!(o.allow, vec!["INVITE", "BYE"]);
    assert_eq!(o.supported, vec!["path"]);
    cli.shutdown_blocking();
    srv.shutdown_blocking();
}

/// A fake sound card: captures a 1 kHz tone, keeps what it is asked to play.
struct FakeDevice {
    phase: u64,
    rate: u32,
    played: Arc<std::sync::Mutex<Vec<i16>>>,
    last: Option<Instant>,
}

impl parrot_mio::AudioDevice for FakeDevice {
    fn start(&mut self, rate: u32) {
        self.rate = rate;
    }
    fn capture(&mut self, out: &mut [i16]) -> usize {
        // Real time: as many samples as elapsed since the last call.
        let now = Instant::now();
        let n = self
            .last
            .map_or(0.0, |l| (now - l).as_secs_f64() * f64::from(self.rate))
            as usize;
        self.last = Some(now);
        let n = n.min(out.len());
        for s in &mut out[..n] {
            let t = self.phase as f64 / f64::from(self.rate);
            *s = (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as i16;
            self.phase += 1;
        }
        n
    }
    fn playback(&mut self, samples: &[i16]) {
        self.played.lock().unwrap().extend_from_slice(samples);
    }
}

/// Power of one frequency in a block (Goertzel), normalised by the block's energy.
fn tone_share(x: &[i16], rate: f64, f: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * f / rate;
    let c = 2.0 * w.cos();
    let (mut s1, mut s2, mut energy) = (0.0f64, 0.0f64, 0.0f64);
    for &v in x {
        let v = f64::from(v);
        let s = v + c * s1 - s2;
        s2 = s1;
        s1 = s;
        energy += v * v;
    }
    let p = s1 * s1 + s2 * s2 - c * s1 * s2;
    p / (energy * x.len() as f64 / 2.0).max(1.0)
}

/// The best share of `f` over 0.25 s windows (a loaded machine may miss a deadline now and
/// then; the gap must not hide that the tone got through).
fn best_share(x: &[i16], f: f64) -> f64 {
    (0..x.len().saturating_sub(2000))
        .step_by(500)
        .map(|i| tone_share(&x[i..i + 2000], 8000.0, f))
        .fold(0.0, f64::max)
}

struct RecordInbound(String);
impl MediaHandler for RecordInbound {
    fn handle_stream_start(&mut self, _: &str, _: StreamDirection) -> Actions {
        vec![
            MediaAction::play("builtin:tone"),
            MediaAction::StartRecording(self.0.clone()),
        ]
        .into()
    }
}

#[test]
fn a_device_wired_in_one_line_sends_and_plays_audio() {
    let dir = std::env::temp_dir().join(format!("parrot-mio-device-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rec = dir.join("inbound.wav").display().to_string();
    let r = rec.clone();
    let media: MediaHandlerFactory =
        Box::new(move |_, _| Box::new(RecordInbound(r.clone())) as Box<dyn MediaHandler + Send>);
    let mut srv = parrot_mio::start(config((44000, 44099)), None, Some(media)).unwrap();
    let srv_events = srv.take_events().unwrap();
    let cli = client((44100, 44199));
    let played = Arc::new(std::sync::Mutex::new(Vec::new()));
    let device = FakeDevice {
        phase: 0,
        rate: 8000,
        played: played.clone(),
        last: None,
    };
    let uri = format!("sip:parrot@{}", srv.local_addr());
    let mut call = cli
        .call_blocking(&uri, CallOptions::default(), Some(Box::new(device)))
        .unwrap();
    until_answered(&mut call);
    std::thread::sleep(Duration::from_millis(1500));
    call.hangup();
    call.wait_blocking();
    while let Some(ev) = next_within(&srv_events, Duration::from_secs(3)) {
        if matches!(ev.kind, CallEventKind::Recorded(_)) {
            break;
        }
    }
    // What the device captured reached the far end as a 1 kHz tone...
    let wav = std::fs::read(&rec).unwrap();
    let samples: Vec<i16> = wav[44..]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    assert!(samples.len() > 8000, "{} samples recorded", samples.len());
    let share = best_share(&samples, 1000.0);
    assert!(
        share > 0.5,
        "1 kHz dominates what the far end got: best share {share}"
    );
    // ...and the far end's tone reached the device's speaker.
    let played = played.lock().unwrap().clone();
    assert!(played.len() > 8000);
    assert!(best_share(&played, 1000.0) > 0.5);
    cli.shutdown_blocking();
    srv.shutdown_blocking();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_tcp_call_to_a_closed_port_fails_at_once() {
    let cli = client((44250, 44259));
    // A port nobody listens on (bound, then closed).
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let opts = CallOptions {
        tcp: true,
        ..CallOptions::default()
    };
    let call = cli
        .call_blocking(&format!("sip:parrot@{dead};transport=tcp"), opts, None)
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(call.wait_blocking());
    });
    let out = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the refused connect ends the call, no timer needed");
    assert!(!out.answered);
    assert!(out.status.is_some(), "{out:?}");
    cli.shutdown_blocking();
}

#[test]
fn a_prompt_played_from_disk_reaches_the_far_end_and_is_recorded() {
    const BEEP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/beep.wav");
    let dir = std::env::temp_dir().join(format!("parrot-mio-play-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rec = dir.join("far.wav").display().to_string();
    let r = rec.clone();
    struct Record(String);
    impl MediaHandler for Record {
        fn handle_stream_start(&mut self, _: &str, _: StreamDirection) -> Actions {
            MediaAction::StartRecording(self.0.clone()).into()
        }
    }
    let media: MediaHandlerFactory =
        Box::new(move |_, _| Box::new(Record(r.clone())) as Box<dyn MediaHandler + Send>);
    let mut srv = parrot_mio::start(config((44260, 44269)), None, Some(media)).unwrap();
    let srv_events = srv.take_events().unwrap();
    let cli = client((44270, 44279));
    let uri = format!("sip:parrot@{}", srv.local_addr());
    let mut call = cli
        .call_blocking(&uri, CallOptions::default(), None)
        .unwrap();
    until_answered(&mut call);
    call.play(BEEP);
    loop {
        match call.next_event_blocking().map(|e| e.kind) {
            Some(CallEventKind::PlayComplete(f)) => {
                assert_eq!(f, BEEP);
                break;
            }
            Some(CallEventKind::Ended { .. }) | None => panic!("ended before the prompt did"),
            _ => {}
        }
    }
    call.hangup();
    call.wait_blocking();
    let mut recorded = false;
    while let Some(ev) = next_within(&srv_events, Duration::from_secs(3)) {
        if matches!(ev.kind, CallEventKind::Recorded(_)) {
            recorded = true;
            break;
        }
    }
    assert!(recorded, "the far end wrote its recording");
    let wav = std::fs::read(&rec).unwrap();
    let peak = wav[44..]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]).unsigned_abs())
        .max()
        .unwrap_or(0);
    assert!(peak > 1000, "the beep is in the recording (peak {peak})");
    cli.shutdown_blocking();
    srv.shutdown_blocking();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn twenty_calls_at_once_all_carry_media() {
    let srv = server((44280, 44399), None);
    let cli = client((44400, 44499));
    let uri = format!("sip:parrot@{}", srv.local_addr());
    let calls: Vec<CallHandle> = (0..20)
        .map(|_| {
            cli.call_blocking(&uri, CallOptions::default(), None)
                .unwrap()
        })
        .collect();
    let mut calls: Vec<CallHandle> = calls
        .into_iter()
        .map(|mut c| {
            until_answered(&mut c);
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1000));
    for c in &mut calls {
        c.hangup();
    }
    for c in calls {
        let out = c.wait_blocking();
        assert!(out.answered);
        assert!(out.media.rtp_received > 25, "{:?}", out.media);
    }
    cli.shutdown_blocking();
    srv.shutdown_blocking();
}
