//! The parsed message: a buffer, the positions of its parts, and typed views on demand.

use crate::error::{ErrorKind, ParseError};
use crate::header::auth::{AuthParams, Challenge, Credentials};
use crate::header::name_addr::{ContactValue, NameAddr};
use crate::header::via::Via;
use crate::header::{CSeq, HeaderName, MediaType, RetryAfter, SipDate, Timestamp, TokenParams};
use crate::limits::Limits;
use crate::method::Method;
use crate::parse::{self, Mode, Outcome};
use crate::text::{parse_u32, trim_lws, Splitter};
use crate::uri::Uri;
use bytes::Bytes;
use bytestring::ByteString;
use smallvec::SmallVec;
use std::borrow::Cow;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }
    pub(crate) fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderSpan {
    pub(crate) kind: HeaderName,
    pub(crate) name: Span,
    pub(crate) value: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartSpans {
    Request { method: Span, uri: Span },
    Response { code: u16, reason: Span },
}

/// The start line of a message (RFC 3261 §7.1, §7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine<'a> {
    /// `Method SP Request-URI SP SIP/2.0`.
    Request {
        /// The method.
        method: Method,
        /// The Request-URI as written.
        uri: &'a str,
    },
    /// `SIP/2.0 SP Status-Code SP Reason-Phrase`.
    Response {
        /// The status code, 100-699.
        code: u16,
        /// The reason phrase, UTF-8, possibly empty.
        reason: &'a str,
    },
}

/// One header line as it appears in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The classified name.
    pub name: HeaderName,
    /// The name as written (long or compact form, any case).
    pub name_str: &'a str,
    /// The value as written, trimmed at both ends; a folded value keeps its line breaks
    /// (see [`Header::value_unfolded`]).
    pub value: &'a str,
}

impl<'a> Header<'a> {
    /// The value with every fold (CRLF followed by white space) replaced by one space (§7.3.1).
    pub fn value_unfolded(&self) -> Cow<'a, str> {
        unfold(self.value)
    }
}

pub(crate) fn unfold(v: &str) -> Cow<'_, str> {
    // A byte search: `str::contains(char)` goes through the generic pattern machinery.
    if crate::text::find_byte(b'\n', v.as_bytes()).is_none() {
        return Cow::Borrowed(v);
    }
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' || c == '\n' {
            while chars
                .peek()
                .is_some_and(|c| matches!(c, '\r' | '\n' | ' ' | '\t'))
            {
                chars.next();
            }
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A parsed SIP message.
///
/// It owns the bytes it was parsed from (a cheap [`Bytes`] handle, shared with the receive
/// buffer) and the positions of its start line, headers and body. Typed views are parsed when
/// asked for and borrow from the buffer; [`Message::to_bytes`] gives the message back without
/// copying. Methods are grouped as in quinn-proto: constructors, then getters, then typed views.
///
/// The parts live behind one shared pointer: a message is handed to transactions, events and
/// handlers, and cloning or moving it costs a reference count, not a copy of its header table.
#[derive(Clone)]
pub struct Message {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    raw: Bytes,
    head: ByteString,
    start: StartSpans,
    headers: SmallVec<[HeaderSpan; 16]>,
    /// A bit per header kind present (folded into 128, see [`kind_bit`]): lookups of a header
    /// the message does not hold (Route, Expires, Date, ...) end without a scan.
    present: u128,
    /// Whether a header line is folded (§7.3.1): only then can a value hold a line break.
    folded: bool,
    body_start: usize,
}

/// The bit of a header kind in [`Inner::present`]; kinds that share a bit only cost a scan.
#[inline(always)]
fn kind_bit(kind: HeaderName) -> u128 {
    1u128 << (kind as u32 % 128)
}

impl Message {
    pub(crate) fn from_parts(
        raw: Bytes,
        head: ByteString,
        start: StartSpans,
        headers: SmallVec<[HeaderSpan; 16]>,
        folded: bool,
        body_start: usize,
    ) -> Message {
        let present = headers.iter().fold(0, |m, h| m | kind_bit(h.kind));
        Message {
            inner: std::sync::Arc::new(Inner {
                raw,
                head,
                start,
                headers,
                present,
                folded,
                body_start,
            }),
        }
    }

    /// Whether two messages have the same bytes and the same recorded positions (the check that
    /// a built message is exactly what parsing its bytes gives).
    #[cfg(debug_assertions)]
    pub(crate) fn same_layout(&self, other: &Message) -> bool {
        self.inner.raw == other.inner.raw
            && self.inner.start == other.inner.start
            && self.inner.headers == other.inner.headers
            && self.inner.body_start == other.inner.body_start
    }

    /// Parses one message from a datagram with the default [`Limits`] (RFC 3261 §18.3):
    /// the body is framed by Content-Length when present (trailing octets are discarded,
    /// RFC 4475 `dblreq`), else it runs to the end of the datagram.
    pub fn parse(datagram: impl Into<Bytes>) -> Result<Message, ParseError> {
        Self::parse_with(datagram, &Limits::DEFAULT)
    }

    /// [`Message::parse`] with explicit limits.
    pub fn parse_with(datagram: impl Into<Bytes>, limits: &Limits) -> Result<Message, ParseError> {
        let bytes = datagram.into();
        let len = bytes.len();
        match parse::parse_from(parse::Source::Owned(bytes), limits, Mode::Datagram)? {
            Outcome::Complete(m, _) => Ok(m),
            Outcome::Partial => Err(ParseError::new(ErrorKind::UnterminatedHeaders, len)),
        }
    }

    // ---- getters --------------------------------------------------------------------------

    /// The whole message as received, without copying. Serializing a parsed message is this.
    pub fn to_bytes(&self) -> Bytes {
        self.inner.raw.clone()
    }

