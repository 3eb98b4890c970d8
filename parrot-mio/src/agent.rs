//! The loop: a [`Driver`] and its sockets on one `mio::Poll`.

use crate::io::{MioIo, Source};
use mio::event::Event;
use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Events, Poll, Registry, Token, Waker};
use parrot_proto::{ConnectionId, Transport};
use parrot_ua::async_channel::{self, Receiver, TryRecvError};
use parrot_ua::{
    Agent, AgentConfig, AgentParts, Bound, CallEvent, Command, CommandSender, Driver,
    MediaHandlerFactory, StreamKind, UasFactory,
};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Binds the SIP sockets and starts the agent on a thread of its own ("parrot-sip") running
/// a `mio::Poll` loop. `uas` makes the SIP handler of each incoming request (none: every call
/// is auto-answered when `auto_answer`); `media` makes each call's media handler (none:
/// silence).
pub fn start(
    config: AgentConfig,
    uas: Option<UasFactory>,
    media: Option<MediaHandlerFactory>,
) -> io::Result<Agent> {
    let mut poll = Poll::new()?;
    let mut agent = MioAgent::new(config, uas, media, poll.registry(), Token(0))?;
    let cmds = agent.command_channel(poll.registry())?;
    let events = agent.take_events().expect("fresh agent");
    let (udp, streams) = (agent.local_addr(), agent.stream_addrs().to_vec());
    let thread = std::thread::Builder::new()
        .name("parrot-sip".into())
        .spawn(move || {
            if let Err(e) = agent.run(&mut poll) {
                tracing::error!("SIP loop: {e}");
            }
        })?;
    Ok(handle_from(cmds, events, udp, streams, thread))
}

fn handle_from(
    cmds: CommandSender,
    events: Receiver<CallEvent>,
    udp: SocketAddr,
    streams: Vec<(StreamKind, SocketAddr)>,
    thread: std::thread::JoinHandle<()>,
) -> Agent {
    Agent::from_parts(AgentParts {
        cmds,
        events,
        udp,
        streams,
        runtime: "mio",
        thread,
    })
}

/// A user agent whose sockets live on a `mio::Poll` the caller owns.
///
/// Put it into any mio loop: poll with [`MioAgent::timeout`], give it every event
/// ([`MioAgent::handle_event`] says which were its own), and stop when [`MioAgent::is_done`].
/// [`MioAgent::run`] is that loop. Calls are placed and answered through
/// [`MioAgent::driver_mut`] (then [`MioAgent::flush`]); their events arrive on
/// [`MioAgent::take_events`].
pub struct MioAgent {
    driver: Driver,
    io: MioIo,
    /// Token of the command waker (the first token).
    waker_token: Token,
    waker: Option<Arc<Waker>>,
    cmds: Option<Receiver<Command>>,
    events: Option<Receiver<CallEvent>>,
    udp_addr: SocketAddr,
    streams: Vec<(StreamKind, SocketAddr)>,
    /// Receive buffer, reused for every packet.
    buf: Vec<u8>,
    /// Received SIP datagrams, copied out of `buf` into shared chunks.
    copies: parrot_ua::DatagramBuf,
}

impl MioAgent {
    /// Binds the SIP sockets (UDP; a TCP listener on the same port when `config.tcp`; the
    /// TLS, WS and WSS listeners of `config.streams`) and registers them on `registry`. The
    /// agent uses tokens from `first_token` upwards (one per socket and connection, never
    /// reused): the caller's own tokens must lie below.
    pub fn new(
        config: AgentConfig,
        uas: Option<UasFactory>,
        media: Option<MediaHandlerFactory>,
        registry: &Registry,
        first_token: Token,
    ) -> io::Result<MioAgent> {
        let bound = bind(&config)?;
        let udp_addr = bound.udp_addr()?;
        let streams = bound.stream_addrs();
        let (ev_tx, ev_rx) = async_channel::unbounded();
        let driver = Driver::new(config, &bound, uas, media, ev_tx)?;
        let listeners = bound
            .listeners
            .into_iter()
            .map(|(k, l)| (k, TcpListener::from_std(l)))
            .collect();
        let io = MioIo::new(
            registry,
            Token(first_token.0 + 1),
            UdpSocket::from_std(bound.udp),
            listeners,
        )?;
        Ok(MioAgent {
            driver,
            io,
            waker_token: first_token,
            waker: None,
            cmds: None,
            events: Some(ev_rx),
            udp_addr,
            streams,
            buf: vec![0; 65_536],
            copies: parrot_ua::DatagramBuf::new(),
        })
    }

