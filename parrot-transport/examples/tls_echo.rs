//! A loopback echo server for interop checks of the stream layer with real clients.
//!
//! ```text
//! cargo run -p parrot-transport --example tls_echo -- [tcp|tls|ws|wss] [--cert-out FILE]
//! ```
//!
//! Listens on 127.0.0.1 (an ephemeral port, printed as `listening 127.0.0.1:PORT`), with a freshly
//! generated self-signed certificate for `localhost` and `127.0.0.1` (written as PEM to
//! `--cert-out` when given, so a client can trust it). Every SIP message or stream chunk that
//! arrives is sent back on the same connection: stream bytes as they came, WebSocket messages as
//! one message each. The adapter part is the whole point: a socket that only moves raw bytes.
//! `scripts/interop.sh` beside this crate drives it with `openssl s_client` and Python.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use parrot_transport::{generate_self_signed, SipData, StreamKind, StreamLayer, TlsServer};

fn serve(mut sock: TcpStream, kind: StreamKind, tls: &TlsServer) -> std::io::Result<()> {
    let mut layer = StreamLayer::accept(kind, Some(tls)).map_err(std::io::Error::other)?;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = sock.read(&mut buf)?;
        let result = if n == 0 {
            layer.handle_eof();
            Ok(())
        } else {
            layer.handle_input(&buf[..n])
        };
        while let Some(data) = layer.poll_sip() {
            let bytes = match data {
                SipData::Stream(b) | SipData::Message(b) => b,
            };
            eprintln!("echo {} bytes", bytes.len());
            let _ = layer.send_sip(&bytes);
        }
        if layer.is_closed() {
            layer.close();
        }
        while let Some(out) = layer.poll_output() {
            sock.write_all(&out)?;
        }
        if let Err(e) = result {
            eprintln!("connection failed: {e}");
            return Ok(());
        }
        if layer.is_closed() || n == 0 {
            return Ok(());
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut kind = StreamKind::Tls;
    let mut cert_out = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "tcp" => kind = StreamKind::Tcp,
            "tls" => kind = StreamKind::Tls,
            "ws" => kind = StreamKind::Ws,
            "wss" => kind = StreamKind::Wss,
            "--cert-out" => cert_out = args.next(),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let cert = generate_self_signed(&["localhost", "127.0.0.1"])?;
    if let Some(path) = cert_out {
        std::fs::write(path, &cert.cert_pem)?;
    }
    let tls = cert.server()?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("listening {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    for sock in listener.incoming() {
        let sock = sock?;
        let tls = tls.clone();
        std::thread::spawn(move || {
            if let Err(e) = serve(sock, kind, &tls) {
                eprintln!("io: {e}");
            }
        });
    }
    Ok(())
}
