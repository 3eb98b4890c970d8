//! The loop: sockets and one sleep around a [`Driver`].

use bytes::Bytes;
use futures_core::Stream;
use parrot_proto::{ConnectionId, Transport};
use parrot_ua::{
    spawn_agent, Agent, AgentConfig, Driver, Io, LoopParts, MediaHandlerFactory, PortPair,
    StreamKind, UasFactory,
};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Binds the SIP sockets and starts the agent on a thread of its own. `uas` makes the SIP
/// handler of each incoming request (none: every call is auto-answered when `auto_answer`);
/// `media` makes each call's media handler (none: silence).
pub fn start(
    config: AgentConfig,
    uas: Option<UasFactory>,
    media: Option<MediaHandlerFactory>,
) -> io::Result<Agent> {
    spawn_agent("tokio", config, uas, media, None, |parts| {
        let (rt, sleeper) = runtime()?;
        tokio::task::LocalSet::new().block_on(&rt, run(parts, sleeper))
    })
}

/// The loop's runtime and its sleep. Where the [`PreciseTimer`](parrot_ua::PreciseTimer)
/// serves, the runtime has no timer driver of its own: nothing on the loop's thread uses
/// tokio's timers then, and the driver's wheel would otherwise be turned (a lock, a clock
/// read) at every wait.
fn runtime() -> io::Result<(tokio::runtime::Runtime, Sleeper)> {
    #[cfg(target_os = "linux")]
    if let Ok(timer) = parrot_ua::PreciseTimer::new() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let registered = {
            let _entered = rt.enter();
            register_readable(timer)
        };
        if let Ok(timer) = registered {
            return Ok((rt, Sleeper::precise(timer)));
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok((rt, Sleeper::tokio()))
}

enum ConnEvent {
    Accepted(StreamKind, TcpStream, SocketAddr),
    Connected(ConnectionId, SocketAddr),
    Data(ConnectionId, Vec<u8>),
    Closed(ConnectionId),
}

/// A call's sockets, registered with tokio for reading only, shared between the reader task
/// and the sender (a non-blocking `send_to` on the inner socket needs no readiness from the
/// reactor, which a socket registered a moment ago may not have yet). Read-only interest
/// matters: a socket registered for writing too reports a writable edge after every packet it
/// sends, which costs an epoll event and a waker per packet.
struct MediaSockets {
    rtp: Rc<AsyncFd<MediaSocket>>,
    rtcp: Rc<AsyncFd<MediaSocket>>,
    reader: JoinHandle<()>,
    /// The call the reader hands packets to ([`PARKED`]: none, drop them).
    call: Rc<Cell<u64>>,
}

/// A media socket: shared with the driver's media-sending thread.
type MediaSocket = Arc<std::net::UdpSocket>;

/// The reader's call number while its sockets are parked ([`Io::park_media`]).
const PARKED: u64 = u64::MAX;

/// The adapter's sockets, as the driver sees them.
struct TokioIo {
    udp: std::net::UdpSocket,
    media: parrot_ua::CallMap<MediaSockets>,
    /// Sockets of ended calls kept for later ones, by RTP port.
    parked: HashMap<u16, MediaSockets, foldhash::fast::FixedState>,
    conns: HashMap<ConnectionId, mpsc::UnboundedSender<Bytes>>,
    conn_tx: ConnSender,
    shared: Weak<RefCell<Shared>>,
    wake: Rc<Wake>,
}

/// Wakes the main loop when a media reader moved the next deadline earlier (or ended the
/// last call of a shutdown). Both run on the loop's thread: a flag and the loop's waker do
/// (a notification while the loop is busy is kept for its next wait, as
/// `tokio::sync::Notify::notify_one` keeps a permit).
#[derive(Default)]
struct Wake {
    notified: Cell<bool>,
    waker: Cell<Option<Waker>>,
    deadline: Cell<Option<Instant>>,
    /// Events of the accept and connection tasks (on the loop's thread too), in order.
    conns: RefCell<VecDeque<ConnEvent>>,
}

/// How the accept and connection tasks hand events to the loop: a queue on the loop's
/// thread, read at every wake-up (an mpsc channel would cost its polling at every wait, for
/// the few servers that carry SIP on streams).
#[derive(Clone)]
struct ConnSender(Weak<Wake>);

impl ConnSender {
    /// Queues `ev` and wakes the loop; fails once the loop is gone.
    fn send(&self, ev: ConnEvent) -> Result<(), ConnEvent> {
        let Some(wake) = self.0.upgrade() else {
            return Err(ev);
        };
        wake.conns.borrow_mut().push_back(ev);
        // The loop reads the queue whenever it polls; it only needs waking if it waits (a
        // waiting loop has left its waker).
        if let Some(w) = wake.waker.take() {
            w.wake();
        }
        Ok(())
    }
}

impl Wake {
    fn notify(&self) {
        self.notified.set(true);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Whether a notification came (consuming it); otherwise `cx` is woken by the next one.
    fn poll(&self, cx: &mut Context<'_>) -> bool {
        if self.notified.replace(false) {
            return true;
        }
        let waker = match self.waker.take() {
            Some(w) if w.will_wake(cx.waker()) => w,
            _ => cx.waker().clone(),
        };
        self.waker.set(Some(waker));
        false
    }
}

struct Shared {
    driver: Driver,
    io: TokioIo,
}

impl Shared {
    fn flush(&mut self) {
        self.driver.flush(&mut self.io);
    }
}

impl TokioIo {
    /// Runs a connection: `stream` (or the connect that makes it) in a task of its own that
    /// reports raw bytes and writes what the driver hands it.
    fn spawn_conn(
        &mut self,
        id: ConnectionId,
        remote: SocketAddr,
        connect: impl std::future::Future<Output = io::Result<TcpStream>> + 'static,
        outgoing: bool,
    ) {
        let (wtx, wrx) = mpsc::unbounded_channel();
        self.conns.insert(id, wtx);
        let events = self.conn_tx.clone();
        tokio::task::spawn_local(async move {
            match connect.await {
                Ok(s) => {
                    if outgoing {
                        let local = s.local_addr().unwrap_or(remote);
                        let _ = events.send(ConnEvent::Connected(id, local));
                    }
                    conn_task(id, s, wrx, events).await
                }
                Err(_) => {
                    let _ = events.send(ConnEvent::Closed(id));
                }
            }
        });
    }
}

impl Io for TokioIo {
    fn send_udp(&mut self, dst: SocketAddr, data: &[u8]) -> io::Result<()> {
        self.udp.send_to(data, dst).map(drop)
    }

    fn connect(&mut self, conn: ConnectionId, dst: SocketAddr) -> io::Result<()> {
        self.spawn_conn(conn, dst, TcpStream::connect(dst), true);
        Ok(())
    }

    fn conn_write(&mut self, conn: ConnectionId, data: &[u8]) -> io::Result<()> {
        match self.conns.get(&conn) {
            Some(w) => w
                .send(Bytes::copy_from_slice(data))
                .map_err(|_| io::ErrorKind::NotConnected.into()),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    fn conn_close(&mut self, conn: ConnectionId) {
        // Dropping the writer ends the connection's task once it has written what it holds.
        self.conns.remove(&conn);
    }

    fn send_media(&mut self, call: u64, rtcp: bool, dst: SocketAddr, data: &[u8]) {
        if let Some(m) = self.media.get(&call) {
            let sock = if rtcp { &m.rtcp } else { &m.rtp };
            let _ = sock.get_ref().send_to(data, dst);
        }
    }

    fn media_socket(&self, call: u64, rtcp: bool) -> Option<&Arc<std::net::UdpSocket>> {
        let m = self.media.get(&call)?;
        Some(if rtcp {
            m.rtcp.get_ref()
        } else {
            m.rtp.get_ref()
        })
    }

    fn open_media(&mut self, call: u64, pair: PortPair) -> io::Result<()> {
        let rtp = Rc::new(register_readable(Arc::new(pair.rtp))?);
        let rtcp = Rc::new(register_readable(Arc::new(pair.rtcp))?);
        let owner = Rc::new(Cell::new(call));
        let reader = tokio::task::spawn_local(media_reader(
            self.shared.clone(),
            self.wake.clone(),
            owner.clone(),
            rtp.clone(),
            rtcp.clone(),
        ));
        let m = MediaSockets {
            rtp,
            rtcp,
            reader,
            call: owner,
        };
        self.media.insert(call, m);
        Ok(())
    }

    fn close_media(&mut self, call: u64) {
        if let Some(m) = self.media.remove(&call) {
            m.reader.abort();
        }
    }

    fn park_media(&mut self, call: u64, port: u16) -> bool {
        let Some(m) = self.media.remove(&call) else {
            return false;
        };
        m.call.set(PARKED);
        if let Some(old) = self.parked.insert(port, m) {
            old.reader.abort();
        }
        true
    }

    fn reuse_media(&mut self, port: u16, call: u64) -> bool {
        let Some(m) = self.parked.remove(&port) else {
            return false;
        };
        discard_known(&m.rtp);
        discard_known(&m.rtcp);
        m.call.set(call);
        self.media.insert(call, m);
        true
    }

    fn close_parked(&mut self, port: u16) {
        if let Some(m) = self.parked.remove(&port) {
            m.reader.abort();
        }
    }
}

/// Reads one call's RTP and RTCP sockets and hands each packet to the user agent. Nothing
/// is allocated per packet.
async fn media_reader(
    shared: Weak<RefCell<Shared>>,
    wake: Rc<Wake>,
    owner: Rc<Cell<u64>>,
    rtp: Rc<AsyncFd<MediaSocket>>,
    rtcp: Rc<AsyncFd<MediaSocket>>,
) {
    let mut a = [0u8; 2048];
    let mut b = [0u8; 2048];
    loop {
        let (is_rtcp, n) = tokio::select! {
            n = recv(&rtp, &mut a) => (false, n),
            n = recv(&rtcp, &mut b) => (true, n),
        };
        let call = owner.get();
        if call == PARKED {
            continue;
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut s = shared.borrow_mut();
        let now = Instant::now();
        let data = if is_rtcp { &b[..n] } else { &a[..n] };
        s.driver.ua.handle_media(now, call, is_rtcp, data);
        s.flush();
        let next = s.driver.poll_timeout();
        let earlier = match (next, wake.deadline.get()) {
            (Some(n), Some(d)) => n < d,
            (Some(_), None) => true,
            _ => false,
        };
        if earlier || s.driver.ua.is_shut_down(now) {
            wake.notify();
        }
    }
}

/// Drops what is queued on a parked socket before another call takes it, if anything is
/// known to be: while parked, its reader has read and dropped every packet the reactor
/// reported, so only a readiness not yet served can hold one. A socket with none was empty
/// when the reactor last looked, and is not read at all (a packet that arrived since is as
/// late as one arriving just after the reuse). Saves two reads that find nothing per call.
fn discard_known(sock: &AsyncFd<MediaSocket>) {
    let mut cx = Context::from_waker(Waker::noop());
    let Poll::Ready(Ok(mut ready)) = sock.poll_read_ready(&mut cx) else {
        return;
    };
    let mut buf = [0u8; 2048];
    for _ in 0..1024 {
        match sock.get_ref().recv_from(&mut buf) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Read until it would block: the reader need not look again.
                ready.clear_ready();
                return;
            }
            Err(_) => return,
        }
    }
}

/// Registers `inner` with tokio's reactor for readability only (`tokio::net::UdpSocket` asks
/// for writability too, see [`MediaSockets`]; the SIP socket likewise).
#[allow(unsafe_code)]
fn register_readable<T: AsFd + AsRawFd>(inner: T) -> io::Result<AsyncFd<T>> {
    // SAFETY: `T` is one of our owned-descriptor types (`std::net::UdpSocket`,
    // `Arc<std::net::UdpSocket>`, `PreciseTimer`): its `as_raw_fd` is the same open
    // descriptor for as long as it lives (an `Arc`'s other holders only keep it open
    // longer), and it lives inside the `AsyncFd`, which is never asked to give it up.
    unsafe { AsyncFd::register_with_interest(inner, Interest::READABLE) }.map_err(Into::into)
}

/// The next datagram's length (errors, such as an ICMP port unreachable reported on the
/// socket, are skipped).
async fn recv(sock: &AsyncFd<MediaSocket>, buf: &mut [u8]) -> usize {
    loop {
        let Ok(mut ready) = sock.readable().await else {
            // The reactor is gone: the loop is ending.
            return std::future::pending().await;
        };
        if let Ok(Ok((n, _))) = ready.try_io(|s| s.get_ref().recv_from(buf)) {
            return n;
        }
    }
}

/// The loop's sleep: a [`PreciseTimer`](parrot_ua::PreciseTimer) on Linux (tokio's own timer
/// wheel wakes up to a millisecond late, by a different amount each time), tokio's timer
/// elsewhere. Set with [`Sleeper::set`] before each wait, polled with [`Sleeper::poll`]:
/// nothing is built or torn down per wait.
struct Sleeper {
    #[cfg(target_os = "linux")]
    timer: Option<AsyncFd<parrot_ua::PreciseTimer>>,
    /// Whether the runtime has tokio's timers (see [`runtime`]): only then can `fallback`
    /// serve.
    tokio_timers: bool,
    /// Whether the precise timer is armed for the deadline (else `fallback` is used).
    precise: bool,
    deadline: Option<Instant>,
    fallback: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Sleeper {
    /// The precise timer, on a runtime without tokio's timers.
    #[cfg(target_os = "linux")]
    fn precise(timer: AsyncFd<parrot_ua::PreciseTimer>) -> Sleeper {
        Sleeper {
            timer: Some(timer),
            tokio_timers: false,
            precise: false,
            deadline: None,
            fallback: None,
        }
    }

    /// tokio's timer (the runtime has them).
    fn tokio() -> Sleeper {
        Sleeper {
            #[cfg(target_os = "linux")]
            timer: None,
            tokio_timers: true,
            precise: false,
            deadline: None,
            fallback: None,
        }
    }

    /// The next wait ends at `deadline` (never, for `None`).
    fn set(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
        let Some(w) = deadline else {
            return;
        };
        #[cfg(target_os = "linux")]
        if let Some(t) = &self.timer {
            // A deadline already passed needs no timer: `poll` reports it at once, and the
            // loop runs it without arming the timerfd, waiting for it and reading it.
            if w <= Instant::now() {
                self.precise = false;
                return;
            }
            if t.get_ref().arm(Some(w)).is_ok() {
                self.precise = true;
                return;
            }
        }
        self.use_fallback(w);
    }

    fn use_fallback(&mut self, w: Instant) {
        self.precise = false;
        if !self.tokio_timers {
            // Only if the armed timerfd refused a deadline (it takes any) or the reactor is
            // going away: `poll` then reports every deadline as come.
            return;
        }
        let at = tokio::time::Instant::from_std(w);
        match &mut self.fallback {
            Some(f) => {
                if f.deadline() != at {
                    f.as_mut().reset(at);
                }
            }
            None => self.fallback = Some(Box::pin(tokio::time::sleep_until(at))),
        }
    }

    /// Whether the deadline has come.
    fn poll(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(w) = self.deadline else {
            return false;
        };
        #[cfg(target_os = "linux")]
        if self.precise {
            if let Some(t) = &self.timer {
                loop {
                    match t.poll_read_ready(cx) {
                        Poll::Pending => return false,
                        Poll::Ready(Ok(mut ready)) => {
                            // Either way the expiry is consumed and the timerfd is not
                            // readable until it is armed again and fires: forget the
                            // readiness, or the next wait would read it again for nothing.
                            let fired = ready.get_inner().clear();
                            ready.clear_ready();
                            if fired {
                                return true;
                            }
                        }
                        // The reactor cannot watch it: tokio's timer instead.
                        Poll::Ready(Err(_)) => break,
                    }
                }
            }
            self.use_fallback(w);
        }
        if !self.tokio_timers {
            return true;
        }
        self.fallback
            .as_mut()
            .is_some_and(|f| f.as_mut().poll(cx).is_ready())
    }
}

/// What woke the loop.
enum Woken {
    Datagram(Bytes, SocketAddr),
    Conn(ConnEvent),
    Command(parrot_ua::Command),
    CommandsClosed,
    /// A media reader moved the deadline, or a receive failed: just flush and wait again.
    Nothing,
    Timeout,
}

async fn run(parts: LoopParts, mut sleeper: Sleeper) -> io::Result<()> {
    let LoopParts {
        driver,
        bound,
        cmds,
    } = parts;
    let udp_addr = bound.udp_addr()?;
    let udp_tx = bound.udp.try_clone()?;
    // Registered for reading only: the loop sends on `udp_tx`, the same socket, and each
    // send would otherwise end in a writable edge that wakes the loop for nothing.
    let udp = register_readable(bound.udp)?;
    let wake = Rc::new(Wake::default());
    let conn_tx = ConnSender(Rc::downgrade(&wake));
    for (kind, l) in bound.listeners {
        tokio::task::spawn_local(accept_loop(
            kind,
            TcpListener::from_std(l)?,
            conn_tx.clone(),
        ));
    }
    let shared = Rc::new(RefCell::new(Shared {
        driver,
        io: TokioIo {
            udp: udp_tx,
            media: Default::default(),
            parked: HashMap::default(),
            conns: HashMap::new(),
            conn_tx,
            shared: Weak::new(),
            wake: wake.clone(),
        },
    }));
    shared.borrow_mut().io.shared = Rc::downgrade(&shared);
    let mut buf = vec![0u8; 65_536];
    // Each datagram is copied out of `buf` into a chunk shared with the ones before it.
    let mut copies = parrot_ua::DatagramBuf::new();
    let mut cmds = Box::pin(cmds);
    let mut cmds_open = true;
    // Which source is asked first, in turn (as `tokio::select!` starts at a random one): a
    // busy one does not starve the others.
    let mut first = 0usize;
    // Set when the SIP socket was read until it would block; told to the agent before the
    // next datagram (overload shedding, `UserAgent::sip_queue_empty`).
    let drained = Cell::new(false);
    loop {
        let deadline = {
            let mut s = shared.borrow_mut();
            s.flush();
            if s.driver.is_shutting_down() && s.driver.is_done(Instant::now()) {
                for c in s.driver.open_media() {
                    s.io.close_media(c);
                }
                return Ok(());
            }
            s.driver.poll_timeout()
        };
        wake.deadline.set(deadline);
        sleeper.set(deadline);
        // One future polls every source in place: nothing is registered and unregistered
        // per wait (the command channel's listener and the sockets' wakers persist).
        let woken = std::future::poll_fn(|cx| {
            first = (first + 1) % 5;
            for i in 0..5 {
                // Each source returns as soon as it has something (no `Option<Woken>` to
                // carry, and drop, per source).
                match (first + i) % 5 {
                    0 => {
                        if let Some(w) = poll_datagram(&udp, cx, &mut buf, &mut copies, &drained) {
                            return Poll::Ready(w);
                        }
                    }
                    // Pushed by tasks on this thread, which wake the loop (see `Wake::poll`).
                    1 => {
                        if let Some(c) = wake.conns.borrow_mut().pop_front() {
                            return Poll::Ready(Woken::Conn(c));
                        }
                    }
                    2 if cmds_open => {
                        if let Poll::Ready(c) = cmds.as_mut().poll_next(cx) {
                            return Poll::Ready(c.map_or(Woken::CommandsClosed, Woken::Command));
                        }
                    }
                    3 if wake.poll(cx) => return Poll::Ready(Woken::Nothing),
                    4 if sleeper.poll(cx) => return Poll::Ready(Woken::Timeout),
                    _ => {}
                }
            }
            Poll::Pending
        })
        .await;
        match woken {
            Woken::Datagram(data, src) => {
                let mut s = shared.borrow_mut();
                let now = Instant::now();
                if drained.take() {
                    s.driver.ua.sip_queue_empty();
                }
                s.driver
                    .ua
                    .handle_sip_datagram(now, udp_addr, src, Transport::Udp, data);
                // Datagrams already queued are taken now, without a pass through the wait
                // (its deadline, its timer and five sources polled) for each, and what they
                // call for is sent together at the end (the loop's flush): the peer is woken
                // once for the burst's responses rather than once for each.
                for _ in 1..DATAGRAM_BURST {
                    // Read straight from the socket: no readiness to ask the reactor about.
                    // Would it block, the reactor's readiness, still set, is cleared by the
                    // wait's own read (one more `recvfrom` per wait, not per datagram).
                    let (data, src) = match udp.get_ref().recv_from(&mut buf) {
                        Ok((n, src)) => (copies.copy(&buf[..n]), src),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            drained.set(true);
                            break;
                        }
                        // An error reported on the socket (an ICMP port unreachable): the
                        // next datagram is read at the next wait.
                        Err(_) => break,
                    };
                    if drained.take() {
                        s.driver.ua.sip_queue_empty();
                    }
                    s.driver.ua.handle_sip_datagram(
                        Instant::now(),
                        udp_addr,
                        src,
                        Transport::Udp,
                        data,
                    );
                }
            }
            Woken::Conn(c) => {
                let mut s = shared.borrow_mut();
                let s = &mut *s;
                let now = Instant::now();
                match c {
                    ConnEvent::Accepted(kind, stream, remote) => {
                        let local = stream.local_addr().unwrap_or(udp_addr);
                        if let Some(id) = s.driver.conn_accepted(now, kind, local, remote) {
                            s.io.spawn_conn(id, remote, async move { Ok(stream) }, false);
                        }
                    }
                    ConnEvent::Connected(id, local) => s.driver.conn_connected(now, id, local),
                    ConnEvent::Data(id, data) => s.driver.conn_data(now, id, &data),
                    ConnEvent::Closed(id) => {
                        s.io.conns.remove(&id);
                        s.driver.conn_closed(now, id);
                    }
                }
            }
            Woken::Command(c) => shared.borrow_mut().driver.handle_command(Instant::now(), c),
            Woken::CommandsClosed => {
                cmds_open = false;
                shared.borrow_mut().driver.handles_gone(Instant::now());
            }
            Woken::Nothing => {}
            Woken::Timeout => shared.borrow_mut().driver.handle_timeout(Instant::now()),
        }
    }
}

/// At most this many SIP datagrams are taken between two waits: timers due meanwhile wait
/// that long at most (a few tens of microseconds each).
const DATAGRAM_BURST: usize = 8;

/// The next datagram on the SIP socket, if one is there (else `cx` is woken when one comes).
/// `drained` is set when the socket is read until it would block (for overload shedding,
/// [`parrot_ua::UserAgent::sip_queue_empty`]).
fn poll_datagram(
    udp: &AsyncFd<std::net::UdpSocket>,
    cx: &mut Context<'_>,
    buf: &mut [u8],
    copies: &mut parrot_ua::DatagramBuf,
    drained: &Cell<bool>,
) -> Option<Woken> {
    loop {
        let mut ready = match udp.poll_read_ready(cx) {
            Poll::Pending => return None,
            Poll::Ready(Ok(ready)) => ready,
            Poll::Ready(Err(_)) => return Some(Woken::Nothing),
        };
        // Would it block, the readiness is cleared and the socket polled again, which leaves
        // the waker.
        match ready.try_io(|s| s.get_ref().recv_from(buf)) {
            Ok(r) => {
                return Some(match r {
                    Ok((n, src)) => Woken::Datagram(copies.copy(&buf[..n]), src),
                    Err(_) => Woken::Nothing,
                })
            }
            Err(_would_block) => drained.set(true),
        }
    }
}

async fn accept_loop(kind: StreamKind, listener: TcpListener, events: ConnSender) {
    loop {
        if let Ok((stream, remote)) = listener.accept().await {
            if events
                .send(ConnEvent::Accepted(kind, stream, remote))
                .is_err()
            {
                return;
            }
        }
    }
}

async fn conn_task(
    id: ConnectionId,
    stream: TcpStream,
    mut writer: mpsc::UnboundedReceiver<Bytes>,
    events: ConnSender,
) {
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
                Ok(0) => {
                    // End of file: the layer tells an orderly close from a cut connection.
                    let _ = ev.send(ConnEvent::Data(id, Vec::new()));
                    break;
                }
                Err(_) => break,
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
