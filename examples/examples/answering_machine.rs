//! The smallest complete answering machine: Parrot's two sans-IO cores driven by nothing but
//! `std::net::UdpSocket` and `set_read_timeout`. It answers every call, plays a WAV file
//! (default: the built-in welcome prompt) and hangs up when the caller does.
//!
//! ```sh
//! cargo run -p parrot-examples --example answering_machine -- 127.0.0.1:5080 assets/welcome.wav
//! ```
//!
//! The loop is the one every adapter runs: feed input to a core with `handle_*`, drain its
//! `poll_*` outputs until they are empty, then sleep until the earliest `poll_timeout`.

use bytes::Bytes;
use parrot_media_core::handler::{Actions, MediaAction, MediaHandler, StreamDirection};
use parrot_media_core::session::{MediaConfig, MediaEvent, MediaSession, Role};
use parrot_proto::{Body, DialogId, Endpoint, EndpointConfig, Event, Reply, Transport};
use rand_core::SeedableRng;
use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Plays one file when the media starts.
struct Greeter(String);

impl MediaHandler for Greeter {
    fn handle_stream_start(&mut self, _: &str, _: StreamDirection) -> Actions {
        MediaAction::play(self.0.clone()).into()
    }
}

struct Call {
    media: MediaSession<Greeter>,
    rtp: UdpSocket,
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let bind: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:5080".into())
        .parse()
        .map_err(|e| std::io::Error::new(ErrorKind::InvalidInput, format!("{e}")))?;
    let prompt = args.next().unwrap_or_else(|| "assets/welcome.wav".into());
    let sip = UdpSocket::bind(bind)?;
    let local = sip.local_addr()?;
    println!("answering on udp {local}, playing {prompt}");

    let config = EndpointConfig {
        local_addrs: vec![(Transport::Udp, local)],
        ..EndpointConfig::default()
    };
    // The cores draw randomness only from what they are given: seed it from the clock here.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64);
    let mut endpoint = Endpoint::new(config, seed);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let mut calls: HashMap<DialogId, Call> = HashMap::new();
    let mut buf = vec![0u8; 65_536];

    loop {
        let now = Instant::now();
        // 1. Drain the signalling core: send what it asks, act on what it reports.
        while let Some(t) = endpoint.poll_transmit() {
            sip.send_to(&t.payload, t.dst)?;
        }
        while let Some(event) = endpoint.poll_event() {
            match event {
                Event::IncomingCall {
                    dialog, tx, offer, ..
                } => {
                    let rtp = UdpSocket::bind(SocketAddr::new(local.ip(), 0))?;
                    rtp.set_nonblocking(true)?;
                    let port = rtp.local_addr()?.port();
                    let config = MediaConfig::new(local.ip(), port);
                    let greeter = Greeter(prompt.clone());
                    let Ok(mut media) = MediaSession::new(
                        format!("{dialog:?}"),
                        Role::Uas,
                        config,
                        greeter,
                        &mut rng,
                        now,
                    ) else {
                        let _ = endpoint.respond(now, tx, Reply::new(500));
                        continue;
                    };
                    let offer = offer.map(|b| String::from_utf8_lossy(&b.bytes).into_owned());
                    match offer.map(|o| media.process_offer(now, &o)) {
                        Some(Ok(answer)) => {
                            let reply = Reply::new(200).body(Body::sdp(Bytes::from(answer)));
                            if endpoint.respond(now, tx, reply).is_ok() {
                                println!("answered {dialog:?}");
                                calls.insert(dialog, Call { media, rtp });
                            }
                        }
                        _ => {
                            let _ = endpoint.respond(now, tx, Reply::new(488));
                        }
                    }
                }
                Event::CallEnded { dialog, reason } => {
                    if let Some(mut call) = calls.remove(&dialog) {
                        call.media.stop(now, "hang-up");
                        println!(
                            "{dialog:?} ended: {reason:?}, {} packets sent",
                            call.media.packets_sent()
                        );
                    }
                }
                _ => {}
            }
        }
        // 2. Drain every media session: packets out, file requests fulfilled from disk.
        let mut hangups = Vec::new();
        for (dialog, call) in calls.iter_mut() {
            let mut packet = [0u8; 1500];
            while let Some(t) = call.media.poll_transmit(now, &mut packet) {
                if let Some(dst) = t.destination {
                    let _ = call.rtp.send_to(&packet[..t.len], dst);
                }
            }
            while let Some(event) = call.media.poll_event() {
                match event {
                    MediaEvent::FileRequest { path } => match std::fs::read(&path) {
                        Ok(bytes) => call.media.handle_file(now, &path, &bytes),
                        Err(e) => call.media.handle_file_error(now, &path, &e.to_string()),
                    },
                    MediaEvent::PlayComplete { path } => println!("{dialog:?} played {path}"),
                    MediaEvent::HangupRequested { .. } => hangups.push(*dialog),
                    _ => {}
                }
            }
            while call.media.poll_audio(&mut [0i16; 960]).is_some() {}
            // Whatever RTP arrived since the last turn.
            while let Ok((n, _)) = call.rtp.recv_from(&mut packet) {
                call.media.handle_rtp(now, &packet[..n]);
            }
        }
        for d in hangups {
            let _ = endpoint.bye(now, d);
        }
        // 3. Sleep until the earliest deadline of any core, or until SIP arrives. RTP sockets
        //    are read on the next turn, so the wait is capped at one packet time.
        let deadline = calls
            .values()
            .filter_map(|c| c.media.poll_timeout())
            .chain(endpoint.poll_timeout())
            .min();
        let wait = deadline
            .map_or(Duration::from_millis(20), |d| {
                d.saturating_duration_since(Instant::now())
            })
            .clamp(Duration::from_millis(1), Duration::from_millis(20));
        sip.set_read_timeout(Some(wait))?;
        match sip.recv_from(&mut buf) {
            Ok((n, from)) => {
                let data = Bytes::copy_from_slice(&buf[..n]);
                endpoint.handle_datagram(Instant::now(), local, from, Transport::Udp, data);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(e),
        }
        // 4. Timers: early or spurious calls are harmless.
        let now = Instant::now();
        endpoint.handle_timeout(now);
        for call in calls.values_mut() {
            call.media.handle_timeout(now);
        }
    }
}
