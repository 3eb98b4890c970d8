//! HTTP Digest for SIP, server side (RFC 3261 §22.1-§22.4, RFC 7616 §3.3-§3.5, RFC 8760).
//!
//! A [`DigestServer`] writes challenges (401 `WWW-Authenticate` for a registrar or UAS, 407
//! `Proxy-Authenticate` for a proxy) and checks the credentials of the retried request.
//!
//! ## Nonces carry their own expiry
//!
//! A nonce is `base64(timestamp || serial || HMAC-SHA256(secret, timestamp || serial || realm))`
//! (the serial makes every challenge's nonce unique, so two clients challenged in the same
//! second never share a nonce and its nonce-count): the timestamp is
//! eight big-endian bytes of whole seconds since the server's `epoch` (an [`Instant`] the
//! caller chose), the secret is the caller's (injected randomness: the core draws none). So a
//! nonce proves that this server issued it for this realm, and when, without a table of issued
//! nonces. A nonce older than the lifetime is answered with `stale=true` (RFC 7616 §3.3) when
//! the digest was otherwise right, so the client retries without asking its user again. A
//! nonce from before a restart with a new secret or epoch is simply not ours any more, and
//! gets a fresh challenge.
//!
//! ## Replay protection is the one bounded piece of state
//!
//! With `qop=auth` every use of a nonce carries a nonce count that must grow (RFC 7616 §3.4,
//! §5.3). The server keeps, for nonces that have been *used successfully*, the highest count
//! seen, at most [`DigestServer::set_replay_capacity`] entries (65,536 by default: about 13 s
//! of history at 5,000 authentications a second, ~10 MB). When full,
//! the entry with the oldest nonce timestamp is dropped and that timestamp becomes a floor:
//! nonces not newer than the floor and not in the table are answered `stale=true`, so an
//! evicted nonce can never be replayed; the cost of a too-small table is only an extra
//! round trip for clients that honour `stale=true` — but many (SIPp among them) give up on a
//! second challenge, so the table must cover more than a second of traffic: with one-second
//! nonce timestamps, a table that fills within the current second puts the floor on it and
//! refuses the nonces just issued. Entries whose nonce has expired are dropped as the table is
//! used.
//!
//! ## One answer for every failure of the password
//!
//! An unknown user and a wrong password get the same fresh challenge (same header shape, same
//! length) and the same work: a digest is computed against a dummy secret for an unknown user
//! and responses are compared in constant time ([`subtle`]), so neither the answer nor its
//! timing tells which user names exist (RFC 7616 §5.12, RFC 3261 §26.3.2.4).
//!
//! Only `qop=auth` is offered; credentials without `qop` (RFC 2069 style) cannot be protected
//! against replay and get a fresh challenge.

use super::digest::DigestAlgorithm;
use crate::handler::Reply;
use crate::{HeaderName, Message, Uri};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Where the server sits, which decides the status and the header names of a challenge
/// (RFC 3261 §22.2, §22.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRole {
    /// A registrar or user agent server: 401 with `WWW-Authenticate`, answered with
    /// `Authorization`.
    Uas,
    /// A proxy: 407 with `Proxy-Authenticate`, answered with `Proxy-Authorization`.
    Proxy,
}

impl AuthRole {
    /// 401 or 407.
    pub fn status(self) -> u16 {
        match self {
            AuthRole::Uas => 401,
            AuthRole::Proxy => 407,
        }
    }

    /// `WWW-Authenticate` or `Proxy-Authenticate`.
    pub fn challenge_header(self) -> &'static str {
        match self {
            AuthRole::Uas => "WWW-Authenticate",
            AuthRole::Proxy => "Proxy-Authenticate",
        }
    }

    /// `Authorization` or `Proxy-Authorization`.
    pub fn credentials_header(self) -> HeaderName {
        match self {
            AuthRole::Uas => HeaderName::Authorization,
            AuthRole::Proxy => HeaderName::ProxyAuthorization,
        }
    }
}

/// A 401 or 407 to send: one challenge value per offered algorithm, the preferred first
/// (RFC 8760 §2.4, RFC 7616 §3.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    /// 401 or 407.
    pub status: u16,
    /// `WWW-Authenticate` or `Proxy-Authenticate`.
    pub header: &'static str,
    /// The header values, e.g. `Digest realm="example.com", nonce="...", algorithm=SHA-256,
    /// qop="auth"`.
    pub values: Vec<String>,
    /// Whether the challenge says `stale=true`.
    pub stale: bool,
}

