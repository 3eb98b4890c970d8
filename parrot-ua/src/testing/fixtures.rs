//! What the scenarios are made of: configurations, media and SIP handlers, a fake sound card,
//! tone detection, WAV files, and waits with a limit.

use std::any::Any;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_channel::Receiver;
use bytes::Bytes;
use parrot_media_core::handler::{Actions, MediaAction, MediaHandler, StreamDirection};
use parrot_media_core::wav::{decode_wav, encode_wav_pcm16};
use parrot_proto::{Action, Reply, Request, UasHandler};

use crate::{
    generate_self_signed, AgentConfig, AudioDevice, CallEvent, CallEventKind, CallHandle,
    MediaHandlerFactory, StreamKind, TlsClient, UasFactory,
};

/// The name under which [`config`] offers a 1 kHz tone to every call.
pub const TONE: &str = "builtin:tone";

/// `secs` seconds of a `hz` sine at 8 kHz, mono, half of full scale (like the `tone1k.wav` and
/// `beep.wav` assets, `sox synth ... vol 0.5`).
pub fn sine(hz: f64, secs: f64, rate: u32) -> Vec<i16> {
    (0..(f64::from(rate) * secs) as usize)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            (16384.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16
        })
        .collect()
}

/// A 16-bit PCM WAV file in memory.
pub fn wav_bytes(rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
    encode_wav_pcm16(rate, channels, samples).expect("16-bit PCM encodes")
}

/// Writes a 16-bit PCM WAV file.
pub fn write_wav(path: &Path, rate: u32, channels: u16, samples: &[i16]) {
    std::fs::write(path, wav_bytes(rate, channels, samples)).expect("the WAV file is written");
}

/// A WAV file's rate and (interleaved) samples; panics if it cannot be read.
pub fn read_wav(path: &Path) -> (u32, Vec<i16>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let w = decode_wav(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (w.sample_rate, w.samples)
}

/// The largest magnitude in `x`.
pub fn peak(x: &[i16]) -> u16 {
    x.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0)
}

/// Power of one frequency `f` in a block sampled at `rate` (Goertzel), normalised by the
/// block's energy: about 1 for a pure tone of `f`, about 0 for silence or another tone.
pub fn tone_share(x: &[i16], rate: f64, f: f64) -> f64 {
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

/// The 0.25 s window (2,000 samples at 8 kHz, every 500) where `f` dominates most, and its
/// share. The best window, not the whole: a debug build on a loaded machine can miss a
/// deadline now and then, and the gap must not hide that the tone got through.
pub fn best_window(x: &[i16], f: f64) -> (f64, &[i16]) {
    let mut best = (0.0, &x[..0]);
    let mut i = 0;
    while i + 2000 <= x.len() {
        let w = &x[i..i + 2000];
        let share = tone_share(w, 8000.0, f);
        if share > best.0 {
            best = (share, w);
        }
        i += 500;
    }
    best
}

/// The share of `f` in [`best_window`].
pub fn best_share(x: &[i16], f: f64) -> f64 {
    best_window(x, f).0
}

/// A fake sound card: captures a 1 kHz tone in real time, keeps what it is asked to play.
pub struct FakeDevice {
    phase: u64,
    rate: u32,
    played: Arc<Mutex<Vec<i16>>>,
    last: Option<Instant>,
}

impl FakeDevice {
    /// A device, and what it will have played.
    pub fn new() -> (FakeDevice, Arc<Mutex<Vec<i16>>>) {
        let played = Arc::new(Mutex::new(Vec::new()));
        let device = FakeDevice {
            phase: 0,
            rate: 8000,
            played: played.clone(),
            last: None,
        };
        (device, played)
    }
}

impl AudioDevice for FakeDevice {
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
        self.played
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(samples);
    }
}

/// A media handler that plays [`TONE`] as soon as media starts and, with a path, records what
/// it hears there.
pub struct PlayTone(pub Option<String>);

impl MediaHandler for PlayTone {
    fn handle_stream_start(&mut self, _: &str, _: StreamDirection) -> Actions {
        let mut actions = vec![MediaAction::play(TONE)];
        if let Some(path) = &self.0 {
            actions.push(MediaAction::StartRecording(path.clone()));
        }
        actions.into()
    }
}

/// Every call plays [`TONE`].
pub fn tone_player() -> Option<MediaHandlerFactory> {
    Some(Box::new(|_, _| {
        Box::new(PlayTone(None)) as Box<dyn MediaHandler + Send>
    }))
}

/// Every call plays [`TONE`] and records what it hears to `path` (one call at a time).
pub fn tone_player_recording(path: &Path) -> Option<MediaHandlerFactory> {
    let path = path.display().to_string();
    Some(Box::new(move |_, _| {
        Box::new(PlayTone(Some(path.clone()))) as Box<dyn MediaHandler + Send>
    }))
}

/// A registrar granting 120 s to every REGISTER, and an OPTIONS answer with `Allow: INVITE,
/// BYE` and `Supported: path`; INVITEs are left to the agent's policy.
pub struct Registrar;

