//! `parrot devices`, and the live view of a call that uses sound devices.

use parrot_cpal::{AudioCounters, AudioStats, Error};
use parrot_ua::MediaStats;
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

/// The live view: on a terminal two rows redrawn in place (the call's packets, loss and jitter
/// each way; the level meters), otherwise a plain line a second.
///
/// The rows are drawn with the terminal's auto-wrap turned off (DECAWM, `ESC[?7l` … `ESC[?7h`,
/// honoured by xterm, VTE, tmux, screen and the Linux console): a row wider than the terminal
/// is cut at its right edge instead of wrapping onto a row the next redraw would not clear
/// (each redraw would leave a stale row behind and scroll). Rows fit 80 columns for ordinary
/// values, and `$COLUMNS` when the shell exports it. Only relative cursor movement is used
/// (`\r`, cursor up, erase line), so a view at the bottom of a scrolling terminal redraws in
/// place too.
pub struct LiveView {
    tty: bool,
    width: Option<usize>,
    drawn: bool,
}

/// Everything one frame of the view shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Frame {
    pub elapsed: Duration,
    pub media: MediaStats,
    pub counters: AudioCounters,
    /// Peak input and output levels since the last frame, 0.0..=1.0 of full scale.
    pub levels: (f32, f32),
}

impl Frame {
    /// The current state of a call's audio.
    pub fn now(elapsed: Duration, stats: &AudioStats) -> Self {
        Self {
            elapsed,
            media: stats.media().unwrap_or_default(),
            counters: stats.counters(),
            levels: stats.take_levels(),
        }
    }
}

fn db(peak: f32) -> f32 {
    if peak <= 0.0 {
        -90.0
    } else {
        (20.0 * peak.log10()).max(-90.0)
    }
}

/// A level meter of `cells` cells over -60..0 dBFS.
fn meter(peak: f32, cells: usize) -> String {
    let filled = (((db(peak) + 60.0) / 60.0 * cells as f32).clamp(0.0, cells as f32)) as usize;
    format!("{}{}", "#".repeat(filled), "-".repeat(cells - filled))
}

/// Auto-wrap off.
const BEGIN_WRAP_OFF: &str = "\x1b[?7l";
/// Auto-wrap back on.
const WRAP_ON: &str = "\x1b[?7h";
/// Erase the cursor's row.
const ERASE: &str = "\x1b[2K";
/// Cursor up one row.
const UP_ONE: &str = "\x1b[1A";

/// The terminal's width from `$COLUMNS`, when the shell exports it.
fn env_width() -> Option<usize> {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse().ok())
        .filter(|&w| w >= 20)
}

impl LiveView {
    pub fn new() -> Self {
        Self::with(std::io::stdout().is_terminal(), env_width())
    }