impl DigestChallenge {
    /// The header lines `(name, value)` of the response.
    pub fn headers(&self) -> Vec<(String, String)> {
        self.values
            .iter()
            .map(|v| (self.header.to_owned(), v.clone()))
            .collect()
    }

    /// The response a [`UasHandler`](crate::UasHandler) returns.
    pub fn into_reply(self) -> Reply {
        let mut r = Reply::new(self.status);
        r.headers = self.headers();
        r
    }
}

impl From<DigestChallenge> for Reply {
    fn from(c: DigestChallenge) -> Reply {
        c.into_reply()
    }
}

/// The outcome of [`DigestServer::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The credentials are right: the request comes from `username` (RFC 3261 §22.3).
    Authenticated {
        /// The authenticated user name.
        username: String,
    },
    /// No usable credentials, a wrong user or password, a nonce that is not ours, or (with
    /// `stale=true`) an expired nonce: answer with this challenge.
    Challenge(DigestChallenge),
    /// Right credentials with a nonce count already used: a replayed request. Answer 403.
    Forbidden,
    /// Digest credentials for our realm that lack `username`, `nonce`, `uri`, `response`,
    /// `nc` or `cnonce`, or whose `uri` is not the Request-URI: answer 400 (RFC 7616 §3.4.6).
    BadRequest,
}

impl Verdict {
    /// The response to send for anything but [`Verdict::Authenticated`], which has none.
    pub fn reply(&self) -> Option<Reply> {
        match self {
            Verdict::Authenticated { .. } => None,
            Verdict::Challenge(c) => Some(c.clone().into_reply()),
            Verdict::Forbidden => Some(Reply::new(403)),
            Verdict::BadRequest => Some(Reply::new(400)),
        }
    }
}

/// Where the server looks users up (RFC 7616 §3.4.2 `H(A1)`). Implement it over a database;
/// [`InMemoryCredentials`] is the default.
pub trait CredentialStore {
    /// `H(username ":" realm ":" password)` in lower-case hex for `algorithm`, or `None` for
    /// an unknown user. Storing `H(A1)` rather than the password is what RFC 7616 §5.1
    /// recommends.
    fn ha1(&self, realm: &str, username: &str, algorithm: DigestAlgorithm) -> Option<String>;
}

/// Users and passwords held in memory, any realm.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct InMemoryCredentials {
    users: HashMap<String, String>,
}

impl fmt::Debug for InMemoryCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the passwords.
        f.debug_struct("InMemoryCredentials")
            .field("users", &self.users.len())
            .finish()
    }
}

/// A line of a users file that is not `user:password`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsersFileError {
    /// The 1-based line number.
    pub line: usize,
}

impl fmt::Display for UsersFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: expected user:password", self.line)
    }
}

impl std::error::Error for UsersFileError {}

impl InMemoryCredentials {
    /// No users.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a user.
    pub fn insert(&mut self, username: impl Into<String>, password: impl Into<String>) {
        self.users.insert(username.into(), password.into());
    }

    /// Adds a user (builder style).
    pub fn with_user(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.insert(username, password);
        self
    }

    /// The number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Parses the users file format: one `user:password` per line, split at the first `:`
    /// (a password may hold more); surrounding white space and a CR are trimmed; empty lines
    /// and lines starting with `#` are skipped. A line without `:` or with an empty user name
    /// is an error naming the line. A later line for the same user replaces the earlier one.
    pub fn from_file_text(text: &str) -> Result<Self, UsersFileError> {
        let mut c = InMemoryCredentials::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once(':') {
                Some((user, password)) if !user.trim().is_empty() => {
                    c.insert(user.trim(), password.trim());
                }
                _ => return Err(UsersFileError { line: i + 1 }),
            }
        }
        Ok(c)
    }
}

impl CredentialStore for InMemoryCredentials {
    fn ha1(&self, realm: &str, username: &str, algorithm: DigestAlgorithm) -> Option<String> {
        let password = self.users.get(username)?;
        Some(algorithm.hex(&format!("{username}:{realm}:{password}")))
    }
}

/// The nonce counts seen per nonce, bounded (see the module docs).
#[derive(Debug, Clone, Default)]
struct ReplayTable {
    highest: HashMap<String, (u64, u32)>,
    by_age: BTreeSet<(u64, String)>,
    floor: Option<u64>,
}

