//! The SIP side: one [`Endpoint`] driven by UDP and TCP sockets on a thread of its own, and the
//! glue that gives each call its media task.

use crate::guard::GuardedHandler;
use crate::media::{
    AudioDevice, BuiltinFiles, DecodedFiles, MediaCmd, MediaNotice, MediaTask, MediaTotals,
};
use crate::ports::{PortPair, PortPool};
use bytes::Bytes;
use parrot_media_core::handler::{DefaultHandler, MediaAction, MediaHandler};
use parrot_media_core::session::{MediaConfig, MediaSession, RecordMode, Role as MediaRole};
use parrot_proto::auth::DigestCredentials;
use parrot_proto::{
    Body, ConnectionId, DialogId, EndReason, Endpoint, EndpointConfig, Event, HeaderName,
    InviteRequest, RegisterRequest, RegistrationId, Reply, RequestId, Transmit, Transport,
    UasHandler, Uri,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};

/// Makes the SIP handler of each call (and the endpoint-wide one). Handlers run on the
/// endpoint's thread, so they need not be `Send`; the factory must be.
pub type UasFactory = Box<dyn FnMut() -> Box<dyn UasHandler> + Send>;

/// Makes the media handler of each call, given its number and whether we answered it.
pub type MediaHandlerFactory =
    Box<dyn FnMut(u64, MediaRole) -> Box<dyn MediaHandler + Send> + Send>;

/// How an [`Agent`] is set up.
#[derive(Clone)]
pub struct AgentConfig {
    /// SIP address to bind (UDP, and TCP on the same port when `tcp`).
    pub bind: SocketAddr,
    /// Listen on TCP too.
    pub tcp: bool,
    /// RTP ports (even ports and the odd one after each for RTCP).
    pub rtp_ports: RangeInclusive<u16>,
    /// Address written in SDP and Contact; the bind address when it is specific, else
    /// 127.0.0.1.
    pub advertised_ip: Option<IpAddr>,
    /// User-Agent / Server header.
    pub user_agent: String,
    /// Answer incoming calls that no SIP handler answered with 200 and an SDP answer.
    pub auto_answer: bool,
    /// Files `Play` may name without touching the disk.
    pub builtin_files: Vec<(String, Bytes)>,
    /// The core's configuration (timers, caps, allowed methods); addresses are filled in.
    pub endpoint: EndpointConfig,
}

impl AgentConfig {
    /// Defaults: UDP and TCP on `bind`, RTP ports 16384-32767, auto-answer on.
    pub fn new(bind: SocketAddr) -> Self {
        AgentConfig {
            bind,
            tcp: true,
            rtp_ports: 16384..=32767,
            advertised_ip: None,
            user_agent: format!("Parrot/{}", env!("CARGO_PKG_VERSION")),
            auto_answer: true,
            builtin_files: Vec::new(),
            endpoint: EndpointConfig::default(),
        }
    }
}

/// Options of an outgoing call.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// From URI; default `sip:parrot@<our address>`.
    pub from: Option<String>,
    /// Digest credentials for 401/407.
    pub credentials: Option<(String, String)>,
    /// Use TCP instead of UDP.
    pub tcp: bool,
    /// Extra header lines.
    pub headers: Vec<(String, String)>,
}

/// Who ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndedBy {
    /// We hung up (or our handler did).
    Local,
    /// The peer hung up or cancelled.
    Remote,
    /// It never got established or failed (timeout, rejection, transport error).
    Failure,
}

/// What happened to a call, one event per step, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEventKind {
    /// An INVITE arrived.
    Incoming {
        /// From URI.
        from: String,
        /// To URI.
        to: String,
        /// Call-ID.
        call_id: String,
    },
    /// A provisional response to our INVITE.
    Progress(u16),
    /// The call is answered and media flows with this codec (`PCMU/8000`).
    Answered {
        /// The codec.
        codec: String,
    },
    /// A DTMF digit from the peer.
    Dtmf(char),
    /// A file finished playing.
    PlayComplete(String),
    /// A recording was written.
    Recorded(PathBuf),
    /// Our INVITE failed with this status (408 for a timeout).
    Failed(u16),
    /// The call is over.
    Ended {
        /// Who ended it.
        by: EndedBy,
        /// Time since the INVITE.
        duration: Duration,
        /// Media counters.
        media: MediaTotals,
    },
}

/// One step of one call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallEvent {
    /// The call's number in this agent (1, 2, ...).
    pub call: u64,
    /// The step.
    pub kind: CallEventKind,
}

/// How an outgoing call ended.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutcome {
    /// Whether it was answered.
    pub answered: bool,
    /// The failure status if it was not.
    pub status: Option<u16>,
    /// Who ended it.
    pub ended_by: EndedBy,
    /// Media counters.
    pub media: MediaTotals,
    /// Every event of the call.
    pub events: Vec<CallEvent>,
}

