//! The SDP parser (RFC 8866 §5, §9 grammar), line by line. It accepts CRLF or LF, requires `v=0`
//! first and `o=`, `s=` and at least one `t=` in the session part, rejects unknown type letters
//! (§5: a parser must reject what it does not understand) and never panics.

use super::view::{
    AttributeView, BandwidthView, ConnectionView, MediaLines, MediaView, OriginView, SdpView,
    TimingView,
};
use super::{LineEnding, SessionDescription};
use crate::text::{has_crlf, split_once_byte, SplitByte};
use smallvec::SmallVec;

/// What went wrong on a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdpErrorKind {
    /// The first line is not `v=0`.
    BadVersion,
    /// A line is not `<letter>=<value>`.
    BadLine,
    /// A type letter this parser does not know, or one out of place.
    UnexpectedLine,
    /// `o=` is malformed.
    BadOrigin,
    /// `c=` is malformed.
    BadConnection,
    /// `b=` is malformed.
    BadBandwidth,
    /// `t=` is malformed.
    BadTiming,
    /// `m=` is malformed.
    BadMedia,
    /// `o=`, `s=` or `t=` is missing.
    MissingLine,
    /// A line appears twice where only one is allowed.
    DuplicateLine,
}

/// A parse error with the 1-based line number it occurred on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdpError {
    /// Line number (1-based; 0 for the whole description).
    pub line: usize,
    /// What went wrong.
    pub kind: SdpErrorKind,
}

impl core::fmt::Display for SdpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SDP line {}: {:?}", self.line, self.kind)
    }
}

impl std::error::Error for SdpError {}

fn connection(v: &str) -> Option<ConnectionView<'_>> {
    let mut it = SplitByte::new(v, b' ');
    let c = ConnectionView {
        net_type: it.next()?,
        addr_type: it.next()?,
        address: it.next()?,
    };
    (it.next().is_none()
        && !c.net_type.is_empty()
        && !c.addr_type.is_empty()
        && !c.address.is_empty())
    .then_some(c)
}

fn bandwidth(v: &str) -> Option<BandwidthView<'_>> {
    let (t, b) = split_once_byte(v, b':')?;
    (!t.is_empty() && !t.contains(' ')).then_some(())?;
    canonical_u64(b).map(|bandwidth| BandwidthView {
        bwtype: t,
        bandwidth,
    })
}

/// A decimal without sign or leading zeros, so it serialises back to the same bytes.
fn canonical_u64(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    // One pass: digits only, overflow rejected (as `str::parse` would).
    let mut n: u64 = 0;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(n)
}

fn attribute(v: &str) -> AttributeView<'_> {
    match split_once_byte(v, b':') {
        Some((n, val)) => AttributeView {
            name: n,
            value: Some(val),
        },
        None => AttributeView {
            name: v,
            value: None,
        },
    }
}

fn origin(v: &str) -> Option<OriginView<'_>> {
    let mut it = SplitByte::new(v, b' ');
    let o = OriginView {
        username: it.next()?,
        session_id: it.next()?,
        session_version: canonical_u64(it.next()?)?,
        net_type: it.next()?,
        addr_type: it.next()?,
        address: it.next()?,
    };
    let ok = it.next().is_none()
        && [o.username, o.session_id, o.net_type, o.addr_type, o.address]
            .iter()
            .all(|s| !s.is_empty());
    ok.then_some(o)
}

/// Parses an `m=` line onto the end of `lines` (RFC 8866 §5.14), its formats written in
/// place: a media view is large, and building one to return and push copied it twice.
/// On `None`, `lines` is as it was.
fn media_into<'a>(v: &'a str, lines: &mut MediaLines<'a>) -> Option<()> {
    let mut it = SplitByte::new(v, b' ');
    let kind = it.next()?;
    let port_s = it.next()?;
    let (port, num_ports) = match split_once_byte(port_s, b'/') {
        Some((p, n)) => (p, Some(canonical_u64(n)?.try_into().ok()?)),
        None => (port_s, None),
    };
    let port = canonical_u64(port)?.try_into().ok()?;
    let proto = it.next()?;
    if kind.is_empty() || proto.is_empty() {
        return None;
    }
    lines.push(MediaView {
        media: kind,
        port,
        num_ports,
        proto,
        formats: SmallVec::new(),
        information: None,
        connections: Vec::new(),
        bandwidths: Vec::new(),
        key: None,
        attributes: SmallVec::new(),
    });
    let m = lines.last_mut()?;
    // Pushed one by one: cheaper than collecting into inline storage.
    for f in it {
        if f.is_empty() {
            lines.pop();
            return None;
        }
        m.formats.push(f);
    }
    Some(())
}

