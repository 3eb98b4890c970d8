//! Stateful proxying (RFC 3261 §16): the pure parts.
//!
//! A [`UasHandler`](crate::UasHandler) that returns [`Action::Proxy`](crate::Action::Proxy) or
//! [`Action::ProxyTo`](crate::Action::ProxyTo) turns the [`Endpoint`](crate::Endpoint) into a
//! transaction-stateful proxy for that request. The endpoint keeps the server transaction
//! towards the caller, one client transaction per branch (the machines of
//! [`crate::transaction`]), and a proxy context that gathers the branch responses (§16.7).
//! This module holds what needs no endpoint state: the targets a handler names
//! ([`ProxyTargets`]), the knobs ([`ProxyConfig`]), the branch parameter and its loop-detection
//! hash (§16.3 item 4, §16.6 item 8), and the choice of the best final response (§16.7 item 6).
//!
//! Requests inside a dialog that was record-routed through us (a Route naming us, §16.4) do not
//! reach a handler: the endpoint forwards them on (ACK statelessly, §16.11; anything else
//! statefully), so a BYE from either side of a proxied call passes through, never a 481.

use crate::{HeaderName, Message};
use std::time::Duration;

/// The prefix of every branch a proxy branch or a statelessly forwarded ACK gets: the RFC 3261
/// magic cookie (§8.1.1.7), a marker, then the loop-detection hash (§16.6 item 8).
pub(crate) const PROXY_BRANCH_PREFIX: &str = "z9hG4bKPx";

/// Where a handler sends a request it proxies (§16.5, §16.6): one or more targets, tried in
/// parallel or in sequence (forking).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyTargets {
    /// The target URIs (`sip:bob@192.0.2.7:5062`), in order of preference. Each becomes a
    /// branch's Request-URI (§16.6 item 2). The core sends only to IP literals (RFC 3263 is
    /// not done here: a host name makes its branch fail as 503).
    pub targets: Vec<String>,
    /// All branches at once (parallel forking) or one after the other, the next one starting
    /// when the previous ended without a 2xx or 6xx (sequential forking, §16.6).
    pub parallel: bool,
    /// Whether to insert a Record-Route (`<sip:ip:port;lr>`, §16.6 item 4) so that the rest of
    /// the dialog passes through us; `None` takes [`ProxyConfig::record_route`].
    pub record_route: Option<bool>,
}

impl ProxyTargets {
    /// One target; Record-Route as configured.
    pub fn single(uri: impl Into<String>) -> Self {
        ProxyTargets {
            targets: vec![uri.into()],
            parallel: true,
            record_route: None,
        }
    }

    /// Every target at once (parallel forking).
    pub fn parallel(targets: Vec<String>) -> Self {
        ProxyTargets {
            targets,
            parallel: true,
            record_route: None,
        }
    }

    /// The targets one after the other (sequential forking).
    pub fn sequential(targets: Vec<String>) -> Self {
        ProxyTargets {
            targets,
            parallel: false,
            record_route: None,
        }
    }

    /// Sets whether to Record-Route.
    pub fn record_route(mut self, on: bool) -> Self {
        self.record_route = Some(on);
        self
    }
}

/// The proxy part of [`EndpointConfig`](crate::EndpointConfig) (§16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Record-Route proxied INVITEs (and other dialog-creating requests) unless the handler
    /// says otherwise (§16.6 item 4). On by default, so BYE and re-INVITE pass through us.
    pub record_route: bool,
    /// Timer C (§16.8): how long a proxied INVITE branch may stay in Proceeding without a
    /// final response, restarted by every provisional. RFC 3261 asks for more than 3 minutes;
    /// when it fires the branch is CANCELled and counts as a 408.
    pub timer_c: Duration,
    /// At most this many targets per request; the rest are ignored.
    pub max_targets: usize,
    /// Let the handler decide before the UAS-only checks for requests outside a dialog.
    ///
    /// A user agent server refuses a method it does not allow (405), a Require it does not
    /// support (420) and a body it cannot read (415) before any handler runs (§8.2.1-§8.2.3).
    /// A proxy must do none of that (§16.3 lists its checks: it forwards unknown methods,
    /// Require and bodies untouched, and only Proxy-Require concerns it). With this on, for
    /// a request outside a dialog those three answers are held back: the handler sees the
    /// request, and if it returns `Proxy`/`ProxyTo` the request is proxied with the §16.3
    /// checks only; any other action is replaced by the held-back answer, so the element
    /// still behaves as a correct UAS for the requests it keeps (an INVITE it would refuse
    /// does not become a call). Off by default: a plain user agent's handlers then never see
    /// such requests. Turn it on for an element that proxies (`parrot serve --proxy-to`,
    /// `--registrar`).
    ///
    /// The handler runs before the held-back answer is known to be the final one, so it
    /// should not act on a request it does not proxy beyond choosing the answer. REGISTER is
    /// never deferred: a registrar's handler commits bindings as it answers, and §10.3 step 2
    /// wants the Require check first.
    pub defer_uas_checks: bool,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            record_route: true,
            timer_c: Duration::from_secs(181),
            max_targets: 16,
            defer_uas_checks: false,
        }
    }
}

