//! `parrot-cpal`: a Parrot call's audio from a microphone and to speakers, in one line.
//!
//! ```no_run
//! # async fn demo(agent: parrot_tokio::Agent) -> Result<(), Box<dyn std::error::Error>> {
//! use parrot_cpal::Audio;
//! let call = agent
//!     .call_with_device("sip:bob@127.0.0.1:5060", Default::default(), Audio::open("default", "default")?)
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! [`Audio`] implements [`parrot_ua::AudioDevice`]. Each side is chosen by a string
//! ([`DeviceChoice::parse`]): `default`, a device index from [`list_devices`], a device name,
//! or a WAV file path (a file plays as the microphone in real time; the peer's audio is written
//! to a file). Sound devices need the `cpal` feature (on Linux: `apt-get install
//! libasound2-dev pkg-config`); WAV files work without it.
//!
//! Between cpal's callback thread and the call's media task sits a wait-free ring per direction
//! ([`ring`]); a band-limited resampler ([`resample`]) converts between the device's rate and
//! channels (48/44.1 kHz, stereo) and the codec clock (8 kHz mono for G.711); a clock
//! reconciler ([`drift`]) steers the resampling ratio so the device's crystal and the RTP clock
//! never drift apart. Overruns, underruns, level meters and the call's packet counters are in
//! [`AudioStats`].

mod chain;
#[cfg(feature = "cpal")]
mod devices;
pub mod drift;
pub mod resample;
pub mod ring;
mod stats;
mod wav;

pub use stats::{AudioCounters, AudioStats};

use chain::{CaptureChain, PlaybackChain};
use parrot_ua::{AudioDevice, MediaStats};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;
use wav::{WavSink, WavSource};

/// Capture ring: two seconds at 48 kHz.
const CAPTURE_RING: usize = 96_000;
/// Playback ring: one second at 48 kHz.
const PLAYBACK_RING: usize = 48_000;

/// Errors opening devices.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Sound devices were asked for but the `cpal` feature is not built.
    NoBackend,
    /// No such device.
    NoDevice(String),
    /// The device refused to open or stream.
    Device(String),
    /// A WAV file could not be read or created.
    Wav(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NoBackend => f.write_str(
                "sound devices need the `devices` feature (cargo build --features devices; \
                 on Linux apt-get install libasound2-dev pkg-config); WAV file paths work without it",
            ),
            Error::NoDevice(d) => write!(f, "no such device: {d}"),
            Error::Device(e) => write!(f, "sound device: {e}"),
            Error::Wav(e) => write!(f, "WAV file: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// Which device one side of a call uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The system's default device.
    Default,
    /// The N-th device of [`list_devices`] (capture and playback are numbered separately).
    Index(usize),
    /// A device whose name is this (or contains it).
    Name(String),
    /// A WAV file: read as the microphone, or written with what the peer says.
    Wav(PathBuf),
    /// Nothing: no capture (silence is not sent) or playback discarded.
    None,
}

impl DeviceChoice {
    /// `default`, `none`, a number, a path ending in `.wav` (or naming an existing file), or a
    /// device name.
    #[must_use]
    pub fn parse(s: &str) -> Self {
        let t = s.trim();
        if t.is_empty() || t.eq_ignore_ascii_case("default") {
            DeviceChoice::Default
        } else if t.eq_ignore_ascii_case("none") {
            DeviceChoice::None
        } else if let Ok(n) = t.parse::<usize>() {
            DeviceChoice::Index(n)
        } else if t.to_ascii_lowercase().ends_with(".wav") || std::path::Path::new(t).is_file() {
            DeviceChoice::Wav(PathBuf::from(t))
        } else {
            DeviceChoice::Name(t.to_owned())
        }
    }
}

/// One sound device as [`list_devices`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The index `--input-device` / `--output-device` accept.
    pub index: usize,
    /// The device's name.
    pub name: String,
    /// Whether it is the default device.
    pub is_default: bool,
    /// Its default sample rate and channels, if it reports them.
    pub format: Option<(u32, u16)>,
}

/// Capture and playback devices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceList {
    /// Microphones and other inputs.
    pub capture: Vec<DeviceInfo>,
    /// Speakers and other outputs.
    pub playback: Vec<DeviceInfo>,
}

/// The sound devices of the default host, numbered as [`DeviceChoice::Index`] expects.
pub fn list_devices() -> Result<DeviceList, Error> {
    #[cfg(feature = "cpal")]
    {
        devices::list()
    }
    #[cfg(not(feature = "cpal"))]
    {
        Err(Error::NoBackend)
    }
}

/// Whether this build can use sound devices (the `cpal` feature).
#[must_use]
pub fn has_sound_devices() -> bool {
    cfg!(feature = "cpal")
}

enum Input {
    None,
    Wav(WavSource, CaptureChain),
    #[cfg_attr(not(feature = "cpal"), allow(dead_code))]
    Device(CaptureChain),
}

enum Output {
    None,
    Wav(WavSink),
    #[cfg_attr(not(feature = "cpal"), allow(dead_code))]
    Device(Box<PlaybackChain>),
}

