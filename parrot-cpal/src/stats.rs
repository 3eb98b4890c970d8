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
    pub(crate) capture_frames: AtomicU64,
    pub(crate) playback_frames: AtomicU64,
    pub(crate) playback_callbacks: AtomicU64,
    pub(crate) playback_largest: AtomicU64,
    pub(crate) capture_fill: AtomicU64,
    pub(crate) playback_fill: AtomicU64,
    pub(crate) capture_resyncs: AtomicU64,
    pub(crate) capture_dropped: AtomicU64,
    pub(crate) playback_resyncs: AtomicU64,
    pub(crate) playback_dropped: AtomicU64,
    pub(crate) capture_clock_ppm: AtomicI64,
    pub(crate) playback_clock_ppm: AtomicI64,
    /// Not a counter: the ring position (samples ever read) up to which the playback callback
    /// is to skip stale audio; written by the call's side, honoured by the callback.
    pub(crate) playback_skip_to: AtomicU64,
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
    /// Frames the capture device delivered (its clock).
    pub capture_frames: u64,
    /// Frames the playback device took (its clock).
    pub playback_frames: u64,
    /// Playback device callbacks.
    pub playback_callbacks: u64,
    /// The most frames one playback callback asked for.
    pub playback_largest: u64,
    /// Capture buffer fill last seen by the call, codec samples.
    pub capture_fill: u64,
    /// Playback ring fill last seen by the call, device frames.
    pub playback_fill: u64,
    /// Times a capture backlog (a device that started late or stalled) was dropped.
    pub capture_resyncs: u64,
    /// Codec samples dropped by those resyncs.
    pub capture_dropped: u64,
    /// Times stale playback audio was skipped to bring the latency back to its target.
    pub playback_resyncs: u64,
    /// Device frames skipped by those resyncs.
    pub playback_dropped: u64,
    /// The capture device's clock against the host's, parts per million, measured from the
    /// frames its callbacks delivered (0 until measured).
    pub capture_clock_ppm: i64,
    /// The playback device's clock against the host's, parts per million, measured from the
    /// frames its callbacks took (0 until measured).
    pub playback_clock_ppm: i64,
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
            capture_frames: self.capture_frames.load(Relaxed),
            playback_frames: self.playback_frames.load(Relaxed),
            playback_callbacks: self.playback_callbacks.load(Relaxed),
            playback_largest: self.playback_largest.load(Relaxed),
            capture_fill: self.capture_fill.load(Relaxed),
            playback_fill: self.playback_fill.load(Relaxed),
            capture_resyncs: self.capture_resyncs.load(Relaxed),
            capture_dropped: self.capture_dropped.load(Relaxed),
            playback_resyncs: self.playback_resyncs.load(Relaxed),
            playback_dropped: self.playback_dropped.load(Relaxed),
            capture_clock_ppm: self.capture_clock_ppm.load(Relaxed),
            playback_clock_ppm: self.playback_clock_ppm.load(Relaxed),
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
