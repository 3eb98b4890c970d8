//! The WebSocket opening handshake (RFC 6455 §4) with the `sip` subprotocol (RFC 7118 §4.1).
//!
//! Only what the handshake needs of HTTP/1.1 is parsed: a request or status line and header
//! fields up to the blank line, with a size cap so a peer cannot make us buffer without end.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::error::HandshakeError;

/// The GUID appended to the key before hashing (RFC 6455 §1.3, §4.2.2 item 5.4).
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Largest handshake header section accepted (request or response).
pub(crate) const MAX_HANDSHAKE: usize = 8 * 1024;

/// The subprotocol registered for SIP (RFC 7118 §4.1, §8.1).
pub(crate) const SIP_PROTOCOL: &str = "sip";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2 item 5.4).
pub(crate) fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(WS_GUID.as_bytes());
    BASE64.encode(h.finalize())
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes in base64 (RFC 6455 §4.1 item 7).
pub(crate) fn new_key(nonce: [u8; 16]) -> String {
    BASE64.encode(nonce)
}

/// The end of the header section (index just past the blank line), if it has arrived.
pub(crate) fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// A parsed header section: the start line and the fields.
struct Head<'a> {
    start: &'a str,
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Head<'a> {
    fn parse(head: &'a [u8]) -> Result<Head<'a>, HandshakeError> {
        let text = std::str::from_utf8(head).map_err(|_| HandshakeError::Malformed)?;
        let mut lines = text.split("\r\n");
        let start = lines.next().ok_or(HandshakeError::Malformed)?;
        let mut fields = Vec::new();
        for line in lines {
            if line.is_empty() {
                continue;
            }
            // Obsolete line folding is not accepted (RFC 9112 §5.2).
            if line.starts_with([' ', '\t']) {
                return Err(HandshakeError::Malformed);
            }
            let (name, value) = line.split_once(':').ok_or(HandshakeError::Malformed)?;
            if name.is_empty() || name.contains([' ', '\t']) {
                return Err(HandshakeError::Malformed);
            }
            fields.push((name, value.trim_matches([' ', '\t'])));
        }
        Ok(Head { start, fields })
    }

    fn all(&self, name: &'a str) -> impl Iterator<Item = &'a str> + '_ {
        self.fields
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// The single value of a field that must appear once.
    fn one(&self, name: &'a str) -> Option<&'a str> {
        let mut it = self.all(name);
        let v = it.next()?;
        match it.next() {
            Some(_) => None,
            None => Some(v),
        }
    }

    /// Whether a comma-separated list field (possibly repeated) holds `token`.
    fn has_token(&self, name: &'a str, token: &str, ignore_case: bool) -> bool {
        self.all(name).flat_map(|v| v.split(',')).any(|t| {
            let t = t.trim_matches([' ', '\t']);
            if ignore_case {
                t.eq_ignore_ascii_case(token)
            } else {
                t == token
            }
        })
    }
}

/// A client's opening handshake that passed every check (RFC 6455 §4.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientRequest {
    /// The request target (`/` or a path such as `/ws`).
    pub path: String,
    /// The Host header.
    pub host: String,
    /// The Sec-WebSocket-Key.
    pub key: String,
    /// The Origin header, sent by browsers (RFC 6455 §4.2.1 item 7, §10.2).
    pub origin: Option<String>,
}

/// Checks a client's opening handshake, header section only (RFC 6455 §4.2.1, RFC 7118 §4.1).
pub(crate) fn parse_request(head: &[u8]) -> Result<ClientRequest, HandshakeError> {
    let h = Head::parse(head)?;
    let mut parts = h.start.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) if !m.is_empty() && !t.is_empty() => (m, t, v),
        _ => return Err(HandshakeError::Malformed),
    };
    if version != "HTTP/1.1" {
        return Err(HandshakeError::Malformed);
    }
    if method != "GET" {
        return Err(HandshakeError::NotGet);
    }
    let host = h.one("host").ok_or(HandshakeError::MissingHost)?;
    if !h.has_token("upgrade", "websocket", true) {
        return Err(HandshakeError::NotUpgrade);
    }
    if !h.has_token("connection", "upgrade", true) {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    let key = h.one("sec-websocket-key").ok_or(HandshakeError::BadKey)?;
    match BASE64.decode(key) {
        Ok(k) if k.len() == 16 => {}
        _ => return Err(HandshakeError::BadKey),
    }
    if h.one("sec-websocket-version") != Some("13") {
        return Err(HandshakeError::UnsupportedVersion);
    }
    if !h.has_token("sec-websocket-protocol", SIP_PROTOCOL, false) {
        return Err(HandshakeError::NoSipProtocol);
    }
    Ok(ClientRequest {
        path: target.to_owned(),
        host: host.to_owned(),
        key: key.to_owned(),
        origin: h.one("origin").map(str::to_owned),
    })
}

/// The server's 101 answer selecting `sip` (RFC 6455 §4.2.2 item 5, RFC 7118 §4.1).
pub(crate) fn accept_response(key: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\
         Sec-WebSocket-Protocol: {SIP_PROTOCOL}\r\n\r\n",
        accept_key(key)
    )
}

/// The server's answer to a failed handshake (RFC 6455 §4.2.1: "an appropriate HTTP error
/// code"; §4.4: 426 with the versions we speak).
pub(crate) fn reject_response(e: HandshakeError) -> String {
    let (status, reason, extra) = match e.status() {
        405 => (405, "Method Not Allowed", "Allow: GET\r\n"),
        426 => (
            426,
            "Upgrade Required",
            "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
        ),
        431 => (431, "Request Header Fields Too Large", ""),
        _ => (400, "Bad Request", ""),
    };
    format!("HTTP/1.1 {status} {reason}\r\n{extra}Connection: close\r\nContent-Length: 0\r\n\r\n")
}

