//! Measures the default sound devices as parrot-cpal opens them: when each callback comes and
//! how many frames it moves, and the rate those frames amount to against the host clock.
//!
//! `cargo run -p parrot-cpal --features cpal --example device_timing -- [SECONDS] [BUFFER_FRAMES]`
//!
//! Without BUFFER_FRAMES the device's default buffer is used, as `parrot call` does when the
//! device cannot take a small fixed one.

#[cfg(feature = "cpal")]
fn main() {
    use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    let mut args = std::env::args().skip(1);
    let secs: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let fixed: Option<u32> = args.next().and_then(|s| s.parse().ok());
    let host = cpal::default_host();
    let t0 = Instant::now();
    let (tx, rx) = mpsc::channel::<(char, f64, usize)>();
    let out = host
        .default_output_device()
        .expect("no default output device");
    let inp = host
        .default_input_device()
        .expect("no default input device");
    let mut streams = Vec::new();
    for (kind, dev) in [('o', &out), ('i', &inp)] {
        let sc = if kind == 'o' {
            dev.default_output_config()
        } else {
            dev.default_input_config()
        }
        .expect("config");
        let mut cfg: cpal::StreamConfig = sc.config();
        if let Some(n) = fixed {
            cfg.buffer_size = cpal::BufferSize::Fixed(n);
        }
        println!(
            "{kind}: {:?} {:?} {} Hz {} ch, buffer {:?} (supported {:?})",
            dev.name(),
            sc.sample_format(),
            cfg.sample_rate.0,
            cfg.channels,
            cfg.buffer_size,
            sc.buffer_size()
        );
        let ch = usize::from(cfg.channels);
        let tx = tx.clone();
        let s = if kind == 'o' {
            dev.build_output_stream(
                &cfg,
                move |d: &mut [f32], _: &cpal::OutputCallbackInfo| {
                    d.fill(0.0);
                    let _ = tx.send(('o', t0.elapsed().as_secs_f64(), d.len() / ch));
                },
                |e| eprintln!("output error: {e}"),
                None,
            )
        } else {
            dev.build_input_stream(
                &cfg,
                move |d: &[f32], _: &cpal::InputCallbackInfo| {
                    let _ = tx.send(('i', t0.elapsed().as_secs_f64(), d.len() / ch));
                },
                |e| eprintln!("input error: {e}"),
                None,
            )
        }
        .expect("build stream");
        s.play().expect("play");
        println!("{kind}: playing at {:.3}s", t0.elapsed().as_secs_f64());
        streams.push((kind, cfg.sample_rate.0, s));
    }
    drop(tx);
    let end = Duration::from_secs_f64(secs);
    let mut log: Vec<(char, f64, usize)> = Vec::new();
    while t0.elapsed() < end {
        if let Ok(e) = rx.recv_timeout(Duration::from_millis(50)) {
            log.push(e);
        }
    }
    drop(streams);
    for kind in ['o', 'i'] {
        let ev: Vec<_> = log.iter().filter(|e| e.0 == kind).collect();
        let Some(first) = ev.first() else {
            println!("{kind}: no callbacks");
            continue;
        };
        let mut total = 0usize;
        let mut gaps = Vec::new();
        for w in ev.windows(2) {
            gaps.push(w[1].1 - w[0].1);
        }
        for (i, e) in ev.iter().enumerate().take(8) {
            println!("{kind}: #{i} at {:.3}s {} frames", e.1, e.2);
        }
        let max_gap = gaps.iter().copied().fold(0.0, f64::max);
        let skip = ev.len() / 10; // steady state: the last 90%
        for e in &ev[skip..] {
            total += e.2;
        }
        let span = ev.last().unwrap().1 - ev[skip].1;
        let rate = (total - ev[skip].2) as f64 / span.max(1e-9);
        println!(
            "{kind}: first callback at {:.3}s, {} callbacks, longest gap {:.3}s, steady rate {:.1} frames/s",
            first.1,
            ev.len(),
            max_gap,
            rate
        );
    }
}

#[cfg(not(feature = "cpal"))]
fn main() {
    eprintln!("build with --features cpal");
}
