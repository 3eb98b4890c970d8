//! One incoming call's media as `parrot serve` sets it up: a config for a local port, a session
//! (as the user agent's `new_session`), the offer answered, the stream started, polled until its
//! first RTP packet, then stopped and dropped.

use parrot_media_core::handler::{DefaultHandler, MediaHandler};
use parrot_media_core::session::{MediaConfig, MediaSession, RecordMode, Role, TransmitKind};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

/// SIPp's uac scenario offer.
pub const SIPP_OFFER: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

/// A baresip-style offer: several codecs, telephone-event, rtcp-mux, ptime, sendrecv.
pub const BARESIP_OFFER: &str = "v=0\r\n\
o=- 1458395187 4106468934 IN IP4 192.168.1.20\r\n\
s=-\r\n\
c=IN IP4 192.168.1.20\r\n\
t=0 0\r\n\
m=audio 10392 RTP/AVP 96 97 9 0 8 101\r\n\
b=AS:64\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 stereo=1;sprop-stereo=1\r\n\
a=rtpmap:97 G7221/16000\r\n\
a=fmtp:97 bitrate=32000\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=rtcp-mux\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n\
a=label:1\r\n\
a=ssrc:2093711374 cname:8f1e4a7b-4b2c-4b83-9f0c-9b1a3d2c1e0f\r\n";

/// A small deterministic RNG (the user agent's is seeded once).
pub struct Rng(pub u64);

impl rand_core::RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 11
    }
    fn fill_bytes(&mut self, d: &mut [u8]) {
        rand_core::impls::fill_bytes_via_next(self, d)
    }
}

/// One setup; returns the answer's length and the RTP packet's, so nothing is optimised away.
pub fn one_setup(offer: &str, port: u16, rng: &mut Rng, now: Instant, buf: &mut [u8]) -> usize {
    let mut config = MediaConfig::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    config.record = RecordMode::Inbound;
    config.send_silence = true;
    let handler: Box<dyn MediaHandler + Send> = Box::new(DefaultHandler);
    let mut s = MediaSession::new("call-1", Role::Uas, config, handler, rng, now).expect("session");
    let answer = s.process_offer(now, offer).expect("answer");
    let mut total = answer.len();
    while s.poll_event().is_some() {}
    let at = s.first_packet_due().unwrap_or(now);
    let _ = s.poll_timeout();
    let mut t = at;
    'outer: for _ in 0..4 {
        s.handle_timeout(t);
        while let Some(tx) = s.poll_transmit(t, buf) {
            total += tx.len;
            if tx.kind == TransmitKind::Rtp {
                break 'outer;
            }
        }
        t += Duration::from_millis(20);
    }
    let _ = s.poll_timeout();
    s.stop(t, "BYE");
    while let Some(tx) = s.poll_transmit(t, buf) {
        total += tx.len;
    }
    while s.poll_event().is_some() {}
    total
}
