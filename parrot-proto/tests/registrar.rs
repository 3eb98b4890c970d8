//! The registrar (RFC 3261 §10.3): bindings added, refreshed and removed, `q` order, the `*`
//! wildcard, 423 with Min-Expires, expiry on a virtual clock, Call-ID/CSeq ordering, and the
//! REGISTER messages of the RFC 4475 torture tests.

use parrot_proto::{
    Action, InMemoryLocationStore, LocationStore, Message, Registrar, RegistrarConfig, Reply,
};
use std::time::{Duration, Instant};

const AOR: &str = "sip:alice@example.com";

fn register(call_id: &str, cseq: u32, expires: Option<u32>, contacts: &[&str]) -> Message {
    let mut m = format!(
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{cseq}x\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:alice@example.com>\r\n\
         From: <sip:alice@example.com>;tag=456248\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n"
    );
    for c in contacts {
        m.push_str(&format!("Contact: {c}\r\n"));
    }
    if let Some(e) = expires {
        m.push_str(&format!("Expires: {e}\r\n"));
    }
    m.push_str("Content-Length: 0\r\n\r\n");
    Message::parse(m.into_bytes()).expect("test message parses")
}

fn torture(name: &str) -> Message {
    let path = format!(
        "{}/../conformance/rfc4475/{name}.dat",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).expect("RFC 4475 message present");
    Message::parse(bytes).expect("RFC 4475 message parses")
}

fn registrar() -> Registrar {
    Registrar::new(RegistrarConfig::default())
}

fn uris(r: &Registrar, now: Instant) -> Vec<String> {
    r.lookup(now, AOR).into_iter().map(|b| b.uri).collect()
}

#[test]
fn register_adds_a_binding_and_the_200_lists_it_with_expires() {
    let t0 = Instant::now();
    let mut r = registrar();
    let reply = r.handle_register(
        t0,
        &register("c1", 1, Some(1800), &["<sip:alice@192.0.2.1:5060>"]),
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.aor.as_deref(), Some(AOR));
    assert_eq!(
        reply.contacts().collect::<Vec<_>>(),
        ["<sip:alice@192.0.2.1:5060>;expires=1800"]
    );
    assert_eq!(uris(&r, t0), ["sip:alice@192.0.2.1:5060"]);
    // The same AOR written differently finds the binding (§10.3 step 5 canonical form).
    assert_eq!(r.lookup(t0, "sip:%61lice@EXAMPLE.COM;user=phone").len(), 1);
}

#[test]
fn reply_turns_into_a_handler_reply() {
    let t0 = Instant::now();
    let mut r = registrar();
    let reply = r.handle_register(t0, &register("c1", 1, None, &["<sip:alice@192.0.2.1>"]));
    let out: Reply = reply.clone().into();
    assert_eq!(out.status, 200);
    assert_eq!(out.headers, reply.headers);
    let action = Action::Respond(reply.into_reply());
    assert!(matches!(action, Action::Respond(Reply { status: 200, .. })));
}

#[test]
fn default_expires_applies_without_expires_and_contact_param_beats_header() {
    let t0 = Instant::now();
    let mut r = registrar();
    let reply = r.handle_register(
        t0,
        &register(
            "c1",
            1,
            Some(600),
            &["<sip:a@192.0.2.1>;expires=120", "<sip:a@192.0.2.2>"],
        ),
    );
    assert_eq!(reply.status, 200);
    let b = r.lookup(t0, AOR);
    let by_uri = |u: &str| b.iter().find(|x| x.uri == u).unwrap().remaining(t0);
    assert_eq!(by_uri("sip:a@192.0.2.1"), 120);
    assert_eq!(by_uri("sip:a@192.0.2.2"), 600);
    let reply = r.handle_register(t0, &register("c2", 1, None, &["<sip:a@192.0.2.3>"]));
    assert!(reply
        .contacts()
        .any(|c| c == "<sip:a@192.0.2.3>;expires=3600"));
}

#[test]
fn refresh_updates_expiry_and_params_of_the_same_contact() {
    let t0 = Instant::now();
    let mut r = registrar();
    r.handle_register(
        t0,
        &register("c1", 1, Some(300), &["<sip:a@192.0.2.1>;q=0.5"]),
    );
    let t1 = t0 + Duration::from_secs(200);
    let reply = r.handle_register(
        t1,
        // The same contact, a new q and lifetime.
        &register("c1", 2, Some(900), &["<sip:a@192.0.2.1>;q=0.9"]),
    );
    assert_eq!(reply.status, 200);
    let b = r.lookup(t1, AOR);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].q, Some(900));
    assert_eq!(b[0].remaining(t1), 900);
    assert_eq!(b[0].cseq, 2);
    assert_eq!(
        reply.contacts().collect::<Vec<_>>(),
        ["<sip:a@192.0.2.1>;q=0.9;expires=900"]
    );
}

