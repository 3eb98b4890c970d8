//! [`Driver`]: what every adapter's loop does between waiting and sending, written once.
//!
//! An adapter owns the sockets and the waiting (an async reactor or `mio::Poll`). After each
//! wake-up it feeds what arrived to [`Driver::ua`] (or [`Driver::handle_command`]) and calls
//! [`Driver::flush`] with its [`Io`]: the driver sends every transmit through it, binds media
//! ports, reads and writes files, and routes call events and command replies to the
//! application's channels. Then the adapter sleeps until [`Driver::poll_timeout`].
//!
//! Files are read and written here with blocking `std::fs` calls: prompts and recordings are
//! small, and the built-in ones never touch the disk.

use crate::api::{AgentConfig, CallEvent, CallEventKind, MediaHandlerFactory, UasFactory};
use crate::handle::Command;
use crate::ports::{PortPair, PortPool};
use crate::ua::{Output, UaEvent, UserAgent};
use async_channel::Sender;
use parrot_proto::Transmit;
use rand_core::{RngCore, SeedableRng};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

/// The sockets of an adapter, as the driver needs them.
pub trait Io {
    /// Sends a SIP message: on UDP from the SIP socket, on a stream over `t.conn` (or a
    /// connection to `t.dst`, opened if needed). An error is reported to the transactions.
    fn send_sip(&mut self, t: Transmit) -> io::Result<()>;
    /// Sends a call's RTP (or RTCP) packet from its socket.
    fn send_media(&mut self, call: u64, rtcp: bool, dst: SocketAddr, data: &[u8]);
    /// Takes over a call's freshly bound (non-blocking) media sockets and starts reading them.
    fn open_media(&mut self, call: u64, pair: PortPair) -> io::Result<()>;
    /// Stops reading and closes a call's media sockets.
    fn close_media(&mut self, call: u64);
}

/// The loop's state; see the [module docs](self).
pub struct Driver {
    /// The sans-IO user agent.
    pub ua: UserAgent,
    ports: PortPool,
    port_of: HashMap<u64, u16>,
    subscribers: HashMap<u64, Sender<CallEvent>>,
    events: Sender<CallEvent>,
    options: HashMap<u64, Sender<Result<crate::OptionsReply, String>>>,
    registrations: HashMap<u64, Sender<Result<u32, u16>>>,
    next_token: u64,
    shutdown: Vec<Sender<()>>,
    buf: Vec<u8>,
}

impl Driver {
    /// A driver for an agent whose SIP socket is bound at `sip_addr`; call events go to
    /// `events`. The RNG is seeded from the operating system.
    pub fn new(
        cfg: AgentConfig,
        sip_addr: SocketAddr,
        uas: Option<UasFactory>,
        media: Option<MediaHandlerFactory>,
        events: Sender<CallEvent>,
    ) -> Driver {
        let rng = rand_chacha::ChaCha20Rng::from_os_rng();
        Driver::with_rng(cfg, sip_addr, uas, media, events, Box::new(rng))
    }

    /// [`Driver::new`] with a given RNG (tests).
    pub fn with_rng(
        cfg: AgentConfig,
        sip_addr: SocketAddr,
        uas: Option<UasFactory>,
        media: Option<MediaHandlerFactory>,
        events: Sender<CallEvent>,
        rng: Box<dyn RngCore + Send>,
    ) -> Driver {
        let ports = PortPool::new(*cfg.rtp_ports.start(), *cfg.rtp_ports.end());
        Driver {
            ua: UserAgent::new(cfg, sip_addr, uas, media, rng),
            ports,
            port_of: HashMap::new(),
            subscribers: HashMap::new(),
            events,
            options: HashMap::new(),
            registrations: HashMap::new(),
            next_token: 1,
            shutdown: Vec::new(),
            buf: vec![0; 2048],
        }
    }