    /// A view for a terminal (`tty`) of `width` columns (unknown: 80 assumed, wider lines cut
    /// by the terminal), or for plain output.
    pub fn with(tty: bool, width: Option<usize>) -> Self {
        Self {
            tty,
            width,
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

    /// The bytes that show `f`: on a terminal, escape sequences and two rows, the cursor left
    /// at the end of the second (the previous frame, if any, is overwritten); otherwise a plain
    /// line ending in a newline.
    pub fn render(&mut self, f: &Frame) -> String {
        let m = &f.media;
        let c = &f.counters;
        let (lin, lout) = f.levels;
        let codec = m.codec.map_or_else(|| "-".to_owned(), |c| c.to_string());
        let peer_lost = m.peer_lost.map_or_else(|| "?".into(), |l| l.to_string());
        let peer_jit = m
            .peer_jitter_ms
            .map_or_else(|| "?".into(), |j| format!("{j:.1}"));
        if !self.tty {
            return format!(
                "live {:.1}s codec {codec} sent {} peer-lost {peer_lost} peer-jitter {peer_jit}ms received {} lost {} jitter {:.1}ms in {:.0}dB out {:.0}dB xruns capture {}/{} playback {}/{} resync {}/{} fill {}/{} correction {}/{}ppm device-clock {}/{}ppm\n",
                f.elapsed.as_secs_f64(),
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
        let secs = f.elapsed.as_secs();
        let clock = if secs >= 3600 {
            format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
        } else {
            format!("{:02}:{:02}", secs / 60, secs % 60)
        };
        let xruns =
            c.capture_overruns + c.capture_underruns + c.playback_overruns + c.playback_underruns;
        let xruns = if xruns > 0 {
            format!("   xruns {xruns}")
        } else {
            String::new()
        };
        let width = self.width.unwrap_or(80).saturating_sub(1);
        let mut first = format!(
            "{clock} {codec}  tx {} lost {peer_lost} jitter {peer_jit}ms  rx {} lost {} jitter {:.1}ms",
            m.totals.rtp_sent, m.totals.rtp_received, m.totals.lost, m.jitter_ms,
        );
        let cells = if width >= 60 { 20 } else { 10 };
        let mut second = format!(
            "in  [{}] {:>3.0} dB   out [{}] {:>3.0} dB{xruns}",
            meter(lin, cells),
            db(lin),
            meter(lout, cells),
            db(lout),
        );
        first.truncate(width);
        second.truncate(width);
        let mut out = String::from(BEGIN_WRAP_OFF);
        if self.drawn {
            out.push_str(UP_ONE);
        }
        out.push_str(&format!("\r{ERASE}{first}\r\n{ERASE}{second}{WRAP_ON}"));
        self.drawn = true;
        out
    }

    /// The bytes that erase the view (none if nothing is drawn), leaving the cursor at the
    /// start of the first row, where the next output goes.
    pub fn clear_bytes(&mut self) -> String {
        if !(self.tty && self.drawn) {
            return String::new();
        }
        self.drawn = false;
        format!("\r{ERASE}{UP_ONE}\r{ERASE}")
    }

    /// Draws the current state.
    pub fn draw(&mut self, elapsed: Duration, stats: &AudioStats) {
        let frame = self.render(&Frame::now(elapsed, stats));
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(frame.as_bytes());
        let _ = out.flush();
    }

    /// Clears the view before other output (and at the end: the cursor is left at the start
    /// of an empty row).
    pub fn clear(&mut self) {
        let bytes = self.clear_bytes();
        if !bytes.is_empty() {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(bytes.as_bytes());
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parrot_media_core::codec::Codec;

    fn busy_frame() -> Frame {
        let mut f = Frame {
            elapsed: Duration::from_secs(3725),
            levels: (0.5, 0.000_01),
            ..Frame::default()
        };
        f.media.codec = Some(Codec::Pcmu);
        f.media.totals.rtp_sent = 186_250;
        f.media.totals.rtp_received = 186_201;
        f.media.totals.lost = 49;
        f.media.jitter_ms = 12.34;
        f.media.peer_lost = Some(3);
        f.media.peer_jitter_ms = Some(1.5);
        f.counters.playback_underruns = 7;
        f
    }

    /// A terminal `width` columns wide, starting with `lines_above` rows of earlier output and
    /// the cursor on the row below them. Understands printable characters, `\r`, `\n`, erase
    /// line, cursor up and the auto-wrap switch (any other escape sequence fails the test).
    struct Term {
        rows: Vec<String>,
        row: usize,
        col: usize,
        wrap: bool,
        width: usize,
    }

    impl Term {
        fn new(width: usize, lines_above: usize) -> Self {
            let mut rows: Vec<String> = (0..lines_above).map(|i| format!("earlier {i}")).collect();
            rows.push(String::new());
            Self {
                row: lines_above,
                rows,
                col: 0,
                wrap: true,
                width,
            }
        }

        fn put(&mut self, bytes: &str) -> &mut Self {
            let mut it = bytes.chars();
            while let Some(ch) = it.next() {
                match ch {
                    '\x1b' => {
                        assert_eq!(it.next(), Some('['), "escape in {bytes:?}");
                        let mut seq = String::new();
                        for c in it.by_ref() {
                            seq.push(c);
                            if c.is_ascii_alphabetic() {
                                break;
                            }
                        }
                        match seq.as_str() {
                            "2K" => self.rows[self.row].clear(),
                            "1A" => self.row = self.row.saturating_sub(1),
                            "?7l" => self.wrap = false,
                            "?7h" => self.wrap = true,
                            other => panic!("unexpected escape ESC[{other}"),
                        }
                    }
                    '\r' => self.col = 0,
                    // A terminal's output processing (onlcr) turns \n into \r\n.
                    '\n' => {
                        self.down();
                        self.col = 0;
                    }
                    c => {
                        assert!(!c.is_control(), "control {c:?} in {bytes:?}");
                        if self.col == self.width {
                            if self.wrap {
                                self.down();
                                self.col = 0;
                            } else {
                                self.col = self.width - 1; // overwrites the last column
                            }
                        }
                        let mut cells: Vec<char> = self.rows[self.row].chars().collect();
                        cells.resize(cells.len().max(self.col + 1), ' ');
                        cells[self.col] = c;
                        self.rows[self.row] = cells.into_iter().collect();
                        self.col += 1;
                    }
                }
            }
            self
        }

        fn down(&mut self) {
            self.row += 1;
            if self.row == self.rows.len() {
                self.rows.push(String::new());
            }
        }

        /// The rows, trailing spaces and trailing empty rows removed.
        fn screen(&self) -> Vec<String> {
            let mut rows: Vec<String> = self.rows.iter().map(|r| r.trim_end().to_owned()).collect();
            while rows.last().is_some_and(String::is_empty) {
                rows.pop();
            }
            rows
        }
    }

    #[test]
    fn redraws_stay_in_place_below_earlier_output() {
        let mut view = LiveView::with(true, None);
        let mut term = Term::new(80, 2);
        let mut f = busy_frame();
        for _ in 0..5 {
            term.put(&view.render(&f));
            f.elapsed += Duration::from_millis(250);
        }
        assert!(term.wrap, "auto-wrap must be back on after a frame");
        let screen = term.screen();
        assert_eq!(screen.len(), 4, "{screen:#?}");
        assert_eq!(&screen[..2], ["earlier 0", "earlier 1"]);
        assert_eq!(
            screen[2],
            "1:02:06 PCMU  tx 186250 lost 3 jitter 1.5ms  rx 186201 lost 49 jitter 12.3ms"
        );
        assert_eq!(
            screen[3],
            "in  [#################---]  -6 dB   out [--------------------] -90 dB   xruns 7"
                .trim_end()
                .chars()
                .take(79)
                .collect::<String>()
        );
        assert!(screen.iter().all(|r| r.len() < 80), "{screen:#?}");
    }

    #[test]
    fn a_narrow_terminal_gets_cut_rows_not_wrapped_ones() {
        let f = busy_frame();
        for width in [30, 50] {
            let mut view = LiveView::with(true, Some(width));
            let mut term = Term::new(width, 1);
            term.put(&view.render(&f)).put(&view.render(&f));
            let screen = term.screen();
            assert_eq!(screen.len(), 3, "{screen:#?}");
            assert!(screen.iter().all(|r| r.len() < width), "{screen:#?}");
            assert!(screen[1].starts_with("1:02:05 PCMU"), "{screen:#?}");
            assert!(screen[2].starts_with("in  [########--]"), "{screen:#?}");
        }
        // Even when the width is wrong (unknown, assumed 80, on a 50-column terminal) nothing
        // wraps: auto-wrap is off while the rows are drawn.
        let mut view = LiveView::with(true, None);
        let mut term = Term::new(50, 1);
        term.put(&view.render(&f)).put(&view.render(&f));
        assert_eq!(term.screen().len(), 3, "{:#?}", term.screen());
    }

    #[test]
    fn events_and_the_end_print_on_clean_rows() {
        let mut view = LiveView::with(true, Some(80));
        let mut term = Term::new(80, 1);
        let f = busy_frame();
        // A frame, an event (cleared first, as `parrot call` does), frames again, the end.
        term.put(&view.render(&f));
        term.put(&(view.clear_bytes() + "call 1 dtmf 2\n"));
        term.put(&view.render(&f)).put(&view.render(&f));
        term.put(&(view.clear_bytes() + "call 1 ended\n"));
        assert_eq!(view.clear_bytes(), "", "nothing left to clear");
        term.put("audio: ...\n");
        assert_eq!(
            term.screen(),
            ["earlier 0", "call 1 dtmf 2", "call 1 ended", "audio: ..."]
        );
    }

    #[test]
    fn plain_output_is_one_line_per_frame_without_escapes() {
        let mut view = LiveView::with(false, Some(80));
        assert_eq!(view.period(), Duration::from_secs(1));
        let line = view.render(&busy_frame());
        assert!(
            line.starts_with("live 3725.0s codec PCMU sent 186250 peer-lost 3"),
            "{line}"
        );
        assert!(
            line.ends_with('\n') && line.matches('\n').count() == 1,
            "{line:?}"
        );
        assert!(!line.contains('\x1b') && !line.contains('\r'), "{line:?}");
        assert!(line.contains("xruns capture 0/0 playback 0/7"), "{line}");
        assert_eq!(view.clear_bytes(), "");
    }
}
