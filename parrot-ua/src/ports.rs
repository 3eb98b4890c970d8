//! RTP port pairs from a configured range (RFC 3550 §11: RTP on an even port, RTCP on the
//! next). Plain `std` sockets, set non-blocking, for any adapter to register with its reactor.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};

/// The RTP ports of a range that are not in use, least recently used first.
#[derive(Debug)]
pub struct PortPool {
    lo: u16,
    hi: u16,
    /// Even ports whose pair is free. Taking from the front and giving back at the end is
    /// O(1) whatever the load (a full range answers at once, with no scan), and a released
    /// port is the last to be used again, so late packets of an ended call rarely reach the
    /// next one.
    free: VecDeque<u16>,
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
    /// The pairs in `lo..=hi`: each even port from `lo` (rounded up to even) whose next port
    /// is in the range too.
    pub fn new(lo: u16, hi: u16) -> Self {
        let lo = lo.saturating_add(lo % 2);
        let free = (u32::from(lo)..u32::from(hi))
            .step_by(2)
            .filter_map(|p| u16::try_from(p).ok())
            .collect();
        PortPool { lo, hi, free }
    }

    /// Binds the least recently used free pair; pairs another program holds are skipped (and
    /// tried again later). Give the port back with [`PortPool::release`].
    pub fn bind(&mut self, ip: IpAddr) -> io::Result<PortPair> {
        for _ in 0..self.free.len() {
            let Some(port) = self.free.pop_front() else {
                break;
            };
            let rtp = UdpSocket::bind(SocketAddr::new(ip, port));
            let rtcp = UdpSocket::bind(SocketAddr::new(ip, port.saturating_add(1)));
            match (rtp, rtcp) {
                (Ok(rtp), Ok(rtcp)) => {
                    rtp.set_nonblocking(true)?;
                    rtcp.set_nonblocking(true)?;
                    return Ok(PortPair { rtp, rtcp, port });
                }
                _ => self.free.push_back(port),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("no free RTP port pair in {}-{}", self.lo, self.hi),
        ))
    }

    /// Pairs not in use.
    pub fn free(&self) -> usize {
        self.free.len()
    }

    /// The pair on `port` was closed.
    pub fn release(&mut self, port: u16) {
        self.free.push_back(port);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn a_range_holds_the_even_ports_whose_rtcp_port_is_in_it_too() {
        assert_eq!(PortPool::new(30000, 30009).free(), 5);
        assert_eq!(PortPool::new(30001, 30010).free(), 4);
        assert_eq!(PortPool::new(30000, 30000).free(), 0);
    }

    #[test]
    fn a_full_range_refuses_at_once_and_a_released_pair_is_used_last() {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        // Find a free stretch (a server beside the tests may hold thousands of ports): try
        // ranges from 41000 up, then from 20000, until all of one binds.
        let (mut pool, pairs) = (0..2500u16)
            .find_map(|i| {
                let lo = 20000 + (21000 + i * 16) % 40000;
                let mut pool = PortPool::new(lo, lo + 5);
                let pairs: Vec<_> = (0..3).map_while(|_| pool.bind(ip).ok()).collect();
                (pairs.len() == 3).then_some((pool, pairs))
            })
            .expect("a free range of three pairs on loopback");
        assert_eq!(pool.free(), 0);
        assert!(pool.bind(ip).is_err(), "full");
        let first = pairs[0].port;
        let second = pairs[1].port;
        drop(pairs);
        pool.release(first);
        pool.release(second);
        assert_eq!(pool.bind(ip).unwrap().port, first);
        assert_eq!(pool.bind(ip).unwrap().port, second);
    }
}
