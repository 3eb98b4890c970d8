//! Building requests and responses (RFC 3261 §8.1.1, §8.2.6).
//!
//! A builder checks its inputs (method and header names are tokens, no CR/LF in values or the
//! reason, a Request-URI without white space, a status of 100-699), writes the wire form and
//! records where every part lands, so the message it hands out is exactly the one
//! `Message::parse(m.to_bytes())` gives, without parsing it again. Debug builds parse it anyway
//! and compare; a message past the parser's default limits, or a Request-URI the parser would
//! refuse, is parsed so the error is the parser's.

use crate::error::{ErrorKind, ParseError};
use crate::header::HeaderName;
use crate::limits::Limits;
use crate::message::{HeaderSpan, Message, Span, StartSpans};
use crate::method::Method;
use crate::text::{decimal, is_token};
use bytes::Bytes;
use bytestring::ByteString;
use smallvec::SmallVec;
use std::borrow::Cow;

/// The size of the buffers responses are written into and split off
/// ([`ResponseHead::write`]): a few dozen responses each.
pub(crate) const WIRE_CHUNK: usize = 16 * 1024;

/// Makes room for `n` more bytes at the end of `wire`: a new buffer of [`WIRE_CHUNK`] bytes
/// (or `n`, if larger) when they do not fit. What was split off the old one keeps it alive.
pub(crate) fn wire_room(wire: &mut bytes::BytesMut, n: usize) {
    if wire.capacity() - wire.len() < n {
        *wire = bytes::BytesMut::with_capacity(n.max(WIRE_CHUNK));
    }
}
use std::fmt;

mod head;
pub(crate) use head::{ResponseHead, Top};

/// Why a message could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The method is not a token.
    BadMethod,
    /// The Request-URI is empty or holds white space.
    BadUri,
    /// A header name is not a token.
    BadHeaderName(String),
    /// A header value holds CR or LF (header injection).
    BadHeaderValue(String),
    /// The status code is not 100-699.
    BadStatus(u16),
    /// The reason phrase holds CR or LF.
    BadReason,
    /// The written message did not parse (a value broke its header's grammar).
    Parse(ParseError),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::BadMethod => f.write_str("method is not a token"),
            BuildError::BadUri => f.write_str("Request-URI is empty or holds white space"),
            BuildError::BadHeaderName(n) => write!(f, "header name {n:?} is not a token"),
            BuildError::BadHeaderValue(n) => write!(f, "value of {n} holds CR or LF"),
            BuildError::BadStatus(c) => write!(f, "status code {c} is not 100-699"),
            BuildError::BadReason => f.write_str("reason phrase holds CR or LF"),
            BuildError::Parse(e) => write!(f, "built message does not parse: {e}"),
        }
    }
}

impl std::error::Error for BuildError {}

/// The reason phrase RFC 3261 §21 (and its extensions) gives a status code.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "",
    }
}

/// A piece of the builder's text buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    start: u32,
    end: u32,
}

impl Piece {
    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
    fn len(self) -> usize {
        (self.end - self.start) as usize
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    kind: HeaderName,
    /// The name as given; unused when `known` (the canonical spelling of `kind` is written).
    name: Piece,
    value: Piece,
    /// Written with `kind`'s canonical name, a token: nothing to check or copy.
    known: bool,
}

/// Header lines in one text buffer (no allocation per line): the list gives their order, the
/// buffer may hold stale text of replaced or removed lines.
#[derive(Debug, Clone)]
pub(crate) struct Headers {
    text: String,
    list: Vec<Entry>,
    body: Bytes,
}

impl Default for Headers {
    fn default() -> Self {
        Headers {
            text: String::with_capacity(384),
            list: Vec::with_capacity(12),
            body: Bytes::new(),
        }
    }
}

/// The buffers of a builder's header lines, handed back by the `*_reusing` builds so that the
/// endpoint's next request is written into them instead of two fresh allocations.
#[derive(Debug, Default)]
pub(crate) struct Buffers {
    text: String,
    list: Vec<Entry>,
}

impl Buffers {
    /// Buffers grown past this (a request with very long lines) are not kept.
    const KEEP: usize = 4096;

    /// `slot`'s buffers, emptied, or fresh ones of the default capacity.
    pub(crate) fn take(slot: &mut Option<Buffers>) -> Headers {
        match slot.take() {
            Some(mut b) => {
                b.text.clear();
                b.list.clear();
                Headers {
                    text: b.text,
                    list: b.list,
                    body: Bytes::new(),
                }
            }
            None => Headers::default(),
        }
    }

    /// Keeps `h`'s buffers in `slot` for the next request.
    fn put(h: Headers, slot: &mut Option<Buffers>) {
        if h.text.capacity() <= Self::KEEP && h.list.capacity() <= Self::KEEP / 16 {
            *slot = Some(Buffers {
                text: h.text,
                list: h.list,
            });
        }
    }
}

/// The kind of a header name given as text (an empty name, refused later, is `Other`).
fn kind_of(name: &str) -> HeaderName {
    if name.is_empty() {
        HeaderName::Other
    } else {
        HeaderName::from_name(name.as_bytes())
    }
}

impl Headers {
    fn add_text(&mut self, s: &str) -> Piece {
        let start = self.text.len();
        self.text.push_str(s);
        Piece {
            start: start as u32,
            end: self.text.len() as u32,
        }
    }

    fn entry(&mut self, kind: HeaderName, name: &str, value: &str) -> Entry {
        let name = self.add_text(name);
        let value = self.add_text(value);
        Entry {
            kind,
            name,
            value,
            known: false,
        }
    }

