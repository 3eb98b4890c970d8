//! One call's media: a [`MediaSession`] driven by its RTP/RTCP sockets, its timer and the
//! files it asks for. Nothing here decides anything the session could decide.

use crate::ports::PortPair;
use bytes::Bytes;
use parrot_media_core::handler::{MediaAction, MediaHandler, StreamDirection};
use parrot_media_core::session::{MediaEvent, MediaSession, TransmitKind};
use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What a call's media did, reported when it ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaTotals {
    /// RTP packets sent.
    pub rtp_sent: u32,
    /// RTP packets received.
    pub rtp_received: u32,
    /// Packets the receiver counted as lost (RFC 3550 §A.3).
    pub lost: i64,
}

/// A running call's media counters, handed to [`AudioDevice::media_stats`] a few times a
/// second (for a live view).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MediaStats {
    /// Packets sent, received and lost (as this side counts them).
    pub totals: MediaTotals,
    /// Interarrival jitter of the received stream, milliseconds (RFC 3550 §A.8).
    pub jitter_ms: f64,
    /// Packets of our stream the peer reports lost (its last RTCP report), if any.
    pub peer_lost: Option<i64>,
    /// Jitter of our stream as the peer reports it, milliseconds.
    pub peer_jitter_ms: Option<f64>,
    /// The negotiated codec.
    pub codec: Option<parrot_media_core::codec::Codec>,
}

/// A sound device, or anything else that captures and plays PCM, wired to one call.
///
/// The media task calls it from the call's own task: [`AudioDevice::capture`] before each
/// packet is due and [`AudioDevice::playback`] for every frame received. Both run at the
/// codec's clock (8 kHz for G.711), mono; converting to and from the device's rate and
/// channels is the device's job (see `parrot-cpal`). Implementations must not block.
pub trait AudioDevice: Send + 'static {
    /// The call's media starts at this sample rate.
    fn start(&mut self, sample_rate: u32) {
        let _ = sample_rate;
    }
    /// Writes the samples captured since the last call into `out`; returns how many.
    fn capture(&mut self, out: &mut [i16]) -> usize;
    /// Plays samples received from the peer.
    fn playback(&mut self, samples: &[i16]);
    /// The call ended.
    fn stop(&mut self) {}
    /// The media's counters, a few times a second while the call runs.
    fn media_stats(&mut self, stats: &MediaStats) {
        let _ = stats;
    }
}

/// Commands to a running media task.
#[derive(Debug)]
pub(crate) enum MediaCmd {
    Action(MediaAction),
    Dtmf(String),
    Answer(String),
    Stop(String),
}

/// What a media task tells the SIP side.
#[derive(Debug)]
pub(crate) enum MediaNotice {
    Dtmf(char),
    PlayComplete(String),
    Recorded(PathBuf),
    Hangup(String),
    Finished(MediaTotals),
}

/// Files the session may ask for by name without touching the disk (built-in prompts).
pub(crate) type BuiltinFiles = Arc<HashMap<String, Bytes>>;

/// Built-in files decoded once per playback rate and shared by every call.
pub(crate) type DecodedFiles = Arc<std::sync::Mutex<HashMap<(String, u32), Arc<[i16]>>>>;

pub(crate) struct MediaTask<H: MediaHandler> {
    pub session: MediaSession<H>,
    pub ports: PortPair,
    pub files: BuiltinFiles,
    pub decoded: DecodedFiles,
    pub notices: mpsc::UnboundedSender<(u64, MediaNotice)>,
    pub key: u64,
    pub cmds: mpsc::UnboundedReceiver<MediaCmd>,
    pub device: Option<Box<dyn AudioDevice>>,
}

const STATS_INTERVAL: Duration = Duration::from_millis(250);

fn media_stats<H: MediaHandler>(session: &MediaSession<H>) -> MediaStats {
    let codec = session.codec();
    let ms = |ts: u32| f64::from(ts) * 1000.0 / f64::from(codec.map_or(8000, |c| c.clock_rate()));
    let rx = session.receiver_stats();
    let peer = session.remote_report();
    MediaStats {
        totals: MediaTotals {
            rtp_sent: session.packets_sent(),
            rtp_received: rx.map_or(0, |s| s.received()),
            lost: rx.map_or(0, |s| s.cumulative_lost()),
        },
        jitter_ms: rx.map_or(0.0, |s| ms(s.jitter())),
        peer_lost: peer.map(|r| i64::from(r.cumulative_lost)),
        peer_jitter_ms: peer.map(|r| ms(r.jitter)),
        codec,
    }
}

const DTMF_DURATION: Duration = Duration::from_millis(160);
const DTMF_GAP: Duration = Duration::from_millis(100);

