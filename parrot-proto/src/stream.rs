//! Message framing on byte streams: TCP, TLS and WebSocket share this (RFC 3261 §18.3,
//! RFC 5626 §3.5.1 keep-alives, RFC 7118 §5).

use crate::error::ParseError;
use crate::limits::Limits;
use crate::message::Message;
use crate::parse::{self, leading_crlf, Mode, Outcome};
use bytes::{Buf, Bytes, BytesMut};

/// The answer of [`parse_stream`]: complete / need more bytes / keep-alive.
// A complete message is the common case: boxing it would cost an allocation per message.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Parsed {
    /// A whole message, and how many bytes of the buffer it used.
    Complete(Message, usize),
    /// CR/LF octets before any message: a RFC 5626 keep-alive. `ping` is a double CRLF, which
    /// the receiver answers with a single CRLF (a pong). Consume `len` bytes.
    KeepAlive {
        /// Bytes to consume.
        len: usize,
        /// Whether this was a ping (CRLFCRLF) to be answered with a pong (CRLF).
        ping: bool,
    },
    /// Not enough bytes yet.
    Partial,
}

/// Frames the first message in `buf`: Content-Length is mandatory on streams, and the message
/// must end within the configured [`Limits`]. An error means the stream cannot be re-framed
/// and the connection should be closed (after a 400 where the message was a request).
pub fn parse_stream(buf: &Bytes) -> Result<Parsed, ParseError> {
    parse_stream_with(buf, &Limits::DEFAULT)
}

/// [`parse_stream`] with explicit limits.
pub fn parse_stream_with(buf: &Bytes, limits: &Limits) -> Result<Parsed, ParseError> {
    let lead = leading_crlf(buf);
    if lead > 0 {
        return Ok(Parsed::KeepAlive {
            len: lead,
            ping: buf[..lead].windows(4).any(|w| w == b"\r\n\r\n"),
        });
    }
    match parse::parse(buf, limits, Mode::Stream)? {
        Outcome::Complete(m, used) => Ok(Parsed::Complete(m, used)),
        Outcome::Partial => Ok(Parsed::Partial),
    }
}

/// What a [`StreamDecoder`] yields.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum StreamItem {
    /// A message.
    Message(Message),
    /// A keep-alive ping (CRLFCRLF): answer with [`StreamDecoder::PONG`].
    Ping,
    /// A keep-alive pong (CRLF).
    Pong,
}

/// A buffer that collects stream bytes and yields whole messages.
///
/// ```
/// use parrot_proto::{StreamDecoder, StreamItem};
/// let mut d = StreamDecoder::new();
/// d.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n");
/// assert!(d.decode().unwrap().is_none());
/// d.push(b"\r\n");
/// assert!(matches!(d.decode().unwrap(), Some(StreamItem::Message(_))));
/// ```
#[derive(Debug, Default)]
pub struct StreamDecoder {
    buf: BytesMut,
    limits: Limits,
    pending: Option<Bytes>,
    crlf_seen: bool,
}

impl StreamDecoder {
    /// The pong that answers a ping (RFC 5626 §3.5.1).
    pub const PONG: &'static [u8] = b"\r\n";

    /// A decoder with the default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder with explicit limits.
    pub fn with_limits(limits: Limits) -> Self {
        StreamDecoder {
            limits,
            ..Self::default()
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next item, `Ok(None)` when more bytes are needed. After an error the stream
    /// cannot be framed again: close the connection.
    pub fn decode(&mut self) -> Result<Option<StreamItem>, ParseError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        // RFC 5626 §3.5.1: CRLFCRLF is a ping, CRLF a pong. A ping split across reads arrives
        // as CRLF then CRLF: the first is reported as a pong, the second completes the ping.
        while leading_crlf(&self.buf) > 0 {
            if self.buf.starts_with(b"\r\n\r\n") {
                self.buf.advance(4);
                self.crlf_seen = false;
                return Ok(Some(StreamItem::Ping));
            }
            if self.buf.starts_with(b"\r\n") {
                if self.crlf_seen {
                    self.buf.advance(2);
                    self.crlf_seen = false;
                    return Ok(Some(StreamItem::Ping));
                }
                if &self.buf[..] == b"\r\n\r" {
                    return Ok(None);
                }
                self.buf.advance(2);
                self.crlf_seen = true;
                return Ok(Some(StreamItem::Pong));
            }
            if &self.buf[..] == b"\r" {
                return Ok(None);
            }
            // A stray CR or LF: ignored, as before a start line (§7.5).
            self.buf.advance(1);
        }
        if self.buf.is_empty() {
            return Ok(None);
        }
        // Freeze a view of the buffer without copying: split off everything, parse, then put
        // the unused tail back.
        let all = self
            .pending
            .take()
            .unwrap_or_else(|| self.buf.split().freeze());
        match parse::parse(&all, &self.limits, Mode::Stream) {
            Ok(Outcome::Complete(m, used)) => {
                self.crlf_seen = false;
                self.restore(all.slice(used..));
                Ok(Some(StreamItem::Message(m)))
            }
            Ok(Outcome::Partial) => {
                self.restore(all);
                Ok(None)
            }
            Err(e) => {
                self.restore(all);
                Err(e)
            }
        }
    }

    fn restore(&mut self, rest: Bytes) {
        let mut b = BytesMut::with_capacity(rest.len() + 4096);
        b.extend_from_slice(&rest);
        b.extend_from_slice(&self.buf);
        self.buf = b;
    }
}
