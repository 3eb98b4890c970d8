//! [`MediaSession`]: one call's audio stream as a sans-IO state machine — SDP offer/answer
//! (RFC 3264), RTP send and receive (RFC 3550/3551), RTCP reports (RFC 3550 §6), RFC 4733 DTMF,
//! playback of WAV files from a queue, and decoded audio for recording — driving a
//! [`MediaHandler`] through the Parrot callback flow.
//!
//! Methods come in the quinn-proto order: getters, `handle_*` inputs, mutators (offer/answer,
//! commands), and `#[must_use]` `poll_*` outputs. After every `handle_*` or mutator call, drain
//! [`poll_transmit`](MediaSession::poll_transmit), [`poll_event`](MediaSession::poll_event) and
//! [`poll_audio`](MediaSession::poll_audio) until `None`, then sleep until
//! [`poll_timeout`](MediaSession::poll_timeout) or the next datagram, and call
//! [`handle_timeout`](MediaSession::handle_timeout) when it passes.

use crate::codec::{builtin_codec, AudioCodec, Codec};
use crate::dtmf::goertzel::GoertzelDetector;
use crate::dtmf::rfc4733::{DtmfReceiver, DtmfSender, TelephoneEvent};
use crate::handler::{
    Actions, DtmfSource, ErrorDecision, MediaAction, MediaHandler, PlayOptions, SdpDecision,
    SdpOrigin, StreamDirection, StreamError,
};
use crate::resample::resample_to_i16;
use crate::rtp::jitter::{JitterBuffer, JitterStats, Popped};
use crate::rtp::pacer::Pacer;
use crate::rtp::rtcp::{
    rtcp_interval, update_avg_rtcp_size, IntervalInputs, ReportBlock, RtcpCompound, RtcpPacket,
    RtcpWriter, SenderInfo,
};
use crate::rtp::stats::{round_trip_time, ReceiverStats};
use crate::rtp::{is_rtcp, RtpHeader, RtpPacket};
use crate::sdp::offer_answer::{self, LocalMedia, NegotiatedMedia, NegotiationError};
use crate::sdp::parse_into;
use crate::sdp::stored::StoredSdp;
use crate::sdp::view::SdpView;
use crate::sdp::write::OriginParts;
use crate::sdp::{Direction, Origin, SessionDescription};
use crate::wav::decode_wav;
use core::any::Any;
use core::net::{IpAddr, SocketAddr};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Largest decoded frame, in samples (120 ms at 16 kHz; G.711 payloads up to 1500 octets fit).
const MAX_FRAME: usize = 2048;
/// A frame of digital silence, what `fill_frame` gives when nothing plays.
static SILENCE: [i16; MAX_FRAME] = [0; MAX_FRAME];
/// Recorded frames kept until the driver drains them.
/// Recorded frames held until the driver drains them (it drains after every input).
const AUDIO_RING: usize = 16;
/// Room reserved for an answer written from a plan: the answers of `tests/answer_golden.rs`
/// take 164 to 288 bytes (a longer one grows the buffer).
const ANSWER_RESERVE: usize = 320;

/// Which side of the offer/answer this session plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Answers offers (incoming calls).
    Uas,
    /// Makes offers (outgoing calls).
    Uac,
}

/// Where the session is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// Created, nothing negotiated.
    Idle,
    /// Our offer is out, waiting for the answer.
    OfferSent,
    /// Negotiated; media flowing.
    Active,
    /// Stopped.
    Stopped,
}

/// What to hand to the driver for recording.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RecordMode {
    /// No audio frames.
    #[default]
    Off,
    /// Decoded received audio (one channel).
    Inbound,
    /// Received and sent audio, tagged by direction (one channel per direction).
    Both,
}

/// Session configuration.
#[derive(Clone, Debug)]
pub struct MediaConfig {
    /// Address, port, codecs, `telephone-event`, ptime and rtcp-mux we offer or accept.
    pub local: LocalMedia,
    /// RTCP CNAME (RFC 3550 §6.5.1); shared, so that a configuration is cloned per call
    /// without allocating.
    pub cname: std::sync::Arc<str>,
    /// Session bandwidth in bits per second; RTCP gets 5% of it (§6.2).
    pub session_bandwidth: u32,
    /// Jitter buffer slots (packets).
    pub jitter_capacity: usize,
    /// How long a sequence gap is held before the packet is declared lost.
    pub jitter_max_hold: Duration,
    /// Audio frames to hand out for recording.
    pub record: RecordMode,
    /// Run the Goertzel detector on received audio.
    pub inband_dtmf: bool,
    /// Send silence when nothing plays (keeps NAT bindings and the peer's jitter buffer warm).
    pub send_silence: bool,
    /// Most overdue packets sent back to back after a stall (see [`Pacer`]).
    pub max_burst: u32,
    /// Our NTP-format wall clock at the `now` given to [`MediaSession::new`], for RTCP SR
    /// timestamps (the core reads no clock; 0 gives relative times, which still yield RTT).
    pub ntp_at_start: u64,
    /// Creates codec implementations; defaults to the built-in G.711.
    pub codec_factory: fn(Codec) -> Option<Box<dyn AudioCodec>>,
}

impl MediaConfig {
    /// Defaults for G.711 (PCMU, PCMA), `telephone-event` at 101, 20 ms, rtcp-mux offered.
    #[must_use]
    pub fn new(address: IpAddr, rtp_port: u16) -> Self {
        MediaConfig {
            local: LocalMedia {
                address,
                rtp_port,
                codecs: std::borrow::Cow::Borrowed(&[Codec::Pcmu, Codec::Pcma]),
                telephone_event: true,
                telephone_event_pt: 101,
                dynamic_pt_base: 96,
                ptime: 20,
                rtcp_mux: true,
            },
            cname: {
                // `parrot@` and the longest address text (45 bytes) fit.
                let mut cname = crate::text::StackText::<64>::new();
                let _ = core::fmt::Write::write_str(&mut cname, "parrot@");
                let _ = crate::text::write_ip(&mut cname, address);
                cname.as_str().into()
            },
            session_bandwidth: 80_000,
            jitter_capacity: 64,
            jitter_max_hold: Duration::from_millis(100),
            record: RecordMode::Off,
            inband_dtmf: false,
            send_silence: true,
            max_burst: 3,
            ntp_at_start: 0,
            codec_factory: builtin_codec,
        }
    }
}

/// Errors from session mutators.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaError {
    /// The handler refused (init, session start, offer, answer or negotiation complete).
    Rejected(String),
    /// The SDP does not parse.
    BadSdp(crate::sdp::SdpError),
    /// Offer/answer failed.
    Negotiation(NegotiationError),
    /// The call is not in a state for this (e.g. an answer without an offer).
    WrongState,
    /// No `telephone-event` was negotiated, or the digit is not DTMF.
    DtmfUnavailable,
    /// No implementation for the negotiated codec.
    CodecUnavailable(Codec),
}

impl core::fmt::Display for MediaError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for MediaError {}

/// Whether a datagram is RTP or RTCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransmitKind {
    /// RTP media.
    Rtp,
    /// RTCP (on the RTP port when rtcp-mux was negotiated).
    Rtcp,
}

/// A datagram written into the caller's buffer by [`MediaSession::poll_transmit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// RTP or RTCP.
    pub kind: TransmitKind,
    /// Bytes written at the start of the buffer.
    pub len: usize,
    /// The peer address from its SDP (`None` if it gave none that parses).
    pub destination: Option<SocketAddr>,
    /// When the datagram is due to leave: an RTP packet's place on the stream's packet clock
    /// (RFC 3550 §5.1), or the `now` it was polled at for RTCP (its NTP timestamp says that
    /// time). An adapter that polls ahead of time ([`MediaSession::poll_transmit`] with a
    /// later `now`) holds the datagram until then.
    pub due: Instant,
}

/// A decoded (or sent) audio frame for recording, its samples copied out by
/// [`MediaSession::poll_audio`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioFrame {
    /// Received (`Inbound`) or sent (`Outbound`).
    pub direction: StreamDirection,
    /// RTP timestamp of the frame.
    pub timestamp: u32,
    /// Sample rate of the PCM.
    pub sample_rate: u32,
    /// Samples written to the caller's buffer.
    pub len: usize,
    /// True when the packet was lost and this is silence standing in for it.
    pub concealed: bool,
}

