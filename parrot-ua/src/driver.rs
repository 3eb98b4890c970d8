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
use crate::sender::MediaSender;
use crate::ua::{Output, UaEvent, UserAgent};
use async_channel::Sender;
use parrot_proto::{ConnectionId, Transmit, Transport};
use parrot_transport::{SipData, StreamKind, StreamLayer, TlsClient, TlsServer};
use rand_core::{RngCore, SeedableRng};
use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::time::Instant;

/// The sockets of an adapter, as the driver needs them.
pub trait Io {
    /// Sends a datagram from the SIP UDP socket.
    fn send_udp(&mut self, dst: SocketAddr, data: &[u8]) -> io::Result<()>;
    /// Sends a call's RTP (or RTCP) packet from its socket.
    fn send_media(&mut self, call: u64, rtcp: bool, dst: SocketAddr, data: &[u8]);
    /// Takes over a call's freshly bound (non-blocking) media sockets and starts reading them.
    fn open_media(&mut self, call: u64, pair: PortPair) -> io::Result<()>;
    /// Stops reading and closes a call's media sockets.
    fn close_media(&mut self, call: u64);
    /// Keeps a call's media sockets (bound on `port`) open and registered for a later call
    /// instead of closing them, dropping whatever arrives on them meanwhile; returns whether
    /// it did (else the driver calls [`Io::close_media`]). Saves a later call the system
    /// calls that bind, register, deregister and close two sockets.
    fn park_media(&mut self, call: u64, port: u16) -> bool {
        let _ = (call, port);
        false
    }
    /// Hands the sockets parked on `port` to `call`, after discarding what queued on them;
    /// returns whether there were any.
    fn reuse_media(&mut self, port: u16, call: u64) -> bool {
        let _ = (port, call);
        false
    }
    /// Closes the sockets parked on `port`.
    fn close_parked(&mut self, port: u16) {
        let _ = port;
    }
    /// A call's RTP (or RTCP) socket, shared, asked for once the call's sockets are open: the
    /// driver's [`MediaSender`] threads then send the call's packets from it (`None`: the
    /// driver calls [`Io::send_media`] instead, on the loop's thread).
    fn media_socket(&self, call: u64, rtcp: bool) -> Option<&Arc<UdpSocket>> {
        let _ = (call, rtcp);
        None
    }
    /// Starts a TCP connection to `dst` for `conn`. When it is up, the adapter calls
    /// [`Driver::conn_connected`]; if it fails, [`Driver::conn_closed`].
    fn connect(&mut self, conn: ConnectionId, dst: SocketAddr) -> io::Result<()>;
    /// Writes raw bytes (TLS records, WebSocket frames, or plain SIP on TCP) on a connection.
    fn conn_write(&mut self, conn: ConnectionId, data: &[u8]) -> io::Result<()>;
    /// Closes a connection (after what was written has gone out, where the adapter can).
    fn conn_close(&mut self, conn: ConnectionId);
}

/// How long a call's media sockets stay parked before another call gets them: longer than
/// packets of the old call take to arrive, so the new one does not hear them (and whatever
/// queued meanwhile is discarded at reuse).
const PARK_QUARANTINE: std::time::Duration = std::time::Duration::from_millis(500);
/// The first media packets of each [`Driver::flush`] that are already due go out from the
/// loop's own thread; only the rest (and every packet written ahead of time) wake a
/// [`MediaSender`] thread. A flush with a packet or two that cannot wait (a call's first
/// packets, an RTCP BYE) then costs no hand-off.
const INLINE_PER_FLUSH: usize = 4;

/// [`AgentConfig::media_lookahead`] when it is not set and media has threads of its own:
/// more than the loop is seen held up for on a busy two-core machine (5-10 ms), well under
/// what a listener could notice.
const DEFAULT_LOOKAHEAD: std::time::Duration = std::time::Duration::from_millis(10);

/// At most this many socket pairs parked (two descriptors each): every pair ended in the
/// last [`PARK_QUARANTINE`] at up to 16,000 calls a second, the whole of the default RTP range.
/// With fewer, a server ending calls faster than the cap per quarantine (2,048 pairs: 4,096
/// calls a second) closes the pairs it cannot park and binds new ones for most of its calls
/// (at 7,000 calls a second, four in ten): twelve more system calls per call on the loop's
/// thread (two each of socket, bind, ioctl, epoll_ctl to add and to remove, close). A parked
/// pair holds two descriptors and, in the adapters, a reader task (about 4 KB).
const MAX_PARKED: usize = 8192;
const _: () = assert!(
    MAX_PARKED as u128 >= PARK_QUARANTINE.as_millis() * 16,
    "the parked pairs cover the quarantine at 16,000 calls a second"
);

