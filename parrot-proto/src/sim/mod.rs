//! Deterministic simulation: endpoints wired through an in-memory, seeded network on a virtual
//! clock (the testing method of ARCHITECTURE.md, after str0m's netem and quinn's `Pair`).
//!
//! Public so applications can test their handlers the same way: build [`Endpoint`]s, add them
//! to a [`Network`], and [`Network::run_until_idle`]. The network drops, duplicates, delays and
//! reorders datagrams from its own seeded generator, and the clock jumps straight to the
//! earliest deadline (a packet arrival or an endpoint's `poll_timeout`), so an hour of SIP timers
//! runs in microseconds and every run with the same seed is the same run.
//!
//! [`Endpoint`]: crate::Endpoint

mod network;

pub use network::{LinkConfig, Network, NodeId};