/// Events for the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaEvent {
    /// Read this file and pass its bytes to [`MediaSession::handle_file`] (or report failure with
    /// [`MediaSession::handle_file_error`]).
    FileRequest {
        /// Path as given to `Play`.
        path: String,
    },
    /// Offer/answer completed with this sending codec.
    NegotiationComplete {
        /// The codec.
        codec: Codec,
    },
    /// Media started.
    StreamStarted {
        /// Negotiated direction.
        direction: StreamDirection,
    },
    /// A file started playing.
    PlayStarted {
        /// Its path.
        path: String,
    },
    /// A file finished, all repetitions included; fired once per `Play`.
    PlayComplete {
        /// Its path.
        path: String,
    },
    /// A DTMF digit, once per key press.
    DtmfReceived {
        /// The key.
        digit: char,
        /// How it was signalled.
        source: DtmfSource,
    },
    /// A stream error was reported to the handler.
    StreamError {
        /// What went wrong.
        error: StreamError,
    },
    /// The peer sent an RTCP BYE.
    RemoteBye,
    /// The stream stopped.
    StreamStopped {
        /// Why (borrowed when [`MediaSession::stop`] was given static text).
        reason: Cow<'static, str>,
    },
    /// A recording started: keep the inbound frames of `poll_audio` for `path`.
    RecordingStarted {
        /// Where the driver writes the recording.
        path: String,
    },
    /// The recording at `path` is complete: the driver writes it out.
    RecordingStopped {
        /// Where the driver writes the recording.
        path: String,
    },
    /// The handler asked to end the call (a [`MediaAction::Hangup`]).
    HangupRequested {
        /// Why.
        reason: String,
    },
    /// The session ended; nothing more will be sent.
    SessionStopped {
        /// Why (borrowed when [`MediaSession::stop`] was given static text).
        reason: Cow<'static, str>,
    },
}

#[derive(Debug)]
struct PlayItem {
    path: String,
    opts: PlayOptions,
    samples: Option<std::sync::Arc<[i16]>>,
    pos: usize,
    plays: u32,
    started: bool,
}

/// The events waiting for [`MediaSession::poll_event`], oldest first. A session has a handful
/// at a time and the driver drains them after every input, so they are kept inline (nothing is
/// allocated per session); a taken event leaves a placeholder until the queue empties.
#[derive(Debug, Default)]
struct EventQueue {
    items: smallvec::SmallVec<[MediaEvent; 4]>,
    /// How many at the front were taken already.
    taken: usize,
}

impl EventQueue {
    fn push(&mut self, e: MediaEvent) {
        if self.taken > 0 && self.items.len() == self.items.capacity() {
            // Full: drop the placeholders rather than grow past them.
            self.items.drain(..self.taken);
            self.taken = 0;
        }
        self.items.push(e);
    }

    /// Moves every waiting event to the end of `out`, oldest first.
    fn drain_into(&mut self, out: &mut Vec<MediaEvent>) {
        if self.taken == self.items.len() {
            return;
        }
        out.extend(self.items.drain(self.taken..));
        self.items.clear();
        self.taken = 0;
    }

    fn pop(&mut self) -> Option<MediaEvent> {
        let slot = self.items.get_mut(self.taken)?;
        let e = core::mem::replace(slot, MediaEvent::RemoteBye);
        self.taken += 1;
        if self.taken == self.items.len() {
            self.items.clear();
            self.taken = 0;
        }
        Some(e)
    }
}

/// SplitMix64, seeded once from the injected RNG, for the RTCP interval jitter.
#[derive(Clone, Copy, Debug)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Sender {
    codec: Codec,
    pt: u8,
    imp: Box<dyn AudioCodec>,
}

/// Decodes a WAV file (8/16-bit PCM, μ-law, A-law, any rate, mono or stereo) to mono PCM at
/// `rate`, resampling with the anti-aliasing resampler when the rates differ.
pub fn decode_for_playback(bytes: &[u8], rate: u32) -> Result<Vec<i16>, crate::wav::WavError> {
    let w = decode_wav(bytes)?;
    let mono = w.to_mono_f32();
    Ok(if w.sample_rate == rate {
        mono.iter().map(|&s| s as i16).collect()
    } else {
        resample_to_i16(&mono, w.sample_rate, rate)
    })
}

/// One call's media. See the [module docs](self) for the driving loop.
pub struct MediaSession<H: MediaHandler> {
    id: String,
    role: Role,
    config: MediaConfig,
    handler: H,
    state: SessionState,
    epoch: Instant,
    rng: SplitMix,
    // Signalling.
    /// Our `o=` session id and current version (RFC 8866 §5.2, RFC 3264 §8).
    session_id: u64,
    session_version: u64,
    local_sdp: Option<StoredSdp>,
    remote_sdp: Option<StoredSdp>,
    /// The first offer received and our answer to it, back to back in one allocation, for
    /// `local_sdp`/`remote_sdp` held as [`StoredSdp::Shared`]; written at most once.
    sdp_text: String,
    pending_offer: Option<Box<SessionDescription>>,
    wish: Direction,
    negotiated: Option<NegotiatedMedia>,
    // Sending.
    ssrc: u32,
    seq: u16,
    ts_base: u32,
    pacer: Option<Pacer>,
    sender: Option<Sender>,
    frame: Vec<i16>,
    marker_next: bool,
    packets_sent: u32,
    octets_sent: u32,
    sent_since_report: bool,
    /// Boxed on the first digit sent (its 32-digit queue is most of 312 bytes, and most calls
    /// send none); an empty sender sends nothing.
    dtmf_tx: Option<Box<DtmfSender>>,
    /// The play queue: inline for the usual one file at a time (no allocation per call).
    queue: smallvec::SmallVec<[PlayItem; 1]>,
    paused: bool,
    recording: Option<String>,
    live: VecDeque<i16>,
    live_primed: bool,
    live_overrun: u64,
    live_underrun: u64,
    // Receiving.
    /// Inline for the usual one or two negotiated codecs (no allocation per call).
    decoders: smallvec::SmallVec<[(u8, Box<dyn AudioCodec>); 2]>,
    stats: Option<ReceiverStats>,
    jitter: JitterBuffer,
    /// Boxed on the first telephone-event packet received (most calls carry none).
    dtmf_rx: Option<Box<DtmfReceiver>>,
    /// Only with [`MediaConfig::inband_dtmf`].
    goertzel: Option<Box<GoertzelDetector>>,
    decode_buf: Vec<i16>,
    malformed: u64,
    remote_sender_seen: bool,
    // RTCP.
    next_rtcp: Option<Instant>,
    last_rtcp: Option<Instant>,
    rtcp_initial: bool,
    avg_rtcp_size: f64,
    bye_pending: bool,
    rtt: Option<f64>,
    remote_report: Option<ReportBlock>,
    // Outputs.
    events: EventQueue,
    audio_meta: VecDeque<(AudioFrame, usize)>,
    audio_ring: Vec<i16>,
    audio_next_slot: usize,
    audio_dropped: u64,
}

impl<H: MediaHandler> core::fmt::Debug for MediaSession<H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MediaSession")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("state", &self.state)
            .field("ssrc", &self.ssrc)
            .finish_non_exhaustive()
    }
}

fn stream_direction(d: Direction) -> StreamDirection {
    match d {
        Direction::SendOnly => StreamDirection::Outbound,
        Direction::RecvOnly => StreamDirection::Inbound,
        Direction::SendRecv | Direction::Inactive => StreamDirection::Bidirectional,
    }
}

