//! The non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8).

use super::{Timer, TimerConfig, TimerTable, TxOutput};
use crate::Message;
use bytes::Bytes;
use std::time::Instant;

/// States of Figure 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerNonInviteState {
    /// Request received, nothing sent.
    Trying,
    /// A provisional response was sent.
    Proceeding,
    /// A final response was sent (timer J).
    Completed,
    /// Done.
    Terminated,
}

/// A non-INVITE server transaction.
#[derive(Debug, Clone)]
pub struct ServerNonInviteTransaction {
    state: ServerNonInviteState,
    last: Option<Bytes>,
    reliable: bool,
    cfg: TimerConfig,
    timers: TimerTable,
}

impl ServerNonInviteTransaction {
    /// A transaction for a fresh request, in Trying.
    pub fn new(reliable: bool, cfg: TimerConfig) -> Self {
        ServerNonInviteTransaction {
            state: ServerNonInviteState::Trying,
            last: None,
            reliable,
            cfg,
            timers: TimerTable::default(),
        }
    }

    /// The current state.
    pub fn state(&self) -> ServerNonInviteState {
        self.state
    }

    /// Whether a final response was sent.
    pub fn has_final(&self) -> bool {
        matches!(
            self.state,
            ServerNonInviteState::Completed | ServerNonInviteState::Terminated
        )
    }

    /// The next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Whether the transaction has terminated.
    pub fn is_terminated(&self) -> bool {
        self.state == ServerNonInviteState::Terminated
    }

    /// The last response sent, resent for each retransmitted request.
    pub(crate) fn last_response(&self) -> Option<&Bytes> {
        self.last.as_ref()
    }

    /// A retransmission of the request: the last response is sent again (§17.2.2).
    pub fn on_request(&mut self, out: &mut Vec<TxOutput>) {
        if matches!(
            self.state,
            ServerNonInviteState::Proceeding | ServerNonInviteState::Completed
        ) {
            if let Some(last) = &self.last {
                out.push(TxOutput::Send(last.clone()));
            }
        }
    }

    /// The TU sends a response. Returns `false` once a final response has been sent.
    pub fn send_response(&mut self, now: Instant, resp: &Message, out: &mut Vec<TxOutput>) -> bool {
        let Some(code) = resp.status() else {
            return false;
        };
        self.send_response_bytes(now, code, resp.to_bytes(), out)
    }

    /// [`Self::send_response`] for a response already written out, with its status `code`.
    pub(crate) fn send_response_bytes(
        &mut self,
        now: Instant,
        code: u16,
        bytes: Bytes,
        out: &mut Vec<TxOutput>,
    ) -> bool {
        if self.has_final() {
            return false;
        }
        out.push(TxOutput::Send(bytes.clone()));
        self.last = Some(bytes);
        if code < 200 {
            self.state = ServerNonInviteState::Proceeding;
        } else {
            self.state = ServerNonInviteState::Completed;
            let j = self
                .cfg
                .initial(Timer::J, self.reliable)
                .unwrap_or_default();
            self.timers.set(Timer::J, now + j);
        }
        true
    }

    /// The transport could not send (§17.2.4).
    pub fn on_transport_error(&mut self, out: &mut Vec<TxOutput>) {
        if self.state != ServerNonInviteState::Terminated {
            self.state = ServerNonInviteState::Terminated;
            self.timers.clear();
            out.push(TxOutput::Terminated);
        }
    }

    /// Runs expired timers.
    pub fn on_timeout(&mut self, now: Instant, out: &mut Vec<TxOutput>) {
        while let Some(t) = self.timers.pop_expired(now) {
            if t == Timer::J {
                self.state = ServerNonInviteState::Terminated;
                self.timers.clear();
                out.push(TxOutput::Terminated);
            }
        }
    }
}