impl<H: MediaHandler + Send + 'static> MediaTask<H> {
    /// Drives the session until it stops. A panic in the media handler ends this call only.
    pub async fn run(mut self) {
        let mut buf = vec![0u8; 2048];
        let mut rx = vec![0u8; 2048];
        let mut rx2 = vec![0u8; 2048];
        let mut audio = vec![0i16; 2048];
        let mut recording: Option<(String, u32, Vec<i16>)> = None;
        let mut dtmf: VecDeque<char> = VecDeque::new();
        let mut next_dtmf = Instant::now();
        let mut stopping = false;
        let mut capture = vec![0i16; 4096];
        let mut device_started = false;
        let mut next_stats = Instant::now();
        loop {
            if let Some(dev) = self.device.as_mut() {
                if !device_started {
                    if let Some(c) = self.session.codec() {
                        dev.start(c.clock_rate());
                        device_started = true;
                    }
                }
                let n = dev.capture(&mut capture);
                if n > 0 {
                    self.session.handle_audio_in(&capture[..n]);
                }
                if device_started && Instant::now() >= next_stats {
                    next_stats = Instant::now() + STATS_INTERVAL;
                    dev.media_stats(&media_stats(&self.session));
                }
            }
            // Drain: events and audio frames first (a file the stream starts with is fetched
            // before its first packet is due), then transmits (the core's rule).
            let step = catch_unwind(AssertUnwindSafe(|| {
                let mut events = Vec::new();
                while let Some(e) = self.session.poll_event() {
                    events.push(e);
                }
                while let Some(f) = self.session.poll_audio(&mut audio) {
                    if let (Some(dev), StreamDirection::Inbound) =
                        (self.device.as_mut(), f.direction)
                    {
                        dev.playback(&audio[..f.len]);
                    }
                    if let Some((_, rate, samples)) = recording.as_mut() {
                        if f.direction == StreamDirection::Inbound {
                            *rate = f.sample_rate;
                            samples.extend_from_slice(&audio[..f.len]);
                        }
                    }
                }
                events
            }));
            let Ok(events) = step else {
                self.fail("media handler panicked");
                return;
            };
            let mut finished = false;
            for e in events {
                match e {
                    MediaEvent::FileRequest { path } => {
                        if let Some(pcm) = self.decoded_builtin(&path) {
                            let now = Instant::now();
                            let r = catch_unwind(AssertUnwindSafe(|| {
                                self.session.handle_file_samples(now, &path, pcm)
                            }));
                            if r.is_err() {
                                self.fail("media handler panicked");
                                return;
                            }
                            continue;
                        }
                        let bytes = match self.files.get(&path) {
                            Some(b) => Ok(b.to_vec()),
                            None => tokio::fs::read(&path).await,
                        };
                        let now = Instant::now();
                        let r = catch_unwind(AssertUnwindSafe(|| match bytes {
                            Ok(b) => self.session.handle_file(now, &path, &b),
                            Err(e) => self.session.handle_file_error(now, &path, &e.to_string()),
                        }));
                        if r.is_err() {
                            self.fail("media handler panicked");
                            return;
                        }
                    }
                    MediaEvent::DtmfReceived { digit, .. } => self.notify(MediaNotice::Dtmf(digit)),
                    MediaEvent::PlayComplete { path } => {
                        self.notify(MediaNotice::PlayComplete(path))
                    }
                    MediaEvent::RecordingStarted { path } => {
                        recording = Some((path, 8000, Vec::new()));
                    }
                    MediaEvent::RecordingStopped { .. } => {
                        if let Some(r) = recording.take() {
                            write_recording(&self.notices, self.key, r).await;
                        }
                    }
                    MediaEvent::HangupRequested { reason } => {
                        self.notify(MediaNotice::Hangup(reason));
                    }
                    MediaEvent::SessionStopped { .. } => finished = true,
                    _ => {}
                }
            }
            if finished {
                let _ = self.send_due(&mut buf).await;
                if let Some(r) = recording.take() {
                    write_recording(&self.notices, self.key, r).await;
                }
                let totals = MediaTotals {
                    rtp_sent: self.session.packets_sent(),
                    rtp_received: self.session.receiver_stats().map_or(0, |s| s.received()),
                    lost: self
                        .session
                        .receiver_stats()
                        .map_or(0, |s| s.cumulative_lost()),
                };
                if let Some(dev) = self.device.as_mut() {
                    dev.stop();
                }
                self.notify(MediaNotice::Finished(totals));
                return;
            }
            if !self.send_due(&mut buf).await {
                return;
            }
            // Queued DTMF digits go out one after another.
            if !dtmf.is_empty() && Instant::now() >= next_dtmf {
                if let Some(d) = dtmf.pop_front() {
                    let now = Instant::now();
                    let _ = self.session.send_dtmf(now, d, DTMF_DURATION);
                    next_dtmf = now + DTMF_DURATION + DTMF_GAP;
                }
                continue;
            }
            let mut wake = self.session.poll_timeout();
            if !dtmf.is_empty() {
                wake = Some(wake.map_or(next_dtmf, |w| w.min(next_dtmf)));
            }
            let sleep = async {
                match wake {
                    Some(w) => tokio::time::sleep_until(tokio::time::Instant::from_std(w)).await,
                    None => std::future::pending().await,
                }
            };
            let input = tokio::select! {
                r = self.ports.rtp.recv_from(&mut rx) => r.ok().map(|(n, _)| (true, n)),
                r = self.ports.rtcp.recv_from(&mut rx2) => r.ok().map(|(n, _)| (false, n)),
                cmd = self.cmds.recv() => {
                    let now = Instant::now();
                    let cmd = cmd.unwrap_or(MediaCmd::Stop("call ended".into()));
                    let r = catch_unwind(AssertUnwindSafe(|| match cmd {
                        MediaCmd::Action(a) => self.session.handle_command(now, a),
                        MediaCmd::Dtmf(digits) => dtmf.extend(digits.chars()),
                        MediaCmd::Answer(sdp) => {
                            if let Err(e) = self.session.process_answer(now, &sdp) {
                                tracing::warn!("SDP answer refused: {e}");
                            }
                        }
                        MediaCmd::Stop(reason) => {
                            stopping = true;
                            self.session.stop(now, &reason);
                        }
                    }));
                    if r.is_err() {
                        self.fail("media handler panicked");
                        return;
                    }
                    None
                }
                _ = sleep => {
                    let now = Instant::now();
                    if catch_unwind(AssertUnwindSafe(|| self.session.handle_timeout(now))).is_err() {
                        self.fail("media handler panicked");
                        return;
                    }
                    None
                }
            };
            if let Some((is_rtp, n)) = input {
                if stopping {
                    continue;
                }
                let now = Instant::now();
                let data = if is_rtp { &rx[..n] } else { &rx2[..n] };
                let r = catch_unwind(AssertUnwindSafe(|| {
                    if is_rtp {
                        self.session.handle_rtp(now, data)
                    } else {
                        self.session.handle_rtcp(now, data)
                    }
                }));
                if r.is_err() {
                    self.fail("media handler panicked");
                    return;
                }
            }
        }
    }

    /// A built-in file decoded at this call's playback rate, from the shared cache (decoded
    /// on first use). `None` for files on disk and for built-ins that do not decode.
    fn decoded_builtin(&self, path: &str) -> Option<Arc<[i16]>> {
        let bytes = self.files.get(path)?;
        let rate = self.session.playback_rate();
        let key = (path.to_owned(), rate);
        if let Some(pcm) = self.decoded.lock().ok()?.get(&key) {
            return Some(pcm.clone());
        }
        let pcm: Arc<[i16]> = parrot_media_core::session::decode_for_playback(bytes, rate)
            .ok()?
            .into();
        self.decoded.lock().ok()?.insert(key, pcm.clone());
        Some(pcm)
    }

    /// Sends every packet the session has due. Each is written into `buf` and sent from
    /// there: nothing is allocated per packet. False when the handler panicked.
    async fn send_due(&mut self, buf: &mut [u8]) -> bool {
        let mux = self.session.negotiated().is_some_and(|n| n.rtcp_mux);
        loop {
            let now = Instant::now();
            let t = catch_unwind(AssertUnwindSafe(|| self.session.poll_transmit(now, buf)));
            let Ok(t) = t else {
                self.fail("media handler panicked");
                return false;
            };
            let Some(t) = t else { return true };
            let Some(dst) = t.destination else { continue };
            let sock = match t.kind {
                TransmitKind::Rtcp if !mux => &self.ports.rtcp,
                _ => &self.ports.rtp,
            };
            let _ = sock.send_to(&buf[..t.len], dst).await;
        }
    }

    fn notify(&self, n: MediaNotice) {
        let _ = self.notices.send((self.key, n));
    }

    fn fail(&self, why: &str) {
        tracing::warn!("call {}: {why}; hanging up", self.key);
        self.notify(MediaNotice::Hangup(why.into()));
        self.notify(MediaNotice::Finished(MediaTotals::default()));
    }
}

async fn write_recording(
    notices: &mpsc::UnboundedSender<(u64, MediaNotice)>,
    key: u64,
    (path, rate, samples): (String, u32, Vec<i16>),
) {
    match parrot_media_core::wav::encode_wav_pcm16(rate, 1, &samples) {
        Ok(bytes) => match tokio::fs::write(&path, bytes).await {
            Ok(()) => {
                let _ = notices.send((key, MediaNotice::Recorded(PathBuf::from(path))));
            }
            Err(e) => tracing::warn!("cannot write recording {path}: {e}"),
        },
        Err(e) => tracing::warn!("cannot encode recording {path}: {e:?}"),
    }
}