/// A call placed with [`Agent::call`].
pub struct CallHandle {
    dialog: DialogId,
    number: u64,
    cmds: mpsc::UnboundedSender<Command>,
    events: mpsc::UnboundedReceiver<CallEvent>,
    seen: Vec<CallEvent>,
}

impl CallHandle {
    /// The call's number in this agent.
    pub fn number(&self) -> u64 {
        self.number
    }
    /// The next event of this call (`None` once it has ended).
    pub async fn next_event(&mut self) -> Option<CallEvent> {
        let e = self.events.recv().await?;
        self.seen.push(e.clone());
        Some(e)
    }
    /// Hangs up: BYE once answered, CANCEL before.
    pub fn hangup(&self) {
        let _ = self.cmds.send(Command::Hangup(self.dialog));
    }
    /// Sends DTMF digits (RFC 4733), one after another.
    pub fn send_dtmf(&self, digits: &str) {
        let _ = self
            .cmds
            .send(Command::Media(self.dialog, MediaCmd::Dtmf(digits.into())));
    }
    /// Plays a file (WAV) to the peer.
    pub fn play(&self, path: &str) {
        let _ = self.cmds.send(Command::Media(
            self.dialog,
            MediaCmd::Action(MediaAction::play(path)),
        ));
    }
    /// Records what the peer sends to a WAV file, until the call ends.
    pub fn record(&self, path: &str) {
        let _ = self.cmds.send(Command::Media(
            self.dialog,
            MediaCmd::Action(MediaAction::StartRecording(path.into())),
        ));
    }
    /// Waits for the end of the call.
    pub async fn wait(mut self) -> CallOutcome {
        while self.next_event().await.is_some() {}
        let mut out = CallOutcome {
            answered: false,
            status: None,
            ended_by: EndedBy::Failure,
            media: MediaTotals::default(),
            events: Vec::new(),
        };
        for e in &self.seen {
            match &e.kind {
                CallEventKind::Answered { .. } => out.answered = true,
                CallEventKind::Failed(s) => out.status = Some(*s),
                CallEventKind::Ended { by, media, .. } => {
                    out.ended_by = *by;
                    out.media = *media;
                }
                _ => {}
            }
        }
        out.events = std::mem::take(&mut self.seen);
        out
    }
}

/// The answer to [`Agent::options`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionsReply {
    /// Status code.
    pub status: u16,
    /// Round-trip time.
    pub rtt: Duration,
    /// The peer's Allow.
    pub allow: Vec<String>,
    /// The peer's Supported.
    pub supported: Vec<String>,
    /// The peer's User-Agent or Server.
    pub agent: Option<String>,
}

enum Command {
    Call {
        target: String,
        dst: SocketAddr,
        opts: CallOptions,
        device: Option<Box<dyn AudioDevice>>,
        reply: oneshot::Sender<io::Result<(DialogId, u64)>>,
        events: mpsc::UnboundedSender<CallEvent>,
    },
    Hangup(DialogId),
    Media(DialogId, MediaCmd),
    Register {
        uri: String,
        dst: SocketAddr,
        aor: String,
        creds: Option<(String, String)>,
        expires: u32,
        reply: oneshot::Sender<Result<u32, u16>>,
    },
    Options {
        uri: String,
        dst: SocketAddr,
        reply: oneshot::Sender<Result<OptionsReply, String>>,
    },
    Shutdown(oneshot::Sender<()>),
}

