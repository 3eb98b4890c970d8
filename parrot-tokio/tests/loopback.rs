//! The adapter against itself on loopback: real sockets, real timers, two agents.

use parrot_media_core::handler::{Actions, MediaAction, MediaHandler, StreamDirection};
use parrot_proto::{Action, Reply, Request, UasHandler};
use parrot_tokio::{
    Agent, AgentConfig, CallEventKind, CallOptions, EndedBy, MediaHandlerFactory, UasFactory,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TONE: &[u8] = include_bytes!("../../assets/tone1k.wav");

struct PlayTone;
impl MediaHandler for PlayTone {
    fn handle_stream_start(&mut self, _: &str, _: StreamDirection) -> Actions {
        MediaAction::play("builtin:tone").into()
    }
}

fn config(ports: (u16, u16)) -> AgentConfig {
    let mut c = AgentConfig::new("127.0.0.1:0".parse().unwrap());
    c.rtp_ports = ports.0..=ports.1;
    c.builtin_files = vec![("builtin:tone".into(), bytes::Bytes::from_static(TONE))];
    c
}

fn tone_player() -> Option<MediaHandlerFactory> {
    Some(Box::new(|_, _| {
        Box::new(PlayTone) as Box<dyn MediaHandler + Send>
    }))
}

async fn server(ports: (u16, u16), uas: Option<UasFactory>) -> Agent {
    Agent::start(config(ports), uas, tone_player())
        .await
        .unwrap()
}

async fn client(ports: (u16, u16)) -> Agent {
    let mut c = config(ports);
    c.auto_answer = false;
    c.tcp = false;
    Agent::start(c, None, None).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_is_answered_media_flows_and_dtmf_arrives() {
    let mut srv = server((40000, 40099), None).await;
    let mut srv_events = srv.take_events().unwrap();
    let cli = client((40100, 40199)).await;
    let uri = format!("sip:parrot@{}", srv.local_addr());
    let mut call = cli.call(&uri, CallOptions::default()).await.unwrap();
    loop {
        let ev = call.next_event().await.unwrap();
        if matches!(ev.kind, CallEventKind::Answered { .. }) {
            break;
        }
    }
    call.send_dtmf("5#");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    call.hangup();
    let out = call.wait().await;
    assert!(out.answered);
    assert_eq!(out.ended_by, EndedBy::Local);
    assert!(out.media.rtp_received > 50, "{:?}", out.media);
    assert!(out.media.rtp_sent > 50, "{:?}", out.media);
    let mut digits = String::new();
    let mut ended = false;
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(2), srv_events.recv()).await {
        match ev.kind {
            CallEventKind::Dtmf(d) => digits.push(d),
            CallEventKind::Ended { by, .. } => {
                assert_eq!(by, EndedBy::Remote);
                ended = true;
                break;
            }
            _ => {}
        }
    }
    assert_eq!(digits, "5#");
    assert!(ended);
    cli.shutdown().await;
    srv.shutdown().await;
}

struct PanicOnSecond(Arc<AtomicU64>);
impl UasHandler for PanicOnSecond {
    fn handle_invite(&mut self, _req: &Request<'_>) -> Action {
        if self.0.fetch_add(1, Ordering::SeqCst) == 1 {
            panic!("deliberate test panic");
        }
        Action::NoReply
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_ends_only_its_own_call() {
    let n = Arc::new(AtomicU64::new(0));
    let uas: UasFactory =
        Box::new(move || Box::new(PanicOnSecond(n.clone())) as Box<dyn UasHandler>);
    let srv = server((40200, 40299), Some(uas)).await;
    let cli = client((40300, 40399)).await;
    let uri = format!("sip:parrot@{}", srv.local_addr());
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        let call = cli.call(&uri, CallOptions::default()).await.unwrap();
        let h = tokio::spawn(async move {
            let mut call = call;
            loop {
                match call.next_event().await.map(|e| e.kind) {
                    Some(CallEventKind::Answered { .. }) => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        call.hangup();
                    }
                    Some(CallEventKind::Ended { .. }) | None => break,
                    _ => {}
                }
            }
            call.wait().await
        });
        outcomes.push(h.await.unwrap());
    }
    assert!(outcomes[0].answered);
    assert!(!outcomes[1].answered);
    assert_eq!(outcomes[1].status, Some(500));
    assert!(outcomes[2].answered, "the endpoint survives the panic");
    cli.shutdown().await;
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_live_calls_with_bye() {
    let srv = server((40400, 40499), None).await;
    let cli = client((40500, 40599)).await;
    let uri = format!("sip:parrot@{}", srv.local_addr());
    let mut call = cli.call(&uri, CallOptions::default()).await.unwrap();
    while !matches!(
        call.next_event().await.unwrap().kind,
        CallEventKind::Answered { .. }
    ) {}
    srv.shutdown().await;
    let out = tokio::time::timeout(Duration::from_secs(5), call.wait())
        .await
        .unwrap();
    assert_eq!(out.ended_by, EndedBy::Remote);
    cli.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_work_over_tcp() {
    let srv = server((40600, 40699), None).await;
    let cli = client((40700, 40799)).await;
    let uri = format!("sip:parrot@{};transport=tcp", srv.tcp_addr().unwrap());
    let opts = CallOptions {
        tcp: true,
        ..CallOptions::default()
    };
    let mut call = cli.call(&uri, opts).await.unwrap();
    while !matches!(
        call.next_event().await.unwrap().kind,
        CallEventKind::Answered { .. }
    ) {}
    tokio::time::sleep(Duration::from_millis(300)).await;
    call.hangup();
    let out = call.wait().await;
    assert!(out.answered);
    assert!(out.media.rtp_received > 5);
    cli.shutdown().await;
    srv.shutdown().await;
}

struct Registrar;
impl UasHandler for Registrar {
    fn handle_register(&mut self, req: &Request<'_>) -> Action {
        let contact = req
            .message
            .header(parrot_proto::HeaderName::Contact)
            .unwrap_or("*")
            .to_owned();
        Action::Respond(Reply::new(200).header("Contact", format!("{contact};expires=120")))
    }
    fn handle_options(&mut self, _req: &Request<'_>) -> Action {
        Action::Respond(
            Reply::new(200)
                .header("Allow", "INVITE, BYE")
                .header("Supported", "path"),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_and_options_report_the_answer() {
    let uas: UasFactory = Box::new(|| Box::new(Registrar) as Box<dyn UasHandler>);
    let srv = server((40800, 40899), Some(uas)).await;
    let cli = client((40900, 40999)).await;
    let uri = format!("sip:{}", srv.local_addr());
    let granted = cli
        .register(&uri, "sip:alice@example.com", None, 300)
        .await
        .unwrap();
    assert_eq!(granted, Ok(120));
    let o = cli.options(&uri).await.unwrap().unwrap();
    assert_eq!(o.status, 200);
    assert_eq!(o.allow, vec!["INVITE", "BYE"]);
    assert_eq!(o.supported, vec!["path"]);
    cli.shutdown().await;
    srv.shutdown().await;
}
