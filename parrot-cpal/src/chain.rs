//! Device rate to codec clock and back, with drift correction.

use crate::drift::{ClockReconciler, RateMeter};
use crate::resample::Resampler;
use crate::ring::{self, Consumer, Producer};
use crate::stats::AudioStats;
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

/// How much captured audio is kept ready for the media task: enough to cover a late device
/// callback (cpal/ALSA deliver 5–20 ms at a time).
const CAPTURE_TARGET_MS: u32 = 40;
/// How much audio waits in the playback ring: the device's own period plus the jitter of
/// packet arrival left after the jitter buffer.
pub(crate) const PLAYBACK_TARGET_MS: u32 = 60;
/// How far over its target a buffer's lowest fill (over half a second) may stay before the
/// excess is dropped: above any device period or packet burst, far below the second a
/// stalled device piles up.
const RESYNC_SLACK_MS: u32 = 100;

fn to_i16(v: f32) -> i16 {
    (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Capture: device samples from the callback's ring, resampled to the codec clock, handed to
/// the call at exactly the codec rate of the host clock (the clock the RTP pacer uses). The
/// resampling ratio follows the device's real rate so the FIFO in between neither grows nor
/// empties.
pub(crate) struct CaptureChain {
    ring: Consumer<f32>,
    device_rate: u32,
    resampler: Option<Resampler>,
    pending: VecDeque<f32>,
    clock: Option<ClockReconciler>,
    codec_rate: u32,
    t0: Option<Instant>,
    delivered: u64,
    device_clock: RateMeter,
    stats: Arc<AudioStats>,
}

impl CaptureChain {
    pub fn new(ring: Consumer<f32>, device_rate: u32, stats: Arc<AudioStats>) -> Self {
        Self {
            ring,
            device_rate,
            resampler: None,
            pending: VecDeque::new(),
            clock: None,
            codec_rate: 8000,
            t0: None,
            delivered: 0,
            device_clock: RateMeter::default(),
            stats,
        }
    }

    pub fn start(&mut self, codec_rate: u32) {
        self.codec_rate = codec_rate;
        self.resampler = Some(Resampler::new(self.device_rate, codec_rate));
        self.pending = VecDeque::with_capacity(codec_rate as usize);
        let target = (codec_rate * CAPTURE_TARGET_MS / 1000) as usize;
        let slack = (codec_rate * RESYNC_SLACK_MS / 1000) as usize;
        self.clock = Some(ClockReconciler::new(codec_rate, target, slack));
        // Whatever arrived before the call's media started is stale.
        ring::drain(&mut self.ring, |_| {});
    }

    pub fn capture(&mut self, now: Instant, out: &mut [i16]) -> usize {
        let (Some(rs), Some(clock)) = (self.resampler.as_mut(), self.clock.as_mut()) else {
            return 0;
        };
        let pending = &mut self.pending;
        let cap = pending.capacity();
        let mut dropped = 0u64;
        ring::drain(&mut self.ring, |s| {
            rs.process(s, |v| {
                if pending.len() < cap {
                    pending.push_back(v);
                } else {
                    dropped += 1;
                }
            })
        });
        if dropped > 0 {
            self.stats.capture_overruns.fetch_add(dropped, Relaxed);
        }
        let t0 = match self.t0 {
            Some(t) => t,
            None if pending.len() >= clock.target() => {
                // Start with the target's worth of audio: whatever the device delivered beyond
                // it in its first bursts is latency the controller would take seconds to undo.
                let stale = pending.len() - clock.target();
                pending.drain(..stale);
                *self.t0.insert(now)
            }
            None => return 0,
        };
        let secs = now.saturating_duration_since(t0).as_secs_f64();
        let due_total = (secs * f64::from(self.codec_rate)) as u64;
        let due = due_total.saturating_sub(self.delivered) as usize;
        let n = due.min(pending.len()).min(out.len());
        if n < due.min(out.len()) {
            self.stats
                .capture_underruns
                .fetch_add((due.min(out.len()) - n) as u64, Relaxed);
        }
        for (o, v) in out[..n].iter_mut().zip(pending.drain(..n)) {
            *o = to_i16(v);
        }
        // Samples that were due but missing are skipped, not owed: the call stays in step
        // with the host clock.
        self.delivered += due.min(out.len()) as u64;
        self.stats.capture_fill.store(pending.len() as u64, Relaxed);
        let m = clock.update(secs, pending.len());
        if let Some(excess) = clock.take_excess() {
            // The device delivered a backlog (it started late or stalled): drop the oldest.
            let n = excess.min(pending.len());
            pending.drain(..n);
            self.stats.capture_resyncs.fetch_add(1, Relaxed);
            self.stats.capture_dropped.fetch_add(n as u64, Relaxed);
            self.device_clock.reset();
        }
        self.device_clock
            .update(secs, self.stats.capture_frames.load(Relaxed));
        if let Some(ppm) = self.device_clock.ppm(self.device_rate) {
            self.stats
                .capture_clock_ppm
                .store(ppm.round() as i64, Relaxed);
        }
        rs.set_adjust(m);
        self.stats
            .capture_ppm
            .store(((m - 1.0) * 1e6) as i64, Relaxed);
        self.stats.captured.fetch_add(n as u64, Relaxed);
        AudioStats::peak(&self.stats.input_peak, &out[..n]);
        n
    }
}

/// Playback: frames received by the call (codec clock, the peer's RTP timestamps), resampled
/// to the device rate into the callback's ring. The ratio follows the ring's fill, which
/// reconciles the device's clock with the peer's RTP clock.
pub(crate) struct PlaybackChain {
    ring: Producer<f32>,
    device_rate: u32,
    resampler: Option<Resampler>,
    clock: Option<ClockReconciler>,
    scratch: Vec<f32>,
    t0: Instant,
    /// Samples pushed into the ring since it was made (the producer's position).
    pushed: u64,
    device_clock: RateMeter,
    underruns_seen: u64,
    stats: Arc<AudioStats>,
}

impl PlaybackChain {
    #[cfg_attr(not(feature = "cpal"), allow(dead_code))]
    pub fn new(ring: Producer<f32>, device_rate: u32, stats: Arc<AudioStats>) -> Self {
        Self {
            ring,
            device_rate,
            resampler: None,
            clock: None,
            scratch: Vec::new(),
            t0: Instant::now(),
            pushed: 0,
            device_clock: RateMeter::default(),
            underruns_seen: 0,
            stats,
        }
    }

    pub fn start(&mut self, codec_rate: u32) {
        self.resampler = Some(Resampler::new(codec_rate, self.device_rate));
        let target = (self.device_rate * PLAYBACK_TARGET_MS / 1000) as usize;
        let slack = (self.device_rate * RESYNC_SLACK_MS / 1000) as usize;
        self.clock = Some(ClockReconciler::new(self.device_rate, target, slack));
        self.scratch = Vec::with_capacity(self.device_rate as usize / 10);
    }

    pub fn playback(&mut self, now: Instant, samples: &[i16]) {
        let (Some(rs), Some(clock)) = (self.resampler.as_mut(), self.clock.as_mut()) else {
            return;
        };
        AudioStats::peak(&self.stats.output_peak, samples);
        self.stats.played.fetch_add(samples.len() as u64, Relaxed);
        let mut dropped = 0u64;
        for block in samples.chunks(64) {
            let mut input = [0f32; 64];
            for (d, s) in input.iter_mut().zip(block) {
                *d = f32::from(*s) / 32768.0;
            }
            let scratch = &mut self.scratch;
            rs.process(&input[..block.len()], |v| {
                if scratch.len() < scratch.capacity() {
                    scratch.push(v);
                }
            });
            let rest = ring::push_slice(&mut self.ring, scratch);
            self.pushed += (scratch.len() - rest) as u64;
            dropped += rest as u64;
            scratch.clear();
        }
        if dropped > 0 {
            self.stats.playback_overruns.fetch_add(dropped, Relaxed);
        }
        let secs = now.saturating_duration_since(self.t0).as_secs_f64();
        let fill = ring::fill(&self.ring);
        self.stats.playback_fill.store(fill as u64, Relaxed);
        let m = clock.update(secs, fill);
        if let Some(excess) = clock.take_excess() {
            // Stale audio the device has not taken (it started late or stalled): ask its
            // callback to skip it, as an absolute position in the ring so a late or repeated
            // request never skips twice.
            let read_pos = self.pushed - fill as u64;
            self.stats
                .playback_skip_to
                .fetch_max(read_pos + excess as u64, Relaxed);
            self.stats.playback_resyncs.fetch_add(1, Relaxed);
            self.device_clock.reset();
        }
        let underruns = self.stats.playback_underruns.load(Relaxed);
        if underruns != self.underruns_seen {
            self.underruns_seen = underruns;
            self.device_clock.reset();
        }
        self.device_clock
            .update(secs, self.stats.playback_frames.load(Relaxed));
        if let Some(ppm) = self.device_clock.ppm(self.device_rate) {
            self.stats
                .playback_clock_ppm
                .store(ppm.round() as i64, Relaxed);
        }
        rs.set_adjust(m);
        self.stats
            .playback_ppm
            .store(((m - 1.0) * 1e6) as i64, Relaxed);
    }
}
