//! `parrot serve`: a VoIP server that answers every call with a prompt and a DTMF menu.

use crate::ivr::{builtin_files, AnsweringMachine};
use crate::{print_event, write_event};
use std::io::Write;

/// How long `parrot serve` lets call events gather before printing them.
const EVENT_BATCH: std::time::Duration = std::time::Duration::from_millis(20);
use parrot_proto::auth::{DigestAlgorithm, DigestServer, InMemoryCredentials, Verdict};
use parrot_proto::{Action, ProxyTargets, Reply, Request, UasHandler};
use parrot_proto::{Registrar, RegistrarConfig};
use parrot_tokio::{AgentConfig, MediaHandlerFactory, UasFactory};
use parrot_ua::StreamKind;
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
    /// Threads that send RTP beside the SIP thread (0: the SIP thread sends). Default: as
    /// many as the machine has cores (none on one core).
    #[arg(long, value_name = "N")]
    media_threads: Option<usize>,
    /// Run the media sending threads at this real-time priority (SCHED_FIFO, 1-98) and the
    /// SIP/media loop one above, as media servers are run in production; needs root or
    /// CAP_SYS_NICE.
    #[arg(long, value_name = "PRIORITY", value_parser = clap::value_parser!(u8).range(1..=98))]
    realtime: Option<u8>,
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
    /// With --registrar: at most this many bindings per address-of-record; a REGISTER that
    /// would add more gets 403 "Too Many Bindings" (refreshes always pass). 0: no limit.
    #[arg(long, default_value_t = 10, value_name = "N")]
    max_bindings: usize,
    /// At most this many live SIP transactions at once; above it new requests get 503 with
    /// Retry-After. Answered ones kept only to absorb retransmissions do not count (the core
    /// keeps up to 500,000 of those, oldest let go first), but a proxied call holds four for
    /// up to 32 s, so sustained proxying above ~1,000 calls/s needs more than the default.
    #[arg(long, default_value_t = parrot_proto::EndpointConfig::default().max_transactions, value_name = "N")]
    max_transactions: usize,
    /// Milliseconds an INVITE waits for its 100 Trying: if the answer (ringing or the call
    /// answered) goes first, the 100 is left out (RFC 3261 §17.2.1 allows it when a response
    /// follows within 200 ms). 0 sends it at once.
    #[arg(long, default_value_t = 100, value_name = "MS", value_parser = clap::value_parser!(u64).range(0..=200))]
    trying_delay: u64,
    /// Overload shedding: once the SIP socket's queue has not emptied for this many
    /// milliseconds, new calls and other requests outside a dialog get 503 with Retry-After
    /// until it does (calls in progress are still served). 0 turns it off.
    #[arg(long, default_value_t = parrot_ua::SHED_AFTER.as_millis() as u64, value_name = "MS")]
    shed_after: u64,
    /// Digest realm.
    #[arg(long, default_value = "parrot")]
    realm: String,
    /// Digest algorithms offered, in order of preference. MD5 comes first by default because
    /// common clients (SIPp 3.6 among them) answer only the first challenge and know only MD5.
    #[arg(long, value_delimiter = ',', default_value = "md5,sha-256", value_parser = parse_algorithm)]
    digest: Vec<DigestAlgorithm>,
    /// Proxy every INVITE to this URI (stateful, record-routing, RFC 3261 §16) instead of
    /// answering it, e.g. `sip:service@127.0.0.1:5070`.
    #[arg(long, value_name = "URI")]
    proxy_to: Option<String>,
    /// TLS and WebSocket listeners.
    #[command(flatten)]
    streams: crate::runtime::StreamArgs,
    /// The runtime that drives SIP and media.
    #[arg(long, value_enum, default_value_t)]
    runtime: crate::runtime::Runtime,
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

/// Users that name the server itself: INVITEs to them reach the answering machine even in
/// registrar mode.
const SERVER_USERS: &[&str] = &["parrot", "service"];

/// Where INVITEs go besides the answering machine: `--proxy-to`, and the hosts that make a
/// Request-URI "ours" in registrar mode (a user of ours without a binding gets 404).
struct Routing {
    proxy_to: Option<String>,
    hosts: Vec<String>,
    any_ip: bool,
    /// Our SIP port when fixed by `--bind` (an AOR registered with it matches a port-less
    /// Request-URI).
    port: Option<u16>,
}