    /// Carries out an application command.
    pub fn handle_command(&mut self, now: Instant, c: Command) {
        match c {
            Command::Call {
                target,
                dst,
                opts,
                device,
                reply,
                events,
            } => {
                let call = self.ua.call(now, target, dst, opts, device);
                self.subscribers.insert(call, events);
                let _ = reply.try_send(call);
            }
            Command::Hangup(call) => self.ua.hangup(now, call),
            Command::Dtmf(call, digits) => self.ua.send_dtmf(now, call, &digits),
            Command::Media(call, action) => self.ua.media_action(now, call, action),
            Command::Register {
                uri,
                dst,
                aor,
                creds,
                expires,
                reply,
            } => {
                let token = self.token();
                self.registrations.insert(token, reply);
                self.ua
                    .register(now, token, (uri, aor, dst), creds, expires);
            }
            Command::Options { uri, dst, reply } => {
                let token = self.token();
                self.options.insert(token, reply);
                self.ua.options(now, token, &uri, dst);
            }
            Command::Shutdown(tx) => {
                self.shutdown.push(tx);
                self.ua.shutdown(now);
            }
        }
    }

    fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    /// Runs the timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.ua.handle_timeout(now);
    }

    /// When the loop must wake at the latest.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.ua.poll_timeout()
    }

    /// Whether a shutdown finished; the loop should return (the waiting
    /// [`crate::Agent::shutdown`] has been answered).
    pub fn is_done(&mut self, now: Instant) -> bool {
        if !self.ua.is_shut_down(now) {
            return false;
        }
        for tx in self.shutdown.drain(..) {
            let _ = tx.try_send(());
        }
        true
    }

    /// Sends everything due and carries out every event, until the agent has nothing more
    /// to say (the drain rule).
    pub fn flush(&mut self, io: &mut dyn Io) {
        loop {
            let mut progressed = false;
            let now = Instant::now();
            while let Some(out) = self.ua.poll_transmit(now, &mut self.buf) {
                progressed = true;
                match out {
                    Output::Sip(t) => {
                        let (dst, transport) = (t.dst, t.transport);
                        if let Err(e) = io.send_sip(t) {
                            tracing::debug!("send to {dst} failed: {e}");
                            self.ua.handle_transport_error(now, dst, transport);
                        }
                    }
                    Output::Media {
                        call,
                        rtcp,
                        dst,
                        len,
                    } => io.send_media(call, rtcp, dst, &self.buf[..len]),
                }
            }
            while let Some(e) = self.ua.poll_event() {
                progressed = true;
                self.on_event(now, io, e);
            }
            if !progressed {
                break;
            }
        }
    }

    fn on_event(&mut self, now: Instant, io: &mut dyn Io, e: UaEvent) {
        match e {
            UaEvent::Call(ev) => {
                let ended = matches!(ev.kind, CallEventKind::Ended { .. });
                if let Some(tx) = self.subscribers.get(&ev.call) {
                    let _ = tx.try_send(ev.clone());
                }
                if ended {
                    self.subscribers.remove(&ev.call);
                }
                let _ = self.events.try_send(ev);
            }
            UaEvent::OpenMedia { call } => {
                let ip = self.ua.advertised_ip();
                let bound = self.ports.bind(ip).and_then(|pair| {
                    let port = pair.port;
                    match io.open_media(call, pair) {
                        Ok(()) => Ok(port),
                        Err(e) => {
                            self.ports.release(port);
                            Err(e)
                        }
                    }
                });
                match bound {
                    Ok(port) => {
                        self.port_of.insert(call, port);
                        self.ua.media_ready(now, call, port);
                    }
                    Err(e) => self.ua.media_failed(now, call, &e.to_string()),
                }
            }
            UaEvent::CloseMedia { call } => {
                io.close_media(call);
                if let Some(port) = self.port_of.remove(&call) {
                    self.ports.release(port);
                }
            }
            UaEvent::ReadFile { call, path } => {
                let r = std::fs::read(&path).map_err(|e| e.to_string());
                self.ua.file_read(now, call, &path, r);
            }
            UaEvent::WriteFile { call, path, data } => {
                let r = std::fs::write(&path, data).map_err(|e| e.to_string());
                self.ua.file_written(now, call, &path, r);
            }
            UaEvent::Options { token, result } => {
                if let Some(tx) = self.options.remove(&token) {
                    let _ = tx.try_send(result);
                }
            }
            UaEvent::Registration { token, result } => {
                if let Some(tx) = self.registrations.remove(&token) {
                    let _ = tx.try_send(result);
                }
            }
        }
    }
}
