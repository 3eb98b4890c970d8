//! Transport labels and outgoing datagrams (RFC 3261 §18).
//!
//! The core never touches a socket: it only labels which transport a message came in on or must
//! leave on, and which stream connection carries it. Reliability decides which retransmission
//! timers run (§17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2).

use bytes::Bytes;
use std::fmt;
use std::net::SocketAddr;

/// A SIP transport, as the adapter labels it (§18, RFC 7118 for WebSocket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// UDP: unreliable, datagram framed.
    Udp,
    /// TCP: reliable, stream framed (§18.3).
    Tcp,
    /// TLS over TCP: reliable, stream framed.
    Tls,
    /// WebSocket (RFC 7118): reliable, one message per frame.
    Ws,
    /// Secure WebSocket (RFC 7118).
    Wss,
}

impl Transport {
    /// Whether the transport is reliable: timers A, E, G collapse and D, I, J, K are zero
    /// (§17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// The token written in a Via header (§20.42, RFC 7118 §5.2).
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
        }
    }

    /// The `transport=` URI parameter value, `None` for UDP (the default, §19.1.1).
    pub fn uri_param(self) -> Option<&'static str> {
        match self {
            Transport::Udp => None,
            Transport::Tcp => Some("tcp"),
            Transport::Tls => Some("tls"),
            Transport::Ws => Some("ws"),
            Transport::Wss => Some("wss"),
        }
    }

    /// Classifies a Via transport token; unknown tokens give `None`.
    pub fn from_via_token(s: &str) -> Option<Transport> {
        [
            Transport::Udp,
            Transport::Tcp,
            Transport::Tls,
            Transport::Ws,
            Transport::Wss,
        ]
        .into_iter()
        .find(|t| t.via_token().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.via_token())
    }
}

/// An adapter-chosen identifier of one stream connection (TCP, TLS or WebSocket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

/// Bytes the adapter must send (§18.1.1, §18.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send.
    pub dst: SocketAddr,
    /// On which transport.
    pub transport: Transport,
    /// The stream connection to use, when one is known; `None` on a stream transport asks the
    /// adapter to open (or reuse) a connection to `dst`.
    pub conn: Option<ConnectionId>,
    /// One whole SIP message.
    pub payload: Bytes,
}