/// The sockets an agent listens on, bound and non-blocking, for the adapter to register.
#[derive(Debug)]
pub struct Bound {
    /// The SIP UDP socket.
    pub udp: UdpSocket,
    /// Stream listeners: TCP on the UDP port (when `tcp`), then each of `streams`.
    pub listeners: Vec<(StreamKind, TcpListener)>,
}

impl Bound {
    /// Binds what `cfg` asks for. TLS and WSS listeners need `cfg.tls_server`.
    pub fn bind(cfg: &AgentConfig) -> io::Result<Bound> {
        // With port 0, the UDP port the system picks may be the local end of some TCP
        // connection, and TCP cannot listen on it: pick again.
        let mut tries = if cfg.bind.port() == 0 && cfg.tcp {
            8
        } else {
            1
        };
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind(cfg.bind)?;
            let at = udp.local_addr()?;
            if !cfg.tcp {
                break (udp, None);
            }
            match TcpListener::bind(at) {
                Ok(t) => break (udp, Some(t)),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && tries > 1 => tries -= 1,
                Err(e) => return Err(e),
            }
        };
        udp.set_nonblocking(true)?;
        grow_buffers(&udp);
        let mut listeners = Vec::new();
        if let Some(t) = tcp {
            listeners.push((StreamKind::Tcp, t));
        }
        for &(kind, addr) in &cfg.streams {
            if kind.is_secure() && cfg.tls_server.is_none() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("a {kind:?} listener needs a TLS certificate"),
                ));
            }
            listeners.push((kind, TcpListener::bind(addr)?));
        }
        for (_, l) in &listeners {
            l.set_nonblocking(true)?;
        }
        Ok(Bound { udp, listeners })
    }

    /// The UDP address.
    pub fn udp_addr(&self) -> io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    /// Every stream listener's kind and address.
    pub fn stream_addrs(&self) -> Vec<(StreamKind, SocketAddr)> {
        self.listeners
            .iter()
            .filter_map(|(k, l)| Some((*k, l.local_addr().ok()?)))
            .collect()
    }
}

/// How much the SIP UDP socket may queue each way. The system default (about 208 KiB, some
/// 300 INVITEs) overflows in a burst of a few milliseconds at thousands of calls a second,
/// and every datagram lost then costs a retransmission 500 ms later; SIPp's load runs use
/// the same 4 MiB (`-buff_size`). The system caps it at `net.core.rmem_max`/`wmem_max`.
const SIP_SOCKET_BUFFER: usize = 4 << 20;

/// Asks for [`SIP_SOCKET_BUFFER`] on the SIP UDP socket; best effort (the default stays on
/// failure).
fn grow_buffers(udp: &UdpSocket) {
    #[cfg(unix)]
    {
        use rustix::net::sockopt;
        if sockopt::set_socket_recv_buffer_size(udp, SIP_SOCKET_BUFFER).is_err()
            || sockopt::set_socket_send_buffer_size(udp, SIP_SOCKET_BUFFER).is_err()
        {
            tracing::debug!("cannot grow the SIP socket's buffers");
        }
    }
    #[cfg(not(unix))]
    let _ = udp;
}

/// One stream connection: its TLS / WebSocket layer and where it goes.
struct Conn {
    layer: StreamLayer,
    remote: SocketAddr,
    /// Known to the endpoint (accepted, or connected).
    open: bool,
}

/// The loop's state; see the [module docs](self).
pub struct Driver {
    /// The sans-IO user agent.
    pub ua: UserAgent,
    ports: PortPool,
    /// Each call's open socket pair, by its RTP port.
    port_of: crate::CallMap<u16>,
    /// Socket pairs the adapter keeps open for reuse ([`Io::park_media`]), oldest first,
    /// with when they were parked.
    parked: std::collections::VecDeque<(u16, Instant)>,
    subscribers: crate::CallMap<Sender<CallEvent>>,
    events: Sender<CallEvent>,
    options: HashMap<u64, Sender<Result<crate::OptionsReply, String>>>,
    registrations: HashMap<u64, Sender<Result<u32, u16>>>,
    next_token: u64,
    shutdown: Vec<Sender<()>>,
    buf: Vec<u8>,
    conns: HashMap<ConnectionId, Conn>,
    by_remote: HashMap<(SocketAddr, Transport), ConnectionId>,
    next_conn: u64,
    tls_server: Option<TlsServer>,
    tls_client: Option<TlsClient>,
    rng: rand_chacha::ChaCha20Rng,
    pending_conns: Vec<ConnectionId>,
    out_conns: Vec<ConnectionId>,
    failed_conns: Vec<ConnectionId>,
    /// Sends media on threads of their own ([`AgentConfig::media_threads`]).
    sender: Option<MediaSender>,
}

