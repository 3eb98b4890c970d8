//! # parrot-mio: Parrot on a plain `mio::Poll` loop
//!
//! A thin, blocking adapter with no async anywhere: one thread, one [`mio::Poll`], and a loop
//! around [`parrot_ua`]'s user agent. All protocol and call policy lives in the cores and in
//! [`parrot_ua::UserAgent`]; this crate only
//!
//! * registers the SIP sockets (UDP, and TCP listeners and connections) and each call's
//!   RTP/RTCP sockets with the poll, reads every readable socket until it would block (mio is
//!   edge-triggered) and hands what arrived to the user agent;
//! * sleeps in `poll` until [`parrot_ua::Driver::poll_timeout`] (rounded up to the next
//!   millisecond, so the loop never spins; on Linux a [`parrot_ua::PreciseTimer`] registered
//!   on the poll wakes it on time, which the media grid needs) and calls
//!   [`parrot_ua::Driver::flush`] after every input;
//! * wakes for application commands through a [`mio::Waker`].
//!
//! [`start`] runs that loop on a thread of its own and returns the [`Agent`] every Parrot
//! adapter returns, with blocking methods (`call_blocking`, `wait_blocking`, ...) for callers
//! that have no executor either:
//!
//! ```no_run
//! use parrot_mio::{AgentConfig, CallOptions};
//! let agent = parrot_mio::start(AgentConfig::new("127.0.0.1:0".parse().unwrap()), None, None)?;
//! let call = agent.call_blocking("sip:echo@127.0.0.1:5060", CallOptions::default(), None)?;
//! call.send_dtmf("123");
//! std::thread::sleep(std::time::Duration::from_secs(3));
//! call.hangup();
//! println!("{:?}", call.wait_blocking());
//! agent.shutdown_blocking();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Who owns their event loop puts a [`MioAgent`] into it instead: it registers its sockets on
//! the caller's [`mio::Registry`] under tokens from a base the caller picks, takes the events
//! that are its own ([`MioAgent::handle_event`]) and says how long the poll may sleep
//! ([`MioAgent::timeout`]). Other threads drive it through the same [`Agent`] handle
//! ([`MioAgent::handle`]):
//!
//! ```no_run
//! use mio::{Events, Poll, Token};
//! use parrot_mio::{AgentConfig, CallOptions, MioAgent};
//! let mut poll = Poll::new()?;
//! let cfg = AgentConfig::new("127.0.0.1:5060".parse().unwrap());
//! let mut sip = MioAgent::new(cfg, None, None, poll.registry(), Token(1000))?;
//! let agent = sip.handle(poll.registry())?;
//! std::thread::spawn(move || {
//!     let call = agent.call_blocking("sip:echo@127.0.0.1:5070", CallOptions::default(), None);
//!     // ...
//!     agent.shutdown_blocking();
//! });
//! let mut events = Events::with_capacity(256);
//! loop {
//!     let timeout = sip.timeout();
//!     if sip.is_done() {
//!         break;
//!     }
//!     poll.poll(&mut events, timeout)?;
//!     for ev in events.iter() {
//!         if !sip.handle_event(ev) {
//!             // one of the application's own sources
//!         }
//!     }
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
#![forbid(unsafe_code)]

mod agent;
mod io;

pub use agent::{start, MioAgent};
pub use mio;
pub use parrot_media_core;
pub use parrot_proto;
pub use parrot_ua;
pub use parrot_ua::prelude::*;
