//! TLS handshakes that must fail, and the one that must pass with real path validation.

mod common;
use common::*;
use parrot_transport::{generate_self_signed, StreamKind, StreamLayer, TransportError};

#[test]
fn a_trusting_client_checks_the_name() {
    for kind in [StreamKind::Tls, StreamKind::Wss] {
        for name in ["localhost", "127.0.0.1"] {
            let (mut c, mut s) = pair_with(kind, &certs().trusting, name);
            c.send_sip(INVITE).unwrap();
            let (gc, gs) = shuttle(&mut c, &mut s, usize::MAX);
            assert!(
                gc.err.is_none() && gs.err.is_none(),
                "{kind:?} {name}: {gc:?}"
            );
            assert_eq!(gs.messages(), vec![INVITE.to_vec()]);
        }
        let (mut c, mut s) = pair_with(kind, &certs().trusting, "sip.example.com");
        let (gc, gs) = shuttle(&mut c, &mut s, usize::MAX);
        assert!(
            matches!(
                gc.err,
                Some(TransportError::Tls(rustls::Error::InvalidCertificate(_)))
            ),
            "{gc:?}"
        );
        // The client's alert tells the server.
        assert!(matches!(gs.err, Some(TransportError::Tls(_))), "{gs:?}");
        assert!(c.is_closed() && s.is_closed());
        assert!(gs.sip.is_empty());
    }
}

#[test]
fn a_pinned_client_refuses_another_certificate() {
    let other = generate_self_signed(&["localhost"]).unwrap();
    let client = other.pinned_client().unwrap();
    let (mut c, mut s) = pair_with(StreamKind::Tls, &client, "localhost");
    c.send_sip(INVITE).unwrap();
    let (gc, gs) = shuttle(&mut c, &mut s, usize::MAX);
    assert!(matches!(gc.err, Some(TransportError::Tls(_))), "{gc:?}");
    assert!(gs.sip.is_empty(), "nothing leaks before the handshake");
}

#[test]
fn garbage_gets_an_alert() {
    for kind in [StreamKind::Tls, StreamKind::Wss] {
        let mut s = StreamLayer::accept(kind, Some(&certs().server)).unwrap();
        // A plaintext SIP request to a TLS port.
        let r = s.handle_input(INVITE);
        assert!(matches!(r, Err(TransportError::Tls(_))), "{r:?}");
        let alert = s.poll_output().expect("an alert record");
        assert_eq!(alert[0], 0x15, "TLS alert content type");
        assert!(s.is_closed());
    }
}

#[test]
fn eof_ends_a_tls_connection() {
    let (mut c, mut s) = pair(StreamKind::Tls);
    let _ = shuttle(&mut c, &mut s, usize::MAX);
    s.handle_eof();
    assert!(s.is_closed());
}

#[test]
fn records_before_a_bad_one_still_arrive_however_split() {
    for chunk in [usize::MAX, 1, 5] {
        let (mut c, mut s) = pair(StreamKind::Tls);
        let _ = shuttle(&mut c, &mut s, usize::MAX);
        c.send_sip(INVITE).unwrap();
        let mut bytes = c.poll_output().unwrap();
        bytes.extend_from_slice(b"\x17\x03\x03\x00\x05junk!");
        let mut got = Vec::new();
        let mut err = None;
        for piece in bytes.chunks(chunk) {
            if let Err(e) = s.handle_input(piece) {
                err.get_or_insert(e);
            }
            while let Some(d) = s.poll_sip() {
                got.extend_from_slice(d.bytes());
            }
        }
        assert_eq!(got, INVITE, "chunk {chunk}");
        assert!(
            matches!(err, Some(TransportError::Tls(_))),
            "chunk {chunk}: {err:?}"
        );
        assert!(s.is_closed());
    }
}
