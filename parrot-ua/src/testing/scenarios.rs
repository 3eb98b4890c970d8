//! The scenarios: two agents on loopback, real sockets and timers, the blocking API only.
//!
//! Each takes the start function of the server (the far end, which answers) and of the client
//! (the caller), and a base port: the server's RTP ports are `base..=base + 99`, the client's
//! `base + 100..=base + 199`. SIP binds port 0.

use std::time::{Duration, Instant};

use parrot_proto::Transport;
use parrot_transport::testing::WsSipClient;

use super::fixtures::*;
use super::Start;
use crate::{
    Agent, AudioDevice, CallEventKind, CallHandle, CallOptions, CallOutcome, EndedBy,
    MediaHandlerFactory, StreamKind, UasFactory,
};

/// How long any one scenario may take before it counts as hung.
const LIMIT: Duration = Duration::from_secs(90);

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

fn tcp() -> CallOptions {
    CallOptions {
        tcp: true,
        ..CallOptions::default()
    }
}

fn over(t: Transport) -> CallOptions {
    CallOptions {
        transport: Some(t),
        ..CallOptions::default()
    }
}

/// `sip:parrot@` the server's UDP address, or its TCP one.
fn uri_of(srv: &Agent, tcp: bool) -> String {
    if tcp {
        let at = srv.tcp_addr().expect("the server listens on TCP");
        format!("sip:parrot@{at};transport=tcp")
    } else {
        format!("sip:parrot@{}", srv.local_addr())
    }
}

/// The server (answering, with `uas` and `media`) and the client (calling; no handlers) of a
/// scenario, RTP from the base's two ranges.
fn agents(
    server: Start,
    client: Start,
    base: u16,
    uas: Option<UasFactory>,
    media: Option<MediaHandlerFactory>,
) -> (Agent, Agent) {
    let srv = ok("server", server(config(base), uas, media));
    let cli = ok("client", client(client_config(base + 100), None, None));
    (srv, cli)
}

/// A call from `cli` to `srv` over UDP (its audio from and to `device`), once answered.
fn answered_call(cli: &Agent, srv: &Agent, device: Option<Box<dyn AudioDevice>>) -> CallHandle {
    let uri = uri_of(srv, false);
    let mut call = ok(
        "call",
        cli.call_blocking(&uri, CallOptions::default(), device),
    );
    until_answered(&mut call);
    call
}

/// Waits at most `limit` for the end of a call that must fail: unanswered, with a status.
fn assert_fails_within(call: CallHandle, limit: Duration) {
    let out = within(limit, "the failing call's end", move || {
        call.wait_blocking()
    });
    assert!(!out.answered, "{out:?}");
    assert!(out.status.is_some(), "{out:?}");
}

/// The client calls the server (over TCP when `tcp`), sends DTMF, lets media flow for 1.5 s
/// and hangs up; both ends must agree on what happened.
fn call_with_media_and_dtmf(server: Start, client: Start, base: u16, tcp: bool) {
    let (mut srv, cli) = agents(server, client, base, None, tone_player());
    let srv_events = srv.take_events().expect("the events");
    let opts = if tcp {
        self::tcp()
    } else {
        CallOptions::default()
    };
    let mut call = ok("call", cli.call_blocking(&uri_of(&srv, tcp), opts, None));
    until_answered(&mut call);
    call.send_dtmf("5#");
    sleep_ms(1500);
    call.hangup();
    let out = call.wait_blocking();
    assert!(out.answered, "{out:?}");
    assert_eq!(out.ended_by, EndedBy::Local);
    assert!(out.media.rtp_received > 50, "{:?}", out.media);
    assert!(out.media.rtp_sent > 50, "{:?}", out.media);
    let mut digits = String::new();
    let mut ended = None;
    while let Some(ev) = next_within(&srv_events, Duration::from_secs(3)) {
        match ev.kind {
            CallEventKind::Dtmf(d) => digits.push(d),
            CallEventKind::Ended { by, media, .. } => {
                ended = Some((by, media));
                break;
            }
            _ => {}
        }
    }
    assert_eq!(digits, "5#");
    let (by, media) = ended.expect("the server saw the call end");
    assert_eq!(by, EndedBy::Remote);
    assert!(media.rtp_received > 50, "the server's view: {media:?}");
    cli.shutdown_blocking();
    srv.shutdown_blocking();
}

