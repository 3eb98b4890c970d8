//! [`UserAgent`]: the SIP endpoint and every call's media session behind one sans-IO state
//! machine.
//!
//! It owns the policy every adapter would otherwise repeat: answering incoming calls with an
//! SDP answer (auto-answer), building the offer of outgoing calls, starting and stopping each
//! call's [`MediaSession`], queuing DTMF, serving built-in files from one decoded copy,
//! collecting recordings, isolating media handler panics, and turning endpoint events into
//! [`CallEvent`]s. It does no IO: sockets, files and time come in through `handle_*` and
//! `*_ready`/`*_read`/`*_written` calls, and what must leave goes out through
//! [`UserAgent::poll_transmit`], [`UserAgent::poll_event`] and [`UserAgent::poll_timeout`]
//! (the drain rule of `parrot_proto::Endpoint`: after any input, drain transmits and events
//! until both are empty, then sleep until `poll_timeout`).

use crate::api::{
    AgentConfig, AudioDevice, CallEvent, CallEventKind, CallOptions, EndedBy, MediaHandlerFactory,
    MediaStats, MediaTotals, OptionsReply, UasFactory,
};
use crate::guard::GuardedHandler;
use bytes::Bytes;
use parrot_media_core::codec::Codec;
use parrot_media_core::handler::{DefaultHandler, MediaAction, MediaHandler, StreamDirection};
use parrot_media_core::session::{
    MediaConfig, MediaEvent, MediaSession, RecordMode, Role as MediaRole, TransmitKind,
};
use parrot_proto::auth::DigestCredentials;
use parrot_proto::{
    Body, ConnectionId, DialogId, EndReason, Endpoint, Event, HeaderName, InviteRequest,
    RegisterRequest, RegistrationId, Reply, RequestId, ServerTxKey, Transmit, Transport,
    UasHandler,
};
use rand_core::RngCore;
use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long DTMF digits queued with [`UserAgent::send_dtmf`] last, and the pause between them.
const DTMF_DURATION: Duration = Duration::from_millis(160);
const DTMF_GAP: Duration = Duration::from_millis(100);
/// How often a call's [`AudioDevice`] gets [`MediaStats`].
const STATS_INTERVAL: Duration = Duration::from_millis(250);
/// The media clock's grid. Every call's media timers are rounded down onto one shared grid of
/// this step (anchored at the first media deadline), and a wake-up at grid point `g` sends
/// everything due before `g + MEDIA_GRID`. Since packet times (10, 20, 30 ms ...) are whole
/// multiples of the step, each stream always leaves at the same offset before its due time
/// (between 0 and one step early), whichever other calls share the wake-up: the spacing of a
/// stream's packets is then as regular as the wake-ups themselves, and the loop wakes at most
/// once per step however many calls there are.
const MEDIA_GRID: Duration = Duration::from_millis(1);
/// Grid steps in one 20 ms packet time: streams of 20 ms packets are spread over them.
const PHASE_SLOTS: usize = 20;
/// The step SIP timers are rounded up to (their deadlines come from the endpoint: Timer A to
/// K, the delayed 100 Trying, lingering transactions). They are hundreds of milliseconds and
/// more and need no precision, but each falls at its own instant: unrounded, every call's
/// timers would wake the loop (and re-arm its timer) on their own. Rounded up onto steps of
/// the media grid, those due within one step share one wake-up, which media due then shares
/// too. A whole number of grid steps.
const SIP_TIMER_STEP: Duration = Duration::from_millis(10);
const _: () = assert!(
    SIP_TIMER_STEP.as_secs() == 0
        && SIP_TIMER_STEP.subsec_nanos() % GRID_NS == 0
        && 1_000_000_000 % SIP_TIMER_STEP.subsec_nanos() == 0,
    "SIP timers are rounded onto grid points, in steps that divide a second"
);
/// How long [`UserAgent::shutdown`] waits for calls to end.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// `t` rounded down onto the [`MEDIA_GRID`] anchored at `anchor` (`t` itself before it).
fn floor_on_grid(anchor: Instant, t: Instant) -> Instant {
    let Some(since) = t.checked_duration_since(anchor) else {
        return t;
    };
    // The step divides a second: whole seconds are whole steps, and only the nanoseconds
    // need rounding down (in 32 bits, where a 128-bit division would cost far more).
    anchor + Duration::new(since.as_secs(), since.subsec_nanos() / GRID_NS * GRID_NS)
}

/// `t` rounded up onto [`SIP_TIMER_STEP`]s from `anchor` (`t` itself before it).
fn ceil_on_sip_step(anchor: Instant, t: Instant) -> Instant {
    let Some(since) = t.checked_duration_since(anchor) else {
        return t;
    };
    let step = SIP_TIMER_STEP.subsec_nanos();
    let rem = since.subsec_nanos() % step;
    if rem == 0 {
        return t;
    }
    // The step divides a second (see the assertions): rounding up stays in 32 bits too.
    t + Duration::from_nanos(u64::from(step - rem))
}

/// [`MEDIA_GRID`] in nanoseconds.
const GRID_NS: u32 = MEDIA_GRID.subsec_nanos();
const _: () = assert!(
    MEDIA_GRID.as_secs() == 0 && GRID_NS > 0 && 1_000_000_000 % GRID_NS == 0,
    "the media grid's step must divide a second"
);

/// Something the adapter must send.
#[derive(Debug)]
pub enum Output {
    /// A SIP message (§18).
    Sip(Transmit),
    /// An RTP or RTCP packet of one call, written at the start of the caller's buffer.
    Media {
        /// The call.
        call: u64,
        /// Send from the call's RTCP socket (else its RTP socket; RFC 5761 muxed RTCP uses the
        /// RTP one and comes out as `false`).
        rtcp: bool,
        /// Where to.
        dst: SocketAddr,
        /// How many bytes of the buffer.
        len: usize,
        /// When it should leave, on the media grid: at once if that has passed. With a media
        /// lookahead ([`AgentConfig::media_lookahead`]) packets come out up to that much
        /// earlier, for the adapter to hold until then.
        due: Instant,
    },
}

/// Something the adapter must do or pass on.
#[derive(Debug)]
pub enum UaEvent {
    /// A step of a call, for the application.
    Call(CallEvent),
    /// Bind an RTP/RTCP socket pair for this call, then call [`UserAgent::media_ready`] with
    /// the RTP port, or [`UserAgent::media_failed`].
    OpenMedia {
        /// The call.
        call: u64,
    },
    /// The call's media sockets are no longer needed.
    CloseMedia {
        /// The call.
        call: u64,
    },
    /// Read this file and hand it over with [`UserAgent::file_read`].
    ReadFile {
        /// The call.
        call: u64,
        /// The path the media handler named.
        path: String,
    },
    /// Write this file (a finished recording, WAV) and report with [`UserAgent::file_written`].
    WriteFile {
        /// The call.
        call: u64,
        /// Where.
        path: String,
        /// The WAV bytes.
        data: Vec<u8>,
    },
    /// The answer to [`UserAgent::options`].
    Options {
        /// The caller's token.
        token: u64,
        /// The reply, or why there was none.
        result: Result<OptionsReply, String>,
    },
    /// The outcome of [`UserAgent::register`]: the granted expiry or the failing status.
    Registration {
        /// The caller's token.
        token: u64,
        /// Granted seconds, or the final status.
        result: Result<u32, u16>,
    },
}

type Session = MediaSession<Box<dyn MediaHandler + Send>>;

/// A built-in file decoded at a playback rate.
type Decoded = (u32, Arc<[i16]>);

/// The hash of the built-in file tables (names the application configured, not the peer).
type NameHash = foldhash::fast::FixedState;

/// A built-in file: its bytes, and its decodings for playback at each rate asked for so far.
struct Builtin {
    bytes: Bytes,
    decoded: Vec<Decoded>,
}

/// What an outgoing call needs once its media ports are bound.
struct Outgoing {
    target: String,
    dst: SocketAddr,
    opts: CallOptions,
}

enum Phase {
    /// Waiting for the adapter to bind media sockets.
    AwaitPorts {
        incoming: Option<(ServerTxKey, Option<Body>)>,
        outgoing: Option<Box<Outgoing>>,
    },
    /// A session exists; `live` once the call is answered and media flows.
    Media(Box<MediaCall>),
    /// No media (never bound, or it failed).
    NoMedia,
}

