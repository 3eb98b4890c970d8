//! Building requests and responses (RFC 3261 §8.1.1, §8.2.6).
//!
//! A builder writes the wire form and parses it back, so every message it hands out is one
//! the parser accepts, and `Message::parse(m.to_bytes()) == m` holds by construction.

use crate::error::ParseError;
use crate::header::HeaderName;
use crate::message::Message;
use crate::method::Method;
use crate::text::is_token;
use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;

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

#[derive(Debug, Clone, Default)]
struct Headers {
    list: Vec<(String, String)>,
    body: Bytes,
}

impl Headers {
    fn push(&mut self, name: &str, value: String) {
        self.list.push((name.to_owned(), value));
    }

    fn check(&self) -> Result<(), BuildError> {
        for (n, v) in &self.list {
            if !is_token(n) {
                return Err(BuildError::BadHeaderName(n.clone()));
            }
            if v.contains(['\r', '\n']) {
                return Err(BuildError::BadHeaderValue(n.clone()));
            }
        }
        Ok(())
    }

    fn write(&self, out: &mut BytesMut) {
        for (n, v) in &self.list {
            if HeaderName::from_name(n.as_bytes()) == HeaderName::ContentLength {
                continue;
            }
            out.put_slice(n.as_bytes());
            out.put_slice(b": ");
            out.put_slice(v.as_bytes());
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"Content-Length: ");
        out.put_slice(self.body.len().to_string().as_bytes());
        out.put_slice(b"\r\n\r\n");
        out.put_slice(&self.body);
    }

    fn finish(&self, out: BytesMut) -> Result<Message, BuildError> {
        Message::parse(out.freeze()).map_err(BuildError::Parse)
    }
}

macro_rules! header_methods {
    () => {
        /// Appends a header line (a known name is written in its canonical form).
        pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
            self.h.push(name.as_str(), value.into());
            self
        }

        /// Appends a header line with a name given as text (extension headers).
        pub fn raw_header(mut self, name: &str, value: impl Into<String>) -> Self {
            self.h.push(name, value.into());
            self
        }

        /// Inserts a header line before all others (a proxy's own Via, §16.6 step 8).
        pub fn prepend_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
            self.h
                .list
                .insert(0, (name.as_str().to_owned(), value.into()));
            self
        }

        /// Removes every line of a header.
        pub fn remove_header(mut self, name: HeaderName) -> Self {
            self.h
                .list
                .retain(|(n, _)| HeaderName::from_name(n.as_bytes()) != name);
            self
        }

        /// Sets the body and its Content-Type. Content-Length is always written by `build`.
        pub fn body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
            self = self.remove_header(HeaderName::ContentType);
            self.h.push("Content-Type", content_type.to_owned());
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
    uri: String,
    h: Headers,
}

impl RequestBuilder {
    /// A request line `method uri SIP/2.0` and no headers yet.
    pub fn new(method: Method, uri: impl Into<String>) -> Self {
        RequestBuilder {
            method,
            uri: uri.into(),
            h: Headers::default(),
        }
    }

    /// Starts from a received request: same request line, headers and body (a proxy's copy,
    /// §16.6 step 1).
    pub fn from_message(m: &Message) -> Option<Self> {
        let method = m.method()?;
        let mut b = RequestBuilder::new(method, m.request_uri_str()?);
        for h in m.headers() {
            b.h.push(h.name_str, h.value_unfolded().into_owned());
        }
        b.h.body = m.body();
        Some(b)
    }

    /// Replaces the Request-URI.
    pub fn uri(mut self, uri: impl Into<String>) -> Self {
        self.uri = uri.into();
        self
    }

    header_methods!();

    /// Writes the request and parses it back.
    pub fn build(self) -> Result<Message, BuildError> {
        if !is_token(self.method.as_str()) {
            return Err(BuildError::BadMethod);
        }
        if self.uri.is_empty() || self.uri.contains(|c: char| c.is_ascii_whitespace()) {
            return Err(BuildError::BadUri);
        }
        self.h.check()?;
        let mut out = BytesMut::with_capacity(512 + self.h.body.len());
        out.put_slice(self.method.as_str().as_bytes());
        out.put_u8(b' ');
        out.put_slice(self.uri.as_bytes());
        out.put_slice(b" SIP/2.0\r\n");
        self.h.write(&mut out);
        self.h.finish(out)
    }
}

/// Builds a response.
#[derive(Debug, Clone)]
pub struct ResponseBuilder {
    code: u16,
    reason: String,
    to_tag: Option<String>,
    h: Headers,
}

impl ResponseBuilder {
    /// A status line with the standard reason phrase.
    pub fn new(code: u16) -> Self {
        ResponseBuilder {
            code,
            reason: reason_phrase(code).to_owned(),
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
                b.h.push(h.name.as_str(), h.value_unfolded().into_owned());
            }
        }
        b
    }

    /// Replaces the reason phrase.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    /// Adds `;tag=` to the To header unless it already has a tag (§8.2.6.2).
    pub fn to_tag(mut self, tag: impl Into<String>) -> Self {
        self.to_tag = Some(tag.into());
        self
    }

    header_methods!();

    /// Writes the response and parses it back.
    pub fn build(mut self) -> Result<Message, BuildError> {
        if !(100..=699).contains(&self.code) {
            return Err(BuildError::BadStatus(self.code));
        }
        if self.reason.contains(['\r', '\n']) {
            return Err(BuildError::BadReason);
        }
        if let Some(tag) = self.to_tag.take() {
            for (n, v) in self.h.list.iter_mut() {
                if HeaderName::from_name(n.as_bytes()) == HeaderName::To {
                    let has_tag = crate::header::NameAddr::parse(v)
                        .map(|na| na.tag().is_some())
                        .unwrap_or(true);
                    if !has_tag {
                        v.push_str(";tag=");
                        v.push_str(&tag);
                    }
                }
            }
        }
        self.h.check()?;
        let mut out = BytesMut::with_capacity(512 + self.h.body.len());
        out.put_slice(b"SIP/2.0 ");
        out.put_slice(self.code.to_string().as_bytes());
        out.put_u8(b' ');
        out.put_slice(self.reason.as_bytes());
        out.put_slice(b"\r\n");
        self.h.write(&mut out);
        self.h.finish(out)
    }
}