/// A call over UDP is answered, media flows both ways (more than 50 packets each in 1.5 s),
/// DTMF `5#` reaches the server, and each end knows who hung up.
pub fn call_is_answered_media_flows_and_dtmf_arrives(server: Start, client: Start, base: u16) {
    within(LIMIT, "a call over UDP", move || {
        call_with_media_and_dtmf(server, client, base, false)
    });
}

/// The same call as [`call_is_answered_media_flows_and_dtmf_arrives`], its SIP over TCP.
pub fn calls_work_over_tcp(server: Start, client: Start, base: u16) {
    within(LIMIT, "a call over TCP", move || {
        call_with_media_and_dtmf(server, client, base, true)
    });
}

/// REGISTER reports the expiry the registrar granted, OPTIONS the answer's status, Allow and
/// Supported.
pub fn register_and_options_report_the_answer(server: Start, client: Start, base: u16) {
    within(LIMIT, "REGISTER and OPTIONS", move || {
        let (srv, cli) = agents(server, client, base, Some(registrar()), None);
        let uri = format!("sip:{}", srv.local_addr());
        let granted = cli.register_blocking(&uri, "sip:alice@example.com", None, 300);
        assert_eq!(ok("REGISTER", granted), Ok(120));
        let o = ok("OPTIONS", cli.options_blocking(&uri)).expect("an answer");
        assert_eq!(o.status, 200);
        assert_eq!(o.allow, vec!["INVITE", "BYE"]);
        assert_eq!(o.supported, vec!["path"]);
        cli.shutdown_blocking();
        srv.shutdown_blocking();
    });
}

/// The server shuts down with a call up: it returns within 5 s and the caller sees a BYE.
pub fn shutdown_ends_live_calls_with_bye(server: Start, client: Start, base: u16) {
    within(LIMIT, "shutdown with a live call", move || {
        let (srv, cli) = agents(server, client, base, None, tone_player());
        let call = answered_call(&cli, &srv, None);
        let t = Instant::now();
        within(Duration::from_secs(5), "the server's shutdown", move || {
            srv.shutdown_blocking()
        });
        assert!(t.elapsed() < Duration::from_secs(5));
        let out = within(Duration::from_secs(5), "the BYE", move || {
            call.wait_blocking()
        });
        assert!(out.answered);
        assert_eq!(out.ended_by, EndedBy::Remote);
        cli.shutdown_blocking();
    });
}

/// The server's agent is dropped with a call up, without a shutdown: its loop ends the call
/// with BYE and stops, closing its SIP socket.
pub fn dropping_the_agent_ends_its_calls(server: Start, client: Start, base: u16) {
    within(LIMIT, "dropping the agent", move || {
        let (srv, cli) = agents(server, client, base, None, tone_player());
        let addr = srv.local_addr();
        let call = answered_call(&cli, &srv, None);
        drop(srv);
        let out = within(Duration::from_secs(5), "the BYE", move || {
            call.wait_blocking()
        });
        assert!(out.answered);
        assert_eq!(out.ended_by, EndedBy::Remote);
        // The loop stopped and closed its socket: the port can be bound again.
        let end = Instant::now() + Duration::from_secs(5);
        while std::net::UdpSocket::bind(addr).is_err() {
            assert!(Instant::now() < end, "the SIP socket stays open");
            sleep_ms(20);
        }
        cli.shutdown_blocking();
    });
}

