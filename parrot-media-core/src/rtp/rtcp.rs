//! RTCP compound packets (RFC 3550 §6): sender report (§6.4.1), receiver report (§6.4.2), source
//! description with CNAME (§6.5), goodbye (§6.6); the header validity checks of §A.2; and the
//! transmission interval of §6.3 / §A.7.
//!
//! Parsing yields borrowed views ([`RtcpPacket`]); writing goes through [`RtcpWriter`] into a
//! caller's buffer. Neither allocates.

/// RTCP packet types (RFC 3550 §12.1).
pub mod packet_type {
    /// Sender report.
    pub const SR: u8 = 200;
    /// Receiver report.
    pub const RR: u8 = 201;
    /// Source description.
    pub const SDES: u8 = 202;
    /// Goodbye.
    pub const BYE: u8 = 203;
    /// Application-defined.
    pub const APP: u8 = 204;
}

/// SDES item type CNAME (RFC 3550 §6.5.1).
pub const SDES_CNAME: u8 = 1;

/// Why bytes are not a valid RTCP compound packet (RFC 3550 §A.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtcpError {
    /// A header or body is cut short, or the length fields do not add up to the datagram.
    Truncated,
    /// Version is not 2.
    BadVersion,
    /// The first packet is not SR or RR, or padding appears before the last packet.
    BadCompound,
    /// A body is inconsistent with its count field.
    BadBody,
    /// The output buffer is too small.
    BufferTooSmall,
}

impl core::fmt::Display for RtcpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for RtcpError {}

/// A reception report block (RFC 3550 §6.4.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the previous report, fixed point /256.
    pub fraction_lost: u8,
    /// Cumulative packets lost, 24-bit signed (duplicates can make it negative).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles << 16 | max_seq).
    pub extended_highest_seq: u32,
    /// Interarrival jitter in timestamp units (§A.8).
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received from this source (LSR).
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s (DLSR).
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    fn parse(b: &[u8]) -> ReportBlock {
        let lost = u32::from_be_bytes([0, b[5], b[6], b[7]]);
        // Sign-extend the 24-bit count.
        let cumulative_lost = ((lost << 8) as i32) >> 8;
        ReportBlock {
            ssrc: be32(&b[0..4]),
            fraction_lost: b[4],
            cumulative_lost,
            extended_highest_seq: be32(&b[8..12]),
            jitter: be32(&b[12..16]),
            last_sr: be32(&b[16..20]),
            delay_since_last_sr: be32(&b[20..24]),
        }
    }

    fn write(&self, b: &mut [u8]) {
        b[0..4].copy_from_slice(&self.ssrc.to_be_bytes());
        b[4] = self.fraction_lost;
        let lost = self.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32;
        b[5..8].copy_from_slice(&lost.to_be_bytes()[1..4]);
        b[8..12].copy_from_slice(&self.extended_highest_seq.to_be_bytes());
        b[12..16].copy_from_slice(&self.jitter.to_be_bytes());
        b[16..20].copy_from_slice(&self.last_sr.to_be_bytes());
        b[20..24].copy_from_slice(&self.delay_since_last_sr.to_be_bytes());
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Sender information of an SR (RFC 3550 §6.4.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SenderInfo {
    /// 64-bit NTP timestamp (seconds since 1900 in the high 32 bits).
    pub ntp_timestamp: u64,
    /// RTP timestamp corresponding to the same instant.
    pub rtp_timestamp: u32,
    /// Packets sent since starting transmission.
    pub packet_count: u32,
    /// Payload octets sent since starting transmission.
    pub octet_count: u32,
}

/// Report blocks borrowed from a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportBlocks<'a>(&'a [u8]);

impl<'a> ReportBlocks<'a> {
    /// The blocks in order.
    pub fn iter(&self) -> impl Iterator<Item = ReportBlock> + 'a {
        self.0.chunks_exact(24).map(ReportBlock::parse)
    }
    /// Number of blocks.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len() / 24
    }
    /// True when there is no block.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// SDES chunks borrowed from a packet (RFC 3550 §6.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdesChunks<'a> {
    body: &'a [u8],
    count: u8,
}

/// One SDES chunk: a source and its items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdesChunk<'a> {
    /// The source described.
    pub ssrc: u32,
    items: &'a [u8],
}

