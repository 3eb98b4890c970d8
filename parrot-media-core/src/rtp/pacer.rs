//! The send pacer: packet `n` is due at `start + n · ptime` (RFC 3550 §5.1: the RTP timestamp
//! reflects the sampling instant, so sending must follow the sampling clock, not the scheduler).
//!
//! Scheduling "last send + 20 ms" accumulates every wake-up delay as drift. Here the due time is
//! computed from the packet index, so late wake-ups do not shift later packets. After a long stall
//! (a suspended laptop, a blocked thread), at most `max_burst` overdue packets are sent back to
//! back; older ones are skipped and counted, so the stream catches up instead of bunching forever.

use std::time::{Duration, Instant};

/// A drift-free packet clock.
#[derive(Clone, Debug)]
pub struct Pacer {
    start: Instant,
    ptime_ns: u64,
    next: u64,
    max_burst: u64,
    skipped: u64,
}

impl Pacer {
    /// A pacer whose packet 0 is due at `start`.
    #[must_use]
    pub fn new(start: Instant, ptime: Duration, max_burst: u32) -> Self {
        Pacer {
            start,
            ptime_ns: (ptime.as_nanos() as u64).max(1),
            next: 0,
            max_burst: u64::from(max_burst.max(1)),
            skipped: 0,
        }
    }

    /// The packet time.
    #[must_use]
    pub fn ptime(&self) -> Duration {
        Duration::from_nanos(self.ptime_ns)
    }

    /// When packet `n` is due.
    #[must_use]
    pub fn due_at(&self, n: u64) -> Instant {
        self.start + Duration::from_nanos(n.saturating_mul(self.ptime_ns))
    }

    /// When the next packet is due.
    #[must_use]
    pub fn next_due(&self) -> Instant {
        self.due_at(self.next)
    }

    /// The index of the next packet to send.
    #[must_use]
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// Packets skipped after stalls.
    #[must_use]
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// If a packet is due at `now`, returns its index and advances. Call until `None`.
    pub fn poll(&mut self, now: Instant) -> Option<u64> {
        let elapsed = now.checked_duration_since(self.start)?.as_nanos() as u64;
        // Number of packets due by now: indices 0..=elapsed/ptime.
        let due_through = elapsed / self.ptime_ns;
        if due_through < self.next {
            return None;
        }
        let overdue = due_through - self.next + 1;
        if overdue > self.max_burst {
            let skip = overdue - self.max_burst;
            self.next += skip;
            self.skipped += skip;
        }
        let n = self.next;
        self.next += 1;
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_n_is_due_at_start_plus_n_ptime_despite_late_wakeups() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, Duration::from_millis(20), 3);
        let mut sent = Vec::new();
        // Wake up 7 ms late every time, as an OS timer might.
        let mut now = t0;
        for _ in 0..1000 {
            while let Some(n) = p.poll(now) {
                sent.push(n);
            }
            now = p.next_due() + Duration::from_millis(7);
        }
        assert_eq!(sent, (0..1000).collect::<Vec<_>>());
        assert_eq!(p.next_due(), t0 + Duration::from_millis(20 * 1000));
    }

    #[test]
    fn long_stall_sends_a_bounded_burst_then_resumes_on_schedule() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, Duration::from_millis(20), 3);
        assert_eq!(p.poll(t0), Some(0));
        let now = t0 + Duration::from_millis(1000);
        let burst: Vec<u64> = core::iter::from_fn(|| p.poll(now)).collect();
        assert_eq!(burst, vec![48, 49, 50]);
        assert_eq!(p.skipped(), 47);
        assert_eq!(p.next_due(), t0 + Duration::from_millis(1020));
    }

    #[test]
    fn early_calls_send_nothing() {
        let t0 = Instant::now() + Duration::from_secs(1);
        let mut p = Pacer::new(t0, Duration::from_millis(30), 3);
        assert_eq!(p.poll(t0 - Duration::from_millis(1)), None);
        assert_eq!(p.poll(t0), Some(0));
        assert_eq!(p.poll(t0 + Duration::from_millis(29)), None);
    }
}