impl<H: MediaHandler> MediaSession<H> {
    /// Creates a session: calls the handler's `init` and `handle_session_start`, and draws the
    /// SSRC, initial sequence number and timestamp (RFC 3550 §5.1) and the SDP session id from
    /// `rng`.
    pub fn new(
        id: impl Into<String>,
        role: Role,
        config: MediaConfig,
        mut handler: H,
        rng: &mut dyn rand_core::RngCore,
        now: Instant,
    ) -> Result<Self, MediaError> {
        let id = id.into();
        handler.init(&id).map_err(MediaError::Rejected)?;
        handler
            .handle_session_start(&id, role)
            .map_err(MediaError::Rejected)?;
        let ssrc = rng.next_u32();
        let seq = rng.next_u32() as u16;
        let ts_base = rng.next_u32();
        let session_id = rng.next_u64() >> 2;
        let rng_state = SplitMix(rng.next_u64());
        let jitter = JitterBuffer::new(config.jitter_capacity, 1500, config.jitter_max_hold, now);
        Ok(MediaSession {
            id,
            role,
            handler,
            state: SessionState::Idle,
            epoch: now,
            rng: rng_state,
            session_id,
            // As `offer_answer::new_origin` starts it.
            session_version: session_id & 0xFFFF_FFFF,
            local_sdp: None,
            remote_sdp: None,
            sdp_text: String::new(),
            pending_offer: None,
            wish: Direction::SendRecv,
            negotiated: None,
            ssrc,
            seq,
            ts_base,
            pacer: None,
            sender: None,
            // Sized on the first packet sent (`fill_frame`), to the frame and no more.
            frame: Vec::new(),
            marker_next: true,
            packets_sent: 0,
            octets_sent: 0,
            sent_since_report: false,
            dtmf_tx: None,
            queue: smallvec::SmallVec::new(),
            paused: false,
            recording: None,
            live: VecDeque::new(),
            live_primed: false,
            live_overrun: 0,
            live_underrun: 0,
            decoders: smallvec::SmallVec::new(),
            stats: None,
            jitter,
            dtmf_rx: None,
            goertzel: config
                .inband_dtmf
                .then(|| Box::new(GoertzelDetector::new())),
            // Allocated on the first packet decoded, so calls that receive nothing never pay.
            decode_buf: Vec::new(),
            malformed: 0,
            remote_sender_seen: false,
            next_rtcp: None,
            last_rtcp: None,
            rtcp_initial: true,
            avg_rtcp_size: 100.0,
            bye_pending: false,
            rtt: None,
            remote_report: None,
            events: EventQueue::default(),
            // Reserved with the ring on the first frame recorded.
            audio_meta: VecDeque::new(),
            audio_ring: Vec::new(),
            audio_next_slot: 0,
            audio_dropped: 0,
            config,
        })
    }

    // ----- getters -----

    /// The session id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }
    /// UAS or UAC.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }
    /// Lifecycle state.
    #[must_use]
    pub fn state(&self) -> SessionState {
        self.state
    }
    /// The handler.
    #[must_use]
    pub fn handler(&self) -> &H {
        &self.handler
    }
    /// The handler, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }
    /// Our SSRC.
    #[must_use]
    pub fn local_ssrc(&self) -> u32 {
        self.ssrc
    }
    /// The SSRC we receive from.
    #[must_use]
    pub fn remote_ssrc(&self) -> Option<u32> {
        self.stats.map(|s| s.ssrc())
    }
    /// The codec we send with.
    #[must_use]
    pub fn codec(&self) -> Option<Codec> {
        self.sender.as_ref().map(|s| s.codec)
    }
    /// The negotiated stream.
    #[must_use]
    pub fn negotiated(&self) -> Option<&NegotiatedMedia> {
        self.negotiated.as_ref()
    }
    /// Our current SDP (last offer or answer).
    #[must_use]
    pub fn local_sdp(&self) -> Option<&SessionDescription> {
        self.local_sdp.as_ref().and_then(|s| s.get(&self.sdp_text))
    }
    /// The peer's current SDP.
    #[must_use]
    pub fn remote_sdp(&self) -> Option<&SessionDescription> {
        self.remote_sdp.as_ref().and_then(|s| s.get(&self.sdp_text))
    }
    /// Reception statistics for the current remote source (RFC 3550 §A.3, §A.8).
    #[must_use]
    pub fn receiver_stats(&self) -> Option<&ReceiverStats> {
        self.stats.as_ref()
    }
    /// Jitter buffer counters.
    #[must_use]
    pub fn jitter_stats(&self) -> JitterStats {
        self.jitter.stats()
    }
    /// Round-trip time from the last report about our stream (RFC 3550 §6.4.1), seconds.
    #[must_use]
    pub fn rtt(&self) -> Option<f64> {
        self.rtt
    }
    /// The last reception report the peer sent about our stream.
    #[must_use]
    pub fn remote_report(&self) -> Option<&ReportBlock> {
        self.remote_report.as_ref()
    }
    /// RTP packets sent.
    #[must_use]
    pub fn packets_sent(&self) -> u32 {
        self.packets_sent
    }
    /// Undecodable datagrams received.
    #[must_use]
    pub fn malformed_received(&self) -> u64 {
        self.malformed
    }
    /// Packets skipped by the pacer after stalls.
    #[must_use]
    pub fn packets_skipped(&self) -> u64 {
        self.pacer.as_ref().map_or(0, Pacer::skipped)
    }
    /// Whether playback is paused.
    #[must_use]
    pub fn is_paused(&self) -> bool {
        self.paused
    }
    /// Files queued or playing.
    #[must_use]
    pub fn play_queue_len(&self) -> usize {
        self.queue.len()
    }
    /// Recorded frames dropped because the driver did not drain [`poll_audio`](Self::poll_audio).
    #[must_use]
    pub fn audio_frames_dropped(&self) -> u64 {
        self.audio_dropped
    }

    // ----- offer / answer -----

    /// Our `o=` line as it stands (RFC 8866 §5.2).
    fn origin(&self) -> Origin {
        let mut o = offer_answer::new_origin(self.session_id, self.config.local.address);
        o.session_version = self.session_version;
        o
    }

    /// Stores `sd` as our current description and returns its text, the `o=` version bumped
    /// if it changed (RFC 3264 §8: a changed description carries version + 1; an unchanged one
    /// keeps it).
    fn bump_and_store(&mut self, mut sd: SessionDescription) -> String {
        if let Some(prev) = self.local_sdp() {
            sd.origin.session_version = prev.origin.session_version;
            if offer_answer::differs_ignoring_version(prev, &sd) {
                sd.origin.session_version += 1;
            }
        }
        self.session_version = sd.origin.session_version;
        let text = sd.to_string();
        self.local_sdp = Some(StoredSdp::Parsed(Box::new(sd)));
        text
    }