impl UasHandler for Registrar {
    fn handle_invite(&mut self, _req: &Request<'_>) -> Action {
        Action::NoReply
    }
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

/// A SIP handler that panics on the second INVITE (of all it handles) and leaves the others
/// to the agent's policy.
pub struct PanicOnSecond(pub Arc<AtomicU64>);

impl UasHandler for PanicOnSecond {
    fn handle_invite(&mut self, _req: &Request<'_>) -> Action {
        if self.0.fetch_add(1, Ordering::SeqCst) == 1 {
            panic!("deliberate test panic");
        }
        Action::NoReply
    }
}

/// A factory of [`PanicOnSecond`] handlers sharing one count.
pub fn panic_on_second() -> UasFactory {
    let n = Arc::new(AtomicU64::new(0));
    Box::new(move || Box::new(PanicOnSecond(n.clone())) as Box<dyn UasHandler>)
}

/// A factory of [`Registrar`] handlers.
pub fn registrar() -> UasFactory {
    Box::new(|| Box::new(Registrar) as Box<dyn UasHandler>)
}

/// A base port from which `n` consecutive UDP ports were all free on loopback when probed:
/// `hint` itself when it can be, else the next window of `n` up (from 20000 again past
/// 60000). Other programs may hold any port, so a test takes its RTP ports from here rather
/// than assuming its `hint` is free; no two calls in one process get overlapping windows.
/// Panics (failing the test) only when no window in 20000-60000 is free.
pub fn free_ports(hint: u16, n: u16) -> u16 {
    static TAKEN: Mutex<Vec<(u16, u16)>> = Mutex::new(Vec::new());
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    let (lo, hi) = (20_000u32, 60_000u32);
    let n32 = u32::from(n.max(1));
    let mut base = u32::from(hint).clamp(lo, hi - n32);
    for _ in 0..(hi - lo) / n32 {
        let end = base + n32;
        let overlaps = taken
            .iter()
            .any(|&(b, m)| base < u32::from(b) + u32::from(m) && u32::from(b) < end);
        let free = !overlaps
            && (base..end).all(|p| {
                std::net::UdpSocket::bind(("127.0.0.1", p as u16)).is_ok()
                    && std::net::UdpSocket::bind(("0.0.0.0", p as u16)).is_ok()
            });
        if free {
            taken.push((base as u16, n));
            return base as u16;
        }
        base = if end + n32 > hi { lo } else { end };
    }
    panic!("no {n} consecutive free UDP ports in {lo}-{hi}");
}

/// Loopback, SIP on port 0, RTP from `rtp_ports` (`base..=base + 99`), the 1 kHz tone
/// built in as [`TONE`]; answers calls and listens on TCP too.
pub fn config(base: u16) -> AgentConfig {
    let mut c = AgentConfig::new("127.0.0.1:0".parse().expect("an address"));
    c.rtp_ports = base..=base + 99;
    c.builtin_files = vec![(
        TONE.into(),
        Bytes::from(wav_bytes(8000, 1, &sine(1000.0, 10.0, 8000))),
    )];
    c
}

/// [`config`] for a caller: does not answer, no TCP listener.
pub fn client_config(base: u16) -> AgentConfig {
    let mut c = config(base);
    c.auto_answer = false;
    c.tcp = false;
    c
}

/// [`config`] with TLS, WS and WSS listeners and a freshly generated certificate for
/// 127.0.0.1, and the trust a client needs for it.
pub fn secure_server_config(base: u16) -> (AgentConfig, TlsClient) {
    let cert = generate_self_signed(&["127.0.0.1"]).expect("a certificate");
    let mut c = config(base);
    let any: SocketAddr = "127.0.0.1:0".parse().expect("an address");
    c.streams = vec![
        (StreamKind::Tls, any),
        (StreamKind::Ws, any),
        (StreamKind::Wss, any),
    ];
    c.tls_server = Some(cert.server().expect("a TLS server config"));
    (c, cert.pinned_client().expect("a TLS client config"))
}

/// [`client_config`] trusting `trust` for TLS.
pub fn secure_client_config(base: u16, trust: TlsClient) -> AgentConfig {
    let mut c = client_config(base);
    c.tls_client = Some(trust);
    c
}

/// A fresh directory under the system's temporary one, named after `name` and the process.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("parrot-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}

/// Runs `f` on a thread of its own and returns what it returns; panics if it takes longer
/// than `limit` (naming `what`), and passes on its panic if it panics. The blocking API has no
/// timeouts of its own: this keeps a hung agent from hanging the test.
pub fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(format!("within: {what}"))
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("a thread");
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: not done within {limit:?}")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            Err(payload) => resume(payload),
            Ok(()) => panic!("{what}: ended without a result"),
        },
    }
}

fn resume(payload: Box<dyn Any + Send>) -> ! {
    std::panic::resume_unwind(payload)
}

/// The next event on an agent's event channel within `limit`, or `None` (polls the channel:
/// a blocking receive has no limit).
pub fn next_within(rx: &Receiver<CallEvent>, limit: Duration) -> Option<CallEvent> {
    let end = Instant::now() + limit;
    loop {
        if let Ok(ev) = rx.try_recv() {
            return Some(ev);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits for the call's answer; panics if it ends first.
pub fn until_answered(call: &mut CallHandle) {
    loop {
        let ev = call
            .next_event_blocking()
            .expect("the call ended unanswered");
        if matches!(ev.kind, CallEventKind::Answered { .. }) {
            return;
        }
    }
}

/// An `io::Result`'s value, or a panic naming `what`.
pub fn ok<T>(what: &str, r: io::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}