#[test]
fn expires_zero_removes_one_binding() {
    let t0 = Instant::now();
    let mut r = registrar();
    r.handle_register(
        t0,
        &register("c1", 1, None, &["<sip:a@192.0.2.1>", "<sip:a@192.0.2.2>"]),
    );
    let reply = r.handle_register(
        t0,
        &register("c1", 2, None, &["<sip:a@192.0.2.1>;expires=0"]),
    );
    assert_eq!(reply.status, 200);
    assert_eq!(uris(&r, t0), ["sip:a@192.0.2.2"]);
    assert_eq!(reply.contacts().count(), 1);
}

#[test]
fn query_without_contact_lists_bindings_and_changes_nothing() {
    let t0 = Instant::now();
    let mut r = registrar();
    r.handle_register(t0, &register("c1", 1, None, &["<sip:a@192.0.2.1>"]));
    let reply = r.handle_register(t0 + Duration::from_secs(10), &register("c9", 1, None, &[]));
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.contacts().collect::<Vec<_>>(),
        ["<sip:a@192.0.2.1>;expires=3590"]
    );
}

#[test]
fn lookup_orders_by_q_highest_first() {
    let t0 = Instant::now();
    let mut r = registrar();
    let reply = r.handle_register(
        t0,
        &register(
            "c1",
            1,
            None,
            &[
                "<sip:low@192.0.2.1>;q=0.1",
                "<sip:none@192.0.2.2>",
                "<sip:mid@192.0.2.3>;q=0.5",
                "<sip:top@192.0.2.4>;q=1.0",
            ],
        ),
    );
    assert_eq!(reply.status, 200);
    let order: Vec<_> = r.lookup(t0, AOR).into_iter().map(|b| b.uri).collect();
    // An absent q ranks as 1.0; equal q: the later expiry, then the URI, decide.
    assert_eq!(
        order,
        [
            "sip:none@192.0.2.2",
            "sip:top@192.0.2.4",
            "sip:mid@192.0.2.3",
            "sip:low@192.0.2.1"
        ]
    );
    let first = reply.contacts().next().unwrap();
    assert_eq!(first, "<sip:none@192.0.2.2>;expires=3600");
    assert!(reply
        .contacts()
        .any(|c| c == "<sip:top@192.0.2.4>;q=1;expires=3600"));
}

#[test]
fn bad_q_is_a_bad_request() {
    let t0 = Instant::now();
    let mut r = registrar();
    let reply = r.handle_register(t0, &register("c1", 1, None, &["<sip:a@192.0.2.1>;q=1.5"]));
    assert_eq!(reply.status, 400);
    assert!(r.lookup(t0, AOR).is_empty());
}

#[test]
fn star_with_expires_zero_removes_all_bindings() {
    let t0 = Instant::now();
    let mut r = registrar();
    r.handle_register(
        t0,
        &register("c1", 1, None, &["<sip:a@192.0.2.1>", "<sip:a@192.0.2.2>"]),
    );
    r.handle_register(t0, &register("other", 7, None, &["<sip:a@192.0.2.3>"]));
    let reply = r.handle_register(t0, &register("c1", 2, Some(0), &["*"]));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.contacts().count(), 0);
    assert!(r.lookup(t0, AOR).is_empty());
}

#[test]
fn star_with_other_expires_or_other_contacts_is_a_bad_request() {
    let t0 = Instant::now();
    let mut r = registrar();
    r.handle_register(t0, &register("c1", 1, None, &["<sip:a@192.0.2.1>"]));
    for m in [
        register("c1", 2, Some(3600), &["*"]),
        register("c1", 3, None, &["*"]),
        register("c1", 4, Some(0), &["*", "<sip:a@192.0.2.9>"]),
    ] {
        assert_eq!(r.handle_register(t0, &m).status, 400);
    }
    assert_eq!(uris(&r, t0), ["sip:a@192.0.2.1"]);
}