/// The server's SIP handler panics on the second INVITE: that call fails with 500, the
/// calls before and after it are answered.
pub fn a_panicking_handler_ends_only_its_own_call(server: Start, client: Start, base: u16) {
    within(LIMIT, "a panicking handler", move || {
        let (srv, cli) = agents(server, client, base, Some(panic_on_second()), tone_player());
        let uri = uri_of(&srv, false);
        let mut outcomes = Vec::new();
        for _ in 0..3 {
            let mut call = ok(
                "call",
                cli.call_blocking(&uri, CallOptions::default(), None),
            );
            while let Some(ev) = call.next_event_blocking() {
                if matches!(ev.kind, CallEventKind::Answered { .. }) {
                    sleep_ms(200);
                    call.hangup();
                }
            }
            outcomes.push(call.wait_blocking());
        }
        assert!(outcomes[0].answered, "{:?}", outcomes[0]);
        assert!(!outcomes[1].answered, "{:?}", outcomes[1]);
        assert_eq!(outcomes[1].status, Some(500));
        assert!(
            outcomes[2].answered,
            "the endpoint survives the panic: {:?}",
            outcomes[2]
        );
        cli.shutdown_blocking();
        srv.shutdown_blocking();
    });
}

/// A TCP call to a port nobody listens on ends at once (no 32 s Timer B wait).
pub fn a_refused_tcp_connect_ends_the_call_at_once(client: Start, base: u16) {
    within(LIMIT, "a refused TCP connect", move || {
        let cli = ok("client", client(client_config(base), None, None));
        // A port nobody listens on (any more).
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a port");
        let uri = format!("sip:parrot@{closed};transport=tcp");
        let call = ok("call", cli.call_blocking(&uri, tcp(), None));
        assert_fails_within(call, Duration::from_secs(5));
        cli.shutdown_blocking();
    });
}

/// Twenty calls placed at once are all answered and each carries its media.
pub fn twenty_calls_at_once_each_with_its_media(server: Start, client: Start, base: u16) {
    within(LIMIT, "twenty calls", move || {
        let (srv, cli) = agents(server, client, base, None, tone_player());
        let uri = uri_of(&srv, false);
        let mut calls: Vec<_> = (0..20)
            .map(|_| {
                ok(
                    "call",
                    cli.call_blocking(&uri, CallOptions::default(), None),
                )
            })
            .collect();
        for call in &mut calls {
            until_answered(call);
        }
        sleep_ms(1000);
        for call in &calls {
            call.hangup();
        }
        for call in calls {
            let n = call.number();
            let out = call.wait_blocking();
            assert!(out.answered, "call {n}");
            assert_eq!(out.ended_by, EndedBy::Local, "call {n}");
            assert!(out.media.rtp_received > 25, "call {n}: {:?}", out.media);
        }
        cli.shutdown_blocking();
        srv.shutdown_blocking();
    });
}

/// The server has one RTP port pair. Four calls one after another each get it, and media
/// flows both ways on each: the sockets an ended call leaves (closed, or kept open for reuse)
/// serve the next call, at once (the second call starts straight after the hangup) or later.
pub fn one_rtp_port_pair_serves_call_after_call(server: Start, client: Start, base: u16) {
    within(LIMIT, "four calls on one RTP port pair", move || {
        let mut cfg = config(base);
        cfg.rtp_ports = base..=base + 1;
        let srv = ok("server", server(cfg, None, tone_player()));
        let cli = ok("client", client(client_config(base + 100), None, None));
        for k in 0..4 {
            let call = answered_call(&cli, &srv, None);
            sleep_ms(700);
            call.hangup();
            let out = call.wait_blocking();
            assert!(out.answered, "call {k}: {out:?}");
            assert!(out.media.rtp_received > 20, "call {k}: {:?}", out.media);
            assert!(out.media.rtp_sent > 20, "call {k}: {:?}", out.media);
            if k == 1 {
                sleep_ms(700);
            }
        }
        cli.shutdown_blocking();
        srv.shutdown_blocking();
    });
}

