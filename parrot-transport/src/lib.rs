//! Sans-IO stream security for SIP: TLS (RFC 3261 §26.2.1 on rustls) and SIP over WebSocket
//! (RFC 7118 on RFC 6455), plain and secure.
//!
//! This crate is deterministic protocol logic: it opens no socket, reads no clock of its own,
//! spawns nothing and draws protocol randomness (WebSocket keys and masks) only from the RNG
//! handed to [`StreamLayer::connect`]. A runtime adapter (tokio, smol, mio) only shuttles raw TCP
//! bytes between a socket and a [`StreamLayer`]; every TLS record and WebSocket frame is made and
//! taken apart here. (Two things belong to rustls and its `ring` provider rather than to us: TLS
//! randomness comes from the OS, and certificate validity is checked against the system time.)
//!
//! # The drive loop
//!
//! ```text
//! let mut layer = StreamLayer::accept(StreamKind::Wss, Some(&tls))?;   // or ::connect(..)
//! loop {
//!     let n = socket.read(&mut buf)?;                   // the adapter's only IO
//!     if n == 0 { layer.handle_eof() } else { layer.handle_input(&buf[..n])? }
//!     while let Some(data) = layer.poll_sip() {
//!         match data {
//!             SipData::Stream(bytes) => endpoint.handle_stream_bytes(now, conn, &bytes),
//!             SipData::Message(msg) => { /* exactly one SIP message (RFC 7118 §5.2) */ }
//!         }
//!     }
//!     // ... the endpoint's transmits for this connection: layer.send_sip(&msg)?
//!     while let Some(bytes) = layer.poll_output() { socket.write_all(&bytes)? }
//!     if layer.is_closed() { break }
//! }
//! ```
//!
//! The rule, as everywhere in Parrot: after every `handle_*` call or mutator (`send_sip`,
//! `close`), drain the `poll_*` outputs until they return `None`. On an error, drain
//! `poll_output` once more (a TLS alert, an HTTP 400/426 answer to a bad WebSocket handshake, or a
//! Close frame may be waiting) and close the socket.
//!
//! # Layers
//!
//! | [`StreamKind`] | under SIP | SIP data handed up |
//! |---|---|---|
//! | `Tcp` | nothing | stream bytes, for the SIP stream framer (RFC 3261 §18.3) |
//! | `Tls` | TLS 1.2/1.3 | stream bytes |
//! | `Ws` | WebSocket, `sip` subprotocol | one whole SIP message per WebSocket message |
//! | `Wss` | WebSocket over TLS | one whole SIP message per WebSocket message |
//!
//! The WebSocket codec is this crate's own (RFC 6455 §5: masking rules, fragmentation, ping/pong,
//! close handshake, a message size cap that answers 1009), because it has to work on buffers,
//! not on `Read`/`Write` streams.
//!
//! Configuration: [`TlsServer`] from PEM files or a certificate from [`generate_self_signed`];
//! [`TlsClient`] trusting a PEM bundle of roots, or one pinned certificate.
#![forbid(unsafe_code)]

#[doc(hidden)]
pub mod checks;
mod error;
mod layer;
mod tls;
mod ws;

#[cfg(feature = "testing")]
pub mod testing;

pub use error::{ConfigError, HandshakeError, TransportError, WsError};
pub use layer::StreamLayer;
pub use tls::{generate_self_signed, SelfSigned, TlsClient, TlsServer};
pub use ws::DEFAULT_MAX_MESSAGE;

/// The TLS library, for its error and configuration types.
pub use rustls;

/// Which stream a SIP connection runs on (RFC 3261 §18, RFC 7118 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// Plain TCP.
    Tcp,
    /// TLS over TCP (`sips:`, `transport=tls`).
    Tls,
    /// WebSocket over TCP (`transport=ws`).
    Ws,
    /// WebSocket over TLS (`transport=wss`).
    Wss,
}

impl StreamKind {
    /// The SIP transport for Via and Contact.
    pub fn transport(self) -> parrot_proto::Transport {
        match self {
            StreamKind::Tcp => parrot_proto::Transport::Tcp,
            StreamKind::Tls => parrot_proto::Transport::Tls,
            StreamKind::Ws => parrot_proto::Transport::Ws,
            StreamKind::Wss => parrot_proto::Transport::Wss,
        }
    }

    /// The kind for a stream transport; `None` for UDP.
    pub fn from_transport(t: parrot_proto::Transport) -> Option<StreamKind> {
        match t {
            parrot_proto::Transport::Tcp => Some(StreamKind::Tcp),
            parrot_proto::Transport::Tls => Some(StreamKind::Tls),
            parrot_proto::Transport::Ws => Some(StreamKind::Ws),
            parrot_proto::Transport::Wss => Some(StreamKind::Wss),
            _ => None,
        }
    }

    /// Whether TLS runs under this kind.
    pub fn is_secure(self) -> bool {
        matches!(self, StreamKind::Tls | StreamKind::Wss)
    }

    /// Whether WebSocket framing runs under this kind.
    pub fn is_websocket(self) -> bool {
        matches!(self, StreamKind::Ws | StreamKind::Wss)
    }
}

/// SIP data that arrived on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipData {
    /// A chunk of a SIP byte stream (TCP, TLS), framed by Content-Length (RFC 3261 §18.3): feed
    /// it to the stream decoder, e.g. `Endpoint::handle_stream_bytes`.
    Stream(bytes::Bytes),
    /// One whole SIP message from one WebSocket message (RFC 7118 §5.2).
    Message(bytes::Bytes),
}

impl SipData {
    /// The bytes, whichever kind.
    pub fn bytes(&self) -> &bytes::Bytes {
        match self {
            SipData::Stream(b) | SipData::Message(b) => b,
        }
    }
}