    /// The message bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.inner.raw
    }

    /// The length of the message in bytes.
    pub fn len(&self) -> usize {
        self.inner.raw.len()
    }

    /// Always false: a message has at least a start line.
    pub fn is_empty(&self) -> bool {
        self.inner.raw.is_empty()
    }

    fn s(&self, span: Span) -> &str {
        &self.inner.head[span.range()]
    }

    /// A header value's text with linear white space trimmed at both ends: the trimming is done
    /// on the bytes, so the text is sliced (and its boundaries checked) once.
    #[inline]
    fn value_of(&self, span: Span) -> &str {
        self.inner.head.get(self.trimmed(span)).unwrap_or_default()
    }

    /// The positions of a header value with linear white space trimmed at both ends.
    #[inline]
    fn trimmed(&self, span: Span) -> std::ops::Range<usize> {
        let b = self.inner.head.as_bytes();
        let lws = |c: u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
        let (mut start, mut end) = (span.start as usize, (span.end as usize).min(b.len()));
        while start < end && lws(b[start]) {
            start += 1;
        }
        while end > start && lws(b[end - 1]) {
            end -= 1;
        }
        start..end
    }

    /// The start line.
    pub fn start_line(&self) -> StartLine<'_> {
        match self.inner.start {
            StartSpans::Request { method, uri } => StartLine::Request {
                method: Method::from_token(self.s(method)),
                uri: self.s(uri),
            },
            StartSpans::Response { code, reason } => StartLine::Response {
                code,
                reason: self.s(reason),
            },
        }
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.inner.start, StartSpans::Request { .. })
    }

    /// The request method, or `None` for a response.
    pub fn method(&self) -> Option<Method> {
        match self.inner.start {
            StartSpans::Request { method, .. } => Some(Method::from_token(self.s(method))),
            StartSpans::Response { .. } => None,
        }
    }

    /// The method token as written, or `None` for a response.
    pub fn method_str(&self) -> Option<&str> {
        match self.inner.start {
            StartSpans::Request { method, .. } => Some(self.s(method)),
            StartSpans::Response { .. } => None,
        }
    }

    /// The Request-URI text, or `None` for a response.
    pub fn request_uri_str(&self) -> Option<&str> {
        match self.inner.start {
            StartSpans::Request { uri, .. } => Some(self.s(uri)),
            StartSpans::Response { .. } => None,
        }
    }

    /// The parsed Request-URI.
    pub fn request_uri(&self) -> Result<Uri<'_>, ParseError> {
        let StartSpans::Request { uri, .. } = self.inner.start else {
            return Err(ParseError::new(ErrorKind::BadStartLine, 0).in_request(false));
        };
        Uri::parse(self.s(uri))
            .map_err(|_| ParseError::new(ErrorKind::BadUri, uri.start as usize).in_request(true))
    }

    /// The status code, or `None` for a request.
    pub fn status(&self) -> Option<u16> {
        match self.inner.start {
            StartSpans::Response { code, .. } => Some(code),
            StartSpans::Request { .. } => None,
        }
    }

    /// The reason phrase (UTF-8, possibly empty), or `None` for a request.
    pub fn reason(&self) -> Option<&str> {
        match self.inner.start {
            StartSpans::Response { reason, .. } => Some(self.s(reason)),
            StartSpans::Request { .. } => None,
        }
    }

    /// The body, without copying.
    pub fn body(&self) -> Bytes {
        self.inner.raw.slice(self.inner.body_start..)
    }

    /// The body as a slice.
    pub fn body_slice(&self) -> &[u8] {
        &self.inner.raw[self.inner.body_start..]
    }

    /// Every header line in order.
    pub fn headers(&self) -> impl Iterator<Item = Header<'_>> + '_ {
        self.inner.headers.iter().map(|h| self.header_at(h))
    }

    /// The header lines whose name `keep` accepts, in order (the others are not sliced or
    /// trimmed).
    /// The kind and trimmed value (as [`Message::header_at`] gives it) of each header line
    /// whose kind `keep` takes, the value as its place in [`Message::head_text`]; `None` for a
    /// value that is not a slice of it there (never for a parsed line).
    pub(crate) fn value_spans_where<'a>(
        &'a self,
        keep: impl Fn(HeaderName) -> bool + 'a,
    ) -> impl Iterator<Item = (HeaderName, Option<Span>)> + 'a {
        self.inner
            .headers
            .iter()
            .filter(move |h| keep(h.kind))
            .map(move |h| {
                let r = self.trimmed(h.value);
                let head = &self.inner.head;
                let whole = head.is_char_boundary(r.start) && head.is_char_boundary(r.end);
                (h.kind, whole.then(|| Span::new(r.start, r.end)))
            })
    }

    pub(crate) fn headers_where<'a>(
        &'a self,
        keep: impl Fn(HeaderName) -> bool + 'a,
    ) -> impl Iterator<Item = Header<'a>> + 'a {
        self.inner
            .headers
            .iter()
            .filter(move |h| keep(h.kind))
            .map(|h| self.header_at(h))
    }

    fn header_at(&self, h: &HeaderSpan) -> Header<'_> {
        Header {
            name: h.kind,
            name_str: self.s(h.name),
            value: self.value_of(h.value),
        }
    }

    /// The number of header lines.
    pub fn header_count(&self) -> usize {
        self.inner.headers.len()
    }

    /// The header lines to search for `name`: none when the message holds no such line.
    #[inline]
    fn lines_of(&self, name: HeaderName) -> &[HeaderSpan] {
        if self.inner.present & kind_bit(name) == 0 {
            &[]
        } else {
            &self.inner.headers
        }
    }

    /// The first value of a header, trimmed.
    pub fn header(&self, name: HeaderName) -> Option<&str> {
        self.lines_of(name)
            .iter()
            .find(|h| h.kind == name)
            .map(|h| self.value_of(h.value))
    }

    /// The first value of a header given by name (for extension headers), case-insensitively.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        let kind = HeaderName::from_name(name.as_bytes());
        self.inner
            .headers
            .iter()
            .find(|h| {
                h.kind == kind
                    && (kind != HeaderName::Other || self.s(h.name).eq_ignore_ascii_case(name))
            })
            .map(|h| self.value_of(h.value))
    }

    /// Every line of a header, in order.
    pub fn header_lines(&self, name: HeaderName) -> impl Iterator<Item = &str> + '_ {
        self.lines_of(name)
            .iter()
            .filter(move |h| h.kind == name)
            .map(|h| self.value_of(h.value))
    }

    /// Every value of a list header (§7.3.1): all lines, each split at commas outside quotes
    /// and angle brackets, trimmed, in order.
    pub fn header_values(&self, name: HeaderName) -> impl Iterator<Item = &str> + '_ {
        self.header_lines(name)
            .flat_map(|l| Splitter::new(l, b','))
            .map(trim_lws)
    }

    /// Whether a header line is folded (§7.3.1). Without folds every value is its own
    /// unfolded form.
    pub(crate) fn has_folds(&self) -> bool {
        self.inner.folded
    }

    /// The header section's text, which [`Span`]s of this message index.
    pub(crate) fn head_text(&self) -> &str {
        &self.inner.head
    }

    /// Where `s`, a slice of [`Message::head_text`], lies in it.
    pub(crate) fn span_of(&self, s: &str) -> Span {
        let at = self.offset_of(s);
        Span::new(at, at + s.len())
    }

    /// The header text from the start of `first` to the end of `last`, when both are slices of
    /// it (as a typed view's parts are) and in that order.
    pub(crate) fn slice_between(&self, first: &str, last: &str) -> Option<&str> {
        let head = self.head_text();
        let (a, z) = (self.span_of(first), self.span_of(last));
        // One slice of the head: both are ours when it starts where `first` does and ends
        // where `last` does, `first` ending in the head and `last` starting in it (the ends of
        // a `str` inside the head are its character boundaries).
        let t = head.get(a.start as usize..z.end as usize)?;
        let end = |s: &str| s.as_ptr().wrapping_add(s.len());
        let ours = std::ptr::eq(t.as_ptr(), first.as_ptr())
            && std::ptr::eq(end(t), end(last))
            && first.len() <= head.len().saturating_sub(a.start as usize)
            && last.len() <= z.end as usize;
        ours.then_some(t)
    }

    fn offset_of(&self, s: &str) -> usize {
        (s.as_ptr() as usize).saturating_sub(self.inner.head.as_ptr() as usize)
    }

    fn bad(&self, name: HeaderName, at: &str, kind: ErrorKind) -> ParseError {
        ParseError::new(kind, self.offset_of(at))
            .with_header(name)
            .in_request(self.is_request())
    }

    /// `v`, the first value of `name`, or the error for its absence.
    fn required<'a>(&self, name: HeaderName, v: Option<&'a str>) -> Result<&'a str, ParseError> {
        v.ok_or_else(|| {
            ParseError::new(ErrorKind::MissingHeader, self.inner.head.len())
                .with_header(name)
                .in_request(self.is_request())
        })
    }

    // ---- typed views ----------------------------------------------------------------------

    /// Every Via value, top first (§20.42).
    pub fn via(&self) -> impl Iterator<Item = Result<Via<'_>, ParseError>> + '_ {
        self.header_values(HeaderName::Via).map(move |v| {
            Via::parse(v).map_err(|_| self.bad(HeaderName::Via, v, ErrorKind::BadHeaderValue))
        })
    }

    /// The topmost Via (§8.2.6.2, §18.2.2).
    pub fn top_via(&self) -> Result<Via<'_>, ParseError> {
        // The first value of the first line: what `header_values(Via).next()` gives, without
        // the iterator chain.
        let line = self
            .header(HeaderName::Via)
            .ok_or_else(|| self.missing(HeaderName::Via))?;
        let v = if crate::text::find_byte(b',', line.as_bytes()).is_none() {
            line // one value, trimmed already
        } else {
            trim_lws(Splitter::new(line, b',').next().unwrap_or_default())
        };
        Via::parse(v).map_err(|_| self.bad(HeaderName::Via, v, ErrorKind::BadHeaderValue))
    }

    fn missing(&self, name: HeaderName) -> ParseError {
        ParseError::new(ErrorKind::MissingHeader, self.inner.head.len())
            .with_header(name)
            .in_request(self.is_request())
    }

    fn name_addr(&self, name: HeaderName) -> Result<NameAddr<'_>, ParseError> {
        self.name_addr_of(name, self.header(name))
    }

    /// [`Message::name_addr`] of `v`, the first value of `name`.
    fn name_addr_of<'a>(
        &self,
        name: HeaderName,
        v: Option<&'a str>,
    ) -> Result<NameAddr<'a>, ParseError> {
        let v = self.required(name, v)?;
        NameAddr::parse(v).map_err(|_| self.bad(name, v, ErrorKind::BadHeaderValue))
    }

    /// The From header (§20.20).
    pub fn from_header(&self) -> Result<NameAddr<'_>, ParseError> {
        self.name_addr(HeaderName::From)
    }

    /// The To header (§20.39).
    pub fn to_header(&self) -> Result<NameAddr<'_>, ParseError> {
        self.name_addr(HeaderName::To)
    }

    /// The Refer-To header (RFC 3515 §2.1).
    pub fn refer_to(&self) -> Result<NameAddr<'_>, ParseError> {
        self.name_addr(HeaderName::ReferTo)
    }

    /// Every Contact value (§20.10), including the `*` wildcard.
    pub fn contacts(&self) -> impl Iterator<Item = Result<ContactValue<'_>, ParseError>> + '_ {
        self.header_values(HeaderName::Contact).map(move |v| {
            if v == "*" {
                return Ok(ContactValue::Star);
            }
            NameAddr::parse(v)
                .map(ContactValue::Addr)
                .map_err(|_| self.bad(HeaderName::Contact, v, ErrorKind::BadHeaderValue))
        })
    }

    fn routes_of(
        &self,
        name: HeaderName,
    ) -> impl Iterator<Item = Result<NameAddr<'_>, ParseError>> + '_ {
        self.header_values(name)
            .map(move |v| match NameAddr::parse(v) {
                Ok(na) if na.is_name_addr() => Ok(na),
                _ => Err(self.bad(name, v, ErrorKind::BadHeaderValue)),
            })
    }

    /// Every Route value, in order (§20.34).
    pub fn routes(&self) -> impl Iterator<Item = Result<NameAddr<'_>, ParseError>> + '_ {
        self.routes_of(HeaderName::Route)
    }

    /// Every Record-Route value, in order (§20.30).
    pub fn record_routes(&self) -> impl Iterator<Item = Result<NameAddr<'_>, ParseError>> + '_ {
        self.routes_of(HeaderName::RecordRoute)
    }

    /// The Call-ID (§20.8).
    pub fn call_id(&self) -> Result<&str, ParseError> {
        self.call_id_of(self.header(HeaderName::CallId))
    }

    /// [`Message::call_id`] of `v`, the first Call-ID value.
    fn call_id_of<'a>(&self, v: Option<&'a str>) -> Result<&'a str, ParseError> {
        let v = self.required(HeaderName::CallId, v)?;
        if v.is_empty() || v.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(self.bad(HeaderName::CallId, v, ErrorKind::BadHeaderValue));
        }
        Ok(v)
    }

    /// The CSeq (§20.16).
    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        self.cseq_of(self.header(HeaderName::CSeq))
    }

    /// [`Message::cseq`] of `v`, the first CSeq value.
    fn cseq_of(&self, v: Option<&str>) -> Result<CSeq, ParseError> {
        let v = self.required(HeaderName::CSeq, v)?;
        CSeq::parse(v).ok_or_else(|| self.bad(HeaderName::CSeq, v, ErrorKind::BadHeaderValue))
    }

    fn number(&self, name: HeaderName, v: Option<&str>) -> Result<Option<u32>, ParseError> {
        match v {
            None => Ok(None),
            Some(v) => parse_u32(v)
                .map(Some)
                .ok_or_else(|| self.bad(name, v, ErrorKind::BadHeaderValue)),
        }
    }

    /// Max-Forwards (§20.22), 0-255.
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        self.max_forwards_of(self.header(HeaderName::MaxForwards))
    }

    /// [`Message::max_forwards`] of `v`, the first Max-Forwards value.
    fn max_forwards_of(&self, v: Option<&str>) -> Result<Option<u8>, ParseError> {
        match self.number(HeaderName::MaxForwards, v)? {
            None => Ok(None),
            Some(n) => u8::try_from(n).map(Some).map_err(|_| {
                self.bad(
                    HeaderName::MaxForwards,
                    v.unwrap_or_default(),
                    ErrorKind::OutOfRange,
                )
            }),
        }
    }

    /// Content-Length (§20.14). Framing already checked it.
    pub fn content_length(&self) -> Option<u32> {
        self.header(HeaderName::ContentLength).and_then(parse_u32)
    }

    /// Content-Type (§20.15).
    pub fn content_type(&self) -> Result<Option<MediaType<'_>>, ParseError> {
        self.content_type_of(self.header(HeaderName::ContentType))
    }

    /// [`Message::content_type`] of `v`, the first Content-Type value.
    fn content_type_of<'a>(&self, v: Option<&'a str>) -> Result<Option<MediaType<'a>>, ParseError> {
        match v {
            None => Ok(None),
            Some(v) => MediaType::parse(v)
                .map(Some)
                .ok_or_else(|| self.bad(HeaderName::ContentType, v, ErrorKind::BadHeaderValue)),
        }
    }

    /// Expires (§20.19). Values past 2^32-1 saturate (RFC 4475 §3.1.2.4 lets an element treat
    /// them as very large rather than fail).
    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        self.delta_seconds(HeaderName::Expires, self.header(HeaderName::Expires))
    }

    /// Min-Expires (§20.23).
    pub fn min_expires(&self) -> Result<Option<u32>, ParseError> {
        self.delta_seconds(HeaderName::MinExpires, self.header(HeaderName::MinExpires))
    }

    fn delta_seconds(&self, name: HeaderName, v: Option<&str>) -> Result<Option<u32>, ParseError> {
        match v {
            None => Ok(None),
            Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(Some(parse_u32(v).unwrap_or(u32::MAX)))
            }
            Some(v) => Err(self.bad(name, v, ErrorKind::BadHeaderValue)),
        }
    }

    /// The option tags or methods of a token-list header: Allow, Supported, Require,
    /// Unsupported, Proxy-Require, Allow-Events (§20.5, §20.29, §20.32, §20.37, §20.40).
    pub fn tokens(&self, name: HeaderName) -> impl Iterator<Item = &str> + '_ {
        self.header_values(name).filter(|v| !v.is_empty())
    }

    /// Allow (§20.5).
    pub fn allow(&self) -> impl Iterator<Item = &str> + '_ {
        self.tokens(HeaderName::Allow)
    }
    /// Supported (§20.37).
    pub fn supported(&self) -> impl Iterator<Item = &str> + '_ {
        self.tokens(HeaderName::Supported)
    }
    /// Require (§20.32).
    pub fn require(&self) -> impl Iterator<Item = &str> + '_ {
        self.tokens(HeaderName::Require)
    }
    /// Unsupported (§20.40).
    pub fn unsupported(&self) -> impl Iterator<Item = &str> + '_ {
        self.tokens(HeaderName::Unsupported)
    }
    /// Proxy-Require (§20.29).
    pub fn proxy_require(&self) -> impl Iterator<Item = &str> + '_ {
        self.tokens(HeaderName::ProxyRequire)
    }

    fn challenges(
        &self,
        name: HeaderName,
    ) -> impl Iterator<Item = Result<Challenge<'_>, ParseError>> + '_ {
        self.header_lines(name).map(move |v| {
            Challenge::parse(v).ok_or_else(|| self.bad(name, v, ErrorKind::BadHeaderValue))
        })
    }
    fn credentials(
        &self,
        name: HeaderName,
    ) -> impl Iterator<Item = Result<Credentials<'_>, ParseError>> + '_ {
        self.header_lines(name).map(move |v| {
            Credentials::parse(v).ok_or_else(|| self.bad(name, v, ErrorKind::BadHeaderValue))
        })
    }

    /// WWW-Authenticate challenges (§20.44), one per header line.
    pub fn www_authenticate(&self) -> impl Iterator<Item = Result<Challenge<'_>, ParseError>> + '_ {
        self.challenges(HeaderName::WwwAuthenticate)
    }
    /// Proxy-Authenticate challenges (§20.27).
    pub fn proxy_authenticate(
        &self,
    ) -> impl Iterator<Item = Result<Challenge<'_>, ParseError>> + '_ {
        self.challenges(HeaderName::ProxyAuthenticate)
    }
    /// Authorization credentials (§20.7).
    pub fn authorization(&self) -> impl Iterator<Item = Result<Credentials<'_>, ParseError>> + '_ {
        self.credentials(HeaderName::Authorization)
    }
    /// Proxy-Authorization credentials (§20.28).
    pub fn proxy_authorization(
        &self,
    ) -> impl Iterator<Item = Result<Credentials<'_>, ParseError>> + '_ {
        self.credentials(HeaderName::ProxyAuthorization)
    }
    /// Authentication-Info (RFC 7615 §3): `nextnonce`, `qop`, `rspauth`, `cnonce`, `nc`.
    pub fn authentication_info(&self) -> Option<AuthParams<'_>> {
        self.header(HeaderName::AuthenticationInfo)
            .map(AuthParams::new)
    }

    fn token_params(&self, name: HeaderName) -> Result<Option<TokenParams<'_>>, ParseError> {
        match self.header(name) {
            None => Ok(None),
            Some(v) => TokenParams::parse(v)
                .map(Some)
                .ok_or_else(|| self.bad(name, v, ErrorKind::BadHeaderValue)),
        }
    }

    /// Event (RFC 6665 §8.2.1).
    pub fn event(&self) -> Result<Option<TokenParams<'_>>, ParseError> {
        self.token_params(HeaderName::Event)
    }
    /// Subscription-State (RFC 6665 §8.2.3).
    pub fn subscription_state(&self) -> Result<Option<TokenParams<'_>>, ParseError> {
        self.token_params(HeaderName::SubscriptionState)
    }
    /// Retry-After (§20.33).
    pub fn retry_after(&self) -> Result<Option<RetryAfter<'_>>, ParseError> {
        match self.header(HeaderName::RetryAfter) {
            None => Ok(None),
            Some(v) => RetryAfter::parse(v)
                .map(Some)
                .ok_or_else(|| self.bad(HeaderName::RetryAfter, v, ErrorKind::BadHeaderValue)),
        }
    }
    /// User-Agent (§20.41), as written.
    pub fn user_agent(&self) -> Option<&str> {
        self.header(HeaderName::UserAgent)
    }
    /// Server (§20.35), as written.
    pub fn server(&self) -> Option<&str> {
        self.header(HeaderName::Server)
    }
    /// Date (§20.17).
    pub fn date(&self) -> Result<Option<SipDate>, ParseError> {
        self.date_of(self.header(HeaderName::Date))
    }

    /// [`Message::date`] of `v`, the first Date value.
    fn date_of(&self, v: Option<&str>) -> Result<Option<SipDate>, ParseError> {
        match v {
            None => Ok(None),
            Some(v) => SipDate::parse(&unfold(v))
                .map(Some)
                .ok_or_else(|| self.bad(HeaderName::Date, v, ErrorKind::BadHeaderValue)),
        }
    }
    /// Timestamp (§20.38).
    pub fn timestamp(&self) -> Result<Option<Timestamp<'_>>, ParseError> {
        match self.header(HeaderName::Timestamp) {
            None => Ok(None),
            Some(v) => Timestamp::parse(v)
                .map(Some)
                .ok_or_else(|| self.bad(HeaderName::Timestamp, v, ErrorKind::BadHeaderValue)),
        }
    }

    // ---- validation -----------------------------------------------------------------------

    /// Checks what a UAS checks before acting on a message (RFC 3261 §8.2.1-§8.2.2, §20,
    /// §25.1): the Request-URI, the mandatory headers (Via, From, To, Call-ID, CSeq) present and
    /// well-formed, single-valued headers not repeated with different values, CSeq's method
    /// equal to the request's, Max-Forwards, Contact, Route, Record-Route, Content-Type,
    /// Expires and Date well-formed. RFC 2543 messages (no branch, no From tag, no
    /// Max-Forwards) pass (RFC 4475 §3.4.1).
    ///
    /// The error's [`ParseError::response_code`] is the answer to send (400, 501, ...).
    pub fn validate(&self) -> Result<(), ParseError> {
        self.checked().map(|_| ())
    }

    /// The line at `at` when it is the only one of its header (`n` lines) and holds one value
    /// (no comma): what `header_values` gives, without splitting it.
    #[inline]
    fn only_value(&self, (n, at): (u32, u32)) -> Option<&str> {
        let h = self.inner.headers.get(at as usize).filter(|_| n == 1)?;
        let v = self.value_of(h.value);
        crate::text::find_byte(b',', v.as_bytes())
            .is_none()
            .then_some(v)
    }

    /// [`Message::validate`], keeping what it read for the UAS core so it parses nothing twice.
    pub(crate) fn checked(&self) -> Result<Checked<'_>, ParseError> {
        self.checked_with_top(None)
    }

    /// [`Message::checked`] with the top Via already parsed by the caller (it is not parsed
    /// again), and whether it is valid when the caller knows.
    pub(crate) fn checked_with_top<'a>(
        &'a self,
        top: Option<(Via<'a>, Option<bool>)>,
    ) -> Result<Checked<'a>, ParseError> {
        self.checked_with_known(top, [None, None])
    }

    /// [`Message::checked_with_top`] where the caller knows the first From and To lines
    /// (`known[0]`, `known[1]`) to be valid with a tag that is their last `n` bytes: bytes that
    /// were parsed before (an in-dialog request's From and To are its INVITE's), so they are
    /// not parsed again.
    pub(crate) fn checked_with_known<'a>(
        &'a self,
        top: Option<(Via<'a>, Option<bool>)>,
        known: [Option<usize>; 2],
    ) -> Result<Checked<'a>, ParseError> {
        let mut scheme = None;
        if let StartSpans::Request { uri, .. } = self.inner.start {
            // What `request_uri` gives, read without making the URI.
            let u = Uri::check(self.s(uri)).map_err(|_| {
                ParseError::new(ErrorKind::BadUri, uri.start as usize).in_request(true)
            })?;
            if u.sip_headers {
                return Err(
                    ParseError::new(ErrorKind::BadRequestUri, uri.start as usize).in_request(true),
                );
            }
            scheme = Some(u.scheme);
        }
        // One pass over the header lines: single-valued headers (one line, no comma list, the
        // same value if repeated; only a kind seen before, a bit per kind folded into 64 (57
        // kinds now; kinds sharing a bit only cost a comparison), is compared with its first
        // line), and the first line of each header read below, so none is looked up again.
        let mut seen = 0u64;
        let mut first = [u32::MAX; Slot::COUNT];
        // The number of Via and Contact lines, and the first of each.
        let (mut via_lines, mut contact_lines) = ((0u32, u32::MAX), (0u32, u32::MAX));
        for (i, h) in self.inner.headers.iter().enumerate() {
            if !h.kind.is_single() {
                let lines = match h.kind {
                    HeaderName::Via => &mut via_lines,
                    HeaderName::Contact => &mut contact_lines,
                    _ => continue,
                };
                if lines.0 == 0 {
                    lines.1 = i as u32;
                }
                lines.0 += 1;
                continue;
            }
            if let Some(slot) = Slot::of(h.kind) {
                if first[slot as usize] == u32::MAX {
                    first[slot as usize] = i as u32;
                }
            }
            let bit = 1u64 << (h.kind as u32 % 64);
            if seen & bit == 0 {
                seen |= bit;
                continue;
            }
            let v = self.value_of(h.value);
            let first = self.header(h.kind).unwrap_or_default();
            if first != v {
                return Err(self.bad(h.kind, v, ErrorKind::DuplicateHeader));
            }
        }
        // The first value of a header, as `header` gives it.
        let value = |slot: Slot| {
            self.inner
                .headers
                .get(first[slot as usize] as usize)
                .map(|h| self.value_of(h.value))
        };
        let mut vias = 0;
        let one_via = top.filter(|_| self.only_value(via_lines).is_some());
        if let Some((v, known)) = one_via {
            if !known.unwrap_or_else(|| v.is_valid()) {
                return Err(self.bad(
                    HeaderName::Via,
                    v.params.as_str(),
                    ErrorKind::BadHeaderValue,
                ));
            }
            vias = 1;
        }
        let rest = if one_via.is_some() { 0 } else { usize::MAX };
        for (i, raw) in self.header_values(HeaderName::Via).take(rest).enumerate() {
            let (v, known) = match (i, top) {
                (0, Some((t, valid))) => (t, valid),
                _ => (
                    Via::parse(raw)
                        .map_err(|_| self.bad(HeaderName::Via, raw, ErrorKind::BadHeaderValue))?,
                    None,
                ),
            };
            if !known.unwrap_or_else(|| v.is_valid()) {
                return Err(self.bad(
                    HeaderName::Via,
                    v.params.as_str(),
                    ErrorKind::BadHeaderValue,
                ));
            }
            vias += 1;
        }
        if vias == 0 {
            return Err(self.missing(HeaderName::Via));
        }
        let mut tags = [None, None];
        let lines = [value(Slot::From), value(Slot::To)];
        for (i, name) in [HeaderName::From, HeaderName::To].into_iter().enumerate() {
            if let (Some(n), Some(line)) = (known[i], lines[i]) {
                if let Some(tag) = line.get(line.len().saturating_sub(n)..).filter(|_| n > 0) {
                    tags[i] = Some(tag);
                    continue;
                }
            }
            // What `name_addr_of` checks, without making the URI.
            let v = self.required(name, lines[i])?;
            let (_, params) =
                NameAddr::check(v).map_err(|_| self.bad(name, v, ErrorKind::BadHeaderValue))?;
            // The check and the tag in one scan where the parameters are plain.
            let (valid, tag) = match params.plain_get("tag") {
                Some(found) => (true, found.flatten()),
                None => (params.is_valid(), params.value("tag")),
            };
            if !valid {
                let v = lines[i].unwrap_or_default();
                return Err(self.bad(name, v, ErrorKind::BadHeaderValue));
            }
            tags[i] = tag;
        }
        let call_id = self.call_id_of(value(Slot::CallId))?;
        let cseq_line = value(Slot::CSeq);
        let cseq = self.cseq_of(cseq_line)?;
        if let Some(m) = self.method_str() {
            if cseq.method.as_str() != m {
                let kind = if Method::from_token(m).is_known() {
                    ErrorKind::MethodMismatch
                } else {
                    ErrorKind::UnknownMethodMismatch
                };
                let v = cseq_line.unwrap_or_default();
                return Err(self.bad(HeaderName::CSeq, v, kind));
            }
        }
        let max_forwards = self.max_forwards_of(value(Slot::MaxForwards))?;
        let mut contact = None;
        if let Some(v) = self.only_value(contact_lines) {
            // What the loop below does with the one value.
            if v != "*" {
                let (uri, params) = NameAddr::check(v)
                    .map_err(|_| self.bad(HeaderName::Contact, v, ErrorKind::BadHeaderValue))?;
                if !params.is_valid() {
                    let v = params.as_str();
                    return Err(self.bad(HeaderName::Contact, v, ErrorKind::BadHeaderValue));
                }
                contact = Some(uri);
            }
            contact_lines.0 = 0;
        }
        // `take(0)` reads nothing: the one value was checked above.
        let rest = if contact_lines.0 == 0 { 0 } else { usize::MAX };
        for (i, c) in self.contacts().take(rest).enumerate() {
            if let ContactValue::Addr(na) = c? {
                if !na.is_valid() {
                    let v = na.params().as_str();
                    return Err(self.bad(HeaderName::Contact, v, ErrorKind::BadHeaderValue));
                }
                if i == 0 {
                    contact = Some(na.uri_str());
                }
            }
        }
        // Most requests hold neither: their presence bits answer before any iterator is made.
        let any_route = self.header(HeaderName::Route).is_some()
            || self.header(HeaderName::RecordRoute).is_some();
        let routes = if any_route { usize::MAX } else { 0 };
        for (name, r) in self
            .routes()
            .map(|r| (HeaderName::Route, r))
            .chain(self.record_routes().map(|r| (HeaderName::RecordRoute, r)))
            .take(routes)
        {
            let na = r?;
            if !na.is_valid() {
                return Err(self.bad(name, na.params().as_str(), ErrorKind::BadHeaderValue));
            }
        }
        let content_type_line = value(Slot::ContentType);
        let content_type = self.content_type_of(content_type_line)?;
        self.delta_seconds(HeaderName::Expires, value(Slot::Expires))?;
        self.delta_seconds(HeaderName::MinExpires, value(Slot::MinExpires))?;
        self.date_of(value(Slot::Date))?;
        Ok(Checked {
            scheme,
            from: lines[0].unwrap_or_default(),
            to: lines[1].unwrap_or_default(),
            from_tag: tags[0],
            to_tag: tags[1],
            call_id,
            cseq,
            max_forwards,
            contact,
            content_type,
            content_type_line,
        })
    }
}