#[test]
fn too_brief_interval_gets_423_with_min_expires() {
    let t0 = Instant::now();
    let mut r = Registrar::new(RegistrarConfig {
        min_expires: 120,
        ..RegistrarConfig::default()
    });
    let reply = r.handle_register(
        t0,
        &register(
            "c1",
            1,
            None,
            &["<sip:a@192.0.2.1>", "<sip:a@192.0.2.2>;expires=30"],
        ),
    );
    assert_eq!(reply.status, 423);
    assert_eq!(
        reply.headers,
        [("Min-Expires".to_owned(), "120".to_owned())]
    );
    // Atomic: the acceptable first Contact was not bound either.
    assert!(r.lookup(t0, AOR).is_empty());
    // Expires 0 is never too brief.
    let reply = r.handle_register(t0, &register("c1", 2, Some(0), &["<sip:a@192.0.2.1>"]));
    assert_eq!(reply.status, 200);
    let out = reply.into_reply();
    assert_eq!(out.status, 200);
}

#[test]
fn long_lifetime_is_shortened_to_the_maximum() {
    let t0 = Instant::now();
    let mut r = Registrar::new(RegistrarConfig {
        max_expires: 7200,
        ..RegistrarConfig::default()
    });
    let reply = r.handle_register(
        t0,
        &register("c1", 1, Some(4_294_967_295), &["<sip:a@192.0.2.1>"]),
    );
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.contacts().collect::<Vec<_>>(),
        ["<sip:a@192.0.2.1>;expires=7200"]
    );
}

#[test]
fn bindings_expire_on_the_virtual_clock_and_purge_frees_them() {
    let t0 = Instant::now();
    let mut r = registrar();
    r.handle_register(
        t0,
        &register(
            "c1",
            1,
            None,
            &[
                "<sip:a@192.0.2.1>;expires=60",
                "<sip:a@192.0.2.2>;expires=120",
            ],
        ),
    );
    assert_eq!(r.lookup(t0 + Duration::from_secs(59), AOR).len(), 2);
    let t60 = t0 + Duration::from_secs(60);
    assert_eq!(uris(&r, t60), ["sip:a@192.0.2.2"]);
    // A query at that time shows only the live one, with its remaining time.
    let reply = r.handle_register(t60, &register("q", 1, None, &[]));
    assert_eq!(
        reply.contacts().collect::<Vec<_>>(),
        ["<sip:a@192.0.2.2>;expires=60"]
    );
    assert_eq!(r.store().len(), 2);
    r.handle_timeout(t60);
    assert_eq!(r.store().len(), 1);
    r.handle_timeout(t0 + Duration::from_secs(120));
    assert!(r.store().is_empty());
    assert!(r.lookup(t0 + Duration::from_secs(120), AOR).is_empty());
}

#[test]
fn same_call_id_with_lower_or_equal_cseq_fails_and_changes_nothing() {
    let t0 = Instant::now();
    let mut r = registrar();
    r.handle_register(t0, &register("c1", 5, Some(600), &["<sip:a@192.0.2.1>"]));
    for cseq in [5, 4] {
        let reply = r.handle_register(t0, &register("c1", cseq, Some(0), &["<sip:a@192.0.2.1>"]));
        assert_eq!(reply.status, 500, "cseq {cseq}");
    }
    // Also for the wildcard.
    assert_eq!(
        r.handle_register(t0, &register("c1", 5, Some(0), &["*"]))
            .status,
        500
    );
    assert_eq!(uris(&r, t0), ["sip:a@192.0.2.1"]);
    // A higher CSeq goes through.
    let reply = r.handle_register(t0, &register("c1", 6, Some(0), &["<sip:a@192.0.2.1>"]));
    assert_eq!(reply.status, 200);
    assert!(r.lookup(t0, AOR).is_empty());
}

#[test]
fn different_call_id_updates_whatever_the_cseq() {
    let t0 = Instant::now();
    let mut r = registrar();
    r.handle_register(t0, &register("c1", 50, Some(600), &["<sip:a@192.0.2.1>"]));
    // A rebooted UA: new Call-ID, CSeq restarted.
    let reply = r.handle_register(t0, &register("c2", 1, Some(900), &["<sip:a@192.0.2.1>"]));
    assert_eq!(reply.status, 200);
    let b = r.lookup(t0, AOR);
    assert_eq!((b[0].call_id.as_str(), b[0].cseq), ("c2", 1));
    assert_eq!(b[0].remaining(t0), 900);
    // And a wildcard from yet another Call-ID removes it.
    assert_eq!(
        r.handle_register(t0, &register("c3", 1, Some(0), &["*"]))
            .status,
        200
    );
    assert!(r.lookup(t0, AOR).is_empty());
}