/// A running SIP user agent: server, client or both.
pub struct Agent {
    cmds: mpsc::UnboundedSender<Command>,
    events: Option<mpsc::UnboundedReceiver<CallEvent>>,
    udp: SocketAddr,
    tcp: Option<SocketAddr>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Agent {
    /// Binds the sockets and starts the endpoint. `uas` makes the SIP handler of each incoming
    /// call (none: every call is auto-answered when `auto_answer`); `media` makes the media
    /// handler of each call (none: a handler that sends silence).
    pub async fn start(
        config: AgentConfig,
        uas: Option<UasFactory>,
        media: Option<MediaHandlerFactory>,
    ) -> io::Result<Agent> {
        let udp = UdpSocket::bind(config.bind).await?;
        let udp_addr = udp.local_addr()?;
        let tcp = if config.tcp {
            Some(TcpListener::bind(udp_addr).await?)
        } else {
            None
        };
        let tcp_addr = tcp.as_ref().and_then(|t| t.local_addr().ok());
        let udp = udp.into_std()?;
        let tcp = tcp.map(|t| t.into_std()).transpose()?;
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let media_rt = tokio::runtime::Handle::current();
        let cmd_loop = cmd_tx.clone();
        let thread = std::thread::Builder::new()
            .name("parrot-sip".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!("cannot start the SIP runtime: {e}");
                        return;
                    }
                };
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, async move {
                    let udp = match UdpSocket::from_std(udp) {
                        Ok(u) => u,
                        Err(e) => {
                            tracing::error!("UDP socket: {e}");
                            return;
                        }
                    };
                    let tcp = tcp.and_then(|t| TcpListener::from_std(t).ok());
                    let driver =
                        Driver::new(config, uas, media, udp, tcp, ev_tx, media_rt, cmd_loop);
                    driver.run(cmd_rx).await;
                });
            })?;
        Ok(Agent {
            cmds: cmd_tx,
            events: Some(ev_rx),
            udp: udp_addr,
            tcp: tcp_addr,
            thread: Some(thread),
        })
    }

    /// The UDP address SIP listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.udp
    }

    /// The TCP address SIP listens on, if any.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp
    }

    /// The events of every call, in order. Can be taken once.
    pub fn take_events(&mut self) -> Option<mpsc::UnboundedReceiver<CallEvent>> {
        self.events.take()
    }

    /// Places a call to `uri` (`sip:user@host[:port]`).
    pub async fn call(&self, uri: &str, opts: CallOptions) -> io::Result<CallHandle> {
        self.call_inner(uri, opts, None).await
    }

    /// Places a call whose audio comes from and goes to `device` (a microphone and speakers,
    /// see `parrot-cpal`, or any [`AudioDevice`]).
    pub async fn call_with_device(
        &self,
        uri: &str,
        opts: CallOptions,
        device: impl AudioDevice,
    ) -> io::Result<CallHandle> {
        self.call_inner(uri, opts, Some(Box::new(device))).await
    }

    async fn call_inner(
        &self,
        uri: &str,
        opts: CallOptions,
        device: Option<Box<dyn AudioDevice>>,
    ) -> io::Result<CallHandle> {
        let dst = resolve(uri).await?;
        let (reply, rx) = oneshot::channel();
        let (etx, erx) = mpsc::unbounded_channel();
        self.cmds
            .send(Command::Call {
                target: uri.to_owned(),
                dst,
                opts,
                device,
                reply,
                events: etx,
            })
            .map_err(|_| io::Error::other("agent stopped"))?;
        let (dialog, number) = rx.await.map_err(|_| io::Error::other("agent stopped"))??;
        Ok(CallHandle {
            dialog,
            number,
            cmds: self.cmds.clone(),
            events: erx,
            seen: Vec::new(),
        })
    }

    /// Registers `aor` with the registrar at `uri`; returns the granted expiry or the failing
    /// status. The binding is refreshed until the agent stops.
    pub async fn register(
        &self,
        uri: &str,
        aor: &str,
        credentials: Option<(String, String)>,
        expires: u32,
    ) -> io::Result<Result<u32, u16>> {
        let dst = resolve(uri).await?;
        let (reply, rx) = oneshot::channel();
        self.cmds
            .send(Command::Register {
                uri: uri.to_owned(),
                dst,
                aor: aor.to_owned(),
                creds: credentials,
                expires,
                reply,
            })
            .map_err(|_| io::Error::other("agent stopped"))?;
        rx.await.map_err(|_| io::Error::other("agent stopped"))
    }

    /// Sends OPTIONS to `uri` and reports the answer and the round-trip time.
    pub async fn options(&self, uri: &str) -> io::Result<Result<OptionsReply, String>> {
        let dst = resolve(uri).await?;
        let (reply, rx) = oneshot::channel();
        self.cmds
            .send(Command::Options {
                uri: uri.to_owned(),
                dst,
                reply,
            })
            .map_err(|_| io::Error::other("agent stopped"))?;
        rx.await.map_err(|_| io::Error::other("agent stopped"))
    }

    /// Ends every live call with BYE (or CANCEL / 503 before the answer), waits up to five
    /// seconds for the endpoint to settle, and stops.
    pub async fn shutdown(mut self) {
        let (tx, rx) = oneshot::channel();
        if self.cmds.send(Command::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

/// Where to send a request for `uri`: its `maddr`, host and port, resolved at the edge (the
/// RFC 3263 rules beyond an A/AAAA lookup are not applied).
async fn resolve(uri: &str) -> io::Result<SocketAddr> {
    let u = Uri::parse(uri)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{uri}: {e}")))?;
    let Uri::Sip(s) = u else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{uri}: only sip: and sips: URIs can be called"),
        ));
    };
    let default_port = if s.is_secure() { 5061 } else { 5060 };
    let port = s.port().unwrap_or(default_port);
    let host = match s.params().value("maddr") {
        Some(m) => m.to_owned(),
        None => match s.host() {
            parrot_proto::uri::Host::Ipv6(h) => h.to_owned(),
            h => h.to_string(),
        },
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let found = tokio::net::lookup_host((host.as_str(), port)).await?.next();
    found.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address")))
}

