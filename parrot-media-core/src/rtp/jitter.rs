//! The receive jitter buffer: puts RTP packets back in sequence order (RFC 3550 §5.1: the sequence
//! number "may be used by the receiver to detect packet loss and to restore packet sequence").
//!
//! The next packet in sequence is released as soon as it is there. A gap is held for at most
//! `max_hold` after the oldest packet waiting behind it arrived; then the missing packet is
//! declared lost. Duplicates and packets older than what was released (late) are dropped.
//! Sequence numbers are extended to 64 bits so wrap-around is invisible; timestamps are carried,
//! never compared, so timestamp wrap is harmless. A new SSRC or a sequence jump beyond
//! `MAX_DROPOUT` (RFC 3550 §A.1) restarts the buffer. Storage is allocated once, on the first
//! packet.

use super::packet::RtpPacket;
use std::time::{Duration, Instant};

const MAX_DROPOUT: i64 = 3000;

/// What happened to an inserted packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Stored for release.
    Buffered,
    /// Same sequence number as a packet still buffered: dropped.
    Duplicate,
    /// Older than the last released packet: dropped.
    Late,
    /// Started a new stream (first packet, SSRC change or sequence jump) and was stored.
    Restarted,
    /// Payload larger than the slot size: dropped.
    TooLarge,
}

/// Jitter buffer counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets stored.
    pub buffered: u64,
    /// Packets released in order.
    pub released: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Late packets dropped.
    pub late: u64,
    /// Sequence numbers declared lost.
    pub lost: u64,
    /// Packets that arrived out of order and were put back in order.
    pub reordered: u64,
    /// Buffered packets discarded because the window overflowed.
    pub overflow_drops: u64,
    /// Restarts (SSRC change or sequence jump).
    pub restarts: u64,
    /// SSRC changes.
    pub ssrc_changes: u64,
    /// Packets with the marker bit (talkspurt starts, RFC 3551 §4.1).
    pub talkspurts: u64,
    /// Packets buffered now.
    pub depth: u32,
    /// Largest depth seen.
    pub max_depth: u32,
}

/// A packet released in order, borrowing the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Sequence number extended with the wrap count.
    pub extended_seq: u64,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Payload type.
    pub payload_type: u8,
    /// Marker bit.
    pub marker: bool,
    /// SSRC.
    pub ssrc: u32,
    /// Payload.
    pub payload: &'a [u8],
}

/// What [`JitterBuffer::pop`] yields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Popped<'a> {
    /// The next packet in order.
    Frame(Frame<'a>),
    /// The next sequence number will not come: conceal it.
    Lost {
        /// Its extended sequence number.
        extended_seq: u64,
    },
}

#[derive(Clone, Debug)]
struct Slot {
    occupied: bool,
    ext: u64,
    timestamp: u32,
    payload_type: u8,
    marker: bool,
    arrival: Instant,
    data: Vec<u8>,
}

/// A reordering buffer with a bounded hold time.
#[derive(Clone, Debug)]
pub struct JitterBuffer {
    /// Empty until the first packet, then `capacity` slots.
    slots: Vec<Slot>,
    capacity: usize,
    max_payload: usize,
    max_hold: Duration,
    ssrc: Option<u32>,
    next: u64,
    highest: u64,
    stats: JitterStats,
}