/// The server half of HTTP Digest for one realm (RFC 7616 §3.3-§3.5).
///
/// Getters first, then [`DigestServer::challenge`] and [`DigestServer::verify`].
pub struct DigestServer {
    realm: String,
    keyed: HmacSha256,
    epoch: Instant,
    nonce_lifetime: Duration,
    algorithms: Vec<DigestAlgorithm>,
    role: AuthRole,
    replay_capacity: usize,
    replay: ReplayTable,
    serial: std::sync::atomic::AtomicU64,
}

impl fmt::Debug for DigestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        f.debug_struct("DigestServer")
            .field("realm", &self.realm)
            .field("nonce_lifetime", &self.nonce_lifetime)
            .field("algorithms", &self.algorithms)
            .field("role", &self.role)
            .field("nonces_tracked", &self.replay.highest.len())
            .finish()
    }
}

/// The nonce length in bytes before base64: 8 of timestamp, 8 of serial, 32 of MAC.
const NONCE_RAW: usize = 48;

impl DigestServer {
    /// A server for `realm` that signs nonces with `secret` (at least 16 random bytes from
    /// the caller) and counts nonce time in whole seconds from `epoch`. Defaults: role
    /// [`AuthRole::Uas`], algorithms SHA-256 then MD5 (RFC 8760 §2.4), nonce lifetime 300 s.
    pub fn new(realm: impl Into<String>, secret: impl Into<Vec<u8>>, epoch: Instant) -> Self {
        DigestServer {
            realm: realm.into(),
            keyed: keyed_hmac(&secret.into()),
            epoch,
            nonce_lifetime: Duration::from_secs(300),
            algorithms: vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5],
            role: AuthRole::Uas,
            replay_capacity: 65_536,
            serial: std::sync::atomic::AtomicU64::new(0),
            replay: ReplayTable::default(),
        }
    }

    /// Sets the role (builder style).
    pub fn with_role(mut self, role: AuthRole) -> Self {
        self.role = role;
        self
    }

    /// Sets the algorithms offered, preferred first (builder style). An empty list offers MD5.
    pub fn with_algorithms(mut self, algorithms: &[DigestAlgorithm]) -> Self {
        self.algorithms = if algorithms.is_empty() {
            vec![DigestAlgorithm::Md5]
        } else {
            algorithms.to_vec()
        };
        self
    }

    /// Sets how long a nonce is accepted (builder style); whole seconds count.
    pub fn with_nonce_lifetime(mut self, lifetime: Duration) -> Self {
        self.nonce_lifetime = lifetime;
        self
    }

    /// Sets how many nonces the replay table remembers (at least 1).
    pub fn set_replay_capacity(&mut self, capacity: usize) {
        self.replay_capacity = capacity.max(1);
        while self.replay.highest.len() > self.replay_capacity {
            self.evict_oldest();
        }
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The role.
    pub fn role(&self) -> AuthRole {
        self.role
    }

    /// The algorithms offered, preferred first.
    pub fn algorithms(&self) -> &[DigestAlgorithm] {
        &self.algorithms
    }

    /// The nonce lifetime.
    pub fn nonce_lifetime(&self) -> Duration {
        self.nonce_lifetime
    }

    /// How many nonces the replay table holds now.
    pub fn tracked_nonces(&self) -> usize {
        self.replay.highest.len()
    }

    fn seconds(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs()
    }

    fn mac(&self, ts: u64, serial: u64) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(&ts.to_be_bytes());
        mac.update(&serial.to_be_bytes());
        mac.update(self.realm.as_bytes());
        mac
    }

    /// A fresh nonce for time `now` (module docs): unique per call.
    pub fn nonce(&self, now: Instant) -> String {
        let ts = self.seconds(now);
        let serial = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tag = self.mac(ts, serial).finalize().into_bytes();
        let mut raw = [0u8; NONCE_RAW];
        raw[..8].copy_from_slice(&ts.to_be_bytes());
        raw[8..16].copy_from_slice(&serial.to_be_bytes());
        raw[16..].copy_from_slice(&tag);
        base64_encode(&raw)
    }

    /// The timestamp of a nonce this server issued, or `None` for anything else (a nonce
    /// from another server, realm or secret, or tampered with). The MAC is compared in
    /// constant time.
    fn nonce_time(&self, nonce: &str) -> Option<u64> {
        let raw = base64_decode(nonce)?;
        if raw.len() != NONCE_RAW {
            return None;
        }
        let mut tsb = [0u8; 8];
        tsb.copy_from_slice(&raw[..8]);
        let ts = u64::from_be_bytes(tsb);
        let mut serial = [0u8; 8];
        serial.copy_from_slice(&raw[8..16]);
        self.mac(ts, u64::from_be_bytes(serial))
            .verify_slice(&raw[16..])
            .ok()?;
        Some(ts)
    }

    /// The challenge to send at `now` (RFC 7616 §3.3): one `Digest` value per algorithm with
    /// `realm`, a fresh `nonce`, `algorithm`, `qop="auth"` and, if `stale`, `stale=true`.
    pub fn challenge(&self, now: Instant, stale: bool) -> DigestChallenge {
        let nonce = self.nonce(now);
        let realm = quote(&self.realm);
        let values = self
            .algorithms
            .iter()
            .map(|a| {
                let mut v = format!(
                    "Digest realm={realm}, nonce=\"{nonce}\", algorithm={}, qop=\"auth\"",
                    a.as_str()
                );
                if stale {
                    v.push_str(", stale=true");
                }
                v
            })
            .collect();
        DigestChallenge {
            status: self.role.status(),
            header: self.role.challenge_header(),
            values,
            stale,
        }
    }

    /// Checks the `Authorization` (or, for a proxy, `Proxy-Authorization`) of `request` at
    /// `now` against `users` (RFC 3261 §22.3, RFC 7616 §3.4). The method is the request's
    /// (`A2 = method ":" digest-uri`). Credentials for other realms or schemes are ignored.
    ///
    /// A successful check records the nonce count, so the same request verified twice is a
    /// replay the second time.
    pub fn verify(
        &mut self,
        now: Instant,
        request: &Message,
        users: &dyn CredentialStore,
    ) -> Verdict {
        let fresh = |s: &Self| Verdict::Challenge(s.challenge(now, false));
        let Some(method) = request.method_str() else {
            return Verdict::BadRequest;
        };
        let mut all = match self.role {
            AuthRole::Uas => request.authorization().collect::<Vec<_>>(),
            AuthRole::Proxy => request.proxy_authorization().collect::<Vec<_>>(),
        };
        let creds = all.drain(..).filter_map(Result::ok).find(|c| {
            c.scheme.eq_ignore_ascii_case("Digest") && c.realm().is_some_and(|r| *r == *self.realm)
        });
        let Some(creds) = creds else {
            return fresh(self);
        };
        let (Some(username), Some(nonce), Some(uri), Some(resp)) = (
            creds.username(),
            creds.nonce(),
            creds.uri(),
            creds.response(),
        ) else {
            return Verdict::BadRequest;
        };
        let algorithm = match creds.algorithm() {
            None => DigestAlgorithm::Md5,
            Some(a) => match DigestAlgorithm::from_token(&a) {
                Some(a) if self.algorithms.contains(&a) => a,
                _ => return fresh(self),
            },
        };
        match creds.qop() {
            Some(q) if q.eq_ignore_ascii_case("auth") => {}
            // RFC 2069 style without qop, or auth-int: we offered neither.
            _ => return fresh(self),
        }
        let (Some(nc), Some(cnonce)) = (creds.nonce_count(), creds.cnonce()) else {
            return Verdict::BadRequest;
        };
        if !uri_matches(&uri, request.request_uri_str()) {
            return Verdict::BadRequest;
        }
        let Some(ts) = self.nonce_time(&nonce) else {
            return fresh(self);
        };
        // Same work for an unknown user as for a known one (module docs).
        let (known, ha1) = match users.ha1(&self.realm, &username, algorithm) {
            Some(h) => (true, h),
            None => (false, algorithm.hex(&format!("\u{0}{}", self.realm))),
        };
        let expected =
            response_with_ha1(algorithm, &ha1, method, &uri, &nonce, Some((nc, &cnonce)));
        let matches: bool = expected
            .as_bytes()
            .ct_eq(resp.to_ascii_lowercase().as_bytes())
            .into();
        if !(matches && known) {
            return fresh(self);
        }
        let now_s = self.seconds(now);
        let expired = ts > now_s || now_s - ts > self.nonce_lifetime.as_secs();
        if expired {
            return Verdict::Challenge(self.challenge(now, true));
        }
        self.prune(now_s);
        match self.replay.highest.get_mut(nonce.as_ref()) {
            Some((_, seen)) if nc <= *seen => return Verdict::Forbidden,
            Some((_, seen)) => *seen = nc,
            None => {
                if self.replay.floor.is_some_and(|f| ts <= f) {
                    // Its count was forgotten: make the client take a new nonce.
                    return Verdict::Challenge(self.challenge(now, true));
                }
                if nc == 0 {
                    return Verdict::BadRequest;
                }
                while self.replay.highest.len() >= self.replay_capacity {
                    self.evict_oldest();
                }
                self.replay.highest.insert(nonce.to_string(), (ts, nc));
                self.replay.by_age.insert((ts, nonce.to_string()));
            }
        }
        Verdict::Authenticated {
            username: username.into_owned(),
        }
    }

    fn evict_oldest(&mut self) {
        if let Some(first) = self.replay.by_age.pop_first() {
            self.replay.highest.remove(&first.1);
            self.replay.floor = Some(self.replay.floor.map_or(first.0, |f| f.max(first.0)));
        }
    }

    /// Drops the counts of nonces that have expired: they are refused by time anyway.
    fn prune(&mut self, now_s: u64) {
        let lifetime = self.nonce_lifetime.as_secs();
        while let Some((ts, _)) = self.replay.by_age.first() {
            if now_s.saturating_sub(*ts) <= lifetime {
                break;
            }
            if let Some((_, n)) = self.replay.by_age.pop_first() {
                self.replay.highest.remove(&n);
            }
        }
    }
}

