//! # parrot-ua: one user agent for every runtime
//!
//! The layer between Parrot's two sans-IO cores and its runtime adapters (`parrot-tokio`,
//! `parrot-smol`, `parrot-mio`):
//!
//! * [`UserAgent`] — sans-IO: the SIP [`parrot_proto::Endpoint`] and every call's
//!   [`parrot_media_core::session::MediaSession`] behind one handle/poll state machine, with the
//!   call policy (auto-answer, offers and answers, DTMF queues, built-in files, recordings,
//!   media handler panics) that would otherwise be written once per adapter. One timer heap
//!   drives every call's media, so an adapter needs one sleep, not a task per call; media
//!   timers fall on a shared 1 ms grid, so each stream's packets leave at a fixed offset
//!   before their due time, and [`PreciseTimer`] wakes reactors that sleep in whole
//!   milliseconds on time.
//! * [`Driver`] and the [`Io`] trait — the part of an adapter's loop that is the same
//!   everywhere: flush transmits through the adapter's sockets, bind RTP ports, read and write
//!   files, route events to the application.
//! * [`Agent`] and [`CallHandle`] — the application's API, identical on every adapter,
//!   `async` (any executor) and blocking.
//!
//! An adapter is then only its sockets, its way of waiting, and a loop: after every input,
//! [`Driver::flush`]; sleep until [`Driver::poll_timeout`].
#![forbid(unsafe_code)]

mod api;
mod datagram;
mod driver;
mod guard;
mod handle;
mod ports;
#[cfg(unix)]
mod realtime;
mod sender;
mod spawn;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(target_os = "linux")]
mod timer;
mod ua;

pub use api::{
    AgentConfig, AudioDevice, CallEvent, CallEventKind, CallOptions, CallOutcome, EndedBy,
    MediaHandlerFactory, MediaStats, MediaTotals, OptionsReply, UasFactory, SHED_AFTER,
};
pub use datagram::DatagramBuf;
pub use driver::{Bound, Driver, Io};
pub use guard::GuardedHandler;
pub use handle::{resolve, Agent, AgentParts, CallHandle, Command, CommandSender, Wake};
pub use parrot_transport::{generate_self_signed, StreamKind, TlsClient, TlsServer};
pub use ports::{discard_queued, PortPair, PortPool};
pub use sender::MediaSender;

/// A table keyed by call number, with a hash cheap enough for the per-packet lookups (call
/// numbers are the agent's own counter: no peer chooses them).
pub type CallMap<V> = std::collections::HashMap<u64, V, foldhash::fast::FixedState>;
pub use spawn::{spawn_agent, LoopParts};
#[cfg(target_os = "linux")]
pub use timer::PreciseTimer;
pub use ua::{fmt_host, Output, UaEvent, UserAgent};

/// What every adapter re-exports: the application's API, on any runtime.
pub mod prelude {
    pub use crate::{
        Agent, AgentConfig, AudioDevice, CallEvent, CallEventKind, CallHandle, CallOptions,
        CallOutcome, EndedBy, GuardedHandler, MediaHandlerFactory, MediaStats, MediaTotals,
        OptionsReply, UasFactory,
    };
    pub use parrot_proto::Transport;
    pub use parrot_transport::{generate_self_signed, StreamKind, TlsClient, TlsServer};
}

pub use async_channel;
pub use parrot_media_core;
pub use parrot_proto;
pub use parrot_transport;