struct Conn {
    writer: mpsc::UnboundedSender<Bytes>,
}

enum ConnEvent {
    Opened(ConnectionId, SocketAddr, SocketAddr),
    Data(ConnectionId, Vec<u8>),
    Closed(ConnectionId),
}

struct CallEntry {
    number: u64,
    started: Instant,
    answered: bool,
    media: Option<mpsc::UnboundedSender<MediaCmd>>,
    pending: Option<Box<PendingMedia>>,
    events: Option<mpsc::UnboundedSender<CallEvent>>,
    end: Option<EndedBy>,
    outgoing: bool,
}

struct PendingMedia {
    session: MediaSession<Box<dyn MediaHandler + Send>>,
    ports: PortPair,
    cmds: mpsc::UnboundedReceiver<MediaCmd>,
    device: Option<Box<dyn AudioDevice>>,
}

enum Waiter {
    Options(oneshot::Sender<Result<OptionsReply, String>>, Instant),
}

struct Driver {
    ep: Endpoint,
    cfg: AgentConfig,
    udp: UdpSocket,
    udp_addr: SocketAddr,
    tcp: Option<TcpListener>,
    advertised: IpAddr,
    conns: HashMap<ConnectionId, Conn>,
    by_remote: HashMap<SocketAddr, ConnectionId>,
    next_conn: u64,
    conn_tx: mpsc::UnboundedSender<ConnEvent>,
    conn_rx: mpsc::UnboundedReceiver<ConnEvent>,
    calls: HashMap<DialogId, CallEntry>,
    by_number: HashMap<u64, DialogId>,
    next_number: u64,
    waiters: HashMap<RequestId, Waiter>,
    registrations: HashMap<RegistrationId, oneshot::Sender<Result<u32, u16>>>,
    ports: PortPool,
    media_rt: tokio::runtime::Handle,
    media_factory: Option<MediaHandlerFactory>,
    files: BuiltinFiles,
    decoded: DecodedFiles,
    notice_tx: mpsc::UnboundedSender<(u64, MediaNotice)>,
    notice_rx: mpsc::UnboundedReceiver<(u64, MediaNotice)>,
    events: mpsc::UnboundedSender<CallEvent>,
    rng: ChaCha20Rng,
    shutdown: Option<(oneshot::Sender<()>, Instant)>,
    _cmd_loop: mpsc::UnboundedSender<Command>,
}