/// FNV-1a, 64 bits: a small, stable, seedless hash, so that the same request always gives the
/// same branch (loop detection, §16.3 item 4, and stateless ACK forwarding, §16.11).
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn eat(&mut self, s: &str) {
        for &b in s.as_bytes() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so that ("ab", "c") and ("a", "bc") differ.
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
    }
}

/// The loop-detection hash of a request (§16.6 item 8): the fields that decide where it goes,
/// namely the To and From tags, Call-ID, the Request-URI after route preprocessing (§16.4),
/// the CSeq number, Proxy-Require and Proxy-Authorization. The top Via is left out on purpose:
/// a request that comes back to us carries another element's Via on top, and must still hash
/// the same to be recognised as a loop.
pub(crate) fn loop_hash(req: &Message, request_uri: &str) -> u64 {
    let mut h = Fnv::new();
    let to = req.to_header().ok();
    let from = req.from_header().ok();
    h.eat(to.as_ref().and_then(|n| n.tag()).unwrap_or(""));
    h.eat(from.as_ref().and_then(|n| n.tag()).unwrap_or(""));
    h.eat(req.call_id().unwrap_or(""));
    h.eat(request_uri);
    h.eat(&req.cseq().map(|c| c.seq).unwrap_or(0).to_string());
    for v in req.header_lines(HeaderName::ProxyRequire) {
        h.eat(v);
    }
    for v in req.header_lines(HeaderName::ProxyAuthorization) {
        h.eat(v);
    }
    h.0
}

/// The branch of our Via for branch `n` of a request hashing to `hash` (§16.6 item 8).
pub(crate) fn branch_param(hash: u64, n: &str) -> String {
    format!("{PROXY_BRANCH_PREFIX}{hash:016x}.{n}")
}

/// The loop-detection hash inside a branch we wrote, if it is one of ours.
pub(crate) fn branch_hash(branch: &str) -> Option<u64> {
    let rest = branch.strip_prefix(PROXY_BRANCH_PREFIX)?;
    let hex = rest.split('.').next()?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// A branch's final outcome: a response it received, or one the proxy stands in for (408 for
/// a timeout or Timer C, 503 for a target it could not send to).
#[derive(Debug, Clone)]
pub(crate) enum BranchFinal {
    Response(Box<Message>),
    Local(u16),
}

impl BranchFinal {
    pub(crate) fn status(&self) -> u16 {
        match self {
            BranchFinal::Response(m) => m.status().unwrap_or(500),
            BranchFinal::Local(c) => *c,
        }
    }
}

/// The index of the best final response among the non-2xx ones collected (§16.7 item 6): a
/// 6xx if there is one, else the lowest class; within a class the first received, except that
/// a 408 or 503 the proxy made up itself ranks after one a branch actually sent.
pub(crate) fn best_final(finals: &[BranchFinal]) -> Option<usize> {
    let rank = |f: &BranchFinal| {
        let code = f.status();
        let class = if code >= 600 { 0 } else { code / 100 };
        let local = u16::from(matches!(f, BranchFinal::Local(_)));
        (class, local)
    };
    (0..finals.len()).min_by_key(|&i| (rank(&finals[i]), i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(s: &str) -> Message {
        Message::parse(s.replace('\n', "\r\n").into_bytes()).expect("test message parses")
    }

    fn resp(code: u16) -> BranchFinal {
        BranchFinal::Response(Box::new(msg(&format!(
            "SIP/2.0 {code} X\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>;tag=2\nCall-ID: c\nCSeq: 1 INVITE\nContent-Length: 0\n\n"
        ))))
    }

    #[test]
    fn six_hundreds_beat_everything_then_the_lowest_class() {
        assert_eq!(best_final(&[resp(486), resp(603), resp(302)]), Some(1));
        assert_eq!(best_final(&[resp(486), resp(404), resp(302)]), Some(2));
        assert_eq!(best_final(&[resp(503), resp(486)]), Some(1));
        assert_eq!(
            best_final(&[BranchFinal::Local(408), resp(480)]),
            Some(1),
            "a real 4xx ranks before a made-up 408"
        );
        assert_eq!(best_final(&[]), None);
    }

    #[test]
    fn branch_carries_the_loop_hash() {
        let b = branch_param(0x0123_4567_89ab_cdef, "2");
        assert!(b.starts_with("z9hG4bK"));
        assert_eq!(branch_hash(&b), Some(0x0123_4567_89ab_cdef));
        assert_eq!(branch_hash("z9hG4bKabc"), None);
    }

    #[test]
    fn loop_hash_ignores_via_but_not_the_request_uri() {
        let a = msg("INVITE sip:b@h SIP/2.0\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c\nCSeq: 1 INVITE\nContent-Length: 0\n\n");
        let b = msg("INVITE sip:b@h SIP/2.0\nVia: SIP/2.0/UDP x;branch=z9hG4bK9\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c\nCSeq: 1 INVITE\nContent-Length: 0\n\n");
        assert_eq!(loop_hash(&a, "sip:b@h"), loop_hash(&b, "sip:b@h"));
        assert_ne!(loop_hash(&a, "sip:b@h"), loop_hash(&a, "sip:b@k"));
    }
}
