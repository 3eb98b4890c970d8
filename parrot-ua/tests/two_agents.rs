//! Two sans-IO user agents wired back to back in memory, on a virtual clock: the call policy
//! (auto-answer, offer/answer, media start and stop, DTMF, hang-up) tested with no socket.

use parrot_proto::Transport;
use parrot_ua::{AgentConfig, CallEventKind, CallOptions, EndedBy, Output, UaEvent, UserAgent};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

struct Side {
    ua: UserAgent,
    sip: SocketAddr,
    /// call -> our RTP port
    ports: HashMap<u64, u16>,
    next_port: u16,
    events: Vec<CallEventKind>,
    /// When each RTP packet left (its due time, if it was written before it), per call.
    rtp_sent: HashMap<u64, Vec<Instant>>,
    /// How long before its due time each RTP packet was written.
    rtp_early: Vec<Duration>,
    /// Each RTCP packet sent: when it was written, and when it is due to leave.
    rtcp_sent: Vec<(Instant, Instant)>,
    /// At most this much virtual time between wake-ups (extra wake-ups off any timer).
    max_step: Option<Duration>,
}

fn side(addr: &str, auto_answer: bool, seed: u64) -> Side {
    side_with(addr, auto_answer, seed, None)
}

fn side_with(addr: &str, auto_answer: bool, seed: u64, lookahead: Option<Duration>) -> Side {
    let sip: SocketAddr = addr.parse().unwrap();
    let mut cfg = AgentConfig::new(sip);
    cfg.auto_answer = auto_answer;
    cfg.media_lookahead = lookahead;
    let ua = UserAgent::new(
        cfg,
        sip,
        &[],
        None,
        None,
        Box::new(ChaCha20Rng::seed_from_u64(seed)),
    );
    Side {
        ua,
        sip,
        ports: HashMap::new(),
        next_port: 20000,
        events: Vec::new(),
        rtp_sent: HashMap::new(),
        rtp_early: Vec::new(),
        rtcp_sent: Vec::new(),
        max_step: None,
    }
}