    /// Answers a received offer (UAS, or a re-offer from either side): returns the answer SDP.
    /// Calls `handle_offer`, `handle_codec_negotiation`, `handle_answer`,
    /// `handle_negotiation_complete` and, the first time, `handle_stream_start`.
    pub fn process_offer(&mut self, now: Instant, sdp: &str) -> Result<String, MediaError> {
        if self.state == SessionState::Stopped {
            return Err(MediaError::WrongState);
        }
        // Borrowed unless the handler rewrote it: the view parses it in place, and it is copied
        // once, below, next to the answer.
        let offer_text: std::borrow::Cow<'_, str> =
            match self.handler.handle_offer(sdp, SdpOrigin::Inbound) {
                SdpDecision::Reject(r) => return Err(MediaError::Rejected(r)),
                SdpDecision::Modified(s) => s.into(),
                SdpDecision::NoReply => sdp.into(),
            };
        // The view and the plan (which borrows it) live in this block and end with it: the
        // view is large, and `drop(view)` would copy it to drop it.
        let (mut answer_text, neg, shared_offer) = {
            let mut offer = SdpView::empty();
            parse_into(&offer_text, &mut offer).map_err(MediaError::BadSdp)?;
            let handler = &mut self.handler;
            let (plan, neg) =
                offer_answer::plan_answer(&offer, &self.config.local, self.wish, |o, s| {
                    handler.handle_codec_negotiation(o, s)
                })
                .map_err(MediaError::Negotiation)?;
            // Whether the offer's text went into `sdp_text` (at its start) with the answer.
            let mut shared_offer = false;
            let answer_text = if self.local_sdp.is_some() {
                // A re-offer: compare with what we said last to decide the version.
                let sd = plan.to_description(self.origin(), self.config.local.address, &neg);
                self.bump_and_store(sd)
            } else {
                // The first answer: written straight from the plan, parsed only if asked for.
                let origin = OriginParts {
                    session_id: self.session_id,
                    session_version: self.session_version,
                    address: self.config.local.address,
                };
                if self.sdp_text.is_empty() {
                    // Offer and answer in one buffer (one allocation for both stored texts),
                    // the answer written in place after the offer. The copy handed back is
                    // exactly its length: it becomes a message body as it is.
                    let buf = &mut self.sdp_text;
                    buf.reserve_exact(offer_text.len() + ANSWER_RESERVE);
                    buf.push_str(&offer_text);
                    // Writing to a `String` cannot fail.
                    let _ = crate::sdp::write::answer(buf, origin, &plan, &neg);
                    self.local_sdp = Some(StoredSdp::shared(offer_text.len(), buf.len()));
                    shared_offer = true;
                    String::from(&buf[offer_text.len()..])
                } else {
                    let mut text = String::with_capacity(ANSWER_RESERVE);
                    let _ = crate::sdp::write::answer(&mut text, origin, &plan, &neg);
                    self.local_sdp = Some(StoredSdp::text(text.clone()));
                    text
                }
            };
            (answer_text, neg, shared_offer)
        };
        match self
            .handler
            .handle_answer(&answer_text, SdpOrigin::Outbound)
        {
            SdpDecision::Reject(r) => return Err(MediaError::Rejected(r)),
            SdpDecision::Modified(s) => {
                if let Ok(sd) = SessionDescription::parse(&s) {
                    self.local_sdp = Some(StoredSdp::Parsed(Box::new(sd)));
                }
                answer_text = s;
            }
            SdpDecision::NoReply => {}
        }
        // The handler cannot see the session, so storing the offer after the negotiation's
        // callbacks is the same as storing it before.
        let done = self.complete_negotiation(now, neg, &answer_text, &offer_text);
        self.remote_sdp = Some(if shared_offer {
            StoredSdp::shared(0, offer_text.len())
        } else {
            StoredSdp::text(offer_text.into_owned())
        });
        done?;
        Ok(answer_text)
    }

    /// Creates an offer (UAC, or a re-offer for hold/resume). Calls `handle_offer`.
    pub fn create_offer(&mut self, _now: Instant) -> Result<String, MediaError> {
        if self.state == SessionState::Stopped {
            return Err(MediaError::WrongState);
        }
        let offer = offer_answer::create_offer(&self.config.local, self.origin(), self.wish);
        let mut text = self.bump_and_store(offer);
        match self.handler.handle_offer(&text, SdpOrigin::Outbound) {
            SdpDecision::Reject(r) => return Err(MediaError::Rejected(r)),
            SdpDecision::Modified(s) => text = s,
            SdpDecision::NoReply => {}
        }
        let parsed = SessionDescription::parse(&text).map_err(MediaError::BadSdp)?;
        self.local_sdp = Some(StoredSdp::Parsed(Box::new(parsed.clone())));
        self.pending_offer = Some(Box::new(parsed));
        if self.state == SessionState::Idle {
            self.state = SessionState::OfferSent;
        }
        Ok(text)
    }

    /// Processes the answer to our offer. Calls `handle_answer`, `handle_negotiation_complete`
    /// and, the first time, `handle_stream_start`.
    pub fn process_answer(&mut self, now: Instant, sdp: &str) -> Result<(), MediaError> {
        let offer = self.pending_offer.clone().ok_or(MediaError::WrongState)?;
        let text = match self.handler.handle_answer(sdp, SdpOrigin::Inbound) {
            SdpDecision::Reject(r) => return Err(MediaError::Rejected(r)),
            SdpDecision::Modified(s) => s,
            SdpDecision::NoReply => sdp.to_owned(),
        };
        let answer = SessionDescription::parse(&text).map_err(MediaError::BadSdp)?;
        let neg = offer_answer::process_answer(&offer, &answer, &self.config.local)
            .map_err(MediaError::Negotiation)?;
        self.pending_offer = None;
        self.remote_sdp = Some(StoredSdp::Parsed(Box::new(answer)));
        let local = offer.to_string();
        self.complete_negotiation(now, neg, &local, &text)
    }

    /// Puts the call on hold: returns a re-offer with the `o=` version bumped, marking the stream
    /// `sendonly`, or `inactive` if the peer already holds us (we only receive), as RFC 3264
    /// §8.4 prescribes. Send it, then pass the answer to [`process_answer`](Self::process_answer).
    pub fn hold(&mut self, now: Instant) -> Result<String, MediaError> {
        let peer_holds_us = self
            .negotiated
            .as_ref()
            .is_some_and(|n| !n.direction.sends());
        self.wish = if peer_holds_us {
            Direction::Inactive
        } else {
            Direction::SendOnly
        };
        self.create_offer(now)
    }

    /// Resumes a held call with a `sendrecv` re-offer.
    pub fn resume(&mut self, now: Instant) -> Result<String, MediaError> {
        self.wish = Direction::SendRecv;
        self.create_offer(now)
    }

    fn complete_negotiation(
        &mut self,
        now: Instant,
        neg: NegotiatedMedia,
        local: &str,
        remote: &str,
    ) -> Result<(), MediaError> {
        let (codec, pt) = *neg
            .codecs
            .first()
            .ok_or(MediaError::Negotiation(NegotiationError::NoCommonCodec))?;
        self.handler
            .handle_negotiation_complete(local, remote, codec)
            .map_err(MediaError::Rejected)?;
        if self.sender.as_ref().map(|s| (s.codec, s.pt)) != Some((codec, pt)) {
            let imp =
                (self.config.codec_factory)(codec).ok_or(MediaError::CodecUnavailable(codec))?;
            self.sender = Some(Sender { codec, pt, imp });
        }
        self.decoders.clear();
        for &(c, p) in &neg.codecs {
            if let Some(imp) = (self.config.codec_factory)(c) {
                self.decoders.push((p, imp));
            }
        }
        let direction = neg.direction;
        let ptime = neg.ptime.clamp(10, 120);
        let first = self.state != SessionState::Active;
        self.negotiated = Some(neg);
        self.push_event(MediaEvent::NegotiationComplete { codec });
        if first {
            self.state = SessionState::Active;
            self.pacer = Some(Pacer::new(
                now,
                Duration::from_millis(u64::from(ptime)),
                self.config.max_burst,
            ));
            self.next_rtcp = Some(now + self.rtcp_interval_now());
            self.push_event(MediaEvent::StreamStarted {
                direction: stream_direction(direction),
            });
            let actions = self
                .handler
                .handle_stream_start(&self.id, stream_direction(direction));
            self.apply(now, actions);
        }
        Ok(())
    }

    // ----- inputs -----

    /// A datagram from the RTP port. With rtcp-mux, RTCP is recognised (RFC 5761 §4) and handled
    /// as such. Malformed input is counted and ignored.
    pub fn handle_rtp(&mut self, now: Instant, datagram: &[u8]) {
        if is_rtcp(datagram) {
            self.handle_rtcp(now, datagram);
            return;
        }
        let Ok(pkt) = RtpPacket::parse(datagram) else {
            self.malformed += 1;
            return;
        };
        if self.state != SessionState::Active {
            return;
        }
        let clock = self.sender.as_ref().map_or(8000, |s| s.codec.clock_rate());
        let arrival = (now.saturating_duration_since(self.epoch).as_nanos() * u128::from(clock)
            / 1_000_000_000) as u32;
        let stats = match &mut self.stats {
            Some(s) if s.ssrc() == pkt.ssrc => s,
            slot => slot.insert(ReceiverStats::new(pkt.ssrc, pkt.sequence_number)),
        };
        stats.update(pkt.sequence_number);
        let te_pt = self.negotiated.as_ref().and_then(|n| n.telephone_event_pt);
        if Some(pkt.payload_type) == te_pt {
            // Events are reported on arrival (dedup by timestamp), not after reordering.
            if let Some(ev) = TelephoneEvent::parse(pkt.payload) {
                if let Some(digit) = self.dtmf_rx.get_or_insert_with(Box::default).on_packet(
                    pkt.ssrc,
                    pkt.timestamp,
                    &ev,
                ) {
                    self.on_digit(now, digit, DtmfSource::Rfc4733);
                }
            }
        } else {
            stats.update_jitter(pkt.timestamp, arrival);
        }
        self.jitter.insert(now, &pkt);
        self.drain_jitter(now);
    }

