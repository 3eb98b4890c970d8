//! The registrar and its location service (RFC 3261 §10.3).
//!
//! [`Registrar::handle_register`] is a pure function of the REGISTER, the time and the
//! [`LocationStore`]: it applies the steps of §10.3 that need no IO and returns the response
//! to send ([`RegistrarReply`], which turns into a handler [`Reply`]). The steps that belong
//! elsewhere: the endpoint already answers a Require it does not support with 420 (step 2),
//! digest authentication is [`DigestServer`](crate::auth::DigestServer) (step 3), and whether
//! an authenticated user may change an address-of-record is the application's policy (step 4),
//! checked before calling the registrar.
//!
//! The store is a small trait so that bindings can live in a database; the default,
//! [`InMemoryLocationStore`], is a map. Time is an argument: a binding expires at an
//! [`Instant`], and expired bindings are invisible at once and dropped by
//! [`Registrar::handle_timeout`].
//!
//! Updates are atomic (§10.3 step 7: committed "if and only if all binding updates and
//! additions succeed"): every Contact is checked before the store is changed.

use crate::handler::Reply;
use crate::header::name_addr::ContactValue;
use crate::uri::Uri;
use crate::{Message, Method};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One binding of an address-of-record to a contact address (§10.2.1, §10.3 step 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The canonical address-of-record ([`canonical_aor`]).
    pub aor: String,
    /// The contact URI as registered, URI parameters and escaped headers kept (RFC 4475
    /// `cparam02`, `regescrt`).
    pub uri: String,
    /// The Contact header parameters other than `q` and `expires`, as written without the
    /// leading `;` (e.g. `+sip.instance="<urn:...>";reg-id=1`, or `unknownparam` of RFC 4475
    /// `cparam01`); empty when none.
    pub params: String,
    /// The `q` value in thousandths (§20.10), `None` when the Contact gave none.
    pub q: Option<u16>,
    /// When the binding lapses.
    pub expires_at: Instant,
    /// The Call-ID of the REGISTER that wrote it (§10.3 step 7).
    pub call_id: String,
    /// Its CSeq number.
    pub cseq: u32,
}

impl Binding {
    /// Whether the binding names the contact `uri`, compared per §19.1.4 (§10.3 step 7).
    pub fn matches_uri(&self, uri: &str) -> bool {
        same_uri(&self.uri, uri)
    }

    /// Seconds left at `now`, rounded up (0 once expired).
    pub fn remaining(&self, now: Instant) -> u64 {
        let d = self.expires_at.saturating_duration_since(now);
        d.as_secs() + u64::from(d.subsec_nanos() > 0)
    }

    /// The Contact header value of a 200 (§10.3 step 8): `<uri>;params;q=..;expires=..`.
    pub fn contact_value(&self, now: Instant) -> String {
        let mut v = format!("<{}>", self.uri);
        if !self.params.is_empty() {
            v.push(';');
            v.push_str(&self.params);
        }
        if let Some(q) = self.q {
            v.push_str(&format!(";q={}", format_q(q)));
        }
        v.push_str(&format!(";expires={}", self.remaining(now)));
        v
    }

    /// The `q` used for ordering: an absent `q` ranks as 1.0.
    pub fn effective_q(&self) -> u16 {
        self.q.unwrap_or(1000)
    }
}

/// Whether two contact URIs are the same binding (§19.1.4), as [`Binding::matches_uri`].
fn same_uri(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (Uri::parse(a), Uri::parse(b)) {
        (Ok(x), Ok(y)) => x.rfc_eq(&y),
        _ => false,
    }
}