/// HMAC-SHA256 keyed with `secret` (RFC 2104 §2): a key longer than the 64-byte block is
/// hashed first, a shorter one is padded with zeros, so the fixed-size constructor, which
/// cannot fail, takes any secret.
fn keyed_hmac(secret: &[u8]) -> HmacSha256 {
    use sha2::Digest;
    let mut block = [0u8; 64];
    if secret.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(secret));
    } else {
        block[..secret.len()].copy_from_slice(secret);
    }
    <HmacSha256 as KeyInit>::new(&block.into())
}

/// RFC 7616 §3.4.1 `response` from `H(A1)`, with `qop=auth` when `qop` is given.
fn response_with_ha1(
    alg: DigestAlgorithm,
    ha1: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<(u32, &str)>,
) -> String {
    let ha2 = alg.hex(&format!("{method}:{uri}"));
    match qop {
        Some((nc, cnonce)) => alg.hex(&format!("{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}")),
        None => alg.hex(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// Whether the `uri` of the credentials names the Request-URI (RFC 7616 §3.4.6): equal text,
/// or equal per RFC 3261 §19.1.4.
fn uri_matches(digest_uri: &str, request_uri: Option<&str>) -> bool {
    let Some(r) = request_uri else {
        return false;
    };
    if digest_uri == r {
        return true;
    }
    match (Uri::parse(digest_uri), Uri::parse(r)) {
        (Ok(a), Ok(b)) => a.rfc_eq(&b),
        _ => false,
    }
}

fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4).
fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Strict standard base64 with padding; `None` for anything else.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() % 4 != 0 {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    let quads = b.len() / 4;
    for (qi, q) in b.chunks(4).enumerate() {
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && qi + 1 != quads) {
            return None;
        }
        let mut n = 0u32;
        for &c in &q[..4 - pad] {
            n = (n << 6) | val(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_every_length() {
        for len in 0..50u8 {
            let data: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37)).collect();
            let e = base64_encode(&data);
            if len > 0 {
                assert_eq!(base64_decode(&e).as_deref(), Some(&data[..]));
            }
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_decode("Zm8="), Some(b"fo".to_vec()));
        assert_eq!(base64_decode("Zm=8"), None);
        assert_eq!(base64_decode("Zm8"), None);
        assert_eq!(base64_decode("Z==="), None);
        assert_eq!(base64_decode("Zm8=Zm8="), None);
    }

    #[test]
    fn nonce_verifies_only_for_its_server() {
        let t0 = Instant::now();
        let s = DigestServer::new("example.com", b"0123456789abcdef".to_vec(), t0);
        let n = s.nonce(t0 + Duration::from_secs(42));
        assert_eq!(s.nonce_time(&n), Some(42));
        let other_realm = DigestServer::new("example.org", b"0123456789abcdef".to_vec(), t0);
        assert_eq!(other_realm.nonce_time(&n), None);
        let other_secret = DigestServer::new("example.com", b"fedcba9876543210".to_vec(), t0);
        assert_eq!(other_secret.nonce_time(&n), None);
        assert_eq!(s.nonce_time("not base64!"), None);
    }

    #[test]
    fn realm_is_quoted_with_escapes() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
