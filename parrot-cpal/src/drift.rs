//! Reconciling two clocks that should agree and never quite do.
//!
//! A sound card's crystal and the peer's RTP clock (or our own packet pacer) both claim, say,
//! 48 kHz and 8 kHz; in practice they differ by tens to hundreds of parts per million. Assumed
//! equal, a 0.1% difference moves a buffer by 3.6 s an hour: it overflows or runs dry, once a
//! minute or so, audibly. The fix, as in every softphone: watch the fill of the buffer between
//! the two clocks over a sliding window and steer the resampling ratio so the fill stays near
//! a target. The controller is a PI loop on the window-averaged fill (time constant about 40 s,
//! critically damped: a device's period and packet arrival make the fill a sawtooth, and a
//! faster loop turned that noise into ±0.2% of ratio wobble); its integral term converges on
//! the true rate ratio, which [`ClockReconciler::correction_ppm`] reports.
//!
//! Rate correction is slow on purpose (a 0.5% pitch change is inaudible, a 5% one is not), so
//! it cannot work off a sudden excess: a device that starts a second late, or stalls, leaves a
//! second of stale audio in the buffer, which ±0.5% would take minutes to drain. When even the
//! lowest fill over half a second stays far over the target, the excess is dropped at once
//! ([`ClockReconciler::take_excess`]), and the integral ignores such episodes (conditional
//! integration) so they do not distort the clock estimate.

const BIN_SECS: f64 = 0.1;
const BINS: usize = 10;
const KP: f64 = 0.05;
const KI: f64 = 0.000_625;
/// The largest ratio change drift correction may apply (0.5% is inaudible; real clocks are
/// within 0.01–0.1%).
pub const MAX_CORRECTION: f64 = 0.005;
/// How long the fill must stay over the resync limit before the excess is dropped, seconds.
const RESYNC_WINDOW_SECS: f64 = 0.5;
/// After asking for a skip, how long the fill is not averaged (the device applies the skip
/// on its next callback, or when it wakes from a stall), seconds.
const RESYNC_HOLDOFF_SECS: f64 = 0.2;

/// A PI controller steering a resampling ratio so a buffer's fill stays near its target.
///
/// Feed it the fill each time the buffer changes ([`ClockReconciler::update`]); apply the
/// multiplier it returns to the rate at which the buffer is filled, and drop what
/// [`ClockReconciler::take_excess`] says is stale.
#[derive(Clone, Debug)]
pub struct ClockReconciler {
    rate: f64,
    target: f64,
    slack: f64,
    bins: [f64; BINS],
    filled_bins: usize,
    next_bin: usize,
    bin_start: Option<f64>,
    bin_sum: f64,
    bin_count: u32,
    integral: f64,
    multiplier: f64,
    low_start: Option<f64>,
    low: usize,
    excess: Option<usize>,
    resyncs: u64,
    holdoff_until: f64,
}

impl ClockReconciler {
    /// A reconciler for a buffer counted in samples at `rate` Hz, kept near `target` samples.
    /// The fill may exceed the target by `slack` samples before the excess is dropped.
    #[must_use]
    pub fn new(rate: u32, target: usize, slack: usize) -> Self {
        Self {
            rate: f64::from(rate.max(1)),
            target: target as f64,
            slack: slack.max(1) as f64,
            bins: [0.0; BINS],
            filled_bins: 0,
            next_bin: 0,
            bin_start: None,
            bin_sum: 0.0,
            bin_count: 0,
            integral: 0.0,
            multiplier: 1.0,
            low_start: None,
            low: usize::MAX,
            excess: None,
            resyncs: 0,
            holdoff_until: f64::MIN,
        }
    }

    /// The fill the controller aims at, samples.
    #[must_use]
    pub fn target(&self) -> usize {
        self.target as usize
    }