impl Driver {
    #[allow(clippy::too_many_arguments)]
    fn new(
        mut cfg: AgentConfig,
        uas: Option<UasFactory>,
        media: Option<MediaHandlerFactory>,
        udp: UdpSocket,
        tcp: Option<TcpListener>,
        events: mpsc::UnboundedSender<CallEvent>,
        media_rt: tokio::runtime::Handle,
        cmd_loop: mpsc::UnboundedSender<Command>,
    ) -> Driver {
        let udp_addr = udp.local_addr().unwrap_or(cfg.bind);
        let advertised = cfg
            .advertised_ip
            .unwrap_or(if udp_addr.ip().is_unspecified() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                udp_addr.ip()
            });
        let shown = SocketAddr::new(advertised, udp_addr.port());
        cfg.endpoint.local_addrs = vec![(Transport::Udp, shown), (Transport::Tcp, shown)];
        cfg.endpoint.user_agent = Some(cfg.user_agent.clone());
        let mut rng = ChaCha20Rng::from_os_rng();
        let mut ep = Endpoint::new(
            cfg.endpoint.clone(),
            Box::new(ChaCha20Rng::seed_from_u64(rng.next_u64())) as Box<dyn RngCore + Send>,
        );
        if let Some(mut f) = uas {
            ep.set_uas_handler_factory(move || -> Box<dyn UasHandler> {
                Box::new(GuardedHandler(f()))
            });
        }
        let (conn_tx, conn_rx) = mpsc::unbounded_channel();
        let (notice_tx, notice_rx) = mpsc::unbounded_channel();
        let files = Arc::new(cfg.builtin_files.iter().cloned().collect());
        let ports = PortPool::new(*cfg.rtp_ports.start(), *cfg.rtp_ports.end());
        Driver {
            ep,
            udp,
            udp_addr,
            tcp,
            advertised,
            conns: HashMap::new(),
            by_remote: HashMap::new(),
            next_conn: 1,
            conn_tx,
            conn_rx,
            calls: HashMap::new(),
            by_number: HashMap::new(),
            next_number: 1,
            waiters: HashMap::new(),
            registrations: HashMap::new(),
            ports,
            media_rt,
            media_factory: media,
            files,
            decoded: DecodedFiles::default(),
            notice_tx,
            notice_rx,
            events,
            rng,
            shutdown: None,
            _cmd_loop: cmd_loop,
            cfg,
        }
    }

    async fn run(mut self, mut cmds: mpsc::UnboundedReceiver<Command>) {
        let mut buf = vec![0u8; 65_536];
        loop {
            self.drain().await;
            if let Some((_, deadline)) = &self.shutdown {
                // Every call has ended (its BYE answered): lingering transaction timers need
                // not be waited for.
                if self.calls.is_empty() || Instant::now() >= *deadline {
                    if let Some((tx, _)) = self.shutdown.take() {
                        let _ = tx.send(());
                    }
                    return;
                }
            }
            let mut wake = self.ep.poll_timeout();
            if let Some((_, d)) = &self.shutdown {
                wake = Some(wake.map_or(*d, |w| w.min(*d)));
            }
            let sleep = async {
                match wake {
                    Some(w) => tokio::time::sleep_until(tokio::time::Instant::from_std(w)).await,
                    None => std::future::pending().await,
                }
            };
            let accept = async {
                match &self.tcp {
                    Some(l) => l.accept().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = self.udp.recv_from(&mut buf) => {
                    if let Ok((n, src)) = r {
                        let data = Bytes::copy_from_slice(&buf[..n]);
                        self.ep.handle_datagram(Instant::now(), self.udp_addr, src, Transport::Udp, data);
                    }
                }
                Some(c) = self.conn_rx.recv() => self.on_conn(c),
                r = accept => {
                    if let Ok((stream, remote)) = r {
                        let id = self.open_conn(remote, None);
                        self.spawn_conn(id, Ok(stream), remote);
                    }
                }
                Some((key, n)) = self.notice_rx.recv() => self.on_notice(key, n),
                cmd = cmds.recv() => match cmd {
                    Some(c) => self.on_command(c).await,
                    None => return,
                },
                _ = sleep => self.ep.handle_timeout(Instant::now()),
            }
        }
    }

    async fn drain(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(t) = self.ep.poll_transmit() {
                progressed = true;
                self.send(t).await;
            }
            while let Some(e) = self.ep.poll_event() {
                progressed = true;
                self.on_event(e).await;
            }
            if !progressed {
                break;
            }
        }
    }

    async fn send(&mut self, t: Transmit) {
        match t.transport {
            Transport::Udp => {
                if let Err(e) = self.udp.send_to(&t.payload, t.dst).await {
                    tracing::debug!("send to {} failed: {e}", t.dst);
                    self.ep
                        .handle_transport_error(Instant::now(), t.dst, t.transport);
                }
            }
            _ => {
                let id = t
                    .conn
                    .filter(|c| self.conns.contains_key(c))
                    .or_else(|| self.by_remote.get(&t.dst).copied());
                let id = match id {
                    Some(id) => id,
                    None => {
                        let id = self.open_conn(t.dst, None);
                        let dst = t.dst;
                        let stream = async move { TcpStream::connect(dst).await };
                        self.spawn_connect(id, stream, dst);
                        id
                    }
                };
                if let Some(c) = self.conns.get(&id) {
                    let _ = c.writer.send(t.payload);
                }
            }
        }
    }

    fn open_conn(&mut self, _remote: SocketAddr, _local: Option<SocketAddr>) -> ConnectionId {
        let id = ConnectionId(self.next_conn);
        self.next_conn += 1;
        id
    }

    fn spawn_connect(
        &mut self,
        id: ConnectionId,
        connect: impl std::future::Future<Output = io::Result<TcpStream>> + 'static,
        remote: SocketAddr,
    ) {
        let (wtx, wrx) = mpsc::unbounded_channel();
        self.conns.insert(id, Conn { writer: wtx });
        self.by_remote.insert(remote, id);
        let events = self.conn_tx.clone();
        tokio::task::spawn_local(async move {
            match connect.await {
                Ok(s) => conn_task(id, s, remote, wrx, events).await,
                Err(_) => {
                    let _ = events.send(ConnEvent::Closed(id));
                }
            }
        });
    }

    fn spawn_conn(&mut self, id: ConnectionId, stream: io::Result<TcpStream>, remote: SocketAddr) {
        let Ok(stream) = stream else { return };
        self.spawn_connect(id, async move { Ok(stream) }, remote);
    }

    fn on_conn(&mut self, c: ConnEvent) {
        match c {
            ConnEvent::Opened(id, local, remote) => {
                self.ep
                    .handle_connection_opened(id, local, remote, Transport::Tcp);
            }
            ConnEvent::Data(id, data) => self.ep.handle_stream_bytes(Instant::now(), id, &data),
            ConnEvent::Closed(id) => {
                self.conns.remove(&id);
                self.by_remote.retain(|_, v| *v != id);
                self.ep.handle_connection_closed(id);
            }
        }
    }

    fn emit(&mut self, dialog: DialogId, kind: CallEventKind) {
        let Some(c) = self.calls.get(&dialog) else {
            return;
        };
        let ev = CallEvent {
            call: c.number,
            kind,
        };
        tracing::info!(call = ev.call, "{:?}", ev.kind);
        if let Some(tx) = &c.events {
            let _ = tx.send(ev.clone());
        }
        let _ = self.events.send(ev);
    }

    fn new_entry(
        &mut self,
        dialog: DialogId,
        outgoing: bool,
        events: Option<mpsc::UnboundedSender<CallEvent>>,
    ) -> u64 {
        let number = self.next_number;
        self.next_number += 1;
        self.calls.insert(
            dialog,
            CallEntry {
                number,
                started: Instant::now(),
                answered: false,
                media: None,
                pending: None,
                events,
                end: None,
                outgoing,
            },
        );
        self.by_number.insert(number, dialog);
        number
    }

    async fn new_media(&mut self, number: u64, role: MediaRole) -> io::Result<PendingMedia> {
        let ports = self.ports.bind(self.advertised).await?;
        let mut config = MediaConfig::new(self.advertised, ports.port);
        config.record = RecordMode::Inbound;
        config.send_silence = true;
        let handler: Box<dyn MediaHandler + Send> = match self.media_factory.as_mut() {
            Some(f) => f(number, role),
            None => Box::new(DefaultHandler),
        };
        let session = MediaSession::new(
            format!("call-{number}"),
            role,
            config,
            handler,
            &mut self.rng,
            Instant::now(),
        )
        .map_err(|e| io::Error::other(format!("media session: {e:?}")))?;
        let (_tx, rx) = mpsc::unbounded_channel();
        Ok(PendingMedia {
            session,
            ports,
            cmds: rx,
            device: None,
        })
    }

    fn start_media(&mut self, dialog: DialogId, mut pending: PendingMedia) {
        let Some(c) = self.calls.get_mut(&dialog) else {
            return;
        };
        let (tx, rx) = mpsc::unbounded_channel();
        pending.cmds = rx;
        c.media = Some(tx);
        let codec = pending
            .session
            .codec()
            .map(|c| format!("{}/{}", c.encoding_name(), c.clock_rate()))
            .unwrap_or_else(|| "none".into());
        let task = MediaTask {
            session: pending.session,
            ports: pending.ports,
            files: self.files.clone(),
            decoded: self.decoded.clone(),
            notices: self.notice_tx.clone(),
            key: c.number,
            cmds: pending.cmds,
            device: pending.device,
        };
        self.media_rt.spawn(task.run());
        self.emit(dialog, CallEventKind::Answered { codec });
    }

    async fn on_event(&mut self, e: Event) {
        let now = Instant::now();
        match e {
            Event::IncomingCall {
                dialog,
                tx,
                request,
                offer,
            } => {
                let from = request
                    .from_header()
                    .map(|f| f.uri_str().to_owned())
                    .unwrap_or_default();
                let to = request
                    .to_header()
                    .map(|f| f.uri_str().to_owned())
                    .unwrap_or_default();
                let call_id = request.call_id().unwrap_or_default().to_owned();
                let number = self.new_entry(dialog, false, None);
                self.emit(dialog, CallEventKind::Incoming { from, to, call_id });
                if !self.cfg.auto_answer {
                    return;
                }
                if self.shutdown.is_some() {
                    let _ = self.ep.respond(now, tx, Reply::new(503));
                    return;
                }
                let mut pending = match self.new_media(number, MediaRole::Uas).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!("call {number}: {e}");
                        let _ =
                            self.ep
                                .respond(now, tx, Reply::new(503).header("Retry-After", "5"));
                        return;
                    }
                };
                let sdp = match offer
                    .filter(|b| b.content_type.eq_ignore_ascii_case("application/sdp"))
                {
                    Some(b) => match std::str::from_utf8(&b.bytes)
                        .map_err(|e| e.to_string())
                        .and_then(|s| {
                            pending
                                .session
                                .process_offer(now, s)
                                .map_err(|e| format!("{e:?}"))
                        }) {
                        Ok(answer) => answer,
                        Err(e) => {
                            tracing::info!("call {number}: offer refused: {e}");
                            let _ = self.ep.respond(now, tx, Reply::new(488));
                            return;
                        }
                    },
                    // No offer in the INVITE: ours goes in the 2xx, the answer comes in the ACK.
                    None => match pending.session.create_offer(now) {
                        Ok(o) => o,
                        Err(_) => {
                            let _ = self.ep.respond(now, tx, Reply::new(500));
                            return;
                        }
                    },
                };
                match self
                    .ep
                    .respond(now, tx, Reply::new(200).body(Body::sdp(sdp.into_bytes())))
                {
                    Ok(()) => {
                        if let Some(c) = self.calls.get_mut(&dialog) {
                            c.answered = true;
                        }
                        self.start_media(dialog, pending);
                    }
                    Err(e) => tracing::debug!("call {number}: not auto-answered: {e}"),
                }
            }
            Event::CallProgress { dialog, status, .. } => {
                self.emit(dialog, CallEventKind::Progress(status));
            }
            Event::CallAnswered { dialog, answer } => {
                let Some(c) = self.calls.get_mut(&dialog) else {
                    return;
                };
                c.answered = true;
                if let Some(mut p) = c.pending.take() {
                    if let Some(b) = answer {
                        if let Ok(s) = std::str::from_utf8(&b.bytes) {
                            if let Err(e) = p.session.process_answer(now, s) {
                                tracing::warn!("call {}: SDP answer refused: {e:?}", c.number);
                            }
                        }
                    }
                    self.start_media(dialog, *p);
                }
            }
            Event::AckReceived { dialog, body } => {
                if let (Some(c), Some(b)) = (self.calls.get(&dialog), body) {
                    if let (Some(m), Ok(s)) = (&c.media, std::str::from_utf8(&b.bytes)) {
                        let _ = m.send(MediaCmd::Answer(s.to_owned()));
                    }
                }
            }
            Event::CallEstablished { .. } => {}
            Event::CallRedirected { dialog, .. } => {
                self.emit(dialog, CallEventKind::Failed(302));
            }
            Event::CallEnded { dialog, reason } => {
                let by = match &reason {
                    EndReason::LocalBye | EndReason::HandlerStopped(_) => EndedBy::Local,
                    EndReason::RemoteBye | EndReason::Cancelled => EndedBy::Remote,
                    _ => EndedBy::Failure,
                };
                let failed = match &reason {
                    EndReason::Rejected(s) => Some(*s),
                    EndReason::Timeout => Some(408),
                    EndReason::TransportError => Some(503),
                    _ => None,
                };
                let Some(c) = self.calls.get_mut(&dialog) else {
                    return;
                };
                let outgoing_unanswered = c.outgoing && !c.answered;
                c.end.get_or_insert(by);
                c.pending = None;
                if let (Some(s), true) = (failed, outgoing_unanswered) {
                    self.emit(dialog, CallEventKind::Failed(s));
                }
                let Some(c) = self.calls.get_mut(&dialog) else {
                    return;
                };
                match c.media.take() {
                    Some(m) => {
                        let _ = m.send(MediaCmd::Stop(format!("{reason:?}")));
                    }
                    None => self.finish(dialog, MediaTotals::default()),
                }
            }
            Event::ResponseReceived {
                request,
                status,
                response,
                ..
            } => {
                if let Some(Waiter::Options(tx, sent)) = self.waiters.remove(&request) {
                    let r = OptionsReply {
                        status,
                        rtt: sent.elapsed(),
                        allow: response
                            .as_ref()
                            .map(|m| m.allow().map(str::to_owned).collect())
                            .unwrap_or_default(),
                        supported: response
                            .as_ref()
                            .map(|m| m.supported().map(str::to_owned).collect())
                            .unwrap_or_default(),
                        agent: response.as_ref().and_then(|m| {
                            m.header(HeaderName::Server)
                                .or(m.header(HeaderName::UserAgent))
                                .map(str::to_owned)
                        }),
                    };
                    let _ = tx.send(if status == 408 && response.is_none() {
                        Err("no answer (timeout)".into())
                    } else {
                        Ok(r)
                    });
                }
            }
            Event::RegistrationSucceeded {
                registration,
                expires,
            } => {
                if let Some(tx) = self.registrations.remove(&registration) {
                    let _ = tx.send(Ok(expires));
                }
            }
            Event::RegistrationFailed {
                registration,
                status,
            } => {
                if let Some(tx) = self.registrations.remove(&registration) {
                    let _ = tx.send(Err(status));
                }
            }
            Event::Unregistered { .. } => {}
            Event::TransportError { dst, .. } => {
                tracing::debug!("transport error towards {dst}");
            }
            other => tracing::debug!("endpoint event: {other:?}"),
        }
    }

    fn finish(&mut self, dialog: DialogId, media: MediaTotals) {
        let Some(c) = self.calls.get(&dialog) else {
            return;
        };
        let by = c.end.unwrap_or(EndedBy::Failure);
        let duration = c.started.elapsed();
        self.emit(
            dialog,
            CallEventKind::Ended {
                by,
                duration,
                media,
            },
        );
        if let Some(c) = self.calls.remove(&dialog) {
            self.by_number.remove(&c.number);
        }
    }

    fn on_notice(&mut self, number: u64, n: MediaNotice) {
        let Some(&dialog) = self.by_number.get(&number) else {
            return;
        };
        match n {
            MediaNotice::Dtmf(d) => self.emit(dialog, CallEventKind::Dtmf(d)),
            MediaNotice::PlayComplete(p) => self.emit(dialog, CallEventKind::PlayComplete(p)),
            MediaNotice::Recorded(p) => self.emit(dialog, CallEventKind::Recorded(p)),
            MediaNotice::Hangup(reason) => {
                tracing::info!(call = number, "hanging up: {reason}");
                self.hangup(dialog);
            }
            MediaNotice::Finished(totals) => {
                if let Some(c) = self.calls.get_mut(&dialog) {
                    if c.end.is_none() {
                        // Media ended first (handler failure): end the call too.
                        c.end = Some(EndedBy::Local);
                        let _ = self.ep.bye(Instant::now(), dialog);
                    }
                    c.media = None;
                }
                self.finish(dialog, totals);
            }
        }
    }

    fn hangup(&mut self, dialog: DialogId) {
        let now = Instant::now();
        if let Some(c) = self.calls.get_mut(&dialog) {
            c.end.get_or_insert(EndedBy::Local);
        }
        if self.ep.bye(now, dialog).is_err() {
            let _ = self.ep.cancel(now, dialog);
        }
    }

    async fn on_command(&mut self, c: Command) {
        let now = Instant::now();
        match c {
            Command::Call {
                target,
                dst,
                opts,
                device,
                reply,
                events,
            } => {
                // The media session and its sockets must exist before the INVITE carries the
                // offer; binding is quick, so it is done inline.
                let r = self.place_call(target, dst, opts, device, events).await;
                let _ = reply.send(r);
            }
            Command::Hangup(d) => self.hangup(d),
            Command::Media(d, m) => {
                if let Some(tx) = self.calls.get(&d).and_then(|c| c.media.as_ref()) {
                    let _ = tx.send(m);
                }
            }
            Command::Register {
                uri,
                dst,
                aor,
                creds,
                expires,
                reply,
            } => {
                let req = RegisterRequest {
                    registrar_uri: uri,
                    aor,
                    dst,
                    transport: Transport::Udp,
                    expires,
                    credentials: creds.map(|(u, p)| DigestCredentials::new(u, p)),
                };
                match self.ep.register(now, req) {
                    Ok(id) => {
                        self.registrations.insert(id, reply);
                    }
                    Err(_) => {
                        let _ = reply.send(Err(503));
                    }
                }
            }
            Command::Options { uri, dst, reply } => {
                match self.ep.options(now, &uri, dst, Transport::Udp) {
                    Ok(id) => {
                        self.waiters.insert(id, Waiter::Options(reply, now));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.to_string()));
                    }
                }
            }
            Command::Shutdown(tx) => {
                let live: Vec<DialogId> = self.calls.keys().copied().collect();
                for d in live {
                    self.hangup(d);
                }
                self.shutdown = Some((tx, now + Duration::from_secs(5)));
            }
        }
    }

    async fn place_call(
        &mut self,
        target: String,
        dst: SocketAddr,
        opts: CallOptions,
        device: Option<Box<dyn AudioDevice>>,
        events: mpsc::UnboundedSender<CallEvent>,
    ) -> io::Result<(DialogId, u64)> {
        let number_hint = self.next_number;
        let mut pending = self.new_media(number_hint, MediaRole::Uac).await?;
        pending.device = device;
        let offer = pending
            .session
            .create_offer(Instant::now())
            .map_err(|e| io::Error::other(format!("{e:?}")))?;
        let from = opts.from.clone().unwrap_or_else(|| {
            format!(
                "sip:{}@{}",
                self.cfg.endpoint.contact_user,
                fmt_host(self.advertised)
            )
        });
        let transport = if opts.tcp {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        let mut req = InviteRequest::new(from, target.clone(), dst, transport);
        req.body = Some(Body::sdp(offer.into_bytes()));
        req.headers = opts.headers.clone();
        req.credentials = opts.credentials.map(|(u, p)| DigestCredentials::new(u, p));
        let dialog = self
            .ep
            .invite(Instant::now(), req)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let number = self.new_entry(dialog, true, Some(events));
        if let Some(c) = self.calls.get_mut(&dialog) {
            pending.cmds = mpsc::unbounded_channel().1;
            c.pending = Some(Box::new(pending));
        }
        Ok((dialog, number))
    }
}

fn fmt_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    }
}

async fn conn_task(
    id: ConnectionId,
    stream: TcpStream,
    remote: SocketAddr,
    mut writer: mpsc::UnboundedReceiver<Bytes>,
    events: mpsc::UnboundedSender<ConnEvent>,
) {
    let local = stream.local_addr().unwrap_or(remote);
    let _ = events.send(ConnEvent::Opened(id, local, remote));
    let (mut rd, mut wr) = stream.into_split();
    let write = async move {
        while let Some(b) = writer.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
    };
    let ev = events.clone();
    let read = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if ev.send(ConnEvent::Data(id, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = write => {}
        _ = read => {}
    }
    let _ = events.send(ConnEvent::Closed(id));
}