fn format_q(q: u16) -> String {
    if q >= 1000 {
        return "1".into();
    }
    let s = format!("0.{q:03}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Where bindings are kept (§10.3, "location service"). Implement it over a database; the
/// registrar only needs these four operations.
pub trait LocationStore {
    /// The bindings of `aor` (canonical form), expired or not, in any order.
    fn bindings(&self, aor: &str) -> Vec<Binding>;
    /// Adds `binding`, or replaces the binding of the same `aor` whose URI
    /// [matches](Binding::matches_uri).
    fn upsert(&mut self, binding: Binding);
    /// Removes the binding of `aor` whose URI matches `uri`, if any.
    fn remove(&mut self, aor: &str, uri: &str);
    /// Drops every binding that has expired at `now`.
    fn purge_expired(&mut self, now: Instant);
}

/// The default [`LocationStore`]: a map in memory, nothing to install.
#[derive(Debug, Clone, Default)]
pub struct InMemoryLocationStore {
    by_aor: HashMap<String, Vec<Binding>>,
}

impl InMemoryLocationStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many bindings are held, expired ones not yet purged included.
    pub fn len(&self) -> usize {
        self.by_aor.values().map(Vec::len).sum()
    }

    /// Whether no binding is held.
    pub fn is_empty(&self) -> bool {
        self.by_aor.is_empty()
    }
}

impl LocationStore for InMemoryLocationStore {
    fn bindings(&self, aor: &str) -> Vec<Binding> {
        self.by_aor.get(aor).cloned().unwrap_or_default()
    }

    fn upsert(&mut self, binding: Binding) {
        let list = self.by_aor.entry(binding.aor.clone()).or_default();
        match list.iter_mut().find(|b| b.matches_uri(&binding.uri)) {
            Some(b) => *b = binding,
            None => list.push(binding),
        }
    }

    fn remove(&mut self, aor: &str, uri: &str) {
        if let Some(list) = self.by_aor.get_mut(aor) {
            list.retain(|b| !b.matches_uri(uri));
            if list.is_empty() {
                self.by_aor.remove(aor);
            }
        }
    }

    fn purge_expired(&mut self, now: Instant) {
        self.by_aor.retain(|_, list| {
            list.retain(|b| b.expires_at > now);
            !list.is_empty()
        });
    }
}

/// The registrar's limits (§10.3 step 7, §10.2.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// The lifetime given when the request names none (§10.2.1.1 suggests 3600 s).
    pub default_expires: u32,
    /// A shorter non-zero lifetime is refused with 423 and this Min-Expires (§10.3 step 7).
    pub min_expires: u32,
    /// A longer lifetime is shortened to this (§10.3 step 7 "MAY shorten").
    pub max_expires: u32,
    /// The domains served, lower case; empty serves any. A REGISTER whose To host is not
    /// one of them gets 404 (§10.3 step 5 "not valid for the domain").
    pub domains: Vec<String>,
    /// At most this many live bindings per address-of-record (Kamailio's `max_contacts`). A
    /// REGISTER that would leave more is refused with 403 "Too Many Bindings" and changes
    /// nothing; refreshing or removing existing bindings always passes. `0` means no limit.
    ///
    /// Why 403 and not 503: the limit is a policy about this address-of-record, not a
    /// passing overload of the server. A 503 tells the client to retry (after Retry-After)
    /// or to fail over to another registrar (RFC 3263 §4.3), which would not help; 403 says
    /// "understood, refused, do not repeat it as is" (§21.4.4). The reason phrase tells the
    /// user what to do: remove a binding (Expires 0 or `*`) first.
    pub max_bindings: usize,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            default_expires: 3600,
            min_expires: 60,
            max_expires: 86400,
            domains: Vec::new(),
            max_bindings: 10,
        }
    }
}

/// What to answer a REGISTER with (§10.3): status, reason and header lines, ready for a
/// [`Reply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarReply {
    /// 200, 400, 403 (too many bindings), 404, 423 or 500.
    pub status: u16,
    /// A reason phrase more precise than the standard one, if any.
    pub reason: Option<&'static str>,
    /// Header lines: the current bindings as `Contact` on a 200 (§10.3 step 8), `Min-Expires`
    /// on a 423 (§10.3 step 7).
    pub headers: Vec<(String, String)>,
    /// The canonical address-of-record the request was about, once known.
    pub aor: Option<String>,
}

impl RegistrarReply {
    fn error(status: u16, reason: &'static str, aor: Option<String>) -> Self {
        RegistrarReply {
            status,
            reason: Some(reason),
            headers: Vec::new(),
            aor,
        }
    }