    /// A line written with the canonical name of `kind`.
    fn entry_known(&mut self, kind: HeaderName, value: &str) -> Entry {
        let value = self.add_text(value);
        Entry {
            kind,
            name: Piece { start: 0, end: 0 },
            value,
            known: true,
        }
    }

    fn push(&mut self, kind: HeaderName, name: &str, value: &str) {
        let e = self.entry(kind, name, value);
        self.list.push(e);
    }

    fn push_known(&mut self, kind: HeaderName, value: &str) {
        let e = self.entry_known(kind, value);
        self.list.push(e);
    }

    fn name<'s>(&'s self, e: &Entry) -> &'s str {
        if e.known {
            e.kind.as_str()
        } else {
            &self.text[e.name.range()]
        }
    }

    fn name_len(&self, e: &Entry) -> usize {
        if e.known {
            e.kind.as_str().len()
        } else {
            e.name.len()
        }
    }

    fn value(&self, e: &Entry) -> &str {
        &self.text[e.value.range()]
    }

    fn check(&self) -> Result<(), BuildError> {
        // Fast path: every name a token and no CR/LF anywhere in the text.
        let names_ok = self.list.iter().all(|e| e.known || is_token(self.name(e)));
        if names_ok && memchr::memchr2(b'\r', b'\n', self.text.as_bytes()).is_none() {
            return Ok(());
        }
        for e in &self.list {
            let (n, v) = (self.name(e), self.value(e));
            if !is_token(n) {
                return Err(BuildError::BadHeaderName(n.to_owned()));
            }
            if v.contains(['\r', '\n']) {
                return Err(BuildError::BadHeaderValue(n.to_owned()));
            }
        }
        Ok(())
    }

    /// The bytes the header section and body take on the wire, and the number of lines.
    fn wire_len(&self) -> (usize, usize, usize) {
        let mut len = 0;
        let mut lines = 0;
        let mut longest = 0;
        for e in self
            .list
            .iter()
            .filter(|e| e.kind != HeaderName::ContentLength)
        {
            let line = self.name_len(e) + 2 + e.value.len();
            longest = longest.max(line);
            len += line + 2;
            lines += 1;
        }
        // "Content-Length: " digits CRLF CRLF body
        len += 16 + 20 + 4 + self.body.len();
        (len, lines + 1, longest)
    }

    /// Writes the header lines, Content-Length, the empty line and the body, recording where
    /// each name and value lands. Returns where the body starts.
    fn write(&self, out: &mut impl Out, spans: &mut SmallVec<[HeaderSpan; 16]>) -> usize {
        for e in &self.list {
            if e.kind == HeaderName::ContentLength {
                continue;
            }
            let n = self.name(e);
            let v = self.value(e);
            let ns = out.len();
            out.put(n.as_bytes());
            out.put(b": ");
            // The parser's value starts after the white space that follows the colon.
            let lead = v
                .bytes()
                .position(|c| c != b' ' && c != b'\t')
                .unwrap_or(v.len());
            let vs = out.len() + lead;
            out.put(v.as_bytes());
            spans.push(HeaderSpan {
                kind: e.kind,
                name: Span::new(ns, ns + n.len()),
                value: Span::new(vs, out.len()),
            });
            out.put(b"\r\n");
        }
        let ns = out.len();
        out.put(b"Content-Length: ");
        let vs = out.len();
        let mut buf = [0u8; 20];
        out.put(decimal(self.body.len() as u64, &mut buf));
        spans.push(HeaderSpan {
            kind: HeaderName::ContentLength,
            name: Span::new(ns, ns + "Content-Length".len()),
            value: Span::new(vs, out.len()),
        });
        out.put(b"\r\n\r\n");
        let body_start = out.len();
        out.put(&self.body);
        body_start
    }

    /// Makes the message from what `write` produced. When the message is within the parser's
    /// default limits it is assembled from the recorded positions; otherwise (or in debug
    /// builds, as a check) it is parsed, so the result is always what the parser gives.
    fn finish(
        raw: Bytes,
        start: StartSpans,
        spans: SmallVec<[HeaderSpan; 16]>,
        body_start: usize,
        fast: bool,
    ) -> Result<Message, BuildError> {
        if !fast {
            return Message::parse(raw).map_err(BuildError::Parse);
        }
        // Values hold no line break (`check`), so no line is folded.
        written_message(raw, start, spans, body_start).ok_or(BuildError::Parse(ParseError::new(
            ErrorKind::InvalidUtf8,
            0,
        )))
    }

    /// Whether a message of this shape stays within [`Limits::DEFAULT`] (what `Message::parse`
    /// enforces), so the positions recorded while writing are what parsing would find.
    fn within_limits(start_len: usize, (len, lines, longest): (usize, usize, usize)) -> bool {
        let l = Limits::DEFAULT;
        start_len + len <= l.max_message_size
            && lines <= l.max_headers
            && longest <= l.max_header_len
    }
}

macro_rules! header_methods {
    () => {
        /// Appends a header line (a known name is written in its canonical form).
        pub fn header(mut self, name: HeaderName, value: impl AsRef<str>) -> Self {
            self.h.push_known(name, value.as_ref());
            self
        }

        /// Appends a header line with a name given as text (extension headers).
        pub fn raw_header(mut self, name: &str, value: impl AsRef<str>) -> Self {
            self.h.push(kind_of(name), name, value.as_ref());
            self
        }

        /// Inserts a header line before all others (a proxy's own Via, §16.6 step 8).
        pub fn prepend_header(mut self, name: HeaderName, value: impl AsRef<str>) -> Self {
            let e = self.h.entry_known(name, value.as_ref());
            self.h.list.insert(0, e);
            self
        }

        /// Removes every line of a header.
        pub fn remove_header(mut self, name: HeaderName) -> Self {
            self.h.list.retain(|e| e.kind != name);
            self
        }

        /// Sets the body and its Content-Type. Content-Length is always written by `build`.
        pub fn body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
            self = self.remove_header(HeaderName::ContentType);
            self.h.push_known(HeaderName::ContentType, content_type);
            self.h.body = body.into();
            self
        }
    };
}

