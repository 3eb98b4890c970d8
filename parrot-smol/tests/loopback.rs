//! The adapter against itself on loopback: real sockets, real timers, two agents, and no
//! executor in the test but `futures_lite::future::block_on`.

use async_io::Timer;
use futures_lite::future::{self, block_on};
use parrot_media_core::handler::{Actions, MediaAction, MediaHandler, StreamDirection};
use parrot_proto::{Action, Reply, Request, UasHandler};
use parrot_smol::{
    Agent, AgentConfig, CallEventKind, CallHandle, CallOptions, EndedBy, MediaHandlerFactory,
    UasFactory,
};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TONE: &[u8] = include_bytes!("../../assets/tone1k.wav");

struct PlayTone;
impl MediaHandler for PlayTone {
    fn handle_stream_start(&mut self, _: &str, _: StreamDirection) -> Actions {
        MediaAction::play("builtin:tone").into()
    }
}

fn config(ports: (u16, u16)) -> AgentConfig {
    let mut c = AgentConfig::new("127.0.0.1:0".parse().unwrap());
    c.rtp_ports = ports.0..=ports.1;
    c.builtin_files = vec![("builtin:tone".into(), bytes::Bytes::from_static(TONE))];
    c
}

fn tone_player() -> Option<MediaHandlerFactory> {
    Some(Box::new(|_, _| {
        Box::new(PlayTone) as Box<dyn MediaHandler + Send>
    }))
}

fn server(ports: (u16, u16), uas: Option<UasFactory>) -> Agent {
    parrot_smol::start(config(ports), uas, tone_player()).unwrap()
}

fn client(ports: (u16, u16)) -> Agent {
    let mut c = config(ports);
    c.auto_answer = false;
    c.tcp = false;
    parrot_smol::start(c, None, None).unwrap()
}

async fn sleep(ms: u64) {
    Timer::after(Duration::from_millis(ms)).await;
}

/// `f`, or `None` after `secs` seconds.
async fn timeout<T>(secs: u64, f: impl Future<Output = T>) -> Option<T> {
    future::or(async { Some(f.await) }, async {
        Timer::after(Duration::from_secs(secs)).await;
        None
    })
    .await
}

async fn until_answered(call: &mut CallHandle) {
    while !matches!(
        call.next_event().await.unwrap().kind,
        CallEventKind::Answered { .. }
    ) {}
}