    /// The response a [`UasHandler::handle_register`](crate::UasHandler::handle_register)
    /// returns, as `Action::Respond(reply.into_reply())`.
    pub fn into_reply(self) -> Reply {
        let mut r = Reply::new(self.status);
        r.reason = self.reason.map(str::to_owned);
        r.headers = self.headers;
        r
    }

    /// The `Contact` values of the reply.
    pub fn contacts(&self) -> impl Iterator<Item = &str> + '_ {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("Contact"))
            .map(|(_, v)| v.as_str())
    }
}

impl From<RegistrarReply> for Reply {
    fn from(r: RegistrarReply) -> Reply {
        r.into_reply()
    }
}

/// The canonical form of an address-of-record (§10.3 step 5): the scheme in lower case, the
/// user with escapes resolved (then re-escaped the same way for every input), the host in
/// lower case, the port if any, and no URI parameters or headers. `None` unless `uri` is a
/// `sip:` or `sips:` URI.
pub fn canonical_aor(uri: &Uri<'_>) -> Option<String> {
    let sip = uri.as_sip()?;
    let mut s = String::from(if sip.is_secure() { "sips:" } else { "sip:" });
    if let Some(user) = sip.user_decoded() {
        for &b in user.iter() {
            if b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b) {
                s.push(b as char);
            } else {
                s.push_str(&format!("%{b:02X}"));
            }
        }
        s.push('@');
    }
    s.push_str(&host_lower(sip));
    if let Some(p) = sip.port() {
        s.push_str(&format!(":{p}"));
    }
    Some(s)
}

/// The host of a SIP URI in lower case, without the port.
fn host_lower(sip: &crate::uri::SipUri<'_>) -> String {
    let host_port = sip.host_port();
    let host = match sip.port() {
        Some(_) => host_port.rsplit_once(':').map_or(host_port, |(h, _)| h),
        None => host_port,
    };
    host.to_ascii_lowercase()
}

/// One Contact of the request, checked (§10.3 step 7).
struct Wanted {
    uri: String,
    params: String,
    q: Option<u16>,
    expires: u32,
}

/// A registrar over a [`LocationStore`] (§10.3).
///
/// Getters ([`Registrar::lookup`], [`Registrar::store`]) come first, then
/// [`Registrar::handle_register`] and [`Registrar::handle_timeout`].
#[derive(Debug, Clone)]
pub struct Registrar<S: LocationStore = InMemoryLocationStore> {
    config: RegistrarConfig,
    store: S,
}

impl Registrar<InMemoryLocationStore> {
    /// A registrar keeping bindings in memory.
    pub fn new(config: RegistrarConfig) -> Self {
        Registrar::with_store(config, InMemoryLocationStore::new())
    }
}

impl<S: LocationStore> Registrar<S> {
    /// A registrar over `store`.
    pub fn with_store(config: RegistrarConfig, store: S) -> Self {
        Registrar { config, store }
    }

    /// The configuration.
    pub fn config(&self) -> &RegistrarConfig {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store, to change it directly.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// The live bindings of an address-of-record at `now`, highest `q` first (absent `q`
    /// ranks as 1.0), then most recently registered lifetime first: the targets a proxy or
    /// redirect server tries (§16.5, §8.3). `aor` is any `sip:`/`sips:` URI; it is put in
    /// canonical form first. Unparsable or non-SIP input gives no bindings.
    pub fn lookup(&self, now: Instant, aor: &str) -> Vec<Binding> {
        let Some(key) = Uri::parse(aor).ok().and_then(|u| canonical_aor(&u)) else {
            return Vec::new();
        };
        self.live(now, &key)
    }

    fn live(&self, now: Instant, key: &str) -> Vec<Binding> {
        let mut v: Vec<Binding> = self
            .store
            .bindings(key)
            .into_iter()
            .filter(|b| b.expires_at > now)
            .collect();
        v.sort_by(|a, b| {
            b.effective_q()
                .cmp(&a.effective_q())
                .then(b.expires_at.cmp(&a.expires_at))
                .then_with(|| a.uri.cmp(&b.uri))
        });
        v
    }

    /// Drops expired bindings from the store. Expired bindings are already invisible to
    /// [`Registrar::lookup`] and to REGISTER; this only frees them.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.store.purge_expired(now);
    }

