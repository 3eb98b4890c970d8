//! `parrot devices`, and the live view of a call that uses sound devices.

use parrot_cpal::{AudioStats, Error};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

/// Lists capture and playback devices with the indices `parrot call` accepts.
pub fn run() -> ExitCode {
    match parrot_cpal::list_devices() {
        Ok(list) => {
            for (title, devs) in [("capture", &list.capture), ("playback", &list.playback)] {
                println!(
                    "{title} devices (--{}-device N):",
                    if title == "capture" {
                        "input"
                    } else {
                        "output"
                    }
                );
                if devs.is_empty() {
                    println!("  (none)");
                }
                for d in devs {
                    let fmt = d
                        .format
                        .map(|(r, c)| format!("  {r} Hz, {c} ch"))
                        .unwrap_or_default();
                    let def = if d.is_default { "  [default]" } else { "" };
                    println!("  {:>3}: {}{fmt}{def}", d.index, d.name);
                }
            }
            println!("--input-device/--output-device also take `default`, a device name, or a WAV file path.");
            ExitCode::SUCCESS
        }
        Err(Error::NoBackend) => {
            eprintln!(
                "parrot devices: this parrot is built without sound devices. Build it with\n  \
                 apt-get install libasound2-dev pkg-config\n  \
                 cargo build --release -p parrot --features devices\n\
                 (--input-device/--output-device accept WAV file paths without it)"
            );
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("parrot devices: {e}");
            ExitCode::from(1)
        }
    }
}

/// The live view: on a terminal one line redrawn in place, otherwise a plain line a second.
pub struct LiveView {
    tty: bool,
    drawn: bool,
}

fn db(peak: f32) -> f32 {
    if peak <= 0.0 {
        -90.0
    } else {
        (20.0 * peak.log10()).max(-90.0)
    }
}

fn meter(peak: f32) -> String {
    let filled = (((db(peak) + 60.0) / 6.0).clamp(0.0, 10.0)) as usize;
    format!("[{}{}]", "#".repeat(filled), "-".repeat(10 - filled))
}

impl LiveView {
    pub fn new() -> Self {
        Self {
            tty: std::io::stdout().is_terminal(),
            drawn: false,
        }
    }

    /// How often to refresh.
    pub fn period(&self) -> Duration {
        if self.tty {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(1)
        }
    }

    /// Draws the current state.
    pub fn draw(&mut self, elapsed: Duration, stats: &AudioStats) {
        let m = stats.media().unwrap_or_default();
        let (lin, lout) = stats.take_levels();
        let c = stats.counters();
        let codec = m.codec.map_or_else(|| "-".to_owned(), |c| c.to_string());
        let secs = elapsed.as_secs();
        let peer_lost = m.peer_lost.map_or_else(|| "?".into(), |l| l.to_string());
        let peer_jit = m
            .peer_jitter_ms
            .map_or_else(|| "?".into(), |j| format!("{j:.1}"));
        let mut out = std::io::stdout().lock();
        if self.tty {
            let _ = write!(
                out,
                "\r\x1b[2K{:02}:{:02} {codec} | tx {} lost {peer_lost} jit {peer_jit}ms | rx {} lost {} jit {:.1}ms | in {} {:>4.0}dB out {} {:>4.0}dB",
                secs / 60,
                secs % 60,
                m.totals.rtp_sent,
                m.totals.rtp_received,
                m.totals.lost,
                m.jitter_ms,
                meter(lin),
                db(lin),
                meter(lout),
                db(lout),
            );
            self.drawn = true;
        } else {
            let _ = writeln!(
                out,
                "live {:.1}s codec {codec} sent {} peer-lost {peer_lost} peer-jitter {peer_jit}ms received {} lost {} jitter {:.1}ms in {:.0}dB out {:.0}dB xruns capture {}/{} playback {}/{} resync {}/{} fill {}/{} correction {}/{}ppm device-clock {}/{}ppm",
                elapsed.as_secs_f64(),
                m.totals.rtp_sent,
                m.totals.rtp_received,
                m.totals.lost,
                m.jitter_ms,
                db(lin),
                db(lout),
                c.capture_overruns,
                c.capture_underruns,
                c.playback_overruns,
                c.playback_underruns,
                c.capture_resyncs,
                c.playback_resyncs,
                c.capture_fill,
                c.playback_fill,
                c.capture_correction_ppm,
                c.playback_correction_ppm,
                c.capture_clock_ppm,
                c.playback_clock_ppm,
            );
        }
        let _ = out.flush();
    }

    /// Clears the in-place line before other output.
    pub fn clear(&mut self) {
        if self.tty && self.drawn {
            print!("\r\x1b[2K");
            let _ = std::io::stdout().flush();
            self.drawn = false;
        }
    }
}
