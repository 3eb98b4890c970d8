//! RFC 5118 IPv6 torture tests against their manifest, on the CRLF (`wire/`) variants.

use bytes::Bytes;
use parrot_conformance::manifest;
use parrot_proto::header::ContactValue;
use parrot_proto::uri::{Host, Uri};
use parrot_proto::{HeaderName, Message};

fn load(name: &str) -> Vec<u8> {
    let mut b = std::fs::read(
        parrot_conformance::corpus_dir()
            .join("rfc5118/wire")
            .join(format!("{name}.dat")),
    )
    .unwrap();
    if name == "ipv6-in-sdp" {
        // The archived Content-Length (268) matches neither the LF (242) nor the CRLF (251)
        // body (see MANIFEST.tsv); over UDP that is a 400 (RFC 4475 `clerr`). Test the
        // message the RFC describes, with its length corrected.
        let text = String::from_utf8(b).unwrap();
        let body = text.split("\r\n\r\n").nth(1).unwrap().len();
        b = text
            .replace("Content-Length: 268", &format!("Content-Length: {body}"))
            .into_bytes();
    }
    b
}

fn parse(name: &str) -> Message {
    let m = Message::parse(Bytes::from(load(name))).unwrap_or_else(|e| panic!("{name}: {e}"));
    m.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
    m
}

#[test]
fn every_message_gets_its_manifest_verdict() {
    let cases = manifest("rfc5118", "wire_file");
    assert_eq!(cases.len(), 12);
    for c in cases {
        let got = Message::parse(Bytes::from(load(&c.name)))
            .and_then(|m| m.validate().map(|_| m))
            .map(|_| ())
            .map_err(|e| e.response_code());
        if c.expected.starts_with("valid") {
            assert_eq!(got, Ok(()), "{} ({})", c.name, c.section);
        } else {
            assert_eq!(got, Err(Some(400)), "{} ({})", c.name, c.section);
        }
    }
}

#[test]
fn bracketed_ipv6_hosts_and_ports() {
    let m = parse("ipv6-good");
    let Uri::Sip(r) = m.request_uri().unwrap() else {
        panic!()
    };
    assert_eq!(r.host(), Host::Ipv6("2001:db8::10"));
    assert!(r.host().ip().is_some());
    let m = parse("port-ambiguous");
    let Uri::Sip(r) = m.request_uri().unwrap() else {
        panic!()
    };
    assert_eq!(
        (r.host(), r.port()),
        (Host::Ipv6("2001:db8::10:5070"), None)
    );
    let m = parse("port-unambiguous");
    let Uri::Sip(r) = m.request_uri().unwrap() else {
        panic!()
    };
    assert_eq!(
        (r.host(), r.port()),
        (Host::Ipv6("2001:db8::10"), Some(5070))
    );
}

#[test]
fn three_colon_form_is_tolerated() {
    let m = parse("ipv6-bug-abnf-3-colons");
    let Uri::Sip(r) = m.request_uri().unwrap() else {
        panic!()
    };
    assert_eq!(r.host(), Host::Ipv6("2001:db8:::192.0.2.1"));
    let m = parse("ipv6-correct-abnf-2-colons");
    let Uri::Sip(r) = m.request_uri().unwrap() else {
        panic!()
    };
    assert!(r.host().ip().is_some());
}

#[test]
fn via_received_with_or_without_brackets() {
    for name in [
        "via-received-param-with-delim",
        "via-received-param-no-delim",
    ] {
        let m = parse(name);
        let v = m.top_via().unwrap();
        assert_eq!(v.received(), Some("2001:db8::9:255"), "{name}");
    }
}

#[test]
fn mixed_address_families_in_one_message() {
    let m = parse("mult-ip-in-header");
    let vias: Vec<_> = m.via().map(|v| v.unwrap()).collect();
    assert_eq!(vias.len(), 3);
    assert!(matches!(vias[0].host, Host::Ipv6(_)));
    assert!(matches!(vias[1].host, Host::Ipv4(_)));
    assert!(matches!(vias[2].host, Host::Ipv6(_)));
    assert!(vias[2].received().is_some());
    let m = parse("ipv4-mapped-ipv6");
    let Some(Ok(ContactValue::Addr(c))) = m.contacts().next() else {
        panic!()
    };
    assert!(matches!(c.uri().as_sip().unwrap().host(), Host::Ipv6(h) if h.contains("ffff")));
    let m = parse("ipv6-in-sdp");
    assert!(String::from_utf8_lossy(m.body_slice()).contains("IN IP6 2001:db8::20"));
    assert!(m.header(HeaderName::ContentType).is_some());
}
