//! The loop: sockets, one timer and a [`Driver`], on a single-threaded smol executor.
//!
//! The main task reads the SIP UDP socket and the command channel and sleeps on the timer.
//! Every other socket has a task of its own on the same thread: each call's RTP/RTCP pair,
//! each stream listener and each connection. Those tasks feed the driver directly (see
//! [`feed`]) and wake the main task only when the next deadline moved earlier.

use async_executor::{LocalExecutor, Task};
use async_io::{Async, Timer};
use futures_lite::future;
use parrot_proto::{ConnectionId, Transport};
use parrot_ua::async_channel::Receiver;
use parrot_ua::{
    spawn_agent, Agent, AgentConfig, Bound, Command, Driver, Io, MediaHandlerFactory, PortPair,
    StreamKind, UasFactory,
};
use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::pin::pin;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// Binds the SIP sockets and starts the agent on a thread of its own. `uas` makes the SIP
/// handler of each incoming request (none: every call is auto-answered when `auto_answer`);
/// `media` makes each call's media handler (none: silence).
pub fn start(
    config: AgentConfig,
    uas: Option<UasFactory>,
    media: Option<MediaHandlerFactory>,
) -> io::Result<Agent> {
    spawn_agent("smol", config, uas, media, None, |p| {
        let ex = Rc::new(LocalExecutor::new());
        async_io::block_on(ex.run(run(&ex, p.driver, p.bound, p.cmds)))
    })
}

/// Everything the tasks share: the driver and the sockets it writes to.
struct Shared {
    driver: Driver,
    io: SmolIo,
    /// The deadline the main task's timer is set to.
    armed: Option<Instant>,
    /// Wakes the main task.
    wake: Rc<Signal>,
}

