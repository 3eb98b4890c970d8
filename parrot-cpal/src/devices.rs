//! Sound devices through cpal. The streams live on a thread of their own (a cpal `Stream` may
//! not move between threads); the call's side only sees the rings.

use crate::chain::PLAYBACK_TARGET_MS;
use crate::ring::{Consumer, Producer};
use crate::{AudioStats, DeviceChoice, DeviceInfo, DeviceList, Error};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SizedSample};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

/// The thread holding the cpal streams; dropping this stops them.
pub(crate) struct Streams {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Streams {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn info(d: &cpal::Device, index: usize, default: &Option<String>, input: bool) -> DeviceInfo {
    let name = d.name().unwrap_or_else(|_| "?".into());
    let cfg = if input {
        d.default_input_config()
    } else {
        d.default_output_config()
    };
    DeviceInfo {
        index,
        is_default: default.as_deref() == Some(name.as_str()),
        name,
        format: cfg.ok().map(|c| (c.sample_rate().0, c.channels())),
    }
}

pub(crate) fn list() -> Result<DeviceList, Error> {
    let host = cpal::default_host();
    let din = host.default_input_device().and_then(|d| d.name().ok());
    let dout = host.default_output_device().and_then(|d| d.name().ok());
    let err = |e: cpal::DevicesError| Error::Device(e.to_string());
    Ok(DeviceList {
        capture: host
            .input_devices()
            .map_err(err)?
            .enumerate()
            .map(|(i, d)| info(&d, i, &din, true))
            .collect(),
        playback: host
            .output_devices()
            .map_err(err)?
            .enumerate()
            .map(|(i, d)| info(&d, i, &dout, false))
            .collect(),
    })
}

fn find(host: &cpal::Host, choice: &DeviceChoice, input: bool) -> Result<cpal::Device, Error> {
    let kind = if input { "capture" } else { "playback" };
    let devices = || {
        if input {
            host.input_devices()
        } else {
            host.output_devices()
        }
        .map_err(|e| Error::Device(e.to_string()))
    };
    match choice {
        DeviceChoice::Default => if input {
            host.default_input_device()
        } else {
            host.default_output_device()
        }
        .ok_or_else(|| Error::NoDevice(format!("no default {kind} device"))),
        DeviceChoice::Index(n) => devices()?
            .nth(*n)
            .ok_or_else(|| Error::NoDevice(format!("{kind} device {n} (see `parrot devices`)"))),
        DeviceChoice::Name(want) => {
            let all: Vec<_> = devices()?.collect();
            let name = |d: &cpal::Device| d.name().unwrap_or_default();
            let lower = want.to_lowercase();
            all.iter()
                .position(|d| name(d) == *want)
                .or_else(|| {
                    all.iter()
                        .position(|d| name(d).to_lowercase().contains(&lower))
                })
                .map(|i| all[i].clone())
                .ok_or_else(|| Error::NoDevice(format!("{kind} device named {want:?}")))
        }
        DeviceChoice::Wav(_) | DeviceChoice::None => {
            Err(Error::NoDevice(format!("{kind}: not a sound device")))
        }
    }
}

fn input_stream<T>(
    dev: &cpal::Device,
    cfg: &cpal::StreamConfig,
    mut ring: Producer<f32>,
    active: Arc<AtomicBool>,
    stats: Arc<AudioStats>,
) -> Result<cpal::Stream, cpal::BuildStreamError>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let ch = usize::from(cfg.channels.max(1));
    let scale = 1.0 / ch as f32;
    dev.build_input_stream(
        cfg,
        move |data: &[T], _: &cpal::InputCallbackInfo| {
            if !active.load(Relaxed) {
                return;
            }
            let mut dropped = 0u64;
            stats
                .capture_frames
                .fetch_add((data.len() / ch) as u64, Relaxed);
            for frame in data.chunks(ch) {
                let v: f32 = frame.iter().map(|s| s.to_sample::<f32>()).sum::<f32>() * scale;
                if ring.push(v).is_err() {
                    dropped += 1;
                }
            }
            if dropped > 0 {
                stats.capture_overruns.fetch_add(dropped, Relaxed);
            }
        },
        |e| eprintln!("parrot-cpal: capture: {e}"),
        None,
    )
}

fn output_stream<T>(
    dev: &cpal::Device,
    cfg: &cpal::StreamConfig,
    mut ring: Consumer<f32>,
    active: Arc<AtomicBool>,
    stats: Arc<AudioStats>,
) -> Result<cpal::Stream, cpal::BuildStreamError>
where
    T: SizedSample + FromSample<f32>,
{
    let ch = usize::from(cfg.channels.max(1));
    // Start (and restart after running dry) only with a cushion in the ring.
    let prime = (cfg.sample_rate.0 * PLAYBACK_TARGET_MS / 1000) as usize;
    let mut primed = false;
    // Samples ever read from the ring (played or skipped): the position `playback_skip_to`
    // is measured in.
    let mut read_pos = 0u64;
    dev.build_output_stream(
        cfg,
        move |data: &mut [T], _: &cpal::OutputCallbackInfo| {
            let skip_to = stats.playback_skip_to.load(Relaxed);
            if skip_to > read_pos {
                let n = usize::try_from(skip_to - read_pos)
                    .unwrap_or(usize::MAX)
                    .min(ring.slots());
                if let Ok(chunk) = ring.read_chunk(n) {
                    chunk.commit_all();
                    read_pos += n as u64;
                    stats.playback_dropped.fetch_add(n as u64, Relaxed);
                }
            }
            if !primed && ring.slots() >= prime {
                primed = true;
            }
            let mut dry = 0u64;
            let frames = (data.len() / ch) as u64;
            stats.playback_frames.fetch_add(frames, Relaxed);
            stats.playback_callbacks.fetch_add(1, Relaxed);
            stats.playback_largest.fetch_max(frames, Relaxed);
            for frame in data.chunks_mut(ch) {
                let v = if primed {
                    match ring.pop() {
                        Ok(v) => {
                            read_pos += 1;
                            v
                        }
                        Err(_) => {
                            dry += 1;
                            0.0
                        }
                    }
                } else {
                    0.0
                };
                frame.fill(T::from_sample(v));
            }
            if dry > 0 {
                primed = false;
                if active.load(Relaxed) {
                    stats.playback_underruns.fetch_add(dry, Relaxed);
                }
            }
        },
        |e| eprintln!("parrot-cpal: playback: {e}"),
        None,
    )
}

macro_rules! by_format {
    ($f:ident, $fmt:expr, $($args:expr),*) => {
        match $fmt {
            cpal::SampleFormat::I16 => $f::<i16>($($args),*),
            cpal::SampleFormat::U16 => $f::<u16>($($args),*),
            cpal::SampleFormat::I32 => $f::<i32>($($args),*),
            cpal::SampleFormat::F32 => $f::<f32>($($args),*),
            cpal::SampleFormat::F64 => $f::<f64>($($args),*),
            other => return Err(Error::Device(format!("unsupported sample format {other}"))),
        }
    };
}

type Opened = (Vec<cpal::Stream>, Option<u32>, Option<u32>);

fn build(
    input: &DeviceChoice,
    output: &DeviceChoice,
    cap: Option<Producer<f32>>,
    play: Option<Consumer<f32>>,
    active: &Arc<AtomicBool>,
    stats: &Arc<AudioStats>,
) -> Result<Opened, Error> {
    let host = cpal::default_host();
    let mut streams = Vec::new();
    let (mut in_rate, mut out_rate) = (None, None);
    let dev_err = |e: &dyn std::fmt::Display| Error::Device(e.to_string());
    if let Some(ring) = cap {
        let dev = find(&host, input, true)?;
        let sc = dev.default_input_config().map_err(|e| dev_err(&e))?;
        let cfg: cpal::StreamConfig = sc.config();
        let s = by_format!(
            input_stream,
            sc.sample_format(),
            &dev,
            &cfg,
            ring,
            active.clone(),
            stats.clone()
        )
        .map_err(|e| dev_err(&e))?;
        in_rate = Some(cfg.sample_rate.0);
        streams.push(s);
    }
    if let Some(ring) = play {
        let dev = find(&host, output, false)?;
        let sc = dev.default_output_config().map_err(|e| dev_err(&e))?;
        let cfg: cpal::StreamConfig = sc.config();
        let s = by_format!(
            output_stream,
            sc.sample_format(),
            &dev,
            &cfg,
            ring,
            active.clone(),
            stats.clone()
        )
        .map_err(|e| dev_err(&e))?;
        out_rate = Some(cfg.sample_rate.0);
        streams.push(s);
    }
    for s in &streams {
        s.play().map_err(|e| dev_err(&e))?;
    }
    Ok((streams, in_rate, out_rate))
}

/// Opens the devices on their own thread; returns it and the capture and playback rates.
pub(crate) fn open(
    input: &DeviceChoice,
    output: &DeviceChoice,
    cap: Option<Producer<f32>>,
    play: Option<Consumer<f32>>,
    active: Arc<AtomicBool>,
    stats: Arc<AudioStats>,
) -> Result<(Streams, Option<u32>, Option<u32>), Error> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let (input, output) = (input.clone(), output.clone());
    let thread = std::thread::Builder::new()
        .name("parrot-audio".into())
        .spawn(
            move || match build(&input, &output, cap, play, &active, &stats) {
                Ok((streams, i, o)) => {
                    let _ = ready_tx.send(Ok((i, o)));
                    let _ = stop_rx.recv();
                    drop(streams);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            },
        )
        .map_err(|e| Error::Device(e.to_string()))?;
    let (i, o) = ready_rx
        .recv()
        .map_err(|_| Error::Device("the audio thread ended".into()))??;
    Ok((
        Streams {
            stop: Some(stop_tx),
            thread: Some(thread),
        },
        i,
        o,
    ))
}