/// The client's call has `device` for audio; the server plays the 1 kHz tone and records what
/// it hears. `during` runs once the call has been up for `hold`, before the hangup. Returns
/// the far end's recording (8 kHz mono samples).
pub fn call_with_device(
    server: Start,
    client: Start,
    base: u16,
    device: Box<dyn AudioDevice>,
    hold: Duration,
    during: impl FnOnce() + Send + 'static,
) -> Vec<i16> {
    within(LIMIT, "a call with a device", move || {
        let dir = temp_dir(&format!("device-{base}"));
        let far_rec = dir.join("far-end.wav");
        let media = tone_player_recording(&far_rec);
        let (mut srv, cli) = agents(server, client, base, None, media);
        let srv_events = srv.take_events().expect("the events");
        let call = answered_call(&cli, &srv, Some(device));
        std::thread::sleep(hold);
        during();
        call.hangup();
        call.wait_blocking();
        far_end_recorded(&srv_events);
        cli.shutdown_blocking();
        srv.shutdown_blocking();
        let (rate, heard) = read_wav(&far_rec);
        assert_eq!(rate, 8000);
        let _ = std::fs::remove_dir_all(dir);
        heard
    })
}

/// Waits (at most 3 s) for a `Recorded` event; panics without one.
fn far_end_recorded(events: &async_channel::Receiver<crate::CallEvent>) {
    while let Some(ev) = next_within(events, Duration::from_secs(3)) {
        if matches!(ev.kind, CallEventKind::Recorded(_)) {
            return;
        }
    }
    panic!("the far end wrote no recording");
}

/// A fake sound card wired to a call in one line: what it captures (1 kHz) reaches the far
/// end, and the far end's tone reaches its speaker.
pub fn a_device_wired_in_one_line_sends_and_plays_audio(server: Start, client: Start, base: u16) {
    let (device, played) = FakeDevice::new();
    let heard = call_with_device(
        server,
        client,
        base,
        Box::new(device),
        Duration::from_millis(1500),
        || {},
    );
    assert!(heard.len() > 8000, "{} samples recorded", heard.len());
    let share = best_share(&heard, 1000.0);
    assert!(
        share > 0.5,
        "1 kHz dominates what the far end got: best share {share}"
    );
    let played = played.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(played.len() > 8000, "{} samples played", played.len());
    let share = best_share(&played, 1000.0);
    assert!(share > 0.5, "1 kHz reached the speaker: best share {share}");
}

/// The caller records the call to disk and plays a prompt from disk: the prompt is reported
/// done, its recording is reported written and holds the far end's tone, and the far end's
/// recording holds the prompt.
pub fn a_prompt_from_disk_is_played_and_the_call_is_recorded_to_disk(
    server: Start,
    client: Start,
    base: u16,
) {
    within(LIMIT, "files", move || {
        let dir = temp_dir(&format!("files-{base}"));
        let (far_rec, near_rec, beep) = (
            dir.join("far-end.wav"),
            dir.join("near-end.wav"),
            dir.join("beep.wav"),
        );
        write_wav(&beep, 8000, 1, &sine(1000.0, 0.3, 8000));
        let beep_path = beep.display().to_string();
        let (mut srv, cli) = agents(server, client, base, None, tone_player_recording(&far_rec));
        let srv_events = srv.take_events().expect("the events");
        let mut call = answered_call(&cli, &srv, None);
        call.record(&near_rec.display().to_string());
        call.play(&beep_path);
        // The prompt is read from disk, sent, and reported done.
        loop {
            match call.next_event_blocking().map(|e| e.kind) {
                Some(CallEventKind::PlayComplete(p)) => {
                    assert_eq!(p, beep_path);
                    break;
                }
                Some(_) => {}
                None => panic!("the call ended before the prompt did"),
            }
        }
        sleep_ms(300);
        call.hangup();
        let out = call.wait_blocking();
        let written = out.events.iter().find_map(|e| match &e.kind {
            CallEventKind::Recorded(p) => Some(p.clone()),
            _ => None,
        });
        assert_eq!(written.as_deref(), Some(near_rec.as_path()), "{out:?}");
        far_end_recorded(&srv_events);
        cli.shutdown_blocking();
        srv.shutdown_blocking();
        // Our recording holds the far end's tone; the far end's holds our beep.
        let (rate, near) = read_wav(&near_rec);
        assert_eq!(rate, 8000);
        assert!(near.len() > 2000, "{} samples", near.len());
        assert!(peak(&near) > 4000, "near end: peak {}", peak(&near));
        let (_, far) = read_wav(&far_rec);
        assert!(far.len() > 2000, "{} samples", far.len());
        assert!(
            peak(&far) > 4000,
            "the beep reached the far end: peak {}",
            peak(&far)
        );
        let _ = std::fs::remove_dir_all(dir);
    });
}