    /// Processes a REGISTER at `now` (§10.3 steps 5-8) and returns the response to send.
    ///
    /// * To must hold a `sip:`/`sips:` URI (400 otherwise, RFC 4475 `unksm2`), in a domain
    ///   served (404 otherwise).
    /// * `Contact: *` needs `Expires: 0` and no other Contact (400 otherwise), and removes
    ///   every binding (§10.2.2).
    /// * A Contact's lifetime is its `expires` parameter, else the Expires header, else the
    ///   default; a non-zero lifetime below the minimum gets 423 with Min-Expires, a longer
    ///   one than the maximum is shortened.
    /// * A binding already written with the same Call-ID and a CSeq at least as high is
    ///   not changed and the request fails with 500 (out of order, §10.3 step 7).
    /// * A request that would leave more live bindings than
    ///   [`RegistrarConfig::max_bindings`] gets 403 "Too Many Bindings" and changes nothing;
    ///   refreshes of existing bindings always pass.
    /// * No Contact is a query: the 200 lists the bindings.
    ///
    /// The 200 carries every live binding as a Contact with its `expires` (§10.3 step 8).
    pub fn handle_register(&mut self, now: Instant, request: &Message) -> RegistrarReply {
        if request.method() != Some(Method::Register) {
            return RegistrarReply::error(400, "Not a REGISTER", None);
        }
        let Ok(to) = request.to_header() else {
            return RegistrarReply::error(400, "Bad To", None);
        };
        let Some(aor) = canonical_aor(&to.uri()) else {
            return RegistrarReply::error(400, "To Is Not A SIP Address-Of-Record", None);
        };
        if !self.config.domains.is_empty() {
            let host = to.uri().as_sip().map(host_lower).unwrap_or_default();
            if !self
                .config
                .domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(&host))
            {
                return RegistrarReply::error(404, "Domain Not Served", Some(aor));
            }
        }
        let (Ok(call_id), Ok(cseq)) = (request.call_id(), request.cseq()) else {
            return RegistrarReply::error(400, "Bad Call-ID Or CSeq", Some(aor));
        };
        let Ok(expires_header) = request.expires() else {
            return RegistrarReply::error(400, "Bad Expires", Some(aor));
        };

        let mut star = false;
        let mut wanted: Vec<Wanted> = Vec::new();
        for c in request.contacts() {
            match c {
                Err(_) => return RegistrarReply::error(400, "Bad Contact", Some(aor)),
                Ok(ContactValue::Star) => star = true,
                Ok(ContactValue::Addr(na)) => {
                    if !na.is_valid() {
                        return RegistrarReply::error(400, "Bad Contact", Some(aor));
                    }
                    let params = na.params();
                    let raw_expires = params.value("expires");
                    let expires = match (raw_expires, na.expires()) {
                        (None, _) => expires_header.unwrap_or(self.config.default_expires),
                        (Some(_), Some(e)) => e,
                        // §10.3 step 7 lets a malformed expires param fall back.
                        (Some(_), None) => expires_header.unwrap_or(self.config.default_expires),
                    };
                    let q = match params.value("q") {
                        None => None,
                        Some(_) => match na.q() {
                            Some(q) => Some(q),
                            None => return RegistrarReply::error(400, "Bad Contact q", Some(aor)),
                        },
                    };
                    let other: Vec<String> = params
                        .iter()
                        .filter(|p| {
                            !p.name.eq_ignore_ascii_case("q")
                                && !p.name.eq_ignore_ascii_case("expires")
                        })
                        .map(|p| match p.value {
                            Some(v) => format!("{}={v}", p.name),
                            None => p.name.to_owned(),
                        })
                        .collect();
                    wanted.push(Wanted {
                        uri: na.uri_str().to_owned(),
                        params: other.join(";"),
                        q,
                        expires,
                    });
                }
            }
        }

