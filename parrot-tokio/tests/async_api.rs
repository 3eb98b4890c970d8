//! The `async` half of the `Agent` API, awaited on a tokio runtime (the conformance suite uses
//! the blocking half): a call with DTMF, REGISTER and OPTIONS, shutdown.

use parrot_tokio::{CallEventKind, CallOptions, EndedBy};
use parrot_ua::testing::fixtures::{client_config, config, registrar, tone_player};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_api_places_a_call_registers_and_asks_options() {
    let limit = Duration::from_secs(30);
    let mut srv = parrot_tokio::start(
        config(parrot_ua::testing::fixtures::free_ports(33000, 100)),
        Some(registrar()),
        tone_player(),
    )
    .unwrap();
    let srv_events = srv.take_events().unwrap();
    let cli = parrot_tokio::start(
        client_config(parrot_ua::testing::fixtures::free_ports(33100, 100)),
        None,
        None,
    )
    .unwrap();
    assert_eq!(cli.runtime(), "tokio");
    let uri = format!("sip:parrot@{}", srv.local_addr());
    let mut call = cli.call(&uri, CallOptions::default()).await.unwrap();
    tokio::time::timeout(limit, async {
        while !matches!(
            call.next_event().await.expect("answered").kind,
            CallEventKind::Answered { .. }
        ) {}
    })
    .await
    .expect("the answer");
    call.send_dtmf("7");
    tokio::time::sleep(Duration::from_millis(600)).await;
    call.hangup();
    let out = tokio::time::timeout(limit, call.wait()).await.unwrap();
    assert!(out.answered);
    assert_eq!(out.ended_by, EndedBy::Local);
    assert!(out.media.rtp_received > 10, "{:?}", out.media);
    let mut digits = String::new();
    while let Ok(Ok(ev)) = tokio::time::timeout(Duration::from_secs(3), srv_events.recv()).await {
        match ev.kind {
            CallEventKind::Dtmf(d) => digits.push(d),
            CallEventKind::Ended { .. } => break,
            _ => {}
        }
    }
    assert_eq!(digits, "7");

    let registrar_uri = format!("sip:{}", srv.local_addr());
    let register = cli.register(&registrar_uri, "sip:alice@example.com", None, 300);
    let granted = tokio::time::timeout(limit, register).await.unwrap();
    assert_eq!(granted.unwrap(), Ok(120));
    let options = tokio::time::timeout(limit, cli.options(&registrar_uri));
    let o = options.await.unwrap().unwrap().unwrap();
    assert_eq!(
        (o.status, o.allow),
        (200, vec!["INVITE".into(), "BYE".into()])
    );

    tokio::time::timeout(limit, cli.shutdown()).await.unwrap();
    tokio::time::timeout(limit, srv.shutdown()).await.unwrap();
}
