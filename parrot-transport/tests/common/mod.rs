//! In-memory byte shuttling between two layers, as an adapter would do with a socket pair.
#![allow(dead_code)]

use parrot_transport::{
    generate_self_signed, SipData, StreamKind, StreamLayer, TlsClient, TlsServer, TransportError,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::sync::OnceLock;

pub const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKasudf\r\n\
From: <sip:alice@example.com>;tag=1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: asidkj3ss\r\n\
CSeq: 1 INVITE\r\n\
Max-Forwards: 70\r\n\
Content-Length: 0\r\n\r\n";

pub const OK: &[u8] = b"SIP/2.0 200 OK\r\n\
Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKasudf\r\n\
From: <sip:alice@example.com>;tag=1\r\n\
To: <sip:bob@example.com>;tag=2\r\n\
Call-ID: asidkj3ss\r\n\
CSeq: 1 INVITE\r\n\
Content-Length: 0\r\n\r\n";

pub struct Certs {
    pub server: TlsServer,
    pub client: TlsClient,
    pub trusting: TlsClient,
}

/// One generated certificate for the whole test binary (generation costs a few ms).
pub fn certs() -> &'static Certs {
    static C: OnceLock<Certs> = OnceLock::new();
    C.get_or_init(|| {
        let ss = generate_self_signed(&["localhost", "127.0.0.1"]).unwrap();
        Certs {
            server: ss.server().unwrap(),
            client: ss.pinned_client().unwrap(),
            trusting: ss.trusting_client().unwrap(),
        }
    })
}

pub const ALL: [StreamKind; 4] = [
    StreamKind::Tcp,
    StreamKind::Tls,
    StreamKind::Ws,
    StreamKind::Wss,
];

pub fn pair(kind: StreamKind) -> (StreamLayer, StreamLayer) {
    pair_with(kind, &certs().client, "localhost")
}

pub fn pair_with(kind: StreamKind, tls: &TlsClient, name: &str) -> (StreamLayer, StreamLayer) {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let c = StreamLayer::connect(kind, Some(tls), name, "localhost", "/", &mut rng).unwrap();
    let s = StreamLayer::accept(kind, Some(&certs().server)).unwrap();
    (c, s)
}

/// What each side got while shuttling.
#[derive(Default, Debug)]
pub struct Got {
    pub sip: Vec<SipData>,
    pub err: Option<TransportError>,
}

impl Got {
    /// The SIP bytes, stream chunks joined; messages kept apart.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut stream = Vec::new();
        for d in &self.sip {
            match d {
                SipData::Stream(b) => stream.extend_from_slice(b),
                SipData::Message(m) => out.push(m.to_vec()),
            }
        }
        if !stream.is_empty() {
            out.push(stream);
        }
        out
    }
}

/// Moves bytes both ways, `chunk` bytes per `handle_input`, until neither side has output.
pub fn shuttle(a: &mut StreamLayer, b: &mut StreamLayer, chunk: usize) -> (Got, Got) {
    let mut ga = Got::default();
    let mut gb = Got::default();
    for _ in 0..1000 {
        let mut moved = false;
        moved |= carry(a, b, &mut gb, chunk);
        moved |= carry(b, a, &mut ga, chunk);
        if !moved {
            return (ga, gb);
        }
    }
    panic!("shuttle did not settle");
}

fn carry(from: &mut StreamLayer, to: &mut StreamLayer, got: &mut Got, chunk: usize) -> bool {
    let mut moved = false;
    while let Some(bytes) = from.poll_output() {
        moved = true;
        for piece in bytes.chunks(chunk.max(1)) {
            if let Err(e) = to.handle_input(piece) {
                got.err.get_or_insert(e);
            }
            while let Some(d) = to.poll_sip() {
                got.sip.push(d);
            }
        }
    }
    moved
}
