//! Stream framing (RFC 3261 §18.3, RFC 5626 §3.5.1), limits and error reporting.

use bytes::Bytes;
use parrot_proto::{
    parse_stream, ErrorKind, HeaderName, Limits, Message, Parsed, StreamDecoder, StreamItem,
};

const OPTIONS: &[u8] = b"OPTIONS sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: s1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 5\r\n\r\nhello";

#[test]
fn stream_answers_complete_partial_and_keepalive() {
    for cut in 0..OPTIONS.len() {
        let b = Bytes::copy_from_slice(&OPTIONS[..cut]);
        assert!(
            matches!(parse_stream(&b), Ok(Parsed::Partial)),
            "cut at {cut}"
        );
    }
    let mut two = OPTIONS.to_vec();
    two.extend_from_slice(OPTIONS);
    let Ok(Parsed::Complete(m, used)) = parse_stream(&Bytes::from(two)) else {
        panic!()
    };
    assert_eq!(used, OPTIONS.len());
    assert_eq!(m.body_slice(), b"hello");
    let Ok(Parsed::KeepAlive { len: 4, ping: true }) =
        parse_stream(&Bytes::from_static(b"\r\n\r\nOPT"))
    else {
        panic!("ping")
    };
}

#[test]
fn decoder_yields_messages_across_any_chunking() {
    let mut input = b"\r\n\r\n".to_vec();
    input.extend_from_slice(OPTIONS);
    input.extend_from_slice(b"\r\n");
    input.extend_from_slice(OPTIONS);
    for chunk in [1, 2, 3, 7, 64, 1000] {
        let mut d = StreamDecoder::new();
        let mut messages = 0;
        let mut pings = 0;
        for c in input.chunks(chunk) {
            d.push(c);
            while let Some(item) = d.decode().unwrap() {
                match item {
                    StreamItem::Message(m) => {
                        assert_eq!(m.body_slice(), b"hello");
                        messages += 1;
                    }
                    StreamItem::Ping => pings += 1,
                    StreamItem::Pong => {}
                }
            }
        }
        assert_eq!((messages, pings), (2, 1), "chunk {chunk}");
        assert_eq!(d.buffered(), 0);
    }
}

#[test]
fn stream_requires_content_length() {
    let b = Bytes::from_static(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n");
    let e = parse_stream(&b).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MissingContentLength);
    assert_eq!(e.response_code(), Some(400));
    // On a datagram the body simply runs to the end.
    assert!(Message::parse(b).is_ok());
}

#[test]
fn limits_bound_size_header_count_and_header_length() {
    let tiny = Limits {
        max_message_size: 100,
        ..Limits::DEFAULT
    };
    assert_eq!(
        Message::parse_with(OPTIONS, &tiny).unwrap_err().kind(),
        ErrorKind::TooLarge
    );
    let few = Limits {
        max_headers: 3,
        ..Limits::DEFAULT
    };
    assert_eq!(
        Message::parse_with(OPTIONS, &few).unwrap_err().kind(),
        ErrorKind::TooLarge
    );
    let short = Limits {
        max_header_len: 20,
        ..Limits::DEFAULT
    };
    let e = Message::parse_with(OPTIONS, &short).unwrap_err();
    assert_eq!(
        (e.kind(), e.response_code()),
        (ErrorKind::TooLarge, Some(513))
    );
    // A stream that never ends its headers is refused once past the limit, not buffered forever.
    let mut d = StreamDecoder::with_limits(tiny);
    d.push(b"OPTIONS sip:a@b SIP/2.0\r\n");
    for _ in 0..20 {
        d.push(b"X-Filler: aaaaaaaaaaaaaaaaaaaa\r\n");
    }
    assert!(d.decode().is_err());
}

#[test]
fn errors_name_the_header_and_offset() {
    let b = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: sip:b@c\r\nCall-ID: x\r\nCSeq: 99999999999 INVITE\r\n\r\n";
    let m = Message::parse(&b[..]).unwrap();
    let e = m.validate().unwrap_err();
    assert_eq!(e.header(), Some(HeaderName::CSeq));
    assert_eq!(&b[e.offset()..e.offset() + 11], b"99999999999");
    assert_eq!(
        e.to_string(),
        format!("malformed header value in CSeq at byte {}", e.offset())
    );
    assert_eq!(e.response_code(), Some(400));
}

#[test]
fn bad_responses_are_dropped_not_answered() {
    let e = Message::parse(&b"SIP/2.0 2000 OK\r\n\r\n"[..]).unwrap_err();
    assert_eq!(e.response_code(), None);
    let e = Message::parse(&b"SIP/3.0 200 OK\r\n\r\n"[..]).unwrap_err();
    assert_eq!(
        (e.kind(), e.response_code()),
        (ErrorKind::UnsupportedVersion, None)
    );
    let e = Message::parse(&b"\x00\x01garbage"[..]).unwrap_err();
    assert_eq!(e.response_code(), None);
}

#[test]
fn compact_forms_and_case_insensitive_names() {
    let b = b"MESSAGE sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nf: <sip:a@b>;tag=1\r\nT: sip:b@c\r\ni: x\r\ncseq: 1 MESSAGE\r\nm: <sip:a@h>\r\ne: gzip\r\nk: path\r\no: presence\r\nr: <sip:c@d>\r\nb: <sip:e@f>\r\nu: refer\r\nx: 1800\r\ny: abc\r\na: *;audio\r\nj: *;video\r\nd: proxy\r\ns: hi\r\nc: text/plain\r\nl: 2\r\n\r\nhi";
    let m = Message::parse(&b[..]).unwrap();
    m.validate().unwrap();
    use HeaderName::*;
    for h in [
        Via,
        From,
        To,
        CallId,
        CSeq,
        Contact,
        ContentEncoding,
        Supported,
        Event,
        ReferTo,
        ReferredBy,
        AllowEvents,
        SessionExpires,
        Identity,
        AcceptContact,
        RejectContact,
        RequestDisposition,
        Subject,
        ContentType,
        ContentLength,
    ] {
        assert!(m.header(h).is_some(), "{h}");
    }
    assert_eq!(m.event().unwrap().unwrap().value, "presence");
    assert_eq!(m.refer_to().unwrap().uri_str(), "sip:c@d");
    assert_eq!(m.content_length(), Some(2));
}
