//! RTP port pairs from a configured range (RFC 3550 §11: RTP on an even port, RTCP on the
//! next). Plain `std` sockets, set non-blocking, for any adapter to register with its reactor.

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};

/// The ports in use.
#[derive(Debug)]
pub struct PortPool {
    lo: u16,
    hi: u16,
    next: u16,
    used: BTreeSet<u16>,
}

/// A bound, non-blocking RTP/RTCP socket pair.
#[derive(Debug)]
pub struct PortPair {
    /// The RTP socket, on the even port.
    pub rtp: UdpSocket,
    /// The RTCP socket, on the port after it.
    pub rtcp: UdpSocket,
    /// The RTP port.
    pub port: u16,
}

impl PortPool {
    /// Ports `lo..=hi` (`lo` rounded up to even).
    pub fn new(lo: u16, hi: u16) -> Self {
        let lo = lo.saturating_add(lo % 2);
        PortPool {
            lo,
            hi,
            next: lo,
            used: BTreeSet::new(),
        }
    }

    /// Binds the next free even port and the one after it; ports another program holds are
    /// skipped. Give the port back with [`PortPool::release`].
    pub fn bind(&mut self, ip: IpAddr) -> io::Result<PortPair> {
        let span = (u32::from(self.hi.saturating_sub(self.lo)) / 2 + 1) as usize;
        for _ in 0..span {
            let Some(port) = self.reserve() else { break };
            let rtp = UdpSocket::bind(SocketAddr::new(ip, port));
            let rtcp = UdpSocket::bind(SocketAddr::new(ip, port.saturating_add(1)));
            match (rtp, rtcp) {
                (Ok(rtp), Ok(rtcp)) => {
                    rtp.set_nonblocking(true)?;
                    rtcp.set_nonblocking(true)?;
                    return Ok(PortPair { rtp, rtcp, port });
                }
                _ => self.release(port),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("no free RTP port pair in {}-{}", self.lo, self.hi),
        ))
    }

    fn reserve(&mut self) -> Option<u16> {
        let span = u32::from(self.hi.saturating_sub(self.lo)) / 2 + 1;
        for _ in 0..span {
            let p = self.next;
            self.next = if u32::from(p) + 2 > u32::from(self.hi) {
                self.lo
            } else {
                p + 2
            };
            if self.used.insert(p) {
                return Some(p);
            }
        }
        None
    }

    /// The pair on `port` was closed.
    pub fn release(&mut self, port: u16) {
        self.used.remove(&port);
    }
}

/// Reads and drops whatever is queued on a non-blocking socket, through `recv` (its
/// `recv_from`, whichever socket type): the packets an ended call's peer sent after it, before
/// the socket serves another call. Stops when the socket would block, or after 1,024 packets.
pub fn discard_queued<T>(mut recv: impl FnMut(&mut [u8]) -> io::Result<T>) {
    let mut buf = [0u8; 2048];
    for _ in 0..1024 {
        match recv(&mut buf) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