struct MediaCall {
    session: Session,
    live: bool,
    stopping: bool,
    finished: bool,
    dirty: bool,
    scheduled: Option<Instant>,
    dtmf: VecDeque<char>,
    next_dtmf: Instant,
    recording: Option<(String, u32, Vec<i16>)>,
    device_started: bool,
    next_stats: Instant,
    /// The grid step (of [`PHASE_SLOTS`]) its packets leave in, once spread.
    slot: Option<usize>,
    /// How far ahead of their due time its datagrams are written (none for a call with a
    /// sound device: its microphone's samples are not there yet), once its first RTP packet
    /// has gone.
    lookahead: Duration,
    /// The latest due time of the datagrams handed out so far.
    written_until: Option<Instant>,
}

impl MediaCall {
    /// How far ahead of their due time its datagrams are written now: nothing until its
    /// session has sent an RTP packet. A call can end before its media begins (a BYE that
    /// crosses the 200), and a packet written ahead cannot be taken back; a call that sent
    /// nothing leaves without an RTCP BYE either (RFC 3550 §6.3.7).
    fn write_ahead(&self) -> Duration {
        if self.session.packets_sent() > 0 {
            self.lookahead
        } else {
            Duration::ZERO
        }
    }

    /// How far ahead of `horizon` datagrams are written now. A stopping call's last datagram
    /// (its RTCP BYE) is written for now, to leave at once from the loop's thread (no hand-off
    /// to a sending thread, no wait), unless datagrams written ahead are still waiting to
    /// leave: it never overtakes them.
    fn write_ahead_at(&self, horizon: Instant) -> Duration {
        if self.stopping && self.written_until.is_none_or(|d| d <= horizon) {
            Duration::ZERO
        } else {
            self.write_ahead()
        }
    }
}

struct Call {
    dialog: Option<DialogId>,
    started: Instant,
    outgoing: bool,
    answered: bool,
    end: Option<EndedBy>,
    ports_open: bool,
    pending_writes: u32,
    phase: Phase,
    device: Option<Box<dyn AudioDevice>>,
}

/// The sans-IO user agent. See the [module docs](self).
pub struct UserAgent {
    ep: Endpoint,
    auto_answer: bool,
    contact_user: String,
    advertised: IpAddr,
    calls: crate::CallMap<Call>,
    /// Streams of 20 ms packets sending in each grid step of the packet time.
    phase_slots: [u32; PHASE_SLOTS],
    /// Dialog ids are the endpoint's own counter: no peer chooses them.
    by_dialog: HashMap<DialogId, u64, foldhash::fast::FixedState>,
    next_number: u64,
    media_factory: Option<MediaHandlerFactory>,
    /// Every call's media configuration but its port, built once: a clone allocates nothing.
    media_config: MediaConfig,
    /// The built-in files by name, each with its decodings for playback (looked up by `&str`,
    /// once per request: nothing is allocated per call).
    files: HashMap<String, Builtin, NameHash>,
    rng: Box<dyn RngCore + Send>,
    events: VecDeque<UaEvent>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    /// The top of `timers` was found live by [`UserAgent::drop_stale_timers`], and no timer has
    /// been popped, re-armed or left behind by an ended call since: the check is not repeated
    /// (a flush polls many times between inputs). Cleared where a call's timer changes.
    timers_checked: bool,
    dirty: VecDeque<u64>,
    options: HashMap<RequestId, (u64, Instant)>,
    registrations: HashMap<RegistrationId, u64>,
    shutdown: Option<Instant>,
    audio: Vec<i16>,
    capture: Vec<i16>,
    due: Vec<(Instant, u64)>,
    /// A session's events while [`UserAgent::service`] handles them (kept for its capacity).
    media_events: Vec<MediaEvent>,
    /// Where the media grid ([`MEDIA_GRID`]) is anchored: the first media deadline.
    grid: Option<Instant>,
    /// The last [`UserAgent::horizon`]: for which `now` and grid anchor, and what it was.
    last_horizon: Option<(Instant, Option<Instant>, Instant)>,
    /// [`AgentConfig::media_lookahead`].
    lookahead: Duration,
    /// Where SIP timers are rounded from ([`SIP_TIMER_STEP`]) until the media grid is
    /// anchored: the first instant the agent was handed (it reads no clock of its own).
    timer_anchor: Option<Instant>,
    /// Overload shedding's last log line: when, and the endpoint's count of shed requests
    /// then (one line a second at most while it sheds).
    shed_log: (Option<Instant>, u64),
}

impl UserAgent {
    /// A user agent whose SIP socket is bound at `sip_addr`. `rng` seeds tags, branches,
    /// Call-IDs, cnonces and SSRCs; `uas` makes the SIP handler of each incoming request
    /// (wrapped so that a panic ends only its call); `media` makes each call's media handler
    /// (none: silence).
    pub fn new(
        mut cfg: AgentConfig,
        sip_addr: SocketAddr,
        streams: &[(Transport, SocketAddr)],
        uas: Option<UasFactory>,
        media: Option<MediaHandlerFactory>,
        mut rng: Box<dyn RngCore + Send>,
    ) -> Self {
        let advertised = cfg.advertised(sip_addr);
        let shown = SocketAddr::new(advertised, sip_addr.port());
        cfg.endpoint.local_addrs = vec![(Transport::Udp, shown), (Transport::Tcp, shown)];
        for &(t, a) in streams {
            let shown = SocketAddr::new(advertised, a.port());
            match cfg.endpoint.local_addrs.iter_mut().find(|(x, _)| *x == t) {
                Some(slot) => slot.1 = shown,
                None => cfg.endpoint.local_addrs.push((t, shown)),
            }
        }
        cfg.endpoint.user_agent = Some(cfg.user_agent.clone());
        let seed = rng.next_u64();
        let mut ep = Endpoint::new(
            cfg.endpoint.clone(),
            Box::new(<rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(seed))
                as Box<dyn RngCore + Send>,
        );
        if let Some(mut f) = uas {
            ep.set_uas_handler_factory(move || -> Box<dyn UasHandler> {
                Box::new(GuardedHandler(f()))
            });
        }
        UserAgent {
            ep,
            auto_answer: cfg.auto_answer,
            contact_user: cfg.endpoint.contact_user.clone(),
            advertised,
            calls: crate::CallMap::default(),
            phase_slots: [0; PHASE_SLOTS],
            by_dialog: HashMap::default(),
            next_number: 1,
            media_factory: media,
            media_config: media_config(advertised),
            files: cfg
                .builtin_files
                .iter()
                .map(|(name, bytes)| {
                    let file = Builtin {
                        bytes: bytes.clone(),
                        decoded: Vec::new(),
                    };
                    (name.clone(), file)
                })
                .collect(),
            rng,
            events: VecDeque::new(),
            timers: BinaryHeap::new(),
            timers_checked: false,
            dirty: VecDeque::new(),
            options: HashMap::new(),
            registrations: HashMap::new(),
            shutdown: None,
            audio: vec![0; 2048],
            capture: vec![0; 4096],
            due: Vec::new(),
            media_events: Vec::new(),
            grid: None,
            last_horizon: None,
            lookahead: cfg.media_lookahead.unwrap_or(Duration::ZERO),
            timer_anchor: None,
            shed_log: (None, 0),
        }
    }

    /// The endpoint, for what this type does not wrap.
    pub fn endpoint(&self) -> &Endpoint {
        &self.ep
    }

    /// The endpoint, mutably (a command the agent does not wrap; drain afterwards).
    pub fn endpoint_mut(&mut self) -> &mut Endpoint {
        &mut self.ep
    }

    /// The address written in SDP and Contact.
    pub fn advertised_ip(&self) -> IpAddr {
        self.advertised
    }

    /// A whole SIP message arrived on a message-framed connection (WebSocket, RFC 7118).
    pub fn handle_message_on_connection(&mut self, now: Instant, conn: ConnectionId, data: Bytes) {
        self.ep.handle_message_on_connection(now, conn, data);
        self.pump(now);
    }

    /// Calls in progress.
    pub fn calls(&self) -> usize {
        self.calls.len()
    }

    // ----- SIP input -------------------------------------------------------------------

