//! A panic is a bug, never bad input: arbitrary bytes into every kind of layer, either side,
//! before and after the handshakes.

mod common;
use common::*;
use parrot_transport::{StreamKind, StreamLayer};
use proptest::prelude::*;

fn feed(layer: &mut StreamLayer, chunks: &[Vec<u8>]) {
    for c in chunks {
        let _ = layer.handle_input(c);
        while layer.poll_sip().is_some() {}
        while layer.poll_output().is_some() {}
        let _ = layer.is_closed();
    }
    let _ = layer.send_sip(INVITE);
    layer.close();
    while layer.poll_output().is_some() {}
}

fn kind() -> impl Strategy<Value = StreamKind> {
    prop_oneof![
        Just(StreamKind::Tcp),
        Just(StreamKind::Tls),
        Just(StreamKind::Ws),
        Just(StreamKind::Wss)
    ]
}

/// Bytes that look like WebSocket frames more often than uniform noise does.
fn frames() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        (
            any::<u8>(),
            0u8..=255,
            prop::collection::vec(any::<u8>(), 0..40),
        ),
        0..6,
    )
    .prop_map(|fs| {
        let mut out = Vec::new();
        for (b0, b1, body) in fs {
            out.push(b0);
            out.push(b1);
            out.extend(body);
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fresh_layers_survive_any_bytes(
        kind in kind(),
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..5),
    ) {
        let mut s = StreamLayer::accept(kind, Some(&certs().server)).unwrap();
        feed(&mut s, &chunks);
        let (mut c, _) = pair(kind);
        feed(&mut c, &chunks);
    }

    #[test]
    fn open_ws_server_survives_any_frames(body in frames(), split in 1usize..50) {
        let (mut c, mut s) = pair(StreamKind::Ws);
        let _ = shuttle(&mut c, &mut s, usize::MAX);
        let chunks: Vec<Vec<u8>> = body.chunks(split).map(<[u8]>::to_vec).collect();
        feed(&mut s, &chunks);
        feed(&mut c, &chunks);
    }

    #[test]
    fn ws_frames_invariants(body in frames()) {
        parrot_transport::checks::ws_frames(&body);
    }

    #[test]
    fn fresh_layers_invariants(data in prop::collection::vec(any::<u8>(), 0..400)) {
        parrot_transport::checks::fresh_layers(&data);
    }

    #[test]
    fn open_ws_takes_any_payload_whole(payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..3000), 1..4), split in 1usize..4000) {
        let (mut c, mut s) = pair(StreamKind::Ws);
        let _ = shuttle(&mut c, &mut s, usize::MAX);
        for p in &payloads {
            c.send_sip(p).unwrap();
        }
        let (_, gs) = shuttle(&mut c, &mut s, split);
        prop_assert!(gs.err.is_none());
        prop_assert_eq!(gs.messages(), payloads);
    }
}