/// Builds a request.
///
/// ```
/// use parrot_proto::{Method, RequestBuilder, HeaderName};
/// let m = RequestBuilder::new(Method::Options, "sip:bob@example.com")
///     .header(HeaderName::Via, "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds")
///     .header(HeaderName::From, "<sip:alice@example.com>;tag=1928301774")
///     .header(HeaderName::To, "<sip:bob@example.com>")
///     .header(HeaderName::CallId, "a84b4c76e66710")
///     .header(HeaderName::CSeq, "1 OPTIONS")
///     .header(HeaderName::MaxForwards, "70")
///     .build()
///     .unwrap();
/// assert_eq!(m.cseq().unwrap().seq, 1);
/// ```
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    method: Method,
    uri: Piece,
    h: Headers,
}

impl RequestBuilder {
    /// A request line `method uri SIP/2.0` and no headers yet.
    pub fn new(method: Method, uri: impl AsRef<str>) -> Self {
        Self::new_in(method, uri.as_ref(), Headers::default())
    }

    /// [`RequestBuilder::new`] writing into buffers [`Buffers::take`] gave.
    pub(crate) fn new_in(method: Method, uri: &str, mut h: Headers) -> Self {
        let uri = h.add_text(uri);
        RequestBuilder { method, uri, h }
    }

    /// Starts from a received request: same request line, headers and body (a proxy's copy,
    /// §16.6 step 1).
    pub fn from_message(m: &Message) -> Option<Self> {
        let method = m.method()?;
        let mut b = RequestBuilder::new(method, m.request_uri_str()?);
        for h in m.headers() {
            b.h.push(h.name, h.name_str, &h.value_unfolded());
        }
        b.h.body = m.body();
        Some(b)
    }

    /// Appends a header line whose value `write` writes straight into the builder's buffer
    /// (a value made of pieces and numbers, without a temporary string).
    pub(crate) fn header_with(mut self, name: HeaderName, write: impl FnOnce(&mut String)) -> Self {
        let start = self.h.text.len();
        write(&mut self.h.text);
        let value = Piece {
            start: start as u32,
            end: self.h.text.len() as u32,
        };
        self.h.list.push(Entry {
            kind: name,
            name: Piece { start: 0, end: 0 },
            value,
            known: true,
        });
        self
    }

    /// Inserts a header line before all others, its value the concatenation of `pieces`
    /// (a Via written from its prefix and branch without a temporary string).
    pub(crate) fn prepend_header_pieces(mut self, name: HeaderName, pieces: &[&str]) -> Self {
        let start = self.h.text.len();
        for p in pieces {
            self.h.text.push_str(p);
        }
        let value = Piece {
            start: start as u32,
            end: self.h.text.len() as u32,
        };
        let e = Entry {
            kind: name,
            name: Piece { start: 0, end: 0 },
            value,
            known: true,
        };
        self.h.list.insert(0, e);
        self
    }

    /// Replaces the Request-URI.
    pub fn uri(mut self, uri: impl AsRef<str>) -> Self {
        self.uri = self.h.add_text(uri.as_ref());
        self
    }

    header_methods!();

    /// The request line's and the headers' checks (§25.1 `Request-Line`): whether the bytes
    /// can be written without the parser's look (within the limits, a URI it takes as it is),
    /// and how many there are.
    #[inline]
    fn check_request_line(&self) -> Result<(bool, usize), BuildError> {
        let method = self.method.as_str();
        if !is_token(method) {
            return Err(BuildError::BadMethod);
        }
        let uri = &self.h.text[self.uri.range()];
        // Bytes, not characters: no byte of a multi-byte character is ASCII white space.
        let (ws, colon) = uri.bytes().fold((false, false), |(w, c), b| {
            (w | b.is_ascii_whitespace(), c | (b == b':'))
        });
        if uri.is_empty() || ws {
            return Err(BuildError::BadUri);
        }
        self.h.check()?;
        // The parser's request-line rules beyond these (a scheme colon, no leading '<') are
        // left to it: such a URI takes the parsing path and gets its error.
        let uri_parses = !uri.starts_with('<') && colon;
        let start_len = method.len() + 1 + uri.len() + 10;
        let wire = self.h.wire_len();
        let fast = uri_parses && Headers::within_limits(start_len, wire);
        Ok((fast, start_len + wire.0))
    }

    /// [`RequestBuilder::build`] for a request that is only sent (an ACK for a 2xx, §13.2.2.4):
    /// the same checks and the same bytes, without making a [`Message`] of them.
    pub(crate) fn build_bytes(self) -> Result<Bytes, BuildError> {
        self.build_bytes_reusing(&mut None)
    }

    /// [`RequestBuilder::build_bytes`], its header buffers handed back in `slot` when written.
    pub(crate) fn build_bytes_reusing(
        self,
        slot: &mut Option<Buffers>,
    ) -> Result<Bytes, BuildError> {
        let (fast, capacity) = self.check_request_line()?;
        if !fast {
            // Near the limits, or a URI the parser decides on: what `build` gives.
            return self.build().map(|m| m.to_bytes());
        }
        let mut out = Vec::with_capacity(capacity);
        self.write_to(&mut out);
        Buffers::put(self.h, slot);
        let raw = Bytes::from(out);
        #[cfg(debug_assertions)]
        {
            let parsed = Message::parse(raw.clone()).expect("a built request parses");
            assert_eq!(parsed.as_bytes(), &raw[..]);
        }
        Ok(raw)
    }