impl<'a> SdesChunk<'a> {
    /// The `(type, value)` items of this chunk.
    pub fn items(&self) -> impl Iterator<Item = (u8, &'a [u8])> + 'a {
        let mut rest = self.items;
        core::iter::from_fn(move || {
            let (&t, r) = rest.split_first()?;
            if t == 0 {
                return None;
            }
            let (&l, r) = r.split_first()?;
            let v = r.get(..usize::from(l))?;
            rest = &r[usize::from(l)..];
            Some((t, v))
        })
    }
    /// The CNAME item, if present.
    #[must_use]
    pub fn cname(&self) -> Option<&'a [u8]> {
        self.items().find(|(t, _)| *t == SDES_CNAME).map(|(_, v)| v)
    }
}

/// Splits one chunk off `body`; `None` if malformed.
fn split_chunk(body: &[u8]) -> Option<(SdesChunk<'_>, &[u8])> {
    let ssrc = be32(body.get(0..4)?);
    let mut off = 4;
    loop {
        let t = *body.get(off)?;
        if t == 0 {
            break;
        }
        let l = usize::from(*body.get(off + 1)?);
        off += 2 + l;
        if off > body.len() {
            return None;
        }
    }
    // The null terminator plus padding to the next 32-bit boundary.
    let end = (off + 4) & !3;
    if end > body.len() {
        return None;
    }
    Some((
        SdesChunk {
            ssrc,
            items: &body[4..off],
        },
        &body[end..],
    ))
}

impl<'a> SdesChunks<'a> {
    /// The chunks in order.
    pub fn iter(&self) -> impl Iterator<Item = SdesChunk<'a>> + 'a {
        let mut rest = self.body;
        let mut left = self.count;
        core::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            let (c, r) = split_chunk(rest)?;
            rest = r;
            Some(c)
        })
    }
}

/// One packet of a compound RTCP packet, borrowing the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtcpPacket<'a> {
    /// Sender report (§6.4.1).
    SenderReport {
        /// Sender's SSRC.
        ssrc: u32,
        /// Sender information.
        info: SenderInfo,
        /// Reception reports.
        reports: ReportBlocks<'a>,
    },
    /// Receiver report (§6.4.2).
    ReceiverReport {
        /// Reporter's SSRC.
        ssrc: u32,
        /// Reception reports.
        reports: ReportBlocks<'a>,
    },
    /// Source description (§6.5).
    SourceDescription(SdesChunks<'a>),
    /// Goodbye (§6.6).
    Goodbye {
        /// The sources leaving, 4 octets each.
        sources: &'a [u8],
        /// Optional reason for leaving.
        reason: Option<&'a [u8]>,
    },
    /// Any other type (APP, feedback, XR...), kept as its body.
    Other {
        /// Packet type.
        packet_type: u8,
        /// The 5-bit count / subtype field.
        count: u8,
        /// The body after the 4-octet header, without padding.
        body: &'a [u8],
    },
}

impl<'a> RtcpPacket<'a> {
    /// The SSRCs in a BYE.
    pub fn bye_sources(sources: &'a [u8]) -> impl Iterator<Item = u32> + 'a {
        sources.chunks_exact(4).map(be32)
    }
}

/// A validated compound RTCP packet (RFC 3550 §6.1, checks of §A.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtcpCompound<'a>(&'a [u8]);

impl<'a> RtcpCompound<'a> {
    /// Validates `buf` as a compound packet: version 2 everywhere, the first packet SR or RR
    /// without padding, padding only on the last packet, lengths that add up to the datagram,
    /// and bodies consistent with their counts. Never panics.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtcpError> {
        if buf.len() < 4 {
            return Err(RtcpError::Truncated);
        }
        if buf[0] & 0x20 != 0 || !matches!(buf[1], packet_type::SR | packet_type::RR) {
            return Err(RtcpError::BadCompound);
        }
        let mut off = 0;
        while off < buf.len() {
            let (_, next) = parse_one(buf, off)?;
            if buf[off] & 0x20 != 0 && next != buf.len() {
                return Err(RtcpError::BadCompound);
            }
            off = next;
        }
        Ok(RtcpCompound(buf))
    }

    /// The packets in order.
    pub fn packets(&self) -> impl Iterator<Item = RtcpPacket<'a>> + 'a {
        let buf = self.0;
        let mut off = 0;
        core::iter::from_fn(move || {
            if off >= buf.len() {
                return None;
            }
            let (p, next) = parse_one(buf, off).ok()?;
            off = next;
            Some(p)
        })
    }
}

