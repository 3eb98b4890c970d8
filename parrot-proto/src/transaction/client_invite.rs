//! The INVITE client transaction (RFC 3261 §17.1.1, Figure 5, as updated by RFC 6026 §8.4).

use super::{Timer, TimerConfig, TimerTable, TxOutput};
use crate::{HeaderName, Message, Method, RequestBuilder};
use bytes::Bytes;
use std::time::{Duration, Instant};

/// States of Figure 5 plus RFC 6026's Accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientInviteState {
    /// INVITE sent, nothing heard (timers A and B).
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A 300-699 arrived and was ACKed (timer D).
    Completed,
    /// A 2xx arrived; further 2xx go to the TU (timer M, RFC 6026).
    Accepted,
    /// Done.
    Terminated,
}

/// An INVITE client transaction.
#[derive(Debug, Clone)]
pub struct ClientInviteTransaction {
    state: ClientInviteState,
    request: Message,
    ack: Option<Bytes>,
    reliable: bool,
    cfg: TimerConfig,
    timers: TimerTable,
    interval: Duration,
    /// A proxy's branch (§16.8): Timer C lasts this long and does not end the transaction.
    proxy_timer_c: Option<Duration>,
    /// Timer C fired on a proxy branch; the transaction now only waits for the CANCEL's 487.
    c_fired: bool,
}

impl ClientInviteTransaction {
    /// Starts the transaction: the INVITE is sent and timers A (unreliable) and B armed.
    pub fn start(
        now: Instant,
        request: Message,
        reliable: bool,
        cfg: TimerConfig,
        out: &mut Vec<TxOutput>,
    ) -> Self {
        let mut t = ClientInviteTransaction {
            state: ClientInviteState::Calling,
            request,
            ack: None,
            reliable,
            cfg,
            timers: TimerTable::default(),
            interval: cfg.t1,
            proxy_timer_c: None,
            c_fired: false,
        };
        out.push(TxOutput::Send(t.request.to_bytes()));
        if let Some(a) = cfg.initial(Timer::A, reliable) {
            t.timers.set(Timer::A, now + a);
        }
        t.timers.set(Timer::B, now + cfg.t1x64());
        t
    }

    /// Makes this a proxy's client transaction (§16.8): Timer C lasts `timer_c` (restarted by
    /// every provisional) and, when it fires, the transaction reports
    /// [`TxOutput::Timeout`]`(Timer::C)` and stays up for 64*T1 so the final response to the
    /// CANCEL the proxy sends is still ACKed.
    pub fn set_proxy_timer_c(&mut self, timer_c: Duration) {
        self.proxy_timer_c = Some(timer_c);
    }

    /// The current state.
    pub fn state(&self) -> ClientInviteState {
        self.state
    }

    /// The INVITE this transaction sends.
    pub fn request(&self) -> &Message {
        &self.request
    }

    /// The next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Whether the transaction has terminated.
    pub fn is_terminated(&self) -> bool {
        self.state == ClientInviteState::Terminated
    }

    fn terminate(&mut self, out: &mut Vec<TxOutput>) {
        self.state = ClientInviteState::Terminated;
        self.timers.clear();
        out.push(TxOutput::Terminated);
    }