    fn on_digit(&mut self, now: Instant, digit: char, source: DtmfSource) {
        self.push_event(MediaEvent::DtmfReceived { digit, source });
        let a = self.handler.handle_dtmf(digit, source);
        self.apply(now, a);
    }

    fn drain_jitter(&mut self, now: Instant) {
        if self.jitter.stats().depth == 0 {
            return;
        }
        if self.decode_buf.is_empty() {
            self.decode_buf.resize(MAX_FRAME, 0);
        }
        let te_pt = self.negotiated.as_ref().and_then(|n| n.telephone_event_pt);
        let record = self.config.record != RecordMode::Off;
        let mut digits: [char; 4] = ['\0'; 4];
        let mut nd = 0;
        let spf = self.samples_per_frame();
        loop {
            let (ts, n, concealed) = match self.jitter.pop(now) {
                None => break,
                Some(Popped::Lost { .. }) => {
                    let n = spf.min(MAX_FRAME);
                    self.decode_buf[..n].fill(0);
                    (0, n, true)
                }
                Some(Popped::Frame(f)) => {
                    if Some(f.payload_type) == te_pt {
                        continue;
                    }
                    let Some((_, dec)) =
                        self.decoders.iter_mut().find(|(p, _)| *p == f.payload_type)
                    else {
                        continue;
                    };
                    let Some(n) = dec.decode(f.payload, &mut self.decode_buf) else {
                        continue;
                    };
                    (f.timestamp, n, false)
                }
            };
            if let (Some(goertzel), false) = (self.goertzel.as_mut(), concealed) {
                let buf = &self.decode_buf[..n];
                goertzel.feed(buf, |d| {
                    if nd < digits.len() {
                        digits[nd] = d;
                        nd += 1;
                    }
                });
            }
            if record {
                let rate = self.decoders.first().map_or(8000, |(_, d)| d.sample_rate());
                let frame = AudioFrame {
                    direction: StreamDirection::Inbound,
                    timestamp: ts,
                    sample_rate: rate,
                    len: n,
                    concealed,
                };
                Self::push_audio(
                    &mut self.audio_meta,
                    &mut self.audio_ring,
                    &mut self.audio_next_slot,
                    &mut self.audio_dropped,
                    frame,
                    &self.decode_buf[..n],
                );
            }
        }
        for &d in &digits[..nd] {
            self.on_digit(now, d, DtmfSource::InBand);
        }
    }

    fn push_audio(
        meta: &mut VecDeque<(AudioFrame, usize)>,
        ring: &mut Vec<i16>,
        next: &mut usize,
        dropped: &mut u64,
        frame: AudioFrame,
        pcm: &[i16],
    ) {
        // Only called when recording is on.
        if ring.is_empty() {
            // Reserved on the first frame, so calls that never carry audio never pay for it.
            ring.resize(AUDIO_RING * MAX_FRAME, 0);
            meta.reserve_exact(AUDIO_RING);
        }
        if meta.len() == AUDIO_RING {
            meta.pop_front();
            *dropped += 1;
        }
        let slot = *next;
        *next = (*next + 1) % AUDIO_RING;
        let n = pcm.len().min(MAX_FRAME);
        ring[slot * MAX_FRAME..slot * MAX_FRAME + n].copy_from_slice(&pcm[..n]);
        meta.push_back((AudioFrame { len: n, ..frame }, slot));
    }

    /// A datagram from the RTCP port (or recognised on a muxed port). Malformed input is counted
    /// and ignored.
    pub fn handle_rtcp(&mut self, now: Instant, datagram: &[u8]) {
        let Ok(compound) = RtcpCompound::parse(datagram) else {
            self.malformed += 1;
            return;
        };
        self.avg_rtcp_size = update_avg_rtcp_size(self.avg_rtcp_size, datagram.len() + 28);
        let now_ntp = self.ntp(now);
        for p in compound.packets() {
            match p {
                RtcpPacket::SenderReport {
                    ssrc,
                    info,
                    reports,
                } => {
                    self.remote_sender_seen = true;
                    if let Some(s) = self.stats.as_mut().filter(|s| s.ssrc() == ssrc) {
                        s.record_sender_report(info.ntp_timestamp, now_ntp);
                    }
                    self.take_reports(reports.iter(), now_ntp);
                }
                RtcpPacket::ReceiverReport { reports, .. } => {
                    self.take_reports(reports.iter(), now_ntp)
                }
                RtcpPacket::Goodbye { .. } => self.push_event(MediaEvent::RemoteBye),
                _ => {}
            }
        }
    }

    fn take_reports(&mut self, reports: impl Iterator<Item = ReportBlock>, now_ntp: u64) {
        for b in reports.filter(|b| b.ssrc == self.ssrc) {
            if let Some(rtt) = round_trip_time(&b, now_ntp) {
                self.rtt = Some(rtt);
            }
            self.remote_report = Some(b);
        }
    }

