//! Receiver statistics of RFC 3550: sequence number validation and extension (§A.1), expected
//! and lost packets and the fraction lost (§A.3), interarrival jitter (§A.8), the LSR/DLSR fields
//! of a report block, and round-trip time from a received report (§6.4.1).

use super::rtcp::ReportBlock;

const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;
const MIN_SEQUENTIAL: u8 = 2;
const RTP_SEQ_MOD: u32 = 1 << 16;

/// What [`ReceiverStats::update`] made of a packet's sequence number (§A.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqVerdict {
    /// The packet is valid and counted.
    Valid,
    /// The source is still on probation (§A.1 `MIN_SEQUENTIAL`); the packet is not counted yet.
    Probation,
    /// A large jump: dropped until the next packet confirms the new sequence (§A.1 `bad_seq`).
    Bad,
}

/// Per-source reception statistics (RFC 3550 §A.1, §A.3, §A.8).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ReceiverStats {
    ssrc: u32,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u8,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    transit: i64,
    jitter: f64,
    have_transit: bool,
    initialized: bool,
    last_sr: u32,
    last_sr_arrival_ntp: Option<u64>,
}

impl ReceiverStats {
    /// Starts tracking `ssrc` from its first packet `seq` (§A.1 `init_seq`, with probation).
    #[must_use]
    pub fn new(ssrc: u32, seq: u16) -> Self {
        let mut s = ReceiverStats {
            ssrc,
            ..Default::default()
        };
        s.init_seq(seq);
        s.max_seq = seq.wrapping_sub(1);
        s.probation = MIN_SEQUENTIAL;
        s.initialized = true;
        s
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// The source these statistics describe.
    #[must_use]
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// §A.1 `update_seq`: validates and counts a packet's sequence number.
    pub fn update(&mut self, seq: u16) -> SeqVerdict {
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return SeqVerdict::Valid;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return SeqVerdict::Probation;
        } else if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
            }
            self.max_seq = seq;
        } else if udelta <= (RTP_SEQ_MOD as u16).wrapping_sub(MAX_MISORDER) {
            // u16 arithmetic: RTP_SEQ_MOD - MAX_MISORDER == 65436.
            if u32::from(seq) == self.bad_seq {
                self.init_seq(seq);
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return SeqVerdict::Bad;
            }
        }
        // Duplicate or reordered packet: counted, as in §A.1.
        self.received += 1;
        SeqVerdict::Valid
    }

    /// §A.8: updates the interarrival jitter with a packet's RTP timestamp and its arrival time
    /// expressed in the same clock units.
    pub fn update_jitter(&mut self, rtp_timestamp: u32, arrival: u32) {
        let transit = i64::from(arrival.wrapping_sub(rtp_timestamp) as i32);
        if self.have_transit {
            let d = (transit - self.transit).abs() as f64;
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.transit = transit;
        self.have_transit = true;
    }

    /// Extended highest sequence number received (§6.4.1).
    #[must_use]
    pub fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// Packets expected: extended max − base + 1 (§A.3).
    #[must_use]
    pub fn expected(&self) -> u32 {
        if self.probation > 0 {
            return 0;
        }
        self.extended_max()
            .wrapping_sub(self.base_seq)
            .wrapping_add(1)
    }

    /// Packets received and counted (duplicates included, §A.3).
    #[must_use]
    pub fn received(&self) -> u32 {
        self.received
    }

    /// Cumulative number of packets lost, expected − received (§A.3); negative with duplicates.
    #[must_use]
    pub fn cumulative_lost(&self) -> i64 {
        i64::from(self.expected()) - i64::from(self.received)
    }

    /// Interarrival jitter in timestamp units (§A.8).
    #[must_use]
    pub fn jitter(&self) -> u32 {
        self.jitter as u32
    }

    /// Records the arrival of a sender report from this source, for LSR/DLSR (§6.4.1).
    /// `arrival_ntp` is our NTP-format clock at arrival.
    pub fn record_sender_report(&mut self, ntp_timestamp: u64, arrival_ntp: u64) {
        self.last_sr = (ntp_timestamp >> 16) as u32;
        self.last_sr_arrival_ntp = Some(arrival_ntp);
    }

    /// Builds a report block and starts a new reporting interval: fraction lost covers the
    /// packets since the previous call (§A.3). `now_ntp` is our NTP-format clock.
    pub fn report_block(&mut self, now_ntp: u64) -> ReportBlock {
        let expected = self.expected();
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        let (last_sr, delay_since_last_sr) = match self.last_sr_arrival_ntp {
            Some(at) => (self.last_sr, (now_ntp.saturating_sub(at) >> 16) as u32),
            None => (0, 0),
        };
        ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: self.cumulative_lost().clamp(-0x80_0000, 0x7F_FFFF) as i32,
            extended_highest_seq: self.extended_max(),
            jitter: self.jitter(),
            last_sr,
            delay_since_last_sr,
        }
    }
}