    /// A response matched this transaction (§17.1.3).
    pub fn on_response(&mut self, now: Instant, resp: &Message, out: &mut Vec<TxOutput>) {
        let Some(code) = resp.status() else { return };
        match self.state {
            ClientInviteState::Calling | ClientInviteState::Proceeding => {
                self.timers.stop(Timer::A);
                if code < 200 {
                    self.state = ClientInviteState::Proceeding;
                    // The INVITE has arrived; timer B only guards the first answer. Timer C
                    // (§16.8, refreshed by every provisional) bounds Proceeding so a peer that
                    // never sends a final response cannot pin the transaction forever.
                    if !self.c_fired {
                        self.timers.stop(Timer::B);
                        let c = self.proxy_timer_c.unwrap_or_else(|| {
                            self.cfg
                                .initial(Timer::C, self.reliable)
                                .unwrap_or_default()
                        });
                        self.timers.set(Timer::C, now + c);
                    }
                    out.push(TxOutput::Deliver(resp.clone()));
                } else if code < 300 {
                    self.state = ClientInviteState::Accepted;
                    self.timers.clear();
                    self.timers.set(Timer::M, now + self.cfg.t1x64());
                    out.push(TxOutput::Deliver(resp.clone()));
                } else {
                    self.state = ClientInviteState::Completed;
                    self.timers.clear();
                    let ack = self.build_ack(resp);
                    if let Some(ack) = &ack {
                        out.push(TxOutput::Send(ack.clone()));
                    }
                    self.ack = ack;
                    let d = self
                        .cfg
                        .initial(Timer::D, self.reliable)
                        .unwrap_or_default();
                    self.timers.set(Timer::D, now + d);
                    out.push(TxOutput::Deliver(resp.clone()));
                }
            }
            ClientInviteState::Completed => {
                if code >= 300 {
                    if let Some(ack) = &self.ack {
                        out.push(TxOutput::Send(ack.clone()));
                    }
                }
            }
            ClientInviteState::Accepted => {
                if (200..300).contains(&code) {
                    out.push(TxOutput::Deliver(resp.clone()));
                }
            }
            ClientInviteState::Terminated => {}
        }
    }

    /// A CANCEL was sent for this INVITE (§9.1): without a final response within 64*T1 the
    /// transaction ends as a timeout, so a peer that never answers cannot pin it forever.
    pub fn on_cancel_sent(&mut self, now: Instant) {
        if self.state == ClientInviteState::Proceeding {
            self.timers.set(Timer::B, now + self.cfg.t1x64());
        }
    }

    /// The transport could not send (§17.1.1.2, §8.1.3.1): the TU hears a 503-equivalent.
    pub fn on_transport_error(&mut self, out: &mut Vec<TxOutput>) {
        if self.state != ClientInviteState::Terminated {
            self.terminate(out);
        }
    }

    /// Runs expired timers.
    pub fn on_timeout(&mut self, now: Instant, out: &mut Vec<TxOutput>) {
        while let Some(t) = self.timers.pop_expired(now) {
            match t {
                // A retransmission that comes due with Timer B (the clock jumped past
                // both) is not sent: the transaction is over, and a copy arriving now would
                // start a server transaction the peer's Timer H has already ended.
                Timer::A if self.state == ClientInviteState::Calling => {
                    if self.timers.due(Timer::B, now) {
                        continue;
                    }
                    out.push(TxOutput::Send(self.request.to_bytes()));
                    self.interval *= 2;
                    self.timers.set(Timer::A, now + self.interval);
                }
                Timer::B
                    if matches!(
                        self.state,
                        ClientInviteState::Calling | ClientInviteState::Proceeding
                    ) =>
                {
                    out.push(TxOutput::Timeout(Timer::B));
                    self.terminate(out);
                }
                Timer::C if self.state == ClientInviteState::Proceeding => {
                    out.push(TxOutput::Timeout(Timer::C));
                    if self.proxy_timer_c.is_some() {
                        // §16.8: the proxy CANCELs the branch; wait for its final response.
                        self.c_fired = true;
                        self.timers.set(Timer::B, now + self.cfg.t1x64());
                    } else {
                        self.terminate(out);
                    }
                }
                Timer::D | Timer::M => self.terminate(out),
                _ => {}
            }
        }
    }

    /// The ACK for a non-2xx final response (§17.1.1.3): the INVITE's Request-URI, Call-ID,
    /// From, CSeq number, top Via and Route, the response's To.
    fn build_ack(&self, resp: &Message) -> Option<Bytes> {
        let req = &self.request;
        let mut b = RequestBuilder::new(Method::Ack, req.request_uri_str()?);
        let via = req.header_values(HeaderName::Via).next()?;
        b = b.header(HeaderName::Via, via);
        for r in req.header_lines(HeaderName::Route) {
            b = b.header(HeaderName::Route, r);
        }
        b = b
            .header(HeaderName::MaxForwards, "70")
            .header(HeaderName::From, req.header(HeaderName::From)?)
            .header(HeaderName::To, resp.header(HeaderName::To)?)
            .header(HeaderName::CallId, req.header(HeaderName::CallId)?)
            .header(HeaderName::CSeq, format!("{} ACK", req.cseq().ok()?.seq));
        b.build().ok().map(|m| m.to_bytes())
    }
}
