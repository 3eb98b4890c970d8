//! Runs one parser over one message N times, for instruction counting under callgrind
//! (`benches/instructions.sh`): stable numbers on a noisy shared machine.

use bytes::Bytes;
use parrot_benches::{parrot, rsip, rsipstack, sipx, MESSAGES};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: count PARSER MESSAGE ITERATIONS");
        std::process::exit(2);
    }
    let f: fn(&Bytes) -> usize = match args[1].as_str() {
        "parrot" => parrot,
        "rsipstack" => rsipstack,
        "rsip" => rsip,
        "sipx-sip" => sipx,
        other => {
            eprintln!("unknown parser {other}");
            std::process::exit(2);
        }
    };
    let Some((_, raw)) = MESSAGES.iter().find(|(n, _)| *n == args[2]) else {
        eprintln!("unknown message {}", args[2]);
        std::process::exit(2);
    };
    let n: usize = args[3].parse().unwrap_or(1000);
    let b = Bytes::from_static(raw);
    let mut acc = 0usize;
    for _ in 0..n {
        acc = acc.wrapping_add(f(std::hint::black_box(&b)));
    }
    println!("{acc}");
}
