//! What the integration tests share: a configuration with a built-in tone, a media handler
//! that plays it, and blocking waits with a limit.
#![allow(dead_code)]

use parrot_media_core::handler::{Actions, MediaAction, MediaHandler, StreamDirection};
use parrot_mio::parrot_ua::async_channel::Receiver;
use parrot_mio::{AgentConfig, CallEvent, CallEventKind, CallHandle, MediaHandlerFactory};
use std::time::{Duration, Instant};

/// A 1 kHz tone, offered to calls as `builtin:tone`.
pub const TONE: &[u8] = include_bytes!("../../../assets/tone1k.wav");

/// Plays the tone as soon as media starts.
pub struct PlayTone;
impl MediaHandler for PlayTone {
    fn handle_stream_start(&mut self, _: &str, _: StreamDirection) -> Actions {
        MediaAction::play("builtin:tone").into()
    }
}

/// Every call plays the tone.
pub fn tone_player() -> Option<MediaHandlerFactory> {
    Some(Box::new(|_, _| {
        Box::new(PlayTone) as Box<dyn MediaHandler + Send>
    }))
}

/// Loopback, RTP ports `ports`, the tone built in.
pub fn config(ports: (u16, u16)) -> AgentConfig {
    let mut c = AgentConfig::new("127.0.0.1:0".parse().unwrap());
    c.rtp_ports = ports.0..=ports.1;
    c.builtin_files = vec![("builtin:tone".into(), bytes::Bytes::from_static(TONE))];
    c
}

/// The next event within `limit`, polling the channel (a blocking receive has no timeout).
pub fn next_within(rx: &Receiver<CallEvent>, limit: Duration) -> Option<CallEvent> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Ok(ev) = rx.try_recv() {
            return Some(ev);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Waits for the call's answer.
pub fn until_answered(call: &mut CallHandle) {
    loop {
        let ev = call
            .next_event_blocking()
            .expect("the call ended unanswered");
        if matches!(ev.kind, CallEventKind::Answered { .. }) {
            return;
        }
    }
}