    /// An [`Agent`] handle for this agent, to use from other threads: its commands wake the
    /// poll (a [`mio::Waker`] under the agent's first token) and are carried out by
    /// [`MioAgent::handle_event`]; its blocking methods wait for this loop to answer, so they
    /// must not be called from the loop's own thread. Dropping every handle shuts the agent
    /// down ([`MioAgent::is_done`] turns true). Can be made once; the events of every call
    /// go to the handle's [`Agent::take_events`].
    pub fn handle(&mut self, registry: &Registry) -> io::Result<Agent> {
        if self.cmds.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "this agent already has a handle",
            ));
        }
        let events = self
            .take_events()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the call events were taken"))?;
        let cmds = self.command_channel(registry)?;
        // `Agent` joins the thread that runs the loop at shutdown; the caller's loop is not
        // ours to join, so the handle gets a thread that is already done.
        let thread = std::thread::Builder::new()
            .name("parrot-mio-handle".into())
            .spawn(|| {})?;
        Ok(handle_from(
            cmds,
            events,
            self.udp_addr,
            self.streams.clone(),
            thread,
        ))
    }

    /// A command channel whose sends wake the poll (for [`Agent`]).
    fn command_channel(&mut self, registry: &Registry) -> io::Result<CommandSender> {
        let waker = Arc::new(Waker::new(registry, self.waker_token)?);
        let w = waker.clone();
        let (tx, rx) = CommandSender::channel(Some(Arc::new(move || {
            let _ = w.wake();
        })));
        self.waker = Some(waker);
        self.cmds = Some(rx);
        Ok(tx)
    }

    /// The UDP address SIP listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.udp_addr
    }

    /// The TCP address SIP listens on, if any.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.stream_addrs()
            .iter()
            .find(|(k, _)| *k == StreamKind::Tcp)
            .map(|(_, a)| *a)
    }

    /// Every stream listener (TCP, TLS, WS, WSS) and its address.
    pub fn stream_addrs(&self) -> &[(StreamKind, SocketAddr)] {
        &self.streams
    }

    /// The events of every call, in order. Can be taken once.
    pub fn take_events(&mut self) -> Option<Receiver<CallEvent>> {
        self.events.take()
    }

    /// The driver and its user agent, to place calls, register, hang up ... Call
    /// [`MioAgent::flush`] afterwards.
    pub fn driver_mut(&mut self) -> &mut Driver {
        &mut self.driver
    }

    /// Sends everything due and carries out every event (after using
    /// [`MioAgent::driver_mut`]).
    pub fn flush(&mut self) {
        self.driver.flush(&mut self.io);
    }

    /// Handles a readiness event. Returns `false` when the token is not one of the agent's.
    pub fn handle_event(&mut self, event: &Event) -> bool {
        let token = event.token();
        if token == self.waker_token && self.waker.is_some() {
            self.commands();
            return true;
        }
        let Some(&src) = self.io.sources.get(&token) else {
            return false;
        };
        match src {
            Source::Udp => self.read_udp(),
            Source::Media { call, rtcp } => self.read_media(call, rtcp),
            Source::Listener(i) => self.accept(i),
            Source::Conn(id) => self.conn_event(id, event),
            Source::Parked { port, rtcp } => {
                if let Some(m) = self.io.parked.get(&port) {
                    crate::io::drain(if rtcp { &m.rtcp } else { &m.rtp });
                }
            }
            // Only wakes the poll: the due timers run in `timeout`, before the next poll.
            Source::Timer =>
            {
                #[cfg(target_os = "linux")]
                if let Some(t) = &self.io.timer {
                    t.clear();
                }
            }
        }
        self.flush();
        true
    }

    /// Runs the timers that are due and tells how long the poll may sleep: until the next
    /// timer, rounded up to the next millisecond (a poll that wakes a little early would
    /// otherwise spin), or `None` when nothing is scheduled. On Linux the agent's own
    /// `timerfd` (registered on the poll) wakes it on the nanosecond before that.
    pub fn timeout(&mut self) -> Option<Duration> {
        let now = Instant::now();
        if self.driver.poll_timeout().is_some_and(|t| t <= now) {
            self.driver.handle_timeout(now);
        }
        self.flush();
        let deadline = self.driver.poll_timeout();
        #[cfg(target_os = "linux")]
        if let Some(t) = &self.io.timer {
            // The timer wakes the poll on time; the rounded-up timeout stays as a backstop.
            if t.arm(deadline).is_err() {
                tracing::debug!("cannot arm the precise timer");
            }
        }
        let wait = deadline?.saturating_duration_since(Instant::now());
        Some(ceil_ms(wait))
    }

    /// Whether a shutdown finished (the waiting [`Agent::shutdown_blocking`] has been
    /// answered): the loop should stop.
    pub fn is_done(&mut self) -> bool {
        // The clock is read only once a shutdown was asked for.
        self.driver.is_shutting_down() && self.driver.is_done(Instant::now())
    }

    /// The whole loop: poll, handle, run timers, until a shutdown finished (every
    /// [`Agent`] handle dropped counts as one). Every socket is closed on return.
    pub fn run(&mut self, poll: &mut Poll) -> io::Result<()> {
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = self.timeout();
            if self.is_done() {
                self.io.close_all();
                return Ok(());
            }
            match poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in events.iter() {
                self.handle_event(ev);
            }
        }
    }

    /// Carries out every queued command.
    fn commands(&mut self) {
        while let Some(rx) = &self.cmds {
            let c = match rx.try_recv() {
                Ok(c) => c,
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Closed) => {
                    // Every Agent handle is gone: stop as if asked to.
                    self.cmds = None;
                    let (tx, _rx) = async_channel::bounded(1);
                    Command::Shutdown(tx)
                }
            };
            self.driver.handle_command(Instant::now(), c);
            self.flush();
        }
    }

    fn read_udp(&mut self) {
        let mut errors = 0;
        while errors < 16 {
            match self.io.udp.recv_from(&mut self.buf) {
                Ok((n, src)) => {
                    let data = self.copies.copy(&self.buf[..n]);
                    self.driver.ua.handle_sip_datagram(
                        Instant::now(),
                        self.udp_addr,
                        src,
                        Transport::Udp,
                        data,
                    );
                    self.flush();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Read to the end: not behind (overload shedding).
                    self.driver.ua.sip_queue_empty();
                    return;
                }
                Err(_) => errors += 1,
            }
        }
    }

    fn read_media(&mut self, call: u64, rtcp: bool) {
        let mut errors = 0;
        while errors < 16 {
            // Flushing may end the call and close its sockets.
            let Some(m) = self.io.media.get(&call) else {
                return;
            };
            let sock = if rtcp { &m.rtcp } else { &m.rtp };
            match sock.recv_from(&mut self.buf) {
                Ok((n, _)) => {
                    self.driver
                        .ua
                        .handle_media(Instant::now(), call, rtcp, &self.buf[..n]);
                    self.flush();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => errors += 1,
            }
        }
    }

    fn accept(&mut self, i: usize) {
        loop {
            let Some((kind, l)) = self.io.listeners.get(i) else {
                return;
            };
            let (kind, local, r) = (*kind, l.local_addr(), l.accept());
            match r {
                Ok((stream, remote)) => self.accepted(kind, stream, local, remote),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of descriptors and the like: try again on the next connection.
                    tracing::debug!("accept: {e}");
                    return;
                }
            }
        }
    }

    fn accepted(
        &mut self,
        kind: StreamKind,
        stream: TcpStream,
        listener: io::Result<SocketAddr>,
        remote: SocketAddr,
    ) {
        let now = Instant::now();
        let local = stream.local_addr().or(listener).unwrap_or(remote);
        // Refused (a TLS listener without a certificate): dropping the stream closes it.
        let Some(id) = self.driver.conn_accepted(now, kind, local, remote) else {
            return;
        };
        if self.io.add_conn(id, stream, false).is_err() {
            self.driver.conn_closed(now, id);
        }
    }

    fn conn_event(&mut self, id: ConnectionId, event: &Event) {
        let Some(c) = self.io.conns.get_mut(&id) else {
            return;
        };
        let now = Instant::now();
        if c.closing {
            // The driver is done with it: write what is left, then close.
            let gone = c.flush_out().is_err()
                || c.is_flushed()
                || !matches!(c.read_all(&mut self.buf, |_| {}), Ok(true));
            if gone {
                self.io.remove_conn(id);
            }
            return;
        }
        if c.connecting {
            if !(event.is_writable() || event.is_error() || event.is_write_closed()) {
                return;
            }
            // The connect finished: an error, or a peer address.
            match (c.stream.take_error(), c.stream.peer_addr()) {
                (Ok(None), Ok(remote)) => {
                    c.connecting = false;
                    let local = c.stream.local_addr().unwrap_or(remote);
                    self.driver.conn_connected(now, id, local);
                }
                (Ok(None), Err(e)) if e.kind() == io::ErrorKind::NotConnected => return,
                _ => return self.conn_closed(now, id),
            }
        }
        let Some(c) = self.io.conns.get_mut(&id) else {
            return;
        };
        if event.is_writable() && c.flush_out().is_err() {
            return self.conn_closed(now, id);
        }
        let driver = &mut self.driver;
        let open = c.read_all(&mut self.buf, |data| driver.conn_data(now, id, data));
        if !matches!(open, Ok(true)) {
            self.conn_closed(now, id);
        }
    }

    /// A connection closed under us (the peer, an error).
    fn conn_closed(&mut self, now: Instant, id: ConnectionId) {
        self.io.remove_conn(id);
        self.driver.conn_closed(now, id);
    }
}

