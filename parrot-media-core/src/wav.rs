//! WAV (RIFF WAVE) decoding from bytes already in memory, and PCM16 encoding for recordings.
//!
//! The core never opens a file: the adapter fulfils a
//! [`MediaEvent::FileRequest`](crate::session::MediaEvent::FileRequest) with the file's bytes, and this module decodes them. Supported:
//! PCM 8-bit (unsigned), 16/24/32-bit, IEEE float 32, G.711 A-law (format 6) and μ-law (format 7),
//! and `WAVE_FORMAT_EXTENSIBLE` wrapping those; any sample rate; any channel count.
//! Encoding uses `hound`.

use crate::codec::g711::{alaw_decode, ulaw_decode};

/// Why bytes are not a playable WAV file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WavError {
    /// Not RIFF/WAVE, or a chunk runs past the end.
    Malformed,
    /// No `fmt ` or `data` chunk.
    MissingChunk,
    /// A format this decoder does not handle.
    Unsupported,
}

impl core::fmt::Display for WavError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for WavError {}

/// Decoded audio: interleaved 16-bit samples.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WavAudio {
    /// Samples per second per channel.
    pub sample_rate: u32,
    /// Channels.
    pub channels: u16,
    /// Interleaved samples.
    pub samples: Vec<i16>,
}

impl WavAudio {
    /// Down-mixes to mono by averaging channels.
    #[must_use]
    pub fn to_mono_f32(&self) -> Vec<f32> {
        let ch = usize::from(self.channels.max(1));
        self.samples
            .chunks_exact(ch)
            .map(|f| f.iter().map(|&s| f32::from(s)).sum::<f32>() / ch as f32)
            .collect()
    }
}

fn le16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Decodes a WAV file held in memory. Never panics.
pub fn decode_wav(bytes: &[u8]) -> Result<WavAudio, WavError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(WavError::Malformed);
    }
    let mut off = 12;
    let mut fmt: Option<&[u8]> = None;
    let mut data: Option<&[u8]> = None;
    while off + 8 <= bytes.len() {
        let id = &bytes[off..off + 4];
        let size = le32(&bytes[off + 4..off + 8]) as usize;
        let start = off + 8;
        // A truncated data chunk (common in streamed recordings) keeps what is there.
        let end = start.saturating_add(size).min(bytes.len());
        match id {
            b"fmt " => fmt = Some(&bytes[start..end]),
            b"data" => data = Some(&bytes[start..end]),
            _ => {}
        }
        off = start.saturating_add(size).saturating_add(size & 1);
    }
    let (fmt, data) = (
        fmt.ok_or(WavError::MissingChunk)?,
        data.ok_or(WavError::MissingChunk)?,
    );
    if fmt.len() < 16 {
        return Err(WavError::Malformed);
    }
    let mut tag = le16(&fmt[0..2]);
    let channels = le16(&fmt[2..4]);
    let sample_rate = le32(&fmt[4..8]);
    let bits = le16(&fmt[14..16]);
    if tag == 0xFFFE {
        // WAVE_FORMAT_EXTENSIBLE: the sub-format GUID starts with the real tag.
        tag = le16(fmt.get(24..26).ok_or(WavError::Malformed)?);
    }
    if channels == 0 || sample_rate == 0 {
        return Err(WavError::Unsupported);
    }
    let samples: Vec<i16> = match (tag, bits) {
        (1, 8) => data.iter().map(|&b| (i16::from(b) - 128) << 8).collect(),
        (1, 16) => data
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect(),
        (1, 24) => data
            .chunks_exact(3)
            .map(|c| i16::from_le_bytes([c[1], c[2]]))
            .collect(),
        (1, 32) => data
            .chunks_exact(4)
            .map(|c| i16::from_le_bytes([c[2], c[3]]))
            .collect(),
        (3, 32) => data
            .chunks_exact(4)
            .map(|c| {
                (f32::from_le_bytes([c[0], c[1], c[2], c[3]]).clamp(-1.0, 1.0) * 32767.0) as i16
            })
            .collect(),
        (6, 8) => data.iter().map(|&b| alaw_decode(b)).collect(),
        (7, 8) => data.iter().map(|&b| ulaw_decode(b)).collect(),
        _ => return Err(WavError::Unsupported),
    };
    let whole = samples.len() / usize::from(channels) * usize::from(channels);
    let mut samples = samples;
    samples.truncate(whole);
    Ok(WavAudio {
        sample_rate,
        channels,
        samples,
    })
}

