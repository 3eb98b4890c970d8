//! Files and sound devices with the smol adapter: a prompt played from disk and a recording
//! written to disk (the driver's file IO), and parrot-cpal's WAV-file devices wired to a call
//! in one line (no sound card).

use async_io::Timer;
use futures_lite::future::{self, block_on};
use parrot_cpal::Audio;
use parrot_media_core::handler::{Actions, MediaAction, MediaHandler, StreamDirection};
use parrot_smol::{AgentConfig, CallEventKind, CallOptions, MediaHandlerFactory};
use std::path::{Path, PathBuf};
use std::time::Duration;

const TONE: &[u8] = include_bytes!("../../assets/tone1k.wav");
const BEEP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/beep.wav");

/// The far end: plays a tone and records what it hears to `.0`.
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

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("parrot-smol-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The samples of a 16-bit WAV file, and its rate.
fn samples(path: &Path) -> (u32, Vec<i16>) {
    let mut r = hound::WavReader::open(path).unwrap();
    let rate = r.spec().sample_rate;
    (rate, r.samples::<i16>().map(Result::unwrap).collect())
}

fn peak(x: &[i16]) -> u16 {
    x.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0)
}

/// Starts a far end that plays a tone and records into `far_rec`, and a caller.
fn far_end_and_caller(
    ports: u16,
    far_rec: &Path,
) -> (
    parrot_smol::Agent,
    parrot_smol::Agent,
    parrot_ua::async_channel::Receiver<parrot_smol::CallEvent>,
) {
    let r = far_rec.display().to_string();
    let media: MediaHandlerFactory =
        Box::new(move |_, _| Box::new(PlayAndRecord(r.clone())) as Box<dyn MediaHandler + Send>);
    let mut srv = parrot_smol::start(config((ports, ports + 99)), None, Some(media)).unwrap();
    let events = srv.take_events().unwrap();
    let mut cc = config((ports + 100, ports + 199));
    cc.auto_answer = false;
    cc.tcp = false;
    let cli = parrot_smol::start(cc, None, None).unwrap();
    (srv, cli, events)
}

/// Waits (at most 3 s) for the far end's recording to be written.
async fn far_end_recorded(events: &parrot_ua::async_channel::Receiver<parrot_smol::CallEvent>) {
    loop {
        let next = future::or(async { events.recv().await.ok() }, async {
            Timer::after(Duration::from_secs(3)).await;
            None
        });
        match next.await.map(|e| e.kind) {
            Some(CallEventKind::Recorded(_)) | None => return,
            Some(_) => {}
        }
    }
}

#[test]
fn a_prompt_from_disk_is_played_and_the_call_is_recorded_to_disk() {
    let dir = temp_dir("files");
    let far_rec = dir.join("far-end.wav");
    let near_rec = dir.join("near-end.wav");
    let (srv, cli, srv_events) = far_end_and_caller(48400, &far_rec);
    block_on(async {
        let uri = format!("sip:parrot@{}", srv.local_addr());
        let mut call = cli.call(&uri, CallOptions::default()).await.unwrap();
        while !matches!(
            call.next_event().await.unwrap().kind,
            CallEventKind::Answered { .. }
        ) {}
        call.record(near_rec.to_str().unwrap());
        call.play(BEEP);
        // The prompt is read from disk, sent, and reported done.
        loop {
            match call.next_event().await.map(|e| e.kind) {
                Some(CallEventKind::PlayComplete(p)) => {
                    assert_eq!(p, BEEP);
                    break;
                }
                Some(_) => {}
                None => panic!("the call ended before the prompt did"),
            }
        }
        Timer::after(Duration::from_millis(300)).await;
        call.hangup();
        let out = call.wait().await;
        let written = out.events.iter().find_map(|e| match &e.kind {
            CallEventKind::Recorded(p) => Some(p.clone()),
            _ => None,
        });
        assert_eq!(written.as_deref(), Some(near_rec.as_path()), "{out:?}");
        far_end_recorded(&srv_events).await;
        cli.shutdown().await;
        srv.shutdown().await;
    });
    // Our recording holds the far end's tone; the far end's holds our beep.
    let (rate, near) = samples(&near_rec);
    assert_eq!(rate, 8000);
    assert!(
        near.len() > 2000 && peak(&near) > 4000,
        "{} samples",
        near.len()
    );
    let (_, far) = samples(&far_rec);
    assert!(far.len() > 2000, "{} samples", far.len());
    assert!(
        peak(&far) > 4000,
        "the beep reached the far end: peak {}",
        peak(&far)
    );
    let _ = std::fs::remove_dir_all(dir);
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

#[test]
fn parrot_cpal_wav_devices_are_wired_to_a_call_in_one_line() {
    let dir = temp_dir("cpal");
    let mic = dir.join("mic.wav");
    let speaker = dir.join("speaker.wav");
    let far_rec = dir.join("far-end.wav");
    write_tone(&mic, 440.0, 3.0);
    let (srv, cli, srv_events) = far_end_and_caller(48600, &far_rec);
    let audio = Audio::open(mic.to_str().unwrap(), speaker.to_str().unwrap()).unwrap();
    let stats = audio.stats();
    block_on(async {
        let uri = format!("sip:parrot@{}", srv.local_addr());
        let mut call = cli
            .call_with_device(&uri, CallOptions::default(), audio)
            .await
            .unwrap();
        while !matches!(
            call.next_event().await.unwrap().kind,
            CallEventKind::Answered { .. }
        ) {}
        Timer::after(Duration::from_millis(2000)).await;
        let media = stats.media().expect("media counters reach the device");
        assert!(
            media.totals.rtp_sent > 60 && media.totals.rtp_received > 60,
            "{media:?}"
        );
        let (lin, lout) = stats.take_levels();
        assert!(lin > 0.1 && lout > 0.1, "level meters: in {lin} out {lout}");
        call.hangup();
        call.wait().await;
        far_end_recorded(&srv_events).await;
        cli.shutdown().await;
        srv.shutdown().await;
    });
    // The microphone file reached the far end (resampled to 8 kHz), and the far end's tone
    // reached the speaker file.
    let (rate, heard) = samples(&far_rec);
    assert_eq!(rate, 8000);
    assert!(
        heard.len() > 8000 && peak(&heard) > 4000,
        "far end: {} samples",
        heard.len()
    );
    let (rate, played) = samples(&speaker);
    assert_eq!(rate, 8000);
    assert!(
        played.len() > 8000 && peak(&played) > 4000,
        "speaker: {} samples",
        played.len()
    );
    let _ = std::fs::remove_dir_all(dir);
}
