//! The types an application sees, whichever runtime drives the agent.

use bytes::Bytes;
use parrot_media_core::handler::MediaHandler;
use parrot_media_core::session::Role as MediaRole;
use parrot_proto::{EndpointConfig, Transport, UasHandler};
use parrot_transport::{StreamKind, TlsClient, TlsServer};
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

/// Makes the SIP handler of each call (and the endpoint-wide one). Handlers run on the
/// agent's own thread.
pub type UasFactory = Box<dyn FnMut() -> Box<dyn UasHandler> + Send>;

/// Makes the media handler of each call, given its number and whether we answered it.
pub type MediaHandlerFactory =
    Box<dyn FnMut(u64, MediaRole) -> Box<dyn MediaHandler + Send> + Send>;

/// How an agent is set up.
#[derive(Clone)]
pub struct AgentConfig {
    /// SIP address to bind (UDP, and TCP on the same port when `tcp`).
    pub bind: SocketAddr,
    /// Listen on TCP too.
    pub tcp: bool,
    /// RTP ports (even ports and the odd one after each for RTCP, RFC 3550 §11).
    pub rtp_ports: RangeInclusive<u16>,
    /// Address written in SDP and Contact; the bind address when it is specific, else
    /// 127.0.0.1.
    pub advertised_ip: Option<IpAddr>,
    /// User-Agent / Server header.
    pub user_agent: String,
    /// Answer incoming calls that no SIP handler answered with 200 and an SDP answer.
    pub auto_answer: bool,
    /// Files `Play` may name without touching the disk.
    pub builtin_files: Vec<(String, Bytes)>,
    /// The core's configuration (timers, caps, allowed methods); addresses are filled in.
    pub endpoint: EndpointConfig,
    /// More stream listeners: TLS, WS, WSS (and TCP on another port), each on its own address
    /// (port 0: any free port).
    pub streams: Vec<(StreamKind, SocketAddr)>,
    /// The certificate TLS and WSS listeners present.
    pub tls_server: Option<TlsServer>,
    /// The trust used for outgoing TLS and WSS connections (none: they are refused).
    pub tls_client: Option<TlsClient>,
    /// Threads that send media ([`crate::MediaSender`]), so that the kernel's per-datagram
    /// work runs beside the agent instead of inside its loop; 0: the agent's thread sends.
    /// By default as many as the machine has cores (the kernel's send path costs more than
    /// building the packets; at 2,000 calls on 2 cores one thread cannot keep up), and none
    /// on a single core.
    pub media_threads: usize,
    /// How far ahead of its due time each media datagram is written, for the sending threads
    /// to hold and release on time: a loop held up for less than this (a burst of signalling,
    /// a descheduled core) leaves them enough to send meanwhile. `None`: 10 ms with sending
    /// threads, none without (the loop's own thread sends what is due as it goes). Calls with
    /// a sound device never write ahead.
    pub media_lookahead: Option<Duration>,
    /// Real-time priority (`SCHED_FIFO`, 1-98) for the media sending threads; the loop that
    /// writes the packets runs one above, so sending a backlog never keeps it from writing
    /// what comes due next. `None`: normal scheduling. It needs root or `CAP_SYS_NICE`; where
    /// it is refused the agent logs a warning and runs at normal priority.
    pub realtime: Option<u8>,
}

/// How long the SIP socket's receive queue may stay non-empty (with at least
/// [`EndpointConfig::shed_backlog`] datagrams taken meanwhile) before new requests get 503
/// ([`EndpointConfig::shed_after`]): under T1, so that a client's first INVITE
/// retransmission (at 500 ms) finds the queue emptied, and long enough to ride out a stall.
/// A busy server comes back from a stall of S ms in about S ρ / (1 − ρ) more at a load ρ: at
/// 9,000 calls/s, three quarters of a core, stalls of some 70 ms kept the queue from
/// emptying for 250 ms, and a 250 ms setting (100 ms before it) refused calls the server
/// caught up with.
pub const SHED_AFTER: Duration = Duration::from_millis(400);

