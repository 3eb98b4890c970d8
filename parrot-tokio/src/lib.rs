//! # parrot-tokio: Parrot on the tokio runtime
//!
//! A thin adapter: the sockets, the waiting and a loop around [`parrot_ua`]'s user agent. All
//! protocol and call policy lives in the cores and in [`parrot_ua::UserAgent`]; this crate only
//!
//! * owns the SIP sockets (UDP, and TCP with one connection per peer reused per RFC 3261 §18)
//!   and each call's RTP/RTCP sockets, and hands what arrives to the user agent;
//! * sleeps until [`parrot_ua::Driver::poll_timeout`] (on Linux with a
//!   [`parrot_ua::PreciseTimer`]: tokio's own timer wakes up to a millisecond late) and calls
//!   [`parrot_ua::Driver::flush`] after every input (the drain rule of the cores).
//!
//! One function uses `unsafe`: tokio's only way to register a socket for readability alone
//! (RTP sockets registered for writing too would report an event after every packet sent).
//!
//! Everything runs on one thread of its own with a current-thread runtime: one timer drives
//! every call's media. The application talks to it through [`Agent`] and [`CallHandle`], the
//! same types every Parrot adapter returns.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use parrot_tokio::{AgentConfig, CallOptions};
//! let agent = parrot_tokio::start(AgentConfig::new("127.0.0.1:0".parse().unwrap()), None, None)?;
//! let mut call = agent.call("sip:echo@127.0.0.1:5060", CallOptions::default()).await?;
//! call.send_dtmf("123");
//! tokio::time::sleep(std::time::Duration::from_secs(3)).await;
//! call.hangup();
//! let outcome = call.wait().await;
//! println!("{outcome:?}");
//! # Ok(()) }
//! ```
#![deny(unsafe_code)]

mod run;

pub use parrot_media_core;
pub use parrot_proto;
pub use parrot_ua;
pub use parrot_ua::prelude::*;
pub use run::start;
