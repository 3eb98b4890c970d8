//! A call whose "microphone" and "speakers" are WAV files, through a real loopback call
//! between two parrot-tokio agents (the conformance suite's device scenario): no sound card,
//! no ALSA.

use parrot_cpal::Audio;
use parrot_tokio::AudioDevice;
use parrot_ua::testing::fixtures::{best_window, peak, read_wav, sine, temp_dir, write_wav};
use parrot_ua::testing::scenarios::call_with_device;
use std::time::Duration;

#[test]
fn wav_microphone_reaches_the_far_end_and_its_audio_reaches_the_wav_speaker() {
    let dir = temp_dir("cpal-wav");
    let (mic, speaker) = (dir.join("mic-440.wav"), dir.join("speaker.wav"));
    // 48 kHz stereo, like a sound card would deliver.
    let tone: Vec<i16> = (sine(440.0, 4.0, 48000).iter())
        .flat_map(|&s| [s / 2, s / 2])
        .collect();
    write_wav(&mic, 48000, 2, &tone);

    // The one line: a call's audio wired to (file) devices.
    let audio = Audio::open(mic.to_str().unwrap(), speaker.to_str().unwrap()).unwrap();
    let stats = audio.stats();
    let during = stats.clone();
    let start = parrot_tokio::start;
    let hold = Duration::from_millis(2500);
    let heard = call_with_device(
        start,
        start,
        parrot_ua::testing::fixtures::free_ports(43000, 200),
        Box::new(audio),
        hold,
        move || {
            let media =
                (during.media()).expect("media counters reach the device while the call runs");
            assert!(
                media.totals.rtp_sent > 80 && media.totals.rtp_received > 80,
                "{media:?}"
            );
            assert_eq!(media.codec.map(|c| c.clock_rate()), Some(8000));
            let (lin, lout) = during.take_levels();
            assert!(lin > 0.1 && lout > 0.1, "level meters: in {lin} out {lout}");
        },
    );

    // The far end heard the 440 Hz of the (48 kHz stereo) microphone file, resampled to 8 kHz.
    assert!(heard.len() > 12000, "{} samples recorded", heard.len());
    let (share, window) = best_window(&heard, 440.0);
    assert!(
        share > 0.5,
        "440 Hz share of what the far end heard: {share:.2}"
    );
    assert!(peak(window) > 4000, "far end heard peak {}", peak(window));

    // The speaker file got the far end's 1 kHz tone.
    let (rate, played) = read_wav(&speaker);
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
