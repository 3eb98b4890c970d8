//! Errors of the stream layer: one `#[non_exhaustive]` error for the crate, with small `Copy`
//! enums for the WebSocket handshake and framing.

use std::fmt;

/// Why a WebSocket opening handshake failed (RFC 6455 §4.1, §4.2.1; RFC 7118 §4.1).
///
/// On the server side the peer has been sent the HTTP answer named by [`HandshakeError::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The header section exceeded the size limit before its blank line (answer 431).
    TooLarge,
    /// Not an HTTP/1.1 request or response, or a malformed header line (answer 400).
    Malformed,
    /// A method other than GET (§4.2.1 item 1; answer 405).
    NotGet,
    /// No Host header (§4.2.1 item 2; answer 400).
    MissingHost,
    /// No `Upgrade: websocket` (§4.2.1 item 3; answer 426).
    NotUpgrade,
    /// No `upgrade` token in Connection (§4.2.1 item 4; answer 400).
    MissingConnectionUpgrade,
    /// Sec-WebSocket-Key missing, repeated, or not 16 bytes in base64 (§4.2.1 item 5; answer 400).
    BadKey,
    /// Sec-WebSocket-Version other than 13 (§4.2.1 item 6, §4.4; answer 426).
    UnsupportedVersion,
    /// The `sip` subprotocol was not offered or not selected (RFC 7118 §4.1; answer 400).
    NoSipProtocol,
    /// Client side: the server answered with this status instead of 101 (§4.1).
    Rejected(u16),
    /// Client side: Sec-WebSocket-Accept did not match our key (§4.1 item 4 of the response rules).
    BadAccept,
}

impl HandshakeError {
    /// The HTTP status a server answers with for this failure (RFC 6455 §4.2.1, §4.4).
    pub fn status(self) -> u16 {
        match self {
            HandshakeError::TooLarge => 431,
            HandshakeError::NotGet => 405,
            HandshakeError::NotUpgrade | HandshakeError::UnsupportedVersion => 426,
            HandshakeError::Rejected(s) => s,
            _ => 400,
        }
    }
}

/// A WebSocket framing violation (RFC 6455 §5, §7.1.7 "Fail the WebSocket Connection").
///
/// The layer has queued a Close frame with [`WsError::close_code`] before reporting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WsError {
    /// RSV1-3 set without a negotiated extension (§5.2).
    ReservedBits,
    /// A reserved opcode (§5.2).
    UnknownOpcode(u8),
    /// A 64-bit payload length with its most significant bit set (§5.2).
    BadLength,
    /// A control frame without FIN (§5.5).
    FragmentedControl,
    /// A control frame with more than 125 bytes of payload (§5.5).
    ControlTooLong,
    /// A client frame that is not masked (§5.1).
    UnmaskedClientFrame,
    /// A server frame that is masked (§5.1).
    MaskedServerFrame,
    /// A continuation frame with no message in progress (§5.4).
    UnexpectedContinuation,
    /// A new data frame while a fragmented message is in progress (§5.4).
    ExpectedContinuation,
    /// A message larger than the layer's limit (§7.4.1 code 1009).
    MessageTooBig,
    /// A text message or close reason that is not UTF-8 (§8.1).
    InvalidUtf8,
    /// A Close frame with a one-byte body or a code a peer may not send (§5.5.1, §7.4).
    BadClosePayload,
}

impl WsError {
    /// The close status code sent to the peer (RFC 6455 §7.4.1).
    pub fn close_code(self) -> u16 {
        use crate::ws::frame::close_code::*;
        match self {
            WsError::MessageTooBig => MESSAGE_TOO_BIG,
            WsError::InvalidUtf8 => INVALID_PAYLOAD,
            _ => PROTOCOL_ERROR,
        }
    }
}

/// The error of every `StreamLayer` operation.
///
/// After an error, drain `poll_output` (it may hold a TLS alert, an HTTP error answer or a
/// WebSocket Close frame), write it, and close the socket: the layer takes no more input.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TransportError {
    /// A TLS or WSS layer was asked for without a TLS configuration.
    MissingTlsConfig,
    /// The TLS server name, WebSocket host or path cannot be used (RFC 6066 §3, RFC 6455 §4.1).
    InvalidTarget,
    /// TLS failed (bad record, handshake failure, certificate rejected).
    Tls(rustls::Error),
    /// The WebSocket opening handshake failed.
    Handshake(HandshakeError),
    /// The peer broke WebSocket framing rules.
    WebSocket(WsError),
    /// The connection was closed (by us, by the peer, or after an earlier error).
    Closed,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::MissingTlsConfig => f.write_str("TLS configuration missing"),
            TransportError::InvalidTarget => f.write_str("invalid server name, host or path"),
            TransportError::Tls(e) => write!(f, "TLS: {e}"),
            TransportError::Handshake(e) => {
                write!(f, "WebSocket handshake: {e:?} ({})", e.status())
            }
            TransportError::WebSocket(e) => {
                write!(f, "WebSocket framing: {e:?} (close {})", e.close_code())
            }
            TransportError::Closed => f.write_str("connection closed"),
        }
    }
}

impl std::error::Error for TransportError {}

impl From<rustls::Error> for TransportError {
    fn from(e: rustls::Error) -> Self {
        TransportError::Tls(e)
    }
}

/// Why a TLS configuration could not be built (PEM files, keys, certificate generation).
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// Reading a PEM file failed.
    Io(std::io::Error),
    /// A PEM section was malformed, or none of the expected kind was found.
    Pem(String),
    /// rustls refused the certificate or key.
    Tls(rustls::Error),
    /// Generating a self-signed certificate failed.
    Generate(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Io(e) => write!(f, "reading PEM: {e}"),
            ConfigError::Pem(e) => write!(f, "PEM: {e}"),
            ConfigError::Tls(e) => write!(f, "TLS configuration: {e}"),
            ConfigError::Generate(e) => write!(f, "certificate generation: {e}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<rustls::Error> for ConfigError {
    fn from(e: rustls::Error) -> Self {
        ConfigError::Tls(e)
    }
}
