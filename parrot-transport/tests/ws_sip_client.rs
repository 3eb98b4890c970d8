//! `testing::WsSipClient` against a loopback echo server made of a `TcpListener` and a layer.
#![cfg(feature = "testing")]

mod common;
use common::*;
use parrot_transport::testing::WsSipClient;
use parrot_transport::{SipData, StreamKind, StreamLayer};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

/// Serves one connection: every SIP message is answered with `OK`.
fn one_shot_server(kind: StreamKind) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut layer = StreamLayer::accept(kind, Some(&certs().server)).unwrap();
        let mut buf = [0u8; 4096];
        loop {
            let n = sock.read(&mut buf).unwrap_or(0);
            if n == 0 {
                layer.handle_eof();
            } else {
                let _ = layer.handle_input(&buf[..n]);
            }
            while let Some(d) = layer.poll_sip() {
                if let SipData::Message(m) = d {
                    assert_eq!(&m[..], INVITE);
                    layer.send_sip(OK).unwrap();
                }
            }
            while let Some(out) = layer.poll_output() {
                let _ = sock.write_all(&out);
            }
            if layer.is_closed() {
                return;
            }
        }
    });
    addr
}

#[test]
fn ws_client_places_a_request() {
    let addr = one_shot_server(StreamKind::Ws);
    let mut c = WsSipClient::connect(addr, "/").unwrap();
    c.send(INVITE).unwrap();
    assert_eq!(&c.recv(Duration::from_secs(5)).unwrap()[..], OK);
    c.close().unwrap();
}

#[test]
fn wss_client_places_a_request() {
    let addr = one_shot_server(StreamKind::Wss);
    let mut c = WsSipClient::connect_secure(addr, &certs().trusting, "127.0.0.1", "/").unwrap();
    c.send(INVITE).unwrap();
    assert_eq!(&c.recv(Duration::from_secs(5)).unwrap()[..], OK);
    c.close().unwrap();
}
