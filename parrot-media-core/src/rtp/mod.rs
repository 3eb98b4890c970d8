//! RTP and RTCP (RFC 3550), the audio/video profile (RFC 3551) and multiplexing RTP and RTCP on
//! one port (RFC 5761), plus the send pacer and the receive jitter buffer.

pub mod jitter;
pub mod pacer;
pub mod packet;
pub mod rtcp;
pub mod stats;

pub use packet::{RtpError, RtpHeader, RtpPacket};

/// RFC 5761 §4: a packet on a muxed port is RTCP when its second octet (RTCP packet type,
/// or RTP marker+payload type) is in 192..=223, which RTP payload types must avoid (64..=95).
#[must_use]
pub fn is_rtcp(packet: &[u8]) -> bool {
    packet.len() >= 2 && (192..=223).contains(&packet[1])
}
