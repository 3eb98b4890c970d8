//! Counters shared by the device callbacks, the media task and whoever displays them.

use parrot_ua::MediaStats;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Live counters of an [`crate::Audio`]: buffer overruns and underruns, level meters, drift
/// correction, and the call's media counters. Cheap to read from any thread.
#[derive(Debug, Default)]
pub struct AudioStats {
    pub(crate) capture_overruns: AtomicU64,
    pub(crate) capture_underruns: AtomicU64,
    pub(crate) playback_overruns: AtomicU64,
    pub(crate) playback_underruns: AtomicU64,
    pub(crate) captured: AtomicU64,
    pub(crate) played: AtomicU64,
    pub(crate) input_peak: AtomicU32,
    pub(crate) output_peak: AtomicU32,
    pub(crate) capture_ppm: AtomicI64,
    pub(crate) playback_ppm: AtomicI64,
    pub(crate) media: Mutex<Option<MediaStats>>,
}

/// A snapshot of [`AudioStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AudioCounters {
    /// Device samples dropped because the capture ring was full.
    pub capture_overruns: u64,
    /// Codec samples that were due but not yet captured.
    pub capture_underruns: u64,
    /// Device samples dropped because the playback ring was full.
    pub playback_overruns: u64,
    /// Device frames played as silence because the playback ring ran dry.
    pub playback_underruns: u64,
    /// Codec-clock samples handed to the call.
    pub captured: u64,
    /// Codec-clock samples received for playback.
    pub played: u64,
    /// Drift correction applied to capture, parts per million.
    pub capture_correction_ppm: i64,
    /// Drift correction applied to playback, parts per million.
    pub playback_correction_ppm: i64,
}

impl AudioStats {
    /// The counters now.
    #[must_use]
    pub fn counters(&self) -> AudioCounters {
        AudioCounters {
            capture_overruns: self.capture_overruns.load(Relaxed),
            capture_underruns: self.capture_underruns.load(Relaxed),
            playback_overruns: self.playback_overruns.load(Relaxed),
            playback_underruns: self.playback_underruns.load(Relaxed),
            captured: self.captured.load(Relaxed),
            played: self.played.load(Relaxed),
            capture_correction_ppm: self.capture_ppm.load(Relaxed),
            playback_correction_ppm: self.playback_ppm.load(Relaxed),
        }
    }

    /// Peak input and output levels since the last call, 0.0..=1.0 of full scale.
    pub fn take_levels(&self) -> (f32, f32) {
        let f = |a: &AtomicU32| a.swap(0, Relaxed) as f32 / 32768.0;
        (f(&self.input_peak), f(&self.output_peak))
    }

    /// The call's latest media counters (packets, loss, jitter, codec), once media runs.
    #[must_use]
    pub fn media(&self) -> Option<MediaStats> {
        self.media.lock().ok().and_then(|m| *m)
    }

    pub(crate) fn set_media(&self, s: &MediaStats) {
        if let Ok(mut m) = self.media.lock() {
            *m = Some(*s);
        }
    }

    pub(crate) fn peak(a: &AtomicU32, samples: &[i16]) {
        let p = samples
            .iter()
            .map(|s| u32::from(s.unsigned_abs()))
            .max()
            .unwrap_or(0);
        a.fetch_max(p, Relaxed);
    }
}
