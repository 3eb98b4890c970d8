//! The non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6).

use super::{Timer, TimerConfig, TimerTable, TxOutput};
use crate::Message;
use std::time::{Duration, Instant};

/// States of Figure 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientNonInviteState {
    /// Request sent (timers E and F).
    Trying,
    /// A provisional response arrived (E at T2).
    Proceeding,
    /// A final response arrived (timer K).
    Completed,
    /// Done.
    Terminated,
}

/// A non-INVITE client transaction.
#[derive(Debug, Clone)]
pub struct ClientNonInviteTransaction {
    state: ClientNonInviteState,
    request: Message,
    reliable: bool,
    cfg: TimerConfig,
    timers: TimerTable,
    interval: Duration,
}

impl ClientNonInviteTransaction {
    /// Starts the transaction: the request is sent, timers E (unreliable) and F armed.
    pub fn start(
        now: Instant,
        request: Message,
        reliable: bool,
        cfg: TimerConfig,
        out: &mut Vec<TxOutput>,
    ) -> Self {
        let mut t = ClientNonInviteTransaction {
            state: ClientNonInviteState::Trying,
            request,
            reliable,
            cfg,
            timers: TimerTable::default(),
            interval: cfg.t1,
        };
        out.push(TxOutput::Send(t.request.to_bytes()));
        if let Some(e) = cfg.initial(Timer::E, reliable) {
            t.timers.set(Timer::E, now + e);
        }
        t.timers.set(Timer::F, now + cfg.t1x64());
        t
    }

    /// The current state.
    pub fn state(&self) -> ClientNonInviteState {
        self.state
    }

    /// The request this transaction sends.
    pub fn request(&self) -> &Message {
        &self.request
    }

    /// The next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Whether the transaction has terminated.
    pub fn is_terminated(&self) -> bool {
        self.state == ClientNonInviteState::Terminated
    }

    fn terminate(&mut self, out: &mut Vec<TxOutput>) {
        self.state = ClientNonInviteState::Terminated;
        self.timers.clear();
        out.push(TxOutput::Terminated);
    }

    /// A response matched this transaction (§17.1.3).
    pub fn on_response(&mut self, now: Instant, resp: &Message, out: &mut Vec<TxOutput>) {
        let Some(code) = resp.status() else { return };
        match self.state {
            ClientNonInviteState::Trying | ClientNonInviteState::Proceeding => {
                if code < 200 {
                    if self.state == ClientNonInviteState::Trying && !self.reliable {
                        // §17.1.2.2: in Proceeding, retransmit every T2.
                        self.interval = self.cfg.t2;
                    }
                    self.state = ClientNonInviteState::Proceeding;
                    out.push(TxOutput::Deliver(resp.clone()));
                } else {
                    self.state = ClientNonInviteState::Completed;
                    self.timers.clear();
                    let k = self
                        .cfg
                        .initial(Timer::K, self.reliable)
                        .unwrap_or_default();
                    self.timers.set(Timer::K, now + k);
                    out.push(TxOutput::Deliver(resp.clone()));
                }
            }
            ClientNonInviteState::Completed | ClientNonInviteState::Terminated => {}
        }
    }

    /// The transport could not send (§17.1.2.2).
    pub fn on_transport_error(&mut self, out: &mut Vec<TxOutput>) {
        if self.state != ClientNonInviteState::Terminated {
            self.terminate(out);
        }
    }

    /// Runs expired timers.
    pub fn on_timeout(&mut self, now: Instant, out: &mut Vec<TxOutput>) {
        while let Some(t) = self.timers.pop_expired(now) {
            match t {
                Timer::E
                    if matches!(
                        self.state,
                        ClientNonInviteState::Trying | ClientNonInviteState::Proceeding
                    ) =>
                {
                    // Due together with Timer F (the clock jumped past both): the
                    // transaction is over, nothing is sent again.
                    if self.timers.due(Timer::F, now) {
                        continue;
                    }
                    out.push(TxOutput::Send(self.request.to_bytes()));
                    if self.state == ClientNonInviteState::Trying {
                        self.interval = (self.interval * 2).min(self.cfg.t2);
                    }
                    self.timers.set(Timer::E, now + self.interval);
                }
                Timer::F
                    if matches!(
                        self.state,
                        ClientNonInviteState::Trying | ClientNonInviteState::Proceeding
                    ) =>
                {
                    out.push(TxOutput::Timeout(Timer::F));
                    self.terminate(out);
                }
                Timer::K => self.terminate(out),
                _ => {}
            }
        }
    }
}
