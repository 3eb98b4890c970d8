//! Parse errors: what is wrong, where, and what a UAS answers.

use crate::header::HeaderName;
use std::fmt;

/// What went wrong while parsing or validating a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input is empty or holds only whitespace.
    Empty,
    /// The start line is neither a Request-Line nor a Status-Line (RFC 3261 §7.1, §7.2).
    BadStartLine,
    /// The Request-Line is malformed: extra spaces, spaces in the URI, `<>` around it (§25.1).
    BadRequestLine,
    /// The Status-Line is malformed, or the status code is not three digits (§7.2).
    BadStatusLine,
    /// The SIP version is not `SIP/2.0` (§8.2.2 answers 505).
    UnsupportedVersion,
    /// The method is not a token (§25.1).
    BadMethod,
    /// A header line has no name, a name that is not a token, or no colon (§7.3.1).
    BadHeaderLine,
    /// The header section ended before the empty line.
    UnterminatedHeaders,
    /// The header section is not UTF-8 (§7.3.1 allows UTF-8 text only).
    InvalidUtf8,
    /// `Content-Length` is not a non-negative decimal number, or two differ (§20.14).
    BadContentLength,
    /// `Content-Length` says more bytes than the datagram holds (§18.3).
    BodyTooShort,
    /// A stream message has no `Content-Length` (§18.3 makes it mandatory on streams).
    MissingContentLength,
    /// A [`crate::Limits`] bound was exceeded.
    TooLarge,
    /// A mandatory header (Via, From, To, Call-ID, CSeq) is absent (§8.1.1, §8.2).
    MissingHeader,
    /// A header that may appear once appears several times with different values (§7.3.1).
    DuplicateHeader,
    /// A header value does not follow its grammar (§25.1).
    BadHeaderValue,
    /// A number is out of range: CSeq over 2^31, Max-Forwards over 255, ... (§8.1.1.5, §20).
    OutOfRange,
    /// The CSeq method differs from the Request-Line method (§8.1.1.5).
    MethodMismatch,
    /// The CSeq method differs from an unknown Request-Line method (answered 501, §8.2.1).
    UnknownMethodMismatch,
    /// A URI does not follow RFC 3261 §19.1 / RFC 3966.
    BadUri,
    /// The Request-URI carries a component it may not carry (headers, §19.1.1 table 1).
    BadRequestUri,
}

impl ErrorKind {
    /// A short, human description.
    pub fn describe(self) -> &'static str {
        match self {
            ErrorKind::Empty => "empty message",
            ErrorKind::BadStartLine => "start line is neither a request nor a status line",
            ErrorKind::BadRequestLine => "malformed Request-Line",
            ErrorKind::BadStatusLine => "malformed Status-Line",
            ErrorKind::UnsupportedVersion => "SIP version is not SIP/2.0",
            ErrorKind::BadMethod => "method is not a token",
            ErrorKind::BadHeaderLine => "malformed header line",
            ErrorKind::UnterminatedHeaders => "header section does not end with an empty line",
            ErrorKind::InvalidUtf8 => "header section is not valid UTF-8",
            ErrorKind::BadContentLength => "invalid Content-Length",
            ErrorKind::BodyTooShort => "Content-Length is larger than the body received",
            ErrorKind::MissingContentLength => "Content-Length is required on stream transports",
            ErrorKind::TooLarge => "message exceeds a configured limit",
            ErrorKind::MissingHeader => "mandatory header missing",
            ErrorKind::DuplicateHeader => "header may appear only once",
            ErrorKind::BadHeaderValue => "malformed header value",
            ErrorKind::OutOfRange => "number out of range",
            ErrorKind::MethodMismatch => "CSeq method does not match the request method",
            ErrorKind::UnknownMethodMismatch => {
                "CSeq method does not match the (unknown) request method"
            }
            ErrorKind::BadUri => "malformed URI",
            ErrorKind::BadRequestUri => "Request-URI carries components it may not carry",
        }
    }
}

/// A parse or validation failure: its kind, the header it concerns and the byte offset in the
/// message where it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    kind: ErrorKind,
    offset: usize,
    header: Option<HeaderName>,
    in_request: Option<bool>,
}

impl ParseError {
    pub(crate) fn new(kind: ErrorKind, offset: usize) -> Self {
        ParseError {
            kind,
            offset,
            header: None,
            in_request: None,
        }
    }

    pub(crate) fn with_header(mut self, header: HeaderName) -> Self {
        self.header = Some(header);
        self
    }

    pub(crate) fn in_request(mut self, is_request: bool) -> Self {
        self.in_request = Some(is_request);
        self
    }

    /// What is wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Byte offset into the message where the problem was found.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The header the problem was found in, if any.
    pub fn header(&self) -> Option<HeaderName> {
        self.header
    }

    /// Whether the failing message was a request (`Some(true)`), a response (`Some(false)`),
    /// or could not be told (`None`).
    pub fn is_request(&self) -> Option<bool> {
        self.in_request
    }

    /// The status code a UAS answers this failure with (RFC 3261 §8.2, §21.4), or `None` where
    /// the message must be dropped silently: any bad response (§18.1.2), and input that is not
    /// recognisably a request (there is no Via to answer to).
    pub fn response_code(&self) -> Option<u16> {
        if self.in_request != Some(true) {
            return None;
        }
        Some(match self.kind {
            ErrorKind::UnsupportedVersion => 505,
            ErrorKind::UnknownMethodMismatch => 501,
            ErrorKind::TooLarge => 513,
            _ => 400,
        })
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.describe())?;
        if let Some(h) = self.header {
            write!(f, " in {}", h.as_str())?;
        }
        write!(f, " at byte {}", self.offset)
    }
}

impl std::error::Error for ParseError {}