    /// Records the buffer's fill at `now` (seconds on any monotonic clock); returns the
    /// multiplier for the producer's rate (below 1 when the buffer is too full).
    pub fn update(&mut self, now: f64, fill: usize) -> f64 {
        self.watch_excess(now, fill);
        if now < self.holdoff_until {
            // The skip just asked for may not have happened yet: the fill says nothing until it
            // has. Hold the clock estimate meanwhile.
            self.multiplier =
                (1.0 - KI * self.integral).clamp(1.0 - MAX_CORRECTION, 1.0 + MAX_CORRECTION);
            return self.multiplier;
        }
        let start = *self.bin_start.get_or_insert(now);
        self.bin_sum += fill as f64;
        self.bin_count += 1;
        if now - start < BIN_SECS {
            return self.multiplier;
        }
        let dt = now - start;
        self.bins[self.next_bin] = self.bin_sum / f64::from(self.bin_count);
        self.next_bin = (self.next_bin + 1) % BINS;
        self.filled_bins = (self.filled_bins + 1).min(BINS);
        self.bin_start = Some(now);
        self.bin_sum = 0.0;
        self.bin_count = 0;
        let mean = self.bins[..self.filled_bins].iter().sum::<f64>() / self.filled_bins as f64;
        let error = (mean - self.target) / self.rate;
        // Conditional integration: only a fill near the target says something about the
        // clocks; a stall or a burst (resynced soon) would wind the integral up.
        if (mean - self.target).abs() <= self.slack {
            // Anti-windup: the integral alone may not ask for more than the allowed correction.
            self.integral =
                (self.integral + error * dt).clamp(-MAX_CORRECTION / KI, MAX_CORRECTION / KI);
        }
        self.multiplier = (1.0 - KP * error - KI * self.integral)
            .clamp(1.0 - MAX_CORRECTION, 1.0 + MAX_CORRECTION);
        self.multiplier
    }

    /// Tracks the lowest fill over each window; a window whose lowest fill is still over the
    /// target plus slack holds that much stale audio.
    fn watch_excess(&mut self, now: f64, fill: usize) {
        let start = *self.low_start.get_or_insert(now);
        self.low = self.low.min(fill);
        if now - start < RESYNC_WINDOW_SECS {
            return;
        }
        let low = self.low as f64;
        self.low_start = Some(now);
        self.low = usize::MAX;
        if low > self.target + self.slack {
            self.excess = Some((low - self.target) as usize);
            self.resyncs += 1;
            self.holdoff_until = now + RESYNC_HOLDOFF_SECS;
            // The averaged fill is about to change by the dropped amount: start afresh.
            self.filled_bins = 0;
            self.next_bin = 0;
            self.bin_start = None;
            self.bin_sum = 0.0;
            self.bin_count = 0;
        }
    }

    /// Samples to drop now, oldest first, to bring the fill back to the target (once per
    /// detection; `None` when the fill is in bounds).
    pub fn take_excess(&mut self) -> Option<usize> {
        self.excess.take()
    }

    /// How many times an excess was found.
    #[must_use]
    pub fn resyncs(&self) -> u64 {
        self.resyncs
    }

    /// The current multiplier.
    #[must_use]
    pub fn multiplier(&self) -> f64 {
        self.multiplier
    }

    /// The rate correction the integral has settled on, parts per million: the measured
    /// difference between the two clocks (positive: the producer's clock runs slow).
    #[must_use]
    pub fn correction_ppm(&self) -> f64 {
        -KI * self.integral * 1e6
    }
}

/// A clock's rate measured against the host clock from the frames it counted: the
/// least-squares slope of frames over time since it last (re)started. Device callbacks count
/// frames a period (5–25 ms) at a time; fitting every observation averages that quantisation
/// out. Only for reporting: the buffer fill is what is steered.
#[derive(Clone, Debug, Default)]
pub struct RateMeter {
    anchor: Option<(f64, u64)>,
    n: f64,
    mean_t: f64,
    mean_f: f64,
    var_t: f64,
    cov: f64,
    last_t: f64,
}

/// Seconds of counting before a rate is reported.
const RATE_MIN_SECS: f64 = 5.0;

impl RateMeter {
    /// Records that `frames` had been counted by `now` (seconds).
    pub fn update(&mut self, now: f64, frames: u64) {
        let Some((t0, f0)) = self.anchor else {
            if frames > 0 {
                self.anchor = Some((now, frames));
            }
            return;
        };
        let (t, f) = (now - t0, frames.saturating_sub(f0) as f64);
        self.n += 1.0;
        let dt = t - self.mean_t;
        self.mean_t += dt / self.n;
        self.mean_f += (f - self.mean_f) / self.n;
        self.var_t += dt * (t - self.mean_t);
        self.cov += dt * (f - self.mean_f);
        self.last_t = t;
    }

