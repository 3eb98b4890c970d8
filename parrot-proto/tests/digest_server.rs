//! Server-side digest authentication (RFC 7616 §3.3-§3.5, RFC 3261 §22, RFC 8760): challenges,
//! verification against real client responses, stale nonces, replay, tampering, and the same
//! answer for an unknown user as for a wrong password.

use parrot_proto::auth::digest::response;
use parrot_proto::auth::{
    AuthRole, DigestAlgorithm, DigestCredentials, DigestServer, DigestSession, InMemoryCredentials,
    Verdict,
};
use parrot_proto::header::Challenge;
use parrot_proto::Message;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

const SECRET: &[u8] = b"an injected 32-byte server secret";
const URI: &str = "sip:example.com";

fn users() -> InMemoryCredentials {
    InMemoryCredentials::new().with_user("alice", "wonderland")
}

fn register(auth_header: Option<(&str, &str)>) -> Message {
    let mut m = format!(
        "REGISTER {URI} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:alice@example.com>\r\n\
         From: <sip:alice@example.com>;tag=1928301774\r\n\
         Call-ID: a84b4c76e66710@192.0.2.1\r\n\
         CSeq: 2 REGISTER\r\n\
         Contact: <sip:alice@192.0.2.1:5060>\r\n"
    );
    if let Some((name, value)) = auth_header {
        m.push_str(&format!("{name}: {value}\r\n"));
    }
    m.push_str("Content-Length: 0\r\n\r\n");
    Message::parse(m.into_bytes()).expect("test message parses")
}

/// The client of this crate answering the first challenge value.
fn answer(value: &str, user: &str, password: &str, proxy: bool) -> (DigestSession, String) {
    let ch = Challenge::parse(value).expect("challenge parses");
    let mut s = DigestSession::from_challenge(&ch, proxy).expect("a digest challenge");
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let auth = s.authorization(
        &DigestCredentials::new(user, password),
        "REGISTER",
        URI,
        &mut rng,
    );
    (s, auth)
}