/// Encodes interleaved 16-bit PCM as a WAV file in memory (with `hound`), e.g. for a recording
/// made of [`crate::session::AudioFrame`]s.
pub fn encode_wav_pcm16(
    sample_rate: u32,
    channels: u16,
    samples: &[i16],
) -> Result<Vec<u8>, WavError> {
    let spec = hound::WavSpec {
        channels,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut cursor, spec).map_err(|_| WavError::Unsupported)?;
        for &s in samples {
            w.write_sample(s).map_err(|_| WavError::Unsupported)?;
        }
        w.finalize().map_err(|_| WavError::Unsupported)?;
    }
    Ok(cursor.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hound_wav(bits: u16, channels: u16, rate: u32, samples: &[i32]) -> Vec<u8> {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: hound::SampleFormat::Int,
        };
        let mut c = std::io::Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut c, spec).unwrap();
        for &s in samples {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        c.into_inner()
    }

    fn g711_wav(tag: u16, rate: u32, codes: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(b"RIFF");
        v.extend_from_slice(&(4 + 8 + 18 + 8 + codes.len() as u32).to_le_bytes());
        v.extend_from_slice(b"WAVEfmt ");
        v.extend_from_slice(&18u32.to_le_bytes());
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&rate.to_le_bytes());
        v.extend_from_slice(&rate.to_le_bytes());
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&8u16.to_le_bytes());
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend_from_slice(b"data");
        v.extend_from_slice(&(codes.len() as u32).to_le_bytes());
        v.extend_from_slice(codes);
        v
    }

    #[test]
    fn decodes_pcm16_stereo_and_pcm8() {
        let w = decode_wav(&hound_wav(16, 2, 44100, &[1000, -1000, 5, 7])).unwrap();
        assert_eq!((w.sample_rate, w.channels), (44100, 2));
        assert_eq!(w.samples, vec![1000, -1000, 5, 7]);
        assert_eq!(w.to_mono_f32(), vec![0.0, 6.0]);
        let w = decode_wav(&hound_wav(8, 1, 8000, &[0, 127, -128])).unwrap();
        assert_eq!(w.samples, vec![0, 127 << 8, -128 << 8]);
    }

    #[test]
    fn decodes_ulaw_and_alaw_wav() {
        let w = decode_wav(&g711_wav(7, 8000, &[0xFF, 0x00])).unwrap();
        assert_eq!(w.samples, vec![0, -32124]);
        let w = decode_wav(&g711_wav(6, 8000, &[0xD5])).unwrap();
        assert_eq!(w.samples, vec![8]);
    }

    #[test]
    fn encode_then_decode_round_trips() {
        let bytes = encode_wav_pcm16(8000, 1, &[1, -2, 3]).unwrap();
        assert_eq!(decode_wav(&bytes).unwrap().samples, vec![1, -2, 3]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_wav(b"").is_err());
        assert!(decode_wav(b"RIFF\0\0\0\0WAVEfmt \xff\xff\xff\xff").is_err());
        let mut ok = g711_wav(7, 8000, &[1, 2, 3]);
        for i in 0..ok.len() {
            let saved = ok[i];
            ok[i] = 0xFF;
            let _ = decode_wav(&ok);
            let _ = decode_wav(&ok[..i]);
            ok[i] = saved;
        }
    }
}
