//! `parrot`: the command line of the Parrot VoIP framework.

mod call;
mod devices;
mod inspect;
mod ivr;
mod runtime;
mod serve;

use clap::{Parser, Subcommand};
use parrot_tokio::{CallEvent, CallEventKind, EndedBy};
use std::process::ExitCode;

/// Parrot: a SIP/SDP/RTP VoIP toolkit.
#[derive(Parser)]
#[command(name = "parrot", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Answer every call with a welcome prompt and a DTMF menu (1 replay, 2 voicemail, # hang up).
    Serve(serve::Args),
    /// Place a call: play and record WAV files, send DTMF, hang up.
    Call(call::CallArgs),
    /// Register an account with a registrar (digest authentication).
    Register(call::RegisterArgs),
    /// Ping a SIP peer with OPTIONS and show its round-trip time and capabilities.
    Options(call::OptionsArgs),
    /// Parse captured SIP messages and print one JSON verdict per file.
    Inspect(inspect::Args),
    /// List capture and playback devices with the indices `call --input-device/--output-device` take.
    Devices,
}

pub(crate) fn serve_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or("expected LO-HI, e.g. 16384-32767")?;
    let a = a.parse::<u16>().map_err(|e| e.to_string())?;
    let b = b.parse::<u16>().map_err(|e| e.to_string())?;
    if a >= b {
        return Err("LO must be below HI".into());
    }
    Ok((a, b))
}

/// See the `mimalloc` line of Cargo.toml.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One line per call event, as `parrot serve` and `parrot call` print them.
pub(crate) fn print_event(ev: &CallEvent) {
    let _ = write_event(&mut std::io::stdout().lock(), ev);
}

/// [`print_event`] into any writer (`parrot serve` buffers its lines). The line is put
/// together from plain byte writes (numbers in decimal by hand): `parrot serve` writes three
/// or more of these per call, and `core::fmt` costs several times as much for the same bytes.
pub(crate) fn write_event(out: &mut impl std::io::Write, ev: &CallEvent) -> std::io::Result<()> {
    out.write_all(b"call ")?;
    write_decimal(out, ev.call)?;
    match &ev.kind {
        CallEventKind::Incoming { from, to, call_id } => {
            out.write_all(b" incoming from ")?;
            out.write_all(from.as_bytes())?;
            out.write_all(b" to ")?;
            out.write_all(to.as_bytes())?;
            out.write_all(b" call-id ")?;
            out.write_all(call_id.as_bytes())?;
        }
        CallEventKind::Progress(s) => {
            out.write_all(b" progress ")?;
            write_decimal(out, u64::from(*s))?;
        }
        CallEventKind::Answered { codec } => {
            out.write_all(b" answered codec ")?;
            out.write_all(codec.as_bytes())?;
        }
        CallEventKind::Dtmf(d) => {
            out.write_all(b" dtmf ")?;
            out.write_all(d.encode_utf8(&mut [0; 4]).as_bytes())?;
        }
        CallEventKind::PlayComplete(p) => {
            out.write_all(b" play-complete ")?;
            out.write_all(p.strip_prefix("builtin:").unwrap_or(p).as_bytes())?;
        }
        CallEventKind::Recorded(p) => write!(out, " recorded {}", p.display())?,
        CallEventKind::Failed(s) => {
            out.write_all(b" failed ")?;
            write_decimal(out, u64::from(*s))?;
            out.write_all(b" ")?;
            out.write_all(parrot_proto::reason_phrase(*s).as_bytes())?;
        }
        CallEventKind::Ended {
            by,
            duration,
            media,
        } => {
            let by: &[u8] = match by {
                EndedBy::Local => b" ended by local after ",
                EndedBy::Remote => b" ended by remote after ",
                EndedBy::Failure => b" ended by failure after ",
            };
            out.write_all(by)?;
            write_seconds(out, *duration)?;
            out.write_all(b"s rtp sent ")?;
            write_decimal(out, u64::from(media.rtp_sent))?;
            out.write_all(b" received ")?;
            write_decimal(out, u64::from(media.rtp_received))?;
            out.write_all(b" lost ")?;
            if media.lost < 0 {
                out.write_all(b"-")?;
            }
            write_decimal(out, media.lost.unsigned_abs())?;
        }
    }
    out.write_all(b"\n")
}

/// Writes `d` in seconds with two decimals: what `{:.2}` writes for `d.as_secs_f64()`.
/// Below 10^6 s that float is within 0.06 ns of the exact value, so it rounds to the same
/// hundredths as the exact nanoseconds do, except on an exact tie (left to `core::fmt`, as
/// are longer durations).
fn write_seconds(out: &mut impl std::io::Write, d: std::time::Duration) -> std::io::Result<()> {
    const HUNDREDTH: u32 = 10_000_000;
    let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
    let rest = nanos % HUNDREDTH;
    if secs >= 1_000_000 || rest == HUNDREDTH / 2 {
        return write!(out, "{:.2}", d.as_secs_f64());
    }
    let hundredths = secs * 100 + u64::from(nanos / HUNDREDTH) + u64::from(rest > HUNDREDTH / 2);
    write_decimal(out, hundredths / 100)?;
    let frac = (hundredths % 100) as u8;
    out.write_all(&[b'.', b'0' + frac / 10, b'0' + frac % 10])
}