/// Calls `srv` on its `kind` listener (TLS, WS or WSS), hangs up 400 ms after the answer.
fn call_over(cli: &Agent, srv: &Agent, kind: StreamKind) -> CallOutcome {
    let at = srv.stream_addr(kind).expect("the server listens");
    let t = kind.transport();
    let uri = format!(
        "sip:parrot@{at};transport={}",
        format!("{t:?}").to_lowercase()
    );
    let mut call = ok("call", cli.call_blocking(&uri, over(t), None));
    while let Some(ev) = call.next_event_blocking() {
        if matches!(ev.kind, CallEventKind::Answered { .. }) {
            sleep_ms(400);
            call.hangup();
        }
    }
    call.wait_blocking()
}

/// The client calls the server (with a generated certificate the client pins) once over
/// each of `kinds`: every call answered, media flowing, hung up by the client.
fn secure_calls(server: Start, client: Start, base: u16, kinds: &'static [StreamKind]) {
    within(LIMIT, &format!("calls over {kinds:?}"), move || {
        let (cfg, trust) = secure_server_config(base);
        let srv = ok("server", server(cfg, None, tone_player()));
        let cc = secure_client_config(base + 100, trust);
        let cli = ok("client", client(cc, None, None));
        for &kind in kinds {
            let out = call_over(&cli, &srv, kind);
            assert!(out.answered, "{kind:?}: {out:?}");
            assert_eq!(out.ended_by, EndedBy::Local, "{kind:?}");
            assert!(out.media.rtp_received > 5, "{kind:?}: {:?}", out.media);
        }
        cli.shutdown_blocking();
        srv.shutdown_blocking();
    });
}

/// A call over TLS (generated certificate, pinned by the client) is answered and its media
/// flows.
pub fn a_call_over_tls_is_answered_and_its_media_flows(server: Start, client: Start, base: u16) {
    secure_calls(server, client, base, &[StreamKind::Tls]);
}

/// An agent calls another over WS and over WSS: both answered, media flows.
pub fn calls_over_ws_and_wss_are_answered(server: Start, client: Start, base: u16) {
    secure_calls(server, client, base, &[StreamKind::Ws, StreamKind::Wss]);
}

/// A call to a TLS server whose certificate the client does not trust fails (with a status),
/// within 40 s.
pub fn a_call_to_an_untrusted_tls_server_fails(server: Start, client: Start, base: u16) {
    within(LIMIT, "an untrusted TLS server", move || {
        let (cfg, _) = secure_server_config(base);
        let srv = ok("server", server(cfg, None, None));
        let other = generate_other_trust();
        let cli = ok(
            "client",
            client(secure_client_config(base + 100, other), None, None),
        );
        let at = srv.stream_addr(StreamKind::Tls).expect("a TLS listener");
        let uri = format!("sip:parrot@{at};transport=tls");
        let call = ok("call", cli.call_blocking(&uri, over(Transport::Tls), None));
        assert_fails_within(call, Duration::from_secs(40));
        cli.shutdown_blocking();
        srv.shutdown_blocking();
    });
}

/// Trust in a certificate nobody uses.
fn generate_other_trust() -> crate::TlsClient {
    let other = crate::generate_self_signed(&["127.0.0.1"]).expect("a certificate");
    other.pinned_client().expect("a TLS client config")
}