/// A wake-up for the one task that waits on it (same thread), kept if sent while that task is
/// busy. Nothing is allocated to wait or to wake.
#[derive(Default)]
struct Signal {
    set: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl Signal {
    fn notify(&self) {
        self.set.set(true);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    async fn wait(&self) {
        future::poll_fn(|cx| {
            if self.set.replace(false) {
                return Poll::Ready(());
            }
            self.waker.set(Some(cx.waker().clone()));
            Poll::Pending
        })
        .await;
    }
}

/// Feeds one input to the driver from a socket task, sends what it caused, and wakes the main
/// task if the next deadline moved earlier (or a shutdown finished). `false` once the agent
/// has stopped.
fn feed(shared: &Weak<RefCell<Shared>>, input: impl FnOnce(&mut Shared, Instant)) -> bool {
    let Some(shared) = shared.upgrade() else {
        return false;
    };
    let mut s = shared.borrow_mut();
    let s = &mut *s;
    let now = Instant::now();
    input(s, now);
    s.driver.flush(&mut s.io);
    let next = s.driver.poll_timeout();
    let earlier = next.is_some_and(|n| s.armed.is_none_or(|a| n < a));
    if earlier || s.driver.ua.is_shut_down(now) {
        s.wake.notify();
    }
    true
}

/// The adapter's sockets, as the driver sees them.
struct SmolIo {
    ex: Rc<LocalExecutor<'static>>,
    shared: Weak<RefCell<Shared>>,
    udp: UdpSocket,
    media: parrot_ua::CallMap<MediaSockets>,
    /// Sockets of ended calls kept for later ones, by RTP port.
    parked: HashMap<u16, MediaSockets>,
    conns: HashMap<ConnectionId, Conn>,
}

/// A call's sockets, shared with the task reading them (dropping it cancels it); sending is a
/// non-blocking `send_to` on the inner socket, which needs no readiness.
struct MediaSockets {
    rtp: Rc<Async<Arc<UdpSocket>>>,
    rtcp: Rc<Async<Arc<UdpSocket>>>,
    _reader: Task<()>,
    /// The call the reader hands packets to ([`PARKED`]: none, drop them).
    call: Rc<Cell<u64>>,
}

/// The reader's call number while its sockets are parked ([`Io::park_media`]). Parking also
/// matters for a bare close: a cancelled task's future (and the sockets in it) is dropped only
/// when the executor gets to it, so a port closed that way is not free at once.
const PARKED: u64 = u64::MAX;

/// A stream connection: its socket's state, shared with the task that reads it and writes
/// what could not be written at once.
struct Conn {
    state: Rc<ConnState>,
    task: Task<()>,
}

struct ConnState {
    /// Set once connected.
    stream: OnceCell<Async<TcpStream>>,
    /// Bytes waiting for the socket to take them.
    out: RefCell<Vec<u8>>,
    /// Close once `out` is written.
    closing: Cell<bool>,
    /// Tells the task that `out` or `closing` changed.
    kick: Signal,
}

/// Bytes a connection may have waiting for the socket before it is given up (a peer that
/// never reads must not take unbounded memory).
const MAX_PENDING: usize = 4 << 20;

impl ConnState {
    /// A connection with no socket yet.
    fn new() -> Rc<ConnState> {
        Rc::new(ConnState {
            stream: OnceCell::new(),
            out: RefCell::new(Vec::new()),
            closing: Cell::new(false),
            kick: Signal::default(),
        })
    }

    /// Writes at once what the socket takes, and queues the rest for the connection's task.
    fn write(&self, data: &[u8]) -> io::Result<()> {
        let mut out = self.out.borrow_mut();
        let was_empty = out.is_empty();
        if out.len() + data.len() > MAX_PENDING {
            return Err(io::Error::other("peer does not read; connection given up"));
        }
        out.extend_from_slice(data);
        drop(out);
        if was_empty && self.stream.get().is_some() {
            self.flush_out()?;
        }
        if !self.out.borrow().is_empty() {
            self.kick.notify();
        }
        Ok(())
    }

    /// Writes what is queued until done or the socket is full.
    fn flush_out(&self) -> io::Result<()> {
        let Some(s) = self.stream.get() else {
            return Ok(());
        };
        let mut out = self.out.borrow_mut();
        let mut done = 0;
        let r = loop {
            if done == out.len() {
                break Ok(());
            }
            match s.get_ref().write(&out[done..]) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        out.drain(..done);
        r
    }

    /// Writes what [`ConnState::write`] queued as the socket takes it; returns once closing
    /// with nothing left ([`ConnStep::Done`]) or when writing fails ([`ConnStep::Lost`]).
    async fn writer(&self, stream: &Async<TcpStream>) -> ConnStep {
        loop {
            if self.flush_out().is_err() {
                return ConnStep::Lost;
            }
            if self.out.borrow().is_empty() {
                if self.closing.get() {
                    return ConnStep::Done;
                }
                self.kick.wait().await;
            } else if stream.writable().await.is_err() {
                return ConnStep::Lost;
            }
        }
    }
}

impl SmolIo {
    /// Starts the task of connection `id`: on `stream`, or on a connection to `dst`.
    fn spawn_conn(&mut self, id: ConnectionId, stream: Option<Async<TcpStream>>, dst: SocketAddr) {
        let state = ConnState::new();
        let connect = match stream {
            Some(s) => {
                let _ = state.stream.set(s);
                None
            }
            None => Some(dst),
        };
        let task = conn_task(self.shared.clone(), id, state.clone(), connect);
        let task = self.ex.spawn(task);
        self.conns.insert(id, Conn { state, task });
    }
}

impl Io for SmolIo {
    fn send_udp(&mut self, dst: SocketAddr, data: &[u8]) -> io::Result<()> {
        self.udp.send_to(data, dst).map(drop)
    }

    fn send_media(&mut self, call: u64, rtcp: bool, dst: SocketAddr, data: &[u8]) {
        if let Some(m) = self.media.get(&call) {
            let sock = if rtcp { &m.rtcp } else { &m.rtp };
            let _ = sock.get_ref().send_to(data, dst);
        }
    }

    fn media_socket(&self, call: u64, rtcp: bool) -> Option<&Arc<UdpSocket>> {
        let m = self.media.get(&call)?;
        Some(if rtcp {
            m.rtcp.get_ref()
        } else {
            m.rtp.get_ref()
        })
    }

    fn open_media(&mut self, call: u64, pair: PortPair) -> io::Result<()> {
        let rtp = Rc::new(Async::new(Arc::new(pair.rtp))?);
        let rtcp = Rc::new(Async::new(Arc::new(pair.rtcp))?);
        let owner = Rc::new(Cell::new(call));
        let reader = media_reader(
            self.shared.clone(),
            owner.clone(),
            rtp.clone(),
            rtcp.clone(),
        );
        let _reader = self.ex.spawn(reader);
        let m = MediaSockets {
            rtp,
            rtcp,
            _reader,
            call: owner,
        };
        self.media.insert(call, m);
        Ok(())
    }

    fn close_media(&mut self, call: u64) {
        self.media.remove(&call);
    }

    fn park_media(&mut self, call: u64, port: u16) -> bool {
        let Some(m) = self.media.remove(&call) else {
            return false;
        };
        m.call.set(PARKED);
        self.parked.insert(port, m);
        true
    }

    fn reuse_media(&mut self, port: u16, call: u64) -> bool {
        let Some(m) = self.parked.remove(&port) else {
            return false;
        };
        parrot_ua::discard_queued(|b| m.rtp.get_ref().recv_from(b));
        parrot_ua::discard_queued(|b| m.rtcp.get_ref().recv_from(b));
        m.call.set(call);
        self.media.insert(call, m);
        true
    }

    fn close_parked(&mut self, port: u16) {
        self.parked.remove(&port);
    }

    fn connect(&mut self, conn: ConnectionId, dst: SocketAddr) -> io::Result<()> {
        self.spawn_conn(conn, None, dst);
        Ok(())
    }

    fn conn_write(&mut self, conn: ConnectionId, data: &[u8]) -> io::Result<()> {
        match self.conns.get(&conn) {
            Some(c) => c.state.write(data),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    fn conn_close(&mut self, conn: ConnectionId) {
        // The task writes what is queued, then drops the socket.
        if let Some(c) = self.conns.remove(&conn) {
            c.state.closing.set(true);
            c.state.kick.notify();
            c.task.detach();
        }
    }
}

/// How many packets a media reader takes from a socket before it lets the other tasks run.
const MEDIA_BATCH: usize = 32;

/// Reads one call's RTP and RTCP sockets and hands each packet to the user agent. A socket
/// that woke is read until it would block, and waited for again only then: one re-arm of its
/// readiness per wake-up, and the other socket's wait left in place. Nothing is allocated per
/// packet.
async fn media_reader(
    shared: Weak<RefCell<Shared>>,
    owner: Rc<Cell<u64>>,
    rtp: Rc<Async<Arc<UdpSocket>>>,
    rtcp: Rc<Async<Arc<UdpSocket>>>,
) {
    let mut buf = [0u8; 2048];
    let mut ready = [true, true];
    loop {
        for (is_rtcp, sock) in [(false, &*rtp), (true, &*rtcp)] {
            let ready = &mut ready[usize::from(is_rtcp)];
            for _ in 0..MEDIA_BATCH {
                if !*ready {
                    break;
                }
                match sock.get_ref().recv_from(&mut buf) {
                    Ok(_) if owner.get() == PARKED => {}
                    Ok((n, _)) => {
                        let data = &buf[..n];
                        let call = owner.get();
                        let fed = feed(&shared, |s, now| {
                            s.driver.ua.handle_media(now, call, is_rtcp, data)
                        });
                        if !fed {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => *ready = false,
                    // An ICMP report taken off the socket: read on.
                    Err(_) => {}
                }
            }
        }
        if ready.contains(&true) {
            // A full batch: more is waiting, after the other tasks.
            future::yield_now().await;
            continue;
        }
        let woke = future::poll_fn(|cx| {
            let r = [rtp.poll_readable(cx), rtcp.poll_readable(cx)];
            if r.iter().all(Poll::is_pending) {
                return Poll::Pending;
            }
            Poll::Ready(r.map(|p| match p {
                Poll::Ready(Ok(())) => Some(true),
                Poll::Pending => Some(false),
                Poll::Ready(Err(_)) => None,
            }))
        })
        .await;
        // None: the reactor could not watch a socket; the call goes on without input.
        let [Some(a), Some(b)] = woke else { return };
        ready = [a, b];
    }
}

/// Accepts connections on a stream listener and starts a task for each.
async fn accept_loop(shared: Weak<RefCell<Shared>>, kind: StreamKind, listener: TcpListener) {
    let Ok(listener) = Async::new(listener) else {
        return;
    };
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors, most likely: let some close before trying again.
                tracing::debug!("{kind:?} accept: {e}");
                Timer::after(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(local) = stream.get_ref().local_addr() else {
            continue;
        };
        if !feed(&shared, |s, now| {
            if let Some(id) = s.driver.conn_accepted(now, kind, local, remote) {
                s.io.spawn_conn(id, Some(stream), remote);
            }
        }) {
            return;
        }
    }
}

/// What a connection's task saw.
enum ConnStep {
    Data(usize),
    /// The peer closed its side.
    Eof,
    /// Reading or writing failed.
    Lost,
    /// Closed by the driver, and everything queued is written.
    Done,
}

/// Runs one connection: connects first when `connect` says where, then hands the driver the
/// raw bytes that arrive and writes what [`ConnState::write`] queued.
async fn conn_task(
    shared: Weak<RefCell<Shared>>,
    id: ConnectionId,
    state: Rc<ConnState>,
    connect: Option<SocketAddr>,
) {
    // The socket is gone (after an EOF, the layer is told first: a TLS or WebSocket close is
    // not a cut connection).
    let lost = |shared: &Weak<RefCell<Shared>>, eof: bool| {
        feed(shared, |s, now| {
            if eof {
                s.driver.conn_data(now, id, &[]);
            }
            s.io.conns.remove(&id);
            s.driver.conn_closed(now, id);
        })
    };
    if let Some(dst) = connect {
        let Ok(stream) = Async::<TcpStream>::connect(dst).await else {
            lost(&shared, false);
            return;
        };
        let local = stream.get_ref().local_addr().unwrap_or(dst);
        let _ = state.stream.set(stream);
        feed(&shared, |s, now| s.driver.conn_connected(now, id, local));
    }
    let Some(stream) = state.stream.get() else {
        return;
    };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = async {
            match stream.read_with(|mut s| s.read(&mut buf)).await {
                Ok(0) => ConnStep::Eof,
                Ok(n) => ConnStep::Data(n),
                Err(_) => ConnStep::Lost,
            }
        };
        let write = state.writer(stream);
        let step = future::race(read, write).await;
        let more = match step {
            ConnStep::Data(n) => feed(&shared, |s, now| s.driver.conn_data(now, id, &buf[..n])),
            ConnStep::Eof | ConnStep::Lost => {
                lost(&shared, matches!(step, ConnStep::Eof));
                false
            }
            ConnStep::Done => false,
        };
        if !more {
            return;
        }
    }
}

/// What woke the main task.
enum Input {
    Udp(usize, SocketAddr),
    Command(Command),
    /// Every [`Agent`] handle is gone.
    NoCommands,
    Timer,
    /// A socket task asked for a new look at the deadline, or a read failed.
    Nothing,
}

async fn run(
    ex: &Rc<LocalExecutor<'static>>,
    driver: Driver,
    bound: Bound,
    cmds: Receiver<Command>,
) -> io::Result<()> {
    let udp_addr = bound.udp_addr()?;
    let udp = Async::new(bound.udp.try_clone()?)?;
    let wake = Rc::new(Signal::default());
    let shared = Rc::new(RefCell::new(Shared {
        driver,
        io: SmolIo {
            ex: ex.clone(),
            shared: Weak::new(),
            udp: bound.udp,
            media: Default::default(),
            parked: HashMap::new(),
            conns: HashMap::new(),
        },
        armed: None,
        wake: wake.clone(),
    }));
    let weak = Rc::downgrade(&shared);
    shared.borrow_mut().io.shared = weak.clone();
    let _listeners: Vec<Task<()>> = (bound.listeners.into_iter())
        .map(|(kind, l)| ex.spawn(accept_loop(weak.clone(), kind, l)))
        .collect();
    // The next command, waited for across turns of the loop (a fresh wait would allocate).
    let mut next_cmd = pin!(cmds.recv());
    let mut cmds_open = true;
    // One timer for the whole agent, moved only when the deadline changes.
    let mut timer = Timer::never();
    let mut buf = vec![0u8; 65_536];
    let drained = Cell::new(false);
    // Each datagram is copied out of `buf` into a chunk shared with the ones before it.
    let mut copies = parrot_ua::DatagramBuf::new();
    loop {
        {
            let mut s = shared.borrow_mut();
            let s = &mut *s;
            s.driver.flush(&mut s.io);
            if s.driver.is_shutting_down() && s.driver.is_done(Instant::now()) {
                s.io.media.clear();
                return Ok(());
            }
            let deadline = s.driver.poll_timeout();
            if deadline != s.armed {
                match deadline {
                    Some(d) => timer.set_at(d),
                    None => timer.clear(),
                }
                s.armed = deadline;
            }
        }
        let input = {
            // Read as `Async::recv_from` does, noting when the socket would block (overload
            // shedding, `UserAgent::sip_queue_empty`).
            let sip = async {
                loop {
                    match udp.get_ref().recv_from(&mut buf) {
                        Ok((n, src)) => return Input::Udp(n, src),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            drained.set(true);
                            if udp.readable().await.is_err() {
                                return Input::Nothing;
                            }
                        }
                        Err(_) => return Input::Nothing,
                    }
                }
            };
            let command = async {
                match cmds_open {
                    true => (next_cmd.as_mut().await).map_or(Input::NoCommands, Input::Command),
                    false => future::pending().await,
                }
            };
            let woken = async {
                wake.wait().await;
                Input::Nothing
            };
            let fired = async {
                (&mut timer).await;
                Input::Timer
            };
            future::race(sip, future::race(command, future::race(woken, fired))).await
        };
        let mut s = shared.borrow_mut();
        let now = Instant::now();
        match input {
            Input::Udp(n, src) => {
                let data = copies.copy(&buf[..n]);
                let ua = &mut s.driver.ua;
                if drained.take() {
                    ua.sip_queue_empty();
                }
                ua.handle_sip_datagram(now, udp_addr, src, Transport::Udp, data);
            }
            Input::Command(c) => {
                next_cmd.set(cmds.recv());
                s.driver.handle_command(now, c);
            }
            Input::NoCommands => {
                cmds_open = false;
                s.driver.handles_gone(now);
            }
            Input::Timer => {
                // A timer that fired is disarmed.
                s.armed = None;
                s.driver.handle_timeout(now);
            }
            Input::Nothing => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection's state on a loopback socket pair; returns the peer's end too.
    fn pair() -> (Rc<ConnState>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (peer, _) = listener.accept().unwrap();
        let state = ConnState::new();
        let _ = state.stream.set(Async::new(stream).unwrap());
        (state, peer)
    }

    /// What the socket does not take at once waits and goes out as the peer reads, whole and
    /// in order; a peer that never reads gets the connection given up rather than unbounded
    /// memory.
    #[test]
    fn writes_the_socket_does_not_take_wait_for_the_writer() {
        let (state, mut peer) = pair();
        // Write until the socket's buffers are full and some bytes wait, then a bit more.
        let mut data = Vec::new();
        let mut extra = 0;
        while extra < 3 {
            assert!(data.len() < 64 << 20, "the socket never filled up");
            let chunk: Vec<u8> = (data.len()..data.len() + 100_000)
                .map(|i| (i % 251) as u8)
                .collect();
            state.write(&chunk).unwrap();
            data.extend_from_slice(&chunk);
            if !state.out.borrow().is_empty() {
                extra += 1;
            }
        }
        let expected = data.len();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0u8; 65_536];
            while got.len() < expected {
                std::thread::sleep(Duration::from_millis(1));
                let n = peer.read(&mut buf).unwrap();
                assert!(n > 0);
                got.extend_from_slice(&buf[..n]);
            }
            (got, peer)
        });
        state.closing.set(true);
        let stream = state.stream.get().unwrap();
        let step = async_io::block_on(future::or(state.writer(stream), async {
            Timer::after(Duration::from_secs(20)).await;
            ConnStep::Lost
        }));
        assert!(matches!(step, ConnStep::Done), "everything was written");
        let (got, _peer) = reader.join().unwrap();
        assert!(got == data, "bytes arrive whole and in order");

        // Nobody reads any more: past MAX_PENDING the connection is given up.
        let chunk = vec![0u8; 1 << 20];
        let failed = (0..MAX_PENDING / chunk.len() + 64).any(|_| state.write(&chunk).is_err());
        assert!(failed, "a peer that never reads is given up");
        assert!(state.out.borrow().len() <= MAX_PENDING);
    }
}