impl Routing {
    fn from_args(args: &Args) -> Routing {
        let mut hosts = vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
            "[::1]".to_owned(),
            args.realm.to_ascii_lowercase(),
        ];
        let ip_host = |ip: std::net::IpAddr| match ip {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        if !args.bind.ip().is_unspecified() {
            hosts.push(ip_host(args.bind.ip()));
        }
        if let Some(a) = args.advertise {
            hosts.push(ip_host(a));
        }
        hosts.dedup();
        Routing {
            proxy_to: args.proxy_to.clone(),
            hosts,
            any_ip: args.bind.ip().is_unspecified(),
            port: Some(args.bind.port()).filter(|p| *p != 0),
        }
    }

    /// Whether a Request-URI host is this server's domain.
    fn is_ours(&self, host: &str) -> bool {
        let h = host.to_ascii_lowercase();
        self.hosts.contains(&h)
            || (self.any_ip
                && host
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok())
    }
}

/// What registrar mode does with an INVITE (RFC 3261 §16.5: the target set is the bindings of
/// the Request-URI's address-of-record): proxy to the registered contacts, 404 for a user of
/// ours that has none, `None` (the answering machine) for the server's own users and other
/// domains.
fn route_to_user(
    msg: &parrot_proto::Message,
    registrar: &Registrar,
    routing: &Routing,
    now: Instant,
) -> Option<Action> {
    let uri = msg.request_uri().ok()?;
    let sip = uri.as_sip()?;
    let user = sip.user()?;
    if user.is_empty() || SERVER_USERS.iter().any(|u| u.eq_ignore_ascii_case(user)) {
        return None;
    }
    let scheme = if sip.is_secure() { "sips" } else { "sip" };
    let host = sip.host().to_string();
    let ours = routing.is_ours(&host);
    // The AOR as written, then the same user at our other names, with and without the port.
    let mut hosts = vec![host.clone()];
    if ours {
        hosts.extend(routing.hosts.iter().cloned());
    }
    let mut ports: Vec<String> = sip.port().map(|p| format!(":{p}")).into_iter().collect();
    ports.push(String::new());
    if let Some(p) = routing.port.filter(|_| ours && sip.port().is_none()) {
        ports.push(format!(":{p}"));
    }
    let bindings = hosts
        .iter()
        .flat_map(|h| ports.iter().map(move |p| format!("{scheme}:{user}@{h}{p}")))
        .map(|aor| registrar.lookup(now, &aor))
        .find(|b| !b.is_empty());
    match bindings {
        Some(b) => {
            // Equal q: ring every contact at once; different q: best first (§16.6, RFC 3261
            // §10.2.1.2 q ordering).
            let same_q = b
                .windows(2)
                .all(|w| w[0].effective_q() == w[1].effective_q());
            let targets = b.into_iter().map(|b| b.uri).collect();
            Some(Action::ProxyTo(ProxyTargets {
                targets,
                parallel: same_q,
                record_route: Some(true),
            }))
        }
        None if ours => Some(Action::Respond(Reply::new(404).reason("Not Found"))),
        None => None,
    }
}

/// Answers OPTIONS and lets INVITEs through to the answering machine, or proxies them
/// (`--proxy-to`, registered users in `--registrar` mode).
struct ServeSip {
    calls: Arc<AtomicU64>,
    panic_every: Option<u64>,
    registrar: Option<Arc<Mutex<RegistrarState>>>,
    routing: Arc<Routing>,
}