    /// Starts measuring afresh (the device stalled or restarted).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// The measured rate, frames per second, once there are a few seconds to fit.
    #[must_use]
    pub fn rate(&self) -> Option<f64> {
        (self.last_t >= RATE_MIN_SECS && self.var_t > 0.0).then(|| self.cov / self.var_t)
    }

    /// The clock's deviation from `nominal`, parts per million, once measured.
    #[must_use]
    pub fn ppm(&self, nominal: u32) -> Option<f64> {
        self.rate()
            .map(|r| (r / f64::from(nominal.max(1)) - 1.0) * 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a simulated call saw.
    #[derive(Debug)]
    struct Run {
        /// Lowest and highest fill after the first minute, samples.
        lo: f64,
        hi: f64,
        /// Samples dropped because the ring was full, after the first minute.
        overruns: f64,
        /// Samples the device asked for and did not get, after the first minute.
        underruns: f64,
        /// Mean fill over the last minute, samples.
        last_minute_mean: f64,
        /// The integral's clock estimate at the end, ppm.
        ppm: f64,
        resyncs: u64,
    }

    /// `secs` of virtual time through a playback path: the far end's packets (20 ms at the
    /// RTP clock, which runs `rtp_skew` times the host clock) resampled by the reconciler's
    /// multiplier into a 1 s ring; a device taking 25 ms periods at `device_skew` times the
    /// nominal rate, which takes nothing during `stall` (start, seconds). An excess the
    /// reconciler reports is skipped by the device's next period, as an absolute read
    /// position (what the cpal callback does: repeated requests during a stall merge).
    fn simulate(rtp_skew: f64, device_skew: f64, stall: (f64, f64), secs: f64) -> Run {
        let rate = 48000.0;
        let capacity = 48000.0;
        let target = 2880; // 60 ms
        let mut r = ClockReconciler::new(48000, target, 4800);
        let mut fill = 0.0f64;
        let (mut pushed, mut read, mut skip_to) = (0.0f64, 0.0f64, 0.0f64);
        let mut run = Run {
            lo: f64::MAX,
            hi: f64::MIN,
            overruns: 0.0,
            underruns: 0.0,
            last_minute_mean: 0.0,
            ppm: 0.0,
            resyncs: 0,
        };
        let (mut last_sum, mut last_n) = (0.0, 0.0);
        let step = 0.001;
        let mut t = 0.0;
        let (mut next_packet, mut next_period) = (0.0, 0.0);
        let period = 0.025;
        while t < secs {
            let settled = t > 60.0;
            if t >= next_packet {
                let mut add = 0.020 * rate * r.multiplier();
                if fill + add > capacity {
                    if settled {
                        run.overruns += fill + add - capacity;
                    }
                    add = capacity - fill;
                }
                fill += add;
                pushed += add;
                r.update(t, fill as usize);
                if let Some(n) = r.take_excess() {
                    skip_to = skip_to.max(pushed - fill + n as f64);
                }
                next_packet += 0.020 / rtp_skew;
            }
            if t >= next_period {
                if !(stall.0..stall.0 + stall.1).contains(&t) {
                    if skip_to > read {
                        let n = (skip_to - read).min(fill);
                        fill -= n;
                        read += n;
                    }
                    let want = period * rate * device_skew;
                    if want > fill && settled {
                        run.underruns += want - fill;
                    }
                    read += want.min(fill);
                    fill = (fill - want).max(0.0);
                }
                next_period += period;
            }
            if settled {
                run.lo = run.lo.min(fill);
                run.hi = run.hi.max(fill);
            }
            if t > secs - 60.0 {
                last_sum += fill;
                last_n += 1.0;
            }
            t += step;
        }
        run.last_minute_mean = last_sum / last_n;
        run.ppm = r.correction_ppm();
        run.resyncs = r.resyncs();
        run
    }

    fn assert_in_step(run: &Run) {
        // Never dry, never full, and the latency near its 60 ms target (±60 ms) after the
        // first minute; without correction a 0.1% error moves the fill by 3.6 s an hour.
        assert!(run.lo > 0.0 && run.hi < 2880.0 + 2880.0, "{run:?}");
        assert_eq!((run.overruns, run.underruns), (0.0, 0.0), "{run:?}");
        assert!(
            (run.last_minute_mean - 2880.0).abs() < 1200.0,
            "latency drifted: {run:?}"
        );
    }

    #[test]
    fn fast_device_clock_does_not_drift_over_an_hour() {
        let run = simulate(1.0, 1.001, (0.0, 0.0), 3600.0);
        assert_in_step(&run);
        // The device drains 0.1% fast: the producer must make 0.1% more.
        assert!((run.ppm - 1000.0).abs() < 50.0, "{run:?}");
        assert_eq!(run.resyncs, 0, "{run:?}");
    }

    #[test]
    fn slow_device_clock_does_not_drift_over_an_hour() {
        let run = simulate(1.0, 0.999, (0.0, 0.0), 3600.0);
        assert_in_step(&run);
        assert!((run.ppm + 1000.0).abs() < 50.0, "{run:?}");
        assert_eq!(run.resyncs, 0, "{run:?}");
    }

    #[test]
    fn fast_rtp_clock_and_slow_device_do_not_drift_over_an_hour() {
        // The far end's clock 0.2% fast, the device 0.1% slow: 0.3% to take off.
        let run = simulate(1.002, 0.999, (0.0, 0.0), 3600.0);
        assert_in_step(&run);
        assert!((run.ppm + 2994.0).abs() < 60.0, "{run:?}");
    }

    #[test]
    fn matched_clocks_stay_put() {
        let run = simulate(1.0, 1.0, (0.0, 0.0), 600.0);
        assert_in_step(&run);
        assert!(run.ppm.abs() < 50.0, "{run:?}");
        assert_eq!(run.resyncs, 0, "{run:?}");
    }

    #[test]
    fn a_device_that_starts_late_costs_a_resync_not_a_second_of_latency() {
        // What PulseAudio through ALSA did: the stream took 1.5 s to start while packets came
        // in. Rate correction alone would take over three minutes to drain that at 0.5%.
        let run = simulate(1.0, 1.0, (0.0, 1.5), 300.0);
        assert_in_step(&run);
        // A request per half second of the stall (they merge), none after.
        assert!((1..=4).contains(&run.resyncs), "{run:?}");
        assert!(
            run.ppm.abs() < 50.0,
            "the stall skewed the clock estimate: {run:?}"
        );
    }

    #[test]
    fn a_stall_mid_call_is_recovered_within_a_second() {
        let rate = 48000.0;
        let mut r = ClockReconciler::new(48000, 2880, 4800);
        let mut fill = 2880.0f64;
        let mut t = 0.0;
        let mut worst_after = 0.0f64;
        let mut skip = 0.0f64;
        while t < 240.0 {
            // 20 ms in, 20 ms out, except for a one-second stall of the device at t = 60 s.
            fill += 0.020 * rate * r.multiplier();
            r.update(t, fill as usize);
            if let Some(n) = r.take_excess() {
                skip = n as f64;
            }
            if !(60.0..61.0).contains(&t) {
                fill = (fill - skip - 0.020 * rate).max(0.0);
                skip = 0.0;
            }
            if t > 62.0 {
                worst_after = worst_after.max(fill);
            }
            t += 0.020;
        }
        assert!((1..=3).contains(&r.resyncs()), "{} resyncs", r.resyncs());
        assert!(
            worst_after < 2880.0 + 4800.0,
            "fill {worst_after:.0} after the stall"
        );
        assert!(r.correction_ppm().abs() < 100.0, "{}", r.correction_ppm());
    }

    #[test]
    fn rate_meter_sees_through_callback_quantisation() {
        // A device 200 ppm fast, counted in 1,103-frame periods, observed every 20 ms.
        let rate = 44100.0f64 * 1.0002;
        let mut m = RateMeter::default();
        let mut t = 0.0f64;
        while t < 60.0 {
            let periods = (t * rate / 1103.0).floor();
            m.update(t, (periods * 1103.0) as u64 + 4410);
            t += 0.020;
        }
        let ppm = m.ppm(44100).unwrap();
        // Two points a minute apart could be off by a period (25 ms in 60 s: 420 ppm).
        assert!((ppm - 200.0).abs() < 40.0, "{ppm:.1} ppm");
        m.reset();
        assert_eq!(m.ppm(44100), None);
    }
}