impl AgentConfig {
    /// Defaults: UDP and TCP on `bind`, RTP ports 16384-32767, auto-answer on, overload
    /// shedding after [`SHED_AFTER`].
    pub fn new(bind: SocketAddr) -> Self {
        AgentConfig {
            bind,
            tcp: true,
            rtp_ports: 16384..=32767,
            advertised_ip: None,
            user_agent: format!("Parrot/{}", env!("CARGO_PKG_VERSION")),
            auto_answer: true,
            builtin_files: Vec::new(),
            endpoint: EndpointConfig {
                shed_after: Some(SHED_AFTER),
                ..EndpointConfig::default()
            },
            streams: Vec::new(),
            tls_server: None,
            tls_client: None,
            media_threads: match std::thread::available_parallelism().map_or(1, |n| n.get()) {
                1 => 0,
                n => n,
            },
            media_lookahead: None,
            realtime: None,
        }
    }

    /// The address written in SDP and Contact for an agent whose SIP socket is `bound`.
    pub fn advertised(&self, bound: SocketAddr) -> IpAddr {
        self.advertised_ip
            .unwrap_or(if bound.ip().is_unspecified() {
                IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
            } else {
                bound.ip()
            })
    }
}

/// Options of an outgoing call.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// From URI; default `sip:parrot@<our address>`.
    pub from: Option<String>,
    /// Digest credentials for 401/407.
    pub credentials: Option<(String, String)>,
    /// Use TCP instead of UDP.
    pub tcp: bool,
    /// The transport, when neither UDP nor TCP (TLS, WS, WSS); overrides `tcp`.
    pub transport: Option<Transport>,
    /// Extra header lines.
    pub headers: Vec<(String, String)>,
}

/// Who ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndedBy {
    /// We hung up (or our handler did).
    Local,
    /// The peer hung up or cancelled.
    Remote,
    /// It never got established or failed (timeout, rejection, transport error).
    Failure,
}

/// What happened to a call, one event per step, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEventKind {
    /// An INVITE arrived.
    Incoming {
        /// From URI.
        from: String,
        /// To URI.
        to: String,
        /// Call-ID.
        call_id: String,
    },
    /// A provisional response to our INVITE.
    Progress(u16),
    /// The call is answered and media flows with this codec (`PCMU/8000`).
    Answered {
        /// The codec (static text for the codecs Parrot knows: nothing allocated per call).
        codec: Cow<'static, str>,
    },
    /// A DTMF digit from the peer.
    Dtmf(char),
    /// A file finished playing.
    PlayComplete(String),
    /// A recording was written.
    Recorded(PathBuf),
    /// Our INVITE failed with this status (408 for a timeout).
    Failed(u16),
    /// The call is over.
    Ended {
        /// Who ended it.
        by: EndedBy,
        /// Time since the INVITE.
        duration: Duration,
        /// Media counters.
        media: MediaTotals,
    },
}

/// One step of one call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallEvent {
    /// The call's number in this agent (1, 2, ...).
    pub call: u64,
    /// The step.
    pub kind: CallEventKind,
}

/// How an outgoing call ended.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutcome {
    /// Whether it was answered.
    pub answered: bool,
    /// The failure status if it was not.
    pub status: Option<u16>,
    /// Who ended it.
    pub ended_by: EndedBy,
    /// Media counters.
    pub media: MediaTotals,
    /// Every event of the call.
    pub events: Vec<CallEvent>,
}

impl CallOutcome {
    /// Sums up a call's events.
    pub fn from_events(events: Vec<CallEvent>) -> Self {
        let mut out = CallOutcome {
            answered: false,
            status: None,
            ended_by: EndedBy::Failure,
            media: MediaTotals::default(),
            events: Vec::new(),
        };
        for e in &events {
            match &e.kind {
                CallEventKind::Answered { .. } => out.answered = true,
                CallEventKind::Failed(s) => out.status = Some(*s),
                CallEventKind::Ended { by, media, .. } => {
                    out.ended_by = *by;
                    out.media = *media;
                }
                _ => {}
            }
        }
        out.events = events;
        out
    }
}

/// The answer to an OPTIONS request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionsReply {
    /// Status code.
    pub status: u16,
    /// Round-trip time.
    pub rtt: Duration,
    /// The peer's Allow.
    pub allow: Vec<String>,
    /// The peer's Supported.
    pub supported: Vec<String>,
    /// The peer's User-Agent or Server.
    pub agent: Option<String>,
}

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
/// The agent calls it from its own thread: [`AudioDevice::capture`] whenever the call's media
/// wakes (at least once per packet time) and [`AudioDevice::playback`] for every frame
/// received. Both run at the codec's clock (8 kHz for G.711), mono; converting to and from
/// the device's rate and channels is the device's job (see `parrot-cpal`). Implementations
/// must not block.
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