#[test]
fn call_is_answered_media_flows_and_dtmf_arrives() {
    block_on(async {
        let mut srv = server((45000, 45099), None);
        let srv_events = srv.take_events().unwrap();
        let cli = client((45100, 45199));
        assert_eq!(cli.runtime(), "smol");
        let uri = format!("sip:parrot@{}", srv.local_addr());
        let mut call = cli.call(&uri, CallOptions::default()).await.unwrap();
        until_answered(&mut call).await;
        call.send_dtmf("5#");
        sleep(1500).await;
        call.hangup();
        let out = call.wait().await;
        assert!(out.answered);
        assert_eq!(out.ended_by, EndedBy::Local);
        assert!(out.media.rtp_received > 50, "{:?}", out.media);
        assert!(out.media.rtp_sent > 50, "{:?}", out.media);
        let mut digits = String::new();
        let mut ended = false;
        while let Some(Ok(ev)) = timeout(2, srv_events.recv()).await {
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
        cli.shutdown().await;
        srv.shutdown().await;
    });
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
    block_on(async {
        let n = Arc::new(AtomicU64::new(0));
        let uas: UasFactory =
            Box::new(move || Box::new(PanicOnSecond(n.clone())) as Box<dyn UasHandler>);
        let srv = server((45200, 45299), Some(uas));
        let cli = client((45300, 45399));
        let uri = format!("sip:parrot@{}", srv.local_addr());
        let mut outcomes = Vec::new();
        for _ in 0..3 {
            let mut call = cli.call(&uri, CallOptions::default()).await.unwrap();
            loop {
                match call.next_event().await.map(|e| e.kind) {
                    Some(CallEventKind::Answered { .. }) => {
                        sleep(200).await;
                        call.hangup();
                    }
                    Some(CallEventKind::Ended { .. }) | None => break,
                    _ => {}
                }
            }
            outcomes.push(call.wait().await);
        }
        assert!(outcomes[0].answered);
        assert!(!outcomes[1].answered);
        assert_eq!(outcomes[1].status, Some(500));
        assert!(outcomes[2].answered, "the endpoint survives the panic");
        cli.shutdown().await;
        srv.shutdown().await;
    });
}

#[test]
fn shutdown_ends_live_calls_with_bye() {
    block_on(async {
        let srv = server((45400, 45499), None);
        let cli = client((45500, 45599));
        let uri = format!("sip:parrot@{}", srv.local_addr());
        let mut call = cli.call(&uri, CallOptions::default()).await.unwrap();
        until_answered(&mut call).await;
        srv.shutdown().await;
        let out = timeout(5, call.wait()).await.expect("the BYE arrives");
        assert_eq!(out.ended_by, EndedBy::Remote);
        cli.shutdown().await;
    });
}

#[test]
fn dropping_the_agent_stops_its_thread_loop() {
    // No shutdown call: the loop sees every handle gone, ends the call with BYE and stops.
    block_on(async {
        let srv = server((45600, 45699), None);
        let cli = client((45700, 45799));
        let uri = format!("sip:parrot@{}", srv.local_addr());
        let mut call = cli.call(&uri, CallOptions::default()).await.unwrap();
        until_answered(&mut call).await;
        drop(srv);
        let out = timeout(5, call.wait()).await.expect("the BYE arrives");
        assert_eq!(out.ended_by, EndedBy::Remote);
        cli.shutdown().await;
    });
}

#[test]
fn calls_work_over_tcp() {
    block_on(async {
        let srv = server((45800, 45899), None);
        let cli = client((45900, 45999));
        let uri = format!("sip:parrot@{};transport=tcp", srv.tcp_addr().unwrap());
        let opts = CallOptions {
            tcp: true,
            ..CallOptions::default()
        };
        let mut call = cli.call(&uri, opts).await.unwrap();
        until_answered(&mut call).await;
        sleep(300).await;
        call.hangup();
        let out = call.wait().await;
        assert!(out.answered);
        assert_eq!(out.ended_by, EndedBy::Local);
        assert!(out.media.rtp_received > 5);
        cli.shutdown().await;
        srv.shutdown().await;
    });
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
    block_on(async {
        let uas: UasFactory = Box::new(|| Box::new(Registrar) as Box<dyn UasHandler>);
        let srv = server((46000, 46099), Some(uas));
        let cli = client((46100, 46199));
        let uri = format!("sip:{}", srv.local_addr());
        let granted = cli
            .register(&uri, "sip:alice@example.com", None, 300)
            .await
            .unwrap();
        assert_eq!(granted, Ok(120));
        let o = cli.options(&uri).await.unwrap().unwrap();
        assert_eq!(o.status, 200);
        assert_eq!(o.allow, vec!["INVITE", "BYE"]);
        assert_eq!(o.supported, vec!["path"]);
        cli.shutdown().await;
        srv.shutdown().await;
    });
}

#[test]
fn the_blocking_api_needs_no_executor_at_all() {
    let srv = server((46200, 46299), None);
    let cli = client((46300, 46399));
    let uri = format!("sip:parrot@{}", srv.local_addr());
    // A final answer, whatever the server's policy for OPTIONS.
    let o = cli.options_blocking(&uri).unwrap().unwrap();
    assert!((200..700).contains(&o.status), "{o:?}");
    let mut call = cli
        .call_blocking(&uri, CallOptions::default(), None)
        .unwrap();
    while !matches!(
        call.next_event_blocking().unwrap().kind,
        CallEventKind::Answered { .. }
    ) {}
    std::thread::sleep(Duration::from_millis(300));
    call.hangup();
    let out = call.wait_blocking();
    assert!(out.answered);
    assert!(out.media.rtp_received > 5, "{:?}", out.media);
    cli.shutdown_blocking();
    srv.shutdown_blocking();
}

/// A fake sound card: captures a 1 kHz tone, keeps what it is asked to play.
struct FakeDevice {
    phase: u64,
    rate: u32,
    played: Arc<std::sync::Mutex<Vec<i16>>>,
    last: Option<std::time::Instant>,
}

impl parrot_smol::AudioDevice for FakeDevice {
    fn start(&mut self, rate: u32) {
        self.rate = rate;
    }
    fn capture(&mut self, out: &mut [i16]) -> usize {
        // Real time: as many samples as elapsed since the last call.
        let now = std::time::Instant::now();
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

/// The best share of `f` over 0.25 s windows: a debug build on a loaded machine can miss a
/// deadline now and then, and the gap must not hide that the tone got through.
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
    block_on(async {
        let dir = std::env::temp_dir().join(format!("parrot-smol-device-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rec = dir.join("inbound.wav").display().to_string();
        let r = rec.clone();
        let media: MediaHandlerFactory = Box::new(move |_, _| {
            Box::new(RecordInbound(r.clone())) as Box<dyn MediaHandler + Send>
        });
        let mut srv = parrot_smol::start(config((46400, 46499)), None, Some(media)).unwrap();
        let srv_events = srv.take_events().unwrap();
        let cli = client((46500, 46599));
        let played = Arc::new(std::sync::Mutex::new(Vec::new()));
        let device = FakeDevice {
            phase: 0,
            rate: 8000,
            played: played.clone(),
            last: None,
        };
        let uri = format!("sip:parrot@{}", srv.local_addr());
        let mut call = cli
            .call_with_device(&uri, CallOptions::default(), device)
            .await
            .unwrap();
        until_answered(&mut call).await;
        sleep(1500).await;
        call.hangup();
        call.wait().await;
        while let Some(Ok(ev)) = timeout(3, srv_events.recv()).await {
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
        cli.shutdown().await;
        srv.shutdown().await;
        let _ = std::fs::remove_dir_all(dir);
    });
}

#[test]
fn a_refused_tcp_connect_ends_the_call_at_once() {
    // A port nobody listens on (any more).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cli = client((48300, 48399));
    block_on(async {
        let opts = CallOptions {
            tcp: true,
            ..CallOptions::default()
        };
        let started = std::time::Instant::now();
        let call = cli
            .call(&format!("sip:parrot@{closed};transport=tcp"), opts)
            .await
            .unwrap();
        let out = timeout(5, call.wait()).await.expect("no 32 s Timer B wait");
        assert!(!out.answered);
        assert!(out.status.is_some(), "{out:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        cli.shutdown().await;
    });
}

#[test]
fn twenty_calls_at_once_each_with_its_media() {
    block_on(async {
        let srv = server((48700, 48799), None);
        let cli = client((48800, 48899));
        let uri = format!("sip:parrot@{}", srv.local_addr());
        let mut calls = Vec::new();
        for _ in 0..20 {
            calls.push(cli.call(&uri, CallOptions::default()).await.unwrap());
        }
        for call in &mut calls {
            until_answered(call).await;
        }
        sleep(1000).await;
        for call in &calls {
            call.hangup();
        }
        for call in calls {
            let n = call.number();
            let out = call.wait().await;
            assert!(out.answered, "call {n}");
            assert_eq!(out.ended_by, EndedBy::Local, "call {n}");
            assert!(out.media.rtp_received > 20, "call {n}: {:?}", out.media);
        }
        cli.shutdown().await;
        srv.shutdown().await;
    });
}
