//! Invariant checks over arbitrary input, shared by the fuzz targets (`fuzz/`) and the
//! property tests. Each function panics only when an invariant breaks, never on bad input.

use crate::header::{
    auth::{Challenge, Credentials},
    CSeq, MediaType, NameAddr, RetryAfter, SipDate, Timestamp, TokenParams, Via,
};
use crate::{HeaderName, Message, StreamDecoder, StreamItem, Uri};
use bytes::Bytes;

/// Parses `data` as a datagram; a message that parses must serialize to bytes that parse to
/// an equal message, and every typed view must answer without panicking.
pub fn datagram(data: &[u8]) {
    let Ok(m) = Message::parse(Bytes::copy_from_slice(data)) else {
        return;
    };
    let again = Message::parse(m.to_bytes()).expect("a parsed message re-parses");
    assert_eq!(again, m);
    views(&m);
}

/// Reads every typed view of a message and every header value through every parser.
pub fn views(m: &Message) {
    let _ = m.validate();
    let _ = m.start_line();
    let _ = m.request_uri();
    let _ = m.via().count();
    let _ = m
        .top_via()
        .map(|v| (v.branch(), v.received(), v.rport(), v.ttl(), v.is_valid()));
    for na in [m.from_header(), m.to_header(), m.refer_to()]
        .into_iter()
        .flatten()
    {
        let _ = (
            na.tag(),
            na.display_name(),
            na.q(),
            na.expires(),
            na.is_valid(),
        );
    }
    let _ = m.contacts().count();
    let _ = m.routes().chain(m.record_routes()).count();
    let _ = (m.call_id(), m.cseq(), m.max_forwards(), m.content_type());
    let _ = (
        m.expires(),
        m.min_expires(),
        m.event(),
        m.subscription_state(),
    );
    let _ = (
        m.retry_after(),
        m.date(),
        m.timestamp(),
        m.authentication_info(),
    );
    let _ = m.www_authenticate().chain(m.proxy_authenticate()).count();
    let _ = m.authorization().chain(m.proxy_authorization()).count();
    for h in m.headers() {
        let v = h.value;
        let _ = h.value_unfolded();
        if let Ok(na) = NameAddr::parse(v) {
            let _ = (
                na.uri().rfc_eq(&na.uri()),
                na.display_name(),
                na.params().iter().count(),
            );
        }
        let _ = Via::parse(v).map(|v| v.is_valid());
        let _ = (CSeq::parse(v), MediaType::parse(v), TokenParams::parse(v));
        let _ = (RetryAfter::parse(v), SipDate::parse(v), Timestamp::parse(v));
        if let Some(c) = Challenge::parse(v) {
            let _ = (c.realm(), c.nonce(), c.stale(), c.offers_qop("auth"));
        }
        if let Some(c) = Credentials::parse(v) {
            let _ = (c.username(), c.nonce_count(), c.params.is_valid());
        }
        let _ = m.header_values(h.name).count();
        if h.name == HeaderName::Other {
            let _ = m.header_str(h.name_str);
        }
    }
}

/// Feeds `data` to a [`StreamDecoder`] in chunks whose sizes come from the first bytes, and
/// checks that the chunking changes nothing: the same messages come out as from one push.
pub fn stream(data: &[u8]) {
    let (sizes, body) = data.split_at(data.len().min(4));
    let whole = decode_all(&[body]);
    let mut chunks = Vec::new();
    let mut rest = body;
    let mut i = 0;
    while !rest.is_empty() {
        let n = usize::from(sizes.get(i % sizes.len().max(1)).copied().unwrap_or(7)).max(1);
        let (a, b) = rest.split_at(n.min(rest.len()));
        chunks.push(a);
        rest = b;
        i += 1;
    }
    let chunked = decode_all(&chunks);
    assert_eq!(whole, chunked, "chunking changed the decoded stream");
}

#[derive(Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // a test helper; messages are the common case
enum Decoded {
    Message(Message),
    Ping,
    Pong,
    Error,
}

fn decode_all(chunks: &[&[u8]]) -> Vec<Decoded> {
    let mut d = StreamDecoder::new();
    let mut out = Vec::new();
    for c in chunks {
        d.push(c);
        loop {
            match d.decode() {
                Ok(Some(StreamItem::Message(m))) => {
                    views(&m);
                    out.push(Decoded::Message(m));
                }
                Ok(Some(StreamItem::Ping)) => out.push(Decoded::Ping),
                Ok(Some(StreamItem::Pong)) => out.push(Decoded::Pong),
                Ok(None) => break,
                Err(_) => {
                    out.push(Decoded::Error);
                    return merge_pongs(out);
                }
            }
        }
    }
    merge_pongs(out)
}

/// CRLFs split across reads may decode as pongs or as a ping; compare only the messages and
/// the error, which chunking must not change.
fn merge_pongs(v: Vec<Decoded>) -> Vec<Decoded> {
    v.into_iter()
        .filter(|d| !matches!(d, Decoded::Ping | Decoded::Pong))
        .collect()
}

/// Parses `data` as a URI: a URI that parses equals itself under the RFC 3261 §19.1.4 rules
/// and displays as written.
pub fn uri(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(u) = Uri::parse(s) {
        assert!(u.rfc_eq(&u), "URI not equal to itself: {s:?}");
        assert_eq!(u.to_string(), s);
        if let Uri::Sip(sip) = u {
            let _ = (
                sip.user_decoded(),
                sip.params().iter().count(),
                sip.header_pairs().count(),
            );
            let _ = sip.host().ip();
        }
    }
}