    /// A datagram arrived on a SIP socket (§18.1.2, §18.2.1).
    pub fn handle_sip_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        transport: Transport,
        data: Bytes,
    ) {
        self.ep.handle_datagram(now, local, remote, transport, data);
        self.pump(now);
    }

    /// The adapter read the SIP datagram socket until it would block: the endpoint is not
    /// behind (see [`EndpointConfig::shed_after`](parrot_proto::EndpointConfig::shed_after),
    /// which [`AgentConfig::new`](crate::AgentConfig::new) sets).
    pub fn sip_queue_empty(&mut self) {
        self.ep.receive_queue_empty();
    }

    /// One warning a second at most while overload shedding refuses new requests, counting
    /// those since the last.
    #[cold]
    fn log_shedding(&mut self, now: Instant) {
        let (at, logged) = self.shed_log;
        if at.is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1)) {
            return;
        }
        let shed = self.ep.shed_requests();
        tracing::warn!(
            "overloaded: {} new requests answered 503 since the last report (the SIP receive queue did not empty for {:?})",
            shed - logged,
            self.ep.config().shed_after.unwrap_or_default()
        );
        self.shed_log = (Some(now), shed);
    }

    /// A stream connection opened (accepted or connected).
    pub fn handle_connection_opened(
        &mut self,
        conn: ConnectionId,
        local: SocketAddr,
        remote: SocketAddr,
        transport: Transport,
    ) {
        self.ep
            .handle_connection_opened(conn, local, remote, transport);
    }

    /// Bytes arrived on a stream connection; the core frames them (§18.3).
    pub fn handle_stream_bytes(&mut self, now: Instant, conn: ConnectionId, data: &[u8]) {
        self.ep.handle_stream_bytes(now, conn, data);
        self.pump(now);
    }

    /// A stream connection closed.
    pub fn handle_connection_closed(&mut self, now: Instant, conn: ConnectionId) {
        self.ep.handle_connection_closed(conn);
        self.pump(now);
    }

    /// A send failed (§18.4): transactions towards `dst` learn of it.
    pub fn handle_transport_error(&mut self, now: Instant, dst: SocketAddr, transport: Transport) {
        self.ep.handle_transport_error(now, dst, transport);
        self.pump(now);
    }

    // ----- media input -----------------------------------------------------------------

    /// A packet arrived on one of a call's media sockets.
    pub fn handle_media(&mut self, now: Instant, call: u64, rtcp: bool, data: &[u8]) {
        let Some(m) = self.media_mut(call) else {
            return;
        };
        if !m.live || m.stopping {
            return;
        }
        let r = catch_unwind(AssertUnwindSafe(|| {
            if rtcp {
                m.session.handle_rtcp(now, data)
            } else {
                m.session.handle_rtp(now, data)
            }
        }));
        if r.is_err() {
            self.media_panicked(now, call);
            return;
        }
        self.service(now, call);
        self.pump(now);
    }

    /// The adapter bound the call's RTP socket on `rtp_port` (and RTCP on the next port).
    pub fn media_ready(&mut self, now: Instant, call: u64, rtp_port: u16) {
        let Some(c) = self.calls.get_mut(&call) else {
            self.events.push_back(UaEvent::CloseMedia { call });
            return;
        };
        c.ports_open = true;
        let Phase::AwaitPorts { incoming, outgoing } =
            std::mem::replace(&mut c.phase, Phase::NoMedia)
        else {
            return;
        };
        if c.end.is_some() {
            // Cancelled while the sockets were being bound.
            self.finalize(now, call, MediaTotals::default());
            return;
        }
        let role = if outgoing.is_some() {
            MediaRole::Uac
        } else {
            MediaRole::Uas
        };
        let mut media = match self.new_media(now, call, role, rtp_port) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(call, "media session: {e}");
                self.media_failed(now, call, &e);
                return;
            }
        };
        if let Some((tx, offer)) = incoming {
            let sdp = match offer.filter(|b| b.content_type.eq_ignore_ascii_case("application/sdp"))
            {
                Some(b) => match std::str::from_utf8(&b.bytes)
                    .map_err(|e| e.to_string())
                    .and_then(|s| {
                        media
                            .session
                            .process_offer(now, s)
                            .map_err(|e| format!("{e:?}"))
                    }) {
                    Ok(answer) => answer,
                    Err(e) => {
                        tracing::info!(call, "offer refused: {e}");
                        let _ = self.ep.respond(now, tx, Reply::new(488));
                        self.pump(now);
                        return;
                    }
                },
                // No offer in the INVITE: ours goes in the 2xx, the answer comes in the ACK.
                None => match media.session.create_offer(now) {
                    Ok(o) => o,
                    Err(_) => {
                        let _ = self.ep.respond(now, tx, Reply::new(500));
                        self.pump(now);
                        return;
                    }
                },
            };
            match self
                .ep
                .respond(now, tx, Reply::new(200).body(Body::sdp(sdp.into_bytes())))
            {
                Ok(()) => {
                    // Media starts with the ACK (§13.3.1.4: the dialog is confirmed then),
                    // not with the 200: a server that is behind takes a call's ACK and its
                    // BYE from the same backlog, so a call that is hung up at once does not
                    // stream meanwhile.
                    self.set_media(call, media);
                    if let Some(c) = self.calls.get_mut(&call) {
                        c.answered = true;
                    }
                }
                Err(e) => tracing::debug!(call, "not auto-answered: {e}"),
            }
        } else if let Some(o) = outgoing {
            let offer = match media.session.create_offer(now) {
                Ok(o) => o,
                Err(e) => {
                    self.media_failed(now, call, &format!("{e:?}"));
                    return;
                }
            };
            let from = o.opts.from.clone().unwrap_or_else(|| {
                format!("sip:{}@{}", self.contact_user, fmt_host(self.advertised))
            });
            let secure = o
                .target
                .get(..5)
                .is_some_and(|s| s.eq_ignore_ascii_case("sips:"));
            let transport = match (o.opts.transport, o.opts.tcp, secure) {
                (Some(t), _, _) => t,
                (None, _, true) => Transport::Tls,
                (None, true, _) => Transport::Tcp,
                (None, false, _) => Transport::Udp,
            };
            let o = *o;
            let mut req = InviteRequest::new(from, o.target, o.dst, transport);
            req.body = Some(Body::sdp(offer.into_bytes()));
            req.headers = o.opts.headers;
            req.credentials = o
                .opts
                .credentials
                .map(|(u, p)| DigestCredentials::new(u, p));
            match self.ep.invite(now, req) {
                Ok(dialog) => {
                    self.by_dialog.insert(dialog, call);
                    if let Some(c) = self.calls.get_mut(&call) {
                        c.dialog = Some(dialog);
                    }
                    self.set_media(call, media);
                }
                Err(e) => {
                    tracing::warn!(call, "INVITE not sent: {e}");
                    self.media_failed(now, call, &e.to_string());
                    return;
                }
            }
        }
        self.pump(now);
    }

    /// The adapter could not bind media sockets for the call: an incoming call is answered
    /// 503, an outgoing one fails with 503.
    pub fn media_failed(&mut self, now: Instant, call: u64, why: &str) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        tracing::warn!(call, "no media: {why}");
        let phase = std::mem::replace(&mut c.phase, Phase::NoMedia);
        if let Phase::AwaitPorts {
            incoming: Some((tx, _)),
            ..
        } = phase
        {
            let _ = self
                .ep
                .respond(now, tx, Reply::new(503).header("Retry-After", "5"));
        }
        if c.dialog.is_none() {
            // An outgoing call that never left.
            c.end = Some(EndedBy::Failure);
            self.emit(call, CallEventKind::Failed(503));
            self.finalize(now, call, MediaTotals::default());
        }
        self.pump(now);
    }

    /// The file a call's media asked for ([`UaEvent::ReadFile`]), or why it could not be read.
    pub fn file_read(
        &mut self,
        now: Instant,
        call: u64,
        path: &str,
        result: Result<Vec<u8>, String>,
    ) {
        let Some(m) = self.media_mut(call) else {
            return;
        };
        let r = catch_unwind(AssertUnwindSafe(|| match &result {
            Ok(b) => m.session.handle_file(now, path, b),
            Err(e) => m.session.handle_file_error(now, path, e),
        }));
        if r.is_err() {
            self.media_panicked(now, call);
            return;
        }
        self.service(now, call);
        self.pump(now);
    }

    /// A recording ([`UaEvent::WriteFile`]) was written, or why not.
    pub fn file_written(
        &mut self,
        now: Instant,
        call: u64,
        path: &str,
        result: Result<(), String>,
    ) {
        match result {
            Ok(()) => self.emit(call, CallEventKind::Recorded(PathBuf::from(path))),
            Err(e) => tracing::warn!(call, "cannot write recording {path}: {e}"),
        }
        if let Some(c) = self.calls.get_mut(&call) {
            c.pending_writes = c.pending_writes.saturating_sub(1);
        }
        self.try_finalize(now, call);
    }

    /// Time passed: run every timer that is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.timers_checked = false;
        if self.ep.poll_timeout().is_some_and(|t| t <= now) {
            self.ep.handle_timeout(now);
        }
        // Take the due calls first: servicing one re-arms it only once its transmits are
        // drained, so a call is run at most once per `handle_timeout`.
        let mut due = std::mem::take(&mut self.due);
        while let Some(Reverse((at, call))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            due.push((at, call));
        }
        let horizon = self.horizon(now);
        for &(at, call) in &due {
            let Some(m) = self.media_mut(call) else {
                continue;
            };
            if m.scheduled != Some(at) {
                continue;
            }
            m.scheduled = None;
            if m.live && !m.finished {
                let r = catch_unwind(AssertUnwindSafe(|| m.session.handle_timeout(horizon)));
                if r.is_err() {
                    self.media_panicked(now, call);
                    continue;
                }
            }
            self.service(now, call);
        }
        due.clear();
        self.due = due;
        if let Some(deadline) = self.shutdown {
            if now >= deadline {
                let left: Vec<u64> = self.calls.keys().copied().collect();
                for call in left {
                    self.finalize(now, call, MediaTotals::default());
                }
            }
        }
        self.pump(now);
    }

    // ----- commands --------------------------------------------------------------------

    /// Places a call to `target` (a SIP URI) at `dst`. Returns its number; its events follow,
    /// starting with [`UaEvent::OpenMedia`] for the adapter.
    pub fn call(
        &mut self,
        now: Instant,
        target: String,
        dst: SocketAddr,
        opts: CallOptions,
        device: Option<Box<dyn AudioDevice>>,
    ) -> u64 {
        let call = self.new_call(now, None, true);
        if let Some(c) = self.calls.get_mut(&call) {
            c.device = device;
            c.phase = Phase::AwaitPorts {
                incoming: None,
                outgoing: Some(Box::new(Outgoing { target, dst, opts })),
            };
        }
        self.events.push_back(UaEvent::OpenMedia { call });
        call
    }

    /// Hangs up: BYE once answered, CANCEL before (§15).
    pub fn hangup(&mut self, now: Instant, call: u64) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.end.get_or_insert(EndedBy::Local);
        match c.dialog {
            Some(d) => {
                if self.ep.bye(now, d).is_err() {
                    let _ = self.ep.cancel(now, d);
                }
            }
            None => self.finalize(now, call, MediaTotals::default()),
        }
        self.pump(now);
    }

    /// Queues DTMF digits (RFC 4733), sent one after another.
    pub fn send_dtmf(&mut self, now: Instant, call: u64, digits: &str) {
        if let Some(m) = self.media_mut(call) {
            m.dtmf.extend(digits.chars());
            self.service(now, call);
        }
    }

    /// Runs a media action (play, record, stop, ...) on the call.
    pub fn media_action(&mut self, now: Instant, call: u64, action: MediaAction) {
        let Some(m) = self.media_mut(call) else {
            return;
        };
        if catch_unwind(AssertUnwindSafe(|| m.session.handle_command(now, action))).is_err() {
            self.media_panicked(now, call);
            return;
        }
        self.service(now, call);
        self.pump(now);
    }

    /// Registers `aor` with the registrar `uri` at `dst`; the outcome comes as
    /// [`UaEvent::Registration`] with `token`. Refreshed until the agent stops.
    pub fn register(
        &mut self,
        now: Instant,
        token: u64,
        req: (String, String, SocketAddr),
        credentials: Option<(String, String)>,
        expires: u32,
    ) {
        let (uri, aor, dst) = req;
        let req = RegisterRequest {
            registrar_uri: uri,
            aor,
            dst,
            transport: Transport::Udp,
            expires,
            credentials: credentials.map(|(u, p)| DigestCredentials::new(u, p)),
        };
        match self.ep.register(now, req) {
            Ok(id) => {
                self.registrations.insert(id, token);
            }
            Err(_) => self.events.push_back(UaEvent::Registration {
                token,
                result: Err(503),
            }),
        }
        self.pump(now);
    }

    /// Sends OPTIONS to `uri` at `dst`; the answer comes as [`UaEvent::Options`].
    pub fn options(&mut self, now: Instant, token: u64, uri: &str, dst: SocketAddr) {
        match self.ep.options(now, uri, dst, Transport::Udp) {
            Ok(id) => {
                self.options.insert(id, (token, now));
            }
            Err(e) => self.events.push_back(UaEvent::Options {
                token,
                result: Err(e.to_string()),
            }),
        }
        self.pump(now);
    }

    /// Ends every call (BYE, or CANCEL before the answer) and refuses new ones with 503;
    /// [`UserAgent::is_shut_down`] tells when it is done (at most five seconds).
    pub fn shutdown(&mut self, now: Instant) {
        self.shutdown = Some(now + SHUTDOWN_GRACE);
        let live: Vec<u64> = self.calls.keys().copied().collect();
        for call in live {
            self.hangup(now, call);
        }
    }

    /// Whether a shutdown was asked for ([`UserAgent::is_shut_down`] tells when it is done).
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_some()
    }

    /// Whether a shutdown was asked for and every call has ended (or the grace period is
    /// over). Lingering transaction timers are not waited for.
    pub fn is_shut_down(&self, now: Instant) -> bool {
        self.shutdown
            .is_some_and(|d| self.calls.is_empty() || now >= d)
    }

    // ----- output ----------------------------------------------------------------------

    /// The next thing to send. Media packets are written into `buf` (at least 1,500 bytes;
    /// nothing is allocated per packet).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Output> {
        if let Some(t) = self.ep.poll_transmit() {
            return Some(Output::Sip(t));
        }
        if self.dirty.is_empty() {
            self.drop_stale_timers();
            return None;
        }
        let horizon = self.horizon(now);
        while let Some(&call) = self.dirty.front() {
            let grid = self.grid;
            let Some(m) = self.media_mut(call) else {
                self.dirty.pop_front();
                continue;
            };
            let mux = m.session.negotiated().is_some_and(|n| n.rtcp_mux);
            let ahead = horizon + m.write_ahead_at(horizon);
            let t = catch_unwind(AssertUnwindSafe(|| m.session.poll_transmit(ahead, buf)));
            match t {
                Err(_) => {
                    self.dirty.pop_front();
                    self.media_panicked(now, call);
                }
                Ok(Some(t)) => {
                    let Some(dst) = t.destination else { continue };
                    let due = grid.map_or(t.due, |anchor| floor_on_grid(anchor, t.due));
                    if m.written_until.is_none_or(|w| w < due) {
                        m.written_until = Some(due);
                    }
                    return Some(Output::Media {
                        call,
                        rtcp: matches!(t.kind, TransmitKind::Rtcp) && !mux,
                        dst,
                        len: t.len,
                        due,
                    });
                }
                Ok(None) => {
                    m.dirty = false;
                    let finished = m.finished;
                    self.dirty.pop_front();
                    if finished {
                        self.try_finalize(now, call);
                    } else {
                        self.rearm(call);
                    }
                }
            }
        }
        self.drop_stale_timers();
        None
    }

    /// Pops the timers at the top of the heap that no longer wake anything (their call ended,
    /// or was re-armed for another time), so that [`UserAgent::poll_timeout`] does not wake
    /// the loop for them. A call that ends leaves its next media deadline behind.
    fn drop_stale_timers(&mut self) {
        if self.timers_checked {
            // Every test run holds the shortcut to the check it skips.
            debug_assert!(
                self.timers
                    .peek()
                    .is_none_or(|&Reverse((at, call))| self.timer_live(at, call)),
                "a timer went stale without clearing `timers_checked`"
            );
            return;
        }
        while let Some(&Reverse((at, call))) = self.timers.peek() {
            if self.timer_live(at, call) {
                break;
            }
            self.timers.pop();
        }
        self.timers_checked = true;
    }

    /// Whether the heap entry `(at, call)` still wakes its call.
    fn timer_live(&self, at: Instant, call: u64) -> bool {
        match self.calls.get(&call).map(|c| &c.phase) {
            Some(Phase::Media(m)) => m.scheduled == Some(at),
            _ => false,
        }
    }

    /// The next event for the adapter or the application.
    pub fn poll_event(&mut self) -> Option<UaEvent> {
        self.events.pop_front()
    }

    /// When [`UserAgent::handle_timeout`] is next due. Media timers are kept to the media
    /// grid; SIP timers are rounded up to the next [`SIP_TIMER_STEP`] (at most 10 ms late).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let anchor = self.grid.or(self.timer_anchor);
        let mut t = (self.ep.poll_timeout()).map(|t| anchor.map_or(t, |a| ceil_on_sip_step(a, t)));
        if let Some(Reverse((at, _))) = self.timers.peek() {
            t = Some(t.map_or(*at, |x| x.min(*at)));
        }
        if let Some(d) = self.shutdown {
            t = Some(t.map_or(d, |x| x.min(d)));
        }
        t
    }

    // ----- internals -------------------------------------------------------------------

    /// `t` rounded down onto the media grid ([`MEDIA_GRID`]); the first time anchors it.
    fn grid_floor(&mut self, t: Instant) -> Instant {
        let anchor = *self.grid.get_or_insert(t);
        floor_on_grid(anchor, t)
    }

    /// `t` rounded down onto the media grid once it is anchored (`t` itself before).
    fn on_grid(&self, t: Instant) -> Instant {
        self.grid.map_or(t, |anchor| floor_on_grid(anchor, t))
    }

    /// How far ahead of `now` media may be sent: everything due before the end of the grid
    /// step `now` is in (the last nanosecond of it), so a packet leaves from the grid point
    /// at or before its due time, never from an earlier one.
    fn horizon(&mut self, now: Instant) -> Instant {
        // A flush asks again and again with the same `now`.
        if let Some((at, anchor, h)) = self.last_horizon {
            if at == now && anchor == self.grid {
                return h;
            }
        }
        let step_start = self.on_grid(now);
        let h = step_start + MEDIA_GRID - Duration::from_nanos(1);
        self.last_horizon = Some((now, self.grid, h));
        h
    }

    /// Starts a new stream of 20 ms packets one packet time after the call's media starts
    /// (the answer for an outgoing call, the ACK for an incoming one), in the grid step, of
    /// the next 20, that the fewest streams send in (20 to 39 ms later: nobody hears that), so that every millisecond carries the same share of packets. Calls
    /// are set up in bursts; left where they start, some milliseconds would carry twice the
    /// average and their packets would leave late. The packet time of grace also lets a call
    /// hung up at once (a caller that changes its mind, a load generator's zero-length calls)
    /// end without sending anything, and so without an RTCP BYE either (RFC 3550 §6.3.7): two
    /// datagrams, and their system calls, saved per such call.
    fn spread_phase(&mut self, call: u64) {
        let Some(m) = self.media_mut(call) else {
            return;
        };
        let ptime = m.session.negotiated().map(|n| n.ptime);
        let (Some(start), Some(20)) = (m.session.first_packet_due(), ptime) else {
            return;
        };
        if m.slot.is_some() {
            return;
        }
        let anchor = *self.grid.get_or_insert(start);
        let Some(since) = floor_on_grid(anchor, start).checked_duration_since(anchor) else {
            return;
        };
        let here = (since.as_nanos() / MEDIA_GRID.as_nanos()) as usize % PHASE_SLOTS;
        let delay = (0..PHASE_SLOTS)
            .min_by_key(|d| self.phase_slots[(here + d) % PHASE_SLOTS])
            .unwrap_or(0);
        let Some(m) = self.media_mut(call) else {
            return;
        };
        let at = start + MEDIA_GRID * (PHASE_SLOTS + delay) as u32;
        let slot = if m.session.delay_first_packet(at) {
            (here + delay) % PHASE_SLOTS
        } else {
            here
        };
        m.slot = Some(slot);
        self.phase_slots[slot] += 1;
    }

    fn media_mut(&mut self, call: u64) -> Option<&mut MediaCall> {
        match &mut self.calls.get_mut(&call)?.phase {
            Phase::Media(m) => Some(m),
            _ => None,
        }
    }

    fn new_call(&mut self, now: Instant, dialog: Option<DialogId>, outgoing: bool) -> u64 {
        let number = self.next_number;
        self.next_number += 1;
        self.calls.insert(
            number,
            Call {
                dialog,
                started: now,
                outgoing,
                answered: false,
                end: None,
                ports_open: false,
                pending_writes: 0,
                phase: Phase::NoMedia,
                device: None,
            },
        );
        if let Some(d) = dialog {
            self.by_dialog.insert(d, number);
        }
        number
    }

    /// The call's media: its session, already in the box [`Phase::Media`] keeps (a session
    /// is large: moved there afterwards, it would be copied again).
    fn new_media(
        &mut self,
        now: Instant,
        call: u64,
        role: MediaRole,
        rtp_port: u16,
    ) -> Result<Box<MediaCall>, String> {
        let mut config = self.media_config.clone();
        config.local.rtp_port = rtp_port;
        let handler: Box<dyn MediaHandler + Send> = match self.media_factory.as_mut() {
            Some(f) => match catch_unwind(AssertUnwindSafe(|| f(call, role))) {
                Ok(h) => h,
                Err(_) => return Err("media handler factory panicked".into()),
            },
            None => Box::new(DefaultHandler),
        };
        let mut id = String::with_capacity(24);
        id.push_str("call-");
        push_decimal(&mut id, call);
        let (started, device) = self
            .calls
            .get(&call)
            .map_or((now, false), |c| (c.started, c.device.is_some()));
        let session = MediaSession::new(id, role, config, handler, &mut self.rng, now)
            .map_err(|e| format!("{e:?}"))?;
        Ok(Box::new(MediaCall {
            session,
            live: false,
            stopping: false,
            finished: false,
            dirty: false,
            scheduled: None,
            dtmf: VecDeque::new(),
            next_dtmf: started,
            recording: None,
            device_started: false,
            next_stats: started,
            slot: None,
            // A call with a sound device writes nothing ahead: its microphone's samples are
            // not there yet.
            lookahead: if device {
                Duration::ZERO
            } else {
                self.lookahead
            },
            written_until: None,
        }))
    }

    fn set_media(&mut self, call: u64, media: Box<MediaCall>) {
        if let Some(c) = self.calls.get_mut(&call) {
            c.phase = Phase::Media(media);
        }
    }

    /// The call is answered: media starts flowing.
    fn start_media(&mut self, now: Instant, call: u64) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.answered = true;
        let Phase::Media(m) = &mut c.phase else {
            return;
        };
        m.live = true;
        let codec = m.session.codec().map_or(Cow::Borrowed("none"), codec_text);
        self.emit(call, CallEventKind::Answered { codec });
        self.service(now, call);
    }

    /// After any input to a call's media: feed and drain the device, handle the session's
    /// events and audio, send due DTMF, mark it for transmits and re-arm its timer.
    fn service(&mut self, now: Instant, call: u64) {
        let horizon = self.horizon(now);
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Phase::Media(m) = &mut c.phase else {
            return;
        };
        if !m.live {
            return;
        }
        if let Some(dev) = c.device.as_mut() {
            if !m.device_started {
                if let Some(codec) = m.session.codec() {
                    dev.start(codec.clock_rate());
                    m.device_started = true;
                }
            }
            if !m.finished {
                let n = dev.capture(&mut self.capture);
                if n > 0 {
                    m.session.handle_audio_in(&self.capture[..n]);
                }
            }
            if m.device_started && horizon >= m.next_stats {
                m.next_stats = now + STATS_INTERVAL;
                dev.media_stats(&media_stats(&m.session));
            }
        }
        // Events and audio first (a file the stream starts with is fetched before its first
        // packet is due), then transmits.
        let audio = &mut self.audio;
        let device = &mut c.device;
        // A nested `service` (from one of these events) finds the vector taken and starts an
        // empty one; this one's capacity is put back below.
        let mut events = std::mem::take(&mut self.media_events);
        let step = catch_unwind(AssertUnwindSafe(|| {
            m.session.drain_events(&mut events);
            while let Some(f) = m.session.poll_audio(audio) {
                if f.direction != StreamDirection::Inbound {
                    continue;
                }
                if let Some(dev) = device.as_mut() {
                    dev.playback(&audio[..f.len]);
                }
                if let Some((_, rate, samples)) = m.recording.as_mut() {
                    *rate = f.sample_rate;
                    samples.extend_from_slice(&audio[..f.len]);
                }
            }
        }));
        if step.is_err() {
            self.media_panicked(now, call);
            return;
        }
        for e in events.drain(..) {
            self.on_media_event(now, call, e);
        }
        if events.capacity() > self.media_events.capacity() {
            self.media_events = events;
        }
        let Some(m) = self.media_mut(call) else {
            return;
        };
        if !m.dtmf.is_empty() && horizon >= m.next_dtmf && !m.stopping {
            if let Some(d) = m.dtmf.pop_front() {
                let _ = m.session.send_dtmf(now, d, DTMF_DURATION);
                m.next_dtmf = now + DTMF_DURATION + DTMF_GAP;
            }
        }
        // Its timer is re-armed when its transmits are drained (the pacer advances there).
        if !m.dirty {
            m.dirty = true;
            self.dirty.push_back(call);
        }
    }

    fn rearm(&mut self, call: u64) {
        self.timers_checked = false;
        let has_device = self.calls.get(&call).is_some_and(|c| c.device.is_some());
        let Some(m) = self.media_mut(call) else {
            return;
        };
        if m.finished {
            m.scheduled = None;
            return;
        }
        let mut wake = m.session.poll_timeout();
        // Datagrams are written `lookahead` before they are due (the other timers keep
        // their time).
        if let Some(send) = m.session.next_transmit_due() {
            let early = send.checked_sub(m.write_ahead()).unwrap_or(send);
            wake = Some(wake.map_or(early, |w| w.min(early)));
        }
        if !m.dtmf.is_empty() {
            wake = Some(wake.map_or(m.next_dtmf, |w| w.min(m.next_dtmf)));
        }
        if has_device && m.device_started {
            wake = Some(wake.map_or(m.next_stats, |w| w.min(m.next_stats)));
        }
        let Some(wake) = wake else {
            m.scheduled = None;
            return;
        };
        let wake = Some(self.grid_floor(wake));
        let Some(m) = self.media_mut(call) else {
            return;
        };
        if wake != m.scheduled {
            m.scheduled = wake;
            if let Some(w) = wake {
                self.timers.push(Reverse((w, call)));
            }
        }
    }

    fn on_media_event(&mut self, now: Instant, call: u64, e: MediaEvent) {
        match e {
            MediaEvent::FileRequest { path } => {
                if let Some(pcm) = self.decoded_builtin(call, &path) {
                    let Some(m) = self.media_mut(call) else {
                        return;
                    };
                    let r = catch_unwind(AssertUnwindSafe(|| {
                        m.session.handle_file_samples(now, &path, pcm)
                    }));
                    if r.is_err() {
                        self.media_panicked(now, call);
                        return;
                    }
                    // The session may have more to say at once (the next queued item).
                    self.service(now, call);
                    return;
                }
                match self.files.get(&path) {
                    Some(f) => {
                        let b = f.bytes.to_vec();
                        self.file_read(now, call, &path, Ok(b));
                    }
                    None => self.events.push_back(UaEvent::ReadFile { call, path }),
                }
            }
            MediaEvent::StreamStarted { .. } => self.spread_phase(call),
            MediaEvent::DtmfReceived { digit, .. } => self.emit(call, CallEventKind::Dtmf(digit)),
            MediaEvent::PlayComplete { path } => self.emit(call, CallEventKind::PlayComplete(path)),
            MediaEvent::RecordingStarted { path } => {
                if let Some(m) = self.media_mut(call) {
                    m.recording = Some((path, 8000, Vec::new()));
                }
            }
            MediaEvent::RecordingStopped { .. } => self.write_recording(call),
            MediaEvent::HangupRequested { reason } => {
                tracing::info!(call, "hanging up: {reason}");
                self.hangup(now, call);
            }
            MediaEvent::SessionStopped { .. } => {
                self.write_recording(call);
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                if let Some(dev) = c.device.as_mut() {
                    dev.stop();
                }
                if let Phase::Media(m) = &mut c.phase {
                    m.finished = true;
                }
                if c.end.is_none() {
                    // Media ended first (its handler stopped): end the call too.
                    c.end = Some(EndedBy::Local);
                    if let Some(d) = c.dialog {
                        let _ = self.ep.bye(now, d);
                    }
                }
            }
            _ => {}
        }
    }

    fn write_recording(&mut self, call: u64) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Phase::Media(m) = &mut c.phase else {
            return;
        };
        let Some((path, rate, samples)) = m.recording.take() else {
            return;
        };
        match parrot_media_core::wav::encode_wav_pcm16(rate, 1, &samples) {
            Ok(data) => {
                c.pending_writes += 1;
                self.events
                    .push_back(UaEvent::WriteFile { call, path, data });
            }
            Err(e) => tracing::warn!(call, "cannot encode recording {path}: {e:?}"),
        }
    }

    /// A built-in file decoded at this call's playback rate, from the shared cache (decoded
    /// on first use). `None` for other files and for built-ins that do not decode.
    fn decoded_builtin(&mut self, call: u64, path: &str) -> Option<Arc<[i16]>> {
        let rate = match &self.calls.get(&call)?.phase {
            Phase::Media(m) => m.session.playback_rate(),
            _ => return None,
        };
        let file = self.files.get_mut(path)?;
        if let Some((_, pcm)) = file.decoded.iter().find(|(r, _)| *r == rate) {
            return Some(pcm.clone());
        }
        let pcm: Arc<[i16]> = parrot_media_core::session::decode_for_playback(&file.bytes, rate)
            .ok()?
            .into();
        file.decoded.push((rate, pcm.clone()));
        Some(pcm)
    }

    fn media_panicked(&mut self, now: Instant, call: u64) {
        self.timers_checked = false;
        tracing::warn!(call, "media handler panicked; hanging up");
        if let Some(c) = self.calls.get_mut(&call) {
            c.phase = Phase::NoMedia;
        }
        self.hangup(now, call);
        self.finalize(now, call, MediaTotals::default());
    }

    /// Ends a call whose media has finished and whose recordings are written.
    fn try_finalize(&mut self, now: Instant, call: u64) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        if c.pending_writes > 0 {
            return;
        }
        let totals = match &c.phase {
            Phase::Media(m) if m.finished && !m.dirty => totals(&m.session),
            _ => return,
        };
        self.finalize(now, call, totals);
    }

    fn finalize(&mut self, now: Instant, call: u64, media: MediaTotals) {
        self.timers_checked = false;
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let by = c.end.unwrap_or(EndedBy::Failure);
        let duration = now.saturating_duration_since(c.started);
        let ports = c.ports_open;
        self.emit(
            call,
            CallEventKind::Ended {
                by,
                duration,
                media,
            },
        );
        if let Some(c) = self.calls.remove(&call) {
            if let Some(d) = c.dialog {
                self.by_dialog.remove(&d);
            }
            if let Phase::Media(m) = &c.phase {
                if let Some(s) = m.slot {
                    self.phase_slots[s] = self.phase_slots[s].saturating_sub(1);
                }
            }
        }
        if ports {
            self.events.push_back(UaEvent::CloseMedia { call });
        }
    }

    fn emit(&mut self, call: u64, kind: CallEventKind) {
        tracing::info!(call, "{kind:?}");
        self.events
            .push_back(UaEvent::Call(CallEvent { call, kind }));
    }

    /// Handles every endpoint event.
    fn pump(&mut self, now: Instant) {
        self.timer_anchor.get_or_insert(now);
        // Here rather than only where datagrams come in, so that the last of a burst of
        // shedding is reported too (timers run after it).
        if self.ep.shed_requests() != self.shed_log.1 {
            self.log_shedding(now);
        }
        while let Some(e) = self.ep.poll_event() {
            self.on_sip_event(now, e);
        }
    }

    fn on_sip_event(&mut self, now: Instant, e: Event) {
        match e {
            Event::IncomingCall {
                dialog,
                tx,
                request,
                offer,
            } => {
                // The endpoint read From, To and Call-ID for the dialog already: their URIs
                // are taken from its copies rather than by parsing the headers again.
                let (from, to, call_id) = match self.ep.dialog(dialog) {
                    Some(d) => (
                        uri_of(&d.remote_uri).to_owned(),
                        uri_of(&d.local_uri).to_owned(),
                        String::from(&*d.call_id),
                    ),
                    None => (
                        request
                            .from_header()
                            .map(|f| f.uri_str().to_owned())
                            .unwrap_or_default(),
                        request
                            .to_header()
                            .map(|f| f.uri_str().to_owned())
                            .unwrap_or_default(),
                        request.call_id().unwrap_or_default().to_owned(),
                    ),
                };
                let call = self.new_call(now, Some(dialog), false);
                self.emit(call, CallEventKind::Incoming { from, to, call_id });
                if !self.auto_answer {
                    return;
                }
                if self.shutdown.is_some() {
                    let _ = self.ep.respond(now, tx, Reply::new(503));
                    return;
                }
                if let Some(c) = self.calls.get_mut(&call) {
                    c.phase = Phase::AwaitPorts {
                        incoming: Some((tx, offer)),
                        outgoing: None,
                    };
                }
                self.events.push_back(UaEvent::OpenMedia { call });
            }
            Event::CallProgress { dialog, status, .. } => {
                if let Some(&call) = self.by_dialog.get(&dialog) {
                    self.emit(call, CallEventKind::Progress(status));
                }
            }
            Event::CallAnswered { dialog, answer } => {
                let Some(&call) = self.by_dialog.get(&dialog) else {
                    return;
                };
                if let (Some(m), Some(b)) = (self.media_mut(call), answer) {
                    if !m.live {
                        if let Ok(s) = std::str::from_utf8(&b.bytes) {
                            if let Err(e) = m.session.process_answer(now, s) {
                                tracing::warn!(call, "SDP answer refused: {e:?}");
                            }
                        }
                    }
                }
                let live = self.media_mut(call).map(|m| m.live);
                match live {
                    Some(false) => self.start_media(now, call),
                    Some(true) => {}
                    None => {
                        if let Some(c) = self.calls.get_mut(&call) {
                            c.answered = true;
                        }
                    }
                }
            }
            Event::AckReceived { dialog, body } => {
                let Some(&call) = self.by_dialog.get(&dialog) else {
                    return;
                };
                let Some(m) = self.media_mut(call) else {
                    return;
                };
                if let Some(b) = body {
                    if let Ok(s) = std::str::from_utf8(&b.bytes) {
                        if let Err(e) = m.session.process_answer(now, s) {
                            tracing::warn!(call, "SDP answer refused: {e}");
                        }
                    }
                }
                if m.live {
                    self.service(now, call);
                } else {
                    self.start_media(now, call);
                }
            }
            Event::CallEstablished { .. } => {}
            Event::CallRedirected { dialog, .. } => {
                if let Some(&call) = self.by_dialog.get(&dialog) {
                    self.emit(call, CallEventKind::Failed(302));
                }
            }
            Event::CallEnded { dialog, reason } => {
                let Some(&call) = self.by_dialog.get(&dialog) else {
                    return;
                };
                let by = match &reason {
                    EndReason::LocalBye | EndReason::HandlerStopped(_) => EndedBy::Local,
                    EndReason::RemoteBye | EndReason::Cancelled => EndedBy::Remote,
                    _ => EndedBy::Failure,
                };
                let failed = match &reason {
                    EndReason::Rejected(s) => Some(*s),
                    EndReason::Timeout => Some(408),
                    EndReason::TransportError => Some(503),
                    _ => None,
                };
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                let outgoing_unanswered = c.outgoing && !c.answered;
                c.end.get_or_insert(by);
                if let (Some(s), true) = (failed, outgoing_unanswered) {
                    self.emit(call, CallEventKind::Failed(s));
                }
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                match &mut c.phase {
                    Phase::Media(m) if m.live => {
                        if !m.stopping {
                            m.stopping = true;
                            let reason = end_reason_text(&reason);
                            if catch_unwind(AssertUnwindSafe(|| m.session.stop(now, reason)))
                                .is_err()
                            {
                                self.media_panicked(now, call);
                                return;
                            }
                            self.service(now, call);
                        }
                    }
                    // Still binding sockets: finished when they are ready.
                    Phase::AwaitPorts { .. } => {}
                    _ => self.finalize(now, call, MediaTotals::default()),
                }
            }
            Event::ResponseReceived {
                request,
                status,
                response,
                ..
            } => {
                let Some((token, sent)) = self.options.remove(&request) else {
                    return;
                };
                let r = OptionsReply {
                    status,
                    rtt: now.saturating_duration_since(sent),
                    allow: response
                        .as_ref()
                        .map(|m| m.allow().map(str::to_owned).collect())
                        .unwrap_or_default(),
                    supported: response
                        .as_ref()
                        .map(|m| m.supported().map(str::to_owned).collect())
                        .unwrap_or_default(),
                    agent: response.as_ref().and_then(|m| {
                        m.header(HeaderName::Server)
                            .or(m.header(HeaderName::UserAgent))
                            .map(str::to_owned)
                    }),
                };
                let result = if status == 408 && response.is_none() {
                    Err("no answer (timeout)".into())
                } else {
                    Ok(r)
                };
                self.events.push_back(UaEvent::Options { token, result });
            }
            Event::RegistrationSucceeded {
                registration,
                expires,
            } => {
                if let Some(token) = self.registrations.remove(&registration) {
                    self.events.push_back(UaEvent::Registration {
                        token,
                        result: Ok(expires),
                    });
                }
            }
            Event::RegistrationFailed {
                registration,
                status,
            } => {
                if let Some(token) = self.registrations.remove(&registration) {
                    self.events.push_back(UaEvent::Registration {
                        token,
                        result: Err(status),
                    });
                }
            }
            Event::TransportError { dst, .. } => tracing::debug!("transport error towards {dst}"),
            other => tracing::debug!("endpoint event: {other:?}"),
        }
    }
}