pub(super) fn parse(text: &str) -> Result<SessionDescription, SdpError> {
    parse_view(text).map(|v| v.to_owned())
}

/// Parses and validates a description, borrowing its strings from `text`.
pub(crate) fn parse_view(text: &str) -> Result<SdpView<'_>, SdpError> {
    let mut sd = SdpView::empty();
    parse_into(text, &mut sd)?;
    Ok(sd)
}

/// [`parse_view`] into `sd` (an [`SdpView::empty`]), so a large view is not moved around.
pub(crate) fn parse_into<'a>(text: &'a str, sd: &mut SdpView<'a>) -> Result<(), SdpError> {
    sd.line_ending = if has_crlf(text) {
        LineEnding::CrLf
    } else {
        LineEnding::Lf
    };
    let mut origin_line = None;
    let mut session_name = None;
    let body = text.strip_suffix('\n').unwrap_or(text);
    let mut seen_version = false;
    for (idx, raw) in SplitByte::new(body, b'\n').enumerate() {
        let lineno = idx + 1;
        let err = |kind| SdpError { line: lineno, kind };
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let bytes = line.as_bytes();
        if bytes.len() < 2 || bytes[1] != b'=' {
            return Err(err(SdpErrorKind::BadLine));
        }
        let (t, v) = (bytes[0], &line[2..]);
        if !seen_version {
            if t != b'v' || v != "0" {
                return Err(err(SdpErrorKind::BadVersion));
            }
            seen_version = true;
            continue;
        }
        if let Some(m) = sd.media.last_mut() {
            match t {
                b'm' => media_into(v, &mut sd.media).ok_or(err(SdpErrorKind::BadMedia))?,
                b'i' if m.information.is_none() => m.information = Some(v),
                b'c' => m
                    .connections
                    .push(connection(v).ok_or(err(SdpErrorKind::BadConnection))?),
                b'b' => m
                    .bandwidths
                    .push(bandwidth(v).ok_or(err(SdpErrorKind::BadBandwidth))?),
                b'k' if m.key.is_none() => m.key = Some(v),
                b'a' => m.attributes.push(attribute(v)),
                b'i' | b'k' => return Err(err(SdpErrorKind::DuplicateLine)),
                _ => return Err(err(SdpErrorKind::UnexpectedLine)),
            }
            continue;
        }
        match t {
            b'o' if origin_line.is_none() => {
                origin_line = Some(origin(v).ok_or(err(SdpErrorKind::BadOrigin))?)
            }
            b's' if session_name.is_none() => session_name = Some(v),
            b'i' if sd.information.is_none() => sd.information = Some(v),
            b'u' if sd.uri.is_none() => sd.uri = Some(v),
            b'e' => sd.emails.push(v),
            b'p' => sd.phones.push(v),
            b'c' if sd.connection.is_none() => {
                sd.connection = Some(connection(v).ok_or(err(SdpErrorKind::BadConnection))?)
            }
            b'b' => sd
                .bandwidths
                .push(bandwidth(v).ok_or(err(SdpErrorKind::BadBandwidth))?),
            b't' => {
                let (a, b) = split_once_byte(v, b' ').ok_or(err(SdpErrorKind::BadTiming))?;
                let start = canonical_u64(a).ok_or(err(SdpErrorKind::BadTiming))?;
                let stop = canonical_u64(b).ok_or(err(SdpErrorKind::BadTiming))?;
                sd.times.push(TimingView {
                    start,
                    stop,
                    repeats: Vec::new(),
                });
            }
            b'r' => sd
                .times
                .last_mut()
                .ok_or(err(SdpErrorKind::UnexpectedLine))?
                .repeats
                .push(v),
            b'z' if sd.time_zones.is_none() => sd.time_zones = Some(v),
            b'k' if sd.key.is_none() => sd.key = Some(v),
            b'a' => sd.attributes.push(attribute(v)),
            b'm' => media_into(v, &mut sd.media).ok_or(err(SdpErrorKind::BadMedia))?,
            b'o' | b's' | b'i' | b'u' | b'c' | b'z' | b'k' | b'v' => {
                return Err(err(SdpErrorKind::DuplicateLine))
            }
            _ => return Err(err(SdpErrorKind::UnexpectedLine)),
        }
    }
    if !seen_version {
        return Err(SdpError {
            line: 0,
            kind: SdpErrorKind::BadVersion,
        });
    }
    let missing = SdpError {
        line: 0,
        kind: SdpErrorKind::MissingLine,
    };
    sd.origin = origin_line.ok_or(missing)?;
    sd.session_name = session_name.ok_or(missing)?;
    if sd.times.is_empty() {
        return Err(missing);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::canonical_u64;
    use proptest::prelude::*;

    const FULL: &str = "v=0\r\n\
o=jdoe 3724394400 3724394405 IN IP4 198.51.100.1\r\n\
s=Call to John Smith\r\n\
i=SDP Offer #1\r\n\
u=http://www.jdoe.example.com/home.html\r\n\
e=Jane Doe <jane@jdoe.example.com>\r\n\
p=+1 617 555-6011\r\n\
c=IN IP4 198.51.100.1\r\n\
b=CT:128\r\n\
t=0 0\r\n\
r=604800 3600 0 90000\r\n\
z=2882844526 -1h 2898848070 0\r\n\
k=prompt\r\n\
a=tool:parrot\r\n\
a=sendrecv\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\n\
i=voice\r\n\
c=IN IP6 2001:db8::1\r\n\
b=AS:64\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=maxptime:40\r\n\
a=rtcp:53020 IN IP4 126.16.64.4\r\n\
a=rtcp-mux\r\n\
a=x-unknown:keep  this  verbatim \r\n\
a=recvonly\r\n\
m=video 51372/2 RTP/AVP 99\r\n\
a=rtpmap:99 h263-1998/90000\r\n\
a=inactive\r\n\
m=audio 0 RTP/SAVP 0\r\n";

    #[test]
    fn full_description_round_trips_byte_for_byte() {
        let sd = SessionDescription::parse(FULL).unwrap();
        assert_eq!(sd.to_string(), FULL);
        assert_eq!(sd.media.len(), 3);
        let m = &sd.media[0];
        assert_eq!(m.rtpmap(101).unwrap().encoding_name, "telephone-event");
        assert_eq!(m.fmtp(101), Some("0-16"));
        assert_eq!((m.ptime(), m.maxptime()), (Some(20), Some(40)));
        assert_eq!(m.rtcp().unwrap().port, 53020);
        assert!(m.rtcp_mux());
        assert_eq!(sd.media_direction(0), Direction::RecvOnly);
        assert_eq!(sd.media_direction(2), Direction::SendRecv);
        assert_eq!(
            sd.media_connection(0).unwrap().ip(),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            sd.media_connection(1).unwrap().ip(),
            Some("198.51.100.1".parse().unwrap())
        );
        assert_eq!(sd.media[1].num_ports, Some(2));
    }

    #[test]
    fn lf_only_round_trips() {
        let lf = FULL.replace("\r\n", "\n");
        assert_eq!(SessionDescription::parse(&lf).unwrap().to_string(), lf);
    }

    #[test]
    fn rejects_missing_and_unknown_lines() {
        assert!(SessionDescription::parse("").is_err());
        assert!(SessionDescription::parse("v=1\r\n").is_err());
        assert!(SessionDescription::parse("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n").is_err());
        assert!(SessionDescription::parse(
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nx=1\r\n"
        )
        .is_err());
        assert!(SessionDescription::parse(
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 99999 RTP/AVP 0\r\n"
        )
        .is_err());
    }

    fn token() -> impl Strategy<Value = String> {
        "[A-Za-z0-9.+_-]{1,8}"
    }
    fn text() -> impl Strategy<Value = String> {
        "[ -~]{0,20}"
    }
    fn conn() -> impl Strategy<Value = Connection> {
        (token(), token(), token()).prop_map(|(n, t, a)| Connection {
            net_type: n,
            addr_type: t,
            address: a,
        })
    }
    fn bw() -> impl Strategy<Value = Bandwidth> {
        (token(), any::<u64>())
            .prop_map(|(t, b)| Bandwidth {
                bwtype: t.replace(':', ""),
                bandwidth: b,
            })
            .prop_filter("empty", |b| !b.bwtype.is_empty())
    }
    fn attr() -> impl Strategy<Value = Attribute> {
        ("[A-Za-z0-9-]{1,10}", proptest::option::of(text()))
            .prop_map(|(n, v)| Attribute { name: n, value: v })
    }
    fn media() -> impl Strategy<Value = MediaDescription> {
        (
            token(),
            any::<u16>(),
            proptest::option::of(any::<u16>()),
            token(),
            proptest::collection::vec(token(), 1..5),
            proptest::option::of(text()),
            proptest::collection::vec(conn(), 0..2),
            proptest::collection::vec(bw(), 0..2),
            proptest::option::of(text()),
            proptest::collection::vec(attr(), 0..6),
        )
            .prop_map(
                |(
                    media,
                    port,
                    num_ports,
                    proto,
                    formats,
                    information,
                    connections,
                    bandwidths,
                    key,
                    attributes,
                )| MediaDescription {
                    media,
                    port,
                    num_ports,
                    proto,
                    formats,
                    information,
                    connections,
                    bandwidths,
                    key,
                    attributes,
                },
            )
    }
    prop_compose! {
        fn description()(user in token(), sid in token(), ver: u64, addr in token(), name in text(), info in proptest::option::of(text()),
            emails in proptest::collection::vec(text(), 0..2), c in proptest::option::of(conn()), bws in proptest::collection::vec(bw(), 0..2),
            start: u64, stop: u64, repeats in proptest::collection::vec(text(), 0..2), attrs in proptest::collection::vec(attr(), 0..5),
            media in proptest::collection::vec(media(), 0..4), lf: bool) -> SessionDescription {
            SessionDescription {
                origin: Origin { username: user, session_id: sid, session_version: ver, net_type: "IN".into(), addr_type: "IP4".into(), address: addr },
                session_name: name, information: info, uri: None, emails, phones: vec![], connection: c, bandwidths: bws,
                times: vec![Timing { start, stop, repeats }], time_zones: None, key: None, attributes: attrs, media,
                line_ending: if lf { LineEnding::Lf } else { LineEnding::CrLf },
            }
        }
    }

    fn canonical_reference(s: &str) -> Option<u64> {
        if s.is_empty()
            || (s.len() > 1 && s.starts_with('0'))
            || !s.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        s.parse().ok()
    }

    proptest! {
        #[test]
        fn canonical_u64_accepts_what_digits_then_parse_accept(s in "[0-9+a ]{0,22}") {
            prop_assert_eq!(canonical_u64(&s), canonical_reference(&s));
        }

        #[test]
        fn serialize_then_parse_round_trips(sd in description()) {
            let text = sd.to_string();
            let parsed = SessionDescription::parse(&text).unwrap();
            prop_assert_eq!(&parsed, &sd);
            prop_assert_eq!(parsed.to_string(), text);
        }

        #[test]
        fn sdp_parse_never_panics(s in "[ -~\r\n]{0,300}") {
            if let Ok(sd) = SessionDescription::parse(&s) {
                prop_assert_eq!(SessionDescription::parse(&sd.to_string()).unwrap(), sd);
            }
        }

        #[test]
        fn sdp_parse_of_mutated_valid_text_never_panics(pos in 0usize..600, byte: u8) {
            let mut b = FULL.as_bytes().to_vec();
            let p = pos % b.len();
            b[p] = byte;
            if let Ok(s) = core::str::from_utf8(&b) {
                if let Ok(sd) = SessionDescription::parse(s) {
                    prop_assert_eq!(SessionDescription::parse(&sd.to_string()).unwrap(), sd);
                }
            }
        }
    }
}
