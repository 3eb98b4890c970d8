//! [`PreciseTimer`]: a wake-up on the nanosecond for reactors that sleep in whole
//! milliseconds.
//!
//! tokio's timer wheel and `mio::Poll` round every timeout up to a millisecond, and where in
//! that millisecond the wake-up lands depends on when the loop last went to sleep. The media
//! grid (see [`crate::UserAgent`]) makes each stream's packets leave at a fixed offset from
//! its due time, but only if the loop wakes when asked. On Linux a `timerfd` registered with
//! the reactor does that (the way `polling`, under smol, already does); elsewhere the adapter
//! keeps its own timer.

use std::cell::Cell;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use rustix::time::{
    timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags,
    Timespec,
};

/// A one-shot `CLOCK_MONOTONIC` timer (`timerfd`), readable once it fired. Register it with
/// the reactor for readability, [`PreciseTimer::arm`] it before each wait, and
/// [`PreciseTimer::clear`] it when it turned readable.
#[derive(Debug)]
pub struct PreciseTimer {
    fd: OwnedFd,
    armed: Cell<Option<Instant>>,
}

impl PreciseTimer {
    /// A disarmed, non-blocking timer.
    pub fn new() -> io::Result<PreciseTimer> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK,
        )?;
        Ok(PreciseTimer {
            fd,
            armed: Cell::new(None),
        })
    }

    /// Sets the timer to fire at `deadline` (`None` disarms it). Asking for the deadline it
    /// is already armed for costs nothing.
    pub fn arm(&self, deadline: Option<Instant>) -> io::Result<()> {
        if self.armed.get() == deadline {
            return Ok(());
        }
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let value = match deadline {
            None => zero,
            Some(d) => {
                // A zero value disarms: a deadline already passed fires in a nanosecond.
                let wait = d
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_nanos(1));
                Timespec {
                    tv_sec: i64::try_from(wait.as_secs()).unwrap_or(i64::MAX),
                    tv_nsec: i64::from(wait.subsec_nanos()),
                }
            }
        };
        let spec = Itimerspec {
            it_interval: zero,
            it_value: value,
        };
        timerfd_settime(&self.fd, TimerfdTimerFlags::empty(), &spec)?;
        self.armed.set(deadline);
        Ok(())
    }

    /// Consumes the expiry after the timer turned readable; returns whether it had fired
    /// (a stale readiness returns `false`). The timer is then disarmed.
    pub fn clear(&self) -> bool {
        let mut ticks = [0u8; 8];
        let fired = rustix::io::read(&self.fd, &mut ticks).is_ok_and(|n| n == 8);
        if fired {
            self.armed.set(None);
        }
        fired
    }
}

impl AsFd for PreciseTimer {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for PreciseTimer {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_once_at_the_deadline_and_not_before() {
        let t = PreciseTimer::new().unwrap();
        assert!(!t.clear(), "a disarmed timer has not fired");
        let at = Instant::now() + Duration::from_millis(3);
        t.arm(Some(at)).unwrap();
        assert!(!t.clear(), "not yet");
        std::thread::sleep(Duration::from_millis(5));
        assert!(t.clear(), "fired");
        assert!(!t.clear(), "consumed");
    }

    #[test]
    fn a_passed_deadline_fires_at_once_and_none_disarms() {
        let t = PreciseTimer::new().unwrap();
        t.arm(Some(Instant::now())).unwrap();
        std::thread::sleep(Duration::from_millis(1));
        assert!(t.clear());
        t.arm(Some(Instant::now() + Duration::from_millis(2)))
            .unwrap();
        t.arm(None).unwrap();
        std::thread::sleep(Duration::from_millis(4));
        assert!(!t.clear(), "disarmed before it fired");
    }
}