/// The URI of a From or To value (a name-addr or addr-spec, RFC 3261 §20.10, §25.1) that the
/// endpoint has checked already: what `NameAddr::uri_str` gives, found with one scan instead
/// of a parse. Inside the angle brackets (after a display name, which may be quoted and hold
/// `<`), or without them everything before the header parameters.
fn uri_of(v: &str) -> &str {
    let b = v.as_bytes();
    let mut i = 0;
    // Jumps from one '<' or '"' to the next; a quoted string is skipped with its escapes.
    while let Some(at) = memchr::memchr2(b'<', b'"', &b[i..]) {
        i += at;
        if b[i] == b'<' {
            let rest = &v[i + 1..];
            return memchr::memchr(b'>', rest.as_bytes())
                .map_or(rest, |end| &rest[..end])
                .trim();
        }
        // The closing quote: the next '"' not escaped by a backslash.
        i += 1;
        while i < b.len() && b[i] != b'"' {
            i += if b[i] == b'\\' { 2 } else { 1 };
        }
        i = (i + 1).min(b.len());
    }
    match memchr::memchr(b';', b) {
        Some(end) => v[..end].trim(),
        None => v.trim(),
    }
}

/// The media configuration of the agent's calls (`MediaConfig::new` with inbound recording and
/// silence sent when nothing plays), port 0: each call's port is set on a clone.
fn media_config(advertised: IpAddr) -> MediaConfig {
    let mut config = MediaConfig::new(advertised, 0);
    config.record = RecordMode::Inbound;
    config.send_silence = true;
    config
}