/// [`Bound::bind`], tried again when the configuration leaves the port to the system (port
/// 0) and the TCP listener cannot have the UDP socket's port because a TCP socket (some
/// connection's local end) holds it already: under connection churn this happens to a few
/// percent of binds. Belongs in [`Bound::bind`] itself.
fn bind(config: &AgentConfig) -> io::Result<Bound> {
    let tries = if config.bind.port() == 0 { 8 } else { 1 };
    let mut n = 1;
    loop {
        match Bound::bind(config) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && n < tries => n += 1,
            r => return r,
        }
    }
}

/// `d` rounded up to whole milliseconds.
fn ceil_ms(d: Duration) -> Duration {
    let ms = d.as_nanos().div_ceil(1_000_000);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::ceil_ms;
    use std::time::Duration;

    #[test]
    fn timeouts_round_up_to_whole_milliseconds() {
        assert_eq!(ceil_ms(Duration::ZERO), Duration::ZERO);
        assert_eq!(ceil_ms(Duration::from_nanos(1)), Duration::from_millis(1));
        assert_eq!(
            ceil_ms(Duration::from_micros(19_001)),
            Duration::from_millis(20)
        );
        assert_eq!(
            ceil_ms(Duration::from_millis(20)),
            Duration::from_millis(20)
        );
    }
}
