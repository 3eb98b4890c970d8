//! `parrot serve`: a VoIP server that answers every call with a prompt and a DTMF menu.

use crate::ivr::{builtin_files, AnsweringMachine};
use crate::print_event;
use parrot_proto::auth::{DigestAlgorithm, DigestServer, InMemoryCredentials, Verdict};
use parrot_proto::{Action, Reply, Request, UasHandler};
use parrot_proto::{Registrar, RegistrarConfig};
use parrot_tokio::{AgentConfig, MediaHandlerFactory, UasFactory};
use rand_core::TryRngCore;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

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
    /// Act as a registrar: REGISTER is answered per RFC 3261 §10.3 (bindings kept in memory).
    #[arg(long)]
    registrar: bool,
    /// Users allowed to register, one `user:password` per line; REGISTER is then challenged
    /// with digest authentication (RFC 7616, MD5 and SHA-256).
    #[arg(long, requires = "registrar")]
    users: Option<PathBuf>,
    /// Digest realm.
    #[arg(long, default_value = "parrot")]
    realm: String,
    /// Digest algorithms offered, in order of preference. MD5 comes first by default because
    /// common clients (SIPp 3.6 among them) answer only the first challenge and know only MD5.
    #[arg(long, value_delimiter = ',', default_value = "md5,sha-256", value_parser = parse_algorithm)]
    digest: Vec<DigestAlgorithm>,
    /// Test switch: the SIP handler panics on every Nth call (fault isolation).
    #[arg(long, hide = true)]
    panic_every: Option<u64>,
}

fn parse_algorithm(s: &str) -> Result<DigestAlgorithm, String> {
    match s.to_ascii_lowercase().as_str() {
        "md5" => Ok(DigestAlgorithm::Md5),
        "sha-256" | "sha256" => Ok(DigestAlgorithm::Sha256),
        other => Err(format!("unknown digest algorithm {other:?} (md5, sha-256)")),
    }
}

/// The registrar of `--registrar`: one per server, shared by the handlers.
struct RegistrarState {
    registrar: Registrar,
    auth: Option<(DigestServer, InMemoryCredentials)>,
}

/// Answers OPTIONS and lets INVITEs through to the answering machine.
struct ServeSip {
    calls: Arc<AtomicU64>,
    panic_every: Option<u64>,
    registrar: Option<Arc<Mutex<RegistrarState>>>,
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
    fn handle_register(&mut self, req: &Request<'_>) -> Action {
        let Some(state) = &self.registrar else {
            return Action::not_implemented();
        };
        let Ok(mut st) = state.lock() else {
            return Action::respond(500);
        };
        let now = Instant::now();
        let st = &mut *st;
        if let Some((server, users)) = st.auth.as_mut() {
            match server.verify(now, req.message, users) {
                Verdict::Authenticated { .. } => {}
                other => return Action::Respond(other.reply().unwrap_or_else(|| Reply::new(403))),
            }
        }
        Action::Respond(st.registrar.handle_register(now, req.message).into_reply())
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
        // Read once and served from memory: every call shares one decoded copy.
        match std::fs::read(p) {
            Ok(bytes) => cfg.builtin_files.push((p.clone(), bytes.into())),
            Err(e) => {
                eprintln!("parrot serve: cannot read {p}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if let Err(e) = std::fs::create_dir_all(&args.record_dir) {
        eprintln!(
            "parrot serve: cannot use {} for recordings: {e}",
            args.record_dir.display()
        );
        return ExitCode::from(2);
    }
    let registrar = if args.registrar {
        let auth = match &args.users {
            None => None,
            Some(path) => {
                let text = match std::fs::read_to_string(path) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("parrot serve: cannot read {}: {e}", path.display());
                        return ExitCode::from(2);
                    }
                };
                let users = match InMemoryCredentials::from_file_text(&text) {
                    Ok(u) => u,
                    Err(e) => {
                        eprintln!(
                            "parrot serve: {}: line {}: expected user:password",
                            path.display(),
                            e.line
                        );
                        return ExitCode::from(2);
                    }
                };
                let mut secret = [0u8; 32];
                rand_core::OsRng.try_fill_bytes(&mut secret).ok();
                let server = DigestServer::new(args.realm.clone(), secret.to_vec(), Instant::now())
                    .with_algorithms(&args.digest);
                Some((server, users))
            }
        };
        Some(Arc::new(Mutex::new(RegistrarState {
            registrar: Registrar::new(RegistrarConfig::default()),
            auth,
        })))
    } else {
        None
    };
    let calls = Arc::new(AtomicU64::new(0));
    let panic_every = args.panic_every;
    let uas: UasFactory = Box::new(move || {
        Box::new(ServeSip {
            calls: calls.clone(),
            panic_every,
            registrar: registrar.clone(),
        }) as Box<dyn UasHandler>
    });
    let (play, dir) = (args.play.clone(), args.record_dir.clone());
    let media: MediaHandlerFactory = Box::new(move |call, _role| {
        Box::new(AnsweringMachine::new(play.clone(), dir.clone(), call))
    });
    let mut agent = match parrot_tokio::start(cfg, Some(uas), Some(media)) {
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
    let Some(events) = agent.take_events() else {
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
                Ok(ev) => print_event(&ev),
                Err(_) => break,
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    println!("shutting down: ending live calls");
    let drain = tokio::spawn(async move {
        while let Ok(ev) = events.recv().await {
            print_event(&ev);
        }
    });
    agent.shutdown().await;
    let _ = tokio::time::timeout(std::time::Duration::from_millis(200), drain).await;
    ExitCode::SUCCESS
}
