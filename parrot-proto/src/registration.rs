//! The registration client (RFC 3261 §10.2): REGISTER with digest authentication, refresh
//! before expiry, 423 Interval Too Brief answered with Min-Expires (§10.2.8), and unregister
//! with Expires 0 (§10.2.2).
//!
//! The refresh is scheduled at the larger of half the granted lifetime and the lifetime less
//! 30 s, so a binding never lapses while the network is merely slow.

use crate::auth::DigestCredentials;
use crate::Transport;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A registration to start ([`Endpoint::register`](crate::Endpoint::register)).
#[derive(Debug, Clone)]
pub struct RegisterRequest {
    /// The registrar's URI, the Request-URI (`sip:example.com`).
    pub registrar_uri: String,
    /// The address-of-record (To and From), e.g. `sip:alice@example.com`.
    pub aor: String,
    /// Where to send.
    pub dst: SocketAddr,
    /// The transport.
    pub transport: Transport,
    /// The lifetime asked for, in seconds.
    pub expires: u32,
    /// Credentials for 401/407.
    pub credentials: Option<DigestCredentials>,
}

/// When to refresh a binding granted for `granted` seconds.
pub fn refresh_delay(granted: u32) -> Duration {
    let g = granted as u64;
    Duration::from_secs((g / 2).max(g.saturating_sub(30)).max(1))
}

#[derive(Debug)]
pub(crate) struct Registration {
    pub req: RegisterRequest,
    pub call_id: String,
    pub from_tag: String,
    pub cseq: u32,
    pub expires: u32,
    pub refresh_at: Option<Instant>,
    pub auth_tried: bool,
    pub unregistering: bool,
    pub in_flight: bool,
    pub interval_retries: u8,
}