/// The headers whose first line validation keeps while it checks the single-valued ones.
#[derive(Clone, Copy)]
enum Slot {
    From,
    To,
    CallId,
    CSeq,
    MaxForwards,
    ContentType,
    Expires,
    MinExpires,
    Date,
}

impl Slot {
    const COUNT: usize = 9;

    #[inline]
    fn of(kind: HeaderName) -> Option<Slot> {
        Some(match kind {
            HeaderName::From => Slot::From,
            HeaderName::To => Slot::To,
            HeaderName::CallId => Slot::CallId,
            HeaderName::CSeq => Slot::CSeq,
            HeaderName::MaxForwards => Slot::MaxForwards,
            HeaderName::ContentType => Slot::ContentType,
            HeaderName::Expires => Slot::Expires,
            HeaderName::MinExpires => Slot::MinExpires,
            HeaderName::Date => Slot::Date,
            _ => return None,
        })
    }
}

/// What [`Message::validate`] read on its way, for the UAS core (RFC 3261 §8.2).
#[derive(Debug, Clone)]
pub(crate) struct Checked<'a> {
    /// The Request-URI's scheme (requests only).
    pub(crate) scheme: Option<&'a str>,
    /// The From value, trimmed.
    pub(crate) from: &'a str,
    /// The To value, trimmed.
    pub(crate) to: &'a str,
    /// The From tag.
    pub(crate) from_tag: Option<&'a str>,
    /// The To tag.
    pub(crate) to_tag: Option<&'a str>,
    /// The Call-ID.
    pub(crate) call_id: &'a str,
    /// The CSeq.
    pub(crate) cseq: CSeq,
    /// Max-Forwards.
    pub(crate) max_forwards: Option<u8>,
    /// The URI of the first Contact value, unless it is `*`.
    pub(crate) contact: Option<&'a str>,
    /// Content-Type.
    pub(crate) content_type: Option<MediaType<'a>>,
    /// The Content-Type value as written, trimmed.
    pub(crate) content_type_line: Option<&'a str>,
}

