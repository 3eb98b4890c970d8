//! Unit tests of the four transaction machines and their timers.

use super::*;
use crate::Message;
use std::time::{Duration, Instant};

fn msg(s: &str) -> Message {
    Message::parse(s.replace('\n', "\r\n").into_bytes()).expect("test message parses")
}

fn invite() -> Message {
    msg("INVITE sip:b@h SIP/2.0\nVia: SIP/2.0/UDP a:5060;branch=z9hG4bKx1\nMax-Forwards: 70\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c1\nCSeq: 1 INVITE\nContent-Length: 0\n\n")
}

fn response(code: u16, method: &str) -> Message {
    msg(&format!("SIP/2.0 {code} X\nVia: SIP/2.0/UDP a:5060;branch=z9hG4bKx1\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>;tag=2\nCall-ID: c1\nCSeq: 1 {method}\nContent-Length: 0\n\n"))
}

fn sends(out: &[TxOutput]) -> usize {
    out.iter()
        .filter(|o| matches!(o, TxOutput::Send(_)))
        .count()
}

#[test]
fn client_invite_retransmits_with_timer_a_doubling_until_timer_b() {
    let t0 = Instant::now();
    let cfg = TimerConfig::default();
    let mut out = Vec::new();
    let mut tx = ClientInviteTransaction::start(t0, invite(), false, cfg, &mut out);
    assert_eq!(sends(&out), 1);
    let mut fired = Vec::new();
    while let Some(at) = tx.poll_timeout() {
        out.clear();
        tx.on_timeout(at, &mut out);
        if sends(&out) > 0 {
            fired.push(at - t0);
        }
    }
    let ms: Vec<u64> = fired.iter().map(|d| d.as_millis() as u64).collect();
    assert_eq!(ms, vec![500, 1500, 3500, 7500, 15500, 31500]);
    assert!(out.iter().any(|o| matches!(o, TxOutput::Timeout(Timer::B))));
    assert!(tx.is_terminated());
}

#[test]
fn client_invite_acks_non_2xx_and_waits_timer_d() {
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut tx =
        ClientInviteTransaction::start(t0, invite(), false, TimerConfig::default(), &mut out);
    out.clear();
    tx.on_response(t0, &response(486, "INVITE"), &mut out);
    assert_eq!(tx.state(), ClientInviteState::Completed);
    let ack = out.iter().find_map(|o| match o {
        TxOutput::Send(b) => Some(Message::parse(b.clone()).unwrap()),
        _ => None,
    });
    let ack = ack.expect("ACK sent");
    assert_eq!(ack.method(), Some(crate::Method::Ack));
    assert_eq!(ack.to_header().unwrap().tag(), Some("2"));
    out.clear();
    tx.on_response(t0, &response(486, "INVITE"), &mut out);
    assert_eq!(sends(&out), 1, "retransmitted final gets the ACK again");
    assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
}

#[test]
fn client_invite_2xx_moves_to_accepted_and_passes_retransmissions() {
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut tx =
        ClientInviteTransaction::start(t0, invite(), true, TimerConfig::default(), &mut out);
    out.clear();
    tx.on_response(t0, &response(200, "INVITE"), &mut out);
    assert_eq!(tx.state(), ClientInviteState::Accepted);
    out.clear();
    tx.on_response(t0, &response(200, "INVITE"), &mut out);
    assert!(matches!(out[0], TxOutput::Deliver(_)));
    tx.on_timeout(t0 + Duration::from_secs(32), &mut out);
    assert!(tx.is_terminated());
}

#[test]
fn client_non_invite_caps_timer_e_at_t2() {
    let t0 = Instant::now();
    let mut out = Vec::new();
    let req = msg("OPTIONS sip:b@h SIP/2.0\nVia: SIP/2.0/UDP a:5060;branch=z9hG4bKx1\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c1\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n");
    let mut tx =
        ClientNonInviteTransaction::start(t0, req, false, TimerConfig::default(), &mut out);
    let mut at_ms = Vec::new();
    while let Some(at) = tx.poll_timeout() {
        out.clear();
        tx.on_timeout(at, &mut out);
        if sends(&out) > 0 {
            at_ms.push((at - t0).as_millis() as u64);
        }
    }
    assert_eq!(&at_ms[..6], &[500, 1500, 3500, 7500, 11500, 15500]);
    assert!(out.iter().any(|o| matches!(o, TxOutput::Timeout(Timer::F))));
}

#[test]
fn client_non_invite_reliable_final_terminates_immediately_after_timer_k() {
    let t0 = Instant::now();
    let mut out = Vec::new();
    let req = msg("OPTIONS sip:b@h SIP/2.0\nVia: SIP/2.0/TCP a:5060;branch=z9hG4bKx1\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c1\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n");
    let mut tx = ClientNonInviteTransaction::start(t0, req, true, TimerConfig::default(), &mut out);
    assert_eq!(
        tx.poll_timeout(),
        Some(t0 + Duration::from_secs(32)),
        "no timer E on TCP"
    );
    tx.on_response(t0, &response(200, "OPTIONS"), &mut out);
    assert_eq!(tx.poll_timeout(), Some(t0), "timer K is zero on TCP");
    tx.on_timeout(t0, &mut out);
    assert!(tx.is_terminated());
}

