//! `parrot`: the command line of the Parrot VoIP framework.

mod inspect;

use clap::{Parser, Subcommand};
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
    /// Parse captured SIP messages and print one JSON verdict per file.
    Inspect(inspect::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Inspect(args) => inspect::run(&args),
    }
}
