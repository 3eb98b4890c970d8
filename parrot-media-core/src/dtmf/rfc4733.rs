//! RFC 4733 telephone-events: the 4-octet payload (§2.3), the sender's packet sequence (§2.5.1:
//! a first packet with the marker bit, updates with growing duration at the same timestamp, and
//! the end packet sent three times) and a receiver that reports each event once (§2.5.2: events
//! are identified by their RTP timestamp, so retransmitted end packets and updates are
//! duplicates).

use super::{digit_for_event, event_for_digit};

/// An RFC 4733 §2.3 event payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code (0-15 for DTMF).
    pub event: u8,
    /// E bit: the last packet(s) of the event.
    pub end: bool,
    /// Volume in -dBm0 (0-63).
    pub volume: u8,
    /// Duration so far, in RTP timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first 4 octets of a payload (redundant blocks, RFC 4733 §2.3, are ignored).
    #[must_use]
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let b = payload.get(..4)?;
        Some(TelephoneEvent {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3F,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// Writes the 4-octet payload; returns 4, or `None` if `out` is too small.
    pub fn write(&self, out: &mut [u8]) -> Option<usize> {
        let b = out.get_mut(..4)?;
        b[0] = self.event;
        b[1] = (u8::from(self.end) << 7) | (self.volume & 0x3F);
        b[2..4].copy_from_slice(&self.duration.to_be_bytes());
        Some(4)
    }
}

/// One packet the sender wants to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventPacket {
    /// Payload.
    pub event: TelephoneEvent,
    /// Marker bit: set on the first packet of an event (§2.5.1.1).
    pub marker: bool,
    /// Offset of the event's RTP timestamp from the media timestamp at its start; constant for
    /// all packets of one event (§2.5.1.2). The session adds its own base.
    pub start_index: u64,
}

#[derive(Clone, Copy, Debug)]
struct Active {
    event: u8,
    total: u32,
    sent: u32,
    start_index: u64,
    ends_sent: u8,
}

/// Sends queued digits one after another, one packet per packet time.
#[derive(Clone, Debug)]
pub struct DtmfSender {
    queue: [(u8, u32); 32],
    head: usize,
    len: usize,
    active: Option<Active>,
    volume: u8,
}

impl Default for DtmfSender {
    fn default() -> Self {
        DtmfSender {
            queue: [(0, 0); 32],
            head: 0,
            len: 0,
            active: None,
            volume: 10,
        }
    }
}

impl DtmfSender {
    /// Queues `digit` for `duration_ticks` RTP clock ticks. Returns false for an unknown digit
    /// or a full queue (32 digits).
    pub fn push(&mut self, digit: char, duration_ticks: u32) -> bool {
        let Some(ev) = event_for_digit(digit) else {
            return false;
        };
        if self.len == self.queue.len() {
            return false;
        }
        let i = (self.head + self.len) % self.queue.len();
        self.queue[i] = (ev, duration_ticks.clamp(1, u32::from(u16::MAX)));
        self.len += 1;
        true
    }

    /// Whether an event is being sent or queued.
    #[must_use]
    pub fn is_busy(&self) -> bool {
        self.active.is_some() || self.len > 0
    }

    /// The packet for media packet `index` (which carries `tick` RTP ticks), or `None` when no
    /// event is in progress (send audio instead).
    pub fn next_packet(&mut self, index: u64, tick: u32) -> Option<EventPacket> {
        if self.active.is_none() {
            if self.len == 0 {
                return None;
            }
            let (event, total) = self.queue[self.head];
            self.head = (self.head + 1) % self.queue.len();
            self.len -= 1;
            self.active = Some(Active {
                event,
                total,
                sent: 0,
                start_index: index,
                ends_sent: 0,
            });
        }
        let a = self.active.as_mut()?;
        let marker = a.sent == 0 && a.ends_sent == 0;
        let end;
        if a.sent + tick < a.total {
            a.sent += tick;
            end = false;
        } else {
            a.sent = a.total;
            a.ends_sent += 1;
            end = true;
        }
        let pkt = EventPacket {
            event: TelephoneEvent {
                event: a.event,
                end,
                volume: self.volume,
                duration: a.sent.min(u32::from(u16::MAX)) as u16,
            },
            marker,
            start_index: a.start_index,
        };
        if a.ends_sent >= 3 {
            self.active = None;
        }
        Some(pkt)
    }
}

