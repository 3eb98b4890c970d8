//! A call hung up right after its answer sends no media: its stream starts one packet time
//! after the answer, so a BYE within that time leaves no RTP to send and no RTCP BYE.
#![allow(missing_docs)]

use bytes::Bytes;
use parrot_proto::Transport;
use parrot_ua::{AgentConfig, Output, UaEvent, UserAgent};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const SDP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

/// Everything the agent has to send or do at `now`: SIP texts and media packet counts.
fn drain(ua: &mut UserAgent, now: Instant, sip: &mut Vec<String>, media: &mut usize) {
    let mut buf = vec![0u8; 2048];
    loop {
        while let Some(out) = ua.poll_transmit(now, &mut buf) {
            match out {
                Output::Sip(t) => sip.push(String::from_utf8_lossy(&t.payload).into_owned()),
                Output::Media { .. } => *media += 1,
            }
        }
        let Some(e) = ua.poll_event() else { break };
        if let UaEvent::OpenMedia { call } = e {
            ua.media_ready(now, call, 20_000);
        }
    }
}

fn run_timers(ua: &mut UserAgent, until: Instant, sip: &mut Vec<String>, media: &mut usize) {
    while let Some(t) = ua.poll_timeout().filter(|t| *t <= until) {
        ua.handle_timeout(t);
        drain(ua, t, sip, media);
    }
}

fn request(method: &str, uri: &str, branch: &str, to_tag: &str, seq: u32, body: &str) -> Bytes {
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    Bytes::from(format!(
        "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-{branch}\r\n\
From: sipp <sip:sipp@127.0.0.1:5061>;tag=1\r\nTo: service <sip:service@127.0.0.1:5060>{to_tag}\r\n\
Call-ID: 1-1@127.0.0.1\r\nCSeq: {seq} {method}\r\nContact: sip:sipp@127.0.0.1:5061\r\n\
Max-Forwards: 70\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

/// Answers an INVITE, then feeds the ACK and a BYE `bye_after` the answer, and runs the
/// clock to 100 ms after it; returns how many media packets the agent sent.
fn media_packets(bye_after: Duration) -> usize {
    let server: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    let peer: SocketAddr = "127.0.0.1:5061".parse().unwrap();
    let mut cfg = AgentConfig::new(server);
    cfg.media_threads = 0;
    let mut ua = UserAgent::new(
        cfg,
        server,
        &[],
        None,
        None,
        Box::new(<ChaCha20Rng as SeedableRng>::seed_from_u64(3)),
    );
    let (mut sip, mut media) = (Vec::new(), 0);
    let t0 = Instant::now();
    let invite = request("INVITE", "sip:service@127.0.0.1:5060", "1", "", 1, SDP);
    ua.handle_sip_datagram(t0, server, peer, Transport::Udp, invite);
    drain(&mut ua, t0, &mut sip, &mut media);
    let ok = sip
        .iter()
        .find(|m| m.starts_with("SIP/2.0 200"))
        .expect("answered");
    let to = ok.lines().find(|l| l.starts_with("To:")).unwrap();
    let tag = format!(";tag={}", to.split(";tag=").nth(1).unwrap().trim());
    let contact = ok.lines().find(|l| l.starts_with("Contact:")).unwrap();
    let target = contact[8..]
        .trim()
        .trim_start_matches('<')
        .split(['>', ';'])
        .next()
        .unwrap()
        .to_owned();
    let ack = request("ACK", &target, "2", &tag, 1, "");
    ua.handle_sip_datagram(t0, server, peer, Transport::Udp, ack);
    drain(&mut ua, t0, &mut sip, &mut media);
    let at = t0 + bye_after;
    run_timers(&mut ua, at, &mut sip, &mut media);
    let bye = request("BYE", &target, "3", &tag, 2, "");
    ua.handle_sip_datagram(at, server, peer, Transport::Udp, bye);
    drain(&mut ua, at, &mut sip, &mut media);
    run_timers(
        &mut ua,
        at + Duration::from_millis(100),
        &mut sip,
        &mut media,
    );
    assert!(sip
        .iter()
        .any(|m| m.starts_with("SIP/2.0 200") && m.contains("BYE")));
    media
}

#[test]
fn a_call_hung_up_within_a_packet_time_of_its_answer_sends_no_media() {
    assert_eq!(media_packets(Duration::from_millis(1)), 0);
    assert_eq!(media_packets(Duration::from_millis(19)), 0);
}

#[test]
fn a_call_that_lasts_sends_its_media_and_an_rtcp_bye() {
    // Started 20 to 39 ms after the answer: by 60 ms at least one packet, then the BYE.
    assert!(media_packets(Duration::from_millis(60)) >= 2);
}
