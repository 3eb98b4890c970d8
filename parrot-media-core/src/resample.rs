//! Sample-rate conversion for playback: a polyphase windowed-sinc FIR resampler.
//!
//! Converting a 48 kHz prompt to the 8 kHz of G.711 by dropping samples folds everything above
//! 4 kHz back into the band (aliasing). This resampler low-passes at 90% of the lower Nyquist
//! frequency with a Blackman-windowed sinc of 24 zero crossings (stop-band rejection around
//! 70 dB) and evaluates the filter only at the output instants, one precomputed phase per
//! fractional position (exact for rational ratios with up to 1024 phases).

const ZERO_CROSSINGS: f64 = 24.0;
const MAX_PHASES: u64 = 1024;

/// A rational-ratio resampler from `from` Hz to `to` Hz.
#[derive(Clone, Debug)]
pub struct Resampler {
    up: u64,
    down: u64,
    phases: u64,
    half: i64,
    taps: usize,
    coeffs: Vec<f32>,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Resampler {
    /// A resampler from `from` to `to` samples per second (both non-zero).
    #[must_use]
    pub fn new(from: u32, to: u32) -> Self {
        let (from, to) = (u64::from(from.max(1)), u64::from(to.max(1)));
        let g = gcd(from, to);
        let (up, down) = (to / g, from / g);
        let phases = up.min(MAX_PHASES);
        // Cutoff relative to the input rate (cycles per input sample).
        let cutoff = 0.9 * 0.5 * (to.min(from) as f64) / from as f64;
        let half_width = ZERO_CROSSINGS / (2.0 * cutoff);
        let half = half_width.ceil() as i64;
        let taps = (2 * half + 1) as usize;
        let mut coeffs = vec![0f32; phases as usize * taps];
        for p in 0..phases {
            let frac = p as f64 / phases as f64;
            for j in 0..taps {
                // Tap j multiplies input[base + j - half]; its distance from the output instant.
                let tau = frac - (j as i64 - half) as f64;
                let x = tau / half_width;
                let w = if x.abs() >= 1.0 {
                    0.0
                } else {
                    0.42 + 0.5 * (core::f64::consts::PI * x).cos()
                        + 0.08 * (2.0 * core::f64::consts::PI * x).cos()
                };
                let arg = 2.0 * cutoff * tau;
                let sinc = if arg.abs() < 1e-12 {
                    1.0
                } else {
                    (core::f64::consts::PI * arg).sin() / (core::f64::consts::PI * arg)
                };
                coeffs[p as usize * taps + j] = (2.0 * cutoff * sinc * w) as f32;
            }
        }
        Resampler {
            up,
            down,
            phases,
            half,
            taps,
            coeffs,
        }
    }

    /// Whether input and output rates are equal.
    #[must_use]
    pub fn is_identity(&self) -> bool {
        self.up == self.down
    }

    /// Resamples a whole signal.
    #[must_use]
    pub fn process(&self, input: &[f32]) -> Vec<f32> {
        if self.is_identity() {
            return input.to_vec();
        }
        let out_len = (input.len() as u64 * self.up / self.down) as usize;
        let mut out = Vec::with_capacity(out_len);
        for n in 0..out_len as u64 {
            let u = n * self.down;
            let base = (u / self.up) as i64;
            let phase = (u % self.up) * self.phases / self.up;
            let h = &self.coeffs[phase as usize * self.taps..(phase as usize + 1) * self.taps];
            let mut acc = 0f32;
            let start = base - self.half;
            for (j, &c) in h.iter().enumerate() {
                let k = start + j as i64;
                if k >= 0 && (k as usize) < input.len() {
                    acc += c * input[k as usize];
                }
            }
            out.push(acc);
        }
        out
    }
}

/// Converts mono `f32` samples at `from` Hz to 16-bit samples at `to` Hz.
#[must_use]
pub fn resample_to_i16(input: &[f32], from: u32, to: u32) -> Vec<i16> {
    Resampler::new(from, to)
        .process(input)
        .into_iter()
        .map(|s| s.round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, freq: f64, secs: f64, amp: f64) -> Vec<f32> {
        (0..(f64::from(rate) * secs) as usize)
            .map(|n| {
                (amp * (2.0 * core::f64::consts::PI * freq * n as f64 / f64::from(rate)).sin())
                    as f32
            })
            .collect()
    }

    fn rms(x: &[f32]) -> f64 {
        let m = x.len() / 4;
        let mid = &x[m..x.len() - m];
        (mid.iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            / mid.len() as f64)
            .sqrt()
    }

    #[test]
    fn passband_tone_survives_48k_to_8k() {
        let out = Resampler::new(48000, 8000).process(&sine(48000, 1000.0, 0.5, 10000.0));
        assert_eq!(out.len(), 4000);
        let r = rms(&out) / (10000.0 / 2f64.sqrt());
        assert!((0.98..1.02).contains(&r), "gain {r}");
    }

    #[test]
    fn tones_above_nyquist_do_not_alias_48k_to_8k() {
        for f in [4500.0, 6000.0, 10000.0, 20000.0] {
            let out = Resampler::new(48000, 8000).process(&sine(48000, f, 0.5, 10000.0));
            let db = 20.0 * (rms(&out) / (10000.0 / 2f64.sqrt())).log10();
            assert!(db < -50.0, "{f} Hz leaks at {db:.1} dB");
        }
    }

    #[test]
    fn non_integer_ratio_44100_to_8000_keeps_length_and_gain() {
        let out = Resampler::new(44100, 8000).process(&sine(44100, 440.0, 0.5, 10000.0));
        assert_eq!(out.len(), 4000);
        let r = rms(&out) / (10000.0 / 2f64.sqrt());
        assert!((0.98..1.02).contains(&r), "gain {r}");
        let alias = Resampler::new(44100, 8000).process(&sine(44100, 7000.0, 0.5, 10000.0));
        assert!(rms(&alias) < 10.0);
    }

    #[test]
    fn upsampling_8k_to_48k_keeps_gain() {
        let out = Resampler::new(8000, 48000).process(&sine(8000, 1000.0, 0.5, 10000.0));
        assert_eq!(out.len(), 24000);
        let r = rms(&out) / (10000.0 / 2f64.sqrt());
        assert!((0.97..1.03).contains(&r), "gain {r}");
    }
}
