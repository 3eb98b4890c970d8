//! Transaction timers (RFC 3261 §17 and Table 4 of Appendix A, RFC 6026 §8.4 for L and M).
//!
//! Each transaction keeps a small table of deadlines indexed by the RFC's timer names, as
//! quinn-proto does; the transaction's next wake-up is the minimum of the table.

use std::time::{Duration, Instant};

/// The transaction timers, named as in RFC 3261 Table 4 and RFC 6026.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// INVITE request retransmit interval, unreliable transports only (§17.1.1.2).
    A,
    /// INVITE transaction timeout (§17.1.1.2).
    B,
    /// Proxy INVITE transaction timeout (§16.8); unused by a user agent.
    C,
    /// Wait time for response retransmits in client INVITE Completed (§17.1.1.2).
    D,
    /// Non-INVITE request retransmit interval, unreliable only (§17.1.2.2).
    E,
    /// Non-INVITE transaction timeout (§17.1.2.2).
    F,
    /// INVITE response retransmit interval (§17.2.1).
    G,
    /// Wait time for ACK receipt (§17.2.1).
    H,
    /// Wait time for ACK retransmits (§17.2.1).
    I,
    /// Wait time for non-INVITE request retransmits (§17.2.2).
    J,
    /// Wait time for response retransmits in client non-INVITE Completed (§17.1.2.2).
    K,
    /// Wait time for accepted INVITE request retransmits (RFC 6026 §8.7).
    L,
    /// Wait time for retransmission of 2xx to INVITE (RFC 6026 §8.4).
    M,
}

impl Timer {
    /// Every timer, in table order.
    pub const ALL: [Timer; 13] = [
        Timer::A,
        Timer::B,
        Timer::C,
        Timer::D,
        Timer::E,
        Timer::F,
        Timer::G,
        Timer::H,
        Timer::I,
        Timer::J,
        Timer::K,
        Timer::L,
        Timer::M,
    ];
}

/// T1, T2 and T4 (§17.1.1.1, Table 4): round-trip estimate, maximum retransmit interval for
/// non-INVITE requests and INVITE responses, and maximum lifetime of a message in the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// T1, 500 ms by default.
    pub t1: Duration,
    /// T2, 4 s by default.
    pub t2: Duration,
    /// T4, 5 s by default.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// 64*T1: timers B, F, H, J, L and M (Table 4).
    pub fn t1x64(&self) -> Duration {
        self.t1 * 64
    }

    /// The initial duration of `timer` for a transport (Table 4); `Duration::ZERO` when the
    /// timer collapses on a reliable transport, `None` for timers that do not run at all there.
    pub fn initial(&self, timer: Timer, reliable: bool) -> Option<Duration> {
        match (timer, reliable) {
            (Timer::A | Timer::E | Timer::G, true) => None,
            (Timer::A | Timer::E | Timer::G, false) => Some(self.t1),
            (Timer::B | Timer::F | Timer::H | Timer::L | Timer::M, _) => Some(self.t1x64()),
            (Timer::C, _) => Some(Duration::from_secs(180)),
            (Timer::D, true) => Some(Duration::ZERO),
            (Timer::D, false) => Some(Duration::from_secs(32).max(self.t1x64())),
            (Timer::I | Timer::K, true) => Some(Duration::ZERO),
            (Timer::I | Timer::K, false) => Some(self.t4),
            (Timer::J, true) => Some(Duration::ZERO),
            (Timer::J, false) => Some(self.t1x64()),
        }
    }
}

/// Deadlines indexed by [`Timer`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimerTable {
    at: [Option<Instant>; 13],
    /// The minimum of `at`, kept up to date so [`TimerTable::next`] (asked after every event)
    /// does not scan the table.
    earliest: Option<Instant>,
}

impl TimerTable {
    /// Arms `timer` to fire at `at`.
    pub fn set(&mut self, timer: Timer, at: Instant) {
        let old = self.at[timer as usize].replace(at);
        match (old, self.earliest) {
            // The replaced deadline may have been the minimum: look again.
            (Some(o), Some(e)) if o == e && at > o => self.recompute(),
            (_, Some(e)) if e <= at => {}
            _ => self.earliest = Some(at),
        }
    }

    /// Disarms `timer`.
    pub fn stop(&mut self, timer: Timer) {
        if let Some(old) = self.at[timer as usize].take() {
            if self.earliest == Some(old) {
                self.recompute();
            }
        }
    }

    fn recompute(&mut self) {
        self.earliest = self.at.iter().flatten().min().copied();
    }

    /// Disarms every timer.
    pub fn clear(&mut self) {
        self.at = [None; 13];
        self.earliest = None;
    }

    /// When `timer` fires, if armed.
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.at[timer as usize]
    }

    /// Whether `timer` is armed and due at `now`.
    pub fn due(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|at| at <= now)
    }

    /// The earliest armed deadline.
    pub fn next(&self) -> Option<Instant> {
        self.earliest
    }

    /// Disarms and returns the earliest timer due at `now`, if any.
    pub fn pop_expired(&mut self, now: Instant) -> Option<Timer> {
        let mut best: Option<(Instant, Timer)> = None;
        for t in Timer::ALL {
            if let Some(at) = self.at[t as usize] {
                if at <= now && best.is_none_or(|(b, _)| at < b) {
                    best = Some((at, t));
                }
            }
        }
        let (_, t) = best?;
        self.stop(t);
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reliable_transports_collapse_timers() {
        let c = TimerConfig::default();
        assert_eq!(c.initial(Timer::A, true), None);
        assert_eq!(c.initial(Timer::D, true), Some(Duration::ZERO));
        assert_eq!(c.initial(Timer::D, false), Some(Duration::from_secs(32)));
        assert_eq!(c.initial(Timer::K, false), Some(Duration::from_secs(5)));
        assert_eq!(c.initial(Timer::B, false), Some(Duration::from_secs(32)));
    }

    #[test]
    fn cached_minimum_follows_every_change() {
        let now = Instant::now();
        let mut t = TimerTable::default();
        let scan = |t: &TimerTable| t.at.iter().flatten().min().copied();
        // A fixed pseudo-random walk of sets, re-sets (earlier and later) and stops.
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let timer = Timer::ALL[(x % 13) as usize];
            match (x >> 8) % 4 {
                0 => t.stop(timer),
                3 if (x >> 12) % 8 == 0 => t.clear(),
                _ => t.set(timer, now + Duration::from_millis((x >> 16) % 50)),
            }
            assert_eq!(t.next(), scan(&t));
        }
    }

    #[test]
    fn table_pops_earliest_first() {
        let now = Instant::now();
        let mut t = TimerTable::default();
        t.set(Timer::B, now + Duration::from_secs(2));
        t.set(Timer::A, now + Duration::from_secs(1));
        assert_eq!(t.next(), Some(now + Duration::from_secs(1)));
        assert_eq!(t.pop_expired(now), None);
        let later = now + Duration::from_secs(3);
        assert_eq!(t.pop_expired(later), Some(Timer::A));
        assert_eq!(t.pop_expired(later), Some(Timer::B));
        assert_eq!(t.next(), None);
    }
}
