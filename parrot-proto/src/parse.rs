//! Framing and tokenising of one message (RFC 3261 §7, §18.3, §25.1).
//!
//! One pass over the header section records the start line and the position of every header;
//! nothing is copied and no header value is interpreted except Content-Length, which framing
//! needs. Typed views parse values later, on access.

use crate::error::{ErrorKind, ParseError};
use crate::header::HeaderName;
use crate::limits::Limits;
use crate::message::{HeaderSpan, Message, Span, StartSpans};
use crate::text::{find_byte, is_token_byte};
use bytes::Bytes;
use bytestring::ByteString;
use memchr::memchr;
use smallvec::SmallVec;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Datagram,
    Stream,
}

// A complete message is the common case: boxing it would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Outcome {
    Complete(Message, usize),
    Partial,
}

/// Number of leading CR/LF octets (keep-alives and the tolerated empty lines before a start
/// line, §7.5).
pub(crate) fn leading_crlf(b: &[u8]) -> usize {
    b.iter().take_while(|&&c| c == b'\r' || c == b'\n').count()
}

/// Where [`parse_from`] reads: a buffer it may only share (a stream's), or one it owns (a
/// datagram), which becomes the message's own without another handle when it is all message.
pub(crate) enum Source<'a> {
    Shared(&'a Bytes),
    Owned(Bytes),
}

#[inline]
pub(crate) fn parse(bytes: &Bytes, limits: &Limits, mode: Mode) -> Result<Outcome, ParseError> {
    parse_from(Source::Shared(bytes), limits, mode)
}

