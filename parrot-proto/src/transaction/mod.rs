//! SIP transactions (RFC 3261 §17, RFC 6026).
//!
//! Four deterministic state machines, client and server × INVITE and non-INVITE. Each takes
//! `now` and a message or a timer tick and pushes [`TxOutput`]s: bytes to (re)send to the
//! transaction's peer, messages for the transaction user, timeouts and termination. They know
//! nothing of addresses; the [`Endpoint`](crate::Endpoint) remembers where each transaction
//! sends. Timers are kept in a [`TimerTable`] indexed by the RFC's names ([`Timer`]).
//!
//! RFC 6026 is applied throughout: an INVITE client transaction that sees a 2xx moves to
//! *Accepted* (timer M) and hands every 2xx to the TU, and an INVITE server transaction that
//! sends a 2xx moves to *Accepted* (timer L) and absorbs retransmitted INVITEs, while the
//! dialog layer retransmits the 2xx itself (§13.3.1.4).

mod client_invite;
mod client_non_invite;
mod key;
mod server_invite;
mod server_non_invite;
mod timer;

pub use client_invite::{ClientInviteState, ClientInviteTransaction};
pub use client_non_invite::{ClientNonInviteState, ClientNonInviteTransaction};
pub use key::TransactionKey;
pub(crate) use key::{ClientKey, KeyText, MergeKey, ServerKey};
pub use server_invite::{ServerInviteState, ServerInviteTransaction, ServerRequestOutcome};
pub use server_non_invite::{ServerNonInviteState, ServerNonInviteTransaction};
pub use timer::{Timer, TimerConfig, TimerTable};

use crate::Message;
use bytes::Bytes;

/// What a transaction asks of its owner.
// `Deliver` holds a whole message; outputs live only between a call and its drain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum TxOutput {
    /// Send these bytes to the transaction's peer (a request, retransmission, ACK or response).
    Send(Bytes),
    /// Hand this message to the transaction user (a response for a client transaction).
    Deliver(Message),
    /// The named timer fired without an answer (B, F: timeout, §17.1.1.2, §17.1.2.2; H: no ACK,
    /// §17.2.1). The TU treats B and F as a 408.
    Timeout(Timer),
    /// The transaction reached Terminated and can be dropped.
    Terminated,
}

#[cfg(test)]
mod tests;