fn parse_one(buf: &[u8], off: usize) -> Result<(RtcpPacket<'_>, usize), RtcpError> {
    let h = buf.get(off..off + 4).ok_or(RtcpError::Truncated)?;
    if h[0] >> 6 != 2 {
        return Err(RtcpError::BadVersion);
    }
    let count = h[0] & 0x1F;
    let pt = h[1];
    let len = 4 * (usize::from(u16::from_be_bytes([h[2], h[3]])) + 1);
    let pkt = buf.get(off..off + len).ok_or(RtcpError::Truncated)?;
    let mut body = &pkt[4..];
    if h[0] & 0x20 != 0 {
        let pad = usize::from(*body.last().ok_or(RtcpError::BadBody)?);
        if pad == 0 || pad > body.len() {
            return Err(RtcpError::BadBody);
        }
        body = &body[..body.len() - pad];
    }
    let n = usize::from(count);
    let p = match pt {
        packet_type::SR => {
            if body.len() < 24 + 24 * n {
                return Err(RtcpError::BadBody);
            }
            RtcpPacket::SenderReport {
                ssrc: be32(&body[0..4]),
                info: SenderInfo {
                    ntp_timestamp: (u64::from(be32(&body[4..8])) << 32)
                        | u64::from(be32(&body[8..12])),
                    rtp_timestamp: be32(&body[12..16]),
                    packet_count: be32(&body[16..20]),
                    octet_count: be32(&body[20..24]),
                },
                reports: ReportBlocks(&body[24..24 + 24 * n]),
            }
        }
        packet_type::RR => {
            if body.len() < 4 + 24 * n {
                return Err(RtcpError::BadBody);
            }
            RtcpPacket::ReceiverReport {
                ssrc: be32(&body[0..4]),
                reports: ReportBlocks(&body[4..4 + 24 * n]),
            }
        }
        packet_type::SDES => {
            let mut rest = body;
            for _ in 0..n {
                rest = split_chunk(rest).ok_or(RtcpError::BadBody)?.1;
            }
            RtcpPacket::SourceDescription(SdesChunks { body, count })
        }
        packet_type::BYE => {
            let sources = body.get(..4 * n).ok_or(RtcpError::BadBody)?;
            let rest = &body[4 * n..];
            let reason = match rest.split_first() {
                Some((&l, r)) if l > 0 => Some(r.get(..usize::from(l)).ok_or(RtcpError::BadBody)?),
                _ => None,
            };
            RtcpPacket::Goodbye { sources, reason }
        }
        _ => RtcpPacket::Other {
            packet_type: pt,
            count,
            body,
        },
    };
    Ok((p, off + len))
}

