//! TLS, WS and WSS on loopback with the smol adapter: real sockets, a generated certificate,
//! two agents (one of them on tokio), and a WebSocket client standing in for a browser
//! softphone. The adapter only moves raw TCP bytes; the driver runs TLS and WebSocket.

use async_io::Timer;
use futures_lite::future::{self, block_on};
use parrot_proto::Transport;
use parrot_smol::{Agent, AgentConfig, CallEventKind, CallOptions, EndedBy};
use parrot_transport::testing::WsSipClient;
use parrot_ua::{generate_self_signed, StreamKind, TlsClient};
use std::time::Duration;

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
    c.tls_client = Some(trust);
    c
}

fn tls() -> CallOptions {
    CallOptions {
        transport: Some(Transport::Tls),
        ..CallOptions::default()
    }
}

/// `cli` calls `srv` over TLS, lets media flow, hangs up.
fn tls_call(cli: Agent, srv: Agent) {
    block_on(async {
        let at = srv.stream_addr(StreamKind::Tls).unwrap();
        let uri = format!("sip:parrot@{at};transport=tls");
        let mut call = cli.call(&uri, tls()).await.unwrap();
        while !matches!(
            call.next_event().await.unwrap().kind,
            CallEventKind::Answered { .. }
        ) {}
        Timer::after(Duration::from_millis(400)).await;
        call.hangup();
        let out = call.wait().await;
        assert!(out.answered);
        assert_eq!(out.ended_by, EndedBy::Local);
        assert!(out.media.rtp_received > 5, "{:?}", out.media);
        cli.shutdown().await;
        srv.shutdown().await;
    });
}

#[test]
fn a_call_over_tls_is_answered_and_its_media_flows() {
    let (cfg, trust) = server_config((47400, 47499));
    let srv = parrot_smol::start(cfg, None, None).unwrap();
    let cli = parrot_smol::start(client_config((47500, 47599), trust), None, None).unwrap();
    tls_call(cli, srv);
}

#[test]
fn smol_and_tokio_call_each_other_over_tls() {
    let (cfg, trust) = server_config((47600, 47699));
    let srv = parrot_tokio::start(cfg, None, None).unwrap();
    let cli = parrot_smol::start(client_config((47700, 47799), trust), None, None).unwrap();
    tls_call(cli, srv);
    let (cfg, trust) = server_config((47600, 47699));
    let srv = parrot_smol::start(cfg, None, None).unwrap();
    let cli = parrot_tokio::start(client_config((47700, 47799), trust), None, None).unwrap();
    tls_call(cli, srv);
}

#[test]
fn a_call_to_an_untrusted_tls_server_fails() {
    let (cfg, _) = server_config((47800, 47899));
    let srv = parrot_smol::start(cfg, None, None).unwrap();
    let at = srv.stream_addr(StreamKind::Tls).unwrap();
    let other = generate_self_signed(&["127.0.0.1"]).unwrap();
    let trust = other.pinned_client().unwrap();
    let cli = parrot_smol::start(client_config((47900, 47999), trust), None, None).unwrap();
    block_on(async {
        let call = cli
            .call(&format!("sip:parrot@{at};transport=tls"), tls())
            .await
            .unwrap();
        let out = future::or(async { Some(call.wait().await) }, async {
            Timer::after(Duration::from_secs(40)).await;
            None
        })
        .await
        .expect("the call ends");
        assert!(!out.answered);
        assert!(out.status.is_some(), "{out:?}");
        cli.shutdown().await;
        srv.shutdown().await;
    });
}

fn invite_over_ws(local: std::net::SocketAddr, transport: &str, branch: &str) -> String {
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    format!(
        "INVITE sip:parrot@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {local};branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:browser@example.invalid>;tag=ws1\r\n\
         To: <sip:parrot@127.0.0.1>\r\n\
         Call-ID: {branch}@example.invalid\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:browser@{local};transport={lower}>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len(),
        lower = transport.to_ascii_lowercase()
    )
}

/// Reads responses until a final one; returns it.
fn final_response(c: &mut WsSipClient) -> String {
    loop {
        let m = c.recv(Duration::from_secs(5)).expect("a response");
        let text = String::from_utf8_lossy(&m).to_string();
        let status: u16 = text
            .get(8..11)
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        if status >= 200 {
            return text;
        }
    }
}

#[test]
fn a_websocket_client_places_a_call_over_ws_and_wss() {
    let (cfg, trust) = server_config((48000, 48099));
    let srv = parrot_smol::start(cfg, None, None).unwrap();
    let ws = srv.stream_addr(StreamKind::Ws).unwrap();
    let wss = srv.stream_addr(StreamKind::Wss).unwrap();

    let mut c = WsSipClient::connect(ws, "/").unwrap();
    let local = c.local_addr().unwrap();
    c.send(invite_over_ws(local, "WS", "ws1").as_bytes())
        .unwrap();
    let ok = final_response(&mut c);
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(ok.contains("SIP/2.0/WS"), "the Via names WS: {ok}");
    assert!(ok.contains("m=audio"), "an SDP answer: {ok}");

    let mut s = WsSipClient::connect_secure(wss, &trust, "127.0.0.1", "/").unwrap();
    let local = s.local_addr().unwrap();
    s.send(invite_over_ws(local, "WSS", "wss1").as_bytes())
        .unwrap();
    let ok = final_response(&mut s);
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    srv.shutdown_blocking();
}
