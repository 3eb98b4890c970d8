//! WAV files as devices: a file plays as the microphone in real time, and what the peer says
//! is written to a file. Lets a person (or a test) use `parrot call` without a sound card.

use crate::ring::{self, Producer};
use crate::Error;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A WAV file delivered into a capture ring at its own rate, in step with the host clock;
/// silence after its end.
pub(crate) struct WavSource {
    samples: Vec<f32>,
    rate: u32,
    pos: u64,
    t0: Option<Instant>,
    ring: Producer<f32>,
}

impl WavSource {
    pub fn open(path: &Path, ring: Producer<f32>) -> Result<Self, Error> {
        let mut r = hound::WavReader::open(path)
            .map_err(|e| Error::Wav(format!("{}: {e}", path.display())))?;
        let spec = r.spec();
        let ch = usize::from(spec.channels.max(1));
        let interleaved: Vec<f32> = match spec.sample_format {
            hound::SampleFormat::Float => r.samples::<f32>().filter_map(Result::ok).collect(),
            hound::SampleFormat::Int => {
                let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
                r.samples::<i32>()
                    .filter_map(Result::ok)
                    .map(|s| s as f32 * scale)
                    .collect()
            }
        };
        let samples = interleaved
            .chunks(ch)
            .map(|f| f.iter().sum::<f32>() / f.len() as f32)
            .collect();
        Ok(Self {
            samples,
            rate: spec.sample_rate,
            pos: 0,
            t0: None,
            ring,
        })
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Moves the samples due by `now` into the ring.
    pub fn pump(&mut self, now: Instant) {
        let t0 = *self.t0.get_or_insert(now);
        let due_total =
            (now.saturating_duration_since(t0).as_secs_f64() * f64::from(self.rate)) as u64;
        while self.pos < due_total {
            let want = (due_total - self.pos).min(1024) as usize;
            let start = self.pos.min(self.samples.len() as u64) as usize;
            let end = (start + want).min(self.samples.len());
            let n = if end > start {
                let rest = ring::push_slice(&mut self.ring, &self.samples[start..end]);
                end - start - rest
            } else {
                let zeros = [0f32; 1024];
                want - ring::push_slice(&mut self.ring, &zeros[..want])
            };
            if n == 0 {
                // The ring is full (the call is not draining it): skip ahead, like a device.
                self.pos = due_total;
                break;
            }
            self.pos += n as u64;
        }
    }
}

/// What the peer sent, written to a WAV file at the codec clock, mono 16 bit.
pub(crate) struct WavSink {
    path: PathBuf,
    writer: Option<hound::WavWriter<BufWriter<File>>>,
}

impl WavSink {
    pub fn new(path: &Path) -> Result<Self, Error> {
        // Fail early (before the call) if the file cannot be created.
        File::create(path).map_err(|e| Error::Wav(format!("{}: {e}", path.display())))?;
        Ok(Self {
            path: path.to_owned(),
            writer: None,
        })
    }

    pub fn start(&mut self, rate: u32) {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        match hound::WavWriter::create(&self.path, spec) {
            Ok(w) => self.writer = Some(w),
            Err(e) => tracing_warn(&format!("{}: {e}", self.path.display())),
        }
    }

    pub fn write(&mut self, samples: &[i16]) {
        if let Some(w) = self.writer.as_mut() {
            let mut w16 = w.get_i16_writer(samples.len() as u32);
            for s in samples {
                w16.write_sample(*s);
            }
            if w16.flush().is_err() {
                self.writer = None;
            }
        }
    }

    pub fn finish(&mut self) {
        if let Some(w) = self.writer.take() {
            if let Err(e) = w.finalize() {
                tracing_warn(&format!("{}: {e}", self.path.display()));
            }
        }
    }
}

impl Drop for WavSink {
    fn drop(&mut self) {
        self.finish();
    }
}

fn tracing_warn(msg: &str) {
    eprintln!("parrot-cpal: output file: {msg}");
}