/// Writes a compound RTCP packet into a caller's buffer, one packet after another.
#[derive(Debug)]
pub struct RtcpWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> RtcpWriter<'b> {
    /// Starts writing at the beginning of `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        RtcpWriter { buf, len: 0 }
    }

    fn header(&mut self, count: u8, pt: u8, body_len: usize) -> Result<&mut [u8], RtcpError> {
        let total = 4 + body_len;
        if count > 31 || total % 4 != 0 || total / 4 - 1 > usize::from(u16::MAX) {
            return Err(RtcpError::BadBody);
        }
        let out = self
            .buf
            .get_mut(self.len..self.len + total)
            .ok_or(RtcpError::BufferTooSmall)?;
        out[0] = 0x80 | count;
        out[1] = pt;
        out[2..4].copy_from_slice(&((total / 4 - 1) as u16).to_be_bytes());
        self.len += total;
        Ok(&mut out[4..])
    }

    /// Appends a sender report (§6.4.1) with up to 31 report blocks.
    pub fn sender_report(
        &mut self,
        ssrc: u32,
        info: &SenderInfo,
        reports: &[ReportBlock],
    ) -> Result<(), RtcpError> {
        let b = self.header(
            reports.len().min(32) as u8,
            packet_type::SR,
            24 + 24 * reports.len(),
        )?;
        b[0..4].copy_from_slice(&ssrc.to_be_bytes());
        b[4..12].copy_from_slice(&info.ntp_timestamp.to_be_bytes());
        b[12..16].copy_from_slice(&info.rtp_timestamp.to_be_bytes());
        b[16..20].copy_from_slice(&info.packet_count.to_be_bytes());
        b[20..24].copy_from_slice(&info.octet_count.to_be_bytes());
        for (r, chunk) in reports.iter().zip(b[24..].chunks_exact_mut(24)) {
            r.write(chunk);
        }
        Ok(())
    }

    /// Appends a receiver report (§6.4.2) with up to 31 report blocks.
    pub fn receiver_report(&mut self, ssrc: u32, reports: &[ReportBlock]) -> Result<(), RtcpError> {
        let b = self.header(
            reports.len().min(32) as u8,
            packet_type::RR,
            4 + 24 * reports.len(),
        )?;
        b[0..4].copy_from_slice(&ssrc.to_be_bytes());
        for (r, chunk) in reports.iter().zip(b[4..].chunks_exact_mut(24)) {
            r.write(chunk);
        }
        Ok(())
    }

    /// Appends an SDES packet with one chunk carrying a CNAME (§6.5.1), up to 255 octets.
    pub fn sdes_cname(&mut self, ssrc: u32, cname: &[u8]) -> Result<(), RtcpError> {
        if cname.len() > 255 {
            return Err(RtcpError::BadBody);
        }
        // ssrc + type + len + value + at least one null, padded to 32 bits.
        let body_len = (4 + 2 + cname.len() + 1 + 3) & !3;
        let b = self.header(1, packet_type::SDES, body_len)?;
        b[0..4].copy_from_slice(&ssrc.to_be_bytes());
        b[4] = SDES_CNAME;
        b[5] = cname.len() as u8;
        b[6..6 + cname.len()].copy_from_slice(cname);
        b[6 + cname.len()..].fill(0);
        Ok(())
    }

    /// Appends a BYE (§6.6) for `sources` with an optional reason of up to 255 octets.
    pub fn bye(&mut self, sources: &[u32], reason: Option<&[u8]>) -> Result<(), RtcpError> {
        let rlen = reason.map_or(0, |r| (1 + r.len() + 3) & !3);
        if reason.is_some_and(|r| r.len() > 255) {
            return Err(RtcpError::BadBody);
        }
        let b = self.header(
            sources.len().min(32) as u8,
            packet_type::BYE,
            4 * sources.len() + rlen,
        )?;
        for (s, chunk) in sources.iter().zip(b.chunks_exact_mut(4)) {
            chunk.copy_from_slice(&s.to_be_bytes());
        }
        if let Some(r) = reason {
            let o = 4 * sources.len();
            b[o] = r.len() as u8;
            b[o + 1..o + 1 + r.len()].copy_from_slice(r);
            b[o + 1 + r.len()..].fill(0);
        }
        Ok(())
    }

    /// Bytes written so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing has been written.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Inputs to the RTCP interval computation (RFC 3550 §6.3.1, §A.7).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IntervalInputs {
    /// Members of the session, including us.
    pub members: u32,
    /// Senders among them.
    pub senders: u32,
    /// RTCP bandwidth in octets per second (5% of the session bandwidth, §6.2).
    pub rtcp_bandwidth: f64,
    /// Whether we sent RTP since the last two reports.
    pub we_sent: bool,
    /// Average compound RTCP packet size in octets, including UDP/IP overhead.
    pub avg_rtcp_size: f64,
    /// Whether no RTCP packet has been sent yet (halves the minimum, §6.2).
    pub initial: bool,
}

/// The deterministic interval `Td` of RFC 3550 §6.3.1 / §A.7, in seconds, before randomisation.
#[must_use]
pub fn deterministic_interval(i: &IntervalInputs) -> f64 {
    const SENDER_FRACTION: f64 = 0.25;
    const RECEIVER_FRACTION: f64 = 1.0 - SENDER_FRACTION;
    let t_min = if i.initial { 2.5 } else { 5.0 };
    let mut n = f64::from(i.members.max(1));
    let mut bw = i.rtcp_bandwidth;
    if i.senders > 0 && f64::from(i.senders) <= f64::from(i.members) * SENDER_FRACTION {
        if i.we_sent {
            bw *= SENDER_FRACTION;
            n = f64::from(i.senders);
        } else {
            bw *= RECEIVER_FRACTION;
            n -= f64::from(i.senders);
        }
    }
    let t = if bw > 0.0 {
        i.avg_rtcp_size * n / bw
    } else {
        t_min
    };
    t.max(t_min)
}

/// The randomised interval of RFC 3550 §6.3.1 / §A.7: `Td` times a uniform factor in
/// [0.5, 1.5], divided by e − 3/2 to compensate for timer reconsideration. `unit` is a uniform
/// random number in [0, 1).
#[must_use]
pub fn rtcp_interval(i: &IntervalInputs, unit: f64) -> f64 {
    const COMPENSATION: f64 = core::f64::consts::E - 1.5;
    deterministic_interval(i) * (unit + 0.5) / COMPENSATION
}

