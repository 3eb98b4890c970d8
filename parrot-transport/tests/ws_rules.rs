//! RFC 6455 rules at the byte level: a hand-made peer against the server (and client) layer.

mod common;
use common::*;
use parrot_transport::{HandshakeError, SipData, StreamKind, StreamLayer, TransportError, WsError};

const REQUEST: &str = "GET /ws HTTP/1.1\r\n\
Host: 127.0.0.1:5066\r\n\
Origin: https://phone.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Protocol: sip\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

/// A frame as a client would write it (masked with `key`) or a server (no key).
fn frame(fin: bool, opcode: u8, payload: &[u8], key: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    let m = if key.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(m | n as u8),
        n if n <= 0xFFFF => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match key {
        Some(k) => {
            out.extend_from_slice(&k);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

const K: Option<[u8; 4]> = Some([0x37, 0xfa, 0x21, 0x3d]);

fn open_server() -> StreamLayer {
    let mut s = StreamLayer::accept(StreamKind::Ws, None).unwrap();
    s.handle_input(REQUEST.as_bytes()).unwrap();
    let out = String::from_utf8(s.poll_output().unwrap()).unwrap();
    assert!(
        out.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{out}"
    );
    assert!(out.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert!(out.contains("Sec-WebSocket-Protocol: sip\r\n"));
    assert!(s.is_established());
    assert_eq!(s.ws_path(), Some("/ws"));
    assert_eq!(s.ws_origin(), Some("https://phone.example.com"));
    s
}

fn sip(s: &mut StreamLayer) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| s.poll_sip())
        .map(|d| match d {
            SipData::Message(m) => m.to_vec(),
            SipData::Stream(_) => panic!("WS gives whole messages"),
        })
        .collect()
}

/// The close code in a (server, unmasked) Close frame.
fn close_code(out: &[u8]) -> u16 {
    assert_eq!(out[0], 0x88, "a Close frame: {out:?}");
    u16::from_be_bytes([out[2], out[3]])
}

#[test]
fn bad_handshakes_get_http_errors() {
    let cases: [(&str, &str, HandshakeError, &str); 5] = [
        (
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Version: 8",
            HandshakeError::UnsupportedVersion,
            "HTTP/1.1 426 ",
        ),
        (
            "Sec-WebSocket-Protocol: sip\r\n",
            "",
            HandshakeError::NoSipProtocol,
            "HTTP/1.1 400 ",
        ),
        (
            "Upgrade: websocket\r\n",
            "",
            HandshakeError::NotUpgrade,
            "HTTP/1.1 426 ",
        ),
        (
            "GET /ws",
            "PUT /ws",
            HandshakeError::NotGet,
            "HTTP/1.1 405 ",
        ),
        (
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Key: !!",
            HandshakeError::BadKey,
            "HTTP/1.1 400 ",
        ),
    ];
    for (find, repl, err, status) in cases {
        let mut s = StreamLayer::accept(StreamKind::Ws, None).unwrap();
        let req = REQUEST.replace(find, repl);
        assert_eq!(
            s.handle_input(req.as_bytes()),
            Err(TransportError::Handshake(err))
        );
        let out = String::from_utf8(s.poll_output().unwrap()).unwrap();
        assert!(out.starts_with(status), "{err:?}: {out}");
        assert!(s.is_closed());
        assert_eq!(s.handle_input(b"more"), Err(TransportError::Closed));
    }
}

#[test]
fn an_endless_handshake_is_cut_off() {
    let mut s = StreamLayer::accept(StreamKind::Ws, None).unwrap();
    let junk = vec![b'a'; 1024];
    let mut r = Ok(());
    for _ in 0..20 {
        r = s.handle_input(&junk);
        if r.is_err() {
            break;
        }
    }
    assert_eq!(r, Err(TransportError::Handshake(HandshakeError::TooLarge)));
    let out = s.poll_output().unwrap();
    assert!(out.starts_with(b"HTTP/1.1 431 "));
}

#[test]
fn masked_client_frames_are_read() {
    let mut s = open_server();
    s.handle_input(&frame(true, 1, INVITE, K)).unwrap();
    assert_eq!(sip(&mut s), vec![INVITE.to_vec()]);
    // Binary works too (RFC 7118 §5.1).
    s.handle_input(&frame(true, 2, OK, K)).unwrap();
    assert_eq!(sip(&mut s), vec![OK.to_vec()]);
}

#[test]
fn unmasked_client_frames_fail_with_1002() {
    let mut s = open_server();
    assert_eq!(
        s.handle_input(&frame(true, 1, INVITE, None)),
        Err(TransportError::WebSocket(WsError::UnmaskedClientFrame))
    );
    assert_eq!(close_code(&s.poll_output().unwrap()), 1002);
    assert!(s.is_closed());
    assert!(sip(&mut s).is_empty());
}

#[test]
fn masked_server_frames_fail_the_client() {
    let (mut c, mut s) = pair(StreamKind::Ws);
    let _ = shuttle(&mut c, &mut s, usize::MAX);
    assert_eq!(
        c.handle_input(&frame(true, 1, OK, K)),
        Err(TransportError::WebSocket(WsError::MaskedServerFrame))
    );
    // The client's own Close frame is masked.
    let out = c.poll_output().unwrap();
    assert_eq!(&out[..2], &[0x88, 0x82]);
}

#[test]
fn fragments_are_reassembled_around_control_frames() {
    let mut s = open_server();
    let (a, rest) = INVITE.split_at(10);
    let (b, c) = rest.split_at(20);
    let mut bytes = frame(false, 1, a, K);
    bytes.extend(frame(true, 9, b"ping!", K)); // a Ping between fragments (§5.4)
    bytes.extend(frame(false, 0, b, K));
    bytes.extend(frame(true, 0, c, K));
    for byte in &bytes {
        s.handle_input(std::slice::from_ref(byte)).unwrap();
    }
    assert_eq!(sip(&mut s), vec![INVITE.to_vec()]);
    // The Pong carries the Ping's payload, unmasked from the server.
    assert_eq!(s.poll_output().unwrap(), frame(true, 0xA, b"ping!", None));
}

#[test]
fn fragmentation_errors() {
    let mut s = open_server();
    assert_eq!(
        s.handle_input(&frame(true, 0, b"x", K)),
        Err(TransportError::WebSocket(WsError::UnexpectedContinuation))
    );
    let mut s = open_server();
    let mut bytes = frame(false, 1, b"a", K);
    bytes.extend(frame(true, 1, b"b", K));
    assert_eq!(
        s.handle_input(&bytes),
        Err(TransportError::WebSocket(WsError::ExpectedContinuation))
    );
    let mut s = open_server();
    assert_eq!(
        s.handle_input(&frame(false, 9, b"", K)),
        Err(TransportError::WebSocket(WsError::FragmentedControl))
    );
    let mut s = open_server();
    assert_eq!(
        s.handle_input(&[0xC1, 0x80, 0, 0, 0, 0]),
        Err(TransportError::WebSocket(WsError::ReservedBits))
    );
}

#[test]
fn oversized_messages_close_with_1009() {
    let mut s = open_server();
    let big = vec![b'x'; 64 * 1024 + 1];
    // Refused from the header alone: the payload never has to arrive.
    let f = frame(true, 2, &big, K);
    assert_eq!(
        s.handle_input(&f[..14]),
        Err(TransportError::WebSocket(WsError::MessageTooBig))
    );
    assert_eq!(close_code(&s.poll_output().unwrap()), 1009);

    // Fragments that add up past the cap.
    let mut s = open_server();
    s.set_max_message_size(100);
    s.handle_input(&frame(false, 2, &[1; 60], K)).unwrap();
    assert_eq!(
        s.handle_input(&frame(true, 0, &[1; 60], K)),
        Err(TransportError::WebSocket(WsError::MessageTooBig))
    );
}

#[test]
fn text_must_be_utf8() {
    let mut s = open_server();
    assert_eq!(
        s.handle_input(&frame(true, 1, &[0xff, 0xfe], K)),
        Err(TransportError::WebSocket(WsError::InvalidUtf8))
    );
    assert_eq!(close_code(&s.poll_output().unwrap()), 1007);
}

#[test]
fn peer_close_is_echoed_and_ends_input() {
    let mut s = open_server();
    s.handle_input(&frame(true, 8, &[0x03, 0xE9, b'b', b'y', b'e'], K))
        .unwrap();
    assert!(s.is_closed());
    assert_eq!(s.ws_close_code(), Some(1001));
    assert_eq!(
        s.poll_output().unwrap(),
        frame(true, 8, &[0x03, 0xE9], None)
    );
    assert_eq!(s.send_sip(OK), Err(TransportError::Closed));
    // Bytes after the Close are ignored.
    s.handle_input(&frame(true, 1, INVITE, K)).unwrap();
    assert!(sip(&mut s).is_empty());
}

#[test]
fn bad_close_payloads_fail() {
    for payload in [&[0x03][..], &[0x03, 0xED][..], &[0x03, 0xE8, 0xff][..]] {
        let mut s = open_server();
        assert!(
            s.handle_input(&frame(true, 8, payload, K)).is_err(),
            "{payload:?}"
        );
    }
}

#[test]
fn empty_messages_carry_no_sip() {
    let mut s = open_server();
    s.handle_input(&frame(true, 1, b"", K)).unwrap();
    assert!(sip(&mut s).is_empty());
}

#[test]
fn client_refuses_a_server_without_sip() {
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(1);
    let mut c = StreamLayer::connect(StreamKind::Ws, None, "", "h", "/", &mut rng).unwrap();
    let req = String::from_utf8(c.poll_output().unwrap()).unwrap();
    assert!(req.starts_with("GET / HTTP/1.1\r\n"));
    assert!(req.contains("Sec-WebSocket-Protocol: sip\r\n"));
    assert_eq!(
        c.handle_input(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
        Err(TransportError::Handshake(HandshakeError::Rejected(400)))
    );
    assert!(c.is_closed());
}

#[test]
fn client_rejects_bad_targets() {
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(1);
    for (host, path) in [
        ("a b", "/"),
        ("h", "nopath"),
        ("h", "/a\r\nX: y"),
        ("", "/"),
    ] {
        assert_eq!(
            StreamLayer::connect(StreamKind::Ws, None, "", host, path, &mut rng).unwrap_err(),
            TransportError::InvalidTarget
        );
    }
}

#[test]
fn our_pings_get_pongs_that_are_absorbed() {
    for kind in [StreamKind::Ws, StreamKind::Wss] {
        let (mut c, mut s) = pair(kind);
        let _ = shuttle(&mut c, &mut s, usize::MAX);
        c.send_ping(b"keep").unwrap();
        s.send_ping(b"alive").unwrap();
        let (gc, gs) = shuttle(&mut c, &mut s, usize::MAX);
        assert!(gc.err.is_none() && gs.err.is_none() && gc.sip.is_empty() && gs.sip.is_empty());
        assert!(c.is_established() && s.is_established());
        assert_eq!(
            c.send_ping(&[0; 126]),
            Err(TransportError::WebSocket(WsError::ControlTooLong))
        );
    }
}

#[test]
fn frames_in_the_same_read_as_the_handshake_are_kept() {
    let mut s = StreamLayer::accept(StreamKind::Ws, None).unwrap();
    let mut bytes = REQUEST.as_bytes().to_vec();
    bytes.extend(frame(true, 1, INVITE, K));
    s.handle_input(&bytes).unwrap();
    assert_eq!(sip(&mut s), vec![INVITE.to_vec()]);
}