fn capped(max: usize) -> Registrar {
    Registrar::new(RegistrarConfig {
        max_bindings: max,
        ..RegistrarConfig::default()
    })
}

#[test]
fn default_cap_is_ten_bindings_per_aor() {
    assert_eq!(RegistrarConfig::default().max_bindings, 10);
    let t0 = Instant::now();
    let mut r = registrar();
    let ten: Vec<String> = (1..=10).map(|i| format!("<sip:a@192.0.2.{i}>")).collect();
    let ten: Vec<&str> = ten.iter().map(String::as_str).collect();
    assert_eq!(
        r.handle_register(t0, &register("c1", 1, None, &ten)).status,
        200
    );
    let reply = r.handle_register(t0, &register("c2", 1, None, &["<sip:a@192.0.2.11>"]));
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.into_reply().reason.as_deref(),
        Some("Too Many Bindings")
    );
    assert_eq!(r.lookup(t0, AOR).len(), 10);
}

#[test]
fn a_register_over_the_cap_is_refused_and_changes_nothing() {
    let t0 = Instant::now();
    let mut r = capped(2);
    r.handle_register(t0, &register("c1", 1, Some(300), &["<sip:a@192.0.2.1>"]));
    // One refresh (new lifetime) and two new contacts: 3 > 2, nothing applied, not even the
    // refresh (atomic, §10.3 step 7).
    let reply = r.handle_register(
        t0 + Duration::from_secs(10),
        &register(
            "c1",
            2,
            Some(900),
            &[
                "<sip:a@192.0.2.1>",
                "<sip:a@192.0.2.2>",
                "<sip:a@192.0.2.3>",
            ],
        ),
    );
    assert_eq!(reply.status, 403);
    assert_eq!(reply.aor.as_deref(), Some(AOR));
    let b = r.lookup(t0, AOR);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].cseq, 1);
    assert_eq!(b[0].remaining(t0), 300);
    // The same Contact twice in one request is one binding.
    let reply = r.handle_register(
        t0,
        &register(
            "c1",
            3,
            None,
            &["<sip:a@192.0.2.2>", "<sip:A@192.0.2.2>;q=0.5"],
        ),
    );
    assert_eq!(
        reply.status, 403,
        "sip:a and sip:A differ (user is case-sensitive)"
    );
    let reply = r.handle_register(
        t0,
        &register(
            "c1",
            4,
            None,
            &["<sip:a@192.0.2.2>", "<sip:a@192.0.2.2;transport=udp>"],
        ),
    );
    assert_eq!(
        reply.status, 403,
        "a transport param makes another URI (§19.1.4)"
    );
    let reply = r.handle_register(
        t0,
        &register(
            "c1",
            5,
            None,
            &["<sip:a@192.0.2.2>", "<sip:a@192.0.2.2>;q=0.5"],
        ),
    );
    assert_eq!(reply.status, 200);
    assert_eq!(r.lookup(t0, AOR).len(), 2);
}

#[test]
fn at_the_cap_refreshes_pass_and_a_removal_makes_room_in_the_same_request() {
    let t0 = Instant::now();
    let mut r = capped(2);
    let two = ["<sip:a@192.0.2.1>", "<sip:a@192.0.2.2>"];
    assert_eq!(
        r.handle_register(t0, &register("c1", 1, None, &two)).status,
        200
    );
    // Refresh both (another Call-ID, as after a reboot): passes at the cap.
    let t1 = t0 + Duration::from_secs(100);
    let reply = r.handle_register(t1, &register("c9", 1, Some(600), &two));
    assert_eq!(reply.status, 200);
    assert!(r.lookup(t1, AOR).iter().all(|b| b.remaining(t1) == 600));
    // A third is refused ...
    let third = "<sip:a@192.0.2.3>";
    assert_eq!(
        r.handle_register(t1, &register("c2", 1, None, &[third]))
            .status,
        403
    );
    // ... unless the same request removes one.
    let reply = r.handle_register(
        t1,
        &register("c2", 2, None, &["<sip:a@192.0.2.1>;expires=0", third]),
    );
    assert_eq!(reply.status, 200);
    let mut now: Vec<String> = uris(&r, t1);
    now.sort();
    assert_eq!(now, ["sip:a@192.0.2.2", "sip:a@192.0.2.3"]);
    // Wildcard removal and queries are never refused.
    assert_eq!(
        r.handle_register(t1, &register("c2", 3, None, &[])).status,
        200
    );
    assert_eq!(
        r.handle_register(t1, &register("c2", 4, Some(0), &["*"]))
            .status,
        200
    );
    assert!(r.lookup(t1, AOR).is_empty());
}