/// Reports each received event once, whichever of its packets arrive.
#[derive(Clone, Copy, Debug, Default)]
pub struct DtmfReceiver {
    /// The most recent events seen, so a late retransmission of an earlier event (its end
    /// packets arrive after the next event began) is not reported again.
    recent: [Option<(u32, u32, u8)>; 8],
    next: usize,
}

impl DtmfReceiver {
    /// Feeds a telephone-event packet (`ssrc`, RTP `timestamp`); returns the digit when this is
    /// the first packet seen of a new event.
    pub fn on_packet(&mut self, ssrc: u32, timestamp: u32, ev: &TelephoneEvent) -> Option<char> {
        let key = Some((ssrc, timestamp, ev.event));
        if self.recent.contains(&key) {
            return None;
        }
        self.recent[self.next] = key;
        self.next = (self.next + 1) % self.recent.len();
        digit_for_event(ev.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn conformance_examples_parse_and_write() {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../conformance/media/rfc4733_dtmf_examples.tsv");
        let text = std::fs::read_to_string(path).unwrap();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split('\t').collect();
            let bytes = hex(f[1]);
            let ev = TelephoneEvent::parse(&bytes).unwrap();
            assert_eq!(ev.event, f[2].parse::<u8>().unwrap());
            assert_eq!(ev.end, f[3] == "1");
            assert_eq!(ev.volume, f[5].parse::<u8>().unwrap());
            assert_eq!(ev.duration, f[6].parse::<u16>().unwrap());
            let mut out = [0u8; 4];
            ev.write(&mut out).unwrap();
            // The R bit is ignored on receipt and sent as zero (§2.3).
            let mut expected = bytes.clone();
            expected[1] &= !0x40;
            assert_eq!(f[4] == "1", bytes[1] & 0x40 != 0);
            assert_eq!(&out[..], &expected[..]);
        }
    }

    #[test]
    fn sender_emits_start_updates_and_three_ends() {
        let mut s = DtmfSender::default();
        assert!(s.push('5', 800));
        let pkts: Vec<EventPacket> = (10..30).map_while(|i| s.next_packet(i, 160)).collect();
        assert_eq!(pkts.len(), 4 + 3);
        assert!(pkts[0].marker && pkts[1..].iter().all(|p| !p.marker));
        assert_eq!(
            pkts.iter().map(|p| p.event.duration).collect::<Vec<_>>(),
            vec![160, 320, 480, 640, 800, 800, 800]
        );
        assert_eq!(pkts.iter().filter(|p| p.event.end).count(), 3);
        assert!(pkts
            .iter()
            .all(|p| p.start_index == 10 && p.event.event == 5));
        assert!(!s.is_busy());
    }

    #[test]
    fn receiver_reports_each_event_once() {
        let mut r = DtmfReceiver::default();
        let ev = |end, d| TelephoneEvent {
            event: 11,
            end,
            volume: 10,
            duration: d,
        };
        assert_eq!(r.on_packet(1, 8000, &ev(false, 160)), Some('#'));
        assert_eq!(r.on_packet(1, 8000, &ev(false, 320)), None);
        assert_eq!(r.on_packet(1, 8000, &ev(true, 480)), None);
        assert_eq!(r.on_packet(1, 8000, &ev(true, 480)), None);
        assert_eq!(r.on_packet(1, 9600, &ev(true, 480)), Some('#'));
        // A late end packet of the first event is still a duplicate.
        assert_eq!(r.on_packet(1, 8000, &ev(true, 480)), None);
    }
}