/// Round-trip time from a report block about our stream (RFC 3550 §6.4.1): A − LSR − DLSR, in
/// seconds, where A is the middle 32 bits of our NTP clock when the report arrived. `None` when
/// the peer has not received a sender report yet (LSR = 0) or the result is negative.
#[must_use]
pub fn round_trip_time(block: &ReportBlock, arrival_ntp: u64) -> Option<f64> {
    if block.last_sr == 0 {
        return None;
    }
    let a = (arrival_ntp >> 16) as u32;
    let rtt = a
        .wrapping_sub(block.last_sr)
        .wrapping_sub(block.delay_since_last_sr);
    (rtt < 0x8000_0000).then(|| f64::from(rtt) / 65536.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(s: &mut ReceiverStats, seq: u16) {
        s.update(seq);
    }

    #[test]
    fn counts_loss_across_sequence_wrap() {
        let mut s = ReceiverStats::new(1, 65530);
        for seq in 65530u16..=65535 {
            valid(&mut s, seq);
        }
        for seq in 0u16..20 {
            if seq != 3 && seq != 7 {
                valid(&mut s, seq);
            }
        }
        assert_eq!(s.extended_max(), 65536 + 19);
        assert_eq!(s.cumulative_lost(), 2);
        let rb = s.report_block(0);
        assert_eq!(rb.cumulative_lost, 2);
        assert_eq!(rb.fraction_lost, (2 * 256 / s.expected()) as u8);
        // A new interval without loss reports fraction zero.
        valid(&mut s, 20);
        assert_eq!(s.report_block(0).fraction_lost, 0);
    }

    #[test]
    fn jitter_follows_a8_for_constant_offset_and_for_variation() {
        let mut s = ReceiverStats::new(1, 0);
        for i in 0..100u32 {
            s.update_jitter(i * 160, i * 160 + 1000);
        }
        assert_eq!(s.jitter(), 0);
        for i in 100..2000u32 {
            let wobble = if i % 2 == 0 { 80 } else { 0 };
            s.update_jitter(i * 160, i * 160 + 1000 + wobble);
        }
        // |D| is always 80, so J converges to 80.
        assert!((79..=80).contains(&s.jitter()), "{}", s.jitter());
    }

    #[test]
    fn rtt_is_arrival_minus_lsr_minus_dlsr() {
        let block = ReportBlock {
            last_sr: 0x0001_0000,
            delay_since_last_sr: 0x0000_8000,
            ..Default::default()
        };
        // Arrival at 2 s (middle bits 0x0002_0000): 2 - 1 - 0.5 = 0.5 s.
        let rtt = round_trip_time(&block, 0x0002_0000u64 << 16).unwrap();
        assert!((rtt - 0.5).abs() < 1e-9);
    }

    #[test]
    fn probation_then_large_jump_needs_confirmation() {
        let mut s = ReceiverStats::new(1, 100);
        assert_eq!(s.update(100), SeqVerdict::Probation);
        assert_eq!(s.update(101), SeqVerdict::Valid);
        assert_eq!(s.update(30000), SeqVerdict::Bad);
        assert_eq!(s.update(30001), SeqVerdict::Valid);
        assert_eq!(s.expected(), 1);
    }
}
