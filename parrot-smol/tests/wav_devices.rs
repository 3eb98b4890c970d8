//! parrot-cpal's WAV-file devices wired to a parrot-smol call in one line (no sound card): the
//! microphone file reaches the far end, resampled to 8 kHz, and the far end's tone reaches the
//! speaker file.

use parrot_cpal::Audio;
use parrot_ua::testing::fixtures::{best_share, read_wav, sine, temp_dir, write_wav};
use parrot_ua::testing::scenarios::call_with_device;
use std::time::Duration;

#[test]
fn parrot_cpal_wav_devices_are_wired_to_a_call_in_one_line() {
    let dir = temp_dir("smol-cpal");
    let (mic, speaker) = (dir.join("mic.wav"), dir.join("speaker.wav"));
    // A 48 kHz stereo 440 Hz tone, like a sound card would deliver.
    let tone: Vec<i16> = sine(440.0, 3.0, 48000)
        .iter()
        .flat_map(|&s| [s, s])
        .collect();
    write_wav(&mic, 48000, 2, &tone);
    let audio = Audio::open(mic.to_str().unwrap(), speaker.to_str().unwrap()).unwrap();
    let stats = audio.stats();
    let start = parrot_smol::start;
    let heard = call_with_device(
        start,
        start,
        33400,
        Box::new(audio),
        Duration::from_secs(2),
        move || {
            let media = stats.media().expect("media counters reach the device");
            assert!(
                media.totals.rtp_sent > 60 && media.totals.rtp_received > 60,
                "{media:?}"
            );
            let (lin, lout) = stats.take_levels();
            assert!(lin > 0.1 && lout > 0.1, "level meters: in {lin} out {lout}");
        },
    );
    assert!(heard.len() > 8000, "far end: {} samples", heard.len());
    let share = best_share(&heard, 440.0);
    assert!(
        share > 0.5,
        "440 Hz share of what the far end heard: {share:.2}"
    );
    let (rate, played) = read_wav(&speaker);
    assert_eq!(rate, 8000);
    assert!(played.len() > 8000, "speaker: {} samples", played.len());
    let share = best_share(&played, 1000.0);
    assert!(
        share > 0.5,
        "1 kHz share of what the speaker got: {share:.2}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
