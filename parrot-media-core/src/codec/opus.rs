//! Opus (RFC 6716) with the RTP payload format of RFC 7587, through libopus (cargo feature
//! `opus`). Mono, 48 kHz, VoIP application mode; RFC 7587 §7 has the SDP say `opus/48000/2`
//! whatever the channel count, and decoders handle both.

use super::{AudioCodec, Codec};

/// An Opus encoder/decoder pair.
pub struct OpusCodec {
    enc: opus::Encoder,
    dec: opus::Decoder,
}

impl core::fmt::Debug for OpusCodec {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("OpusCodec")
    }
}

impl OpusCodec {
    /// A mono 48 kHz VoIP codec, or `None` if libopus refuses.
    #[must_use]
    pub fn new() -> Option<Self> {
        let enc = opus::Encoder::new(48000, opus::Channels::Mono, opus::Application::Voip).ok()?;
        let dec = opus::Decoder::new(48000, opus::Channels::Mono).ok()?;
        Some(OpusCodec { enc, dec })
    }
}

impl AudioCodec for OpusCodec {
    fn codec(&self) -> Codec {
        Codec::Opus
    }
    fn sample_rate(&self) -> u32 {
        48000
    }
    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Option<usize> {
        self.enc.encode(pcm, out).ok()
    }
    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Option<usize> {
        self.dec.decode(payload, out, false).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opus_round_trip_keeps_a_tone() {
        let mut c = OpusCodec::new().unwrap();
        let mut out = [0u8; 1500];
        let mut pcm = [0i16; 2048];
        let mut energy = 0f64;
        for frame in 0..20 {
            let input: Vec<i16> = (0..960)
                .map(|n| {
                    (8000.0
                        * (2.0 * core::f64::consts::PI * 440.0 * f64::from(frame * 960 + n)
                            / 48000.0)
                            .sin()) as i16
                })
                .collect();
            let len = c.encode(&input, &mut out).unwrap();
            let got = c.decode(&out[..len], &mut pcm).unwrap();
            assert_eq!(got, 960);
            if frame > 10 {
                energy += pcm[..got]
                    .iter()
                    .map(|&s| f64::from(s).powi(2))
                    .sum::<f64>()
                    / 960.0;
            }
        }
        let rms = (energy / 9.0).sqrt();
        assert!(rms > 3000.0, "rms {rms}");
    }
}