#[test]
fn server_invite_retransmits_final_on_timer_g_and_times_out_on_h() {
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut tx = ServerInviteTransaction::new(false, TimerConfig::default());
    assert!(tx.send_response(t0, &response(100, "INVITE"), &mut out));
    assert_eq!(
        tx.on_request(t0, false, &mut out),
        ServerRequestOutcome::Absorbed
    );
    assert_eq!(sends(&out), 2, "retransmitted INVITE gets the 100 again");
    assert!(tx.send_response(t0, &response(486, "INVITE"), &mut out));
    assert!(
        !tx.send_response(t0, &response(500, "INVITE"), &mut out),
        "never two finals"
    );
    let mut g = 0;
    while let Some(at) = tx.poll_timeout() {
        out.clear();
        tx.on_timeout(at, &mut out);
        g += sends(&out);
    }
    assert!(g >= 7);
    assert!(out.iter().any(|o| matches!(o, TxOutput::Timeout(Timer::H))));
}

#[test]
fn server_invite_ack_confirms_and_timer_i_terminates() {
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut tx = ServerInviteTransaction::new(false, TimerConfig::default());
    tx.send_response(t0, &response(404, "INVITE"), &mut out);
    tx.on_request(t0, true, &mut out);
    assert_eq!(tx.state(), ServerInviteState::Confirmed);
    out.clear();
    tx.on_request(t0, true, &mut out);
    assert_eq!(sends(&out), 0, "ACK is absorbed, never answered");
    tx.on_timeout(t0 + Duration::from_secs(5), &mut out);
    assert!(tx.is_terminated());
}

#[test]
fn server_invite_2xx_is_accepted_and_passes_ack_to_tu() {
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut tx = ServerInviteTransaction::new(false, TimerConfig::default());
    tx.send_response(t0, &response(200, "INVITE"), &mut out);
    assert_eq!(tx.state(), ServerInviteState::Accepted);
    out.clear();
    assert_eq!(
        tx.on_request(t0, false, &mut out),
        ServerRequestOutcome::Absorbed
    );
    assert_eq!(
        sends(&out),
        0,
        "the 2xx is retransmitted by the dialog, not the transaction"
    );
    assert_eq!(
        tx.on_request(t0, true, &mut out),
        ServerRequestOutcome::ToTu
    );
    tx.on_timeout(t0 + Duration::from_secs(32), &mut out);
    assert!(tx.is_terminated());
}

#[test]
fn server_non_invite_resends_last_response_until_timer_j() {
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut tx = ServerNonInviteTransaction::new(false, TimerConfig::default());
    tx.on_request(&mut out);
    assert_eq!(sends(&out), 0);
    tx.send_response(t0, &response(200, "OPTIONS"), &mut out);
    tx.on_request(&mut out);
    assert_eq!(sends(&out), 2);
    assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
    tx.on_timeout(t0 + Duration::from_secs(32), &mut out);
    assert!(tx.is_terminated());
}

#[test]
fn retransmissions_due_with_the_transaction_timeout_are_not_sent() {
    // The clock jumps past both the next retransmission and the end of the transaction:
    // the transaction ends without sending again (a late copy could start a new server
    // transaction at a peer that has already ended the old one).
    let t0 = Instant::now();
    let late = t0 + Duration::from_secs(40);
    let cfg = TimerConfig::default();

    let mut out = Vec::new();
    let mut tx = ClientInviteTransaction::start(t0, invite(), false, cfg, &mut out);
    out.clear();
    tx.on_timeout(late, &mut out);
    assert_eq!(sends(&out), 0, "no INVITE after Timer B");
    assert!(out.iter().any(|o| matches!(o, TxOutput::Timeout(Timer::B))));
    assert!(tx.is_terminated());

    let req = msg("OPTIONS sip:b@h SIP/2.0\nVia: SIP/2.0/UDP a:5060;branch=z9hG4bKx1\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c1\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n");
    let mut out = Vec::new();
    let mut tx = ClientNonInviteTransaction::start(t0, req, false, cfg, &mut out);
    out.clear();
    tx.on_timeout(late, &mut out);
    assert_eq!(sends(&out), 0, "no request after Timer F");
    assert!(out.iter().any(|o| matches!(o, TxOutput::Timeout(Timer::F))));

    let mut out = Vec::new();
    let mut tx = ServerInviteTransaction::new(false, cfg);
    assert!(tx.send_response(t0, &response(486, "INVITE"), &mut out));
    out.clear();
    tx.on_timeout(late, &mut out);
    assert_eq!(sends(&out), 0, "no 486 after Timer H");
    assert!(out.iter().any(|o| matches!(o, TxOutput::Timeout(Timer::H))));
}

#[test]
fn a_late_clock_still_sends_retransmissions_due_before_the_timeout() {
    // Past several retransmission deadlines but not the timeout: one copy goes.
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut tx =
        ClientInviteTransaction::start(t0, invite(), false, TimerConfig::default(), &mut out);
    out.clear();
    tx.on_timeout(t0 + Duration::from_secs(20), &mut out);
    assert_eq!(sends(&out), 1);
    assert!(!tx.is_terminated());
}
