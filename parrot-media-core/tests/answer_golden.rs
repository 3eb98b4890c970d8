//! The SDP answers `process_offer` writes (RFC 3264 §6), byte for byte, for offers from
//! common user agents: SIPp, baresip, a two-stream offer with a rejected video line, a held
//! call, and LF-only line endings.

use parrot_media_core::handler::DefaultHandler;
use parrot_media_core::session::{MediaConfig, MediaSession, Role};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

const OFFERS: [&str; 5] = [
    "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
    "v=0\r\no=- 1458395187 4106468934 IN IP4 192.168.1.20\r\ns=-\r\nc=IN IP4 192.168.1.20\r\nt=0 0\r\nm=audio 10392 RTP/AVP 96 97 9 0 8 101\r\nb=AS:64\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 stereo=1;sprop-stereo=1\r\na=rtpmap:97 G7221/16000\r\na=fmtp:97 bitrate=32000\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=rtcp-mux\r\na=ptime:20\r\na=sendrecv\r\na=label:1\r\n",
    "v=0\r\no=alice 1 2 IN IP6 2001:db8::5\r\ns=two\r\nc=IN IP6 2001:db8::5\r\nt=0 0\r\na=ptime:30\r\nm=video 5002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\nm=audio 5000 RTP/AVP 8 0 100\r\na=rtpmap:100 telephone-event/8000\r\na=rtcp:5007 IN IP6 2001:db8::6\r\nm=audio 5004 RTP/AVP 0\r\n",
    "v=0\r\no=bob 7 8 IN IP4 10.1.1.1\r\ns=held\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\na=sendonly\r\nm=audio 7000 RTP/AVP 18 8\r\na=ptime:40\r\n",
    "v=0\no=- 5 5 IN IP4 10.2.2.2\ns=-\nt=0 0\nm=audio 9000 RTP/AVP 0 101\nc=IN IP4 10.2.2.3\na=rtpmap:101 telephone-event/8000\na=recvonly\n",
];

fn answers() -> Vec<String> {
    let t0 = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    OFFERS
        .iter()
        .map(|offer| {
            let config = MediaConfig::new("192.0.2.9".parse().unwrap(), 30000);
            let mut s =
                MediaSession::new("g", Role::Uas, config, DefaultHandler, &mut rng, t0).unwrap();
            let answer = s.process_offer(t0, offer).unwrap();
            format!(
                "{answer:?}\n{:?}\n{:?}\n{:?}\n",
                s.negotiated(),
                s.local_sdp(),
                s.remote_sdp()
            )
        })
        .collect()
}

/// What the answers, negotiated streams and stored descriptions were before the answer was
/// written without `SessionDescription` (recorded from that implementation).
const GOLDEN: &str = include_str!("data/answer_golden.txt");

#[test]
fn answers_negotiation_and_stored_descriptions_match_the_recorded_ones() {
    let got = answers().concat();
    if std::env::var_os("PARROT_WRITE_GOLDEN").is_some() {
        std::fs::write("tests/data/answer_golden.txt", &got).unwrap();
    }
    for (i, (g, w)) in got.lines().zip(GOLDEN.lines()).enumerate() {
        assert_eq!(g, w, "line {i}");
    }
    assert_eq!(got, GOLDEN);
}