/// A client's opening handshake request (RFC 6455 §4.1, RFC 7118 §4.1).
pub(crate) fn client_request(host: &str, path: &str, key: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\n\
         Host: {host}\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\n\
         Sec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: {SIP_PROTOCOL}\r\n\r\n"
    )
}

/// Checks the server's answer to our handshake, header section only (RFC 6455 §4.1, the
/// client's validation of the response; RFC 7118 §4.1).
pub(crate) fn check_response(head: &[u8], key: &str) -> Result<(), HandshakeError> {
    let h = Head::parse(head)?;
    let mut parts = h.start.splitn(3, ' ');
    let (version, status) = match (parts.next(), parts.next()) {
        (Some(v), Some(s)) => (v, s),
        _ => return Err(HandshakeError::Malformed),
    };
    if version != "HTTP/1.1" {
        return Err(HandshakeError::Malformed);
    }
    let status: u16 = match status.parse() {
        Ok(s) if status.len() == 3 => s,
        _ => return Err(HandshakeError::Malformed),
    };
    if status != 101 {
        return Err(HandshakeError::Rejected(status));
    }
    if !h.has_token("upgrade", "websocket", true) {
        return Err(HandshakeError::NotUpgrade);
    }
    if !h.has_token("connection", "upgrade", true) {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    if h.one("sec-websocket-accept") != Some(accept_key(key).as_str()) {
        return Err(HandshakeError::BadAccept);
    }
    if h.one("sec-websocket-protocol") != Some(SIP_PROTOCOL) {
        return Err(HandshakeError::NoSipProtocol);
    }
    Ok(())
}

/// Whether a host or path can be written into a request line or header unchanged.
pub(crate) fn is_clean(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6455_section_1_3_accept_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    const RFC7118_REQUEST: &str = "GET / HTTP/1.1\r\n\
        Host: sip-ws.example.com\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Origin: http://www.example.com\r\n\
        Sec-WebSocket-Protocol: sip\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn rfc_7118_example_request_is_accepted() {
        let r = parse_request(RFC7118_REQUEST.as_bytes()).unwrap();
        assert_eq!(r.path, "/");
        assert_eq!(r.host, "sip-ws.example.com");
        assert_eq!(r.origin.as_deref(), Some("http://www.example.com"));
        let resp = accept_response(&r.key);
        assert!(resp.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        check_response(resp.as_bytes(), &r.key).unwrap();
    }

    fn with(find: &str, replace: &str) -> Result<ClientRequest, HandshakeError> {
        parse_request(RFC7118_REQUEST.replace(find, replace).as_bytes())
    }

    #[test]
    fn bad_requests_get_the_right_error() {
        assert_eq!(with("GET /", "POST /").unwrap_err(), HandshakeError::NotGet);
        assert_eq!(
            with("HTTP/1.1", "HTTP/1.0").unwrap_err(),
            HandshakeError::Malformed
        );
        assert_eq!(
            with("Host: sip-ws.example.com\r\n", "").unwrap_err(),
            HandshakeError::MissingHost
        );
        assert_eq!(
            with("Upgrade: websocket\r\n", "").unwrap_err(),
            HandshakeError::NotUpgrade
        );
        assert_eq!(
            with("Connection: Upgrade", "Connection: keep-alive").unwrap_err(),
            HandshakeError::MissingConnectionUpgrade
        );
        assert_eq!(
            with("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=").unwrap_err(),
            HandshakeError::BadKey
        );
        assert_eq!(
            with("Version: 13", "Version: 8").unwrap_err(),
            HandshakeError::UnsupportedVersion
        );
        assert_eq!(
            with("Protocol: sip", "Protocol: chat, superchat").unwrap_err(),
            HandshakeError::NoSipProtocol
        );
        assert_eq!(
            with("Host:", " Host:").unwrap_err(),
            HandshakeError::Malformed
        );
        // A token list with sip among others, and a Connection list, are fine.
        assert!(with("Protocol: sip", "Protocol: chat, sip").is_ok());
        assert!(with("Connection: Upgrade", "Connection: keep-alive, Upgrade").is_ok());
    }

    #[test]
    fn reject_answers_carry_the_status() {
        assert!(reject_response(HandshakeError::UnsupportedVersion)
            .starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        assert!(reject_response(HandshakeError::UnsupportedVersion)
            .contains("Sec-WebSocket-Version: 13\r\n"));
        assert!(reject_response(HandshakeError::NoSipProtocol).starts_with("HTTP/1.1 400 "));
        assert!(reject_response(HandshakeError::NotGet).starts_with("HTTP/1.1 405 "));
    }

    #[test]
    fn client_checks_the_answer() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let good = accept_response(key);
        assert_eq!(
            check_response(good.as_bytes(), "AAAAAAAAAAAAAAAAAAAAAA=="),
            Err(HandshakeError::BadAccept)
        );
        assert_eq!(
            check_response(
                good.replace("Protocol: sip", "Protocol: chat").as_bytes(),
                key
            ),
            Err(HandshakeError::NoSipProtocol)
        );
        assert_eq!(
            check_response(reject_response(HandshakeError::BadKey).as_bytes(), key),
            Err(HandshakeError::Rejected(400))
        );
        assert_eq!(
            check_response(b"garbage\r\n\r\n", key),
            Err(HandshakeError::Malformed)
        );
    }
}