impl Driver {
    /// A driver for an agent bound as `bound` says; call events go to `events`. The RNG is
    /// seeded from the operating system.
    pub fn new(
        cfg: AgentConfig,
        bound: &Bound,
        uas: Option<UasFactory>,
        media: Option<MediaHandlerFactory>,
        events: Sender<CallEvent>,
    ) -> io::Result<Driver> {
        let rng = rand_chacha::ChaCha20Rng::from_os_rng();
        Driver::with_rng(cfg, bound, uas, media, events, Box::new(rng))
    }

    /// [`Driver::new`] with a given RNG (tests).
    pub fn with_rng(
        cfg: AgentConfig,
        bound: &Bound,
        uas: Option<UasFactory>,
        media: Option<MediaHandlerFactory>,
        events: Sender<CallEvent>,
        mut rng: Box<dyn RngCore + Send>,
    ) -> io::Result<Driver> {
        let mut cfg = cfg;
        let ports = PortPool::new(*cfg.rtp_ports.start(), *cfg.rtp_ports.end());
        let streams: Vec<(Transport, SocketAddr)> = bound
            .stream_addrs()
            .into_iter()
            .map(|(k, a)| (k.transport(), a))
            .collect();
        let (tls_server, tls_client) = (cfg.tls_server.clone(), cfg.tls_client.clone());
        let conn_rng = rand_chacha::ChaCha20Rng::seed_from_u64(rng.next_u64());
        #[cfg(unix)]
        if let Some(p) = cfg.realtime {
            // The driver is built on the thread that runs the loop.
            crate::realtime::enter(p.saturating_add(1), "SIP/media loop");
        }
        let sender = if cfg.media_threads > 0 {
            Some(MediaSender::with_priority(
                "parrot-media-tx",
                cfg.media_threads,
                cfg.realtime,
            )?)
        } else {
            None
        };
        // Only sending threads can hold a packet until it is due.
        cfg.media_lookahead = Some(match sender {
            Some(_) => cfg.media_lookahead.unwrap_or(DEFAULT_LOOKAHEAD),
            None => std::time::Duration::ZERO,
        });
        Ok(Driver {
            ua: UserAgent::new(cfg, bound.udp_addr()?, &streams, uas, media, rng),
            ports,
            port_of: crate::CallMap::default(),
            parked: std::collections::VecDeque::new(),
            subscribers: crate::CallMap::default(),
            events,
            options: HashMap::new(),
            registrations: HashMap::new(),
            next_token: 1,
            shutdown: Vec::new(),
            buf: vec![0; 2048],
            conns: HashMap::new(),
            by_remote: HashMap::new(),
            next_conn: 1,
            tls_server,
            tls_client,
            rng: conn_rng,
            pending_conns: Vec::new(),
            out_conns: Vec::new(),
            failed_conns: Vec::new(),
            sender,
        })
    }

    // ----- stream connections ----------------------------------------------------------

    /// The adapter accepted a connection on a listener of `kind`. Returns its id, or `None`
    /// when the connection cannot be served (the adapter closes it).
    pub fn conn_accepted(
        &mut self,
        now: Instant,
        kind: StreamKind,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Option<ConnectionId> {
        let _ = now;
        let layer = match StreamLayer::accept(kind, self.tls_server.as_ref()) {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!("connection from {remote} refused: {e}");
                return None;
            }
        };
        let id = self.new_conn_id();
        self.conns.insert(
            id,
            Conn {
                layer,
                remote,
                open: true,
            },
        );
        self.by_remote.insert((remote, kind.transport()), id);
        self.ua
            .handle_connection_opened(id, local, remote, kind.transport());
        Some(id)
    }

