//! `parrot call`, `parrot register`, `parrot options`: the client side.

use crate::devices::LiveView;
use crate::ivr::{builtin_files, Caller};
use crate::print_event;
use crate::runtime::Runtime;
use parrot_proto::Transport;
use parrot_tokio::{Agent, AgentConfig, CallEventKind, CallOptions, MediaHandlerFactory};
use parrot_ua::TlsClient;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `parrot call`.
#[derive(clap::Args)]
pub struct CallArgs {
    /// Who to call, e.g. sip:bob@127.0.0.1:5060.
    uri: String,
    /// Local SIP address.
    #[arg(long, default_value = "0.0.0.0:0")]
    bind: SocketAddr,
    /// Play this WAV file to the peer.
    #[arg(long)]
    play: Option<String>,
    /// Record what the peer sends into this WAV file (with --calls N, -N is added per call).
    #[arg(long)]
    record: Option<String>,
    /// Hang up this many seconds after the answer.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// User name for digest authentication (401/407).
    #[arg(long)]
    user: Option<String>,
    /// Password for digest authentication.
    #[arg(long)]
    password: Option<String>,
    /// DTMF digits to send (RFC 4733) once the call is answered.
    #[arg(long)]
    dtmf: Option<String>,
    /// From URI (default sip:parrot@<local address>).
    #[arg(long)]
    from: Option<String>,
    /// Number of calls to place.
    #[arg(long, default_value_t = 1)]
    calls: u32,
    /// How many calls run at once.
    #[arg(long, default_value_t = 1)]
    parallel: u32,
    /// Use TCP (same as --transport tcp).
    #[arg(long)]
    tcp: bool,
    /// The transport: udp, tcp, tls, ws or wss (`sips:` URIs default to tls).
    #[arg(long, value_parser = parse_transport)]
    transport: Option<Transport>,
    /// Trusted CA certificates (PEM) for TLS and WSS.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<std::path::PathBuf>,
    /// The runtime that drives SIP and media.
    #[arg(long, value_enum, default_value_t)]
    runtime: Runtime,
    /// RTP port range, LO-HI.
    #[arg(long, default_value = "16384-32767", value_parser = crate::serve_range)]
    rtp_ports: (u16, u16),
    /// Microphone: a device index or name from `parrot devices`, `default`, or a WAV file
    /// played as the microphone in real time (devices need the `devices` feature).
    #[arg(long)]
    input_device: Option<String>,
    /// Speakers: a device index or name from `parrot devices`, `default`, or a WAV file that
    /// receives what the peer says.
    #[arg(long)]
    output_device: Option<String>,
}

fn parse_transport(s: &str) -> Result<Transport, String> {
    Transport::from_via_token(s)
        .ok_or_else(|| format!("unknown transport {s:?} (udp, tcp, tls, ws, wss)"))
}

async fn start(
    runtime: Runtime,
    bind: SocketAddr,
    rtp: (u16, u16),
    media: Option<MediaHandlerFactory>,
    tls: Option<TlsClient>,
) -> Result<Agent, ExitCode> {
    let mut cfg = AgentConfig::new(bind);
    cfg.tls_client = tls;
    cfg.tcp = false;
    cfg.auto_answer = false;
    cfg.rtp_ports = rtp.0..=rtp.1;
    cfg.builtin_files = builtin_files();
    runtime.start(cfg, None, media).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            eprintln!(
                "parrot: port {} is in use, try --bind {}:0",
                bind.port(),
                bind.ip()
            );
        } else {
            eprintln!("parrot: cannot bind {bind}: {e}");
        }
        ExitCode::from(1)
    })
}

fn credentials(
    user: &Option<String>,
    password: &Option<String>,
) -> Result<Option<(String, String)>, ExitCode> {
    match (user, password) {
        (Some(u), Some(p)) => Ok(Some((u.clone(), p.clone()))),
        (None, None) => Ok(None),
        _ => {
            eprintln!("parrot: --user and --password go together");
            Err(ExitCode::from(2))
        }
    }
}

