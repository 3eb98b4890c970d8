//! A call whose "microphone" and "speakers" are WAV files, through a real loopback call
//! between two parrot-tokio agents: no sound card, no ALSA.

use parrot_cpal::Audio;
use parrot_media_core::handler::{Actions, MediaAction, MediaHandler, StreamDirection};
use parrot_tokio::{AgentConfig, AudioDevice, CallEventKind, CallOptions, MediaHandlerFactory};
use std::path::Path;
use std::time::Duration;

const TONE: &[u8] = include_bytes!("../../assets/tone1k.wav");

/// The far end: plays a 1 kHz tone and records what it hears.
struct PlayAndRecord(String);
impl MediaHandler for PlayAndRecord {
    fn handle_stream_start(&mut self, _: &str, _: StreamDirection) -> Actions {
        vec![
            MediaAction::play("builtin:tone"),
            MediaAction::StartRecording(self.0.clone()),
        ]
        .into()
    }
}

fn config(ports: (u16, u16)) -> AgentConfig {
    let mut c = AgentConfig::new("127.0.0.1:0".parse().unwrap());
    c.rtp_ports = ports.0..=ports.1;
    c.builtin_files = vec![("builtin:tone".into(), bytes::Bytes::from_static(TONE))];
    c
}

/// A 48 kHz stereo WAV of a `hz` tone, like a sound card would deliver.
fn write_tone(path: &Path, hz: f64, secs: f64) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 48000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(48000.0 * secs) as usize {
        let v = (8000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / 48000.0).sin()) as i16;
        w.write_sample(v).unwrap();
        w.write_sample(v).unwrap();
    }
    w.finalize().unwrap();
}

fn read_mono(path: &Path) -> (u32, Vec<i16>) {
    let mut r = hound::WavReader::open(path).unwrap();
    let rate = r.spec().sample_rate;
    (rate, r.samples::<i16>().map(Result::unwrap).collect())
}

/// Share of a block's energy at one frequency (Goertzel).
fn tone_share(x: &[i16], rate: f64, f: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * f / rate;
    let c = 2.0 * w.cos();
    let (mut s1, mut s2, mut energy) = (0.0f64, 0.0f64, 0.0f64);
    for &v in x {
        let v = f64::from(v);
        let s = v + c * s1 - s2;
        s2 = s1;
        s1 = s;
        energy += v * v;
    }
    let p = s1 * s1 + s2 * s2 - c * s1 * s2;
    p / (energy * x.len() as f64 / 2.0).max(1.0)
}

/// The 2,000-sample window (0.25 s at 8 kHz) where `f` dominates most, and its share.
fn best_window(x: &[i16], f: f64) -> (f64, &[i16]) {
    let mut best = (0.0, &x[..0]);
    let mut i = 0;
    while i + 2000 <= x.len() {
        let w = &x[i..i + 2000];
        let share = tone_share(w, 8000.0, f);
        if share > best.0 {
            best = (share, w);
        }
        i += 500;
    }
    best
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wav_microphone_reaches_the_far_end_and_its_audio_reaches_the_wav_speaker() {
    let dir = std::env::temp_dir().join(format!("parrot-cpal-wav-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mic = dir.join("mic-440.wav");
    let speaker = dir.join("speaker.wav");
    let far_rec = dir.join("far-end-heard.wav").display().to_string();
    write_tone(&mic, 440.0, 4.0);

    let r = far_rec.clone();
    let media: MediaHandlerFactory =
        Box::new(move |_, _| Box::new(PlayAndRecord(r.clone())) as Box<dyn MediaHandler + Send>);
    let mut srv = parrot_tokio::start(config((43000, 43099)), None, Some(media)).unwrap();
    let srv_events = srv.take_events().unwrap();
    let mut cc = config((43100, 43199));
    cc.auto_answer = false;
    cc.tcp = false;
    let cli = parrot_tokio::start(cc, None, None).unwrap();

    // The one line: a call's audio wired to (file) devices.
    let audio = Audio::open(mic.to_str().unwrap(), speaker.to_str().unwrap()).unwrap();
    let stats = audio.stats();
    let uri = format!("sip:parrot@{}", srv.local_addr());
    let mut call = cli
        .call_with_device(&uri, CallOptions::default(), audio)
        .await
        .unwrap();
    while !matches!(
        call.next_event().await.unwrap().kind,
        CallEventKind::Answered { .. }
    ) {}
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let media = stats
        .media()
        .expect("media counters reach the device while the call runs");
    assert!(
        media.totals.rtp_sent > 80 && media.totals.rtp_received > 80,
        "{media:?}"
    );
    assert_eq!(media.codec.map(|c| c.clock_rate()), Some(8000));
    let (lin, lout) = stats.take_levels();
    assert!(lin > 0.1 && lout > 0.1, "level meters: in {lin} out {lout}");
    call.hangup();
    call.wait().await;
    while let Ok(Ok(ev)) = tokio::time::timeout(Duration::from_secs(3), srv_events.recv()).await {
        if matches!(ev.kind, CallEventKind::Recorded(_)) {
            break;
        }
    }

    // The far end heard the 440 Hz of the (48 kHz stereo) microphone file, resampled to 8 kHz.
    let (rate, heard) = read_mono(Path::new(&far_rec));
    assert_eq!(rate, 8000);
    assert!(heard.len() > 12000, "{} samples recorded", heard.len());
    // The best 0.25 s window: on a loaded machine a debug build can miss a deadline now and
    // then, and the silence it leaves must not hide that the tone got through.
    let (share, mid) = best_window(&heard, 440.0);
    assert!(
        share > 0.5,
        "440 Hz share of what the far end heard: {share:.2}"
    );
    let peak = mid.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
    assert!(peak > 4000, "far end heard peak {peak}");

    // The speaker file got the far end's 1 kHz tone.
    let (rate, played) = read_mono(&speaker);
    assert_eq!(rate, 8000);
    assert!(played.len() > 12000, "{} samples played", played.len());
    let (share, _) = best_window(&played, 1000.0);
    assert!(
        share > 0.5,
        "1 kHz share of what the speaker got: {share:.2}"
    );

    let c = stats.counters();
    assert!(c.captured > 12000, "{c:?}");
    assert_eq!(c.capture_overruns, 0, "{c:?}");
    let _ = std::fs::remove_dir_all(&dir);
    drop(srv);
}

#[test]
fn sound_devices_without_the_feature_say_how_to_get_them() {
    if parrot_cpal::has_sound_devices() {
        return;
    }
    let e = Audio::open("default", "none").unwrap_err();
    assert!(e.to_string().contains("--features devices"), "{e}");
    assert!(parrot_cpal::list_devices().is_err());
}

#[test]
fn a_wav_device_is_an_audio_device() {
    fn is_device<T: AudioDevice>() {}
    is_device::<Audio>();
}