    /// [`RequestBuilder::build_bytes`] written at the end of `wire` and split off it, as
    /// [`RequestBuilder::build_in`] writes: for a request sent once and not kept (an ACK for a
    /// 2xx, built again for a retransmitted 2xx, §13.2.2.4), so its bytes cost no allocation.
    pub(crate) fn build_bytes_in(
        self,
        slot: &mut Option<Buffers>,
        wire: &mut bytes::BytesMut,
    ) -> Result<Bytes, BuildError> {
        let (fast, capacity) = self.check_request_line()?;
        if !fast {
            return self.build().map(|m| m.to_bytes());
        }
        let (raw, ..) = self.write_in(slot, wire, capacity);
        #[cfg(debug_assertions)]
        {
            let parsed = Message::parse(raw.clone()).expect("a built request parses");
            assert_eq!(parsed.as_bytes(), &raw[..]);
        }
        Ok(raw)
    }

    /// Writes the request. The result is what `Message::parse` gives for its bytes.
    pub fn build(self) -> Result<Message, BuildError> {
        self.build_reusing(&mut None)
    }

    /// [`RequestBuilder::build`], its header buffers handed back in `slot` when written.
    pub(crate) fn build_reusing(self, slot: &mut Option<Buffers>) -> Result<Message, BuildError> {
        let (fast, capacity) = self.check_request_line()?;
        let mut out = Vec::with_capacity(capacity);
        let (start, spans, body_start) = self.write_to(&mut out);
        let built = Headers::finish(Bytes::from(out), start, spans, body_start, fast);
        Buffers::put(self.h, slot);
        built
    }

    /// [`RequestBuilder::build_reusing`] written at the end of `wire` and split off it, as
    /// responses are ([`ResponseHead::write`]; a new buffer of [`WIRE_CHUNK`] bytes replaces
    /// it when the request does not fit): the request costs no allocation of its own, its
    /// clones share the buffer. For a request kept briefly only (a non-INVITE's client
    /// transaction ends within 64*T1, §17.1.2.2), since it keeps the whole buffer alive.
    pub(crate) fn build_in(
        self,
        slot: &mut Option<Buffers>,
        wire: &mut bytes::BytesMut,
    ) -> Result<Message, BuildError> {
        let (fast, capacity) = self.check_request_line()?;
        if !fast {
            return self.build_reusing(slot);
        }
        let (raw, start, spans, body_start) = self.write_in(slot, wire, capacity);
        Headers::finish(raw, start, spans, body_start, fast)
    }

    /// The fast path of [`RequestBuilder::build_in`] and [`RequestBuilder::build_bytes_in`]:
    /// the request written at the end of `wire` (`capacity` bytes, from
    /// `check_request_line`) and split off it, with its start line's and lines' positions; the
    /// header buffers handed back in `slot`.
    fn write_in(
        self,
        slot: &mut Option<Buffers>,
        wire: &mut bytes::BytesMut,
        capacity: usize,
    ) -> (Bytes, StartSpans, SmallVec<[HeaderSpan; 16]>, usize) {
        if !wire.is_empty() {
            // Whatever an earlier writer left (nothing, normally) is not this request's.
            drop(wire.split());
        }
        wire_room(wire, capacity);
        let mut out = Tail { wire };
        let (start, spans, body_start) = self.write_to(&mut out);
        let raw = out.wire.split().freeze();
        Buffers::put(self.h, slot);
        (raw, start, spans, body_start)
    }

    /// The request line and the header lines, written to `out` (§7.1): the start line's
    /// positions, the lines' and where the body starts. One writer for every build path.
    #[inline]
    fn write_to(&self, out: &mut impl Out) -> (StartSpans, SmallVec<[HeaderSpan; 16]>, usize) {
        let (method, uri) = (self.method.as_str(), &self.h.text[self.uri.range()]);
        out.put(method.as_bytes());
        out.put(b" ");
        let us = out.len();
        out.put(uri.as_bytes());
        let start = StartSpans::Request {
            method: Span::new(0, method.len()),
            uri: Span::new(us, out.len()),
        };
        out.put(b" SIP/2.0\r\n");
        let mut spans = SmallVec::new();
        let body_start = self.h.write(out, &mut spans);
        (start, spans, body_start)
    }
}

