//! In-band DTMF detection (ITU-T Q.23/Q.24 tones) with the Goertzel algorithm, for peers that send
//! tones in the audio instead of RFC 4733 events.
//!
//! Audio at 8 kHz is cut into blocks of 205 samples (the classic choice: bins land close to all
//! eight frequencies). A block holds a digit when one row and one column tone dominate their
//! groups, carry most of the block's energy, are loud enough, and have a twist within
//! Q.24 limits. A digit is reported once, after two consecutive blocks agree, and again only
//! after a block without it.

const N: usize = 205;
const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// A streaming DTMF tone detector for 8 kHz audio.
#[derive(Clone, Debug)]
pub struct GoertzelDetector {
    coeffs: [f32; 8],
    q1: [f32; 8],
    q2: [f32; 8],
    energy: f32,
    n: usize,
    last_block: Option<char>,
    reported: Option<char>,
}

impl Default for GoertzelDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl GoertzelDetector {
    /// A detector for 8000 Hz mono audio.
    #[must_use]
    pub fn new() -> Self {
        let mut coeffs = [0.0; 8];
        for (i, f) in ROWS.iter().chain(COLS.iter()).enumerate() {
            let k = (N as f32 * f / 8000.0).round();
            coeffs[i] = 2.0 * (2.0 * core::f32::consts::PI * k / N as f32).cos();
        }
        GoertzelDetector {
            coeffs,
            q1: [0.0; 8],
            q2: [0.0; 8],
            energy: 0.0,
            n: 0,
            last_block: None,
            reported: None,
        }
    }

    /// Feeds samples; calls `on_digit` for each newly detected key.
    pub fn feed(&mut self, samples: &[i16], mut on_digit: impl FnMut(char)) {
        for &s in samples {
            let x = f32::from(s) / 32768.0;
            self.energy += x * x;
            for i in 0..8 {
                let q0 = self.coeffs[i] * self.q1[i] - self.q2[i] + x;
                self.q2[i] = self.q1[i];
                self.q1[i] = q0;
            }
            self.n += 1;
            if self.n == N {
                let d = self.classify();
                if d.is_some() && d == self.last_block && self.reported != d {
                    self.reported = d;
                    if let Some(c) = d {
                        on_digit(c);
                    }
                }
                if d.is_none() {
                    self.reported = None;
                }
                self.last_block = d;
                self.q1 = [0.0; 8];
                self.q2 = [0.0; 8];
                self.energy = 0.0;
                self.n = 0;
            }
        }
    }

    fn classify(&self) -> Option<char> {
        let mut p = [0.0f32; 8];
        for (i, pi) in p.iter_mut().enumerate() {
            *pi = self.q1[i] * self.q1[i] + self.q2[i] * self.q2[i]
                - self.coeffs[i] * self.q1[i] * self.q2[i];
        }
        let best = |g: &[f32]| {
            let (mut bi, mut bv) = (0, g[0]);
            for (i, &v) in g.iter().enumerate() {
                if v > bv {
                    bi = i;
                    bv = v;
                }
            }
            (bi, bv)
        };
        let (r, rp) = best(&p[..4]);
        let (c, cp) = best(&p[4..]);
        // Minimum level: each tone around -30 dBm0 or louder. A pure tone of amplitude A gives
        // power (A·N/2)².
        let min = (0.01 * N as f32 / 2.0).powi(2);
        if rp < min || cp < min {
            return None;
        }
        // Twist: Q.24 allows about 8 dB normal and 4 dB reverse twist.
        if cp > rp * 6.3 || rp > cp * 2.5 {
            return None;
        }
        // Each winner must dominate the other tones of its group by ~8 dB.
        for (i, &v) in p[..4].iter().enumerate() {
            if i != r && v * 6.3 > rp {
                return None;
            }
        }
        for (i, &v) in p[4..].iter().enumerate() {
            if i != c && v * 6.3 > cp {
                return None;
            }
        }
        // The two tones must carry most of the energy (rejects speech and noise).
        let tone_energy = (rp + cp) * 2.0 / N as f32;
        if tone_energy < 0.5 * self.energy {
            return None;
        }
        Some(KEYS[r][c])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(digit: char, ms: usize, amp: f32) -> Vec<i16> {
        let (r, c) = (0..16)
            .map(|i| (i / 4, i % 4))
            .find(|&(r, c)| KEYS[r][c] == digit)
            .unwrap();
        (0..ms * 8)
            .map(|n| {
                let t = n as f32 / 8000.0;
                let v = amp
                    * ((2.0 * core::f32::consts::PI * ROWS[r] * t).sin()
                        + (2.0 * core::f32::consts::PI * COLS[c] * t).sin());
                v as i16
            })
            .collect()
    }

    #[test]
    fn detects_every_key_once_per_tone() {
        let mut d = GoertzelDetector::new();
        let mut got = String::new();
        for key in "123A456B789C*0#D".chars() {
            d.feed(&tone(key, 80, 6000.0), |c| got.push(c));
            d.feed(&vec![0i16; 400], |c| got.push(c));
        }
        assert_eq!(got, "123A456B789C*0#D");
    }

    #[test]
    fn ignores_a_single_tone_and_silence() {
        let mut d = GoertzelDetector::new();
        let mut got = String::new();
        let single: Vec<i16> = (0..4000)
            .map(|n| {
                (8000.0 * (2.0 * core::f32::consts::PI * 1000.0 * n as f32 / 8000.0).sin()) as i16
            })
            .collect();
        d.feed(&single, |c| got.push(c));
        d.feed(&[0i16; 4000], |c| got.push(c));
        assert!(got.is_empty(), "{got}");
    }
}
