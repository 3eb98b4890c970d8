//! Digest authentication (RFC 3261 §22, RFC 7616) and the registration client (§10.2):
//! 401 then success for INVITE and REGISTER, credentials reused for the realm, refresh over an
//! hour of virtual time, 423 with Min-Expires, unregister with Expires 0.

mod common;
use common::*;
use parrot_proto::auth::digest::{response, DigestAlgorithm};
use parrot_proto::auth::DigestCredentials;
use parrot_proto::sim::{Network, NodeId};
use parrot_proto::{
    Action, Body, Endpoint, Event, HeaderName, InviteRequest, Message, RegisterRequest, Reply,
    Request, Transport, UasHandler,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const REALM: &str = "parrot.test";

#[derive(Default)]
struct Stats {
    challenges: usize,
    accepted: usize,
    registers: usize,
    unregisters: usize,
}

struct Registrar {
    alg: DigestAlgorithm,
    min_expires: u32,
    stats: Arc<Mutex<Stats>>,
}

impl Registrar {
    fn verify(&self, m: &Message) -> bool {
        let Some(Ok(c)) = m.authorization().next() else {
            return false;
        };
        let g = |n: &str| c.params.get(n).map(|v| v.into_owned()).unwrap_or_default();
        let nc = u32::from_str_radix(&g("nc"), 16).unwrap_or(0);
        let cnonce = g("cnonce");
        let expect = response(
            self.alg,
            &g("username"),
            REALM,
            "secret",
            m.method_str().unwrap_or(""),
            &g("uri"),
            "nonce-1",
            Some((nc, &cnonce)),
        );
        g("response") == expect && g("username") == "alice"
    }

    fn answer(&self, req: &Request<'_>, ok: Reply) -> Action {
        if !self.verify(req.message) {
            self.stats.lock().unwrap().challenges += 1;
            let ch = format!(
                "Digest realm=\"{REALM}\", nonce=\"nonce-1\", qop=\"auth\", algorithm={}",
                self.alg.as_str()
            );
            return Action::Respond(Reply::new(401).header("WWW-Authenticate", ch));
        }
        self.stats.lock().unwrap().accepted += 1;
        Action::Respond(ok)
    }
}

impl UasHandler for Registrar {
    fn handle_register(&mut self, req: &Request<'_>) -> Action {
        let expires = req.message.expires().ok().flatten().unwrap_or(3600);
        if expires == 0 {
            self.stats.lock().unwrap().unregisters += 1;
            return self.answer(req, Reply::new(200));
        }
        if expires < self.min_expires {
            return Action::Respond(
                Reply::new(423).header("Min-Expires", self.min_expires.to_string()),
            );
        }
        self.stats.lock().unwrap().registers += 1;
        let contact = req
            .message
            .header(HeaderName::Contact)
            .unwrap_or("<sip:x@y>")
            .to_owned();
        self.answer(
            req,
            Reply::new(200).header("Contact", format!("{contact};expires={expires}")),
        )
    }

    fn handle_invite(&mut self, req: &Request<'_>) -> Action {
        self.answer(req, Reply::new(200).body(Body::sdp(SDP_ANSWER)))
    }
}

fn setup(
    seed: u64,
    loss: f64,
    alg: DigestAlgorithm,
    min_expires: u32,
) -> (Network, NodeId, Arc<Mutex<Stats>>) {
    let mut net = Network::new(Instant::now(), seed, lossy(loss));
    let a = net.add(addr(1), Endpoint::new(config(1), seed * 2 + 1));
    let stats = Arc::new(Mutex::new(Stats::default()));
    let st = stats.clone();
    let mut r = Endpoint::new(config(2), seed * 2 + 2);
    r.set_uas_handler_factory(move || {
        Box::new(Registrar {
            alg,
            min_expires,
            stats: st.clone(),
        }) as Box<dyn UasHandler>
    });
    net.add(addr(2), r);
    (net, a, stats)
}

fn creds() -> Option<DigestCredentials> {
    Some(DigestCredentials::new("alice", "secret"))
}

#[test]
fn invite_challenged_with_401_is_retried_once_with_md5_credentials() {
    let (mut net, a, stats) = setup(1, 0.0, DigestAlgorithm::Md5, 0);
    let now = net.now();
    let mut req = InviteRequest::new(
        "sip:alice@10.0.0.1",
        "sip:bob@10.0.0.2",
        addr(2),
        Transport::Udp,
    );
    req.credentials = creds();
    let d = net.endpoint(a).invite(now, req).unwrap();
    net.run_until(now + Duration::from_secs(2));
    assert_eq!(established(net.events(a)), 1, "{:?}", net.events(a));
    assert_eq!(stats.lock().unwrap().challenges, 1);
    let now = net.now();
    net.endpoint(a).bye(now, d).unwrap();
    drain_and_check(&mut net, 1);
}

#[test]
fn wrong_password_fails_after_one_retry() {
    let (mut net, a, stats) = setup(1, 0.0, DigestAlgorithm::Md5, 0);
    let now = net.now();
    let mut req = InviteRequest::new(
        "sip:alice@10.0.0.1",
        "sip:bob@10.0.0.2",
        addr(2),
        Transport::Udp,
    );
    req.credentials = Some(DigestCredentials::new("alice", "wrong"));
    net.endpoint(a).invite(now, req).unwrap();
    drain_and_check(&mut net, 1);
    assert_eq!(stats.lock().unwrap().challenges, 2);
    assert!(net.events(a).iter().any(|e| matches!(
        e,
        Event::CallEnded {
            reason: parrot_proto::EndReason::Rejected(401),
            ..
        }
    )));
}

#[test]
fn challenge_then_success_converges_for_1000_seeds_at_20_percent_loss() {
    for seed in 0..seeds() {
        let (mut net, a, _) = setup(seed, 0.2, DigestAlgorithm::Sha256, 0);
        let now = net.now();
        let mut req = InviteRequest::new(
            "sip:alice@10.0.0.1",
            "sip:bob@10.0.0.2",
            addr(2),
            Transport::Udp,
        );
        req.credentials = creds();
        let d = net.endpoint(a).invite(now, req).unwrap();
        net.run_until(now + Duration::from_secs(40));
        let now = net.now();
        let _ = net.endpoint(a).bye(now, d);
        drain_and_check(&mut net, seed);
        assert_eq!(ended(net.events(a)), 1, "seed {seed}");
    }
}

fn registration(
    seed: u64,
    loss: f64,
    alg: DigestAlgorithm,
    expires: u32,
    min: u32,
) -> (Vec<Event>, Arc<Mutex<Stats>>) {
    let (mut net, a, stats) = setup(seed, loss, alg, min);
    let start = net.now();
    let id = net
        .endpoint(a)
        .register(
            start,
            RegisterRequest {
                registrar_uri: "sip:10.0.0.2".into(),
                aor: "sip:alice@parrot.test".into(),
                dst: addr(2),
                transport: Transport::Udp,
                expires,
                credentials: creds(),
            },
        )
        .unwrap();
    net.run_until(start + Duration::from_secs(3600));
    let now = net.now();
    let _ = net.endpoint(a).unregister(now, id);
    drain_and_check(&mut net, seed);
    (net.take_events(a), stats)
}

#[test]
fn registration_refreshes_over_an_hour_and_unregisters() {
    let (ev, stats) = registration(1, 0.0, DigestAlgorithm::Md5, 600, 0);
    let ok = count(&ev, |e| {
        matches!(e, Event::RegistrationSucceeded { expires: 600, .. })
    });
    assert!(ok >= 6, "refreshed {ok} times");
    assert_eq!(count(&ev, |e| matches!(e, Event::Unregistered { .. })), 1);
    assert_eq!(
        stats.lock().unwrap().challenges,
        1,
        "credentials are reused for the realm"
    );
    assert_eq!(stats.lock().unwrap().unregisters, 1);
}

#[test]
fn interval_too_brief_is_retried_with_min_expires() {
    let (ev, _) = registration(1, 0.0, DigestAlgorithm::Sha256, 60, 1200);
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::RegistrationSucceeded { expires: 1200, .. })),
        "{ev:?}"
    );
}

#[test]
fn registration_refresh_over_an_hour_converges_for_1000_seeds_at_20_percent_loss() {
    for seed in 0..seeds() {
        let (ev, _) = registration(seed, 0.2, DigestAlgorithm::Md5, 900, 0);
        let ok = count(&ev, |e| matches!(e, Event::RegistrationSucceeded { .. }));
        let failed = count(&ev, |e| matches!(e, Event::RegistrationFailed { .. }));
        assert!(ok >= 1 || failed == 1, "seed {seed}: {ev:?}");
    }
}