fn challenge_of(v: &Verdict) -> &parrot_proto::auth::DigestChallenge {
    match v {
        Verdict::Challenge(c) => c,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

#[test]
fn challenge_offers_sha256_then_md5_with_qop_auth() {
    let t0 = Instant::now();
    let server = DigestServer::new("example.com", SECRET, t0);
    let c = server.challenge(t0, false);
    assert_eq!(c.status, 401);
    assert_eq!(c.header, "WWW-Authenticate");
    assert_eq!(c.values.len(), 2);
    let first = Challenge::parse(&c.values[0]).unwrap();
    let second = Challenge::parse(&c.values[1]).unwrap();
    assert!(first.is_digest());
    assert_eq!(first.algorithm().as_deref(), Some("SHA-256"));
    assert_eq!(second.algorithm().as_deref(), Some("MD5"));
    assert_eq!(first.realm().as_deref(), Some("example.com"));
    assert!(first.offers_qop("auth"));
    assert!(!first.stale());
    assert_eq!(first.nonce(), second.nonce());
    let reply = c.into_reply();
    assert_eq!(reply.status, 401);
    assert_eq!(reply.headers.len(), 2);
    assert_eq!(reply.headers[0].0, "WWW-Authenticate");
}

#[test]
fn proxy_role_challenges_with_407_and_reads_proxy_authorization() {
    let t0 = Instant::now();
    let mut server = DigestServer::new("example.com", SECRET, t0).with_role(AuthRole::Proxy);
    let c = server.challenge(t0, false);
    assert_eq!((c.status, c.header), (407, "Proxy-Authenticate"));
    let (_, auth) = answer(&c.values[0], "alice", "wonderland", true);
    // The answer in Authorization is not what a proxy reads.
    let wrong_header = register(Some(("Authorization", &auth)));
    assert!(matches!(
        server.verify(t0, &wrong_header, &users()),
        Verdict::Challenge(_)
    ));
    let req = register(Some(("Proxy-Authorization", &auth)));
    assert_eq!(
        server.verify(t0, &req, &users()),
        Verdict::Authenticated {
            username: "alice".into()
        }
    );
}

#[test]
fn client_answer_to_sha256_challenge_is_accepted() {
    let t0 = Instant::now();
    let mut server = DigestServer::new("example.com", SECRET, t0);
    let c = server.challenge(t0, false);
    let (s, auth) = answer(&c.values[0], "alice", "wonderland", false);
    assert_eq!(s.algorithm(), DigestAlgorithm::Sha256);
    let req = register(Some(("Authorization", &auth)));
    assert_eq!(
        server.verify(t0 + Duration::from_secs(5), &req, &users()),
        Verdict::Authenticated {
            username: "alice".into()
        }
    );
}

#[test]
fn client_answer_to_md5_challenge_is_accepted() {
    let t0 = Instant::now();
    let mut server = DigestServer::new("example.com", SECRET, t0);
    let c = server.challenge(t0, false);
    let (s, auth) = answer(&c.values[1], "alice", "wonderland", false);
    assert_eq!(s.algorithm(), DigestAlgorithm::Md5);
    let req = register(Some(("Authorization", &auth)));
    assert!(matches!(
        server.verify(t0, &req, &users()),
        Verdict::Authenticated { .. }
    ));
}

#[test]
fn md5_only_server_refuses_sha256_credentials() {
    let t0 = Instant::now();
    let mut both = DigestServer::new("example.com", SECRET, t0);
    let (_, auth) = answer(
        &both.challenge(t0, false).values[0],
        "alice",
        "wonderland",
        false,
    );
    let mut md5_only =
        DigestServer::new("example.com", SECRET, t0).with_algorithms(&[DigestAlgorithm::Md5]);
    let req = register(Some(("Authorization", &auth)));
    let v = md5_only.verify(t0, &req, &users());
    let c = challenge_of(&v);
    assert_eq!(c.values.len(), 1);
    assert!(c.values[0].contains("algorithm=MD5"));
    // The same credentials are fine where SHA-256 is offered.
    assert!(matches!(
        both.verify(t0, &req, &users()),
        Verdict::Authenticated { .. }
    ));
}

#[test]
fn rfc7616_example_values_give_the_example_responses() {
    // RFC 7616 §3.9.1: the responses of the example, recomputed with the server's inputs.
    let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    let sha = response(
        DigestAlgorithm::Sha256,
        "Mufasa",
        "http-auth@example.org",
        "Circle of Life",
        "GET",
        "/dir/index.html",
        nonce,
        Some((1, cnonce)),
    );
    assert_eq!(
        sha,
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
    let md5 = response(
        DigestAlgorithm::Md5,
        "Mufasa",
        "http-auth@example.org",
        "Circle of Life",
        "GET",
        "/dir/index.html",
        nonce,
        Some((1, cnonce)),
    );
    assert_eq!(md5, "8ca523f5e9506fed4657c9700eebdbec");
}

#[test]
fn rfc7616_example_credentials_verify_with_a_server_nonce() {
    // The example's user, password, realm and cnonce, on a nonce of our server: the same
    // computation the RFC shows, checked end to end through a parsed Authorization.
    let t0 = Instant::now();
    let realm = "http-auth@example.org";
    let mut server = DigestServer::new(realm, SECRET, t0);
    let creds = InMemoryCredentials::new().with_user("Mufasa", "Circle of Life");
    let nonce = server.nonce(t0);
    let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    for alg in [DigestAlgorithm::Sha256, DigestAlgorithm::Md5] {
        let nc = if alg == DigestAlgorithm::Sha256 { 1 } else { 2 };
        let r = response(
            alg,
            "Mufasa",
            realm,
            "Circle of Life",
            "REGISTER",
            URI,
            &nonce,
            Some((nc, cnonce)),
        );
        let value = format!(
            "Digest username=\"Mufasa\", realm=\"{realm}\", uri=\"{URI}\", algorithm={}, \
             nonce=\"{nonce}\", nc={nc:08x}, cnonce=\"{cnonce}\", qop=auth, response=\"{r}\"",
            alg.as_str()
        );
        let req = register(Some(("Authorization", &value)));
        assert_eq!(
            server.verify(t0, &req, &creds),
            Verdict::Authenticated {
                username: "Mufasa".into()
            },
            "{alg:?}"
        );
    }
}

#[test]
fn request_without_credentials_is_challenged() {
    let t0 = Instant::now();
    let mut server = DigestServer::new("example.com", SECRET, t0);
    let v = server.verify(t0, &register(None), &users());
    let c = challenge_of(&v);
    assert!(!c.stale);
    assert_eq!(v.reply().map(|r| r.status), Some(401));
}

#[test]
fn unknown_scheme_credentials_are_challenged() {
    // RFC 4475 §3.3.7 regaut01: an unknown scheme is ignored and a Digest challenge sent.
    let t0 = Instant::now();
    let mut server = DigestServer::new("example.com", SECRET, t0);
    let req = register(Some((
        "Authorization",
        "NoOneKnowsThisScheme opaque-data=here",
    )));
    assert!(matches!(
        server.verify(t0, &req, &users()),
        Verdict::Challenge(_)
    ));
}

#[test]
fn wrong_password_and_unknown_user_get_the_same_challenge() {
    let t0 = Instant::now();
    let mut server = DigestServer::new("example.com", SECRET, t0);
    let c = server.challenge(t0, false);
    let (_, wrong_pw) = answer(&c.values[0], "alice", "not-the-password", false);
    let (_, unknown) = answer(&c.values[0], "mallory", "wonderland", false);
    let t1 = t0 + Duration::from_secs(3);
    let a = server.verify(t1, &register(Some(("Authorization", &wrong_pw))), &users());
    let b = server.verify(t1, &register(Some(("Authorization", &unknown))), &users());
    // Byte for byte, but for the nonce, which is fresh in every challenge: same status, same
    // headers, same values, no stale.
    let masked = |v: &Verdict| -> (u16, Vec<String>, bool) {
        let c = challenge_of(v);
        let values = c
            .values
            .iter()
            .map(|x| {
                let start = x.find("nonce=\"").unwrap() + 7;
                let end = start + x[start..].find('"').unwrap();
                format!("{}{}", &x[..start], &x[end..])
            })
            .collect();
        (c.status, values, c.stale)
    };
    assert_eq!(masked(&a), masked(&b));
    assert_eq!(a.reply().map(|r| r.status), b.reply().map(|r| r.status));
    assert!(!challenge_of(&a).stale);
    // And the shape is that of a first challenge.
    assert_eq!(
        masked(&a),
        masked(&Verdict::Challenge(server.challenge(t1, false)))
    );
}

#[test]
fn every_challenge_has_its_own_nonce() {
    // Two clients challenged in the same second must not share a nonce (and its nc).
    let t0 = Instant::now();
    let server = DigestServer::new("example.com", SECRET, t0);
    assert_ne!(server.nonce(t0), server.nonce(t0));
}

#[test]
fn expired_nonce_with_right_password_is_stale() {
    let t0 = Instant::now();
    let mut server =
        DigestServer::new("example.com", SECRET, t0).with_nonce_lifetime(Duration::from_secs(30));
    let c = server.challenge(t0, false);
    let (_, auth) = answer(&c.values[0], "alice", "wonderland", false);
    let req = register(Some(("Authorization", &auth)));
    let late = t0 + Duration::from_secs(31);
    let v = server.verify(late, &req, &users());
    let c2 = challenge_of(&v);
    assert!(c2.stale);
    let parsed = Challenge::parse(&c2.values[0]).unwrap();
    assert!(parsed.stale());
    // The client answers the stale challenge without a new password and gets in.
    let (_, auth2) = answer(&c2.values[0], "alice", "wonderland", false);
    let req2 = register(Some(("Authorization", &auth2)));
    assert!(matches!(
        server.verify(late, &req2, &users()),
        Verdict::Authenticated { .. }
    ));
}

#[test]
fn expired_nonce_with_wrong_password_is_not_stale() {
    let t0 = Instant::now();
    let mut server =
        DigestServer::new("example.com", SECRET, t0).with_nonce_lifetime(Duration::from_secs(30));
    let c = server.challenge(t0, false);
    let (_, auth) = answer(&c.values[0], "alice", "guess", false);
    let v = server.verify(
        t0 + Duration::from_secs(60),
        &register(Some(("Authorization", &auth))),
        &users(),
    );
    assert!(!challenge_of(&v).stale);
}

#[test]
fn replayed_nonce_count_is_forbidden() {
    let t0 = Instant::now();
    let mut server = DigestServer::new("example.com", SECRET, t0);
    let c = server.challenge(t0, false);
    let (mut session, auth1) = answer(&c.values[0], "alice", "wonderland", false);
    let req1 = register(Some(("Authorization", &auth1)));
    assert!(matches!(
        server.verify(t0, &req1, &users()),
        Verdict::Authenticated { .. }
    ));
    // The same request again: same nc.
    assert_eq!(server.verify(t0, &req1, &users()), Verdict::Forbidden);
    assert_eq!(
        server.verify(t0, &req1, &users()).reply().map(|r| r.status),
        Some(403)
    );
    // The client's next request (nc=2) on the same nonce is fine.
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let auth2 = session.authorization(
        &DigestCredentials::new("alice", "wonderland"),
        "REGISTER",
        URI,
        &mut rng,
    );
    assert!(auth2.contains("nc=00000002"));
    let req2 = register(Some(("Authorization", &auth2)));
    assert!(matches!(
        server.verify(t0, &req2, &users()),
        Verdict::Authenticated { .. }
    ));
    // And then the first one is still a replay.
    assert_eq!(server.verify(t0, &req1, &users()), Verdict::Forbidden);
}

#[test]
fn evicted_nonce_cannot_be_replayed() {
    let t0 = Instant::now();
    let mut server = DigestServer::new("example.com", SECRET, t0);
    server.set_replay_capacity(1);
    let c1 = server.challenge(t0, false);
    let (_, a1) = answer(&c1.values[0], "alice", "wonderland", false);
    let r1 = register(Some(("Authorization", &a1)));
    assert!(matches!(
        server.verify(t0, &r1, &users()),
        Verdict::Authenticated { .. }
    ));
    let t1 = t0 + Duration::from_secs(2);
    let c2 = server.challenge(t1, false);
    let (_, a2) = answer(&c2.values[0], "alice", "wonderland", false);
    assert!(matches!(
        server.verify(t1, &register(Some(("Authorization", &a2))), &users()),
        Verdict::Authenticated { .. }
    ));
    assert_eq!(server.tracked_nonces(), 1);
    // The first nonce's count was evicted: a replay gets stale, not a pass.
    let v = server.verify(t1, &r1, &users());
    assert!(challenge_of(&v).stale);
}

#[test]
fn tampered_nonce_is_rejected() {
    let t0 = Instant::now();
    let mut server = DigestServer::new("example.com", SECRET, t0);
    let c = server.challenge(t0, false);
    let ch = Challenge::parse(&c.values[0]).unwrap();
    let nonce = ch.nonce().unwrap().into_owned();
    // Flip one character of the MAC, and separately push the timestamp forward.
    let mut bytes = nonce.clone().into_bytes();
    let i = bytes.len() - 5;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(bytes).unwrap();
    let mut ts_bumped = nonce.clone().into_bytes();
    ts_bumped[9] = if ts_bumped[9] == b'A' { b'B' } else { b'A' };
    let ts_bumped = String::from_utf8(ts_bumped).unwrap();
    let foreign = DigestServer::new("example.com", b"some other secret".to_vec(), t0).nonce(t0);
    for bad in [
        flipped,
        ts_bumped,
        foreign,
        "bm90IG91cnM=".to_owned(),
        "***".into(),
    ] {
        let value = c.values[0].replace(&nonce, &bad);
        let (_, auth) = answer(&value, "alice", "wonderland", false);
        let v = server.verify(t0, &register(Some(("Authorization", &auth))), &users());
        let c2 = challenge_of(&v);
        assert!(!c2.stale, "nonce {bad}");
    }
}

#[test]
fn credentials_for_another_request_uri_are_a_bad_request() {
    let t0 = Instant::now();
    let mut server = DigestServer::new("example.com", SECRET, t0);
    let c = server.challenge(t0, false);
    let ch = Challenge::parse(&c.values[0]).unwrap();
    let mut s = DigestSession::from_challenge(&ch, false).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let auth = s.authorization(
        &DigestCredentials::new("alice", "wonderland"),
        "REGISTER",
        "sip:elsewhere.example.net",
        &mut rng,
    );
    let v = server.verify(t0, &register(Some(("Authorization", &auth))), &users());
    assert_eq!(v, Verdict::BadRequest);
    assert_eq!(v.reply().map(|r| r.status), Some(400));
}

#[test]
fn credentials_for_another_realm_are_ignored() {
    let t0 = Instant::now();
    let mut other = DigestServer::new("other.example.net", SECRET, t0);
    let (_, auth) = answer(
        &other.challenge(t0, false).values[0],
        "alice",
        "wonderland",
        false,
    );
    let mut server = DigestServer::new("example.com", SECRET, t0);
    let req = register(Some(("Authorization", &auth)));
    assert!(matches!(
        server.verify(t0, &req, &users()),
        Verdict::Challenge(_)
    ));
    assert!(matches!(
        other.verify(t0, &req, &users()),
        Verdict::Authenticated { .. }
    ));
}

#[test]
fn missing_response_is_a_bad_request_and_missing_qop_is_challenged() {
    let t0 = Instant::now();
    let mut server = DigestServer::new("example.com", SECRET, t0);
    let nonce = server.nonce(t0);
    let no_response = format!(
        "Digest username=\"alice\", realm=\"example.com\", nonce=\"{nonce}\", uri=\"{URI}\", \
         qop=auth, nc=00000001, cnonce=\"abc\""
    );
    assert_eq!(
        server.verify(
            t0,
            &register(Some(("Authorization", &no_response))),
            &users()
        ),
        Verdict::BadRequest
    );
    let r = response(
        DigestAlgorithm::Md5,
        "alice",
        "example.com",
        "wonderland",
        "REGISTER",
        URI,
        &nonce,
        None,
    );
    let rfc2069 = format!(
        "Digest username=\"alice\", realm=\"example.com\", nonce=\"{nonce}\", uri=\"{URI}\", \
         response=\"{r}\""
    );
    assert!(matches!(
        server.verify(t0, &register(Some(("Authorization", &rfc2069))), &users()),
        Verdict::Challenge(_)
    ));
}

#[test]
fn users_file_is_user_colon_password_per_line() {
    let text = "# parrot users\r\nalice:wonderland\r\n\n  bob : s3cr:et  \ncarol:\n";
    let c = InMemoryCredentials::from_file_text(text).unwrap();
    assert_eq!(c.len(), 3);
    use parrot_proto::auth::CredentialStore;
    let ha1 = c.ha1("r", "bob", DigestAlgorithm::Md5).unwrap();
    assert_eq!(ha1, DigestAlgorithm::Md5.hex("bob:r:s3cr:et"));
    assert!(c.ha1("r", "carol", DigestAlgorithm::Md5).is_some());
    assert!(c.ha1("r", "dave", DigestAlgorithm::Md5).is_none());
    let err = InMemoryCredentials::from_file_text("alice:x\nno colon here\n").unwrap_err();
    assert_eq!(err.line, 2);
    assert_eq!(
        InMemoryCredentials::from_file_text(":nouser")
            .unwrap_err()
            .line,
        1
    );
    // Debug never shows a password.
    assert!(!format!("{c:?}").contains("wonderland"));
}

#[test]
fn verify_then_register_is_a_uas_handler_answer() {
    // The shape of a UasHandler::handle_register: authenticate, check that the user owns
    // the AOR (the application's policy, §10.3 step 4), then let the registrar answer.
    use parrot_proto::{Action, Registrar, RegistrarConfig};
    let t0 = Instant::now();
    let mut server = DigestServer::new("example.com", SECRET, t0);
    let mut registrar = Registrar::new(RegistrarConfig::default());
    let mut handle = |req: &Message, now: Instant| -> Action {
        match server.verify(now, req, &users()) {
            Verdict::Authenticated { username }
                if req.to_header().is_ok_and(|to| {
                    to.uri().as_sip().and_then(|u| u.user()) == Some(username.as_str())
                }) =>
            {
                Action::Respond(registrar.handle_register(now, req).into_reply())
            }
            Verdict::Authenticated { .. } => Action::respond(403),
            other => Action::Respond(other.reply().expect("not authenticated")),
        }
    };
    let first = handle(&register(None), t0);
    let Action::Respond(challenge) = first else {
        panic!("a response")
    };
    assert_eq!(challenge.status, 401);
    let (_, auth) = answer(&challenge.headers[0].1, "alice", "wonderland", false);
    let Action::Respond(ok) = handle(&register(Some(("Authorization", &auth))), t0) else {
        panic!("a response")
    };
    assert_eq!(ok.status, 200);
    assert_eq!(ok.headers[0].0, "Contact");
}

proptest::proptest! {
    #[test]
    fn arbitrary_authorization_never_panics(value in "[ -~]{0,200}", nonce_like in "[A-Za-z0-9+/=]{0,80}") {
        let t0 = Instant::now();
        let mut server = DigestServer::new("example.com", SECRET, t0);
        for v in [
            value.clone(),
            format!("Digest {value}"),
            format!(
                "Digest username=\"alice\", realm=\"example.com\", nonce=\"{nonce_like}\", \
                 uri=\"{URI}\", qop=auth, nc=00000001, cnonce=\"x\", response=\"{value}\""
            ),
        ] {
            let m = format!(
                "REGISTER {URI} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
                 To: <sip:alice@example.com>\r\nFrom: <sip:alice@example.com>;tag=1\r\n\
                 Call-ID: x\r\nCSeq: 1 REGISTER\r\nAuthorization: {v}\r\n\
                 Content-Length: 0\r\n\r\n"
            );
            if let Ok(msg) = Message::parse(m.into_bytes()) {
                let verdict = server.verify(t0, &msg, &users());
                let authenticated = matches!(verdict, Verdict::Authenticated { .. });
                proptest::prop_assert!(!authenticated);
            }
        }
    }
}
