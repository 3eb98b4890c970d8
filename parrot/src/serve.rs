//! `parrot serve`: a VoIP server that answers every call with a prompt and a DTMF menu.

use crate::ivr::{builtin_files, AnsweringMachine};
use crate::print_event;
use parrot_proto::{Action, Reply, Request, UasHandler};
use parrot_tokio::{Agent, AgentConfig, MediaHandlerFactory, UasFactory};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Arguments of `parrot serve`.
#[derive(clap::Args)]
pub struct Args {
    /// SIP address to listen on (UDP and TCP).
    #[arg(long, default_value = "0.0.0.0:5060")]
    bind: SocketAddr,
    /// Play this WAV file in a loop instead of the built-in welcome prompt.
    #[arg(long)]
    play: Option<String>,
    /// RTP port range, LO-HI.
    #[arg(long, default_value = "16384-32767", value_parser = crate::serve_range)]
    rtp_ports: (u16, u16),
    /// Where voicemail messages (menu option 2) are written.
    #[arg(long, default_value = ".")]
    record_dir: PathBuf,
    /// Address to advertise in SDP and Contact (default: the bind address, or 127.0.0.1).
    #[arg(long)]
    advertise: Option<std::net::IpAddr>,
    /// Test switch: the SIP handler panics on every Nth call (fault isolation).
    #[arg(long, hide = true)]
    panic_every: Option<u64>,
}

/// Answers OPTIONS and lets INVITEs through to the answering machine.
struct ServeSip {
    calls: Arc<AtomicU64>,
    panic_every: Option<u64>,
}

impl UasHandler for ServeSip {
    fn handle_invite(&mut self, req: &Request<'_>) -> Action {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(every) = self.panic_every {
            if every > 0
                && n % every == 0
                && req.message.to_header().is_ok_and(|t| t.tag().is_none())
            {
                panic!("deliberate panic on call {n} (--panic-every {every})");
            }
        }
        Action::NoReply
    }
    fn handle_options(&mut self, _req: &Request<'_>) -> Action {
        Action::Respond(
            Reply::new(200)
                .header("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS")
                .header("Accept", "application/sdp"),
        )
    }
}

pub async fn run(args: Args) -> ExitCode {
    let mut cfg = AgentConfig::new(args.bind);
    cfg.rtp_ports = args.rtp_ports.0..=args.rtp_ports.1;
    cfg.builtin_files = builtin_files();
    cfg.advertised_ip = args.advertise;
    if let Some(p) = &args.play {
        if let Err(e) = std::fs::metadata(p) {
            eprintln!("parrot serve: cannot read {p}: {e}");
            return ExitCode::from(2);
        }
    }
    if let Err(e) = std::fs::create_dir_all(&args.record_dir) {
        eprintln!(
            "parrot serve: cannot use {} for recordings: {e}",
            args.record_dir.display()
        );
        return ExitCode::from(2);
    }
    let calls = Arc::new(AtomicU64::new(0));
    let panic_every = args.panic_every;
    let uas: UasFactory = Box::new(move || {
        Box::new(ServeSip {
            calls: calls.clone(),
            panic_every,
        }) as Box<dyn UasHandler>
    });
    let (play, dir) = (args.play.clone(), args.record_dir.clone());
    let media: MediaHandlerFactory = Box::new(move |call, _role| {
        Box::new(AnsweringMachine::new(play.clone(), dir.clone(), call))
    });
    let mut agent = match Agent::start(cfg, Some(uas), Some(media)).await {
        Ok(a) => a,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let suggestion =
                SocketAddr::new(args.bind.ip(), args.bind.port().wrapping_add(10).max(1024));
            eprintln!(
                "parrot serve: port {} is in use, try --bind {suggestion}",
                args.bind.port()
            );
            return ExitCode::from(1);
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!(
                "parrot serve: not allowed to bind {} ({e}); try a port above 1023",
                args.bind
            );
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("parrot serve: cannot listen on {}: {e}", args.bind);
            return ExitCode::from(1);
        }
    };
    let tcp = agent
        .tcp_addr()
        .map(|a| format!(" tcp {a}"))
        .unwrap_or_default();
    println!("listening on udp {}{tcp}", agent.local_addr());
    let Some(mut events) = agent.take_events() else {
        return ExitCode::from(1);
    };
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("parrot serve: cannot watch SIGTERM: {e}");
            return ExitCode::from(1);
        }
    };
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => print_event(&ev),
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    println!("shutting down: ending live calls");
    let drain = tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            print_event(&ev);
        }
    });
    agent.shutdown().await;
    let _ = tokio::time::timeout(std::time::Duration::from_millis(200), drain).await;
    ExitCode::SUCCESS
}