#[test]
fn expired_bindings_do_not_count_and_zero_means_no_cap() {
    let t0 = Instant::now();
    let mut r = capped(1);
    r.handle_register(t0, &register("c1", 1, Some(60), &["<sip:a@192.0.2.1>"]));
    let t1 = t0 + Duration::from_secs(61);
    let reply = r.handle_register(t1, &register("c2", 1, None, &["<sip:a@192.0.2.2>"]));
    assert_eq!(reply.status, 200, "the expired binding left room");
    // 0: no cap.
    let mut r = capped(0);
    let many: Vec<String> = (1..=20).map(|i| format!("<sip:a@192.0.2.{i}>")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(
        r.handle_register(t0, &register("c1", 1, None, &many))
            .status,
        200
    );
    assert_eq!(r.lookup(t0, AOR).len(), 20);
}

#[test]
fn a_store_already_over_a_lowered_cap_still_takes_refreshes() {
    let t0 = Instant::now();
    let mut store = InMemoryLocationStore::new();
    {
        let mut wide = Registrar::with_store(RegistrarConfig::default(), store.clone());
        let three = [
            "<sip:a@192.0.2.1>",
            "<sip:a@192.0.2.2>",
            "<sip:a@192.0.2.3>",
        ];
        assert_eq!(
            wide.handle_register(t0, &register("c1", 1, None, &three))
                .status,
            200
        );
        store = wide.store().clone();
    }
    let mut r = Registrar::with_store(
        RegistrarConfig {
            max_bindings: 2,
            ..RegistrarConfig::default()
        },
        store,
    );
    let refresh = register("c1", 2, Some(900), &["<sip:a@192.0.2.1>"]);
    assert_eq!(r.handle_register(t0, &refresh).status, 200);
    let add = register("c1", 3, None, &["<sip:a@192.0.2.4>"]);
    assert_eq!(r.handle_register(t0, &add).status, 403);
    assert_eq!(r.lookup(t0, AOR).len(), 3);
}

#[test]
fn to_outside_the_served_domains_gets_404() {
    let t0 = Instant::now();
    let mut r = Registrar::new(RegistrarConfig {
        domains: vec!["example.org".into()],
        ..RegistrarConfig::default()
    });
    let reply = r.handle_register(t0, &register("c1", 1, None, &["<sip:a@192.0.2.1>"]));
    assert_eq!(reply.status, 404);
    let mut served = Registrar::new(RegistrarConfig {
        domains: vec!["EXAMPLE.com".into()],
        ..RegistrarConfig::default()
    });
    assert_eq!(
        served
            .handle_register(t0, &register("c1", 1, None, &["<sip:a@192.0.2.1>"]))
            .status,
        200
    );
}

#[test]
fn rfc4475_cparam01_contact_param_is_not_a_uri_param() {
    let t0 = Instant::now();
    let mut r = registrar();
    let reply = r.handle_register(t0, &torture("cparam01"));
    assert_eq!(reply.status, 200);
    let b = r.lookup(t0, "sip:watson@example.com");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].uri, "sip:+19725552222@gw1.example.net");
    assert_eq!(b[0].params, "unknownparam");
    assert_eq!(
        reply.contacts().collect::<Vec<_>>(),
        ["<sip:+19725552222@gw1.example.net>;unknownparam;expires=3600"]
    );
}

#[test]
fn rfc4475_cparam02_uri_param_stays_in_the_uri() {
    let t0 = Instant::now();
    let mut r = registrar();
    let reply = r.handle_register(t0, &torture("cparam02"));
    assert_eq!(reply.status, 200);
    let b = r.lookup(t0, "sip:watson@example.com");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].uri, "sip:+19725552222@gw1.example.net;unknownparam");
    assert_eq!(b[0].params, "");
    assert_eq!(
        reply.contacts().collect::<Vec<_>>(),
        ["<sip:+19725552222@gw1.example.net;unknownparam>;expires=3600"]
    );
}