/// Moves everything each side sends to the other until both are quiet; then advances the
/// clock to the earliest timer. Stops at `until`.
fn run(a: &mut Side, b: &mut Side, now: &mut Instant, until: Instant) {
    let mut buf = vec![0u8; 2048];
    loop {
        let mut moved = true;
        while moved {
            moved = false;
            for turn in 0..2 {
                let (x, y) = if turn == 0 {
                    (&mut *a, &mut *b)
                } else {
                    (&mut *b, &mut *a)
                };
                while let Some(out) = x.ua.poll_transmit(*now, &mut buf) {
                    moved = true;
                    match out {
                        Output::Sip(t) => {
                            y.ua.handle_sip_datagram(*now, y.sip, x.sip, Transport::Udp, t.payload)
                        }
                        Output::Media {
                            call: from,
                            rtcp,
                            dst,
                            len,
                            due,
                        } => {
                            // RTCP muxed on the RTP port has packet types 200-206 (RFC 5761 §4).
                            if !rtcp && !(200..=206).contains(&buf[1]) {
                                x.rtp_sent.entry(from).or_default().push(due.max(*now));
                                x.rtp_early.push(due.saturating_duration_since(*now));
                            } else {
                                x.rtcp_sent.push((*now, due));
                            }
                            let port = if rtcp { dst.port() - 1 } else { dst.port() };
                            let call = y.ports.iter().find(|(_, p)| **p == port).map(|(c, _)| *c);
                            if let Some(call) = call {
                                y.ua.handle_media(*now, call, rtcp, &buf[..len]);
                            }
                        }
                    }
                }
                while let Some(e) = x.ua.poll_event() {
                    moved = true;
                    match e {
                        UaEvent::OpenMedia { call } => {
                            let port = x.next_port;
                            x.next_port += 2;
                            x.ports.insert(call, port);
                            x.ua.media_ready(*now, call, port);
                        }
                        UaEvent::CloseMedia { call } => {
                            x.ports.remove(&call);
                        }
                        UaEvent::Call(ev) => x.events.push(ev.kind),
                        UaEvent::ReadFile { call, path } => {
                            x.ua.file_read(*now, call, &path, Err("no files here".into()))
                        }
                        _ => {}
                    }
                }
            }
        }
        let next = [a.ua.poll_timeout(), b.ua.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let next = match (next, a.max_step.or(b.max_step)) {
            (Some(t), Some(step)) => Some(t.min(*now + step)),
            (n, _) => n,
        };
        match next {
            Some(t) if t <= until => {
                *now = (*now).max(t);
                a.ua.handle_timeout(*now);
                b.ua.handle_timeout(*now);
            }
            _ => {
                *now = until;
                return;
            }
        }
    }
}

/// `a` calls `b` (at 10.0.0.2:5060) with default options; returns the call.
fn call_b(a: &mut Side, b: &Side, now: Instant) -> u64 {
    a.ua.call(
        now,
        "sip:parrot@10.0.0.2:5060".into(),
        b.sip,
        CallOptions::default(),
        None,
    )
}

#[test]
fn a_call_is_answered_media_flows_both_ways_dtmf_arrives_and_bye_ends_it() {
    let mut a = side("10.0.0.1:5060", false, 1);
    let mut b = side("10.0.0.2:5060", true, 2);
    let mut now = Instant::now();
    let call = call_b(&mut a, &b, now);
    let t = now + Duration::from_secs(1);
    run(&mut a, &mut b, &mut now, t);
    assert!(
        a.events
            .iter()
            .any(|e| matches!(e, CallEventKind::Answered { codec } if codec == "PCMU/8000")),
        "{:?}",
        a.events
    );
    a.ua.send_dtmf(now, call, "42");
    let t = now + Duration::from_secs(2);
    run(&mut a, &mut b, &mut now, t);
    a.ua.hangup(now, call);
    let t = now + Duration::from_secs(5);
    run(&mut a, &mut b, &mut now, t);

    let digits: String = b
        .events
        .iter()
        .filter_map(|e| match e {
            CallEventKind::Dtmf(d) => Some(*d),
            _ => None,
        })
        .collect();
    assert_eq!(digits, "42");
    let ended = |s: &Side| {
        s.events.iter().find_map(|e| match e {
            CallEventKind::Ended { by, media, .. } => Some((*by, *media)),
            _ => None,
        })
    };
    let (by_a, media_a) = ended(&a).expect("the caller's call ended");
    let (by_b, media_b) = ended(&b).expect("the callee's call ended");
    assert_eq!((by_a, by_b), (EndedBy::Local, EndedBy::Remote));
    // Three seconds of 20 ms packets each way, give or take the set-up.
    assert!(
        media_a.rtp_sent > 120 && media_a.rtp_received > 120,
        "{media_a:?}"
    );
    assert!(
        media_b.rtp_sent > 120 && media_b.rtp_received > 120,
        "{media_b:?}"
    );
    assert_eq!(media_a.lost, 0);
    // Every socket was given back, every call forgotten.
    assert!(a.ports.is_empty() && b.ports.is_empty());
    assert_eq!((a.ua.calls(), b.ua.calls()), (0, 0));
}

#[test]
fn a_call_the_adapter_cannot_bind_media_for_is_refused_with_503() {
    let mut a = side("10.0.0.1:5060", false, 3);
    let mut b = side("10.0.0.2:5060", true, 4);
    let now = Instant::now();
    call_b(&mut a, &b, now);
    // B's adapter has no ports: answer its OpenMedia with a failure by hand.
    let mut buf = vec![0u8; 2048];
    let mut failed = None;
    for _ in 0..10 {
        while let Some(Output::Sip(t)) = a.ua.poll_transmit(now, &mut buf) {
            b.ua.handle_sip_datagram(now, b.sip, a.sip, Transport::Udp, t.payload);
        }
        while let Some(e) = a.ua.poll_event() {
            match e {
                UaEvent::OpenMedia { call } => a.ua.media_ready(now, call, 30000),
                UaEvent::Call(ev) => {
                    if let CallEventKind::Failed(s) = ev.kind {
                        failed = Some(s);
                    }
                }
                _ => {}
            }
        }
        while let Some(e) = b.ua.poll_event() {
            if let UaEvent::OpenMedia { call } = e {
                b.ua.media_failed(now, call, "no free RTP port pair");
            }
        }
        while let Some(Output::Sip(t)) = b.ua.poll_transmit(now, &mut buf) {
            a.ua.handle_sip_datagram(now, a.sip, b.sip, Transport::Udp, t.payload);
        }
    }
    assert_eq!(failed, Some(503));
}

/// `a` calls `b` three times, the calls `gaps` µs apart (unrelated instants), then both run
/// for two seconds.
fn three_calls_then_two_seconds(a: &mut Side, b: &mut Side, gaps: [u64; 3]) {
    let mut now = Instant::now();
    for gap in gaps {
        call_b(a, b, now);
        let t = now + Duration::from_micros(gap);
        run(a, b, &mut now, t);
    }
    let t = now + Duration::from_secs(2);
    run(a, b, &mut now, t);
}

#[test]
fn media_leaves_on_a_shared_grid_at_a_fixed_offset_whatever_else_wakes_the_loop() {
    let mut a = side("10.0.0.1:5060", false, 3);
    let mut b = side("10.0.0.2:5060", true, 4);
    // Wake-ups every 0.37 ms besides the timers', as a loop busy with other sockets has.
    b.max_step = Some(Duration::from_micros(370));
    three_calls_then_two_seconds(&mut a, &mut b, [7_300, 9_200, 11_100]);

    assert_eq!(b.rtp_sent.len(), 3, "three calls sent media");
    let first = b.rtp_sent.values().filter_map(|v| v.get(1)).min().copied();
    let first = first.expect("packets were sent");
    for (call, sent) in &b.rtp_sent {
        assert!(sent.len() > 80, "call {call}: {} packets", sent.len());
        // The first packet leaves when the call is answered; the rest on the grid.
        let sent = &sent[1..];
        for w in sent.windows(2) {
            assert_eq!(
                w[1] - w[0],
                Duration::from_millis(20),
                "call {call}: packets leave exactly one packet time apart"
            );
        }
        let phase = (sent[0] - first).as_nanos() % Duration::from_millis(1).as_nanos();
        assert_eq!(phase, 0, "call {call}: sends fall on the 1 ms grid");
    }
}

#[test]
fn streams_answered_in_the_same_millisecond_are_spread_over_the_packet_time() {
    let mut a = side("10.0.0.1:5060", false, 5);
    let mut b = side("10.0.0.2:5060", true, 6);
    let start = Instant::now();
    let mut now = start;
    for _ in 0..20 {
        call_b(&mut a, &b, now);
    }
    let t = now + Duration::from_secs(1);
    run(&mut a, &mut b, &mut now, t);

    assert_eq!(b.rtp_sent.len(), 20, "every call sent media");
    let origin = b.rtp_sent.values().filter_map(|v| v.get(1)).min().copied();
    let origin = origin.expect("packets were sent");
    let mut slots: Vec<u128> = b
        .rtp_sent
        .values()
        .map(|v| (v[1] - origin).as_nanos() / Duration::from_millis(1).as_nanos() % 20)
        .collect();
    slots.sort_unstable();
    slots.dedup();
    assert_eq!(
        slots.len(),
        20,
        "one stream in each millisecond of the 20 ms packet time"
    );
    for (call, sent) in &b.rtp_sent {
        assert!(sent.len() > 40, "call {call}: {} packets", sent.len());
        for w in sent[1..].windows(2) {
            assert_eq!(w[1] - w[0], Duration::from_millis(20), "call {call}");
        }
    }
}

#[test]
fn with_a_lookahead_packets_are_written_that_much_early_and_leave_on_the_grid() {
    let lookahead = Duration::from_millis(10);
    let mut a = side("10.0.0.1:5060", false, 7);
    let mut b = side_with("10.0.0.2:5060", true, 8, Some(lookahead));
    b.max_step = Some(Duration::from_micros(370));
    three_calls_then_two_seconds(&mut a, &mut b, [4_100, 6_400, 8_700]);

    assert_eq!(b.rtp_sent.len(), 3, "three calls sent media");
    assert!(b.rtp_early.len() > 240, "{} packets", b.rtp_early.len());
    // Written on the grid step `lookahead` before the one they are due in.
    let late_written = b.rtp_early.iter().filter(|&&e| e < lookahead).count();
    assert!(
        late_written <= 3 * 2,
        "only a stream's first packets are written less than the lookahead early: {late_written}"
    );
    assert!(b
        .rtp_early
        .iter()
        .all(|&e| e <= lookahead + Duration::from_millis(1)));
    for (call, sent) in &b.rtp_sent {
        for w in sent[1..].windows(2) {
            assert_eq!(w[1] - w[0], Duration::from_millis(20), "call {call}");
        }
    }
    // The calls' audio still arrives: a hears b's packets.
    let ended_cleanly = a
        .events
        .iter()
        .all(|e| !matches!(e, CallEventKind::Ended { .. }));
    assert!(ended_cleanly, "no call ended early");
}

#[test]
fn a_call_hung_up_before_its_first_packet_is_due_sends_no_media_even_with_a_lookahead() {
    let mut a = side("10.0.0.1:5060", false, 9);
    let mut b = side_with("10.0.0.2:5060", true, 10, Some(Duration::from_millis(10)));
    let mut now = Instant::now();
    // Every stream starts one packet time or more after its answer.
    call_b(&mut a, &b, now);
    let t = now + Duration::from_millis(500);
    run(&mut a, &mut b, &mut now, t);
    let second = call_b(&mut a, &b, now);
    // Answered and acknowledged in the same instant, then hung up at once (as SIPp's uac
    // does under load).
    let t = now;
    run(&mut a, &mut b, &mut now, t);
    let answered = a
        .events
        .iter()
        .filter(|e| matches!(e, CallEventKind::Answered { .. }))
        .count();
    assert_eq!(answered, 2);
    a.ua.hangup(now, second);
    let t = now + Duration::from_secs(1);
    run(&mut a, &mut b, &mut now, t);

    let ended: Vec<_> = b
        .events
        .iter()
        .filter_map(|e| match e {
            CallEventKind::Ended { media, .. } => Some(*media),
            _ => None,
        })
        .collect();
    assert_eq!(ended.len(), 1, "only the second call ended");
    assert_eq!(
        ended[0].rtp_sent, 0,
        "nothing was written ahead for a call whose media had not begun"
    );
}

#[test]
fn a_hung_up_call_sends_its_rtcp_bye_at_once_unless_packets_written_ahead_are_still_waiting() {
    // Hung up 1 ms after its first packet, nothing is written ahead yet (the second packet,
    // due 20 ms after the first, is written 10 ms early); 15 ms after, the second is waiting.
    for (after_ms, waiting) in [(1, false), (15, true)] {
        let mut a = side("10.0.0.1:5060", false, 11);
        let mut b = side_with("10.0.0.2:5060", true, 12, Some(Duration::from_millis(10)));
        let mut now = Instant::now();
        let call = call_b(&mut a, &b, now);
        // The stream starts one packet time after the answer, in the least busy grid step:
        // run to within a millisecond after its first packet.
        for _ in 0..60 {
            let t = now + Duration::from_millis(1);
            run(&mut a, &mut b, &mut now, t);
            if !b.rtp_sent.is_empty() {
                break;
            }
        }
        let (&b_call, first) = b.rtp_sent.iter().next().expect("the first packet went");
        assert_eq!(first.len(), 1);
        let t = now + Duration::from_millis(after_ms);
        run(&mut a, &mut b, &mut now, t);
        let hung_up = now;
        a.ua.hangup(now, call);
        let t = now + Duration::from_secs(1);
        run(&mut a, &mut b, &mut now, t);

        let last_rtp = *b.rtp_sent[&b_call].last().unwrap();
        let &(written, due) = b.rtcp_sent.last().expect("an RTCP BYE");
        assert_eq!(written, hung_up);
        if waiting {
            assert!(last_rtp > hung_up, "a packet was written ahead");
            assert!(due >= last_rtp, "the BYE does not overtake it");
        } else {
            assert!(last_rtp <= hung_up, "nothing was written ahead");
            assert!(due <= written, "the BYE leaves at once");
        }
    }
}

#[test]
fn an_agent_whose_sip_queue_has_not_emptied_for_shed_after_refuses_new_calls_with_503() {
    let mut a = side("10.0.0.1:5060", false, 5);
    let mut b = side("10.0.0.2:5060", true, 6);
    let t0 = Instant::now();
    let mut now = t0;
    // B's adapter read its socket dry once; from the next datagram on it counts as behind
    // until it reports an empty queue again (as if every datagram had found the next one
    // already waiting).
    b.ua.sip_queue_empty();
    call_b(&mut a, &b, now);
    run(&mut a, &mut b, &mut now, t0 + Duration::from_millis(50));
    let answered = |s: &Side| {
        s.events
            .iter()
            .filter(|e| matches!(e, CallEventKind::Answered { .. }))
            .count()
    };
    assert_eq!(answered(&a), 1);
    // Past `SHED_AFTER` without an empty queue, with a backlog taken meanwhile: the next
    // call is refused, statelessly.
    now = t0 + parrot_ua::SHED_AFTER + Duration::from_millis(50);
    for _ in 0..b.ua.endpoint().config().shed_backlog {
        let crlf = bytes::Bytes::from_static(b"\r\n\r\n");
        b.ua.handle_sip_datagram(now, b.sip, a.sip, Transport::Udp, crlf);
    }
    call_b(&mut a, &b, now);
    run(&mut a, &mut b, &mut now, t0 + Duration::from_millis(400));
    assert!(
        a.events.contains(&CallEventKind::Failed(503)),
        "{:?}",
        a.events
    );
    assert_eq!(answered(&a), 1);
    assert_eq!(b.ua.endpoint().shed_requests(), 1);
    // Read dry again: calls are taken.
    b.ua.sip_queue_empty();
    call_b(&mut a, &b, now);
    run(&mut a, &mut b, &mut now, t0 + Duration::from_millis(450));
    assert_eq!(answered(&a), 2);
}

#[test]
fn an_answered_incoming_call_streams_from_the_ack_not_from_the_200() {
    let mut a = side("10.0.0.1:5060", false, 7);
    let mut b = side("10.0.0.2:5060", true, 8);
    let t0 = Instant::now();
    call_b(&mut a, &b, t0);
    // Everything but A's ACK reaches B, for 100 ms.
    let mut held_ack = None;
    let mut buf = vec![0u8; 2048];
    let mut b_rtp = 0;
    let mut now = t0;
    while now < t0 + Duration::from_millis(100) {
        for turn in 0..2 {
            let x_is_a = turn == 0;
            let (x, y) = if x_is_a {
                (&mut a, &mut b)
            } else {
                (&mut b, &mut a)
            };
            while let Some(out) = x.ua.poll_transmit(now, &mut buf) {
                match out {
                    Output::Sip(t) if x_is_a && t.payload.starts_with(b"ACK ") => {
                        held_ack = Some(t.payload)
                    }
                    Output::Sip(t) => {
                        y.ua.handle_sip_datagram(now, y.sip, x.sip, Transport::Udp, t.payload)
                    }
                    Output::Media { rtcp: false, .. } if !x_is_a => b_rtp += 1,
                    Output::Media { .. } => {}
                }
            }
            while let Some(e) = x.ua.poll_event() {
                if let UaEvent::OpenMedia { call } = e {
                    let port = x.next_port;
                    x.next_port += 2;
                    x.ua.media_ready(now, call, port);
                }
            }
        }
        now += Duration::from_millis(1);
        a.ua.handle_timeout(now);
        b.ua.handle_timeout(now);
    }
    let ack = held_ack.expect("A acknowledged B's 200");
    assert_eq!(b_rtp, 0, "B streamed before the ACK");
    // The ACK comes: B's media starts.
    b.ua.handle_sip_datagram(now, b.sip, a.sip, Transport::Udp, ack);
    let end = now + Duration::from_millis(100);
    while now < end {
        while let Some(out) = b.ua.poll_transmit(now, &mut buf) {
            if let Output::Media { rtcp: false, .. } = out {
                b_rtp += 1;
            }
        }
        now += Duration::from_millis(1);
        b.ua.handle_timeout(now);
    }
    assert!(b_rtp >= 4, "{b_rtp} packets in 100 ms after the ACK");
}
