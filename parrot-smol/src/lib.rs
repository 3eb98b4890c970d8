//! # parrot-smol: Parrot on smol
//!
//! The smol counterpart of `parrot-tokio`, built on smol's parts (`async-io` for the reactor
//! and the timer, `async-executor` for the tasks, `futures-lite`): the sockets, the waiting
//! and a loop around [`parrot_ua`]'s user agent. All protocol and call policy lives in the
//! cores and in [`parrot_ua::UserAgent`]; this crate only
//!
//! * owns the SIP sockets (UDP, and a listener for each stream kind in
//!   [`parrot_ua::Bound`]: TCP, TLS, WS, WSS) and each call's RTP/RTCP sockets, and hands what
//!   arrives to the [`parrot_ua::Driver`]. Connections move raw TCP bytes only: TLS, WebSocket
//!   framing and connection reuse (RFC 3261 §18) are the driver's;
//! * sleeps on one [`async_io::Timer`] until [`parrot_ua::Driver::poll_timeout`] and calls
//!   [`parrot_ua::Driver::flush`] after every input (the drain rule of the cores).
//!
//! Everything runs on one thread of its own (`parrot-sip`) with a single-threaded
//! [`async_executor::LocalExecutor`]: one timer drives every call's media; each call's
//! RTP/RTCP pair, each listener and each connection is a task on that thread that feeds the
//! driver directly. `async-io`'s reactor is one per process: several agents in one process
//! share it (it wakes each agent's thread), and it re-arms a socket's readiness and its timer
//! with a system call per wake-up, so a busy agent costs more CPU than on tokio. The application
//! talks to it through [`Agent`] and [`CallHandle`], the same types every Parrot adapter
//! returns, so moving from `parrot-tokio` is a change of path:
//!
//! ```no_run
//! # fn demo() -> std::io::Result<()> {
//! use parrot_smol::{AgentConfig, CallOptions};
//! futures_lite::future::block_on(async {
//!     let agent = parrot_smol::start(AgentConfig::new("127.0.0.1:0".parse().unwrap()), None, None)?;
//!     let mut call = agent.call("sip:echo@127.0.0.1:5060", CallOptions::default()).await?;
//!     call.send_dtmf("123");
//!     async_io::Timer::after(std::time::Duration::from_secs(3)).await;
//!     call.hangup();
//!     let outcome = call.wait().await;
//!     println!("{outcome:?}");
//!     agent.shutdown().await;
//!     Ok(())
//! })
//! # }
//! ```
#![forbid(unsafe_code)]

mod run;

pub use parrot_media_core;
pub use parrot_proto;
pub use parrot_ua;
pub use parrot_ua::prelude::*;
pub use run::start;