/// Writes `n` in decimal (as `{n}` would).
fn write_decimal(out: &mut impl std::io::Write, n: u64) -> std::io::Result<()> {
    out.write_all(itoa::Buffer::new().format(n).as_bytes())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    if let Command::Inspect(args) = &cli.command {
        return inspect::run(args);
    }
    if let Command::Devices = &cli.command {
        return devices::run();
    }
    // Two RTP sockets per call: thousands of calls need more than the usual 1024 descriptors.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    // `serve` only waits for call events and signals on this thread (the agent runs on a
    // thread of its own): a single-threaded runtime does that without handing every timer and
    // wake-up through a worker thread.
    let rt = match &cli.command {
        Command::Serve(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build();
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("parrot: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async move {
        match cli.command {
            Command::Serve(a) => serve::run(a).await,
            Command::Call(a) => call::call(a).await,
            Command::Register(a) => call::register(a).await,
            Command::Options(a) => call::options(a).await,
            Command::Inspect(_) | Command::Devices => ExitCode::SUCCESS,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use parrot_tokio::MediaTotals;
    use std::time::Duration;

    /// What [`write_event`] wrote when it used `core::fmt`: the oracle it is held to.
    fn write_event_fmt(out: &mut impl std::io::Write, ev: &CallEvent) -> std::io::Result<()> {
        let n = ev.call;
        match &ev.kind {
            CallEventKind::Incoming { from, to, call_id } => {
                writeln!(
                    out,
                    "call {n} incoming from {from} to {to} call-id {call_id}"
                )
            }
            CallEventKind::Progress(s) => writeln!(out, "call {n} progress {s}"),
            CallEventKind::Answered { codec } => writeln!(out, "call {n} answered codec {codec}"),
            CallEventKind::Dtmf(d) => writeln!(out, "call {n} dtmf {d}"),
            CallEventKind::PlayComplete(p) => {
                writeln!(
                    out,
                    "call {n} play-complete {}",
                    p.strip_prefix("builtin:").unwrap_or(p)
                )
            }
            CallEventKind::Recorded(p) => writeln!(out, "call {n} recorded {}", p.display()),
            CallEventKind::Failed(s) => {
                writeln!(
                    out,
                    "call {n} failed {s} {}",
                    parrot_proto::reason_phrase(*s)
                )
            }
            CallEventKind::Ended {
                by,
                duration,
                media,
            } => {
                let by = match by {
                    EndedBy::Local => "local",
                    EndedBy::Remote => "remote",
                    EndedBy::Failure => "failure",
                };
                writeln!(
                    out,
                    "call {n} ended by {by} after {:.2}s rtp sent {} received {} lost {}",
                    duration.as_secs_f64(),
                    media.rtp_sent,
                    media.rtp_received,
                    media.lost
                )
            }
        }
    }

    #[test]
    fn seconds_are_written_as_core_fmt_rounds_them() {
        let mut cases: Vec<Duration> = (0..200_000u64).map(Duration::from_micros).collect();
        // Around every hundredth's tie, and whole ranges of nanoseconds.
        for base in [
            0u64,
            5_000_000,
            15_000_000,
            125_000_000,
            995_000_000,
            1_005_000_000,
        ] {
            for delta in 0..64 {
                cases.push(Duration::from_nanos(base + delta));
                cases.push(Duration::from_nanos(base.saturating_sub(delta)));
            }
        }
        for secs in [
            59,
            3_599,
            86_399,
            999_999,
            1_000_000,
            12_345_678,
            u64::MAX / 2,
        ] {
            for nanos in [
                0,
                4_999_999,
                5_000_000,
                5_000_001,
                994_999_999,
                995_000_000,
                999_999_999,
            ] {
                cases.push(Duration::new(secs, nanos));
            }
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            cases.push(Duration::from_nanos(x % 2_000_000_000_000_000));
            cases.push(Duration::from_nanos(x % 100_000_000_000));
        }
        for d in cases {
            let mut mine = Vec::new();
            write_seconds(&mut mine, d).unwrap();
            assert_eq!(
                String::from_utf8(mine).unwrap(),
                format!("{:.2}", d.as_secs_f64()),
                "{d:?}"
            );
        }
    }

    #[test]
    fn event_lines_are_what_core_fmt_wrote() {
        let ended = |by, ms, lost| CallEventKind::Ended {
            by,
            duration: Duration::from_millis(ms),
            media: MediaTotals {
                rtp_sent: 1234,
                rtp_received: 0,
                lost,
            },
        };
        let kinds = vec![
            CallEventKind::Incoming {
                from: "sip:sipp@127.0.0.1:5061".into(),
                to: "sip:service@127.0.0.1:5060".into(),
                call_id: "1-8435@127.0.0.1".into(),
            },
            CallEventKind::Progress(180),
            CallEventKind::Answered {
                codec: "PCMU/8000".into(),
            },
            CallEventKind::Dtmf('#'),
            CallEventKind::Dtmf('é'),
            CallEventKind::PlayComplete("builtin:welcome.wav".into()),
            CallEventKind::PlayComplete("/tmp/x.wav".into()),
            CallEventKind::Recorded("/tmp/message-7.wav".into()),
            CallEventKind::Failed(486),
            CallEventKind::Failed(0),
            ended(EndedBy::Local, 0, 0),
            ended(EndedBy::Remote, 12_345, -3),
            ended(EndedBy::Failure, 999_999, i64::MIN),
            ended(EndedBy::Remote, 125, i64::MAX),
        ];
        for (i, kind) in kinds.into_iter().enumerate() {
            for call in [0, 7, u64::MAX] {
                let ev = CallEvent {
                    call: call.wrapping_add(i as u64),
                    kind: kind.clone(),
                };
                let (mut new, mut old) = (Vec::new(), Vec::new());
                write_event(&mut new, &ev).unwrap();
                write_event_fmt(&mut old, &ev).unwrap();
                assert_eq!(String::from_utf8(new), String::from_utf8(old));
            }
        }
    }
}
