//! The sockets, as the driver sees them ([`Io`]), and the poll tokens they are registered
//! under.

use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use parrot_proto::ConnectionId;
use parrot_ua::{Io, PortPair, StreamKind};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;

/// Bytes a stream connection may have waiting for the socket before it is given up.
const MAX_PENDING: usize = 4 << 20;

/// What a token stands for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source {
    /// The UDP SIP socket.
    Udp,
    /// A stream listener (its index).
    Listener(usize),
    /// A stream connection.
    Conn(ConnectionId),
    /// One of a call's media sockets.
    Media { call: u64, rtcp: bool },
    /// The precise timer (`timerfd`) that wakes the poll on time.
    Timer,
    /// A parked media socket ([`Io::park_media`]): what arrives is dropped.
    Parked { port: u16, rtcp: bool },
}

/// A call's RTP and RTCP sockets.
pub(crate) struct MediaSockets {
    /// Shared with the driver's media-sending thread; registered by descriptor.
    pub rtp: Arc<std::net::UdpSocket>,
    pub rtcp: Arc<std::net::UdpSocket>,
    tokens: [Token; 2],
}

/// A TCP connection: the stream and what is waiting to be written to it.
pub(crate) struct Conn {
    pub stream: TcpStream,
    token: Token,
    /// A connect in progress: writes wait, and the first WRITABLE tells how it went.
    pub connecting: bool,
    /// The driver is done with it: it goes once what is waiting is written.
    pub closing: bool,
    out: Vec<u8>,
}