/// `<encoding name>/<clock rate>` (`PCMU/8000`): static text for the codecs known here, so that
/// answering a call formats and allocates nothing for it.
fn codec_text(c: Codec) -> Cow<'static, str> {
    match c {
        Codec::Pcmu => "PCMU/8000".into(),
        Codec::Pcma => "PCMA/8000".into(),
        Codec::G722 => "G722/8000".into(),
        Codec::Opus => "opus/48000".into(),
        _ => {
            let mut s = String::with_capacity(16);
            s.push_str(c.encoding_name());
            s.push('/');
            push_decimal(&mut s, u64::from(c.clock_rate()));
            s.into()
        }
    }
}

/// `format!("{reason:?}")`, without formatting for the reasons that carry nothing.
fn end_reason_text(reason: &EndReason) -> std::borrow::Cow<'static, str> {
    match reason {
        EndReason::LocalBye => "LocalBye".into(),
        EndReason::RemoteBye => "RemoteBye".into(),
        EndReason::Cancelled => "Cancelled".into(),
        EndReason::Timeout => "Timeout".into(),
        EndReason::AckTimeout => "AckTimeout".into(),
        EndReason::TransportError => "TransportError".into(),
        other => format!("{other:?}").into(),
    }
}

fn totals(session: &Session) -> MediaTotals {
    MediaTotals {
        rtp_sent: session.packets_sent(),
        rtp_received: session.receiver_stats().map_or(0, |s| s.received()),
        lost: session.receiver_stats().map_or(0, |s| s.cumulative_lost()),
    }
}

