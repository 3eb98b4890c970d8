//! # parrot-tokio: Parrot on the tokio runtime
//!
//! A thin adapter: sockets, timers and files around the two sans-IO cores. All protocol policy
//! (transactions, retransmissions, dialogs, offer/answer, pacing, jitter) lives in
//! [`parrot_proto`] and [`parrot_media_core`]; this crate only
//!
//! * owns the SIP sockets (UDP, and TCP with one connection per peer reused per RFC 3261 §18)
//!   and feeds what arrives to an [`parrot_proto::Endpoint`], sending what it asks to send and
//!   sleeping until its `poll_timeout` (the drain rule of the core's docs);
//! * owns one RTP (and RTCP) socket pair per call from a configurable port range, released at
//!   hang-up, driving one [`parrot_media_core::session::MediaSession`] per call the same way;
//! * reads the files that `Play` asks for and writes recordings as WAV;
//! * isolates faults: a handler that panics ends its own call (500 before the answer, BYE
//!   after) and nothing else.
//!
//! The SIP endpoint runs on a thread of its own (its handlers need not be `Send`); each call's
//! media runs as a task on the caller's tokio runtime.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use parrot_tokio::{Agent, AgentConfig, CallOptions};
//! let agent = Agent::start(AgentConfig::new("127.0.0.1:0".parse().unwrap()), None, None).await?;
//! let mut call = agent.call("sip:echo@127.0.0.1:5060", CallOptions::default()).await?;
//! call.send_dtmf("123");
//! tokio::time::sleep(std::time::Duration::from_secs(3)).await;
//! call.hangup();
//! let outcome = call.wait().await;
//! println!("{outcome:?}");
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod agent;
mod guard;
mod media;
mod ports;

pub use agent::{
    Agent, AgentConfig, CallEvent, CallEventKind, CallHandle, CallOptions, CallOutcome, EndedBy,
    MediaHandlerFactory, OptionsReply, UasFactory,
};
pub use guard::GuardedHandler;
pub use media::{AudioDevice, MediaStats, MediaTotals};
pub use parrot_media_core;
pub use parrot_proto;