/// A call's microphone and speakers (or WAV files): an [`AudioDevice`] for
/// `Agent::call_with_device`.
pub struct Audio {
    input: Input,
    output: Output,
    stats: Arc<AudioStats>,
    active: Arc<AtomicBool>,
    #[cfg(feature = "cpal")]
    _streams: Option<devices::Streams>,
}

impl std::fmt::Debug for Audio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audio").field("stats", &self.stats).finish()
    }
}

impl Audio {
    /// Opens capture `input` and playback `output`, each parsed by [`DeviceChoice::parse`].
    pub fn open(input: &str, output: &str) -> Result<Self, Error> {
        Self::with(DeviceChoice::parse(input), DeviceChoice::parse(output))
    }

    /// The default microphone and speakers.
    pub fn default_devices() -> Result<Self, Error> {
        Self::with(DeviceChoice::Default, DeviceChoice::Default)
    }

    /// Opens the chosen capture and playback sides. Sound devices start streaming now; the
    /// audio flows once the call's media starts.
    pub fn with(input: DeviceChoice, output: DeviceChoice) -> Result<Self, Error> {
        let stats = Arc::new(AudioStats::default());
        let active = Arc::new(AtomicBool::new(false));
        let (mut cap_prod, mut cap_cons) = (None, None);
        #[allow(unused_mut)]
        let mut inp = match &input {
            DeviceChoice::None => Input::None,
            DeviceChoice::Wav(p) => {
                let (pr, co) = ring::ring(CAPTURE_RING);
                let src = WavSource::open(p, pr)?;
                let rate = src.rate();
                Input::Wav(src, CaptureChain::new(co, rate, stats.clone()))
            }
            _ => {
                let (pr, co) = ring::ring(CAPTURE_RING);
                cap_prod = Some(pr);
                cap_cons = Some(co);
                Input::None
            }
        };
        let (mut play_prod, mut play_cons) = (None, None);
        #[allow(unused_mut)]
        let mut outp = match &output {
            DeviceChoice::None => Output::None,
            DeviceChoice::Wav(p) => Output::Wav(WavSink::new(p)?),
            _ => {
                let (pr, co) = ring::ring(PLAYBACK_RING);
                play_prod = Some(pr);
                play_cons = Some(co);
                Output::None
            }
        };
        #[cfg(feature = "cpal")]
        let mut streams = None;
        if cap_prod.is_some() || play_cons.is_some() {
            #[cfg(feature = "cpal")]
            {
                let (s, in_rate, out_rate) = devices::open(
                    &input,
                    &output,
                    cap_prod,
                    play_cons,
                    active.clone(),
                    stats.clone(),
                )?;
                if let (Some(co), Some(r)) = (cap_cons, in_rate) {
                    inp = Input::Device(CaptureChain::new(co, r, stats.clone()));
                }
                if let (Some(pr), Some(r)) = (play_prod, out_rate) {
                    outp = Output::Device(Box::new(PlaybackChain::new(pr, r, stats.clone())));
                }
                streams = Some(s);
            }
            #[cfg(not(feature = "cpal"))]
            {
                let _ = (cap_prod, cap_cons, play_prod, play_cons);
                return Err(Error::NoBackend);
            }
        }
        Ok(Self {
            input: inp,
            output: outp,
            stats,
            active,
            #[cfg(feature = "cpal")]
            _streams: streams,
        })
    }

    /// The live counters; keep a clone to display them while the call runs.
    #[must_use]
    pub fn stats(&self) -> Arc<AudioStats> {
        self.stats.clone()
    }
}

impl AudioDevice for Audio {
    fn start(&mut self, sample_rate: u32) {
        match &mut self.input {
            Input::None => {}
            Input::Wav(_, c) | Input::Device(c) => c.start(sample_rate),
        }
        match &mut self.output {
            Output::None => {}
            Output::Wav(w) => w.start(sample_rate),
            Output::Device(c) => c.start(sample_rate),
        }
        self.active.store(true, Relaxed);
    }

    fn capture(&mut self, out: &mut [i16]) -> usize {
        let now = Instant::now();
        match &mut self.input {
            Input::None => 0,
            Input::Wav(src, c) => {
                src.pump(now);
                c.capture(now, out)
            }
            Input::Device(c) => c.capture(now, out),
        }
    }

    fn playback(&mut self, samples: &[i16]) {
        match &mut self.output {
            Output::None => {}
            Output::Wav(w) => {
                AudioStats::peak(&self.stats.output_peak, samples);
                self.stats.played.fetch_add(samples.len() as u64, Relaxed);
                w.write(samples);
            }
            Output::Device(c) => c.playback(Instant::now(), samples),
        }
    }

    fn stop(&mut self) {
        self.active.store(false, Relaxed);
        if let Output::Wav(w) = &mut self.output {
            w.finish();
        }
    }

    fn media_stats(&mut self, stats: &MediaStats) {
        self.stats.set_media(stats);
    }
}
