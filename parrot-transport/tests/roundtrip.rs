//! A client layer and a server layer of each kind talk through in-memory byte shuttling.

mod common;
use common::*;
use parrot_transport::{SipData, StreamKind, StreamLayer, TransportError};

fn call(kind: StreamKind, chunk: usize) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (mut c, mut s) = pair(kind);
    // Sent before any handshake finished: it must wait, not vanish.
    c.send_sip(INVITE).unwrap();
    let (gc, gs) = shuttle(&mut c, &mut s, chunk);
    assert!(
        gc.err.is_none() && gs.err.is_none(),
        "{kind:?}: {gc:?} {gs:?}"
    );
    assert!(c.is_established() && s.is_established(), "{kind:?}");
    s.send_sip(OK).unwrap();
    s.send_sip(OK).unwrap();
    let (gc2, gs2) = shuttle(&mut c, &mut s, chunk);
    assert!(gc2.err.is_none() && gs2.err.is_none());
    let mut server_got = gs.messages();
    server_got.extend(gs2.messages());
    (server_got, gc2.messages())
}

#[test]
fn every_kind_carries_sip_both_ways() {
    for kind in ALL {
        let (server_got, client_got) = call(kind, usize::MAX);
        assert_eq!(server_got, vec![INVITE.to_vec()], "{kind:?}");
        if kind.is_websocket() {
            // One SIP message per WebSocket message (RFC 7118 §5.2).
            assert_eq!(client_got, vec![OK.to_vec(), OK.to_vec()], "{kind:?}");
        } else {
            assert_eq!(client_got, vec![[OK, OK].concat()], "{kind:?}");
        }
    }
}

#[test]
fn byte_at_a_time_gives_the_same_sip() {
    for kind in ALL {
        assert_eq!(call(kind, 1), call(kind, usize::MAX), "{kind:?}");
        assert_eq!(call(kind, 7), call(kind, usize::MAX), "{kind:?}");
    }
}

#[test]
fn transport_and_kind_agree() {
    for kind in ALL {
        let (c, s) = pair(kind);
        assert_eq!(c.transport(), kind.transport());
        assert_eq!(s.kind(), kind);
        assert_eq!(StreamKind::from_transport(kind.transport()), Some(kind));
    }
    assert_eq!(
        StreamKind::from_transport(parrot_proto::Transport::Udp),
        None
    );
}

#[test]
fn ws_messages_are_whole_sip_messages() {
    for kind in [StreamKind::Ws, StreamKind::Wss] {
        let (mut c, mut s) = pair(kind);
        let _ = shuttle(&mut c, &mut s, usize::MAX);
        c.send_sip(INVITE).unwrap();
        c.send_sip(OK).unwrap();
        let (_, gs) = shuttle(&mut c, &mut s, 3);
        assert_eq!(
            gs.sip,
            vec![
                SipData::Message(INVITE.to_vec().into()),
                SipData::Message(OK.to_vec().into())
            ]
        );
        assert_eq!(s.ws_path(), Some("/"));
    }
}

#[test]
fn large_messages_cross_every_kind() {
    // 60 KiB: under the 64 KiB WebSocket cap, over a TLS record and a 16-bit frame length.
    let body = vec![b'a'; 60 * 1024];
    let msg = [INVITE, &body].concat();
    for kind in ALL {
        let (mut c, mut s) = pair(kind);
        c.send_sip(&msg).unwrap();
        let (_, gs) = shuttle(&mut c, &mut s, 1000);
        assert_eq!(gs.messages(), vec![msg.clone()], "{kind:?}");
    }
}

#[test]
fn orderly_close_reaches_the_peer() {
    for kind in [StreamKind::Tls, StreamKind::Ws, StreamKind::Wss] {
        let (mut c, mut s) = pair(kind);
        let _ = shuttle(&mut c, &mut s, usize::MAX);
        c.close();
        assert_eq!(c.send_sip(INVITE), Err(TransportError::Closed));
        let (gc, gs) = shuttle(&mut c, &mut s, usize::MAX);
        assert!(
            gc.err.is_none() && gs.err.is_none(),
            "{kind:?} {gc:?} {gs:?}"
        );
        assert!(s.is_closed(), "{kind:?}: server sees the close");
        assert!(c.is_closed(), "{kind:?}: client sees the reply");
        if kind.is_websocket() {
            assert_eq!(s.ws_close_code(), Some(1000));
            assert_eq!(c.ws_close_code(), Some(1000));
        }
    }
}

#[test]
fn tcp_is_a_pass_through() {
    let mut rng = rand_chacha::ChaCha20Rng::from_seed([0; 32]);
    use rand_core::SeedableRng;
    let mut c = StreamLayer::connect(StreamKind::Tcp, None, "x", "x", "/", &mut rng).unwrap();
    assert_eq!(c.poll_output(), None);
    c.send_sip(b"abc").unwrap();
    assert_eq!(c.poll_output(), Some(b"abc".to_vec()));
    c.handle_input(b"xyz").unwrap();
    assert_eq!(c.poll_sip(), Some(SipData::Stream(b"xyz".to_vec().into())));
    c.handle_eof();
    assert!(c.is_closed());
}

#[test]
fn secure_kinds_need_a_configuration() {
    for kind in [StreamKind::Tls, StreamKind::Wss] {
        assert_eq!(
            StreamLayer::accept(kind, None).unwrap_err(),
            TransportError::MissingTlsConfig
        );
    }
}
