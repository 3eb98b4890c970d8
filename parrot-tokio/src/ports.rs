//! RTP port pairs from a configured range (RFC 3550 §11: RTP on an even port, RTCP on the next).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;

/// The ports in use, shared by the calls that hold them.
#[derive(Debug, Clone)]
pub(crate) struct PortPool {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    lo: u16,
    hi: u16,
    next: u16,
    used: BTreeSet<u16>,
}

/// A bound RTP/RTCP socket pair; its ports return to the pool when dropped.
#[derive(Debug)]
pub(crate) struct PortPair {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
    pub port: u16,
    pool: PortPool,
}

impl Drop for PortPair {
    fn drop(&mut self) {
        if let Ok(mut i) = self.pool.inner.lock() {
            i.used.remove(&self.port);
        }
    }
}

impl PortPool {
    pub fn new(lo: u16, hi: u16) -> Self {
        let lo = lo + (lo % 2);
        PortPool {
            inner: Arc::new(Mutex::new(Inner {
                lo,
                hi,
                next: lo,
                used: BTreeSet::new(),
            })),
        }
    }

    /// Binds the next free even port and the one after it. Ports that another program holds
    /// are skipped.
    pub async fn bind(&self, ip: IpAddr) -> std::io::Result<PortPair> {
        let (lo, hi) = {
            let i = self.inner.lock().map_err(|_| std::io::ErrorKind::Other)?;
            (i.lo, i.hi)
        };
        let span = (u32::from(hi.saturating_sub(lo)) / 2 + 1) as usize;
        for _ in 0..span {
            let Some(port) = self.reserve() else { break };
            let rtp = UdpSocket::bind(SocketAddr::new(ip, port)).await;
            let rtcp = UdpSocket::bind(SocketAddr::new(ip, port + 1)).await;
            match (rtp, rtcp) {
                (Ok(rtp), Ok(rtcp)) => {
                    return Ok(PortPair {
                        rtp,
                        rtcp,
                        port,
                        pool: self.clone(),
                    })
                }
                _ => self.release(port),
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("no free RTP port pair in {lo}-{hi}"),
        ))
    }

    fn reserve(&self) -> Option<u16> {
        let mut i = self.inner.lock().ok()?;
        let span = u32::from(i.hi.saturating_sub(i.lo)) / 2 + 1;
        for _ in 0..span {
            let p = i.next;
            i.next = if u32::from(p) + 2 > u32::from(i.hi) {
                i.lo
            } else {
                p + 2
            };
            if i.used.insert(p) {
                return Some(p);
            }
        }
        None
    }

    fn release(&self, port: u16) {
        if let Ok(mut i) = self.inner.lock() {
            i.used.remove(&port);
        }
    }
}
