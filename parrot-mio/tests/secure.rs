//! TLS, WS and WSS through the mio loop (the driver runs the layers; the loop moves raw TCP
//! bytes): against itself and against parrot-tokio, with a generated certificate.

use parrot_mio::parrot_ua::{generate_self_signed, StreamKind, TlsClient};
use parrot_mio::{Agent, AgentConfig, CallEventKind, CallOptions, CallOutcome, EndedBy};
use parrot_proto::Transport;
use std::time::Duration;

/// A server with TLS, WS and WSS listeners, and the trust a client needs for it.
fn server_config(ports: (u16, u16)) -> (AgentConfig, TlsClient) {
    let cert = generate_self_signed(&["127.0.0.1"]).unwrap();
    let mut c = AgentConfig::new("127.0.0.1:0".parse().unwrap());
    c.rtp_ports = ports.0..=ports.1;
    c.streams = vec![
        (StreamKind::Tls, "127.0.0.1:0".parse().unwrap()),
        (StreamKind::Ws, "127.0.0.1:0".parse().unwrap()),
        (StreamKind::Wss, "127.0.0.1:0".parse().unwrap()),
    ];
    c.tls_server = Some(cert.server().unwrap());
    (c, cert.pinned_client().unwrap())
}

fn client_config(ports: (u16, u16), trust: TlsClient) -> AgentConfig {
    let mut c = AgentConfig::new("127.0.0.1:0".parse().unwrap());
    c.rtp_ports = ports.0..=ports.1;
    c.auto_answer = false;
    c.tcp = false;
    c.tls_client = Some(trust);
    c
}

/// Calls `srv` on its `kind` listener, waits for the answer, hangs up after a moment.
fn call_over(cli: &Agent, srv: &Agent, kind: StreamKind) -> CallOutcome {
    let addr = srv.stream_addr(kind).unwrap();
    let t = kind.transport();
    let uri = format!(
        "sip:parrot@{addr};transport={}",
        format!("{t:?}").to_lowercase()
    );
    let opts = CallOptions {
        transport: Some(t),
        ..CallOptions::default()
    };
    let mut call = cli.call_blocking(&uri, opts, None).unwrap();
    while let Some(ev) = call.next_event_blocking() {
        if matches!(ev.kind, CallEventKind::Answered { .. }) {
            std::thread::sleep(Duration::from_millis(400));
            call.hangup();
        }
    }
    call.wait_blocking()
}

fn assert_answered(out: &CallOutcome) {
    assert!(out.answered, "{out:?}");
    assert_eq!(out.ended_by, EndedBy::Local);
    assert!(out.media.rtp_received > 5, "{:?}", out.media);
}

#[test]
fn a_call_over_tls_is_answered_and_its_media_flows() {
    let (cfg, trust) = server_config((45000, 45099));
    let srv = parrot_mio::start(cfg, None, None).unwrap();
    let cli = parrot_mio::start(client_config((45100, 45199), trust), None, None).unwrap();
    assert_answered(&call_over(&cli, &srv, StreamKind::Tls));
    cli.shutdown_blocking();
    srv.shutdown_blocking();
}

#[test]
fn calls_over_ws_and_wss_are_answered() {
    let (cfg, trust) = server_config((45200, 45299));
    let srv = parrot_mio::start(cfg, None, None).unwrap();
    let cli = parrot_mio::start(client_config((45300, 45399), trust), None, None).unwrap();
    assert_answered(&call_over(&cli, &srv, StreamKind::Ws));
    assert_answered(&call_over(&cli, &srv, StreamKind::Wss));
    cli.shutdown_blocking();
    srv.shutdown_blocking();
}

#[test]
fn mio_and_tokio_call_each_other_over_tls_and_wss() {
    let (cfg, trust) = server_config((45400, 45499));
    let tokio_srv = parrot_tokio::start(cfg, None, None).unwrap();
    let mio_cli = parrot_mio::start(client_config((45500, 45599), trust), None, None).unwrap();
    assert_answered(&call_over(&mio_cli, &tokio_srv, StreamKind::Tls));
    assert_answered(&call_over(&mio_cli, &tokio_srv, StreamKind::Wss));

    let (cfg, trust) = server_config((45600, 45699));
    let mio_srv = parrot_mio::start(cfg, None, None).unwrap();
    let tokio_cli = parrot_tokio::start(client_config((45700, 45799), trust), None, None).unwrap();
    assert_answered(&call_over(&tokio_cli, &mio_srv, StreamKind::Tls));
    assert_answered(&call_over(&tokio_cli, &mio_srv, StreamKind::Wss));

    for a in [mio_cli, tokio_srv, tokio_cli, mio_srv] {
        a.shutdown_blocking();
    }
}

#[test]
fn a_call_to_an_untrusted_tls_server_fails() {
    let (cfg, _) = server_config((45800, 45899));
    let srv = parrot_mio::start(cfg, None, None).unwrap();
    let other = generate_self_signed(&["127.0.0.1"]).unwrap();
    let cc = client_config((45900, 45999), other.pinned_client().unwrap());
    let cli = parrot_mio::start(cc, None, None).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let tls = srv.stream_addr(StreamKind::Tls).unwrap();
    let opts = CallOptions {
        transport: Some(Transport::Tls),
        ..CallOptions::default()
    };
    let call = cli
        .call_blocking(&format!("sip:parrot@{tls};transport=tls"), opts, None)
        .unwrap();
    std::thread::spawn(move || {
        let _ = tx.send(call.wait_blocking());
    });
    let out = rx
        .recv_timeout(Duration::from_secs(40))
        .expect("the call ends");
    assert!(!out.answered);
    assert!(out.status.is_some(), "{out:?}");
    cli.shutdown_blocking();
    srv.shutdown_blocking();
}
