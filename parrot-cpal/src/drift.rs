//! Reconciling two clocks that should agree and never quite do.
//!
//! A sound card's crystal and the peer's RTP clock (or our own packet pacer) both claim, say,
//! 48 kHz and 8 kHz; in practice they differ by tens to hundreds of parts per million. Assumed
//! equal, a 0.1% difference moves a buffer by 3.6 s an hour: it overflows or runs dry, once a
//! minute or so, audibly. The fix, as in every softphone: watch the fill of the buffer between
//! the two clocks over a sliding window and steer the resampling ratio so the fill stays near
//! a target. The controller is a PI loop on the window-averaged fill (time constant about 10 s,
//! critically damped); its integral term converges on the true rate ratio, which
//! [`ClockReconciler::correction_ppm`] reports.

const BIN_SECS: f64 = 0.1;
const BINS: usize = 10;
const KP: f64 = 0.2;
const KI: f64 = 0.01;
/// The largest ratio change drift correction may apply (0.5% is inaudible; real clocks are
/// within 0.01–0.1%).
pub const MAX_CORRECTION: f64 = 0.005;

/// A PI controller steering a resampling ratio so a buffer's fill stays near its target.
///
/// Feed it the fill each time the buffer changes ([`ClockReconciler::update`]); apply the
/// multiplier it returns to the rate at which the buffer is filled.
#[derive(Clone, Debug)]
pub struct ClockReconciler {
    rate: f64,
    target: f64,
    bins: [f64; BINS],
    filled_bins: usize,
    next_bin: usize,
    bin_start: Option<f64>,
    bin_sum: f64,
    bin_count: u32,
    integral: f64,
    multiplier: f64,
}

impl ClockReconciler {
    /// A reconciler for a buffer counted in samples at `rate` Hz, kept near `target` samples.
    #[must_use]
    pub fn new(rate: u32, target: usize) -> Self {
        Self {
            rate: f64::from(rate.max(1)),
            target: target as f64,
            bins: [0.0; BINS],
            filled_bins: 0,
            next_bin: 0,
            bin_start: None,
            bin_sum: 0.0,
            bin_count: 0,
            integral: 0.0,
            multiplier: 1.0,
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
        // Anti-windup: the integral alone may not ask for more than the allowed correction.
        self.integral =
            (self.integral + error * dt).clamp(-MAX_CORRECTION / KI, MAX_CORRECTION / KI);
        self.multiplier = (1.0 - KP * error - KI * self.integral)
            .clamp(1.0 - MAX_CORRECTION, 1.0 + MAX_CORRECTION);
        self.multiplier
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An hour of virtual time: a producer delivering bursts of 20 ms at `producer_skew` times
    /// the nominal rate (scaled by the reconciler's multiplier), a consumer draining 10 ms
    /// chunks at the nominal rate. Returns (min, max) fill after the first minute, and the
    /// final correction.
    fn simulate(producer_skew: f64) -> (f64, f64, f64) {
        let rate = 48000.0;
        let target = 2880; // 60 ms
        let mut r = ClockReconciler::new(48000, target);
        let mut fill = target as f64;
        let (mut lo, mut hi) = (f64::MAX, f64::MIN);
        let step = 0.001;
        let mut t = 0.0;
        let (mut next_produce, mut next_consume) = (0.0, 0.0);
        while t < 3600.0 {
            if t >= next_produce {
                fill += 0.020 * rate * producer_skew * r.multiplier();
                r.update(t, fill as usize);
                next_produce += 0.020;
            }
            if t >= next_consume {
                fill -= 0.010 * rate;
                next_consume += 0.010;
            }
            if t > 60.0 {
                lo = lo.min(fill);
                hi = hi.max(fill);
            }
            t += step;
        }
        (lo, hi, r.correction_ppm())
    }

    #[test]
    fn fast_device_clock_does_not_drift_over_an_hour() {
        let (lo, hi, ppm) = simulate(1.001);
        // Without correction the fill would have grown by 3.6 s (172800 samples).
        assert!(lo > 0.0 && hi < 2880.0 + 1500.0, "fill {lo:.0}..{hi:.0}");
        assert!((ppm + 999.0).abs() < 50.0, "correction {ppm:.0} ppm");
    }

    #[test]
    fn slow_device_clock_does_not_drift_over_an_hour() {
        let (lo, hi, ppm) = simulate(0.999);
        assert!(lo > 0.0 && hi < 2880.0 + 1500.0, "fill {lo:.0}..{hi:.0}");
        assert!((ppm - 1001.0).abs() < 50.0, "correction {ppm:.0} ppm");
    }

    #[test]
    fn matched_clocks_stay_put() {
        let (lo, hi, ppm) = simulate(1.0);
        assert!(
            lo > 2880.0 - 1500.0 && hi < 2880.0 + 1500.0,
            "fill {lo:.0}..{hi:.0}"
        );
        assert!(ppm.abs() < 50.0, "correction {ppm:.0} ppm");
    }
}
