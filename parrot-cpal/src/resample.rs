//! Streaming band-limited resampling between a device's rate and the codec clock.
//!
//! A Kaiser-windowed sinc interpolator (32 zero crossings each side, β = 8, cutoff at 97.5% of
//! the lower Nyquist frequency) evaluated at each output instant from a finely sampled table.
//! Unlike a rational polyphase bank its ratio is continuous, so drift correction can nudge it
//! by a few parts per million at any time ([`Resampler::set_adjust`]). After construction it
//! never allocates: the input history is a fixed buffer that slides.

use std::f64::consts::PI;

const ZEROS: usize = 32;
const TABLE_RES: usize = 512;
const KAISER_BETA: f64 = 8.0;
const CUTOFF: f64 = 0.975;
const CHUNK: usize = 1024;

/// A mono resampler from `from` Hz to `to` Hz with an adjustable output-rate multiplier.
#[derive(Clone, Debug)]
pub struct Resampler {
    step: f64,
    adjust: f64,
    c: f64,
    half: usize,
    table: Vec<f32>,
    hist: Vec<f32>,
    pos: f64,
}

fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, mut k) = (1.0, 1.0, 1.0);
    while term > sum * 1e-12 {
        term *= (x / (2.0 * k)) * (x / (2.0 * k));
        sum += term;
        k += 1.0;
    }
    sum
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz (both non-zero).
    #[must_use]
    pub fn new(from: u32, to: u32) -> Self {
        let (from, to) = (f64::from(from.max(1)), f64::from(to.max(1)));
        // Cutoff in cycles per input sample, times two: 1.0 is the input's Nyquist frequency.
        let c = CUTOFF * (to / from).min(1.0);
        let half = (ZEROS as f64 / c).ceil() as usize + 1;
        let n = ZEROS * TABLE_RES + 2;
        let norm = bessel_i0(KAISER_BETA);
        let table = (0..n)
            .map(|i| {
                let u = i as f64 / TABLE_RES as f64;
                let sinc = if u == 0.0 {
                    1.0
                } else {
                    (PI * u).sin() / (PI * u)
                };
                let r = u / ZEROS as f64;
                let w = if r >= 1.0 {
                    0.0
                } else {
                    bessel_i0(KAISER_BETA * (1.0 - r * r).sqrt()) / norm
                };
                (sinc * w) as f32
            })
            .collect();
        Self {
            step: from / to,
            adjust: 1.0,
            c,
            half,
            table,
            hist: Vec::with_capacity(2 * half + CHUNK),
            pos: 0.0,
        }
    }

    /// Multiplies the output rate by `adjust` (1.0 = nominal): 1.001 makes 0.1% more samples.
    pub fn set_adjust(&mut self, adjust: f64) {
        self.adjust = adjust.clamp(0.5, 2.0);
    }

    /// The current output-rate multiplier.
    #[must_use]
    pub fn adjust(&self) -> f64 {
        self.adjust
    }

    /// The delay the filter adds, in input samples.
    #[must_use]
    pub fn delay(&self) -> usize {
        self.half
    }

    /// Feeds `input` and hands every output sample it completes to `emit`.
    pub fn process(&mut self, mut input: &[f32], mut emit: impl FnMut(f32)) {
        while !input.is_empty() {
            let room = self.hist.capacity() - self.hist.len();
            let n = room.min(input.len());
            self.hist.extend_from_slice(&input[..n]);
            input = &input[n..];
            let step = self.step / self.adjust;
            while (self.pos.floor() as usize) + self.half < self.hist.len() {
                emit(self.interpolate(self.pos));
                self.pos += step;
            }
            let keep_from = (self.pos.floor() as usize)
                .saturating_sub(self.half)
                .min(self.hist.len());
            if keep_from > 0 {
                self.hist.copy_within(keep_from.., 0);
                self.hist.truncate(self.hist.len() - keep_from);
                self.pos -= keep_from as f64;
            }
        }
    }

    fn interpolate(&self, t: f64) -> f32 {
        let center = t.floor() as isize;
        let frac = t - center as f64;
        let half = self.half as isize;
        let lo = (center - half + 1).max(0);
        let hi = (center + half).min(self.hist.len() as isize - 1);
        let limit = ZEROS as f64;
        let mut acc = 0.0f32;
        for i in lo..=hi {
            let u = ((i - center) as f64 - frac).abs() * self.c;
            if u >= limit {
                continue;
            }
            let x = u * TABLE_RES as f64;
            let j = x as usize;
            let f = (x - j as f64) as f32;
            let g = self.table[j] + (self.table[j + 1] - self.table[j]) * f;
            acc += self.hist[i as usize] * g;
        }
        acc * self.c as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f64, secs: f64) -> Vec<f32> {
        let n = (f64::from(rate) * secs) as usize;
        (0..n)
            .map(|i| (0.5 * (2.0 * PI * hz * i as f64 / f64::from(rate)).sin()) as f32)
            .collect()
    }

    fn resample(x: &[f32], from: u32, to: u32) -> Vec<f32> {
        let mut r = Resampler::new(from, to);
        let mut out = Vec::new();
        for chunk in x.chunks(480) {
            r.process(chunk, |v| out.push(v));
        }
        out
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    /// RMS of the settled middle (past the filter's start-up).
    fn mid_rms(x: &[f32]) -> f64 {
        rms(&x[x.len() / 4..x.len() * 3 / 4])
    }

    #[test]
    fn in_band_tone_keeps_its_energy_48k_to_8k() {
        let x = tone(48000, 3500.0, 1.0);
        let y = resample(&x, 48000, 8000);
        assert!((y.len() as i64 - 8000).abs() < 100, "{} samples", y.len());
        let gain_db = 20.0 * (mid_rms(&y) / mid_rms(&x)).log10();
        assert!(gain_db.abs() < 0.5, "3.5 kHz gain {gain_db:.2} dB");
    }

    #[test]
    fn out_of_band_tone_is_rejected_48k_to_8k() {
        let x = tone(48000, 6000.0, 1.0);
        let y = resample(&x, 48000, 8000);
        let gain_db = 20.0 * (mid_rms(&y) / mid_rms(&x)).log10();
        assert!(
            gain_db < -40.0,
            "6 kHz (would alias to 2 kHz) only {gain_db:.1} dB"
        );
        let x = tone(44100, 5000.0, 1.0);
        let y = resample(&x, 44100, 8000);
        let gain_db = 20.0 * (mid_rms(&y) / mid_rms(&x)).log10();
        assert!(gain_db < -40.0, "5 kHz at 44.1 kHz only {gain_db:.1} dB");
    }

    #[test]
    fn upsampling_8k_to_48k_keeps_the_tone_and_adds_no_images() {
        let x = tone(8000, 1000.0, 1.0);
        let y = resample(&x, 8000, 48000);
        assert!((y.len() as i64 - 48000).abs() < 300, "{} samples", y.len());
        let gain_db = 20.0 * (mid_rms(&y) / mid_rms(&x)).log10();
        assert!(gain_db.abs() < 0.5, "1 kHz gain {gain_db:.2} dB");
        // The image of 1 kHz at 7 kHz would show as energy left after removing the tone.
        let mid = &y[12000..36000];
        let (mut s, mut c) = (0.0, 0.0);
        for (i, v) in mid.iter().enumerate() {
            let w = 2.0 * PI * 1000.0 * i as f64 / 48000.0;
            s += f64::from(*v) * w.sin();
            c += f64::from(*v) * w.cos();
        }
        let n = mid.len() as f64;
        let (a, b) = (2.0 * s / n, 2.0 * c / n);
        let resid: f64 = mid
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let w = 2.0 * PI * 1000.0 * i as f64 / 48000.0;
                (f64::from(*v) - a * w.sin() - b * w.cos()).powi(2)
            })
            .sum::<f64>()
            / n;
        let resid_db = 10.0 * (resid / rms(mid).powi(2)).log10();
        assert!(resid_db < -50.0, "images/distortion at {resid_db:.1} dB");
    }

    #[test]
    fn adjust_changes_the_output_count() {
        let x = tone(48000, 440.0, 2.0);
        let mut r = Resampler::new(48000, 8000);
        r.set_adjust(1.01);
        let mut n = 0usize;
        for chunk in x.chunks(480) {
            r.process(chunk, |_| n += 1);
        }
        assert!(
            (n as f64 - 16160.0).abs() < 60.0,
            "{n} samples for 1% more than 16000"
        );
    }
}
