//! The RTP fixed header, CSRC list, header extension and padding (RFC 3550 §5.1, §5.3.1), parsed
//! as a borrowed view and written into a caller's buffer: no allocation either way.

/// Why bytes are not a valid RTP packet (RFC 3550 §5.1, §A.1 validity checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtpError {
    /// Shorter than the 12-octet fixed header, or than the CSRC list / extension it announces.
    Truncated,
    /// Version field is not 2.
    BadVersion,
    /// The padding count is zero or larger than the payload.
    BadPadding,
    /// The output buffer is too small.
    BufferTooSmall,
    /// More than 15 CSRCs, an extension not a multiple of 4 octets, or padding of 0.
    InvalidHeader,
}

impl core::fmt::Display for RtpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for RtpError {}

/// A parsed RTP packet borrowing the datagram (RFC 3550 §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// M bit.
    pub marker: bool,
    /// PT, 7 bits.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence_number: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    csrc: &'a [u8],
    /// Header extension (RFC 3550 §5.3.1): the 16-bit profile-defined value and the data.
    pub extension: Option<(u16, &'a [u8])>,
    /// Payload without padding.
    pub payload: &'a [u8],
    /// Number of padding octets (including the count octet), 0 if the P bit is clear.
    pub padding: u8,
}

impl<'a> RtpPacket<'a> {
    /// Parses an RTP packet (RFC 3550 §5.1). Never panics.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        if buf.len() < 12 {
            return Err(RtpError::Truncated);
        }
        let b0 = buf[0];
        if b0 >> 6 != 2 {
            return Err(RtpError::BadVersion);
        }
        let has_padding = b0 & 0x20 != 0;
        let has_ext = b0 & 0x10 != 0;
        let cc = usize::from(b0 & 0x0F);
        let mut off = 12 + 4 * cc;
        if buf.len() < off {
            return Err(RtpError::Truncated);
        }
        let csrc = &buf[12..off];
        let extension = if has_ext {
            if buf.len() < off + 4 {
                return Err(RtpError::Truncated);
            }
            let profile = u16::from_be_bytes([buf[off], buf[off + 1]]);
            let words = usize::from(u16::from_be_bytes([buf[off + 2], buf[off + 3]]));
            let start = off + 4;
            let end = start + 4 * words;
            if buf.len() < end {
                return Err(RtpError::Truncated);
            }
            off = end;
            Some((profile, &buf[start..end]))
        } else {
            None
        };
        let mut end = buf.len();
        let mut padding = 0;
        if has_padding {
            let count = buf[buf.len() - 1];
            if count == 0 || usize::from(count) > end - off {
                return Err(RtpError::BadPadding);
            }
            padding = count;
            end -= usize::from(count);
        }
        Ok(RtpPacket {
            marker: buf[1] & 0x80 != 0,
            payload_type: buf[1] & 0x7F,
            sequence_number: u16::from_be_bytes([buf[2], buf[3]]),
            timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
            ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
            csrc,
            extension,
            payload: &buf[off..end],
            padding,
        })
    }

    /// Number of contributing sources.
    #[must_use]
    pub fn csrc_count(&self) -> usize {
        self.csrc.len() / 4
    }

    /// The contributing sources in order.
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        self.csrc
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
}

/// An RTP header to write (RFC 3550 §5.1); the payload follows it in the same buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtpHeader<'a> {
    /// M bit: first packet of a talkspurt (RFC 3551 §4.1) or of a DTMF event (RFC 4733 §2.5.1.1).
    pub marker: bool,
    /// PT, 7 bits.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence_number: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Up to 15 contributing sources.
    pub csrc: &'a [u32],
    /// Header extension: profile-defined value and data (a multiple of 4 octets).
    pub extension: Option<(u16, &'a [u8])>,
}