/// An INVITE as a browser softphone would send it over WS or WSS.
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

/// A WebSocket client standing in for a browser softphone (parrot-transport's
/// `WsSipClient`) places a call over WS and over WSS: 200 OK with the right Via and an SDP
/// answer.
pub fn a_websocket_client_places_a_call_over_ws_and_wss(server: Start, base: u16) {
    within(LIMIT, "a WebSocket client", move || {
        let (cfg, trust) = secure_server_config(base);
        let srv = ok("server", server(cfg, None, None));
        let ws = srv.stream_addr(StreamKind::Ws).expect("a WS listener");
        let wss = srv.stream_addr(StreamKind::Wss).expect("a WSS listener");

        let plain = ok("WS connect", WsSipClient::connect(ws, "/"));
        let secure = WsSipClient::connect_secure(wss, &trust, "127.0.0.1", "/");
        for (mut c, transport) in [(plain, "WS"), (ok("WSS connect", secure), "WSS")] {
            let local = ok("the client's address", c.local_addr());
            let invite = invite_over_ws(local, transport, &transport.to_lowercase());
            ok("sending the INVITE", c.send(invite.as_bytes()));
            let answer = final_response(&mut c);
            assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
            let via = format!("SIP/2.0/{transport} ");
            assert!(answer.contains(&via), "the Via names {transport}: {answer}");
            assert!(answer.contains("m=audio"), "an SDP answer: {answer}");
        }
        srv.shutdown_blocking();
    });
}

/// CPU time (user + system, in clock ticks of 1/100 s) of this process's `parrot-sip`
/// threads, from `/proc`.
#[cfg(target_os = "linux")]
fn sip_thread_ticks() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter_map(|stat| {
            let (name, fields) = stat.rsplit_once(')')?;
            name.ends_with("(parrot-sip").then(|| {
                // utime and stime are the 14th and 15th fields; `fields` starts at the 3rd.
                (fields.split_whitespace())
                    .skip(11)
                    .take(2)
                    .filter_map(|x| x.parse::<u64>().ok())
                    .sum::<u64>()
            })
        })
        .sum()
}

/// The share of one core this process's `parrot-sip` threads use over `span`.
#[cfg(target_os = "linux")]
pub fn sip_threads_core_share(span: Duration) -> f64 {
    let (start, before) = (Instant::now(), sip_thread_ticks());
    std::thread::sleep(span);
    let used = sip_thread_ticks().saturating_sub(before) as f64 / 100.0;
    used / start.elapsed().as_secs_f64()
}

/// The agents' loops sleep between deadlines: two idle agents use under 5% of a core, and
/// with a call in progress under 50% (a loop whose timer or wake-up fired early and spun
/// would use all of it). Linux only (CPU time from `/proc`); run it in a test binary of its
/// own, so that only these agents' threads are measured.
#[cfg(target_os = "linux")]
pub fn the_loop_sleeps_between_deadlines(server: Start, client: Start, base: u16) {
    within(LIMIT, "idle agents", move || {
        let (srv, cli) = agents(server, client, base, None, None);
        let idle = sip_threads_core_share(Duration::from_secs(1));
        assert!(idle < 0.05, "idle: {:.0}% of a core", idle * 100.0);
        let call = answered_call(&cli, &srv, None);
        let busy = sip_threads_core_share(Duration::from_millis(1500));
        call.hangup();
        let out = call.wait_blocking();
        assert!(out.media.rtp_received > 50, "{:?}", out.media);
        eprintln!(
            "{} and {}: parrot-sip threads use {:.1}% of a core idle, {:.1}% with a call",
            srv.runtime(),
            cli.runtime(),
            idle * 100.0,
            busy * 100.0
        );
        assert!(busy < 0.5, "one call: {:.0}% of a core", busy * 100.0);
        cli.shutdown_blocking();
        srv.shutdown_blocking();
    });
}