pub async fn call(args: CallArgs) -> ExitCode {
    let audio = if args.input_device.is_some() || args.output_device.is_some() {
        if args.calls > 1 {
            eprintln!("parrot call: --input-device/--output-device serve one call (drop --calls)");
            return ExitCode::from(2);
        }
        let input = args.input_device.as_deref().unwrap_or("none");
        let output = args.output_device.as_deref().unwrap_or("none");
        match parrot_cpal::Audio::open(input, output) {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("parrot call: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    let mut audio = audio.map(|a| std::sync::Mutex::new(Some(a)));
    if let Some(p) = &args.play {
        if let Err(e) = std::fs::metadata(p) {
            eprintln!("parrot call: cannot read {p}: {e}");
            return ExitCode::from(2);
        }
    }
    let creds = match credentials(&args.user, &args.password) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let calls = args.calls.max(1);
    let (play, record) = (args.play.clone(), args.record.clone());
    let media: MediaHandlerFactory = Box::new(move |n, _| {
        let rec = record.as_ref().map(|r| {
            if calls > 1 {
                match r.rsplit_once('.') {
                    Some((a, b)) => format!("{a}-{n}.{b}"),
                    None => format!("{r}-{n}"),
                }
            } else {
                r.clone()
            }
        });
        Box::new(Caller::new(play.clone(), rec))
    });
    let tls = match crate::runtime::tls_client(args.tls_ca.as_ref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("parrot call: {e}");
            return ExitCode::from(2);
        }
    };
    let agent = match start(args.runtime, args.bind, args.rtp_ports, Some(media), tls).await {
        Ok(a) => Arc::new(a),
        Err(code) => return code,
    };
    let opts = CallOptions {
        // With credentials the From user is the account's (proxies such as Kamailio require the
        // digest user to match it); the domain is the called one.
        from: args.from.clone().or_else(|| {
            let user = args.user.as_ref()?;
            let uri = parrot_proto::Uri::parse(&args.uri).ok()?;
            let host = uri.as_sip()?.host();
            Some(format!("sip:{user}@{host}"))
        }),
        credentials: creds,
        tcp: args.tcp,
        transport: args.transport,
        headers: Vec::new(),
    };
    let sem = Arc::new(tokio::sync::Semaphore::new(args.parallel.max(1) as usize));
    let mut tasks = Vec::new();
    for _ in 0..calls {
        let Ok(permit) = sem.clone().acquire_owned().await else {
            break;
        };
        let (agent, opts, uri, dtmf) = (
            agent.clone(),
            opts.clone(),
            args.uri.clone(),
            args.dtmf.clone(),
        );
        let duration = Duration::from_secs_f64(args.duration.max(0.0));
        let device = audio
            .as_mut()
            .and_then(|m| m.get_mut().ok().and_then(Option::take));
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            one_call(&agent, &uri, opts, dtmf, duration, device).await
        }));
    }
    let mut ok = 0;
    let mut failed = 0;
    for t in tasks {
        match t.await {
            Ok(true) => ok += 1,
            _ => failed += 1,
        }
    }
    println!("calls: {ok} ok, {failed} failed");
    if let Ok(agent) = Arc::try_unwrap(agent) {
        agent.shutdown().await;
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

async fn one_call(
    agent: &Agent,
    uri: &str,
    opts: CallOptions,
    dtmf: Option<String>,
    duration: Duration,
    device: Option<parrot_cpal::Audio>,
) -> bool {
    let stats = device.as_ref().map(parrot_cpal::Audio::stats);
    let placed = match device {
        Some(d) => agent.call_with_device(uri, opts, d).await,
        None => agent.call(uri, opts).await,
    };
    let mut live = LiveView::new();
    let mut tick = tokio::time::interval(live.period());
    let mut answered_at: Option<tokio::time::Instant> = None;
    let mut call = match placed {
        Ok(c) => c,
        Err(e) => {
            eprintln!("parrot call: {uri}: {e}");
            return false;
        }
    };
    let mut answered = false;
    let mut hangup_at: Option<tokio::time::Instant> = None;
    loop {
        let sleep = async {
            match hangup_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ev = call.next_event() => {
                let Some(ev) = ev else { break };
                live.clear();
                print_event(&ev);
                match &ev.kind {
                    CallEventKind::Answered { .. } => {
                        answered = true;
                        answered_at = Some(tokio::time::Instant::now());
                        if let Some(d) = &dtmf {
                            call.send_dtmf(d);
                        }
                        hangup_at = Some(tokio::time::Instant::now() + duration);
                    }
                    CallEventKind::Ended { .. } => break,
                    _ => {}
                }
            }
            _ = sleep => {
                call.hangup();
                hangup_at = None;
            }
            _ = tick.tick(), if stats.is_some() && answered_at.is_some() => {
                if let (Some(s), Some(t)) = (&stats, answered_at) {
                    live.draw(t.elapsed(), s);
                }
            }
        }
    }
    live.clear();
    if let Some(s) = &stats {
        let c = s.counters();
        println!(
            "audio: captured {} played {} samples, capture overruns {} underruns {}, playback overruns {} underruns {}",
            c.captured, c.played, c.capture_overruns, c.capture_underruns, c.playback_overruns, c.playback_underruns
        );
    }
    answered
}

/// Arguments of `parrot register`.
#[derive(clap::Args)]
pub struct RegisterArgs {
    /// The registrar, e.g. sip:127.0.0.1:5080.
    uri: String,
    /// User name (also the user part of the address-of-record).
    #[arg(long)]
    user: String,
    /// Password.
    #[arg(long)]
    password: String,
    /// Address-of-record (default sip:USER@<registrar host>).
    #[arg(long)]
    aor: Option<String>,
    /// Requested lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    expires: u32,
    /// Local SIP address.
    #[arg(long, default_value = "0.0.0.0:0")]
    bind: SocketAddr,
    /// The runtime that drives SIP.
    #[arg(long, value_enum, default_value_t)]
    runtime: Runtime,
}

pub async fn register(args: RegisterArgs) -> ExitCode {
    let agent = match start(args.runtime, args.bind, (16384, 32767), None, None).await {
        Ok(a) => a,
        Err(code) => return code,
    };
    let host = args
        .uri
        .split_once(':')
        .map(|(_, h)| h.rsplit('@').next().unwrap_or(h))
        .unwrap_or(&args.uri);
    let host = host.split([';', '?']).next().unwrap_or(host);
    let aor = args
        .aor
        .clone()
        .unwrap_or_else(|| format!("sip:{}@{}", args.user, host));
    let r = agent
        .register(
            &args.uri,
            &aor,
            Some((args.user.clone(), args.password.clone())),
            args.expires,
        )
        .await;
    let code = match r {
        Ok(Ok(expires)) => {
            println!("registered {aor} at {} for {expires}s", args.uri);
            ExitCode::SUCCESS
        }
        Ok(Err(status)) => {
            println!(
                "registration of {aor} failed: {status} {}",
                parrot_proto::reason_phrase(status)
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("parrot register: {e}");
            ExitCode::from(1)
        }
    };
    agent.shutdown().await;
    code
}

/// Arguments of `parrot options`.
#[derive(clap::Args)]
pub struct OptionsArgs {
    /// Who to ping, e.g. sip:127.0.0.1:5060.
    uri: String,
    /// Local SIP address.
    #[arg(long, default_value = "0.0.0.0:0")]
    bind: SocketAddr,
    /// The runtime that drives SIP.
    #[arg(long, value_enum, default_value_t)]
    runtime: Runtime,
}

pub async fn options(args: OptionsArgs) -> ExitCode {
    let agent = match start(args.runtime, args.bind, (16384, 32767), None, None).await {
        Ok(a) => a,
        Err(code) => return code,
    };
    let code = match agent.options(&args.uri).await {
        Ok(Ok(r)) => {
            println!(
                "{} {} from {} rtt {:.1}ms",
                r.status,
                parrot_proto::reason_phrase(r.status),
                args.uri,
                r.rtt.as_secs_f64() * 1000.0
            );
            if let Some(a) = &r.agent {
                println!("agent: {a}");
            }
            println!("allow: {}", r.allow.join(", "));
            println!("supported: {}", r.supported.join(", "));
            if (200..300).contains(&r.status) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Ok(Err(e)) => {
            println!("no answer from {}: {e}", args.uri);
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("parrot options: {e}");
            ExitCode::from(1)
        }
    };
    agent.shutdown().await;
    code
}
