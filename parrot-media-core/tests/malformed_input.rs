//! A panic is a bug, never bad input: every parser and the session's inputs are fed garbage,
//! truncations and bit flips of valid packets.

use parrot_media_core::handler::DefaultHandler;
use parrot_media_core::rtp::rtcp::RtcpCompound;
use parrot_media_core::rtp::RtpPacket;
use parrot_media_core::sdp::SessionDescription;
use parrot_media_core::session::{MediaConfig, MediaSession, Role};
use parrot_media_core::wav::decode_wav;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn rtp_header_examples_parse_as_documented() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../conformance/media/rtp_header_examples.tsv");
    let text = std::fs::read_to_string(path).unwrap();
    let mut n = 0;
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let bytes = hex(f[1]);
        let p = RtpPacket::parse(&bytes).unwrap();
        assert_eq!(u8::from(p.padding > 0), f[3].parse::<u8>().unwrap());
        assert_eq!(u8::from(p.extension.is_some()), f[4].parse::<u8>().unwrap());
        assert_eq!(p.csrc_count(), f[5].parse::<usize>().unwrap());
        assert_eq!(u8::from(p.marker), f[6].parse::<u8>().unwrap());
        assert_eq!(p.payload_type, f[7].parse::<u8>().unwrap());
        assert_eq!(p.sequence_number, f[8].parse::<u16>().unwrap());
        assert_eq!(p.timestamp, f[9].parse::<u32>().unwrap());
        assert_eq!(p.ssrc, u32::from_str_radix(f[10], 16).unwrap());
        // Writing the parsed fields back gives the same bytes.
        let csrc: Vec<u32> = p.csrcs().collect();
        let h = parrot_media_core::rtp::RtpHeader {
            marker: p.marker,
            payload_type: p.payload_type,
            sequence_number: p.sequence_number,
            timestamp: p.timestamp,
            ssrc: p.ssrc,
            csrc: &csrc,
            extension: p.extension,
        };
        let mut out = vec![0u8; bytes.len()];
        let len = h.write_packet(&mut out, p.payload, p.padding).unwrap();
        assert_eq!(&out[..len], &bytes[..]);
        n += 1;
    }
    assert!(n >= 4);
}

#[test]
fn random_bytes_and_mutations_never_panic() {
    let t0 = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut s = MediaSession::new(
        "m",
        Role::Uas,
        MediaConfig::new("192.0.2.1".parse().unwrap(), 20000),
        DefaultHandler,
        &mut rng,
        t0,
    )
    .unwrap();
    let offer = "v=0\r\no=- 1 1 IN IP4 198.51.100.9\r\ns=-\r\nc=IN IP4 198.51.100.9\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=rtcp-mux\r\n";
    s.process_offer(t0, offer).unwrap();
    let valid_rtp = hex("80e5123400001f40deadbeef010a0190");
    let mut valid_rtcp = [0u8; 200];
    let n = {
        let mut w = parrot_media_core::rtp::rtcp::RtcpWriter::new(&mut valid_rtcp);
        w.receiver_report(1, &[Default::default()]).unwrap();
        w.sdes_cname(1, b"x@y").unwrap();
        w.bye(&[1], Some(b"bye")).unwrap();
        w.len()
    };
    let valid_rtcp = valid_rtcp[..n].to_vec();
    let mut buf = [0u8; 1500];
    for i in 0..20_000u32 {
        let now = t0 + Duration::from_millis(u64::from(i));
        let len = (rng.next_u32() % 120) as usize;
        let mut bytes = vec![0u8; len];
        rng.fill_bytes(&mut bytes);
        if i % 3 == 0 {
            bytes = if i % 2 == 0 {
                valid_rtp.clone()
            } else {
                valid_rtcp.clone()
            };
            let k = (rng.next_u32() as usize) % bytes.len();
            bytes[k] ^= 1 << (rng.next_u32() % 8);
            bytes.truncate((rng.next_u32() as usize) % (bytes.len() + 1));
        }
        let _ = RtpPacket::parse(&bytes);
        if let Ok(c) = RtcpCompound::parse(&bytes) {
            let _ = c.packets().count();
        }
        let _ = decode_wav(&bytes);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = SessionDescription::parse(text);
            let _ = s.process_offer(now, text);
        }
        s.handle_rtp(now, &bytes);
        s.handle_rtcp(now, &bytes);
        s.handle_timeout(now);
        while s.poll_transmit(now, &mut buf).is_some() {}
        while s.poll_event().is_some() {}
    }
    assert!(s.malformed_received() > 0);
}
