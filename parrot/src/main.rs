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

/// [`print_event`] into any writer (`parrot serve` buffers its lines).
pub(crate) fn write_event(out: &mut impl std::io::Write, ev: &CallEvent) -> std::io::Result<()> {
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
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
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