/// A header line of a request written at once ([`request_lines_in`]): its kind, written with
/// the kind's canonical name, and its value as the concatenation of its pieces.
pub(crate) type Line<'a> = (HeaderName, &'a [&'a [u8]]);

/// What a request of `method`, `uri` and `lines` (no body) takes on the wire, when
/// [`RequestBuilder`] would write it on its fast path: the method a token, the URI not empty,
/// without white space, with a colon and not starting with `<`, no Content-Length line (the
/// builder writes its own), within the parser's default limits. `None` otherwise: the builder
/// then decides (an error, or the parser's look). Values without CR or LF are checked on
/// what is written ([`line_breaks`]).
fn lines_fit(method: &Method, uri: &[u8], lines: &[Line<'_>], body: usize) -> Option<usize> {
    if !start_fits(method, uri, lines) {
        return None;
    }
    let method = method.as_str();
    let mut len = 0;
    let mut longest = 0;
    for (kind, pieces) in lines {
        let line = kind.as_str().len() + 2 + pieces.iter().map(|p| p.len()).sum::<usize>();
        longest = longest.max(line);
        len += line + 2;
    }
    len += 16 + 20 + 4 + body;
    let start_len = method.len() + 1 + uri.len() + 10;
    Headers::within_limits(start_len, (len, lines.len() + 1, longest)).then_some(start_len + len)
}

/// The checks of [`lines_fit`] but the limits: the method a token, the URI not empty, without
/// white space, with a colon and not starting with `<`, no Content-Length line.
fn start_fits(method: &Method, uri: &[u8], lines: &[Line<'_>]) -> bool {
    // The methods RFC 3261 and its extensions name are tokens.
    let method_ok = !matches!(method, Method::Extension(_)) || is_token(method.as_str());
    if !method_ok || uri.first().is_none_or(|&c| c == b'<') {
        return false;
    }
    let (ws, colon) = uri.iter().fold((false, false), |(w, c), &b| {
        (w | b.is_ascii_whitespace(), c | (b == b':'))
    });
    !ws && colon && lines.iter().all(|(k, _)| *k != HeaderName::ContentLength)
}

/// Room made in the shared buffer before a request without body is written into it: more than
/// in-dialog requests take (a longer one makes the buffer grow while it is written).
const TAIL_ROOM: usize = 1024;

/// Writes a request without body at the end of `wire` (emptied of anything an earlier writer
/// left) when [`RequestBuilder`] would write it on its fast path: [`start_fits`], no CR or LF
/// in a value, and the parser's default limits as the builder estimates them (20 digits for
/// Content-Length), checked on what was written instead of on a pass over the lines first.
/// `None` with `wire` left empty otherwise.
fn write_tail(
    wire: &mut bytes::BytesMut,
    method: &Method,
    uri: &[u8],
    lines: &[Line<'_>],
    spans: Option<&mut SmallVec<[HeaderSpan; 16]>>,
) -> Option<(StartSpans, usize)> {
    if !start_fits(method, uri, lines) {
        return None;
    }
    if !wire.is_empty() {
        drop(wire.split());
    }
    wire_room(wire, TAIL_ROOM);
    let mut out = Tail { wire };
    let written = write_lines(&mut out, method.as_str(), uri, lines, &[], spans);
    let l = Limits::DEFAULT;
    // The longest line is every line but Content-Length, from its name to its value's end.
    let fits = |longest: usize| {
        out.len() - 1 + 20 <= l.max_message_size
            && lines.len() < l.max_headers
            && longest <= l.max_header_len
    };
    match written {
        Some((start, body_start, longest)) if fits(longest) => Some((start, body_start)),
        _ => {
            out.wire.clear();
            None
        }
    }
}

/// The number of CR and LF bytes in `b`, counted 64 bytes at a time in a loop that vectorises
/// (cheaper than a search per value for these short values).
fn line_breaks(b: &[u8]) -> usize {
    b.chunks(64)
        .map(|c| {
            c.iter()
                .fold(0u8, |n, &x| n + u8::from((x == b'\r') | (x == b'\n'))) as usize
        })
        .sum()
}

/// `CRLF name ": "` for the kinds an in-dialog request or an INVITE written at once has: the
/// end of the line before and the start of a line of `kind`, written at once.
fn line_start(kind: HeaderName) -> Option<&'static [u8]> {
    Some(match kind {
        HeaderName::Via => b"\r\nVia: ",
        HeaderName::Route => b"\r\nRoute: ",
        HeaderName::From => b"\r\nFrom: ",
        HeaderName::To => b"\r\nTo: ",
        HeaderName::CallId => b"\r\nCall-ID: ",
        HeaderName::CSeq => b"\r\nCSeq: ",
        HeaderName::MaxForwards => b"\r\nMax-Forwards: ",
        HeaderName::Contact => b"\r\nContact: ",
        HeaderName::UserAgent => b"\r\nUser-Agent: ",
        HeaderName::ContentType => b"\r\nContent-Type: ",
        _ => return None,
    })
}

/// Writes the request line, `lines`, Content-Length and `body` as [`RequestBuilder`] writes
/// them, recording where each part lands. Returns where the body starts, or `None` when a
/// value held CR or LF (the builder's check, made on what was written).
fn write_lines(
    out: &mut impl Out,
    method: &str,
    uri: &[u8],
    lines: &[Line<'_>],
    body: &[u8],
    mut spans: Option<&mut SmallVec<[HeaderSpan; 16]>>,
) -> Option<(StartSpans, usize, usize)> {
    out.put(method.as_bytes());
    out.put(b" ");
    let us = out.len();
    out.put(uri);
    let start = StartSpans::Request {
        method: Span::new(0, method.len()),
        uri: Span::new(us, out.len()),
    };
    // Each line end is written with what follows it, in one piece where the name is known.
    out.put(b" SIP/2.0");
    let mut longest = 0;
    for (kind, pieces) in lines {
        let n = kind.as_str();
        let ns = out.len() + 2;
        match line_start(*kind) {
            Some(start) => out.put(start),
            None => {
                out.put(b"\r\n");
                out.put(n.as_bytes());
                out.put(b": ");
            }
        }
        // The parser's value starts after the white space that follows the colon.
        let plain = pieces
            .first()
            .and_then(|p| p.first())
            .is_some_and(|&c| c != b' ' && c != b'\t');
        let mut lead = 0;
        if !plain {
            for p in pieces.iter() {
                let k = p.iter().take_while(|&&c| c == b' ' || c == b'\t').count();
                lead += k;
                if k < p.len() {
                    break;
                }
            }
        }
        let vs = out.len() + lead;
        for p in pieces.iter() {
            out.put(p);
        }
        longest = longest.max(out.len() - ns);
        if let Some(spans) = spans.as_deref_mut() {
            spans.push(HeaderSpan {
                kind: *kind,
                name: Span::new(ns, ns + n.len()),
                value: Span::new(vs, out.len()),
            });
        }
    }
    let ns = out.len() + 2;
    out.put(b"\r\nContent-Length: ");
    let mut digits = [0u8; 20];
    out.put(decimal(body.len() as u64, &mut digits));
    if let Some(spans) = spans {
        spans.push(HeaderSpan {
            kind: HeaderName::ContentLength,
            name: Span::new(ns, ns + "Content-Length".len()),
            value: Span::new(ns + 16, out.len()),
        });
    }
    out.put(b"\r\n\r\n");
    let body_start = out.len();
    // Only the line ends written here: no value held CR or LF.
    if line_breaks(out.head()) != 2 * (lines.len() + 3) {
        return None;
    }
    out.put(body);
    Some((start, body_start, longest))
}

/// A request without body written at once at the end of `wire` and split off it (as
/// [`RequestBuilder::build_in`] does): the message [`RequestBuilder`] builds from the same
/// request line and lines (each added with its kind's canonical name, in this order), without
/// the builder's own copy of the text and list of lines. `None` when the builder would not
/// write it on its fast path ([`lines_fit`], a value with CR or LF): build it with the builder
/// then, which gives the error or the parser's message.
pub(crate) fn request_lines_in(
    method: &Method,
    uri: &[u8],
    lines: &[Line<'_>],
    wire: &mut bytes::BytesMut,
) -> Option<Message> {
    let mut spans = SmallVec::new();
    let (start, body_start) = write_tail(wire, method, uri, lines, Some(&mut spans))?;
    let raw = wire.split().freeze();
    written_message(raw, start, spans, body_start)
}

/// [`request_lines_in`] with a body (its Content-Type among `lines`, last, where
/// [`RequestBuilder::body`] puts it), written into a buffer of its own: for a request kept
/// long (an INVITE may ring for minutes), what [`RequestBuilder::build`] gives.
pub(crate) fn request_lines_owned(
    method: &Method,
    uri: &[u8],
    lines: &[Line<'_>],
    body: &[u8],
) -> Option<Message> {
    let capacity = lines_fit(method, uri, lines, body.len())?;
    let method = method.as_str();
    let mut out = Vec::with_capacity(capacity);
    let mut spans = SmallVec::new();
    let (start, body_start, _) = write_lines(&mut out, method, uri, lines, body, Some(&mut spans))?;
    written_message(Bytes::from(out), start, spans, body_start)
}

/// The message of what [`write_lines`] or [`RequestBuilder`] wrote into `raw`, from the
/// positions they recorded (no line folded); `None` when its head is not UTF-8 (pieces given
/// as bytes, which the builder, given text, could not have).
fn written_message(
    raw: Bytes,
    start: StartSpans,
    spans: SmallVec<[HeaderSpan; 16]>,
    body_start: usize,
) -> Option<Message> {
    let head = ByteString::try_from(raw.slice(..body_start)).ok()?;
    let m = Message::from_parts(raw, head, start, spans, false, body_start);
    #[cfg(debug_assertions)]
    {
        let parsed = Message::parse(m.to_bytes()).expect("a written message parses");
        assert!(
            parsed.same_layout(&m),
            "written layout differs from the parsed one"
        );
    }
    Some(m)
}

/// [`request_lines_in`] for a request that is only sent (an ACK for a 2xx): its bytes, without
/// making a [`Message`] of them.
pub(crate) fn request_lines_bytes_in(
    method: &Method,
    uri: &[u8],
    lines: &[Line<'_>],
    wire: &mut bytes::BytesMut,
) -> Option<Bytes> {
    write_tail(wire, method, uri, lines, None)?;
    let raw = wire.split().freeze();
    #[cfg(debug_assertions)]
    {
        let parsed = Message::parse(raw.clone()).expect("a written request parses");
        assert_eq!(parsed.as_bytes(), &raw[..]);
    }
    Some(raw)
}

/// Where [`Headers::write`] writes: positions are counted from the start of what it writes.
trait Out {
    fn len(&self) -> usize;
    fn put(&mut self, b: &[u8]);
    /// What was written so far.
    fn head(&self) -> &[u8];
}

impl Out for Vec<u8> {
    #[inline]
    fn len(&self) -> usize {
        Vec::len(self)
    }
    #[inline]
    fn head(&self) -> &[u8] {
        self
    }
    #[inline]
    fn put(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
}

/// A shared buffer, empty when writing starts: what is written is split off it whole.
struct Tail<'a> {
    wire: &'a mut bytes::BytesMut,
}

impl Out for Tail<'_> {
    #[inline]
    fn len(&self) -> usize {
        self.wire.len()
    }
    #[inline]
    fn head(&self) -> &[u8] {
        self.wire
    }
    #[inline]
    fn put(&mut self, b: &[u8]) {
        self.wire.extend_from_slice(b);
    }
}

/// Builds a response.
#[derive(Debug, Clone)]
pub struct ResponseBuilder {
    code: u16,
    reason: Cow<'static, str>,
    to_tag: Option<Piece>,
    h: Headers,
}

impl ResponseBuilder {
    /// A status line with the standard reason phrase.
    pub fn new(code: u16) -> Self {
        ResponseBuilder {
            code,
            reason: Cow::Borrowed(reason_phrase(code)),
            to_tag: None,
            h: Headers::default(),
        }
    }

    /// A response to `req` per §8.2.6.2: Via (all values, in order), From, To, Call-ID and
    /// CSeq copied; Record-Route copied too for responses that can create a dialog
    /// (§12.1.1: 101-299 to INVITE, SUBSCRIBE, REFER, NOTIFY).
    pub fn for_request(req: &Message, code: u16) -> Self {
        let mut b = ResponseBuilder::new(code);
        let dialog_creating = (101..300).contains(&code)
            && matches!(
                req.method(),
                Some(Method::Invite | Method::Subscribe | Method::Refer | Method::Notify)
            );
        for h in req.headers() {
            let copy = match h.name {
                HeaderName::Via
                | HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::CSeq => true,
                HeaderName::RecordRoute => dialog_creating,
                _ => false,
            };
            if copy {
                b.h.push_known(h.name, &h.value_unfolded());
            }
        }
        b
    }

    /// Starts from a received response: same status line, headers and body (a proxy that
    /// forwards a response, §16.7 item 3, removes its Via from this copy).
    pub fn from_message(m: &Message) -> Option<Self> {
        let mut b = ResponseBuilder::new(m.status()?);
        b.reason = Cow::Owned(m.reason().unwrap_or("").to_owned());
        for h in m.headers() {
            b.h.push(h.name, h.name_str, &h.value_unfolded());
        }
        b.h.body = m.body();
        Some(b)
    }

    /// Replaces the reason phrase.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Cow::Owned(reason.into());
        self
    }

    /// Adds `;tag=` to the To header unless it already has a tag (§8.2.6.2).
    pub fn to_tag(mut self, tag: impl AsRef<str>) -> Self {
        self.to_tag = Some(self.h.add_text(tag.as_ref()));
        self
    }

    header_methods!();

    /// Writes the response. The result is what `Message::parse` gives for its bytes.
    pub fn build(mut self) -> Result<Message, BuildError> {
        if !(100..=699).contains(&self.code) {
            return Err(BuildError::BadStatus(self.code));
        }
        if self.reason.contains(['\r', '\n']) {
            return Err(BuildError::BadReason);
        }
        if let Some(tag) = self.to_tag.take() {
            for i in 0..self.h.list.len() {
                let e = self.h.list[i];
                if e.kind != HeaderName::To {
                    continue;
                }
                let v = self.h.value(&e);
                let has_tag = crate::header::NameAddr::parse(v)
                    .map(|na| na.tag().is_some())
                    .unwrap_or(true);
                if !has_tag {
                    // The tagged value goes to the end of the buffer; the line points there.
                    let mut tagged = String::with_capacity(v.len() + 5 + tag.len());
                    tagged.push_str(v);
                    tagged.push_str(";tag=");
                    tagged.push_str(&self.h.text[tag.range()]);
                    self.h.list[i].value = self.h.add_text(&tagged);
                }
            }
        }
        self.h.check()?;
        let start_len = 8 + 3 + 1 + self.reason.len() + 2;
        let wire = self.h.wire_len();
        let fast = Headers::within_limits(start_len, wire);
        let mut out = Vec::with_capacity(start_len + wire.0);
        out.extend_from_slice(b"SIP/2.0 ");
        let mut buf = [0u8; 20];
        out.extend_from_slice(decimal(u64::from(self.code), &mut buf));
        out.push(b' ');
        let rs = out.len();
        out.extend_from_slice(self.reason.as_bytes());
        let start = StartSpans::Response {
            code: self.code,
            reason: Span::new(rs, out.len()),
        };
        out.extend_from_slice(b"\r\n");
        let mut spans = SmallVec::new();
        let body_start = self.h.write(&mut out, &mut spans);
        Headers::finish(Bytes::from(out), start, spans, body_start, fast)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_request_near_the_parser_limits_is_left_to_the_builder() {
        let long = "a".repeat(16 * 1024);
        let many: Vec<[&[u8]; 1]> = (0..300).map(|_| [b"x".as_slice()]).collect();
        let fits: [&[u8]; 1] = [&long.as_bytes()[..16 * 1024 - 6]];
        let too_long: [&[u8]; 1] = [long.as_bytes()];
        let mut wire = bytes::BytesMut::new();
        for (lines, written) in [
            (vec![(HeaderName::Via, &fits[..])], true),
            (vec![(HeaderName::Via, &too_long[..])], false),
            (
                many.iter().map(|p| (HeaderName::Route, &p[..])).collect(),
                false,
            ),
        ] {
            let fast = request_lines_in(&Method::Bye, b"sip:b@h", &lines, &mut wire);
            assert_eq!(fast.is_some(), written);
            assert!(wire.is_empty());
            let mut b = RequestBuilder::new(Method::Bye, "sip:b@h");
            for (k, p) in &lines {
                b = b.header(*k, std::str::from_utf8(&p.concat()).unwrap());
            }
            // Past the limits the builder gives the parser's error.
            let general = b.build();
            assert_eq!(general.is_ok(), written);
            if let (Some(m), Ok(g)) = (fast, general) {
                assert_eq!(m.to_bytes(), g.to_bytes());
            }
        }
    }

    #[test]
    fn a_line_start_is_a_line_end_and_the_canonical_name() {
        for kind in [
            HeaderName::Via,
            HeaderName::Route,
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
            HeaderName::CSeq,
            HeaderName::MaxForwards,
            HeaderName::Contact,
            HeaderName::UserAgent,
            HeaderName::ContentType,
            HeaderName::Subject,
        ] {
            if let Some(start) = line_start(kind) {
                assert_eq!(start, format!("\r\n{}: ", kind.as_str()).as_bytes());
            }
        }
    }

    const KINDS: [HeaderName; 10] = [
        HeaderName::Via,
        HeaderName::Route,
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::CSeq,
        HeaderName::MaxForwards,
        HeaderName::Contact,
        HeaderName::Subject,
        HeaderName::ContentLength,
    ];

    /// Header values of every kind: plain text, white space before it, CR, LF, non-ASCII.
    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => "[a-zA-Z0-9<>:@;=.]{0,12}",
            1 => "[ \t]{0,2}[a-z]{0,3}",
            1 => "[a-z]{0,3}[\r\n][a-z ]{0,3}",
            1 => "[é a-z]{0,4}",
        ]
    }

    fn uri() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => "sip:[a-z]{1,6}@[0-9.]{1,12}(:[0-9]{1,5})?",
            1 => "[<a-z:@ \t\r]{0,10}",
        ]
    }

    fn method() -> impl Strategy<Value = Method> {
        prop_oneof![
            Just(Method::Bye),
            Just(Method::Ack),
            Just(Method::Info),
            Just(Method::Invite),
            Just(Method::Extension("X Y".into())),
        ]
    }

    fn lines() -> impl Strategy<Value = Vec<(usize, Vec<String>)>> {
        prop::collection::vec(
            (
                prop_oneof![12 => 0..9usize, 1 => Just(9usize)],
                prop::collection::vec(piece(), 0..4),
            ),
            0..10,
        )
    }

    /// The same request through the builder, each line added with its kind's canonical name.
    fn built(method: &Method, uri: &str, lines: &[(usize, Vec<String>)]) -> RequestBuilder {
        let mut b = RequestBuilder::new(method.clone(), uri);
        for (k, pieces) in lines {
            b = b.header(KINDS[*k], pieces.concat());
        }
        b
    }

    proptest! {
        /// A request written at once from its lines is the builder's, byte for byte and
        /// position for position, whenever it is written; it is written whenever its values
        /// are plain.
        #[test]
        fn a_request_written_from_its_lines_is_the_one_the_builder_builds(
            method in method(),
            uri in uri(),
            lines in lines(),
            body in prop::option::of((piece(), prop::collection::vec(any::<u8>(), 0..40))),
        ) {
            let pieces: Vec<Vec<&[u8]>> = lines
                .iter()
                .map(|(_, p)| p.iter().map(|s| s.as_bytes()).collect())
                .collect();
            let given: Vec<Line<'_>> = lines
                .iter()
                .zip(&pieces)
                .map(|((k, _), p)| (KINDS[*k], &p[..]))
                .collect();
            let mut wire = bytes::BytesMut::new();
            let fast = request_lines_in(&method, uri.as_bytes(), &given, &mut wire);
            let fast_bytes = request_lines_bytes_in(&method, uri.as_bytes(), &given, &mut wire);
            let general = built(&method, &uri, &lines).build_in(&mut None, &mut wire);
            prop_assert_eq!(fast.is_some(), fast_bytes.is_some());
            if let Some(m) = &fast {
                let g = general.as_ref().expect("the builder builds what is written at once");
                prop_assert_eq!(m.to_bytes(), g.to_bytes());
                #[cfg(debug_assertions)]
                prop_assert!(m.same_layout(g));
                prop_assert_eq!(fast_bytes.as_ref(), Some(&g.to_bytes()));
            }
            let plain = lines.iter().all(|(k, p)| {
                *k != 9 && p.iter().all(|s| !s.contains(['\r', '\n']))
            }) && !uri.is_empty()
                && !uri.starts_with('<')
                && uri.contains(':')
                && !uri.bytes().any(|b| b.is_ascii_whitespace())
                && !matches!(method, Method::Extension(_));
            prop_assert_eq!(fast.is_some(), plain);

            // With a body (its Content-Type the last line) in a buffer of its own.
            let mut given = given.clone();
            let ct;
            let mut general = built(&method, &uri, &lines);
            let body = match &body {
                Some((t, b)) => {
                    ct = [t.as_bytes()];
                    given.push((HeaderName::ContentType, &ct[..]));
                    general = general.body(t, b.clone());
                    &b[..]
                }
                None => &[][..],
            };
            let owned = request_lines_owned(&method, uri.as_bytes(), &given, body);
            let general = general.build();
            if let Some(m) = &owned {
                let g = general.as_ref().expect("the builder builds what is written at once");
                prop_assert_eq!(m.to_bytes(), g.to_bytes());
                #[cfg(debug_assertions)]
                prop_assert!(m.same_layout(g));
            }
            let plain_type = body.is_empty() && given.len() == lines.len()
                || given.last().is_some_and(|(_, p)| !p.concat().contains(&b'\r') && !p.concat().contains(&b'\n'));
            prop_assert_eq!(owned.is_some(), plain && plain_type);
        }
    }

    #[test]
    fn request_bytes_are_those_of_the_built_request() {
        let b = RequestBuilder::new(Method::Ack, "sip:bob@192.0.2.4")
            .header(
                HeaderName::Via,
                "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds",
            )
            .header(HeaderName::From, "<sip:alice@example.com>;tag=1928301774")
            .header(HeaderName::To, "<sip:bob@example.com>;tag=a6c85cf")
            .header(HeaderName::CallId, "a84b4c76e66710")
            .header(HeaderName::CSeq, "314159 ACK")
            .header(HeaderName::MaxForwards, "70");
        assert_eq!(
            b.clone().build_bytes().unwrap(),
            b.clone().build().unwrap().to_bytes()
        );
        let bad = b.header(HeaderName::Subject, "a\r\nb");
        assert_eq!(bad.clone().build_bytes().err(), bad.build().err());
        let odd = RequestBuilder::new(Method::Ack, "<sip:x>");
        assert_eq!(odd.clone().build_bytes().err(), odd.build().err());
    }
}