        let existing = self.live(now, &aor);
        if star {
            if !wanted.is_empty() || expires_header != Some(0) {
                return RegistrarReply::error(400, "Wildcard Contact Needs Expires 0", Some(aor));
            }
            for b in &existing {
                if b.call_id == call_id && cseq.seq <= b.cseq {
                    return RegistrarReply::error(500, "Out Of Order", Some(aor));
                }
            }
            for b in &existing {
                self.store.remove(&aor, &b.uri);
            }
            return self.ok(now, aor);
        }

        // Check every Contact before changing anything (atomic update).
        for w in &wanted {
            if w.expires != 0 && w.expires < self.config.min_expires {
                let mut r = RegistrarReply::error(423, "Interval Too Brief", Some(aor));
                r.headers
                    .push(("Min-Expires".into(), self.config.min_expires.to_string()));
                return r;
            }
            if let Some(b) = existing.iter().find(|b| b.matches_uri(&w.uri)) {
                if b.call_id == call_id && cseq.seq <= b.cseq {
                    return RegistrarReply::error(500, "Out Of Order", Some(aor));
                }
            }
        }
        if self.too_many(&existing, &wanted) {
            return RegistrarReply::error(403, "Too Many Bindings", Some(aor));
        }
        for w in wanted {
            if w.expires == 0 {
                self.store.remove(&aor, &w.uri);
                continue;
            }
            let secs = w.expires.min(self.config.max_expires);
            let Some(expires_at) = now.checked_add(Duration::from_secs(u64::from(secs))) else {
                return RegistrarReply::error(500, "Lifetime Out Of Range", Some(aor));
            };
            self.store.upsert(Binding {
                aor: aor.clone(),
                uri: w.uri,
                params: w.params,
                q: w.q,
                expires_at,
                call_id: call_id.to_owned(),
                cseq: cseq.seq,
            });
        }
        self.ok(now, aor)
    }

    /// Whether applying `wanted` to the live bindings `existing` adds at least one binding
    /// and leaves more than [`RegistrarConfig::max_bindings`]. A request that only refreshes
    /// or removes bindings never counts as too many, even when the count is already above a
    /// limit lowered since.
    fn too_many(&self, existing: &[Binding], wanted: &[Wanted]) -> bool {
        let max = self.config.max_bindings;
        if max == 0 {
            return false;
        }
        // The last Contact for a URI wins, as the store applies them in order.
        let mut last: Vec<&Wanted> = Vec::new();
        for w in wanted {
            match last.iter_mut().find(|l| same_uri(&l.uri, &w.uri)) {
                Some(l) => *l = w,
                None => last.push(w),
            }
        }
        let mut count = existing.len();
        let mut added = false;
        for w in last {
            let known = existing.iter().any(|b| b.matches_uri(&w.uri));
            match (known, w.expires == 0) {
                (true, true) => count = count.saturating_sub(1),
                (false, false) => {
                    count += 1;
                    added = true;
                }
                _ => {}
            }
        }
        added && count > max
    }

    fn ok(&self, now: Instant, aor: String) -> RegistrarReply {
        let headers = self
            .live(now, &aor)
            .iter()
            .map(|b| ("Contact".to_owned(), b.contact_value(now)))
            .collect();
        RegistrarReply {
            status: 200,
            reason: None,
            headers,
            aor: Some(aor),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_is_written_without_trailing_zeros() {
        assert_eq!(format_q(1000), "1");
        assert_eq!(format_q(700), "0.7");
        assert_eq!(format_q(5), "0.005");
        assert_eq!(format_q(0), "0");
    }

    #[test]
    fn aor_canonical_form_drops_parameters_and_escapes() {
        let u = Uri::parse("SIP:%61lice@EXAMPLE.com:5070;user=phone?X=1").unwrap();
        assert_eq!(
            canonical_aor(&u).as_deref(),
            Some("sip:alice@example.com:5070")
        );
        let t = Uri::parse("tel:+15551234").unwrap();
        assert_eq!(canonical_aor(&t), None);
    }
}