impl UasHandler for ServeSip {
    fn handle_invite(&mut self, req: &Request<'_>) -> Action {
        // Whether it starts a call (no To tag): only proxying, registrar routing and the
        // panic switch ask, so the To header is not parsed for nothing on every call.
        let asks = self.routing.proxy_to.is_some()
            || self.registrar.is_some()
            || self.panic_every.is_some_and(|every| every > 0);
        let initial = asks && req.message.to_header().is_ok_and(|t| t.tag().is_none());
        if initial {
            if let Some(target) = &self.routing.proxy_to {
                return Action::Proxy(target.clone());
            }
            if let Some(state) = &self.registrar {
                let routed = match state.lock() {
                    Ok(st) => {
                        route_to_user(req.message, &st.registrar, &self.routing, Instant::now())
                    }
                    Err(_) => Some(Action::respond(500)),
                };
                if let Some(action) = routed {
                    return action;
                }
            }
        }
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(every) = self.panic_every {
            if every > 0 && n % every == 0 && initial {
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
        options_reply()
    }
}

/// The answer to OPTIONS (RFC 3261 §11.2).
fn options_reply() -> Action {
    Action::Respond(
        Reply::new(200)
            .header("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS")
            .header("Accept", "application/sdp"),
    )
}

/// [`ServeSip`] when it neither proxies nor registers (and panics on no call): every INVITE
/// reaches the answering machine. It holds nothing, so the handler made for each call costs
/// no allocation and no reference counts (the agent's panic guard still boxes it).
struct AnswerEveryCall;

impl UasHandler for AnswerEveryCall {
    fn handle_invite(&mut self, _req: &Request<'_>) -> Action {
        Action::NoReply
    }

    fn handle_options(&mut self, _req: &Request<'_>) -> Action {
        options_reply()
    }
}

pub async fn run(args: Args) -> ExitCode {
    let mut cfg = AgentConfig::new(args.bind);
    cfg.rtp_ports = args.rtp_ports.0..=args.rtp_ports.1;
    if let Some(n) = args.media_threads {
        cfg.media_threads = n;
    }
    cfg.realtime = args.realtime;
    cfg.builtin_files = builtin_files();
    cfg.advertised_ip = args.advertise;
    cfg.endpoint.max_transactions = args.max_transactions;
    cfg.endpoint.trying_delay = std::time::Duration::from_millis(args.trying_delay);
    cfg.endpoint.shed_after =
        (args.shed_after > 0).then(|| std::time::Duration::from_millis(args.shed_after));
    // Requests it proxies get the §16.3 checks only (a Require or body it does not know
    // travels on); the ones it keeps still get the UAS answers.
    cfg.endpoint.proxy.defer_uas_checks = args.registrar || args.proxy_to.is_some();
    match args.streams.apply(&mut cfg) {
        Ok(Some(note)) => println!("{note}"),
        Ok(None) => {}
        Err(e) => {
            eprintln!("parrot serve: {e}");
            return ExitCode::from(2);
        }
    }
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
            registrar: Registrar::new(RegistrarConfig {
                max_bindings: args.max_bindings,
                ..RegistrarConfig::default()
            }),
            auth,
        })))
    } else {
        None
    };
    let calls = Arc::new(AtomicU64::new(0));
    let panic_every = args.panic_every;
    let routing = Arc::new(Routing::from_args(&args));
    let plain = routing.proxy_to.is_none() && registrar.is_none() && panic_every.is_none();
    let uas: UasFactory = Box::new(move || {
        if plain {
            return Box::new(AnswerEveryCall) as Box<dyn UasHandler>;
        }
        Box::new(ServeSip {
            calls: calls.clone(),
            panic_every,
            registrar: registrar.clone(),
            routing: routing.clone(),
        }) as Box<dyn UasHandler>
    });
    let play: Option<std::sync::Arc<str>> = args.play.as_deref().map(Into::into);
    let dir: std::sync::Arc<std::path::Path> = args.record_dir.as_path().into();
    let media: MediaHandlerFactory = Box::new(move |call, _role| {
        Box::new(AnsweringMachine::new(play.clone(), dir.clone(), call))
    });
    let mut agent = match args.runtime.start(cfg, Some(uas), Some(media)) {
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
    let mut listening = format!("listening on udp {}", agent.local_addr());
    for (kind, name) in [
        (StreamKind::Tcp, "tcp"),
        (StreamKind::Tls, "tls"),
        (StreamKind::Ws, "ws"),
        (StreamKind::Wss, "wss"),
    ] {
        if let Some(a) = agent.stream_addr(kind) {
            listening.push_str(&format!(" {name} {a}"));
        }
    }
    println!("{listening} ({} runtime)", agent.runtime());
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
    // Lines go out in batches: a busy server has thousands of events a second, and waking
    // this thread (and writing a line) for each costs the agent's thread a futex wake and a
    // write system call per event.
    let mut out = std::io::BufWriter::new(std::io::stdout());
    // One Ctrl-C listener for the whole loop (one made per wait would also miss a Ctrl-C
    // pressed while a batch is written).
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(ev) => {
                    let _ = write_event(&mut out, &ev);
                    while let Ok(ev) = events.try_recv() {
                        let _ = write_event(&mut out, &ev);
                    }
                    let _ = out.flush();
                    tokio::time::sleep(EVENT_BATCH).await;
                }
                Err(_) => break,
            },
            _ = &mut ctrl_c => break,
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

