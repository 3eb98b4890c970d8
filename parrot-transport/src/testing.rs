//! A blocking SIP-over-WebSocket client for end-to-end tests (feature `testing`).
//!
//! It is the thinnest possible adapter: a `std::net::TcpStream` and a [`StreamLayer`], with the
//! drive loop written out. Loopback tests use it to place calls against a Parrot server that
//! listens for WS or WSS (RFC 7118) without needing a browser.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::{SipData, StreamKind, StreamLayer, TlsClient, TransportError};

fn to_io(e: TransportError) -> io::Error {
    io::Error::other(e)
}

/// A blocking WebSocket (or WSS) SIP client over one TCP connection.
#[derive(Debug)]
pub struct WsSipClient {
    stream: TcpStream,
    layer: StreamLayer,
    received: VecDeque<Bytes>,
}

impl WsSipClient {
    /// Connects to a `ws://addr{path}` SIP server and starts the opening handshake.
    pub fn connect(addr: SocketAddr, path: &str) -> io::Result<WsSipClient> {
        WsSipClient::open(addr, StreamKind::Ws, None, "localhost", path)
    }

    /// Connects to a `wss://` SIP server; `server_name` is checked against its certificate.
    pub fn connect_secure(
        addr: SocketAddr,
        tls: &TlsClient,
        server_name: &str,
        path: &str,
    ) -> io::Result<WsSipClient> {
        WsSipClient::open(addr, StreamKind::Wss, Some(tls), server_name, path)
    }

    fn open(
        addr: SocketAddr,
        kind: StreamKind,
        tls: Option<&TlsClient>,
        server_name: &str,
        path: &str,
    ) -> io::Result<WsSipClient> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        let local = stream.local_addr()?;
        // Test traffic: a seed from the local port is unpredictable enough and reproducible.
        let mut rng = ChaCha20Rng::seed_from_u64(u64::from(local.port()));
        let host = addr.to_string();
        let layer =
            StreamLayer::connect(kind, tls, server_name, &host, path, &mut rng).map_err(to_io)?;
        let mut c = WsSipClient {
            stream,
            layer,
            received: VecDeque::new(),
        };
        c.write_out()?;
        Ok(c)
    }

    /// The local address of the TCP connection (for Via and Contact).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream.local_addr()
    }

    /// Sends one SIP message as one WebSocket message.
    pub fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.layer.send_sip(msg).map_err(to_io)?;
        self.write_out()
    }

    /// Waits up to `timeout` for the next SIP message.
    pub fn recv(&mut self, timeout: Duration) -> io::Result<Bytes> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 16 * 1024];
        loop {
            if let Some(m) = self.received.pop_front() {
                return Ok(m);
            }
            if self.layer.is_closed() {
                return Err(io::ErrorKind::ConnectionAborted.into());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.stream.set_read_timeout(Some(left))?;
            let n = match self.stream.read(&mut buf) {
                Ok(n) => n,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock) => {
                    return Err(io::ErrorKind::TimedOut.into())
                }
                Err(e) => return Err(e),
            };
            if n == 0 {
                self.layer.handle_eof();
            } else {
                let r = self.layer.handle_input(&buf[..n]);
                self.write_out()?;
                r.map_err(to_io)?;
            }
            while let Some(d) = self.layer.poll_sip() {
                let (SipData::Message(m) | SipData::Stream(m)) = d;
                self.received.push_back(m);
            }
        }
    }

    /// Sends a WebSocket Close and waits briefly for the server's.
    pub fn close(mut self) -> io::Result<()> {
        self.layer.close();
        self.write_out()?;
        let _ = self.recv(Duration::from_millis(500));
        Ok(())
    }

    fn write_out(&mut self) -> io::Result<()> {
        while let Some(b) = self.layer.poll_output() {
            self.stream.write_all(&b)?;
        }
        Ok(())
    }
}
