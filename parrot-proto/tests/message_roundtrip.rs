//! Property tests: every message the builder can make parses back to an equal message with the
//! same typed values; every URI made from parts parses back to those parts; arbitrary bytes
//! and mutated corpus messages never panic the parser or its views.

use bytes::Bytes;
use parrot_proto::checks;
use parrot_proto::uri::{Host, Uri};
use parrot_proto::{HeaderName, Message, Method, RequestBuilder, ResponseBuilder};
use proptest::prelude::*;

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9.!%*_+`'~-]{1,12}"
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Invite),
        Just(Method::Register),
        Just(Method::Options),
        Just(Method::Bye),
        Just(Method::Message),
        "[A-Z]{3,10}".prop_map(|m| Method::from_token(&m)),
    ]
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9-]{0,10}){0,3}",
        (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        any::<[u16; 8]>().prop_map(|s| format!("[{}]", std::net::Ipv6Addr::from(s))),
    ]
}

#[derive(Debug, Clone)]
struct UriParts {
    secure: bool,
    user: Option<String>,
    password: Option<String>,
    host: String,
    port: Option<u16>,
    params: Vec<(String, Option<String>)>,
    headers: Vec<(String, String)>,
}

impl UriParts {
    fn render(&self) -> String {
        let mut s = String::from(if self.secure { "sips:" } else { "sip:" });
        if let Some(u) = &self.user {
            s.push_str(u);
            if let Some(p) = &self.password {
                s.push(':');
                s.push_str(p);
            }
            s.push('@');
        }
        s.push_str(&self.host);
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        for (n, v) in &self.params {
            s.push(';');
            s.push_str(n);
            if let Some(v) = v {
                s.push('=');
                s.push_str(v);
            }
        }
        for (i, (n, v)) in self.headers.iter().enumerate() {
            s.push(if i == 0 { '?' } else { '&' });
            s.push_str(n);
            s.push('=');
            s.push_str(v);
        }
        s
    }
}

fn uri_parts() -> impl Strategy<Value = UriParts> {
    (
        any::<bool>(),
        proptest::option::of("([a-zA-Z0-9_.!~*'()&=+$,;?/-]|%[0-9A-F]{2}){1,12}"),
        proptest::option::of("([a-zA-Z0-9_.!~*'()&=+$,-]|%[0-9A-F]{2}){0,8}"),
        host(),
        proptest::option::of(any::<u16>()),
        proptest::collection::vec(
            (
                "[a-z][a-z0-9-]{0,8}",
                proptest::option::of("[a-zA-Z0-9._~-]{1,8}"),
            ),
            0..4,
        ),
        proptest::collection::vec(("[A-Za-z]{1,8}", "[a-zA-Z0-9%._~-]{0,8}"), 0..3),
    )
        .prop_map(
            |(secure, user, password, host, port, params, headers)| UriParts {
                secure,
                password: user.as_ref().and(password),
                user,
                host,
                port,
                params,
                headers,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn uris_round_trip_through_their_parts(p in uri_parts()) {
        let text = p.render();
        let u = Uri::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        prop_assert_eq!(u.to_string(), text.clone());
        let Uri::Sip(s) = u else { panic!("not sip") };
        prop_assert_eq!(s.is_secure(), p.secure);
        prop_assert_eq!(s.user(), p.user.as_deref());
        prop_assert_eq!(s.password(), p.password.as_deref());
        prop_assert_eq!(s.port(), p.port);
        let host = match s.host() {
            Host::Ipv6(h) => format!("[{h}]"),
            h => h.to_string(),
        };
        prop_assert_eq!(host, p.host.clone());
        let params: Vec<_> = s.params().iter().map(|x| (x.name.to_owned(), x.value.map(str::to_owned))).collect();
        prop_assert_eq!(params, p.params.clone());
        let headers: Vec<_> = s.header_pairs().map(|(a, b)| (a.to_owned(), b.to_owned())).collect();
        prop_assert_eq!(headers, p.headers.clone());
        prop_assert!(u.rfc_eq(&u));
    }

    #[test]
    fn built_requests_parse_back_equal(
        m in method(),
        ruri in uri_parts(),
        branch in "[a-zA-Z0-9]{1,16}",
        display in "[^\"\\\\\r\n\u{0}]{0,12}",
        from_tag in token(),
        call_id in "[a-zA-Z0-9.@-]{1,24}",
        cseq in 0u32..=u32::MAX,
        max_forwards in 0u8..=255,
        extra in proptest::collection::vec(("X-[A-Za-z0-9-]{1,10}", "[ -~\u{a0}-\u{10ffff}]{0,20}"), 0..5),
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        // A Request-URI may not carry headers (RFC 3261 §19.1.1, table 1).
        let ruri = UriParts { headers: Vec::new(), ..ruri }.render();
        let mut b = RequestBuilder::new(m.clone(), ruri.clone())
            .header(HeaderName::Via, format!("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{branch}"))
            .header(HeaderName::From, format!("\"{display}\" <sip:alice@example.com>;tag={from_tag}"))
            .header(HeaderName::To, "<sip:bob@example.com>")
            .header(HeaderName::CallId, call_id.clone())
            .header(HeaderName::CSeq, format!("{cseq} {m}"))
            .header(HeaderName::MaxForwards, max_forwards.to_string());
        for (n, v) in &extra {
            b = b.raw_header(n, v.trim());
        }
        if !body.is_empty() {
            b = b.body("application/octet-stream", body.clone());
        }
        let msg = b.build().unwrap();
        let again = Message::parse(msg.to_bytes()).unwrap();
        prop_assert_eq!(&again, &msg);
        again.validate().unwrap();
        prop_assert_eq!(again.method(), Some(m.clone()));
        prop_assert_eq!(again.request_uri_str(), Some(ruri.as_str()));
        prop_assert_eq!(again.top_via().unwrap().branch().map(str::to_owned), Some(format!("z9hG4bK{branch}")));
        let from = again.from_header().unwrap();
        prop_assert_eq!(from.tag(), Some(from_tag.as_str()));
        prop_assert_eq!(from.display_name().unwrap(), display.as_str());
        prop_assert_eq!(again.call_id().unwrap(), call_id.as_str());
        let c = again.cseq().unwrap();
        prop_assert_eq!((c.seq, c.method), (cseq, m));
        prop_assert_eq!(again.max_forwards().unwrap(), Some(max_forwards));
        for (n, v) in &extra {
            prop_assert!(again.headers().any(|h| h.name_str == n && h.value == v.trim()));
        }
        prop_assert_eq!(again.body_slice(), &body[..]);
    }

    #[test]
    fn built_responses_parse_back_equal(code in 100u16..=699, reason in "[ -~\u{a0}-\u{10ffff}]{0,20}", tag in token()) {
        let req = RequestBuilder::new(Method::Invite, "sip:bob@example.com")
            .header(HeaderName::Via, "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx")
            .header(HeaderName::Via, "SIP/2.0/TCP 192.0.2.2;branch=z9hG4bKy")
            .header(HeaderName::From, "<sip:a@example.com>;tag=1")
            .header(HeaderName::To, "<sip:bob@example.com>")
            .header(HeaderName::CallId, "c1")
            .header(HeaderName::CSeq, "1 INVITE")
            .header(HeaderName::RecordRoute, "<sip:p.example.com;lr>")
            .build()
            .unwrap();
        let reason = reason.trim().to_owned();
        let resp = ResponseBuilder::for_request(&req, code).reason(reason.clone()).to_tag(tag.clone()).build().unwrap();
        let again = Message::parse(resp.to_bytes()).unwrap();
        prop_assert_eq!(&again, &resp);
        again.validate().unwrap();
        prop_assert_eq!(again.status(), Some(code));
        prop_assert_eq!(again.reason(), Some(reason.as_str()));
        prop_assert_eq!(again.via().count(), 2);
        prop_assert_eq!(again.to_header().unwrap().tag(), Some(tag.as_str()));
        prop_assert_eq!(again.record_routes().count(), usize::from((101..300).contains(&code)));
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        checks::datagram(&data);
        checks::stream(&data);
        checks::uri(&data);
    }

    #[test]
    fn mutated_corpus_messages_never_panic(
        which in 0usize..64,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let corpus = corpus();
        let mut m = corpus[which % corpus.len()].clone();
        for (at, b) in edits {
            if !m.is_empty() {
                let i = at % m.len();
                m[i] = b;
            }
        }
        if !m.is_empty() {
            m.truncate(cut % (m.len() + 1));
        }
        checks::datagram(&m);
        checks::stream(&m);
    }
}

fn corpus() -> Vec<Vec<u8>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance");
    let mut out = Vec::new();
    for dir in ["rfc4475", "rfc5118/wire"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "dat") {
                out.push(std::fs::read(p).unwrap());
            }
        }
    }
    out
}

#[test]
fn every_corpus_message_passes_the_fuzz_invariants() {
    for m in corpus() {
        checks::datagram(&m);
        checks::stream(&m);
    }
    let _ = Bytes::new();
}

/// Builders record positions while writing instead of parsing their output: the message must
/// still be exactly what parsing its bytes gives, odd inputs included.
#[test]
fn built_messages_equal_their_parse_on_odd_inputs() {
    let m = RequestBuilder::new(Method::Options, "sip:bob@example.com")
        .header(
            HeaderName::Via,
            "  \tSIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx  ",
        )
        .raw_header("X-Empty", "")
        .raw_header("x-blank", "   ")
        .raw_header("l", "999")
        .raw_header("Content-Length", "5")
        .header(HeaderName::From, "<sip:a@example.com>;tag=1")
        .header(HeaderName::To, "<sip:bob@example.com>")
        .header(HeaderName::CallId, "c1")
        .header(HeaderName::CSeq, "1 OPTIONS")
        .body("text/plain", &b"hello"[..])
        .build()
        .unwrap();
    let again = Message::parse(m.to_bytes()).unwrap();
    assert_eq!(again, m);
    assert_eq!(m.header_str("X-Empty"), Some(""));
    assert_eq!(m.header_str("x-blank"), Some(""));
    assert_eq!(m.content_length(), Some(5));
    assert_eq!(m.body_slice(), b"hello");
    assert_eq!(m.to_string(), again.to_string());

    // A Request-URI the parser refuses still gives the parser's error.
    for uri in ["no-colon", "<sip:a@b>"] {
        let e = RequestBuilder::new(Method::Options, uri)
            .build()
            .unwrap_err();
        assert!(
            matches!(e, parrot_proto::BuildError::Parse(_)),
            "{uri}: {e:?}"
        );
    }
    // Past the parser's limits: its TooLarge error, as before.
    let big = "x".repeat(20_000);
    let e = RequestBuilder::new(Method::Options, "sip:a@b")
        .raw_header("X-Big", &big)
        .build()
        .unwrap_err();
    assert!(matches!(e, parrot_proto::BuildError::Parse(_)), "{e:?}");
    // Header injection is refused.
    let e = ResponseBuilder::new(200)
        .raw_header("X", "a\r\nEvil: 1")
        .build()
        .unwrap_err();
    assert_eq!(e, parrot_proto::BuildError::BadHeaderValue("X".into()));
    let e = ResponseBuilder::new(200)
        .raw_header("Bad Name", "1")
        .build()
        .unwrap_err();
    assert_eq!(
        e,
        parrot_proto::BuildError::BadHeaderName("Bad Name".into())
    );
}