/// Updates the average RTCP packet size after sending or receiving one (§6.3.3): avg = 1/16 new +
/// 15/16 avg.
#[must_use]
pub fn update_avg_rtcp_size(avg: f64, packet_size: usize) -> f64 {
    packet_size as f64 / 16.0 + avg * 15.0 / 16.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn block() -> impl Strategy<Value = ReportBlock> {
        (
            any::<u32>(),
            any::<u8>(),
            -0x80_0000i32..=0x7F_FFFF,
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
        )
            .prop_map(|(ssrc, f, c, e, j, l, d)| ReportBlock {
                ssrc,
                fraction_lost: f,
                cumulative_lost: c,
                extended_highest_seq: e,
                jitter: j,
                last_sr: l,
                delay_since_last_sr: d,
            })
    }

    proptest! {
        #[test]
        fn compound_sr_sdes_bye_round_trips(
            ssrc: u32, ntp: u64, rtp: u32, pc: u32, oc: u32,
            blocks in proptest::collection::vec(block(), 0..4),
            cname in proptest::collection::vec(1u8..=255, 0..40),
            byes in proptest::collection::vec(any::<u32>(), 0..4),
            reason in proptest::option::of(proptest::collection::vec(any::<u8>(), 1..30)),
            as_rr: bool,
        ) {
            let mut buf = [0u8; 1500];
            let mut w = RtcpWriter::new(&mut buf);
            let info = SenderInfo { ntp_timestamp: ntp, rtp_timestamp: rtp, packet_count: pc, octet_count: oc };
            if as_rr { w.receiver_report(ssrc, &blocks).unwrap(); } else { w.sender_report(ssrc, &info, &blocks).unwrap(); }
            w.sdes_cname(ssrc, &cname).unwrap();
            w.bye(&byes, reason.as_deref()).unwrap();
            let n = w.len();
            let c = RtcpCompound::parse(&buf[..n]).unwrap();
            let pkts: Vec<_> = c.packets().collect();
            prop_assert_eq!(pkts.len(), 3);
            match pkts[0] {
                RtcpPacket::SenderReport { ssrc: s, info: i, reports } => { prop_assert!(!as_rr); prop_assert_eq!(s, ssrc); prop_assert_eq!(i, info); prop_assert_eq!(reports.iter().collect::<Vec<_>>(), blocks.clone()); }
                RtcpPacket::ReceiverReport { ssrc: s, reports } => { prop_assert!(as_rr); prop_assert_eq!(s, ssrc); prop_assert_eq!(reports.iter().collect::<Vec<_>>(), blocks.clone()); }
                _ => prop_assert!(false),
            }
            match pkts[1] {
                RtcpPacket::SourceDescription(ch) => {
                    let v: Vec<_> = ch.iter().collect();
                    prop_assert_eq!(v.len(), 1);
                    prop_assert_eq!(v[0].ssrc, ssrc);
                    prop_assert_eq!(v[0].cname(), Some(&cname[..]));
                }
                _ => prop_assert!(false),
            }
            match pkts[2] {
                RtcpPacket::Goodbye { sources, reason: r } => {
                    prop_assert_eq!(RtcpPacket::bye_sources(sources).collect::<Vec<_>>(), byes.clone());
                    prop_assert_eq!(r, reason.as_deref());
                }
                _ => prop_assert!(false),
            }
        }

        #[test]
        fn rtcp_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(c) = RtcpCompound::parse(&bytes) {
                for p in c.packets() {
                    if let RtcpPacket::SourceDescription(ch) = p { for c in ch.iter() { let _ = c.items().count(); } }
                    if let RtcpPacket::SenderReport { reports, .. } | RtcpPacket::ReceiverReport { reports, .. } = p { let _ = reports.iter().count(); }
                }
            }
        }
    }

    #[test]
    fn compound_must_start_with_a_report() {
        let mut buf = [0u8; 64];
        let mut w = RtcpWriter::new(&mut buf);
        w.bye(&[1], None).unwrap();
        let n = w.len();
        assert_eq!(RtcpCompound::parse(&buf[..n]), Err(RtcpError::BadCompound));
    }

    #[test]
    fn interval_respects_minimum_and_randomisation_bounds() {
        let i = IntervalInputs {
            members: 2,
            senders: 2,
            rtcp_bandwidth: 400.0,
            we_sent: true,
            avg_rtcp_size: 100.0,
            initial: false,
        };
        assert_eq!(deterministic_interval(&i), 5.0);
        let lo = rtcp_interval(&i, 0.0);
        let hi = rtcp_interval(&i, 0.999_999);
        assert!((lo - 2.5 / 1.218_281_828).abs() < 1e-6, "{lo}");
        assert!((hi - 7.5 / 1.218_281_828).abs() < 1e-3, "{hi}");
        let big = IntervalInputs {
            members: 1000,
            senders: 1,
            rtcp_bandwidth: 400.0,
            we_sent: false,
            avg_rtcp_size: 100.0,
            initial: false,
        };
        assert!((deterministic_interval(&big) - 100.0 * 999.0 / 300.0).abs() < 1e-9);
    }
}