impl Conn {
    /// Writes `data` now if nothing is waiting, and keeps what the socket does not take.
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let mut data = data;
        if !self.connecting && self.out.is_empty() {
            while !data.is_empty() {
                match self.stream.write(data) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => data = &data[n..],
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if self.out.len() + data.len() > MAX_PENDING {
            return Err(io::Error::other("peer does not read; connection given up"));
        }
        self.out.extend_from_slice(data);
        Ok(())
    }

    /// Writes what is waiting, until done or the socket is full (the socket turned WRITABLE).
    pub fn flush_out(&mut self) -> io::Result<()> {
        let mut done = 0;
        let r = loop {
            if done == self.out.len() {
                break Ok(());
            }
            match self.stream.write(&self.out[done..]) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.out.drain(..done);
        r
    }

    /// Whether everything written has gone to the socket.
    pub fn is_flushed(&self) -> bool {
        self.out.is_empty()
    }

    /// Reads until the socket would block, handing each chunk to `f`; `Ok(false)` when the
    /// peer closed.
    pub fn read_all(&mut self, buf: &mut [u8], mut f: impl FnMut(&[u8])) -> io::Result<bool> {
        loop {
            match self.stream.read(buf) {
                Ok(0) => return Ok(false),
                Ok(n) => f(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// The adapter's sockets and their tokens.
pub(crate) struct MioIo {
    registry: Registry,
    pub udp: UdpSocket,
    pub listeners: Vec<(StreamKind, TcpListener)>,
    pub sources: HashMap<Token, Source>,
    next_token: usize,
    pub media: parrot_ua::CallMap<MediaSockets>,
    /// Sockets of ended calls kept for later ones, by RTP port.
    pub parked: HashMap<u16, MediaSockets>,
    pub conns: HashMap<ConnectionId, Conn>,
    /// Wakes the poll when a timer is due: `Poll::poll` sleeps in whole milliseconds, and
    /// the media grid needs its wake-ups on time (see `parrot_ua::PreciseTimer`).
    #[cfg(target_os = "linux")]
    pub timer: Option<parrot_ua::PreciseTimer>,
}

impl MioIo {
    /// Registers the SIP sockets; tokens are taken from `first` on.
    pub fn new(
        registry: &Registry,
        first: Token,
        mut udp: UdpSocket,
        mut listeners: Vec<(StreamKind, TcpListener)>,
    ) -> io::Result<MioIo> {
        let mut sources = HashMap::new();
        let mut next_token = first.0;
        let mut token = |s: Source| {
            let t = Token(next_token);
            next_token += 1;
            sources.insert(t, s);
            t
        };
        registry.register(&mut udp, token(Source::Udp), Interest::READABLE)?;
        for (i, (_, l)) in listeners.iter_mut().enumerate() {
            registry.register(l, token(Source::Listener(i)), Interest::READABLE)?;
        }
        #[cfg(target_os = "linux")]
        let timer = match parrot_ua::PreciseTimer::new() {
            Ok(t) => {
                use std::os::fd::AsRawFd;
                let fd = t.as_raw_fd();
                let at = token(Source::Timer);
                registry.register(&mut mio::unix::SourceFd(&fd), at, Interest::READABLE)?;
                Some(t)
            }
            Err(_) => None,
        };
        Ok(MioIo {
            #[cfg(target_os = "linux")]
            timer,
            registry: registry.try_clone()?,
            udp,
            listeners,
            sources,
            next_token,
            media: Default::default(),
            parked: HashMap::new(),
            conns: HashMap::new(),
        })
    }

    fn token(&mut self, s: Source) -> Token {
        let t = Token(self.next_token);
        self.next_token += 1;
        self.sources.insert(t, s);
        t
    }

    /// Registers connection `id` (accepted, or with a connect under way).
    pub fn add_conn(
        &mut self,
        id: ConnectionId,
        mut stream: TcpStream,
        connecting: bool,
    ) -> io::Result<()> {
        let token = self.token(Source::Conn(id));
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self.registry.register(&mut stream, token, interest) {
            self.sources.remove(&token);
            return Err(e);
        }
        let conn = Conn {
            stream,
            token,
            connecting,
            closing: false,
            out: Vec::new(),
        };
        self.conns.insert(id, conn);
        Ok(())
    }

    /// Forgets a connection and closes its socket.
    pub fn remove_conn(&mut self, id: ConnectionId) {
        if let Some(mut c) = self.conns.remove(&id) {
            let _ = self.registry.deregister(&mut c.stream);
            self.sources.remove(&c.token);
        }
    }

    /// Closes every socket but the SIP ones (the loop ends).
    pub fn close_all(&mut self) {
        let calls: Vec<u64> = self.media.keys().copied().collect();
        for c in calls {
            self.close_media(c);
        }
        let parked: Vec<u16> = self.parked.keys().copied().collect();
        for p in parked {
            self.close_parked(p);
        }
        let conns: Vec<ConnectionId> = self.conns.keys().copied().collect();
        for c in conns {
            self.remove_conn(c);
        }
    }
}

impl Io for MioIo {
    fn send_udp(&mut self, dst: SocketAddr, data: &[u8]) -> io::Result<()> {
        match self.udp.send_to(data, dst) {
            // A full socket buffer is a lost datagram, not a dead peer: SIP over UDP
            // retransmits (§17.1.1.2), so the transaction is not told of a transport error.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            r => r.map(drop),
        }
    }

    fn connect(&mut self, conn: ConnectionId, dst: SocketAddr) -> io::Result<()> {
        let stream = TcpStream::connect(dst)?;
        self.add_conn(conn, stream, true)
    }

    fn conn_write(&mut self, conn: ConnectionId, data: &[u8]) -> io::Result<()> {
        match self.conns.get_mut(&conn) {
            Some(c) if !c.closing => c.write(data),
            _ => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    fn conn_close(&mut self, conn: ConnectionId) {
        match self.conns.get_mut(&conn) {
            Some(c) if !c.connecting && !c.is_flushed() => c.closing = true,
            Some(_) => self.remove_conn(conn),
            None => {}
        }
    }

    fn send_media(&mut self, call: u64, rtcp: bool, dst: SocketAddr, data: &[u8]) {
        if let Some(m) = self.media.get(&call) {
            let sock = if rtcp { &m.rtcp } else { &m.rtp };
            // Non-blocking; a packet the socket has no room for is dropped (RTP tolerates
            // loss, RTCP comes again).
            let _ = sock.send_to(data, dst);
        }
    }

    fn media_socket(&self, call: u64, rtcp: bool) -> Option<&Arc<std::net::UdpSocket>> {
        let m = self.media.get(&call)?;
        Some(if rtcp { &m.rtcp } else { &m.rtp })
    }

    fn open_media(&mut self, call: u64, pair: PortPair) -> io::Result<()> {
        let rtp = Arc::new(pair.rtp);
        let rtcp = Arc::new(pair.rtcp);
        let a = self.token(Source::Media { call, rtcp: false });
        let b = self.token(Source::Media { call, rtcp: true });
        let r = self
            .registry
            .register(&mut SourceFd(&rtp.as_raw_fd()), a, Interest::READABLE)
            .and_then(|()| {
                self.registry
                    .register(&mut SourceFd(&rtcp.as_raw_fd()), b, Interest::READABLE)
            });
        if let Err(e) = r {
            let _ = self.registry.deregister(&mut SourceFd(&rtp.as_raw_fd()));
            self.sources.remove(&a);
            self.sources.remove(&b);
            return Err(e);
        }
        self.media.insert(
            call,
            MediaSockets {
                rtp,
                rtcp,
                tokens: [a, b],
            },
        );
        Ok(())
    }

    fn close_media(&mut self, call: u64) {
        if let Some(m) = self.media.remove(&call) {
            self.forget(m);
        }
    }

    fn park_media(&mut self, call: u64, port: u16) -> bool {
        let Some(m) = self.media.remove(&call) else {
            return false;
        };
        for (t, rtcp) in m.tokens.into_iter().zip([false, true]) {
            self.sources.insert(t, Source::Parked { port, rtcp });
        }
        if let Some(old) = self.parked.insert(port, m) {
            self.forget(old);
        }
        true
    }

    fn reuse_media(&mut self, port: u16, call: u64) -> bool {
        let Some(m) = self.parked.remove(&port) else {
            return false;
        };
        drain(&m.rtp);
        drain(&m.rtcp);
        for (t, rtcp) in m.tokens.into_iter().zip([false, true]) {
            self.sources.insert(t, Source::Media { call, rtcp });
        }
        self.media.insert(call, m);
        true
    }

    fn close_parked(&mut self, port: u16) {
        if let Some(m) = self.parked.remove(&port) {
            self.forget(m);
        }
    }
}

impl MioIo {
    /// Deregisters and closes a call's (or a parked) socket pair.
    fn forget(&mut self, m: MediaSockets) {
        let _ = self.registry.deregister(&mut SourceFd(&m.rtp.as_raw_fd()));
        let _ = self.registry.deregister(&mut SourceFd(&m.rtcp.as_raw_fd()));
        for t in m.tokens {
            self.sources.remove(&t);
        }
    }
}

/// Reads and drops what is queued on a socket ([`parrot_ua::discard_queued`]); the poll is
/// edge-triggered, so a parked socket must be emptied on each wake-up.
pub(crate) fn drain(sock: &std::net::UdpSocket) {
    parrot_ua::discard_queued(|b| sock.recv_from(b));
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};

    /// A peer that reads slowly: what the socket does not take waits in the connection's
    /// buffer, goes out on WRITABLE, in order; a peer that never reads gets the connection
    /// given up rather than unbounded memory.
    #[test]
    fn writes_the_socket_does_not_take_wait_for_writable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut poll = Poll::new().unwrap();
        let mut stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let token = Token(7);
        poll.registry()
            .register(&mut stream, token, Interest::WRITABLE)
            .unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let mut conn = Conn {
            stream,
            token,
            connecting: false,
            closing: false,
            out: Vec::new(),
        };
        // Write until the socket's buffers are full and some bytes wait, then a bit more.
        let mut data = Vec::new();
        let mut i = 0u32;
        let mut extra = 0;
        while extra < 3 {
            assert!(data.len() < 64 << 20, "the socket never filled up");
            let chunk: Vec<u8> = (0..100_000)
                .map(|_| {
                    i += 1;
                    (i % 251) as u8
                })
                .collect();
            conn.write(&chunk).unwrap();
            data.extend_from_slice(&chunk);
            if !conn.is_flushed() {
                extra += 1;
            }
        }
        let expected = data.clone();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0u8; 65_536];
            while got.len() < expected.len() {
                std::thread::sleep(std::time::Duration::from_millis(1));
                let n = peer.read(&mut buf).unwrap();
                assert!(n > 0);
                got.extend_from_slice(&buf[..n]);
            }
            assert!(got == expected, "bytes arrive whole and in order");
            peer
        });
        let mut events = Events::with_capacity(4);
        let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !conn.is_flushed() {
            assert!(std::time::Instant::now() < end);
            poll.poll(&mut events, Some(std::time::Duration::from_millis(100)))
                .unwrap();
            conn.flush_out().unwrap();
        }
        let _peer = reader.join().unwrap();
        // Nobody reads any more: past MAX_PENDING the connection is given up.
        let chunk = vec![0u8; 1 << 20];
        let mut r = Ok(());
        for _ in 0..64 {
            r = conn.write(&chunk);
            if r.is_err() {
                break;
            }
        }
        assert!(r.is_err(), "a peer that does not read is given up");
        assert!(conn.out.len() <= MAX_PENDING);
    }
}