#[inline]
pub(crate) fn parse_from(
    src: Source<'_>,
    limits: &Limits,
    mode: Mode,
) -> Result<Outcome, ParseError> {
    let bytes: &[u8] = match &src {
        Source::Shared(b) => b,
        Source::Owned(b) => b,
    };
    let lead = leading_crlf(bytes);
    let b = &bytes[lead..];
    if b.is_empty() {
        return match mode {
            Mode::Datagram => Err(ParseError::new(ErrorKind::Empty, 0)),
            Mode::Stream => Ok(Outcome::Partial),
        };
    }
    let err = |kind, at: usize| ParseError::new(kind, lead + at);

    // Start line.
    let Some(nl) = find_byte(b'\n', b) else {
        return partial_or(
            mode,
            b.len(),
            limits,
            err(ErrorKind::UnterminatedHeaders, b.len()),
        );
    };
    let line_end = if nl > 0 && b[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    let line = &b[..line_end];
    let is_response = line.starts_with(b"SIP/") || line.starts_with(b"sip/");
    let start = if is_response {
        match parse_status_line_fast(line) {
            Some(s) => s,
            None => parse_status_line(line).map_err(|(k, at)| err(k, at).in_request(false))?,
        }
    } else if let Some(s) = parse_request_line_fast(line) {
        s
    } else {
        parse_request_line(line).map_err(|(k, at, req)| {
            let e = err(k, at);
            if req {
                e.in_request(true)
            } else {
                e
            }
        })?
    };
    let tag = |e: ParseError| e.in_request(!is_response);

    // Header lines.
    let mut headers: SmallVec<[HeaderSpan; 16]> = SmallVec::new();
    let mut pos = nl + 1;
    let mut folded = false;
    let body_start = loop {
        let rest = &b[pos..];
        let Some(rel) = find_byte(b'\n', rest) else {
            if mode == Mode::Datagram && rest.is_empty() {
                // The datagram ends right after a complete header line with no empty line
                // (RFC 4475 `baddn`, RFC 5118 §4.10 as archived): be liberal, there is no body.
                break pos;
            }
            return partial_or(
                mode,
                b.len(),
                limits,
                tag(err(ErrorKind::UnterminatedHeaders, b.len())),
            );
        };
        let next = pos + rel + 1;
        let line = match &rest[..rel] {
            [line @ .., b'\r'] => line,
            line => line,
        };
        if line.is_empty() {
            break next;
        }
        // A known name followed at once by the colon, the common line, is recognised in one
        // step (its bytes are letters and `-`, so the colon lies inside the line); otherwise
        // the line is a fold or one pass reads the name: token bytes up to optional white
        // space and the colon.
        let (kind, name_end, colon) = match HeaderName::known_at_line_start(rest) {
            Some((kind, l)) => {
                debug_assert!(l < line.len());
                (kind, l, l)
            }
            None if line[0] == b' ' || line[0] == b'\t' => {
                // Folded continuation (§7.3.1): the value now runs to the end of this line.
                let Some(last) = headers.last_mut() else {
                    return Err(tag(err(ErrorKind::BadHeaderLine, pos)));
                };
                let end = pos + line.len();
                last.value.end = end as u32;
                folded = true;
                if (end - last.name.start as usize) > limits.max_header_len {
                    return Err(tag(err(ErrorKind::TooLarge, pos)).with_header(last.kind));
                }
                pos = next;
                if pos > limits.max_message_size {
                    return Err(tag(err(ErrorKind::TooLarge, pos)));
                }
                continue;
            }
            None => {
                let mut name_end = 0;
                while name_end < line.len() && is_token_byte(line[name_end]) {
                    name_end += 1;
                }
                let mut colon = name_end;
                while colon < line.len() && matches!(line[colon], b' ' | b'\t') {
                    colon += 1;
                }
                if name_end == 0 || colon >= line.len() || line[colon] != b':' {
                    return Err(tag(err(ErrorKind::BadHeaderLine, pos)));
                }
                (HeaderName::from_token_name(rest, name_end), name_end, colon)
            }
        };
        let mut vstart = colon + 1;
        while vstart < line.len() && matches!(line[vstart], b' ' | b'\t') {
            vstart += 1;
        }
        if line.len() > limits.max_header_len || headers.len() >= limits.max_headers {
            return Err(tag(err(ErrorKind::TooLarge, pos)));
        }
        headers.push(HeaderSpan {
            kind,
            name: Span::new(pos, pos + name_end),
            value: Span::new(pos + vstart, pos + line.len()),
        });
        pos = next;
        if pos > limits.max_message_size {
            return Err(tag(err(ErrorKind::TooLarge, pos)));
        }
    };

    // Content-Length (§20.14): every copy must agree (RFC 4475 §3.3.9 `mcl01`).
    let mut content_length: Option<usize> = None;
    for h in headers
        .iter()
        .filter(|h| h.kind == HeaderName::ContentLength)
    {
        let n = crate::text::parse_u32_bytes(crate::text::trim_lws_bytes(&b[h.value.range()]))
            .ok_or_else(|| tag(err(ErrorKind::BadContentLength, h.value.start as usize)))?
            as usize;
        if content_length.is_some_and(|c| c != n) {
            return Err(
                tag(err(ErrorKind::BadContentLength, h.value.start as usize))
                    .with_header(HeaderName::ContentLength),
            );
        }
        content_length = Some(n);
    }

    let avail = b.len() - body_start;
    let total = match (mode, content_length) {
        (Mode::Datagram, Some(n)) if n > avail => {
            return Err(
                tag(err(ErrorKind::BodyTooShort, b.len())).with_header(HeaderName::ContentLength)
            )
        }
        (Mode::Datagram, Some(n)) => body_start + n,
        // No Content-Length on a datagram: the body runs to its end (§18.3).
        (Mode::Datagram, None) => b.len(),
        (Mode::Stream, None) => return Err(tag(err(ErrorKind::MissingContentLength, body_start))),
        (Mode::Stream, Some(n)) => {
            if body_start + n > limits.max_message_size {
                return Err(tag(err(ErrorKind::TooLarge, body_start)));
            }
            if n > avail {
                return Ok(Outcome::Partial);
            }
            body_start + n
        }
    };
    if total > limits.max_message_size {
        return Err(tag(err(ErrorKind::TooLarge, body_start)));
    }

    let raw = match src {
        Source::Owned(b) if lead == 0 && total == b.len() => b,
        Source::Owned(b) => b.slice(lead..lead + total),
        Source::Shared(b) => b.slice(lead..lead + total),
    };
    let head = match ByteString::try_from(raw.slice(..body_start)) {
        Ok(h) => h,
        Err(_) => {
            let at = std::str::from_utf8(&raw[..body_start])
                .err()
                .map_or(0, |e| e.valid_up_to());
            return Err(tag(err(ErrorKind::InvalidUtf8, at)));
        }
    };
    let msg = Message::from_parts(raw, head, start, headers, folded, body_start);
    Ok(Outcome::Complete(msg, lead + total))
}

fn partial_or(
    mode: Mode,
    len: usize,
    limits: &Limits,
    e: ParseError,
) -> Result<Outcome, ParseError> {
    match mode {
        Mode::Stream if len <= limits.max_message_size => Ok(Outcome::Partial),
        Mode::Stream => Err(ParseError::new(ErrorKind::TooLarge, len)),
        Mode::Datagram => Err(e),
    }
}

fn is_sip_version(v: &[u8]) -> bool {
    v.eq_ignore_ascii_case(b"SIP/2.0")
}

/// `SIP/` DIGITs `.` DIGITs, any numbers: a version we can name in a 505.
fn looks_like_version(v: &[u8]) -> bool {
    let Some(rest) = v.get(4..) else { return false };
    if !v[..4].eq_ignore_ascii_case(b"SIP/") {
        return false;
    }
    let mut parts = rest.split(|&c| c == b'.');
    let ok =
        |p: Option<&[u8]>| p.is_some_and(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit));
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

type LineError = (ErrorKind, usize, bool);

/// The common request line, `token SP uri SP SIP/2.0` with a URI that holds a colon and no
/// white space and does not start with `<`, in one pass. `None` for anything else, which
/// [`parse_request_line`] then decides: whatever this accepts, that accepts alike.
fn parse_request_line_fast(line: &[u8]) -> Option<StartSpans> {
    let n = line.len();
    let uri_end = n.checked_sub(8)?;
    if line.get(uri_end..)? != b" SIP/2.0" {
        return None;
    }
    let mut sp1 = 0;
    while sp1 < uri_end && is_token_byte(line[sp1]) {
        sp1 += 1;
    }
    if sp1 == 0 || sp1 >= uri_end || line[sp1] != b' ' {
        return None;
    }
    let uri = &line[sp1 + 1..uri_end];
    if uri.first() == Some(&b'<') {
        return None;
    }
    // No short-circuit: the loop vectorises.
    let (ws, colon) = uri.iter().fold((false, false), |(w, c), &b| {
        (w | (b == b' ') | (b == b'\t'), c | (b == b':'))
    });
    if ws || !colon {
        return None;
    }
    Some(StartSpans::Request {
        method: Span::new(0, sp1),
        uri: Span::new(sp1 + 1, uri_end),
    })
}

/// The common status line, `SIP/2.0 SP 3DIGIT [SP reason]`, code 100-699. `None` for anything
/// else, which [`parse_status_line`] then decides: whatever this accepts, that accepts alike.
fn parse_status_line_fast(line: &[u8]) -> Option<StartSpans> {
    let n = line.len();
    if line.get(..8)? != b"SIP/2.0 " || (n > 11 && line[11] != b' ') {
        return None;
    }
    let d = line.get(8..11)?;
    if !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = d
        .iter()
        .fold(0u16, |acc, &c| acc * 10 + u16::from(c - b'0'));
    if !(100..=699).contains(&code) {
        return None;
    }
    Some(StartSpans::Response {
        code,
        reason: Span::new(12.min(n), n),
    })
}

fn parse_request_line(line: &[u8]) -> Result<StartSpans, LineError> {
    let Some(sp1) = memchr(b' ', line) else {
        return Err((ErrorKind::BadStartLine, 0, false));
    };
    let method = &line[..sp1];
    if method.is_empty() || !method.iter().all(|&c| is_token_byte(c)) {
        return Err((ErrorKind::BadMethod, 0, false));
    }
    let Some(sp2) = memchr::memrchr(b' ', line) else {
        return Err((ErrorKind::BadStartLine, 0, false));
    };
    let version = &line[sp2 + 1..];
    if sp2 == sp1 {
        return Err((ErrorKind::BadRequestLine, sp1, looks_like_version(version)));
    }
    let uri = &line[sp1 + 1..sp2];
    let is_request = looks_like_version(version) || uri.contains(&b':');
    if uri.is_empty()
        || uri.iter().any(|&c| c == b' ' || c == b'\t')
        || uri[0] == b'<'
        || memchr(b':', uri).is_none()
    {
        return Err((ErrorKind::BadRequestLine, sp1 + 1, is_request));
    }
    if !is_sip_version(version) {
        let kind = if looks_like_version(version) {
            ErrorKind::UnsupportedVersion
        } else {
            ErrorKind::BadRequestLine
        };
        return Err((kind, sp2 + 1, is_request));
    }
    Ok(StartSpans::Request {
        method: Span::new(0, sp1),
        uri: Span::new(sp1 + 1, sp2),
    })
}

fn parse_status_line(line: &[u8]) -> Result<StartSpans, (ErrorKind, usize)> {
    let Some(sp1) = memchr(b' ', line) else {
        return Err((ErrorKind::BadStatusLine, 0));
    };
    let version = &line[..sp1];
    if !is_sip_version(version) {
        let kind = if looks_like_version(version) {
            ErrorKind::UnsupportedVersion
        } else {
            ErrorKind::BadStatusLine
        };
        return Err((kind, 0));
    }
    let rest = &line[sp1 + 1..];
    let code_end = memchr(b' ', rest).unwrap_or(rest.len());
    let code = &rest[..code_end];
    if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        return Err((ErrorKind::BadStatusLine, sp1 + 1));
    }
    let code = code
        .iter()
        .fold(0u16, |acc, &c| acc * 10 + u16::from(c - b'0'));
    if !(100..=699).contains(&code) {
        return Err((ErrorKind::BadStatusLine, sp1 + 1));
    }
    let reason_start = (sp1 + 1 + code_end + 1).min(line.len());
    Ok(StartSpans::Response {
        code,
        reason: Span::new(reason_start, line.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn start_line() -> impl Strategy<Value = Vec<u8>> {
        let part = prop_oneof![
            Just("INVITE".to_owned()),
            Just("SIP/2.0".to_owned()),
            Just("sip/2.0".to_owned()),
            Just("SIP/2.1".to_owned()),
            Just("sip:bob@192.0.2.2:5060;transport=udp".to_owned()),
            Just("<sip:x>".to_owned()),
            Just("200".to_owned()),
            Just("99".to_owned()),
            Just("700".to_owned()),
            "[ -~\t]{0,12}",
        ];
        let sep = prop_oneof![Just(" "), Just("  "), Just("\t"), Just("")];
        proptest::collection::vec((part, sep), 1..5).prop_map(|v| {
            v.into_iter()
                .flat_map(|(p, s)| [p, s.to_owned()])
                .collect::<String>()
                .into_bytes()
        })
    }

    proptest! {
        #[test]
        fn request_line_shortcut_agrees_with_general_rule(line in start_line()) {
            if let Some(fast) = parse_request_line_fast(&line) {
                prop_assert_eq!(Ok(fast), parse_request_line(&line));
            }
        }

        #[test]
        fn status_line_shortcut_agrees_with_general_rule(line in start_line()) {
            if let Some(fast) = parse_status_line_fast(&line) {
                prop_assert_eq!(Ok(fast), parse_status_line(&line));
            }
        }
    }

    #[test]
    fn common_start_lines_take_the_shortcut() {
        let req = b"INVITE sip:bob@192.0.2.2 SIP/2.0";
        assert_eq!(
            parse_request_line_fast(req).map(Ok),
            Some(parse_request_line(req))
        );
        for l in [&b"SIP/2.0 180 Ringing"[..], b"SIP/2.0 200", b"SIP/2.0 486 "] {
            assert_eq!(
                parse_status_line_fast(l).map(Ok),
                Some(parse_status_line(l))
            );
        }
        assert_eq!(parse_status_line_fast(b"SIP/2.0 2000 OK"), None);
        assert_eq!(parse_request_line_fast(b"INVITE <sip:x> SIP/2.0"), None);
    }
}
