//! The sockets, as the driver sees them ([`Io`]), and the poll tokens they are registered
//! under.

use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Interest, Registry, Token};
use parrot_proto::{ConnectionId, Transmit, Transport};
use parrot_ua::{Io, PortPair};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

/// Bytes a stream connection may have waiting for the socket before it is given up.
const MAX_PENDING: usize = 4 << 20;

/// What a token stands for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source {
    /// The UDP SIP socket.
    Udp,
    /// A TCP listener (its index).
    Listener(usize),
    /// A stream connection.
    Conn(ConnectionId),
    /// One of a call's media sockets.
    Media { call: u64, rtcp: bool },
}

/// A call's RTP and RTCP sockets.
pub(crate) struct MediaSockets {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
    tokens: [Token; 2],
}

/// A TCP connection: the stream and what is waiting to be written to it.
pub(crate) struct Conn {
    pub stream: TcpStream,
    pub token: Token,
    pub remote: SocketAddr,
    /// A connect in progress: writes wait, and the first WRITABLE tells how it went.
    pub connecting: bool,
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
    pub listeners: Vec<TcpListener>,
    pub sources: HashMap<Token, Source>,
    next_token: usize,
    pub media: HashMap<u64, MediaSockets>,
    pub conns: HashMap<ConnectionId, Conn>,
    by_remote: HashMap<SocketAddr, ConnectionId>,
    next_conn: u64,
    /// Connections that failed inside a send: closed (and reported) after the flush.
    pub dead: Vec<ConnectionId>,
}

impl MioIo {
    /// Registers the SIP sockets; tokens are taken from `first` on.
    pub fn new(
        registry: &Registry,
        first: Token,
        mut udp: UdpSocket,
        mut listeners: Vec<TcpListener>,
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
        for (i, l) in listeners.iter_mut().enumerate() {
            registry.register(l, token(Source::Listener(i)), Interest::READABLE)?;
        }
        Ok(MioIo {
            registry: registry.try_clone()?,
            udp,
            listeners,
            sources,
            next_token,
            media: HashMap::new(),
            conns: HashMap::new(),
            by_remote: HashMap::new(),
            next_conn: 1,
            dead: Vec::new(),
        })
    }

    fn token(&mut self, s: Source) -> Token {
        let t = Token(self.next_token);
        self.next_token += 1;
        self.sources.insert(t, s);
        t
    }

    fn new_conn(&mut self) -> ConnectionId {
        let id = ConnectionId(self.next_conn);
        self.next_conn += 1;
        id
    }

    /// Registers a connection (accepted, or with a connect under way).
    pub fn add_conn(
        &mut self,
        mut stream: TcpStream,
        remote: SocketAddr,
        connecting: bool,
    ) -> io::Result<ConnectionId> {
        let id = self.new_conn();
        let token = self.token(Source::Conn(id));
        if let Err(e) =
            self.registry
                .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
        {
            self.sources.remove(&token);
            return Err(e);
        }
        self.conns.insert(
            id,
            Conn {
                stream,
                token,
                remote,
                connecting,
                out: Vec::new(),
            },
        );
        self.by_remote.insert(remote, id);
        Ok(id)
    }

    /// Forgets a connection and closes its socket.
    pub fn remove_conn(&mut self, id: ConnectionId) -> bool {
        let Some(mut c) = self.conns.remove(&id) else {
            return false;
        };
        let _ = self.registry.deregister(&mut c.stream);
        self.sources.remove(&c.token);
        if self.by_remote.get(&c.remote) == Some(&id) {
            self.by_remote.remove(&c.remote);
        }
        true
    }

    /// Every call's media sockets are closed (the loop ends).
    pub fn close_all(&mut self) {
        let calls: Vec<u64> = self.media.keys().copied().collect();
        for c in calls {
            self.close_media(c);
        }
        let conns: Vec<ConnectionId> = self.conns.keys().copied().collect();
        for c in conns {
            self.remove_conn(c);
        }
    }
}

impl Io for MioIo {
    fn send_sip(&mut self, t: Transmit) -> io::Result<()> {
        if t.transport == Transport::Udp {
            return self.udp.send_to(&t.payload, t.dst).map(drop);
        }
        let id = t
            .conn
            .filter(|c| self.conns.contains_key(c))
            .or_else(|| self.by_remote.get(&t.dst).copied());
        let id = match id {
            Some(id) => id,
            None => {
                let stream = TcpStream::connect(t.dst)?;
                self.add_conn(stream, t.dst, true)?
            }
        };
        let conn = self
            .conns
            .get_mut(&id)
            .ok_or(io::Error::from(io::ErrorKind::NotConnected))?;
        let r = conn.write(&t.payload);
        if r.is_err() {
            self.dead.push(id);
        }
        r
    }

    fn send_media(&mut self, call: u64, rtcp: bool, dst: SocketAddr, data: &[u8]) {
        if let Some(m) = self.media.get(&call) {
            let sock = if rtcp { &m.rtcp } else { &m.rtp };
            // Non-blocking; a packet the socket has no room for is dropped (RTP tolerates
            // loss, RTCP comes again).
            let _ = sock.send_to(data, dst);
        }
    }

    fn open_media(&mut self, call: u64, pair: PortPair) -> io::Result<()> {
        let mut rtp = UdpSocket::from_std(pair.rtp);
        let mut rtcp = UdpSocket::from_std(pair.rtcp);
        let a = self.token(Source::Media { call, rtcp: false });
        let b = self.token(Source::Media { call, rtcp: true });
        let r = self
            .registry
            .register(&mut rtp, a, Interest::READABLE)
            .and_then(|()| self.registry.register(&mut rtcp, b, Interest::READABLE));
        if let Err(e) = r {
            let _ = self.registry.deregister(&mut rtp);
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
        if let Some(mut m) = self.media.remove(&call) {
            let _ = self.registry.deregister(&mut m.rtp);
            let _ = self.registry.deregister(&mut m.rtcp);
            for t in m.tokens {
                self.sources.remove(&t);
            }
        }
    }
}
