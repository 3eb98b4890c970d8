//! RFC 4475 torture tests: every message against its manifest verdict, and the tricky ones
//! field by field through the typed views.

use bytes::Bytes;
use parrot_conformance::manifest;
use parrot_proto::header::ContactValue;
use parrot_proto::uri::Uri;
use parrot_proto::{HeaderName, Message, Method, StartLine};

fn load(name: &str) -> Bytes {
    let p = parrot_conformance::corpus_dir()
        .join("rfc4475")
        .join(format!("{name}.dat"));
    Bytes::from(std::fs::read(p).expect("corpus file"))
}

fn parse(name: &str) -> Message {
    let m = Message::parse(load(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    m.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
    m
}

/// The status a UAS answers, or None when the message parses and validates.
fn verdict(bytes: Bytes) -> Result<(), Option<u16>> {
    let m = Message::parse(bytes).map_err(|e| e.response_code())?;
    m.validate().map_err(|e| e.response_code())
}

#[test]
fn every_message_gets_its_manifest_verdict() {
    let cases = manifest("rfc4475", "file");
    assert_eq!(cases.len(), 50);
    let mut checked = 0;
    for c in cases {
        let bytes = Bytes::from(std::fs::read(&c.path).unwrap());
        let got = verdict(bytes.clone());
        let e = c.expected.as_str();
        if c.name == "test" {
            // Not part of the conformance set; it must merely not crash.
            continue;
        }
        if e.starts_with("valid") || e.starts_with("parse-ok; transaction") {
            assert_eq!(got, Ok(()), "{} ({}) should be accepted", c.name, c.section);
        } else if e.starts_with("parse-ok; reject 400") {
            assert!(Message::parse(bytes).is_ok(), "{} must parse", c.name);
            assert_eq!(got, Err(Some(400)), "{} should be answered 400", c.name);
        } else {
            let want = if e.contains("505") {
                Some(505)
            } else if e.contains("501") {
                Some(501)
            } else if e.contains("response: d") {
                None
            } else {
                Some(400)
            };
            assert_eq!(got, Err(want), "{} ({}) verdict", c.name, c.section);
        }
        checked += 1;
    }
    assert_eq!(checked, 49);
}

#[test]
fn wsinv_folded_headers_read_through_typed_views() {
    let m = parse("wsinv");
    assert_eq!(m.method(), Some(Method::Invite));
    let to = m.to_header().unwrap();
    assert_eq!(to.uri_str(), "sip:vivekg@chair-dnrc.example.com");
    assert_eq!(to.tag(), Some("1918181833n"));
    let from = m.from_header().unwrap();
    assert_eq!(from.display_name().unwrap(), "J Rosenberg \\\"");
    assert_eq!(from.uri_str(), "sip:jdrosen@example.com");
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(m.max_forwards().unwrap(), Some(68));
    let cseq = m.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (9, Method::Invite));
    let vias: Vec<_> = m.via().map(|v| v.unwrap()).collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].transport.as_str(), "UDP");
    assert_eq!(vias[0].host.to_string(), "192.0.2.2");
    assert_eq!(vias[0].branch(), Some("390skdjuw"));
    assert_eq!(vias[1].transport.as_str(), "TCP");
    assert_eq!(vias[1].host.to_string(), "spindle.example.com");
    assert_eq!(vias[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(vias[2].host.to_string(), "192.168.255.111");
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(m.header(HeaderName::Subject), Some(""));
    let nf = m
        .headers()
        .find(|h| h.name_str == "NewFangledHeader")
        .unwrap();
    assert_eq!(
        nf.value_unfolded(),
        "newfangled value continued newfangled value"
    );
    assert_eq!(
        m.header_str("UnknownHeaderWithUnusualValue"),
        Some(";;,,;;,;")
    );
    let contacts: Vec<_> = m.contacts().map(|c| c.unwrap()).collect();
    let ContactValue::Addr(c) = contacts[0] else {
        panic!("star")
    };
    assert_eq!(c.display_name().unwrap(), "Quoted string \"\"");
    assert_eq!(c.params().value("newparam"), Some("newvalue"));
    assert!(c.params().contains("secondparam"));
    assert_eq!(c.q(), Some(330));
    let route = m.routes().next().unwrap().unwrap();
    assert!(route.uri().as_sip().unwrap().is_loose_route());
    assert_eq!(m.body_slice().len(), 150);
    assert!(m.content_type().unwrap().unwrap().is("application", "sdp"));
}

#[test]
fn intmeth_unusual_method_and_token_characters() {
    let m = parse("intmeth");
    let method = "!interesting-Method0123456789_*+`.%indeed'~";
    assert_eq!(m.method_str(), Some(method));
    assert_eq!(m.method(), Some(Method::Extension(method.into())));
    assert_eq!(m.cseq().unwrap().method.as_str(), method);
    let Uri::Sip(ruri) = m.request_uri().unwrap() else {
        panic!("sip")
    };
    assert_eq!(
        ruri.user(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        ruri.password(),
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    let via = m.top_via().unwrap();
    assert_eq!(via.branch(), Some("z9hG4bK-.!%66*_+`'~"));
    let to = m.to_header().unwrap();
    assert_eq!(to.display_name().unwrap(), "BEL:\x07 NUL:\0 DEL:\x7f");
    let from = m.from_header().unwrap();
    assert_eq!(
        from.display_name_raw(),
        Some("token1~` token2'+_ token3*%!.-")
    );
    assert_eq!(from.tag(), Some("_token~1'+`*%!-."));
    let p = from
        .params()
        .iter()
        .find(|p| p.name == "fromParam''~+*_!.-%")
        .unwrap();
    assert_eq!(p.unquoted_value().unwrap(), "работающий");
    assert_eq!(
        m.call_id().unwrap(),
        "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    );
    assert_eq!(
        m.header_str("extensionHeader-!.%*+_`'~"),
        Some("\u{feff}大停電")
    );
}

#[test]
fn esc01_escapes_resolve_only_where_the_grammar_allows() {
    let m = parse("esc01");
    let Uri::Sip(r) = m.request_uri().unwrap() else {
        panic!()
    };
    assert_eq!(r.user(), Some("sips%3Auser%40example.com"));
    assert_eq!(&*r.user_decoded().unwrap(), b"sips:user@example.com");
    let to = m.to_header().unwrap();
    let Uri::Sip(t) = to.uri() else { panic!() };
    assert_eq!(&*t.user_decoded().unwrap(), b"user");
    assert!(to
        .uri()
        .rfc_eq(&Uri::parse("sip:user@example.com").unwrap()));
    let from = m.from_header().unwrap();
    assert_eq!(
        &*from.uri().as_sip().unwrap().user_decoded().unwrap(),
        b"I have spaces"
    );
    let Some(Ok(ContactValue::Addr(c))) = m.contacts().next() else {
        panic!()
    };
    let cu = c.uri();
    let cu = cu.as_sip().unwrap();
    assert_eq!(&*cu.user_decoded().unwrap(), b"caller");
    assert!(cu.params().contains("%6C%72"));
    assert!(Uri::parse("sip:caller@host5.example.net;lr;name=value%41")
        .unwrap()
        .rfc_eq(&c.uri()));
    assert_eq!(
        m.header(HeaderName::CallId),
        Some("esc01.239409asdfakjkn23onasd0-3234")
    );
    assert!(m.content_type().unwrap().unwrap().is("application", "sdp"));
}

#[test]
fn escnull_keeps_escaped_nul_and_distinct_contacts() {
    let m = parse("escnull");
    let users: Vec<Vec<u8>> = m
        .contacts()
        .map(|c| match c.unwrap() {
            ContactValue::Addr(a) => a
                .uri()
                .as_sip()
                .unwrap()
                .user_decoded()
                .unwrap()
                .into_owned(),
            ContactValue::Star => panic!("star"),
        })
        .collect();
    assert_eq!(users, vec![b"\0".to_vec(), b"\0\0".to_vec()]);
    assert_eq!(m.content_length(), Some(0));
    let to = m.to_header().unwrap();
    assert_eq!(
        &*to.uri().as_sip().unwrap().user_decoded().unwrap(),
        b"null-\0-null"
    );
}

#[test]
fn esc02_escaped_method_is_not_register() {
    let m = parse("esc02");
    assert_eq!(m.method_str(), Some("RE%47IST%45R"));
    assert!(!m.method().unwrap().is_known());
    assert_eq!(m.contacts().count(), 2);
}

#[test]
fn longreq_sizes() {
    let m = parse("longreq");
    let to = m.to_header().unwrap();
    assert_eq!(to.display_name().unwrap().len(), 103);
    let tu = to.uri();
    let tu = tu.as_sip().unwrap();
    assert_eq!(tu.port(), Some(6000));
    assert_eq!(tu.params().iter().count(), 3);
    let from = m.from_header().unwrap();
    assert_eq!(from.tag().unwrap().len(), 155);
    assert_eq!(from.params().iter().count(), 3);
    assert_eq!(m.call_id().unwrap().len(), 141);
    let vias: Vec<_> = m.via().map(|v| v.unwrap()).collect();
    assert_eq!(vias.len(), 34);
    assert_eq!(vias[0].host.to_string(), "sip33.example.com");
    assert_eq!(vias[33].received(), Some("192.0.2.5"));
    let unknown = m
        .headers()
        .find(|h| h.name_str.starts_with("Unknown-LongLong"))
        .unwrap();
    assert_eq!(unknown.name_str.len(), 93);
    assert_eq!(unknown.value.len(), 306);
    assert_eq!(m.header_count(), 43);
    assert_eq!(m.body_slice().len(), 150);
}

#[test]
fn dblreq_processes_only_the_first_message() {
    let m = parse("dblreq");
    assert_eq!(m.method(), Some(Method::Register));
    assert!(m.body_slice().is_empty());
    assert!(m.len() < load("dblreq").len());
}

#[test]
fn semiuri_user_holds_params() {
    let m = parse("semiuri");
    let Uri::Sip(r) = m.request_uri().unwrap() else {
        panic!()
    };
    assert_eq!(r.user(), Some("user;par=u%40example.net"));
    assert_eq!(r.host().to_string(), "example.com");
    assert!(r.params().is_empty());
    assert_eq!(m.header_values(HeaderName::Accept).count(), 6);
}

#[test]
fn transports_keeps_unknown_transport_tokens() {
    let m = parse("transports");
    let t: Vec<_> = m
        .via()
        .map(|v| v.unwrap().transport.as_str().to_owned())
        .collect();
    assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
}

#[test]
fn mpart01_binary_body_framed_by_content_length() {
    let m = parse("mpart01");
    let body = m.body_slice();
    assert_eq!(Some(body.len() as u32), m.content_length());
    assert!(body.contains(&0));
    assert!(m.content_type().unwrap().unwrap().is("multipart", "mixed"));
}

#[test]
fn reason_phrases_may_be_utf8_or_empty() {
    let m = parse("unreason");
    assert_eq!(m.status(), Some(200));
    assert!(m.reason().unwrap().contains("простое"));
    let m = parse("noreason");
    assert_eq!((m.status(), m.reason()), (Some(100), Some("")));
}

#[test]
fn lwsdisp_display_name_without_space() {
    let m = parse("lwsdisp");
    assert_eq!(m.from_header().unwrap().display_name().unwrap(), "caller");
}

#[test]
fn cparam_contact_params_versus_uri_params() {
    let m = parse("cparam01");
    let Some(Ok(ContactValue::Addr(c))) = m.contacts().next() else {
        panic!()
    };
    assert!(c.params().contains("unknownparam"));
    assert!(!c.uri().as_sip().unwrap().params().contains("unknownparam"));
    let m = parse("cparam02");
    let Some(Ok(ContactValue::Addr(c))) = m.contacts().next() else {
        panic!()
    };
    assert!(c.uri().as_sip().unwrap().params().contains("unknownparam"));
}

#[test]
fn regescrt_contact_keeps_escaped_route_header() {
    let m = parse("regescrt");
    let Some(Ok(ContactValue::Addr(c))) = m.contacts().next() else {
        panic!()
    };
    assert_eq!(
        c.uri().as_sip().unwrap().headers(),
        Some("Route=%3Csip:sip.example.com%3E")
    );
}

#[test]
fn section_3_3_messages_parse_with_their_quirks_visible() {
    assert!(matches!(
        parse("unkscm").request_uri().unwrap(),
        Uri::Absolute(_)
    ));
    assert!(matches!(
        parse("novelsc").request_uri().unwrap(),
        Uri::Absolute(_)
    ));
    let m = parse("bext01");
    assert!(m.require().any(|t| t == "nothingSupportsThis"));
    assert!(m.proxy_require().count() >= 1);
    assert_eq!(parse("zeromf").max_forwards().unwrap(), Some(0));
    let m = parse("inv2543");
    assert!(!m.top_via().unwrap().has_rfc3261_branch());
    assert_eq!(m.from_header().unwrap().tag(), None);
    assert_eq!(m.max_forwards().unwrap(), None);
    assert!(!m.body_slice().is_empty());
    assert!(!parse("badbranch").top_via().unwrap().has_rfc3261_branch());
    let m = parse("regaut01");
    let c = m.authorization().next().unwrap().unwrap();
    assert_eq!(c.scheme, "NoOneKnowsThisScheme");
    let vias: Vec<_> = parse("bcast")
        .via()
        .map(|v| v.unwrap().host.to_string())
        .collect();
    assert_eq!(vias[1], "255.255.255.255");
    assert!(
        matches!(parse("invut").content_type().unwrap(), Some(ct) if ct.is("application", "unknownformat"))
    );
}

#[test]
fn rejected_messages_name_the_header_at_fault() {
    let cases = [
        ("badinv01", HeaderName::Via),
        ("quotbal", HeaderName::To),
        ("badaspec", HeaderName::To),
        ("baddn", HeaderName::From),
        ("baddate", HeaderName::Date),
        ("regbadct", HeaderName::Contact),
        ("scalar02", HeaderName::CSeq),
        ("mismatch01", HeaderName::CSeq),
        ("clerr", HeaderName::ContentLength),
    ];
    for (name, header) in cases {
        let e = Message::parse(load(name))
            .and_then(|m| m.validate().map(|_| m))
            .unwrap_err();
        assert_eq!(e.header(), Some(header), "{name}: {e}");
        assert!(e.offset() > 0, "{name}");
    }
    let _ = StartLine::Response {
        code: 200,
        reason: "",
    };
}