impl JitterBuffer {
    /// A buffer of `capacity` packets (rounded up to a power of two) of up to `max_payload`
    /// octets each, holding gaps for up to `max_hold`. Allocates nothing now: the slot table on
    /// the first packet and each slot's payload storage on the slot's first packet, sized to it and reused from then on:
    /// a G.711 call holds ~11 KiB of payloads, not `capacity × max_payload`, and a call that
    /// receives nothing holds none.
    #[must_use]
    pub fn new(capacity: usize, max_payload: usize, max_hold: Duration, epoch: Instant) -> Self {
        let _ = epoch; // slots are stamped with their packet's arrival when first filled
        JitterBuffer {
            slots: Vec::new(),
            capacity: capacity.max(2).next_power_of_two(),
            max_payload,
            max_hold,
            ssrc: None,
            next: 0,
            highest: 0,
            stats: JitterStats::default(),
        }
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// The SSRC being received.
    #[must_use]
    pub fn ssrc(&self) -> Option<u32> {
        self.ssrc
    }

    fn idx(&self, ext: u64) -> usize {
        (ext as usize) & (self.capacity - 1)
    }

    fn clear(&mut self) {
        for s in &mut self.slots {
            s.occupied = false;
        }
        self.stats.depth = 0;
    }

    fn restart(&mut self, now: Instant, pkt: &RtpPacket<'_>) {
        if self.slots.is_empty() {
            // The slot table, on the first packet: a call that receives nothing never pays.
            self.slots = (0..self.capacity)
                .map(|_| Slot {
                    occupied: false,
                    ext: 0,
                    timestamp: 0,
                    payload_type: 0,
                    marker: false,
                    arrival: now,
                    data: Vec::new(),
                })
                .collect();
        }
        self.clear();
        self.stats.restarts += 1;
        self.ssrc = Some(pkt.ssrc);
        // Start high so extension below the first packet never underflows.
        self.next = (1u64 << 32) + u64::from(pkt.sequence_number);
        self.highest = self.next;
    }

    /// Inserts a packet received at `now`.
    pub fn insert(&mut self, now: Instant, pkt: &RtpPacket<'_>) -> InsertOutcome {
        if pkt.payload.len() > self.max_payload {
            return InsertOutcome::TooLarge;
        }
        let mut restarted = false;
        match self.ssrc {
            None => {
                self.restart(now, pkt);
                restarted = true;
            }
            Some(s) if s != pkt.ssrc => {
                self.stats.ssrc_changes += 1;
                self.restart(now, pkt);
                restarted = true;
            }
            _ => {}
        }
        let delta = i64::from(pkt.sequence_number.wrapping_sub(self.highest as u16) as i16);
        let mut ext = (self.highest as i64 + delta) as u64;
        if !restarted && (ext as i64 - self.next as i64).abs() > MAX_DROPOUT {
            self.restart(now, pkt);
            restarted = true;
            ext = self.next;
        }
        if ext < self.next {
            self.stats.late += 1;
            return InsertOutcome::Late;
        }
        let cap = self.capacity as u64;
        // Window overflow: give up on the oldest sequence numbers to make room.
        while ext >= self.next + cap {
            let i = self.idx(self.next);
            if self.slots[i].occupied && self.slots[i].ext == self.next {
                self.slots[i].occupied = false;
                self.stats.overflow_drops += 1;
                self.stats.depth -= 1;
            } else {
                self.stats.lost += 1;
            }
            self.next += 1;
        }
        let i = self.idx(ext);
        if self.slots[i].occupied && self.slots[i].ext == ext {
            self.stats.duplicates += 1;
            return InsertOutcome::Duplicate;
        }
        if ext < self.highest {
            self.stats.reordered += 1;
        }
        self.highest = self.highest.max(ext);
        if pkt.marker {
            self.stats.talkspurts += 1;
        }
        let s = &mut self.slots[i];
        s.occupied = true;
        s.ext = ext;
        s.timestamp = pkt.timestamp;
        s.payload_type = pkt.payload_type;
        s.marker = pkt.marker;
        s.arrival = now;
        s.data.clear();
        s.data.extend_from_slice(pkt.payload);
        self.stats.buffered += 1;
        self.stats.depth += 1;
        self.stats.max_depth = self.stats.max_depth.max(self.stats.depth);
        if restarted {
            InsertOutcome::Restarted
        } else {
            InsertOutcome::Buffered
        }
    }

    fn oldest_waiting_arrival(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter(|s| s.occupied)
            .map(|s| s.arrival)
            .min()
    }

    /// When a held gap will be given up, if one is held.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.stats.depth == 0 {
            return None;
        }
        let i = self.idx(self.next);
        if self.slots[i].occupied && self.slots[i].ext == self.next {
            return None; // releasable now, no timer needed
        }
        self.oldest_waiting_arrival().map(|a| a + self.max_hold)
    }

    /// Releases the next packet in order, or declares the next one lost once the gap has been
    /// held long enough. Call until `None`.
    pub fn pop(&mut self, now: Instant) -> Option<Popped<'_>> {
        if self.stats.depth == 0 {
            return None;
        }
        let i = self.idx(self.next);
        if self.slots[i].occupied && self.slots[i].ext == self.next {
            self.slots[i].occupied = false;
            self.stats.depth -= 1;
            self.stats.released += 1;
            self.next += 1;
            let s = &self.slots[i];
            return Some(Popped::Frame(Frame {
                extended_seq: s.ext,
                timestamp: s.timestamp,
                payload_type: s.payload_type,
                marker: s.marker,
                ssrc: self.ssrc.unwrap_or(0),
                payload: &s.data,
            }));
        }
        let deadline = self.oldest_waiting_arrival()? + self.max_hold;
        if now < deadline {
            return None;
        }
        let lost = self.next;
        self.next += 1;
        self.stats.lost += 1;
        Some(Popped::Lost { extended_seq: lost })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpHeader;

    fn pkt(buf: &mut [u8], seq: u16, ts: u32, ssrc: u32, marker: bool) -> usize {
        RtpHeader {
            marker,
            payload_type: 0,
            sequence_number: seq,
            timestamp: ts,
            ssrc,
            ..Default::default()
        }
        .write_packet(buf, &seq.to_be_bytes(), 0)
        .unwrap()
    }

    fn drain(jb: &mut JitterBuffer, now: Instant, out: &mut Vec<Option<u16>>) {
        while let Some(p) = jb.pop(now) {
            out.push(match p {
                Popped::Frame(f) => Some(u16::from_be_bytes([f.payload[0], f.payload[1]])),
                Popped::Lost { .. } => None,
            });
        }
    }

    #[test]
    fn reorders_drops_duplicates_and_late_across_wrap() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(16, 200, Duration::from_millis(60), t0);
        let mut out = Vec::new();
        let mut b = [0u8; 64];
        for (k, seq) in [65534u16, 0, 0, 65535, 1, 65533].into_iter().enumerate() {
            let n = pkt(
                &mut b,
                seq,
                (u32::MAX - 160).wrapping_add(u32::from(seq).wrapping_mul(160)),
                7,
                false,
            );
            let o = jb.insert(
                t0 + Duration::from_millis(k as u64),
                &RtpPacket::parse(&b[..n]).unwrap(),
            );
            if k == 2 {
                assert_eq!(o, InsertOutcome::Duplicate);
            }
            if k == 5 {
                assert_eq!(o, InsertOutcome::Late);
            }
            drain(&mut jb, t0, &mut out);
        }
        assert_eq!(out, vec![Some(65534), Some(65535), Some(0), Some(1)]);
        let s = jb.stats();
        assert_eq!((s.duplicates, s.late, s.reordered, s.lost), (1, 1, 1, 0));
    }

    #[test]
    fn gap_is_declared_lost_after_hold_time() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(16, 200, Duration::from_millis(60), t0);
        let mut out = Vec::new();
        let mut b = [0u8; 64];
        for seq in [10u16, 12, 13] {
            let n = pkt(&mut b, seq, 0, 7, false);
            jb.insert(t0, &RtpPacket::parse(&b[..n]).unwrap());
            drain(&mut jb, t0, &mut out);
        }
        assert_eq!(out, vec![Some(10)]);
        assert_eq!(jb.next_deadline(), Some(t0 + Duration::from_millis(60)));
        drain(&mut jb, t0 + Duration::from_millis(59), &mut out);
        assert_eq!(out.len(), 1);
        drain(&mut jb, t0 + Duration::from_millis(60), &mut out);
        assert_eq!(out, vec![Some(10), None, Some(12), Some(13)]);
        assert_eq!(jb.stats().lost, 1);
    }

    #[test]
    fn ssrc_change_restarts_and_marker_counts_talkspurts() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(16, 200, Duration::from_millis(60), t0);
        let mut out = Vec::new();
        let mut b = [0u8; 64];
        let n = pkt(&mut b, 100, 0, 1, true);
        jb.insert(t0, &RtpPacket::parse(&b[..n]).unwrap());
        let n = pkt(&mut b, 5000, 0, 2, true);
        assert_eq!(
            jb.insert(t0, &RtpPacket::parse(&b[..n]).unwrap()),
            InsertOutcome::Restarted
        );
        drain(&mut jb, t0, &mut out);
        assert_eq!(out, vec![Some(5000)]);
        let s = jb.stats();
        assert_eq!((s.ssrc_changes, s.talkspurts), (1, 2));
    }

    use proptest::prelude::*;

    proptest! {
        /// Whatever the loss and the local reordering, output is strictly in order, every packet
        /// that arrived comes out once, and each missing one is reported lost once.
        #[test]
        fn releases_in_order_exactly_once(start: u16, n in 1usize..300, drops in proptest::collection::vec(any::<bool>(), 300), swaps in proptest::collection::vec(0usize..300, 0..60), dup_every in 2usize..20) {
            let t0 = Instant::now();
            let mut jb = JitterBuffer::new(64, 200, Duration::from_millis(60), t0);
            let mut order: Vec<u16> = (0..n as u16).collect();
            for s in swaps { let i = s % n; if i + 1 < n { order.swap(i, i + 1); } }
            let mut arrived = std::collections::BTreeSet::new();
            let mut out = Vec::new();
            let mut lost = 0u64;
            let mut late = 0u64;
            let mut b = [0u8; 64];
            let mut now = t0;
            for (k, &i) in order.iter().enumerate() {
                // The first packet always arrives, and arrives first, so the buffer anchors on it.
                if i != 0 && (drops[i as usize] && i as usize % 10 == 0) { continue; }
                if k == 0 && i != 0 { continue; }
                let seq = start.wrapping_add(i);
                let len = pkt(&mut b, seq, 0, 1, false);
                let p = RtpPacket::parse(&b[..len]).unwrap();
                if jb.insert(now, &p) == InsertOutcome::Late { late += 1; }
                if k % dup_every == 0 { jb.insert(now, &p); }
                arrived.insert(i);
                now += Duration::from_millis(20);
                while let Some(p) = jb.pop(now) {
                    match p { Popped::Frame(f) => out.push(u16::from_be_bytes([f.payload[0], f.payload[1]]).wrapping_sub(start)), Popped::Lost { .. } => lost += 1 }
                }
            }
            now += Duration::from_secs(1);
            while let Some(p) = jb.pop(now) {
                match p { Popped::Frame(f) => out.push(u16::from_be_bytes([f.payload[0], f.payload[1]]).wrapping_sub(start)), Popped::Lost { .. } => lost += 1 }
            }
            prop_assert!(out.windows(2).all(|w| w[0] < w[1]));
            let delivered: std::collections::BTreeSet<u16> = out.iter().copied().collect();
            prop_assert_eq!(delivered.len() as u64 + late, arrived.len() as u64);
            let max = *out.last().unwrap();
            let min = out[0];
            prop_assert_eq!(lost, u64::from(max - min) + 1 - out.len() as u64);
        }
    }
}