#[test]
fn rfc4475_cparam02_after_cparam01_replaces_the_equal_binding() {
    // A URI parameter present in only one URI is ignored by §19.1.4, so the two contacts
    // are one binding; cparam02's different Call-ID lets it replace cparam01's.
    let t0 = Instant::now();
    let mut r = registrar();
    assert_eq!(r.handle_register(t0, &torture("cparam01")).status, 200);
    assert_eq!(r.handle_register(t0, &torture("cparam02")).status, 200);
    let b = r.lookup(t0, "sip:watson@example.com");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].uri, "sip:+19725552222@gw1.example.net;unknownparam");
    assert_eq!(b[0].params, "");
    assert_eq!(b[0].call_id, "cparam02.70710@saturn.example.com");
}

#[test]
fn rfc4475_regescrt_keeps_the_escaped_route_header_in_the_uri() {
    let t0 = Instant::now();
    let mut r = registrar();
    let reply = r.handle_register(t0, &torture("regescrt"));
    assert_eq!(reply.status, 200);
    let b = r.lookup(t0, "sip:user@example.com");
    assert_eq!(b.len(), 1);
    assert_eq!(
        b[0].uri,
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E"
    );
    assert_eq!(b[0].cseq, 14398234);
    assert_eq!(
        reply.contacts().collect::<Vec<_>>(),
        ["<sip:user@example.com?Route=%3Csip:sip.example.com%3E>;expires=3600"]
    );
}

#[test]
fn rfc4475_unksm2_non_sip_to_is_rejected() {
    let t0 = Instant::now();
    let mut r = registrar();
    let reply = r.handle_register(t0, &torture("unksm2"));
    assert_eq!(reply.status, 400);
    assert_eq!(reply.aor, None);
    assert!(r.store().is_empty());
}

#[test]
fn non_register_is_refused() {
    let t0 = Instant::now();
    let mut r = registrar();
    let m = Message::parse(
        &b"OPTIONS sip:example.com SIP/2.0\r\n\
           Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
           To: <sip:alice@example.com>\r\n\
           From: <sip:alice@example.com>;tag=1\r\n\
           Call-ID: x\r\n\
           CSeq: 1 OPTIONS\r\n\
           Content-Length: 0\r\n\r\n"[..],
    )
    .unwrap();
    assert_eq!(r.handle_register(t0, &m).status, 400);
}

#[test]
fn a_custom_store_backs_the_registrar() {
    /// A store that counts its writes, to show the trait is all the registrar needs.
    #[derive(Default)]
    struct Counting {
        inner: InMemoryLocationStore,
        writes: usize,
    }
    impl LocationStore for Counting {
        fn bindings(&self, aor: &str) -> Vec<parrot_proto::Binding> {
            self.inner.bindings(aor)
        }
        fn upsert(&mut self, b: parrot_proto::Binding) {
            self.writes += 1;
            self.inner.upsert(b)
        }
        fn remove(&mut self, aor: &str, uri: &str) {
            self.writes += 1;
            self.inner.remove(aor, uri)
        }
        fn purge_expired(&mut self, now: Instant) {
            self.inner.purge_expired(now)
        }
    }
    let t0 = Instant::now();
    let mut r = Registrar::with_store(RegistrarConfig::default(), Counting::default());
    r.handle_register(t0, &register("c1", 1, None, &["<sip:a@192.0.2.1>"]));
    r.handle_register(t0, &register("c1", 2, Some(0), &["*"]));
    assert_eq!(r.store().writes, 2);
    assert!(r.lookup(t0, AOR).is_empty());
}

proptest::proptest! {
    #[test]
    fn arbitrary_contact_and_expires_never_panic(
        contact in "[ -~]{0,120}",
        expires in "[0-9a-z]{0,12}",
        to in "[ -~]{0,60}",
    ) {
        let t0 = Instant::now();
        let mut r = registrar();
        let m = format!(
            "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
             To: {to}\r\nFrom: <sip:alice@example.com>;tag=1\r\nCall-ID: x\r\n\
             CSeq: 1 REGISTER\r\nContact: {contact}\r\nExpires: {expires}\r\n\
             Content-Length: 0\r\n\r\n"
        );
        if let Ok(msg) = Message::parse(m.into_bytes()) {
            let reply = r.handle_register(t0, &msg);
            proptest::prop_assert!(matches!(reply.status, 200 | 400 | 423 | 500));
            let _ = reply.into_reply();
        }
    }
}
