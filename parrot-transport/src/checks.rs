//! Invariant checks over arbitrary input, shared by the fuzz target `ws_frames` (`fuzz/`) and
//! the property tests. Each function panics only when an invariant breaks, never on bad input.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::{SipData, StreamKind, StreamLayer};

const REQUEST: &[u8] =
    b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: sip\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

const RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Protocol: sip\r\nSec-WebSocket-Accept: ";

/// What one delivery of the input gave.
#[derive(Debug, PartialEq)]
struct Run {
    sip: Vec<SipData>,
    output: Vec<u8>,
    failed: bool,
    closed: bool,
}

fn run(mut layer: StreamLayer, data: &[u8], chunk: usize) -> Run {
    let _ = layer.poll_output();
    let mut r = Run {
        sip: Vec::new(),
        output: Vec::new(),
        failed: false,
        closed: false,
    };
    for piece in data.chunks(chunk.max(1)) {
        if layer.handle_input(piece).is_err() {
            r.failed = true;
            // An error ends the connection: no more input, and it says so.
            assert!(layer.is_closed(), "an error leaves the layer closed");
        }
        while let Some(d) = layer.poll_sip() {
            match &d {
                SipData::Message(m) => {
                    assert!(
                        layer.kind().is_websocket(),
                        "only WebSocket hands up messages"
                    );
                    assert!(!m.is_empty() && m.len() <= crate::DEFAULT_MAX_MESSAGE);
                }
                SipData::Stream(b) => {
                    assert!(
                        !layer.kind().is_websocket(),
                        "WebSocket hands up whole messages"
                    );
                    assert!(!b.is_empty());
                }
            }
            r.sip.push(d);
        }
        layer.poll_output_into(&mut r.output);
        if r.failed {
            break;
        }
    }
    r.closed = layer.is_closed();
    r
}

fn open_server() -> StreamLayer {
    let mut s = StreamLayer::accept(StreamKind::Ws, None).expect("WS needs no configuration");
    s.handle_input(REQUEST).expect("a valid handshake");
    s
}

fn open_client() -> StreamLayer {
    let mut rng = ChaCha20Rng::seed_from_u64(0);
    let mut c =
        StreamLayer::connect(StreamKind::Ws, None, "", "h", "/", &mut rng).expect("valid target");
    let req = c.poll_output().expect("the client's GET");
    // Answer with the accept value for the key the client sent.
    let key = req
        .split(|&b| b == b'\n')
        .find_map(|l| l.strip_prefix(b"Sec-WebSocket-Key: "))
        .expect("a key");
    let key = std::str::from_utf8(key).expect("base64").trim();
    let mut resp = RESPONSE.to_vec();
    resp.extend_from_slice(crate::ws::handshake::accept_key(key).as_bytes());
    resp.extend_from_slice(b"\r\n\r\n");
    c.handle_input(&resp).expect("a valid answer");
    c
}

/// Feeds `data` as WebSocket frames to an open server layer and an open client layer, whole and
/// in small pieces: the pieces must give the same messages, output and verdict as the whole;
/// errors close the layer; messages are whole and within the size cap.
pub fn ws_frames(data: &[u8]) {
    let chunk = data.first().map_or(1, |b| usize::from(b % 7) + 1);
    let whole = run(open_server(), data, usize::MAX);
    let split = run(open_server(), data, chunk);
    assert_eq!(
        whole, split,
        "server: delivery in pieces changed the result"
    );
    let whole = run(open_client(), data, usize::MAX);
    let split = run(open_client(), data, chunk);
    assert_eq!(
        whole, split,
        "client: delivery in pieces changed the result"
    );
}

/// Feeds `data` to a fresh layer of each kind, server and client side: no panic, and an error
/// leaves the layer closed.
pub fn fresh_layers(data: &[u8]) {
    static TLS: std::sync::OnceLock<Option<crate::TlsServer>> = std::sync::OnceLock::new();
    let tls = TLS.get_or_init(|| {
        crate::generate_self_signed(&["localhost"])
            .and_then(|c| c.server())
            .ok()
    });
    for kind in [
        StreamKind::Tcp,
        StreamKind::Tls,
        StreamKind::Ws,
        StreamKind::Wss,
    ] {
        if let Ok(s) = StreamLayer::accept(kind, tls.as_ref()) {
            let _ = run(s, data, 13);
        }
    }
}