#[cfg(test)]
mod tests {
    use super::*;
    use parrot_proto::Message;

    fn msg(s: &str) -> Message {
        Message::parse(s.replace('\n', "\r\n").into_bytes()).expect("test message parses")
    }

    fn routing() -> Routing {
        Routing {
            proxy_to: None,
            hosts: vec!["127.0.0.1".into(), "localhost".into(), "parrot".into()],
            any_ip: false,
            port: Some(5060),
        }
    }

    fn invite(ruri: &str) -> Message {
        msg(&format!("INVITE {ruri} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK1\nFrom: <sip:bob@127.0.0.1>;tag=1\nTo: <{ruri}>\nCall-ID: c1\nCSeq: 1 INVITE\nContent-Length: 0\n\n"))
    }

    fn registered(contacts: &[&str]) -> Registrar {
        let mut r = Registrar::new(RegistrarConfig::default());
        let contact = contacts.join(", ");
        let reg = msg(&format!("REGISTER sip:127.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKr\nFrom: <sip:alice@127.0.0.1:5060>;tag=2\nTo: <sip:alice@127.0.0.1:5060>\nCall-ID: r1\nCSeq: 1 REGISTER\nContact: {contact}\nExpires: 300\nContent-Length: 0\n\n"));
        let reply = r.handle_register(Instant::now(), &reg);
        assert_eq!(reply.into_reply().status, 200);
        r
    }

    #[test]
    fn a_registered_user_is_proxied_to_its_contacts() {
        let r = registered(&["<sip:alice@127.0.0.1:5090>", "<sip:alice@127.0.0.1:5091>"]);
        let now = Instant::now();
        for ruri in [
            "sip:alice@127.0.0.1:5060",
            "sip:alice@127.0.0.1",
            "sip:alice@localhost",
        ] {
            match route_to_user(&invite(ruri), &r, &routing(), now) {
                Some(Action::ProxyTo(t)) => {
                    assert!(t.parallel, "equal q: parallel fork");
                    assert_eq!(t.targets.len(), 2, "{ruri}: {t:?}");
                }
                other => panic!("{ruri}: {other:?}"),
            }
        }
    }

    #[test]
    fn different_q_values_fork_in_sequence_best_first() {
        let r = registered(&[
            "<sip:alice@127.0.0.1:5090>;q=0.5",
            "<sip:alice@127.0.0.1:5091>;q=0.9",
        ]);
        match route_to_user(
            &invite("sip:alice@127.0.0.1:5060"),
            &r,
            &routing(),
            Instant::now(),
        ) {
            Some(Action::ProxyTo(t)) => {
                assert!(!t.parallel);
                assert_eq!(t.targets[0], "sip:alice@127.0.0.1:5091");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_users_of_ours_get_404_and_the_server_users_the_answering_machine() {
        let r = registered(&["<sip:alice@127.0.0.1:5090>"]);
        let now = Instant::now();
        match route_to_user(&invite("sip:carol@127.0.0.1:5060"), &r, &routing(), now) {
            Some(Action::Respond(reply)) => {
                assert_eq!(reply.status, 404);
                assert_eq!(reply.reason.as_deref(), Some("Not Found"));
            }
            other => panic!("{other:?}"),
        }
        for ruri in [
            "sip:service@127.0.0.1:5060",
            "sip:parrot@127.0.0.1",
            "sip:127.0.0.1:5060",
            "sip:carol@example.com",
        ] {
            assert!(
                route_to_user(&invite(ruri), &r, &routing(), now).is_none(),
                "{ruri}"
            );
        }
    }
}