    /// Timers: gives up on held jitter-buffer gaps and lets the pacer run while we are not
    /// sending (so RTP timestamps stay continuous). Early calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state != SessionState::Active {
            return;
        }
        self.drain_jitter(now);
        if !self.sending() {
            if let Some(p) = &mut self.pacer {
                while p.poll(now).is_some() {}
            }
            self.marker_next = true;
        }
    }

    /// The bytes of a file requested with [`MediaEvent::FileRequest`]: decoded, converted to
    /// mono at the codec's rate, and queued.
    pub fn handle_file(&mut self, now: Instant, path: &str, bytes: &[u8]) {
        let rate = self.playback_rate();
        if !self
            .queue
            .iter()
            .any(|it| it.path == path && it.samples.is_none())
        {
            return;
        }
        match decode_for_playback(bytes, rate) {
            Ok(pcm) => self.handle_file_samples(now, path, pcm.into()),
            Err(error) => {
                if let Some(i) = self
                    .queue
                    .iter()
                    .position(|it| it.path == path && it.samples.is_none())
                {
                    self.file_failed(
                        now,
                        i,
                        StreamError::BadFile {
                            path: path.to_owned(),
                            error,
                        },
                    );
                }
            }
        }
    }

    /// The sample rate files must be decoded to for [`MediaSession::handle_file_samples`]: the
    /// sending codec's (8000 for G.711).
    #[must_use]
    pub fn playback_rate(&self) -> u32 {
        self.sender.as_ref().map_or(8000, |s| s.imp.sample_rate())
    }

    /// Fulfils a [`MediaEvent::FileRequest`] with audio already decoded to mono PCM at
    /// [`MediaSession::playback_rate`] (see [`decode_for_playback`]). The samples are shared,
    /// not copied, so a driver can decode a prompt once and hand it to every call.
    pub fn handle_file_samples(
        &mut self,
        _now: Instant,
        path: &str,
        samples: std::sync::Arc<[i16]>,
    ) {
        if let Some(i) = self
            .queue
            .iter()
            .position(|it| it.path == path && it.samples.is_none())
        {
            self.queue[i].samples = Some(samples);
        }
    }

    /// The adapter could not read a requested file.
    pub fn handle_file_error(&mut self, now: Instant, path: &str, reason: &str) {
        if let Some(i) = self
            .queue
            .iter()
            .position(|it| it.path == path && it.samples.is_none())
        {
            self.file_failed(
                now,
                i,
                StreamError::FileUnavailable {
                    path: path.to_owned(),
                    reason: reason.to_owned(),
                },
            );
        }
    }

    fn file_failed(&mut self, now: Instant, i: usize, error: StreamError) {
        self.push_event(MediaEvent::StreamError {
            error: error.clone(),
        });
        match self.handler.handle_stream_error(&self.id, &error) {
            ErrorDecision::Retry => {
                let path = self.queue[i].path.clone();
                self.push_event(MediaEvent::FileRequest { path });
            }
            ErrorDecision::Continue => {
                self.queue.remove(i);
            }
            ErrorDecision::Stop(reason) => self.stop(now, reason),
        }
    }

    /// Applies an application command, as if a callback had returned it.
    pub fn handle_command(&mut self, now: Instant, action: MediaAction) {
        self.apply(now, Actions::One(action));
    }

    /// Passes an application request to `handle_media_request` and applies its actions.
    pub fn handle_media_request(
        &mut self,
        now: Instant,
        request: &dyn Any,
    ) -> Result<(), MediaError> {
        let a = self
            .handler
            .handle_media_request(request)
            .map_err(MediaError::Rejected)?;
        self.apply(now, a);
        Ok(())
    }

    /// Sends `digit` as RFC 4733 events lasting `duration` (start, updates, three end packets).
    pub fn send_dtmf(
        &mut self,
        _now: Instant,
        digit: char,
        duration: Duration,
    ) -> Result<(), MediaError> {
        let clock = self
            .sender
            .as_ref()
            .map(|s| s.codec.clock_rate())
            .ok_or(MediaError::WrongState)?;
        if self
            .negotiated
            .as_ref()
            .and_then(|n| n.telephone_event_pt)
            .is_none()
        {
            return Err(MediaError::DtmfUnavailable);
        }
        let ticks = (duration.as_millis() as u64 * u64::from(clock) / 1000) as u32;
        if self
            .dtmf_tx
            .get_or_insert_with(Box::default)
            .push(digit, ticks)
        {
            Ok(())
        } else {
            Err(MediaError::DtmfUnavailable)
        }
    }

    /// Ends the session: `handle_stream_stop`, an RTCP BYE (drain `poll_transmit`) if the
    /// session has sent anything (RFC 3550 §6.3.7: a participant that never sent an RTP or
    /// RTCP packet sends no BYE), `handle_session_stop`. A static `reason` (a literal) goes
    /// into the stop events as it is, without a copy.
    pub fn stop(&mut self, _now: Instant, reason: impl Into<Cow<'static, str>>) {
        if self.state == SessionState::Stopped {
            return;
        }
        let reason = reason.into();
        if self.state == SessionState::Active {
            self.handler.handle_stream_stop(&self.id, &reason);
            self.push_event(MediaEvent::StreamStopped {
                reason: reason.clone(),
            });
            self.bye_pending = self.packets_sent > 0 || self.last_rtcp.is_some();
        }
        self.handler.handle_session_stop(&self.id, &reason);
        self.push_event(MediaEvent::SessionStopped { reason });
        self.state = SessionState::Stopped;
        self.queue.clear();
    }

    fn apply(&mut self, now: Instant, actions: Actions) {
        // A single action (the common answer of a handler) is applied without the vector
        // `Actions::into_vec` would make for it.
        let (one, many) = match actions {
            Actions::None => (None, Vec::new()),
            Actions::One(a) => (Some(a), Vec::new()),
            Actions::Many(v) => (None, v),
        };
        for a in one.into_iter().chain(many) {
            match a {
                MediaAction::Play(path, opts) => {
                    self.push_event(MediaEvent::FileRequest { path: path.clone() });
                    self.queue.push(PlayItem {
                        path,
                        opts,
                        samples: None,
                        pos: 0,
                        plays: 0,
                        started: false,
                    });
                }
                MediaAction::Stop => {
                    self.queue.clear();
                    self.paused = false;
                }
                MediaAction::Pause => self.paused = true,
                MediaAction::Resume => self.paused = false,
                MediaAction::SetCodec(c) => {
                    let pt = self
                        .negotiated
                        .as_ref()
                        .and_then(|n| n.codecs.iter().find(|(x, _)| *x == c).map(|(_, p)| *p));
                    match (pt, (self.config.codec_factory)(c)) {
                        (Some(pt), Some(imp)) => self.sender = Some(Sender { codec: c, pt, imp }),
                        _ => {
                            let error = StreamError::CodecUnavailable(c);
                            self.push_event(MediaEvent::StreamError {
                                error: error.clone(),
                            });
                            if let ErrorDecision::Stop(r) =
                                self.handler.handle_stream_error(&self.id, &error)
                            {
                                self.stop(now, r);
                            }
                        }
                    }
                }
                MediaAction::StartRecording(path) => {
                    if let Some(old) = self.recording.replace(path.clone()) {
                        self.push_event(MediaEvent::RecordingStopped { path: old });
                    }
                    self.push_event(MediaEvent::RecordingStarted { path });
                }
                MediaAction::StopRecording => {
                    if let Some(path) = self.recording.take() {
                        self.push_event(MediaEvent::RecordingStopped { path });
                    }
                }
                MediaAction::Hangup(reason) => {
                    self.push_event(MediaEvent::HangupRequested { reason });
                }
                MediaAction::NoReply => {}
            }
        }
    }

    /// The path of the recording in progress, if any.
    #[must_use]
    pub fn recording(&self) -> Option<&str> {
        self.recording.as_deref()
    }

    fn push_event(&mut self, e: MediaEvent) {
        self.events.push(e);
    }

    // ----- outputs -----

    fn sending(&self) -> bool {
        self.negotiated
            .as_ref()
            .is_some_and(|n| n.direction.sends())
    }

    fn samples_per_frame(&self) -> usize {
        let ptime = self
            .pacer
            .as_ref()
            .map_or(20, |p| p.ptime().as_millis() as usize);
        let rate = self
            .sender
            .as_ref()
            .map_or(8000, |s| s.imp.sample_rate() as usize);
        (rate * ptime / 1000).min(MAX_FRAME)
    }

    fn ntp(&self, now: Instant) -> u64 {
        let d = now.saturating_duration_since(self.epoch);
        let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
        self.config
            .ntp_at_start
            .wrapping_add((d.as_secs() << 32) | frac)
    }

    fn rtcp_interval_now(&mut self) -> Duration {
        let senders = u32::from(self.sent_since_report) + u32::from(self.remote_sender_seen);
        let inputs = IntervalInputs {
            members: 2,
            senders,
            rtcp_bandwidth: f64::from(self.config.session_bandwidth) * 0.05 / 8.0,
            we_sent: self.sent_since_report,
            avg_rtcp_size: self.avg_rtcp_size,
            initial: self.rtcp_initial,
        };
        Duration::from_secs_f64(rtcp_interval(&inputs, self.rng.unit()))
    }

    /// When the stream's first packet is due, while none has been sent yet (RFC 3550 §5.1:
    /// the pacer's clock starts there).
    #[must_use]
    pub fn first_packet_due(&self) -> Option<Instant> {
        self.pacer
            .as_ref()
            .filter(|p| p.next_index() == 0)
            .map(|p| p.due_at(0))
    }

    /// Starts the stream's packet clock at `at` instead: later than planned by less than two
    /// packet times, and only before the first packet has gone. A user agent running many
    /// calls uses it to spread their send phases evenly over the packet time (and to give a
    /// call hung up at once the time to end before it sends anything). Returns whether it did.
    pub fn delay_first_packet(&mut self, at: Instant) -> bool {
        let Some(p) = &self.pacer else {
            return false;
        };
        let start = p.due_at(0);
        if p.next_index() != 0 || at < start || at >= start + 2 * p.ptime() {
            return false;
        }
        self.pacer = Some(Pacer::new(at, p.ptime(), self.config.max_burst));
        true
    }

    /// The next datagram due at `now`, written into `buf` (1500 octets is always enough).
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if self.bye_pending {
            self.bye_pending = false;
            let len = self.write_rtcp(now, buf, true)?;
            return Some(Transmit {
                kind: TransmitKind::Rtcp,
                len,
                destination: self.rtcp_destination(),
                due: now,
            });
        }
        if self.state != SessionState::Active {
            return None;
        }
        if let Some(due) = self.next_rtcp.filter(|&t| now >= t) {
            // Timer reconsideration (§6.3.6): send only if tp + T has passed.
            let t = self.rtcp_interval_now();
            let tp = self.last_rtcp.unwrap_or(self.epoch);
            if tp + t <= now || self.rtcp_initial {
                if let Some(len) = self.write_rtcp(now, buf, false) {
                    self.rtcp_initial = false;
                    self.last_rtcp = Some(now);
                    self.avg_rtcp_size = update_avg_rtcp_size(self.avg_rtcp_size, len + 28);
                    let next = self.rtcp_interval_now();
                    self.next_rtcp = Some(now + next);
                    return Some(Transmit {
                        kind: TransmitKind::Rtcp,
                        len,
                        destination: self.rtcp_destination(),
                        due: now,
                    });
                }
            } else {
                self.next_rtcp = Some((tp + t).max(due));
            }
        }
        if !self.sending() {
            return None;
        }
        let pacer = self.pacer.as_mut()?;
        let index = pacer.poll(now)?;
        let due = pacer.due_at(index);
        self.write_media(now, index, buf).map(|len| Transmit {
            kind: TransmitKind::Rtp,
            len,
            destination: self.negotiated.as_ref().and_then(|n| n.remote_rtp),
            due,
        })
    }

    fn rtcp_destination(&self) -> Option<SocketAddr> {
        self.negotiated.as_ref().and_then(|n| n.remote_rtcp)
    }

    fn write_rtcp(&mut self, now: Instant, buf: &mut [u8], bye: bool) -> Option<usize> {
        let now_ntp = self.ntp(now);
        let block = self.stats.as_mut().map(|s| s.report_block(now_ntp));
        let blocks: &[ReportBlock] = match &block {
            Some(b) => core::slice::from_ref(b),
            None => &[],
        };
        let mut w = RtcpWriter::new(buf);
        if self.sent_since_report {
            let clock = self.sender.as_ref().map_or(8000, |s| s.codec.clock_rate());
            let start = self.pacer.as_ref().map_or(self.epoch, |p| p.due_at(0));
            let elapsed = now.saturating_duration_since(start);
            let rtp_ts = self
                .ts_base
                .wrapping_add((elapsed.as_nanos() * u128::from(clock) / 1_000_000_000) as u32);
            let info = SenderInfo {
                ntp_timestamp: now_ntp,
                rtp_timestamp: rtp_ts,
                packet_count: self.packets_sent,
                octet_count: self.octets_sent,
            };
            w.sender_report(self.ssrc, &info, blocks).ok()?;
        } else {
            w.receiver_report(self.ssrc, blocks).ok()?;
        }
        self.sent_since_report = false;
        w.sdes_cname(self.ssrc, self.config.cname.as_bytes()).ok()?;
        if bye {
            w.bye(&[self.ssrc], None).ok()?;
        }
        Some(w.len())
    }

    fn write_media(&mut self, now: Instant, index: u64, buf: &mut [u8]) -> Option<usize> {
        let spf_ticks = {
            let s = self.sender.as_ref()?;
            let ptime = self.pacer.as_ref()?.ptime();
            (u128::from(s.codec.clock_rate()) * ptime.as_nanos() / 1_000_000_000) as u32
        };
        let te_pt = self.negotiated.as_ref().and_then(|n| n.telephone_event_pt);
        if let (Some(te_pt), Some(ev)) = (
            te_pt,
            self.dtmf_tx
                .as_mut()
                .and_then(|d| d.next_packet(index, spf_ticks)),
        ) {
            let ts = self
                .ts_base
                .wrapping_add((ev.start_index as u32).wrapping_mul(spf_ticks));
            let h = RtpHeader {
                marker: ev.marker,
                payload_type: te_pt,
                sequence_number: self.seq,
                timestamp: ts,
                ssrc: self.ssrc,
                csrc: &[],
                extension: None,
            };
            let hl = h.write(buf).ok()?;
            let pl = ev.event.write(&mut buf[hl..])?;
            self.count_sent(pl);
            self.marker_next = true;
            return Some(hl + pl);
        }
        let spf = self.samples_per_frame();
        if let Some(len) = self.write_from_file(index, spf_ticks, spf, buf) {
            return Some(len);
        }
        if self.queue.is_empty()
            && self.live.capacity() == 0
            && self.config.record != RecordMode::Both
        {
            // Nothing queued and no live audio: `fill_frame` would give all zeros and change
            // nothing else, so silence is encoded from a static frame and a call that only
            // sends silence never allocates `self.frame`.
            if !self.config.send_silence {
                self.marker_next = true;
                return None;
            }
            let h = self.audio_header(index, spf_ticks)?;
            let hl = h.write(buf).ok()?;
            let s = self.sender.as_mut()?;
            let pl = s.imp.encode(SILENCE.get(..spf)?, &mut buf[hl..])?;
            self.marker_next = false;
            self.count_sent(pl);
            return Some(hl + pl);
        }
        let active = self.fill_frame(now, spf);
        if !active && !self.config.send_silence {
            self.marker_next = true;
            return None;
        }
        let h = self.audio_header(index, spf_ticks)?;
        let ts = h.timestamp;
        let hl = h.write(buf).ok()?;
        let s = self.sender.as_mut()?;
        let pl = s.imp.encode(&self.frame, &mut buf[hl..])?;
        let rate = s.imp.sample_rate();
        self.marker_next = false;
        self.count_sent(pl);
        if self.config.record == RecordMode::Both {
            let frame = AudioFrame {
                direction: StreamDirection::Outbound,
                timestamp: ts,
                sample_rate: rate,
                len: self.frame.len(),
                concealed: false,
            };
            Self::push_audio(
                &mut self.audio_meta,
                &mut self.audio_ring,
                &mut self.audio_next_slot,
                &mut self.audio_dropped,
                frame,
                &self.frame,
            );
        }
        Some(hl + pl)
    }

    /// The RTP header of audio packet `index` (RFC 3550 §5.1: the timestamp counts the
    /// samples before it, `spf_ticks` per packet).
    fn audio_header(&self, index: u64, spf_ticks: u32) -> Option<RtpHeader<'static>> {
        Some(RtpHeader {
            marker: self.marker_next,
            payload_type: self.sender.as_ref()?.pt,
            sequence_number: self.seq,
            timestamp: self
                .ts_base
                .wrapping_add((index as u32).wrapping_mul(spf_ticks)),
            ssrc: self.ssrc,
            csrc: &[],
            extension: None,
        })
    }

    /// The common case of [`MediaSession::write_media`], without the frame copy: a whole
    /// frame from the middle of the playing file, encoded straight from the file's samples
    /// (which every call playing the same prompt shares). `None`: take the general path (the
    /// frame ends or starts the file, mixes live audio, or is recorded).
    fn write_from_file(
        &mut self,
        index: u64,
        spf_ticks: u32,
        spf: usize,
        buf: &mut [u8],
    ) -> Option<usize> {
        if self.paused || self.config.record == RecordMode::Both {
            return None;
        }
        let item = self.queue.first().filter(|i| i.started)?;
        let pos = item.pos;
        let samples = item.samples.as_ref()?;
        if pos + spf >= samples.len() {
            return None;
        }
        let hl = self.audio_header(index, spf_ticks)?.write(buf).ok()?;
        let (queue, sender) = (&self.queue, self.sender.as_mut()?);
        let frame = queue.first()?.samples.as_ref()?.get(pos..pos + spf)?;
        let pl = sender.imp.encode(frame, &mut buf[hl..])?;
        if let Some(item) = self.queue.first_mut() {
            item.pos += spf;
        }
        self.marker_next = false;
        self.count_sent(pl);
        Some(hl + pl)
    }

    fn count_sent(&mut self, payload: usize) {
        self.seq = self.seq.wrapping_add(1);
        self.packets_sent = self.packets_sent.wrapping_add(1);
        self.octets_sent = self.octets_sent.wrapping_add(payload as u32);
        self.sent_since_report = true;
    }

    /// Fills `self.frame` with `spf` samples from the play queue (silence where there is
    /// nothing); returns whether any file audio was used.
    fn fill_frame(&mut self, now: Instant, spf: usize) -> bool {
        self.frame.clear();
        self.frame.resize(spf, 0);
        if self.paused {
            return false;
        }
        let mut filled = 0;
        let mut active = false;
        while filled < spf {
            let Some(item) = self.queue.first_mut() else {
                break;
            };
            if item.samples.is_none() {
                break;
            }
            if !item.started {
                item.started = true;
                let path = item.path.clone();
                self.push_event(MediaEvent::PlayStarted { path });
                continue;
            }
            let item = self.queue.first_mut().expect("front checked above");
            let samples = item.samples.as_ref().expect("loaded checked above");
            let n = (samples.len() - item.pos).min(spf - filled);
            self.frame[filled..filled + n].copy_from_slice(&samples[item.pos..item.pos + n]);
            item.pos += n;
            filled += n;
            active |= n > 0;
            if item.pos >= samples.len() {
                item.plays += 1;
                if (item.opts.looped && !samples.is_empty()) || item.plays < item.opts.repeat.max(1)
                {
                    item.pos = 0;
                    if samples.is_empty() {
                        break;
                    }
                } else if !self.queue.is_empty() {
                    let done = self.queue.remove(0);
                    self.push_event(MediaEvent::PlayComplete {
                        path: done.path.clone(),
                    });
                    let a = self.handler.handle_play_complete(&done.path);
                    self.apply(now, a);
                }
            }
        }
        // Live audio (a microphone) fills what the files left: prompts play over it.
        // A device delivers in bursts: keep a cushion of three frames before consuming, and
        // build it up again after an underrun, rather than sending half-empty frames.
        if filled < spf && self.live.capacity() > 0 && !self.live_primed {
            self.live_primed = self.live.len() >= (spf - filled) * 3;
        }
        if filled < spf && self.live_primed {
            let n = self.live.len().min(spf - filled);
            for (slot, sample) in self.frame[filled..filled + n]
                .iter_mut()
                .zip(self.live.drain(..n))
            {
                *slot = sample;
            }
            if n < spf - filled {
                self.live_underrun += 1;
                self.live_primed = false;
            }
            active |= n > 0;
        }
        active
    }

    /// Live audio to send (a capture device), as PCM at the codec's clock
    /// ([`Codec::clock_rate`] of [`MediaSession::codec`]): it is sent whenever no file plays.
    /// Sending starts once three frames are buffered (a cushion against the bursty delivery of
    /// devices). The first call reserves a two-second FIFO; after that nothing is allocated. When the
    /// FIFO is full the oldest samples are dropped and counted ([`MediaSession::live_stats`]);
    /// a frame the FIFO cannot fill is completed with silence and counted as an underrun.
    pub fn handle_audio_in(&mut self, samples: &[i16]) {
        if self.live.capacity() == 0 {
            let rate = self.codec().map_or(8000, |c| c.clock_rate()) as usize;
            self.live.reserve_exact(rate * 2);
        }
        let cap = self.live.capacity();
        let samples = if samples.len() > cap {
            self.live_overrun += (samples.len() - cap) as u64;
            &samples[samples.len() - cap..]
        } else {
            samples
        };
        let excess = (self.live.len() + samples.len()).saturating_sub(cap);
        if excess > 0 {
            self.live_overrun += excess as u64;
            self.live.drain(..excess);
        }
        self.live.extend(samples.iter().copied());
    }

    /// Live-audio counters: samples dropped because the FIFO was full, and frames it could not
    /// fill.
    #[must_use]
    pub fn live_stats(&self) -> (u64, u64) {
        (self.live_overrun, self.live_underrun)
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop()
    }

    /// Every waiting event, appended to `out` oldest first: what calling
    /// [`poll_event`](Self::poll_event) until `None` gives, moved in one go (a driver that
    /// collects the events before handling them).
    pub fn drain_events(&mut self, out: &mut Vec<MediaEvent>) {
        self.events.drain_into(out);
    }

    /// The next recorded audio frame, its samples copied into `out` (truncated to its length).
    #[must_use]
    pub fn poll_audio(&mut self, out: &mut [i16]) -> Option<AudioFrame> {
        let (mut f, slot) = self.audio_meta.pop_front()?;
        let n = f.len.min(out.len());
        out[..n].copy_from_slice(&self.audio_ring[slot * MAX_FRAME..slot * MAX_FRAME + n]);
        f.len = n;
        Some(f)
    }

    /// When [`poll_transmit`](Self::poll_transmit) next has a datagram to write (the next
    /// packet on the stream's clock while sending, or the next RTCP report; RFC 3550 §6.2),
    /// for an adapter that writes them ahead of time.
    #[must_use]
    pub fn next_transmit_due(&self) -> Option<Instant> {
        if self.state != SessionState::Active {
            return None;
        }
        let packet = self
            .pacer
            .as_ref()
            .filter(|_| self.sending())
            .map(Pacer::next_due);
        [packet, self.next_rtcp].into_iter().flatten().min()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) / [`poll_transmit`](Self::poll_transmit)
    /// next: the earliest of the next packet, the next RTCP report and a held jitter gap.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state != SessionState::Active {
            return None;
        }
        [
            self.pacer.as_ref().map(Pacer::next_due),
            self.next_rtcp,
            self.jitter.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stop_events_carry_the_reason_given_static_or_owned() {
        const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.2\r\ns=-\r\nc=IN IP4 192.0.2.2\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";
        for owned in [false, true] {
            let t0 = Instant::now();
            let mut rng = SplitMix(7);
            let config = MediaConfig::new("192.0.2.1".parse().unwrap(), 4000);
            let mut s = MediaSession::new(
                "s",
                Role::Uas,
                config,
                crate::handler::DefaultHandler,
                &mut TestRng(&mut rng),
                t0,
            )
            .unwrap();
            s.process_offer(t0, OFFER).unwrap();
            while s.poll_event().is_some() {}
            if owned {
                s.stop(t0, String::from("RemoteBye"));
            } else {
                s.stop(t0, "RemoteBye");
            }
            let reasons: Vec<(bool, String)> = std::iter::from_fn(|| s.poll_event())
                .filter_map(|e| match e {
                    MediaEvent::StreamStopped { reason }
                    | MediaEvent::SessionStopped { reason } => {
                        Some((matches!(reason, Cow::Borrowed(_)), reason.into_owned()))
                    }
                    _ => None,
                })
                .collect();
            let want = (!owned, String::from("RemoteBye"));
            assert_eq!(reasons, vec![want.clone(), want]);
        }
    }

    /// An injected RNG for the tests.
    struct TestRng<'a>(&'a mut SplitMix);

    impl rand_core::RngCore for TestRng<'_> {
        fn next_u32(&mut self) -> u32 {
            self.0.next() as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0.next()
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            for b in dst {
                *b = self.0.next() as u8;
            }
        }
    }

    #[test]
    fn the_default_cname_is_parrot_at_the_address() {
        for ip in [
            "192.0.2.1",
            "255.255.255.255",
            "::1",
            "2001:db8::5",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:255.255.255.255",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(&*MediaConfig::new(ip, 4000).cname, format!("parrot@{ip}"));
        }
    }

    proptest! {
        /// The inline event queue gives back what a `VecDeque` would, in the same order, for
        /// any interleaving of pushes and polls.
        #[test]
        fn event_queue_is_first_in_first_out(ops in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut q = EventQueue::default();
            let mut model = VecDeque::new();
            for (i, op) in ops.into_iter().enumerate() {
                if op % 4 != 0 {
                    let e = MediaEvent::PlayStarted { path: i.to_string() };
                    q.push(e.clone());
                    model.push_back(e);
                } else if op % 8 == 0 {
                    prop_assert_eq!(q.pop(), model.pop_front());
                } else {
                    let mut got = vec![MediaEvent::RemoteBye];
                    q.drain_into(&mut got);
                    let want: Vec<MediaEvent> =
                        std::iter::once(MediaEvent::RemoteBye).chain(model.drain(..)).collect();
                    prop_assert_eq!(got, want);
                }
                prop_assert!(q.items.len() - q.taken == model.len());
            }
            while let Some(e) = model.pop_front() {
                prop_assert_eq!(q.pop(), Some(e));
            }
            prop_assert_eq!(q.pop(), None);
        }
    }
}
