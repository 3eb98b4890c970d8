//! The server side against real clients, when they are installed: `openssl s_client` over TLS
//! 1.3 and 1.2 (certificate verified against the generated one), and a standard-library Python
//! WebSocket client (`scripts/ws_client.py`) over WS and WSS. Loopback only; skipped, with a
//! note, when the tool is missing.

mod common;
use common::*;
use parrot_transport::{generate_self_signed, SipData, StreamKind, StreamLayer, TlsServer};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::Duration;

fn have(tool: &str, arg: &str) -> bool {
    let ok = Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("interop: {tool} not installed, check skipped");
    }
    ok
}

/// Echoes SIP on one connection, as `examples/tls_echo.rs` does.
fn echo_server(kind: StreamKind, tls: TlsServer) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut layer = StreamLayer::accept(kind, Some(&tls)).unwrap();
        let mut buf = [0u8; 4096];
        loop {
            let n = sock.read(&mut buf).unwrap_or(0);
            let r = if n == 0 {
                layer.handle_eof();
                Ok(())
            } else {
                layer.handle_input(&buf[..n])
            };
            while let Some(d) = layer.poll_sip() {
                let (SipData::Stream(b) | SipData::Message(b)) = d;
                let _ = layer.send_sip(&b);
            }
            while let Some(out) = layer.poll_output() {
                let _ = sock.write_all(&out);
            }
            if r.is_err() || layer.is_closed() || n == 0 {
                return;
            }
        }
    });
    addr
}

fn cert_file(pem: &str, name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "parrot-transport-{}-{name}.pem",
        std::process::id()
    ));
    std::fs::write(&path, pem).unwrap();
    path
}

#[test]
fn openssl_s_client_talks_to_the_tls_server() {
    if !have("openssl", "version") {
        return;
    }
    let cert = generate_self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let ca = cert_file(&cert.cert_pem, "s_client");
    for version in ["-tls1_3", "-tls1_2"] {
        let addr = echo_server(StreamKind::Tls, cert.server().unwrap());
        let mut child = Command::new("openssl")
            .args(["s_client", version, "-connect", &addr.to_string()])
            .args([
                "-servername",
                "localhost",
                "-verify_return_error",
                "-brief",
                "-ign_eof",
            ])
            .arg("-CAfile")
            .arg(&ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(INVITE).unwrap();
        // The echo ends the server's loop only on EOF; s_client prints what it got and exits
        // when the server's close_notify arrives after our stdin closed... or at the timeout.
        let mut stdout = child.stdout.take().unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !got.windows(INVITE.len()).any(|w| w == INVITE)
            && std::time::Instant::now() < deadline
        {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            got.windows(INVITE.len()).any(|w| w == INVITE),
            "{version}: no echo; stdout {:?}, stderr {err}",
            String::from_utf8_lossy(&got)
        );
        assert!(err.contains("Verification: OK"), "{version}: {err}");
    }
    let _ = std::fs::remove_file(ca);
}

#[test]
fn python_websocket_client_talks_to_ws_and_wss() {
    if !have("python3", "--version") {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/ws_client.py");
    let cert = generate_self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let ca = cert_file(&cert.cert_pem, "python");
    for kind in [StreamKind::Ws, StreamKind::Wss] {
        let addr = echo_server(kind, cert.server().unwrap());
        let mut cmd = Command::new("python3");
        cmd.arg(script)
            .arg("127.0.0.1")
            .arg(addr.port().to_string());
        if kind == StreamKind::Wss {
            cmd.arg("--tls").arg(&ca);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{kind:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_file(ca);
}