    /// An outgoing connection asked for with [`Io::connect`] is up.
    pub fn conn_connected(&mut self, now: Instant, conn: ConnectionId, local: SocketAddr) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.open = true;
        let (remote, t) = (c.remote, c.layer.transport());
        self.ua.handle_connection_opened(conn, local, remote, t);
        self.pending_conns.push(conn);
        let _ = now;
    }

    /// Raw bytes arrived on a connection. Empty `data` means the peer closed its side (EOF):
    /// the layer is told, so a TLS or WebSocket close is told apart from a cut connection;
    /// [`Driver::conn_closed`] is still due when the socket is gone.
    pub fn conn_data(&mut self, now: Instant, conn: ConnectionId, data: &[u8]) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let r = if data.is_empty() {
            c.layer.handle_eof();
            Ok(())
        } else {
            c.layer.handle_input(data)
        };
        if let Err(e) = r {
            tracing::debug!("connection {conn:?}: {e}");
            self.failed_conns.push(conn);
        }
        self.pending_conns.push(conn);
        self.pump_conns(now);
    }

    /// A connection closed (by the peer, or a connect failed).
    pub fn conn_closed(&mut self, now: Instant, conn: ConnectionId) {
        if let Some(c) = self.conns.remove(&conn) {
            self.by_remote.retain(|_, v| *v != conn);
            if c.open {
                self.ua.handle_connection_closed(now, conn);
            }
            if !c.open || !c.layer.is_established() {
                // Never got as far as carrying SIP (connect or TLS/WebSocket handshake failed):
                // what was waiting to go fails now rather than at Timer B/F (§18.4).
                self.ua
                    .handle_transport_error(now, c.remote, c.layer.transport());
            }
        }
    }

    fn new_conn_id(&mut self) -> ConnectionId {
        let id = ConnectionId(self.next_conn);
        self.next_conn += 1;
        id
    }

    /// Hands SIP data that arrived on connections to the user agent.
    fn pump_conns(&mut self, now: Instant) {
        let ids = std::mem::take(&mut self.pending_conns);
        for &id in &ids {
            while let Some(data) = self
                .conns
                .get_mut(&id)
                .filter(|c| c.open)
                .and_then(|c| c.layer.poll_sip())
            {
                match data {
                    SipData::Stream(b) => self.ua.handle_stream_bytes(now, id, &b),
                    SipData::Message(b) => self.ua.handle_message_on_connection(now, id, b),
                }
            }
            if !self.out_conns.contains(&id) {
                self.out_conns.push(id);
            }
        }
    }

    /// Writes what connections' layers have to send, and closes the finished ones.
    fn write_conns(&mut self, now: Instant, io: &mut dyn Io) {
        let ids = std::mem::take(&mut self.out_conns);
        for id in ids {
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            let mut failed = false;
            while let Some(bytes) = c.layer.poll_output() {
                if io.conn_write(id, &bytes).is_err() {
                    failed = true;
                    break;
                }
            }
            if failed || c.layer.is_closed() || self.failed_conns.contains(&id) {
                io.conn_close(id);
                self.conn_closed(now, id);
            }
        }
        self.failed_conns.clear();
    }

    /// Sends a SIP message on a stream: on its connection, on one to the same peer, or on a
    /// new one.
    fn send_stream(&mut self, io: &mut dyn Io, t: Transmit) -> io::Result<()> {
        let id = t
            .conn
            .filter(|c| self.conns.contains_key(c))
            .or_else(|| self.by_remote.get(&(t.dst, t.transport)).copied());
        let id = match id {
            Some(id) => id,
            None => {
                let kind = StreamKind::from_transport(t.transport)
                    .ok_or_else(|| io::Error::from(io::ErrorKind::Unsupported))?;
                let host = t.dst.ip().to_string();
                let ws_host = t.dst.to_string();
                let layer = StreamLayer::connect(
                    kind,
                    self.tls_client.as_ref(),
                    &host,
                    &ws_host,
                    "/",
                    &mut self.rng,
                )
                .map_err(|e| io::Error::other(e.to_string()))?;
                let id = self.new_conn_id();
                io.connect(id, t.dst)?;
                self.conns.insert(
                    id,
                    Conn {
                        layer,
                        remote: t.dst,
                        open: false,
                    },
                );
                self.by_remote.insert((t.dst, t.transport), id);
                id
            }
        };
        let Some(c) = self.conns.get_mut(&id) else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        c.layer
            .send_sip(&t.payload)
            .map_err(|e| io::Error::other(e.to_string()))?;
        if !self.out_conns.contains(&id) {
            self.out_conns.push(id);
        }
        Ok(())
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

    /// Every application handle is gone (the command channel closed): shut down as if asked.
    pub fn handles_gone(&mut self, now: Instant) {
        let (tx, _rx) = async_channel::bounded(1);
        self.handle_command(now, Command::Shutdown(tx));
    }

    /// The calls whose media sockets are open (to close them when the loop ends).
    pub fn open_media(&self) -> Vec<u64> {
        self.port_of.keys().copied().collect()
    }

    /// Runs the timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.ua.handle_timeout(now);
    }

    /// When the loop must wake at the latest.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.ua.poll_timeout()
    }

    /// Whether a shutdown was asked for (then [`Driver::is_done`] tells when it has finished):
    /// a loop asks this first, and reads the clock for `is_done` only then.
    pub fn is_shutting_down(&self) -> bool {
        self.ua.is_shutting_down()
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
        let mut inline = INLINE_PER_FLUSH;
        // One clock read for the whole flush: its passes follow each other within
        // microseconds.
        let now = Instant::now();
        loop {
            let mut progressed = false;
            if !self.pending_conns.is_empty() {
                progressed = true;
                self.pump_conns(now);
            }
            // Sending what `poll_transmit` hands out gives the agent nothing new to do (its
            // own follow-ups, such as a call finalized once its last packet is out, are events,
            // drained below): only a failed send, connections and events call for another
            // pass.
            while let Some(out) = self.ua.poll_transmit(now, &mut self.buf) {
                match out {
                    Output::Sip(t) => {
                        let (dst, transport) = (t.dst, t.transport);
                        let r = if transport == Transport::Udp {
                            // A full socket buffer drops the datagram like the network would;
                            // retransmission covers it (§17.1.1.2).
                            match io.send_udp(dst, &t.payload) {
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
                                r => r,
                            }
                        } else {
                            self.send_stream(io, t)
                        };
                        if let Err(e) = r {
                            tracing::debug!("send to {dst} failed: {e}");
                            self.ua.handle_transport_error(now, dst, transport);
                            progressed = true;
                        }
                    }
                    Output::Media {
                        call,
                        rtcp,
                        dst,
                        len,
                        due,
                    } => {
                        let data = &self.buf[..len];
                        let threaded = self.sender.as_mut().zip(io.media_socket(call, rtcp));
                        match threaded {
                            Some((sender, socket)) if inline == 0 || due > now => {
                                sender.push(socket, dst, data, due)
                            }
                            _ => {
                                inline = inline.saturating_sub(1);
                                io.send_media(call, rtcp, dst, data)
                            }
                        }
                    }
                }
            }
            if !self.out_conns.is_empty() {
                progressed = true;
                self.write_conns(now, io);
            }
            while let Some(e) = self.ua.poll_event() {
                progressed = true;
                self.on_event(now, io, e);
            }
            if !progressed {
                break;
            }
        }
        if let Some(sender) = &mut self.sender {
            sender.flush();
        }
    }

    /// A parked port for `call`, if one has been parked for `quarantine`.
    fn reuse_parked(
        &mut self,
        now: Instant,
        io: &mut dyn Io,
        call: u64,
        quarantine: std::time::Duration,
    ) -> Option<u16> {
        while let Some(&(port, at)) = self.parked.front() {
            if now.saturating_duration_since(at) < quarantine {
                return None;
            }
            self.parked.pop_front();
            if io.reuse_media(port, call) {
                return Some(port);
            }
            io.close_parked(port);
            self.ports.release(port);
        }
        None
    }

    /// `call`'s sockets are open (freshly bound or reused on `port`): the agent goes on with
    /// the call.
    fn media_opened(&mut self, now: Instant, call: u64, port: u16) {
        self.port_of.insert(call, port);
        self.ua.media_ready(now, call, port);
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
                if let Some(pair) = self.reuse_parked(now, io, call, PARK_QUARANTINE) {
                    self.media_opened(now, call, pair);
                    return;
                }
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
                // Every port taken: a parked pair still in quarantine beats refusing the call.
                let bound = bound.or_else(|e| {
                    self.reuse_parked(now, io, call, std::time::Duration::ZERO)
                        .ok_or(e)
                });
                match bound {
                    Ok(pair) => self.media_opened(now, call, pair),
                    Err(e) => self.ua.media_failed(now, call, &e.to_string()),
                }
            }
            UaEvent::CloseMedia { call } => match self.port_of.remove(&call) {
                Some(port) if self.parked.len() < MAX_PARKED && io.park_media(call, port) => {
                    self.parked.push_back((port, now));
                }
                Some(port) => {
                    io.close_media(call);
                    self.ports.release(port);
                }
                None => io.close_media(call),
            },
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