fn media_stats(session: &Session) -> MediaStats {
    let codec = session.codec();
    let ms = |ts: u32| f64::from(ts) * 1000.0 / f64::from(codec.map_or(8000, |c| c.clock_rate()));
    let rx = session.receiver_stats();
    let peer = session.remote_report();
    MediaStats {
        totals: totals(session),
        jitter_ms: rx.map_or(0.0, |s| ms(s.jitter())),
        peer_lost: peer.map(|r| i64::from(r.cumulative_lost)),
        peer_jitter_ms: peer.map(|r| ms(r.jitter)),
        codec,
    }
}

/// Appends `n` in decimal (what `format!("{n}")` writes, without the formatting machinery).
fn push_decimal(s: &mut String, n: u64) {
    s.push_str(itoa::Buffer::new().format(n));
}

/// An IP address as a URI host (`[v6]`, RFC 3261 §25.1).
pub fn fmt_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uri_of_a_from_or_to_value_is_what_its_parse_gives() {
        for v in [
            "sipp <sip:sipp@127.0.0.1:5061>",
            "<sip:alice@example.com>",
            "<sip:alice@example.com>;x=1",
            "sip:bob@example.com",
            "sip:bob@example.com;x=1",
            "\"Bob <the builder>\" <sip:bob@example.com;transport=udp>",
            "\"A \\\" <quote\" <sips:a@[::1]:5061>",
            "  <sip:carol@example.com>  ",
            "Carol Smith<sip:carol@example.com?subject=hi>",
            "tel:+1-555-0100",
        ] {
            let parsed = parrot_proto::header::NameAddr::parse(v).expect("a valid value");
            assert_eq!(uri_of(v), parsed.uri_str(), "{v}");
        }
    }

    #[test]
    fn a_call_media_configuration_is_the_template_with_its_port() {
        for ip in ["192.0.2.7", "2001:db8::9"] {
            let ip: IpAddr = ip.parse().expect("an address");
            let mut fresh = MediaConfig::new(ip, 20_002);
            fresh.record = RecordMode::Inbound;
            fresh.send_silence = true;
            let mut cloned = media_config(ip).clone();
            cloned.local.rtp_port = 20_002;
            assert_eq!(format!("{cloned:?}"), format!("{fresh:?}"));
        }
    }

    /// A built-in file comes decoded at the call's rate, from one shared decoding; other
    /// names are not built-ins.
    #[test]
    fn a_builtin_file_is_decoded_once_and_shared() {
        let samples: Vec<i16> = (0..800).map(|i| (i * 37 % 2000) as i16).collect();
        let wav = parrot_media_core::wav::encode_wav_pcm16(8000, 1, &samples).expect("a wav");
        let server: SocketAddr = "127.0.0.1:5060".parse().expect("an address");
        let peer: SocketAddr = "127.0.0.1:5061".parse().expect("an address");
        let mut cfg = AgentConfig::new(server);
        cfg.builtin_files = vec![("builtin:x".to_owned(), Bytes::from(wav.clone()))];
        let mut ua = UserAgent::new(
            cfg,
            server,
            &[],
            None,
            None,
            Box::new(parrot_proto::endpoint::SplitMix64(3)),
        );
        let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";
        let invite = format!(
            "INVITE sip:s@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1\r\n\
             From: <sip:a@127.0.0.1:5061>;tag=1\r\nTo: <sip:s@127.0.0.1:5060>\r\nCall-ID: 1@x\r\n\
             CSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1:5061>\r\nMax-Forwards: 70\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        let now = Instant::now();
        ua.handle_sip_datagram(now, server, peer, Transport::Udp, Bytes::from(invite));
        let call = std::iter::from_fn(|| ua.poll_event())
            .find_map(|e| match e {
                UaEvent::OpenMedia { call } => Some(call),
                _ => None,
            })
            .expect("media asked for");
        ua.media_ready(now, call, 20_000);
        let first = ua.decoded_builtin(call, "builtin:x").expect("decoded");
        let again = ua.decoded_builtin(call, "builtin:x").expect("decoded");
        assert!(Arc::ptr_eq(&first, &again));
        let want = parrot_media_core::session::decode_for_playback(&wav, 8000).expect("decodes");
        assert_eq!(&first[..], &want[..]);
        assert!(ua.decoded_builtin(call, "other.wav").is_none());
    }

    #[test]
    fn codec_text_is_the_encoding_name_and_clock_rate() {
        for c in [Codec::Pcmu, Codec::Pcma, Codec::G722, Codec::Opus] {
            assert_eq!(
                codec_text(c),
                format!("{}/{}", c.encoding_name(), c.clock_rate())
            );
        }
    }

    #[test]
    fn end_reasons_read_as_their_debug_form() {
        for r in [
            EndReason::LocalBye,
            EndReason::RemoteBye,
            EndReason::Cancelled,
            EndReason::Rejected(486),
            EndReason::Timeout,
            EndReason::AckTimeout,
            EndReason::TransportError,
            EndReason::HandlerStopped("done".into()),
        ] {
            assert_eq!(end_reason_text(&r), format!("{r:?}"));
        }
    }

    /// 100,000 offsets from an anchor: the first 5,000 close together (just under a
    /// millisecond apart), the rest spread over ~13 days by a xorshift seeded with `seed`.
    fn offsets(seed: u64) -> impl Iterator<Item = Duration> {
        let mut x = seed;
        (0..100_000u64).map(move |i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Duration::from_nanos(if i < 5_000 {
                i * 999_983
            } else {
                x % (1 << 50)
            })
        })
    }

    #[test]
    fn sip_timers_round_up_to_the_next_whole_step_since_the_anchor() {
        let anchor = Instant::now();
        let step = SIP_TIMER_STEP.as_nanos();
        for since in offsets(0x9e37_79b9_7f4a_7c15) {
            let up = since.as_nanos().div_ceil(step) * step;
            let rounded = ceil_on_sip_step(anchor, anchor + since);
            assert_eq!(
                rounded,
                anchor + Duration::from_nanos(up as u64),
                "{since:?}"
            );
            assert!(rounded - (anchor + since) < SIP_TIMER_STEP);
        }
        let before = anchor
            .checked_sub(Duration::from_millis(3))
            .unwrap_or(anchor);
        assert_eq!(ceil_on_sip_step(anchor, before), before);
    }

    #[test]
    fn the_grid_floor_is_the_whole_steps_since_the_anchor() {
        let anchor = Instant::now();
        for since in offsets(0x2545_f491_4f6c_dd1d) {
            let step = MEDIA_GRID.as_nanos();
            let whole = Duration::from_nanos((since.as_nanos() / step * step) as u64);
            assert_eq!(
                floor_on_grid(anchor, anchor + since),
                anchor + whole,
                "{since:?}"
            );
        }
        let before = anchor
            .checked_sub(Duration::from_millis(3))
            .unwrap_or(anchor);
        assert_eq!(floor_on_grid(anchor, before), before);
    }

    #[test]
    fn push_decimal_writes_what_format_writes() {
        for n in [0, 7, 10, 8000, 48000, 123_456_789, u64::MAX] {
            let mut s = String::from("call-");
            push_decimal(&mut s, n);
            assert_eq!(s, format!("call-{n}"));
        }
    }
}
