//! The INVITE server transaction (RFC 3261 §17.2.1, Figure 7, as updated by RFC 6026 §8.5-8.7).

use super::{Timer, TimerConfig, TimerTable, TxOutput};
use crate::Message;
use bytes::Bytes;
use std::time::{Duration, Instant};

/// States of Figure 7 plus RFC 6026's Accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerInviteState {
    /// INVITE received, no final response yet.
    Proceeding,
    /// A 300-699 was sent (timers G and H).
    Completed,
    /// The ACK arrived (timer I).
    Confirmed,
    /// A 2xx was sent; INVITE retransmissions are absorbed (timer L, RFC 6026).
    Accepted,
    /// Done.
    Terminated,
}

/// What an INVITE server transaction did with an incoming request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerRequestOutcome {
    /// A retransmission, absorbed (the last response may have been resent).
    Absorbed,
    /// Must go to the TU (an ACK in Accepted: the ACK for a 2xx, RFC 6026 §8.7).
    ToTu,
}

/// An INVITE server transaction.
#[derive(Debug, Clone)]
pub struct ServerInviteTransaction {
    state: ServerInviteState,
    last: Option<Bytes>,
    final_sent: bool,
    reliable: bool,
    cfg: TimerConfig,
    timers: TimerTable,
    interval: Duration,
}

impl ServerInviteTransaction {
    /// A transaction for a fresh INVITE, in Proceeding.
    pub fn new(reliable: bool, cfg: TimerConfig) -> Self {
        ServerInviteTransaction {
            state: ServerInviteState::Proceeding,
            last: None,
            final_sent: false,
            reliable,
            cfg,
            timers: TimerTable::default(),
            interval: cfg.t1,
        }
    }

    /// The current state.
    pub fn state(&self) -> ServerInviteState {
        self.state
    }

    /// Whether a final response was sent (never two, §17.2.1).
    pub fn has_final(&self) -> bool {
        self.final_sent
    }

    /// The next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Whether the transaction has terminated.
    pub fn is_terminated(&self) -> bool {
        self.state == ServerInviteState::Terminated
    }

    fn terminate(&mut self, out: &mut Vec<TxOutput>) {
        self.state = ServerInviteState::Terminated;
        self.timers.clear();
        out.push(TxOutput::Terminated);
    }

    /// A retransmitted INVITE or an ACK matched this transaction (§17.2.3).
    pub fn on_request(
        &mut self,
        now: Instant,
        is_ack: bool,
        out: &mut Vec<TxOutput>,
    ) -> ServerRequestOutcome {
        match (self.state, is_ack) {
            (ServerInviteState::Proceeding, false) | (ServerInviteState::Completed, false) => {
                if let Some(last) = &self.last {
                    out.push(TxOutput::Send(last.clone()));
                }
            }
            (ServerInviteState::Completed, true) => {
                self.state = ServerInviteState::Confirmed;
                self.timers.stop(Timer::G);
                self.timers.stop(Timer::H);
                let i = self
                    .cfg
                    .initial(Timer::I, self.reliable)
                    .unwrap_or_default();
                self.timers.set(Timer::I, now + i);
            }
            (ServerInviteState::Accepted, true) => return ServerRequestOutcome::ToTu,
            _ => {}
        }
        ServerRequestOutcome::Absorbed
    }

    /// The TU sends a response (§17.2.1). Returns `false` (and sends nothing) when a final
    /// response was already sent or the response is not a valid status.
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
        if self.state != ServerInviteState::Proceeding || self.final_sent {
            return false;
        }
        out.push(TxOutput::Send(bytes.clone()));
        self.last = Some(bytes);
        if code < 200 {
            return true;
        }
        self.final_sent = true;
        if code < 300 {
            self.state = ServerInviteState::Accepted;
            self.timers.set(Timer::L, now + self.cfg.t1x64());
        } else {
            self.state = ServerInviteState::Completed;
            if let Some(g) = self.cfg.initial(Timer::G, self.reliable) {
                self.interval = g;
                self.timers.set(Timer::G, now + g);
            }
            self.timers.set(Timer::H, now + self.cfg.t1x64());
        }
        true
    }

    /// The transport could not send (§17.2.4 fallback exhausted).
    pub fn on_transport_error(&mut self, out: &mut Vec<TxOutput>) {
        if self.state != ServerInviteState::Terminated {
            self.terminate(out);
        }
    }

    /// Runs expired timers.
    pub fn on_timeout(&mut self, now: Instant, out: &mut Vec<TxOutput>) {
        while let Some(t) = self.timers.pop_expired(now) {
            match t {
                Timer::G if self.state == ServerInviteState::Completed => {
                    // Due together with Timer H (the clock jumped past both): the wait for
                    // the ACK is over, the response is not sent again.
                    if self.timers.due(Timer::H, now) {
                        continue;
                    }
                    if let Some(last) = &self.last {
                        out.push(TxOutput::Send(last.clone()));
                    }
                    self.interval = (self.interval * 2).min(self.cfg.t2);
                    self.timers.set(Timer::G, now + self.interval);
                }
                Timer::H if self.state == ServerInviteState::Completed => {
                    out.push(TxOutput::Timeout(Timer::H));
                    self.terminate(out);
                }
                Timer::I | Timer::L => self.terminate(out),
                _ => {}
            }
        }
    }
}