impl PartialEq for Message {
    /// Messages are equal when their start lines, header lines (names as written, values) and
    /// bodies are equal.
    fn eq(&self, other: &Message) -> bool {
        self.start_line() == other.start_line()
            && self.inner.headers.len() == other.inner.headers.len()
            && self
                .headers()
                .zip(other.headers())
                .all(|(a, b)| a.name_str == b.name_str && a.value_unfolded() == b.value_unfolded())
            && self.body_slice() == other.body_slice()
    }
}

impl Eq for Message {}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("start_line", &self.start_line())
            .field("headers", &self.inner.headers.len())
            .field("body_len", &(self.inner.raw.len() - self.inner.body_start))
            .finish()
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.inner.raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The Contact part of validation as it was written before one line was read without
    /// splitting it: every value, split.
    fn contact_by_splitting(m: &Message) -> Result<Option<&str>, ParseError> {
        let mut contact = None;
        for (i, c) in m.contacts().enumerate() {
            if let ContactValue::Addr(na) = c? {
                if !na.is_valid() {
                    let v = na.params().as_str();
                    return Err(m.bad(HeaderName::Contact, v, ErrorKind::BadHeaderValue));
                }
                if i == 0 {
                    contact = Some(na.uri_str());
                }
            }
        }
        Ok(contact)
    }

    /// `slice_between` as it was first written: each part checked on its own slice.
    fn slice_between_by_parts<'m>(m: &'m Message, first: &str, last: &str) -> Option<&'m str> {
        let head = m.head_text();
        let (a, z) = (m.span_of(first), m.span_of(last));
        let is_ours = |s: &str, span: Span| {
            head.get(span.range())
                .is_some_and(|t| std::ptr::eq(t.as_ptr(), s.as_ptr()) && t.len() == s.len())
        };
        if !is_ours(first, a) || !is_ours(last, z) || a.start > z.end {
            return None;
        }
        head.get(a.start as usize..z.end as usize)
    }

    proptest! {
        /// The one-slice check finds what the part-by-part one finds: any two ranges of the
        /// head (or of a copy of it, which is not the message's), in either order.
        #[test]
        fn slice_between_agrees_with_part_by_part_check(
            a in 0usize..80, al in 0usize..40, z in 0usize..80, zl in 0usize..40,
            copy_first in any::<bool>(), copy_last in any::<bool>(),
        ) {
            let m = Message::parse(Bytes::from_static(
                b"INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:b@h>\r\n\r\n",
            ))
            .unwrap();
            let copy = m.head_text().to_owned();
            let pick = |copied: bool, at: usize, len: usize| {
                let text = if copied { copy.as_str() } else { m.head_text() };
                text.get(at.min(text.len())..(at + len).min(text.len())).unwrap_or_default()
            };
            let (f, l) = (pick(copy_first, a, al), pick(copy_last, z, zl));
            prop_assert_eq!(m.slice_between(f, l), slice_between_by_parts(&m, f, l));
        }
    }

    #[test]
    fn route_and_record_route_values_are_validated_when_present() {
        let check = |lines: &str| {
            let text = format!(
                "INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP a.example;branch=z9hG4bK1\r\n\
                 From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\
                 {lines}Content-Length: 0\r\n\r\n"
            );
            let m = Message::parse(text.into_bytes()).expect("request parses");
            m.validate().map_err(|e| e.header())
        };
        assert_eq!(check(""), Ok(()));
        assert_eq!(
            check("Route: <sip:p1;lr>\r\nRecord-Route: <sip:p2;lr>\r\n"),
            Ok(())
        );
        assert_eq!(check("Route: sip:p1\r\n"), Err(Some(HeaderName::Route)));
        assert_eq!(
            check("Record-Route: <sip:p2;lr>, sip:p3\r\n"),
            Err(Some(HeaderName::RecordRoute))
        );
        assert_eq!(
            check("Record-Route: <sip:p2;lr>;x=\"\r\n"),
            Err(Some(HeaderName::RecordRoute))
        );
    }

    fn request() -> impl Strategy<Value = String> {
        let via = prop_oneof![
            Just("SIP/2.0/UDP a.example;branch=z9hG4bK1"),
            Just("SIP/2.0/UDP a.example;branch=z9hG4bK1;rport"),
            Just("SIP/2.0/UDP a.example;branch=z9hG4bK1, SIP/2.0/TCP b.example;branch=z9hG4bK2"),
            Just("SIP/2.0/UDP a.example;branch=z9hG4bK1;ttl=x"),
            Just("SIP/2.0/UDP a.example;branch=\"q,\""),
            Just("SIP/2.0/UDP a.example , SIP/2.0/UDP"),
        ];
        let contact = prop_oneof![
            Just("<sip:b@192.0.2.2:5060>"),
            Just("*"),
            Just("<sip:b@h>;expires=60, <sip:c@h>"),
            Just("\"B, b\" <sip:b@h>"),
            Just("<sip:b@h>;q=x y"),
            Just("sip:b@h;a=\"1,2\""),
            Just("<sip:b@h"),
            Just(""),
        ];
        (
            proptest::collection::vec(via, 1..3),
            proptest::collection::vec(contact, 0..3),
        )
            .prop_map(|(vias, contacts)| {
                let mut s = String::from("INVITE sip:b@h SIP/2.0\r\n");
                for v in vias {
                    s += &format!("Via: {v}\r\n");
                }
                s += "From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n";
                for c in contacts {
                    s += &format!("Contact: {c}\r\n");
                }
                s + "Content-Length: 0\r\n\r\n"
            })
    }

    proptest! {
        #[test]
        fn one_via_or_contact_line_is_validated_as_its_split_values(text in request()) {
            let m = Message::parse(text.into_bytes()).expect("generated request parses");
            let general = m.checked_with_top(None);
            // The top Via as the UAS core hands it over: parsed, validity not yet known.
            if let Ok(top) = m.top_via() {
                let with_top = m.checked_with_top(Some((top, None)));
                prop_assert_eq!(format!("{with_top:?}"), format!("{general:?}"));
            }
            let by_splitting = contact_by_splitting(&m);
            match (&general, &by_splitting) {
                (Ok(c), Ok(contact)) => prop_assert_eq!(c.contact, *contact),
                (Err(e), _) if e.header() == Some(HeaderName::Contact) => {
                    prop_assert_eq!(Err(*e), by_splitting.map(|_| ()));
                }
                (Err(_), _) => {}
                (Ok(_), Err(e)) => prop_assert!(false, "splitting refuses: {e:?}"),
            }
        }
    }
}