impl RtpHeader<'_> {
    /// Length of this header on the wire.
    #[must_use]
    pub fn len(&self) -> usize {
        12 + 4 * self.csrc.len() + self.extension.map_or(0, |(_, d)| 4 + d.len())
    }

    /// Always false: a header has at least 12 octets.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the header to the start of `buf`; returns its length. The P bit is left clear;
    /// [`write_packet`](Self::write_packet) sets it.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, RtpError> {
        if self.csrc.len() > 15 || self.payload_type > 127 {
            return Err(RtpError::InvalidHeader);
        }
        if let Some((_, d)) = self.extension {
            if d.len() % 4 != 0 || d.len() / 4 > usize::from(u16::MAX) {
                return Err(RtpError::InvalidHeader);
            }
        }
        let len = self.len();
        if buf.len() < len {
            return Err(RtpError::BufferTooSmall);
        }
        buf[0] = 0x80 | (u8::from(self.extension.is_some()) << 4) | self.csrc.len() as u8;
        buf[1] = (u8::from(self.marker) << 7) | self.payload_type;
        buf[2..4].copy_from_slice(&self.sequence_number.to_be_bytes());
        buf[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        buf[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        let mut off = 12;
        for c in self.csrc {
            buf[off..off + 4].copy_from_slice(&c.to_be_bytes());
            off += 4;
        }
        if let Some((profile, data)) = self.extension {
            buf[off..off + 2].copy_from_slice(&profile.to_be_bytes());
            buf[off + 2..off + 4].copy_from_slice(&((data.len() / 4) as u16).to_be_bytes());
            off += 4;
            buf[off..off + data.len()].copy_from_slice(data);
            off += data.len();
        }
        Ok(off)
    }

    /// Writes header, payload and `padding` octets (0 for none; the last padding octet holds the
    /// count, RFC 3550 §5.1); returns the packet length.
    pub fn write_packet(
        &self,
        buf: &mut [u8],
        payload: &[u8],
        padding: u8,
    ) -> Result<usize, RtpError> {
        let hl = self.write(buf)?;
        let total = hl + payload.len() + usize::from(padding);
        if buf.len() < total {
            return Err(RtpError::BufferTooSmall);
        }
        buf[hl..hl + payload.len()].copy_from_slice(payload);
        if padding > 0 {
            buf[0] |= 0x20;
            let p = hl + payload.len();
            buf[p..total - 1].fill(0);
            buf[total - 1] = padding;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_header_with_csrc_extension_and_padding() {
        let csrc = [1u32, 2];
        let ext = [9u8, 8, 7, 6];
        let h = RtpHeader {
            marker: true,
            payload_type: 96,
            sequence_number: 65535,
            timestamp: u32::MAX,
            ssrc: 7,
            csrc: &csrc,
            extension: Some((0xBEDE, &ext)),
        };
        let mut buf = [0u8; 64];
        let n = h.write_packet(&mut buf, b"abc", 5).unwrap();
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        assert!(p.marker);
        assert_eq!(p.payload, b"abc");
        assert_eq!(p.padding, 5);
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(p.extension, Some((0xBEDE, &ext[..])));
    }

    #[test]
    fn rejects_zero_padding_and_short_packets() {
        let mut buf = [0u8; 16];
        buf[0] = 0xA0;
        assert_eq!(RtpPacket::parse(&buf), Err(RtpError::BadPadding));
        assert_eq!(RtpPacket::parse(&buf[..11]), Err(RtpError::Truncated));
        buf[0] = 0x8F;
        assert_eq!(RtpPacket::parse(&buf), Err(RtpError::Truncated));
    }

    proptest! {
        #[test]
        fn rtp_write_then_parse_round_trips(
            marker: bool, pt in 0u8..128, seq: u16, ts: u32, ssrc: u32,
            csrc in proptest::collection::vec(any::<u32>(), 0..16),
            ext in proptest::option::of((any::<u16>(), proptest::collection::vec(any::<u8>(), 0..8).prop_map(|mut v| { v.truncate(v.len() / 4 * 4); v }))),
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            padding in 0u8..20,
        ) {
            let h = RtpHeader { marker, payload_type: pt, sequence_number: seq, timestamp: ts, ssrc, csrc: &csrc, extension: ext.as_ref().map(|(p, d)| (*p, &d[..])) };
            let mut buf = vec![0u8; 1500];
            let n = h.write_packet(&mut buf, &payload, padding).unwrap();
            let p = RtpPacket::parse(&buf[..n]).unwrap();
            prop_assert_eq!(p.marker, marker);
            prop_assert_eq!(p.payload_type, pt);
            prop_assert_eq!(p.sequence_number, seq);
            prop_assert_eq!(p.timestamp, ts);
            prop_assert_eq!(p.ssrc, ssrc);
            prop_assert_eq!(p.csrcs().collect::<Vec<_>>(), csrc.clone());
            prop_assert_eq!(p.extension.map(|(a, d)| (a, d.to_vec())), ext.clone());
            prop_assert_eq!(p.payload, &payload[..]);
            prop_assert_eq!(p.padding, padding);
        }

        #[test]
        fn rtp_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = RtpPacket::parse(&bytes);
        }
    }
}
