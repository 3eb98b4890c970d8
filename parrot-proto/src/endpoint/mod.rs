//! The endpoint: transactions, dialogs and handlers behind one handle/poll API (RFC 3261 §8,
//! §12-§18).
//!
//! [`Endpoint`] is what an adapter drives. It owns every transaction ([`crate::transaction`]),
//! every dialog ([`crate::dialog`]) and the handlers ([`crate::handler`]), routes each message
//! with the pure matching rules of §17.1.3, §17.2.3 and §12.2, and queues what must happen next.
//!
//! Methods come in the four kinds of quinn-proto: getters, `handle_*` inputs (datagrams, stream
//! bytes, timeouts), application commands (`invite`, `respond`, `bye`, `cancel`, `register`,
//! `options`, `request_in_dialog`) and `poll_*` outputs. See the crate docs for the drain rule.

mod linger;
mod proxy;
mod register;
mod server_index;
mod timers;
mod uac;
mod uas;

use crate::auth::{DigestCredentials, DigestSession};
use crate::dialog::{Dialog, Role};
use crate::handler::{Body, UacHandler, UasHandler, UasHandlerFactory};
use crate::registration::Registration;
use crate::transaction::{
    ClientInviteTransaction, ClientKey, ClientNonInviteTransaction, MergeKey,
    ServerInviteTransaction, ServerKey, ServerNonInviteTransaction, TimerConfig, TxOutput,
};
use crate::{
    ConnectionId, Limits, Message, Method, Reply, StreamDecoder, StreamItem, Transmit, Transport,
};
use bytes::Bytes;
use rand_core::RngCore;
use std::collections::VecDeque;

/// The endpoint's tables: foldhash, seeded per table from a generator derived from the seed.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;

/// The key of server transaction `id`, live or lingering (for [`server_index::ServerIndex`]).
fn server_key_of<'a>(
    txs: &'a HashMap<u64, Box<ServerTx>>,
    lingering: &'a [linger::LingerQueue; 3],
) -> impl Fn(u64) -> Option<&'a ServerKey> + 'a {
    move |id| match linger::unhandle(id) {
        Some((kind, seq)) => lingering[kind].get(seq).map(|t| &t.key),
        None => txs.get(&id).map(|t| &t.key),
    }
}

/// The merged-request key of server transaction `id`, live or lingering.
fn merge_key_of<'a>(
    txs: &'a HashMap<u64, Box<ServerTx>>,
    lingering: &'a [linger::LingerQueue; 3],
) -> impl Fn(u64) -> Option<&'a MergeKey> + 'a {
    move |id| match linger::unhandle(id) {
        Some((kind, seq)) => lingering[kind].get(seq).and_then(|t| t.merge_key.as_ref()),
        None => txs.get(&id).and_then(|t| t.merge_key.as_ref()),
    }
}

fn table<K, V>(seeds: &mut SplitMix64) -> HashMap<K, V> {
    HashMap::with_hasher(foldhash::fast::FixedState::with_seed(seeds.next_u64()))
}

/// Calls by Call-ID and local tag (§12.2.2 matching). Keyed by the hash of the Call-ID, so a
/// lookup with the borrowed values of a message allocates nothing and indexing a call does not
/// copy its Call-ID: an entry's Call-ID is its call's, which every method is given a way to
/// read (`call_id_of`). The tags of one hash (one call, a few forks, or in a rare collision
/// several Call-IDs) are scanned.
pub(crate) struct TagIndex {
    hasher: foldhash::fast::FixedState,
    map: std::collections::HashMap<u64, TagsOfCallId, server_index::KeyIsHash>,
    /// Tests: every Call-ID gets the same hash.
    #[cfg(test)]
    one_hash: bool,
}

/// The local tags of one Call-ID hash and their calls. A tag of up to 14 bytes (every tag
/// Parrot makes) is kept inline: indexing a call allocates nothing of its own.
type TagsOfCallId = smallvec::SmallVec<[(crate::transaction::KeyText<14>, DialogId); 1]>;

impl TagIndex {
    fn new(seeds: &mut SplitMix64) -> Self {
        TagIndex {
            hasher: foldhash::fast::FixedState::with_seed(seeds.next_u64()),
            map: std::collections::HashMap::with_hasher(server_index::KeyIsHash),
            #[cfg(test)]
            one_hash: false,
        }
    }

    fn hash(&self, call_id: &str) -> u64 {
        use std::hash::BuildHasher;
        #[cfg(test)]
        if self.one_hash {
            return 0;
        }
        self.hasher.hash_one(call_id)
    }

    /// The call with `call_id` and local tag `tag`; `call_id_of` gives a live call's Call-ID.
    pub(crate) fn get<'c>(
        &self,
        call_id: &str,
        tag: &str,
        call_id_of: impl Fn(DialogId) -> Option<&'c str>,
    ) -> Option<DialogId> {
        self.map
            .get(&self.hash(call_id))?
            .iter()
            .find(|(t, d)| t.bytes() == tag.as_bytes() && call_id_of(*d) == Some(call_id))
            .map(|(_, d)| *d)
    }

    /// Indexes call `d` (not yet live) under `call_id` and `tag`, in place of a live call
    /// indexed under both.
    pub(crate) fn insert<'c>(
        &mut self,
        call_id: &str,
        tag: &str,
        d: DialogId,
        call_id_of: impl Fn(DialogId) -> Option<&'c str>,
    ) {
        let h = self.hash(call_id);
        let tags = self.map.entry(h).or_default();
        match tags
            .iter_mut()
            .find(|(t, o)| t.bytes() == tag.as_bytes() && call_id_of(*o) == Some(call_id))
        {
            Some(e) => e.1 = d,
            None => tags.push((crate::transaction::KeyText::new(&[tag.as_bytes()]), d)),
        }
    }

    /// Removes the entry of `call_id` and `tag`: that of call `d` (no longer live), or of the
    /// live call that took its place.
    pub(crate) fn remove<'c>(
        &mut self,
        call_id: &str,
        tag: &str,
        d: DialogId,
        call_id_of: impl Fn(DialogId) -> Option<&'c str>,
    ) {
        let h = self.hash(call_id);
        if let Some(tags) = self.map.get_mut(&h) {
            tags.retain(|(t, o)| {
                !(t.bytes() == tag.as_bytes() && (*o == d || call_id_of(*o) == Some(call_id)))
            });
            if tags.is_empty() {
                self.map.remove(&h);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bytes of one entry (for the memory figures).
    fn entry_size() -> usize {
        std::mem::size_of::<(u64, TagsOfCallId)>()
    }
}

/// The Call-ID of live call `d`, for [`TagIndex`].
fn call_id_in(calls: &HashMap<DialogId, Call>, d: DialogId) -> Option<&str> {
    calls.get(&d).map(|c| &*c.dialog.call_id)
}

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

pub use uac::{InviteRequest, OutOfDialogRequest};

/// Configuration of an [`Endpoint`].
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// T1, T2, T4 (§17.1.1.1).
    pub timers: TimerConfig,
    /// Our address per transport, written in Via and Contact (§18.1.1, §8.1.1.8).
    pub local_addrs: Vec<(Transport, SocketAddr)>,
    /// The user part of our Contact URI.
    pub contact_user: String,
    /// Written as User-Agent in requests and Server in responses, when set.
    pub user_agent: Option<String>,
    /// Methods we accept; others get 405 with this list in Allow (§8.2.1).
    pub allow: Vec<Method>,
    /// Option tags we support; a Require naming another gets 420 (§8.2.2.3).
    pub supported: Vec<String>,
    /// Body types we accept; others get 415 with Accept (§8.2.3).
    pub accept: Vec<String>,
    /// Cap on live server plus client transactions (those still waiting for or sending their
    /// final response); past it new requests outside dialogs get 503. Answered server
    /// transactions that only linger for retransmissions are capped by `max_lingering`.
    pub max_transactions: usize,
    /// Cap on answered server transactions kept to absorb retransmissions: over UDP a
    /// non-INVITE one lingers 64*T1 (32 s, Timer J, §17.2.2) and an INVITE answered 2xx as
    /// long (Timer L, RFC 6026 §8.7), so a server needs about 2 x calls-per-second x 32. Past
    /// the cap the oldest is let go early (a retransmission of its request is then taken as
    /// new), which bounds memory without refusing calls. Default 500,000 (about 7,800
    /// answered calls per second, ~350 MB at most).
    pub max_lingering: usize,
    /// Cap on live calls (dialogs, early or confirmed); past it new INVITEs get 503.
    pub max_dialogs: usize,
    /// The Retry-After of those 503s, in seconds (§20.33).
    pub retry_after: u32,
    /// Parser limits for incoming messages.
    pub limits: Limits,
    /// How requests a handler proxies are forwarded (RFC 3261 §16).
    pub proxy: crate::proxy::ProxyConfig,
    /// How long a new INVITE waits for its 100 (Trying) (§17.2.1, §8.2.6.1). Zero (the
    /// default) sends it at once. A server whose handlers answer at once can set up to 200 ms:
    /// §17.2.1 lets it leave the 100 out when it knows a provisional or final response follows
    /// within 200 ms, and with a delay the 100 goes only if no response went first. Keep it
    /// under T1 (500 ms), so the 100 still stops the client's INVITE retransmissions.
    pub trying_delay: Duration,
    /// Overload shedding (§21.5.4 503 Service Unavailable). A caller that reports each time
    /// it finds its datagram receive queue empty ([`Endpoint::receive_queue_empty`]) lets the
    /// endpoint tell when it has fallen behind: once datagrams have kept coming for this long
    /// without the queue emptying, new requests outside a dialog get 503 with Retry-After,
    /// statelessly, until the queue empties again. Retransmissions, ACKs, CANCELs and requests
    /// inside a dialog are still served: finishing calls is what lets the queue empty, where
    /// accepting more while the client retransmits what waits in the queue only deepens it.
    /// It takes [`EndpointConfig::shed_backlog`] datagrams as well. `None` (the default, and
    /// for a caller that never reports) never sheds.
    pub shed_after: Option<Duration>,
    /// How many datagrams must have been taken since the receive queue was last found empty
    /// before overload shedding starts (with [`EndpointConfig::shed_after`]): one slow
    /// handler holding the loop with a few datagrams waiting is not a flood. Default 128.
    pub shed_backlog: u32,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            timers: TimerConfig::default(),
            local_addrs: vec![(
                Transport::Udp,
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5060),
            )],
            contact_user: "parrot".into(),
            user_agent: None,
            allow: [
                Method::Invite,
                Method::Ack,
                Method::Bye,
                Method::Cancel,
                Method::Options,
                Method::Register,
                Method::Subscribe,
                Method::Notify,
                Method::Publish,
                Method::Message,
                Method::Info,
                Method::Update,
                Method::Refer,
            ]
            .to_vec(),
            supported: Vec::new(),
            accept: vec![
                "application/sdp".into(),
                "text/plain".into(),
                "application/dtmf-relay".into(),
                "message/sipfrag".into(),
            ],
            max_transactions: 100_000,
            max_lingering: 500_000,
            max_dialogs: 10_000,
            retry_after: 5,
            limits: Limits::default(),
            proxy: crate::proxy::ProxyConfig::default(),
            trying_delay: Duration::ZERO,
            shed_after: None,
            shed_backlog: 128,
        }
    }
}

/// The handle of a call: the dialog an INVITE establishes (incoming or outgoing). It stays the
/// same from the INVITE to the end of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DialogId(pub u64);

/// The handle of a server transaction, for deferred answers ([`Endpoint::respond`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTxKey(pub u64);

/// The handle of a non-INVITE request sent by a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// The handle of a registration binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegistrationId(pub u64);

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// We sent BYE.
    LocalBye,
    /// The peer sent BYE.
    RemoteBye,
    /// The INVITE was cancelled (by either side).
    Cancelled,
    /// The INVITE got a final 3xx-6xx, sent or received.
    Rejected(u16),
    /// Timer B fired or a 408 came back (§8.1.3.1).
    Timeout,
    /// No ACK for our 2xx (§13.3.1.4); a BYE was sent.
    AckTimeout,
    /// The transport failed (§8.1.3.1).
    TransportError,
    /// The handler returned `Stop`.
    HandlerStopped(String),
}

/// Something the application should know. Drain with [`Endpoint::poll_event`].
#[derive(Debug, Clone)]
pub enum Event {
    /// A new INVITE arrived; a handler (if any) was called already. `offer` is its body.
    IncomingCall {
        /// The call.
        dialog: DialogId,
        /// Its INVITE server transaction, for a deferred [`Endpoint::respond`].
        tx: ServerTxKey,
        /// The INVITE.
        request: Message,
        /// The SDP offer (or other body), if any.
        offer: Option<Body>,
    },
    /// A provisional response to our INVITE (§13.2.2.1).
    CallProgress {
        /// The call.
        dialog: DialogId,
        /// The status (100-199).
        status: u16,
        /// Its body (early media SDP), if any.
        body: Option<Body>,
    },
    /// A 2xx to our INVITE; the ACK has been sent.
    CallAnswered {
        /// The call.
        dialog: DialogId,
        /// The SDP answer (or offer), if any.
        answer: Option<Body>,
    },
    /// The call is established: for a UAC when the 2xx was ACKed, for a UAS when the ACK came.
    CallEstablished {
        /// The call.
        dialog: DialogId,
        /// Our side.
        role: Role,
        /// The remote session description: the 2xx body (UAC), or the ACK's body, else the
        /// INVITE's (UAS).
        remote_sdp: Option<Body>,
    },
    /// A request arrived inside an established or early dialog (re-INVITE, UPDATE, INFO,
    /// MESSAGE, NOTIFY, REFER, BYE, ...); the handler has been called already.
    RequestReceived {
        /// The call.
        dialog: DialogId,
        /// Its server transaction (answer with [`Endpoint::respond`] if the handler did not).
        tx: ServerTxKey,
        /// The method.
        method: Method,
        /// The body (a new SDP offer for re-INVITE / UPDATE), if any.
        body: Option<Body>,
    },
    /// An ACK for our 2xx arrived (§13.3.1.4); its body may be the SDP answer.
    AckReceived {
        /// The call.
        dialog: DialogId,
        /// The ACK's body.
        body: Option<Body>,
    },
    /// A 3xx to our INVITE; the call ended.
    CallRedirected {
        /// The call.
        dialog: DialogId,
        /// The Contact URIs offered.
        contacts: Vec<String>,
    },
    /// The call ended (every call gets exactly one).
    CallEnded {
        /// The call.
        dialog: DialogId,
        /// Why.
        reason: EndReason,
    },
    /// A final response to a request sent with a command (or 408 on timeout).
    ResponseReceived {
        /// The request.
        request: RequestId,
        /// Its dialog, for in-dialog requests.
        dialog: Option<DialogId>,
        /// The status.
        status: u16,
        /// The response (`None` for a timeout or transport error).
        response: Option<Message>,
    },
    /// A registration was accepted; refreshed automatically before it expires.
    RegistrationSucceeded {
        /// The registration.
        registration: RegistrationId,
        /// The granted lifetime in seconds.
        expires: u32,
    },
    /// A registration failed and was dropped.
    RegistrationFailed {
        /// The registration.
        registration: RegistrationId,
        /// The final status (408 for a timeout).
        status: u16,
    },
    /// An unregistration (Expires 0) finished.
    Unregistered {
        /// The registration.
        registration: RegistrationId,
    },
    /// Bytes could not be framed on a stream, or the adapter reported a send failure.
    TransportError {
        /// The peer.
        dst: SocketAddr,
        /// The transport.
        transport: Transport,
        /// The connection, for streams.
        conn: Option<ConnectionId>,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// No such dialog, transaction or registration (or it has ended).
    Unknown,
    /// The transaction already has a final response.
    AlreadyAnswered,
    /// The call is not in a state that allows this (e.g. BYE before answer).
    InvalidState,
    /// A message could not be built from the given values.
    BadInput,
    /// The transaction cap is reached.
    Overloaded,
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CommandError::Unknown => "unknown dialog, transaction or registration",
            CommandError::AlreadyAnswered => "already answered",
            CommandError::InvalidState => "invalid state for this command",
            CommandError::BadInput => "message could not be built",
            CommandError::Overloaded => "transaction cap reached",
        })
    }
}

impl std::error::Error for CommandError {}

/// A branch this endpoint writes (§8.1.1.7): the magic cookie and 16 random hex digits.
pub(crate) struct Branch([u8; 23]);

impl Branch {
    /// The branch text.
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// A server transaction's To tag (§8.2.6.2, §12.1.1): the tag its request's To already carries
/// (an in-dialog request), kept as its place in the request's header text, or ours, made for it.
#[derive(Debug, Clone)]
pub(crate) enum TxTag {
    Request(crate::message::Span),
    Own(Box<str>),
}

impl TxTag {
    /// The tag `tag` when it is a slice of `req`'s header text (as validation reads it), else
    /// a copy.
    pub(crate) fn of(req: &Message, tag: &str) -> TxTag {
        let span = req.span_of(tag);
        if req
            .head_text()
            .get(span.range())
            .is_some_and(|s| std::ptr::eq(s, tag))
        {
            TxTag::Request(span)
        } else {
            TxTag::Own(tag.into())
        }
    }

    /// The tag text; `req` is the transaction's request.
    pub(crate) fn as_str<'a>(&'a self, req: &'a Message) -> &'a str {
        match self {
            TxTag::Request(s) => req.head_text().get(s.range()).unwrap_or_default(),
            TxTag::Own(t) => t,
        }
    }
}

/// The start of the Via the endpoint writes from `host_port` over `transport`, up to its
/// branch (§8.1.1.7, §18.1.1): `SIP/2.0/UDP host:port;branch=`.
pub(crate) fn via_prefix(host_port: &str, transport: Transport) -> String {
    format!("SIP/2.0/{} {};branch=", transport.via_token(), host_port)
}

/// Whether the configured texts a response copies hold no CR or LF (§7.3.1): such a text is
/// written as given, without being checked again for every response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlainConfig {
    /// [`EndpointConfig::contact_user`], which our Contact is written from.
    contact_user: bool,
    /// [`EndpointConfig::user_agent`], our Server value.
    user_agent: bool,
}

impl PlainConfig {
    fn of(cfg: &EndpointConfig) -> PlainConfig {
        PlainConfig {
            contact_user: !crate::text::has_crlf(cfg.contact_user.as_bytes()),
            user_agent: cfg
                .user_agent
                .as_ref()
                .is_some_and(|u| !crate::text::has_crlf(u.as_bytes())),
        }
    }
}

/// [`Endpoint::prefixes`] over the endpoint's cache and configuration, for a caller holding
/// other parts of the endpoint.
fn prefixes_in<'c>(
    cache: &'c mut Vec<(SocketAddr, Transport, (String, String))>,
    cfg: &EndpointConfig,
    local: SocketAddr,
    transport: Transport,
) -> &'c (String, String) {
    let i = match cache
        .iter()
        .position(|(l, t, _)| *l == local && *t == transport)
    {
        Some(i) => i,
        None => {
            let hp = Endpoint::host_port(local);
            let contact = match transport.uri_param() {
                Some(p) => format!("<sip:{}@{};transport={}>", cfg.contact_user, hp, p),
                None => format!("<sip:{}@{}>", cfg.contact_user, hp),
            };
            let via = via_prefix(&hp, transport);
            if cache.len() >= 16 {
                cache.clear();
            }
            cache.push((local, transport, (contact, via)));
            cache.len() - 1
        }
    };
    &cache[i].2
}

/// Where a transaction or dialog sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peer {
    pub addr: SocketAddr,
    pub transport: Transport,
    pub conn: Option<ConnectionId>,
}

pub(crate) enum ServerFsm {
    Invite(ServerInviteTransaction),
    NonInvite(ServerNonInviteTransaction),
}

pub(crate) struct ServerTx {
    key: ServerKey,
    /// The hash of `key` in `Endpoint::server_index` (set by `Endpoint::add_server_tx`).
    key_hash: u64,
    fsm: ServerFsm,
    peer: Peer,
    local: SocketAddr,
    request: Message,
    via_fix: Option<uas::ViaFix>,
    to_tag: TxTag,
    /// Whether the request's To has a tag, when validation read it.
    to_tagged: Option<bool>,
    /// The request's CSeq number, when validation read it (a 2xx to an INVITE keeps it).
    cseq: Option<u32>,
    dialog: Option<DialogId>,
    merge_key: Option<MergeKey>,
    /// The lines its responses copy, made at the first response (§8.2.6.2). Boxed: most
    /// transactions answer once, straight from the request, and never make one.
    head: Option<Box<crate::builder::ResponseHead>>,
    /// The deadline of its newest timer-heap entry still queued.
    scheduled: Option<Instant>,
    /// When its held-back 100 (Trying) goes if no response went first
    /// ([`EndpointConfig::trying_delay`]).
    trying_at: Option<Instant>,
}

impl ServerTx {
    fn has_final(&self) -> bool {
        match &self.fsm {
            ServerFsm::Invite(t) => t.has_final(),
            ServerFsm::NonInvite(t) => t.has_final(),
        }
    }
    fn poll_timeout(&self) -> Option<Instant> {
        let fsm = match &self.fsm {
            ServerFsm::Invite(t) => t.poll_timeout(),
            ServerFsm::NonInvite(t) => t.poll_timeout(),
        };
        match (fsm, self.trying_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// How many emptied [`ClientTx`] boxes an endpoint keeps for reuse (~1.5 KB each).
const SPARE_CLIENT: usize = 64;

/// How many boxes of server transactions the endpoint keeps for reuse.
const SPARE_SERVER: usize = 64;

/// What a server transaction keeps once its final response is out and only its last timer is
/// left: Timer J of a non-INVITE transaction (§17.2.2, 32 s over UDP), Timer L of an INVITE
/// transaction that sent a 2xx (RFC 6026 §8.7) or Timer I after the ACK of a non-2xx (§17.2.1).
/// The request, its copied response lines and the state machine are dropped; what is left
/// answers a retransmission (the last response again, or nothing), passes an ACK for a 2xx to
/// the dialog, and lets a CANCEL find its INVITE (§9.2).
pub(crate) struct LingeringTx {
    key: ServerKey,
    /// The hash of `key` in `Endpoint::server_index`.
    key_hash: u64,
    /// Its id while it was live (the application's [`ServerTxKey`]).
    id: u64,
    /// When the transaction ends.
    deadline: Instant,
    /// Sent again for each retransmitted request; `None` where they are absorbed.
    last: Option<Bytes>,
    peer: Peer,
    kind: Linger,
    /// The To tag of its responses (a CANCEL's 200 repeats it, §9.2); empty for a non-INVITE
    /// transaction, which no CANCEL targets.
    to_tag: Box<str>,
    dialog: Option<DialogId>,
    merge_key: Option<MergeKey>,
}

/// Which state a [`LingeringTx`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Linger {
    /// Non-INVITE, Completed: a retransmitted request gets the last response again.
    NonInvite,
    /// INVITE, Accepted (RFC 6026): INVITEs are absorbed, an ACK goes to the dialog.
    InviteAccepted,
    /// INVITE, Confirmed: INVITEs and ACKs are absorbed.
    InviteConfirmed,
}

pub(crate) enum ClientFsm {
    Invite(ClientInviteTransaction),
    NonInvite(ClientNonInviteTransaction),
    /// None: what a box kept for reuse holds (`Endpoint::spare_client`), never a transaction
    /// in the table.
    Ended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Invite(DialogId),
    ReInvite(DialogId, RequestId),
    Cancel,
    Bye,
    Request(RequestId, Option<DialogId>),
    Register(RegistrationId),
    /// Branch `.1` of the proxy context keyed by its server transaction `.0` (§16.6).
    Proxy(u64, usize),
}

pub(crate) struct ClientTx {
    fsm: ClientFsm,
    peer: Peer,
    purpose: Purpose,
    /// The deadline of its newest timer-heap entry still queued.
    scheduled: Option<Instant>,
    /// Its handle in `Endpoint::client_slots`, which names it in the timer heap.
    slot: u64,
}

impl ClientTx {
    fn poll_timeout(&self) -> Option<Instant> {
        match &self.fsm {
            ClientFsm::Invite(t) => t.poll_timeout(),
            ClientFsm::NonInvite(t) => t.poll_timeout(),
            ClientFsm::Ended => None,
        }
    }
}

/// Call-level timers (not transaction timers): §13.3.1.4 2xx retransmission and ACK wait,
/// §14.1 glare back-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallTimer {
    Retransmit2xx = 0,
    AckWait = 1,
    GlareRetry = 2,
}

/// A re-INVITE waiting for its §14.1 back-off to expire.
pub(crate) struct GlareRetry {
    request: RequestId,
    headers: Vec<(String, String)>,
    body: Option<Body>,
}

pub(crate) struct Call {
    dialog: Dialog,
    peer: Peer,
    local: SocketAddr,
    confirmed: bool,
    acked: bool,
    uas: Option<Box<dyn UasHandler>>,
    uac: Option<Box<dyn UacHandler>>,
    // UAC side.
    invite: Option<Message>,
    creds: Option<Box<DigestCredentials>>,
    auth_tried: bool,
    cancel_requested: bool,
    cancel_sent: bool,
    got_provisional: bool,
    ack_cseq: u32,
    owns_call_id: bool,
    // UAS side.
    server_tx: Option<u64>,
    pending_2xx: Option<Bytes>,
    pending_2xx_cseq: u32,
    retx_interval: Duration,
    cancelled: bool,
    // Both.
    reinvite_pending: bool,
    glare: Option<Box<GlareRetry>>,
    offer: Option<Body>,
    timers: [Option<Instant>; 3],
    /// The deadline of its newest timer-heap entry still queued.
    scheduled: Option<Instant>,
    /// Where in-dialog requests go ([`uac::peer_for`]), worked out once per remote target
    /// and route set; cleared wherever those change.
    target_peer: Option<Peer>,
    /// UAC side: whether a response's To written exactly `remote_uri;tag=remote_tag` (the
    /// dialog's, as they are now) was parsed and gave that tag, so the same bytes again (the
    /// 2xx after a 180) give it without parsing ([`Call::known_to_tag`]).
    to_parsed: bool,
    /// UAS side: whether `local_uri` is the INVITE's To as validation parsed it (a name-addr
    /// without tag, ending in `>`) and `local_tag` (ours, set once) is a token, so a To of
    /// `local_uri;tag=local_tag` has our tag ([`Call::tagged_local_to`]).
    to_local: bool,
    /// UAS side: whether the INVITE's From, as validation parsed it, was exactly
    /// `remote_uri;tag=remote_tag`, so a From of those bytes needs no parsing.
    from_remote: bool,
}

/// Whether `v` is `uri;tag=tag` byte for byte, with a tag that is not empty.
fn is_tagged(v: &str, uri: &str, tag: &str) -> bool {
    v.len() == uri.len() + 5 + tag.len()
        && !tag.is_empty()
        && v.starts_with(uri)
        && v[uri.len()..].starts_with(";tag=")
        && v.ends_with(tag)
}

/// The text after the last `;tag=` of a From or To value, found among its `;` bytes (a
/// substring searcher costs more to set up than these short values take to scan): the tag when
/// the value is `uri;tag=tag`, a candidate otherwise.
fn last_tag(v: &str) -> Option<&str> {
    let b = v.as_bytes();
    let at = memchr::memrchr_iter(b';', b).find(|&i| b.get(i + 1..i + 5) == Some(b"tag="))?;
    v.get(at + 5..)
}

impl Call {
    /// Whether a From or To value `v` is the dialog's `remote_uri;tag=remote_tag`, byte for
    /// byte (the peer's To at the UAC, its From at the UAS).
    fn is_remote(&self, v: &str) -> bool {
        is_tagged(v, &self.dialog.remote_uri, &self.dialog.remote_tag)
    }

    /// The tag of a response's To value `v` when it is the bytes a parsed To had before (see
    /// `to_parsed`): what parsing it gives (§12.1.2), read without parsing. `None`: parse it.
    fn known_to_tag<'v>(&self, v: Option<&'v str>) -> Option<&'v str> {
        let v = v.filter(|v| self.to_parsed && self.is_remote(v))?;
        v.get(v.len() - self.dialog.remote_tag.len()..)
    }

    /// Records, after the dialog took the tag parsed from To value `v`, whether `v` is the
    /// dialog's `remote_uri;tag=remote_tag`.
    fn note_parsed_to(&mut self, v: Option<&str>) {
        self.to_parsed = v.is_some_and(|v| self.is_remote(v));
    }

    /// Whether To value `v` is `local_uri;tag=local_tag` byte for byte with `local_uri` as
    /// validation parsed it (see `to_local`): parsing `v` then gives our tag (§12.2.2), as
    /// `a_tag_after_a_bracketed_name_addr_is_its_tag` holds.
    fn tagged_local_to(&self, v: &str) -> bool {
        self.to_local && is_tagged(v, &self.dialog.local_uri, &self.dialog.local_tag)
    }

    fn new(dialog: Dialog, peer: Peer, local: SocketAddr) -> Self {
        Call {
            dialog,
            peer,
            local,
            confirmed: false,
            acked: false,
            uas: None,
            uac: None,
            invite: None,
            creds: None,
            auth_tried: false,
            cancel_requested: false,
            cancel_sent: false,
            got_provisional: false,
            ack_cseq: 0,
            owns_call_id: false,
            server_tx: None,
            pending_2xx: None,
            pending_2xx_cseq: 0,
            retx_interval: Duration::ZERO,
            cancelled: false,
            reinvite_pending: false,
            glare: None,
            offer: None,
            timers: [None; 3],
            scheduled: None,
            target_peer: None,
            to_parsed: false,
            to_local: false,
            from_remote: false,
        }
    }

    fn next_timeout(&self) -> Option<Instant> {
        self.timers.iter().flatten().min().copied()
    }

    /// Where in-dialog requests go (§12.2.1.1, §8.1.2), cached until the target changes.
    fn target_peer(&mut self) -> Peer {
        if let Some(p) = self.target_peer {
            return p;
        }
        let p = uac::peer_for(&self.dialog, self.peer);
        self.target_peer = Some(p);
        p
    }
}

pub(crate) use timers::TimerRef;
use timers::{ClientSlots, TimerHeap, TimerKind};

struct Conn {
    decoder: StreamDecoder,
    local: SocketAddr,
    remote: SocketAddr,
    transport: Transport,
}

/// Sizes for the memory figures of the bench: bytes of the per-dialog and per-transaction
/// records, their heap parts estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryStats {
    /// Live calls.
    pub dialogs: usize,
    /// Live transactions (server + client).
    pub transactions: usize,
    /// Estimated bytes held by all calls (struct + heap + index entry).
    pub dialog_bytes: usize,
    /// Estimated bytes held by all transactions (struct + stored messages + index entry).
    pub transaction_bytes: usize,
}

/// The sans-IO SIP endpoint (user agent client and server cores, §8).
///
/// # The drain rule
///
/// After **every** call that mutates the endpoint (`handle_*` or a command such as
/// [`Endpoint::invite`] or [`Endpoint::respond`]) the driver drains the outputs until none is
/// left: [`Endpoint::poll_transmit`] until `None` (send each [`Transmit`]),
/// [`Endpoint::poll_event`] until `None`, then reads [`Endpoint::poll_timeout`] and sleeps
/// until that instant or the next input, whichever comes first, and calls
/// [`Endpoint::handle_timeout`]. Early or repeated `handle_timeout` calls are harmless.
///
/// ```
/// use parrot_proto::{Endpoint, EndpointConfig, InviteRequest, Transport};
/// use std::time::Instant;
/// let mut ep = Endpoint::new(EndpointConfig::default(), 7u64);
/// let now = Instant::now(); // the adapter's clock; the core never reads one
/// let dst = "192.0.2.2:5060".parse().unwrap();
/// let call = ep
///     .invite(now, InviteRequest::new("sip:alice@192.0.2.1", "sip:bob@192.0.2.2", dst, Transport::Udp))
///     .unwrap();
/// while let Some(t) = ep.poll_transmit() {
///     assert_eq!(t.dst, dst); // the adapter sends t.payload on its socket
/// }
/// while let Some(_event) = ep.poll_event() {}
/// let wake_at = ep.poll_timeout().expect("timer A and B are armed");
/// ep.handle_timeout(wake_at); // timer A: the INVITE is retransmitted
/// assert!(ep.poll_transmit().is_some());
/// # let _ = call;
/// ```
///
/// Nothing here reads a clock, opens a socket or draws entropy other than from the RNG given to
/// [`Endpoint::new`]: the same inputs give the same outputs.
pub struct Endpoint {
    cfg: EndpointConfig,
    rng: Box<dyn RngCore + Send>,
    factory: Option<Box<dyn UasHandlerFactory>>,
    default_handler: Option<Box<dyn UasHandler>>,
    /// Boxed: a server transaction is ~1 KB, and moving them all each time the table grows
    /// stalled the loop long enough to overflow a socket's receive buffer under load.
    server_txs: HashMap<u64, Box<ServerTx>>,
    /// Server transactions past their final response, waiting only for their last timer, one
    /// queue per [`Linger`] kind, in deadline order (see [`linger`]). A busy server keeps
    /// hundreds of thousands of these (two per call for 32 s); they are found through the
    /// indexes by a handle ([`linger::handle`]), not by a table keyed by their ids, and their
    /// deadlines stay out of the timer heap, whose pops over hundreds of thousands of entries
    /// cost a core a tenth of its time at 4,000 calls/s.
    lingering: [linger::LingerQueue; 3],
    /// The ids of the lingering transactions (an application may name one in `respond`).
    lingering_ids: linger::IdSet,
    /// Boxes of ended client transactions, their state machine dropped
    /// ([`ClientFsm::Ended`]), for the next ones. At most [`SPARE_CLIENT`].
    #[allow(clippy::vec_box)] // the boxes are what is kept: each goes back into `client_txs`
    spare_client: Vec<Box<ClientTx>>,
    /// Boxes of response heads their transactions let go at their final response, kept for
    /// the next transaction that makes one (a few: heads live from a provisional response
    /// to the final one).
    #[allow(clippy::vec_box)] // the boxes are what is kept
    spare_heads: Vec<Box<crate::builder::ResponseHead>>,
    /// Boxes of server transactions that went on lingering, their parts dropped (a blank key
    /// and request, a fresh state machine), for the next ones. At most [`SPARE_SERVER`].
    #[allow(clippy::vec_box)] // the boxes are what is kept: each goes back into `server_txs`
    spare_server: Vec<Box<ServerTx>>,
    /// The request a box in `spare_server` holds: an empty response, no one's bytes. `None`
    /// (never, as it parses) keeps no boxes.
    blank: Option<Message>,
    server_index: server_index::ServerIndex,
    merge_index: server_index::HashIndex<MergeKey>,
    client_txs: HashMap<ClientKey, Box<ClientTx>>,
    calls: HashMap<DialogId, Call>,
    by_tag: TagIndex,
    registrations: HashMap<RegistrationId, Registration>,
    digest: HashMap<String, DigestSession>,
    conns: HashMap<ConnectionId, Conn>,
    proxies: HashMap<u64, proxy::ProxyContext>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    next_id: u64,
    scratch: Vec<TxOutput>,
    /// The buffer responses are written into, each split off as its own [`Bytes`]: one
    /// allocation per [`crate::builder::WIRE_CHUNK`] bytes of responses instead of two per
    /// response (its buffer, and the shared header its first clone makes).
    wire: bytes::BytesMut,
    prefix_cache: Vec<(SocketAddr, Transport, (String, String))>,
    /// Which configured texts our responses copy are free of line breaks, read once: the
    /// configuration does not change after [`Endpoint::new`].
    plain_cfg: PlainConfig,
    timer_heap: TimerHeap,
    /// The keys of live client transactions by slot, for the heap's entries.
    client_slots: ClientSlots,
    /// Scratch list of due heap entries (kept to reuse its allocation).
    due: Vec<TimerRef>,
    /// The header buffers of the last request built, for the next one.
    builder_bufs: Option<crate::builder::Buffers>,
    /// Overload shedding ([`EndpointConfig::shed_after`]): when the first datagram since the
    /// caller last found its receive queue empty came (`None`: the queue was found empty and
    /// nothing came since, or the caller never reports).
    backlog_since: Option<Instant>,
    /// Datagrams taken since then.
    backlog_len: u32,
    /// The caller reports empty receive queues: only then can a backlog be told.
    queue_reported: bool,
    /// Requests answered 503 by overload shedding, since the endpoint was made.
    shed: u64,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("server_transactions", &self.server_txs.len())
            .field("client_transactions", &self.client_txs.len())
            .field("calls", &self.calls.len())
            .field("registrations", &self.registrations.len())
            .finish()
    }
}

/// A seed or an RNG for [`Endpoint::new`].
pub enum RngSource {
    /// A seed for the built-in deterministic generator (SplitMix64).
    Seed(u64),
    /// A caller's generator.
    Rng(Box<dyn RngCore + Send>),
}

impl From<u64> for RngSource {
    fn from(s: u64) -> Self {
        RngSource::Seed(s)
    }
}

impl From<Box<dyn RngCore + Send>> for RngSource {
    fn from(r: Box<dyn RngCore + Send>) -> Self {
        RngSource::Rng(r)
    }
}

/// SplitMix64: a small, seeded, deterministic generator for branches, tags and Call-IDs.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl RngCore for SplitMix64 {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

impl Endpoint {
    // ---- construction and getters -------------------------------------------------------

    /// A new endpoint. `rng` is a seed (`42u64.into()`) or a boxed [`RngCore`]; it is the only
    /// source of randomness (branches, tags, Call-IDs, cnonces, glare back-off).
    pub fn new(config: EndpointConfig, rng: impl Into<RngSource>) -> Self {
        // The tables' hash seeds come from their own generator, so the branches, tags and
        // Call-IDs drawn from a seeded `rng` are the same as without it.
        let (rng, mut seeds): (Box<dyn RngCore + Send>, SplitMix64) = match rng.into() {
            RngSource::Seed(s) => (
                Box::new(SplitMix64(s)),
                SplitMix64(s ^ 0x7AB1_E5EE_D5A1_7000),
            ),
            RngSource::Rng(mut r) => {
                let s = r.next_u64();
                (r, SplitMix64(s))
            }
        };
        let seeds = &mut seeds;
        // The indexes hold every live and lingering server transaction.
        let expected = config.max_lingering.saturating_add(config.max_transactions);
        let plain_cfg = PlainConfig::of(&config);
        Endpoint {
            cfg: config,
            plain_cfg,
            rng,
            factory: None,
            default_handler: None,
            server_txs: table(seeds),
            lingering: Default::default(),
            lingering_ids: Default::default(),
            spare_client: Vec::new(),
            spare_heads: Vec::new(),
            spare_server: Vec::new(),
            blank: Message::parse(Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n")).ok(),
            server_index: server_index::ServerIndex::new(seeds.next_u64(), seeds.next_u64())
                .expecting(expected),
            merge_index: server_index::HashIndex::new(seeds.next_u64(), seeds.next_u64())
                .expecting(expected),
            client_txs: table(seeds),
            calls: table(seeds),
            by_tag: TagIndex::new(seeds),
            registrations: table(seeds),
            digest: table(seeds),
            conns: table(seeds),
            proxies: table(seeds),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_id: 1,
            scratch: Vec::new(),
            wire: bytes::BytesMut::new(),
            prefix_cache: Vec::new(),
            timer_heap: TimerHeap::default(),
            client_slots: ClientSlots::default(),
            due: Vec::new(),
            builder_bufs: None,
            backlog_since: None,
            backlog_len: 0,
            queue_reported: false,
            shed: 0,
        }
    }

    /// Installs the factory that makes a [`UasHandler`] per incoming call (and one
    /// endpoint-wide instance for requests outside dialogs). Without one, incoming INVITEs are
    /// only reported as [`Event::IncomingCall`] and answered with [`Endpoint::respond`], and
    /// other requests get 501.
    pub fn set_uas_handler_factory(&mut self, factory: impl UasHandlerFactory + 'static) {
        self.factory = Some(Box::new(factory));
        self.default_handler = None;
    }

    /// The configuration.
    pub fn config(&self) -> &EndpointConfig {
        &self.cfg
    }

    /// Live server transactions.
    pub fn server_transactions(&self) -> usize {
        self.server_txs.len() + self.lingering_len()
    }

    /// Lingering server transactions.
    fn lingering_len(&self) -> usize {
        self.lingering.iter().map(|q| q.len()).sum()
    }

    /// Live client transactions.
    pub fn client_transactions(&self) -> usize {
        self.client_txs.len()
    }

    /// Live calls (early or confirmed dialogs and pending INVITEs).
    pub fn dialogs(&self) -> usize {
        self.calls.len()
    }

    /// Live registrations.
    pub fn registrations(&self) -> usize {
        self.registrations.len()
    }

    /// Whether every table is empty (no transaction, call or registration).
    pub fn is_idle(&self) -> bool {
        self.server_txs.is_empty()
            && self.lingering_len() == 0
            && self.client_txs.is_empty()
            && self.client_slots.is_empty()
            && self.calls.is_empty()
            && self.registrations.is_empty()
            && self.server_index.is_empty()
            && self.by_tag.is_empty()
            && self.merge_index.is_empty()
            && self.proxies.is_empty()
    }

    /// Live proxy contexts (requests being forwarded statefully, §16).
    pub fn proxy_contexts(&self) -> usize {
        self.proxies.len()
    }

    /// The ids of every live call.
    pub fn dialog_ids(&self) -> Vec<DialogId> {
        let mut v: Vec<DialogId> = self.calls.keys().copied().collect();
        v.sort();
        v
    }

    /// The ids of every live registration.
    pub fn registration_ids(&self) -> Vec<RegistrationId> {
        let mut v: Vec<RegistrationId> = self.registrations.keys().copied().collect();
        v.sort();
        v
    }

    /// The keys of server transactions still waiting for a final response.
    pub fn pending_server_transactions(&self) -> Vec<ServerTxKey> {
        let mut v: Vec<ServerTxKey> = self
            .server_txs
            .iter()
            .filter(|(_, t)| !t.has_final())
            .map(|(k, _)| ServerTxKey(*k))
            .collect();
        v.sort();
        v
    }

    /// The dialog state of a call.
    pub fn dialog(&self, id: DialogId) -> Option<&Dialog> {
        self.calls.get(&id).map(|c| &c.dialog)
    }

    /// Estimated memory held by calls and transactions.
    pub fn memory_stats(&self) -> MemoryStats {
        let call_sz = std::mem::size_of::<Call>() + std::mem::size_of::<(DialogId, Call)>();
        let idx = TagIndex::entry_size();
        let dialog_bytes = self
            .calls
            .values()
            .map(|c| {
                call_sz
                    + idx
                    + c.dialog.heap_bytes()
                    // The index's copy of the tag is inline unless long.
                    + Some(c.dialog.local_tag.len()).filter(|&n| n > 14).unwrap_or(0)
                    + c.invite.as_ref().map(|m| m.len() + 512).unwrap_or(0)
                    + c.pending_2xx.as_ref().map(|b| b.len()).unwrap_or(0)
                    + c.offer.as_ref().map(|b| b.bytes.len()).unwrap_or(0)
            })
            .sum();
        let stx = std::mem::size_of::<(u64, ServerTx)>() + std::mem::size_of::<(ServerKey, u64)>();
        let ctx = std::mem::size_of::<(ClientKey, ClientTx)>();
        let transaction_bytes = self
            .server_txs
            .values()
            .map(|t| {
                stx + t.request.len() * 2
                    + 512
                    + t.key.heap_bytes() * 2
                    + t.head.as_ref().map_or(0, |h| {
                        std::mem::size_of::<crate::builder::ResponseHead>() + h.heap_bytes()
                    })
            })
            .sum::<usize>()
            + self
                .lingering
                .iter()
                .flat_map(|q| q.iter())
                .map(|(_, t)| {
                    // The key is held twice (here and in the index); a shared `Bytes` has a
                    // small header of its own.
                    std::mem::size_of::<Option<LingeringTx>>()
                        + std::mem::size_of::<(ServerKey, u64)>()
                        + t.key.heap_bytes() * 2
                        + t.last.as_ref().map_or(0, |b| b.len() + 32)
                        + t.to_tag.len()
                        + t.merge_key.as_ref().map_or(0, MergeKey::heap_bytes)
                })
                .sum::<usize>()
            // Its slot in its queue is counted above: the queues' slack (the unfilled end
            // block, emptied slots, two spare blocks, each block 1,024 slots) is not.
            + self.lingering_ids.heap_bytes()
            + self
                .client_txs
                .keys()
                .map(|k| ctx + k.heap_bytes() + 1024)
                .sum::<usize>();
        MemoryStats {
            dialogs: self.calls.len(),
            transactions: self.server_txs.len() + self.lingering_len() + self.client_txs.len(),
            dialog_bytes,
            transaction_bytes,
        }
    }

    // ---- inputs ---------------------------------------------------------------------------

    /// A datagram arrived (UDP, or one WebSocket message) from `remote` on our `local` address.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        transport: Transport,
        data: Bytes,
    ) {
        if self.backlog_since.is_none() {
            self.backlog_since = Some(now);
        }
        self.backlog_len = self.backlog_len.saturating_add(1);
        if data.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            return; // keep-alive (RFC 5626 §3.5.1)
        }
        let Ok(msg) = Message::parse_with(data, &self.cfg.limits) else {
            return; // unframeable: nothing to answer to (§18.3 discards)
        };
        let peer = Peer {
            addr: remote,
            transport,
            conn: None,
        };
        self.handle_message(now, msg, peer, local);
    }

    /// The caller read its datagram socket(s) until nothing was left: whatever came before is
    /// handled. Reported each time, this lets the endpoint shed new requests while it is
    /// behind ([`EndpointConfig::shed_after`]).
    pub fn receive_queue_empty(&mut self) {
        self.backlog_since = None;
        self.backlog_len = 0;
        self.queue_reported = true;
    }

    /// Whether a new request outside a dialog arriving at `now` is answered 503 because the
    /// receive queue has not emptied for [`EndpointConfig::shed_after`] (§21.5.4).
    pub fn is_shedding(&self, now: Instant) -> bool {
        match (self.cfg.shed_after, self.backlog_since) {
            (Some(after), Some(since)) if self.queue_reported => {
                self.backlog_len >= self.cfg.shed_backlog
                    && now.saturating_duration_since(since) >= after
            }
            _ => false,
        }
    }

    /// How many requests overload shedding has answered 503 so far.
    pub fn shed_requests(&self) -> u64 {
        self.shed
    }

    /// One whole SIP message arrived on a message-framed connection: a WebSocket message
    /// (RFC 7118 §5.2, where Content-Length is optional). Responses and requests for the peer go
    /// back on the same connection. Unknown connections are ignored.
    pub fn handle_message_on_connection(&mut self, now: Instant, conn: ConnectionId, data: Bytes) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let (local, remote, transport) = (c.local, c.remote, c.transport);
        if data.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            return; // keep-alive
        }
        let Ok(msg) = Message::parse_with(data, &self.cfg.limits) else {
            return;
        };
        let peer = Peer {
            addr: remote,
            transport,
            conn: Some(conn),
        };
        self.handle_message(now, msg, peer, local);
    }

    /// A stream connection (TCP, TLS, WS) was opened, by us or the peer.
    pub fn handle_connection_opened(
        &mut self,
        conn: ConnectionId,
        local: SocketAddr,
        remote: SocketAddr,
        transport: Transport,
    ) {
        self.conns.insert(
            conn,
            Conn {
                decoder: StreamDecoder::with_limits(self.cfg.limits),
                local,
                remote,
                transport,
            },
        );
    }

    /// A stream connection closed. Transactions that send on it fall back to a new connection
    /// (the adapter gets transmits with `conn: None`).
    pub fn handle_connection_closed(&mut self, conn: ConnectionId) {
        self.conns.remove(&conn);
    }

    /// Bytes arrived on a stream connection; they are framed with a [`StreamDecoder`] (§18.3).
    /// Unknown connections are ignored: call [`Endpoint::handle_connection_opened`] first.
    pub fn handle_stream_bytes(&mut self, now: Instant, conn: ConnectionId, data: &[u8]) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.decoder.push(data);
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            let (local, remote, transport) = (c.local, c.remote, c.transport);
            match c.decoder.decode() {
                Ok(None) => return,
                Ok(Some(StreamItem::Message(m))) => {
                    let peer = Peer {
                        addr: remote,
                        transport,
                        conn: Some(conn),
                    };
                    self.handle_message(now, m, peer, local);
                }
                Ok(Some(StreamItem::Ping)) => self.transmits.push_back(Transmit {
                    dst: remote,
                    transport,
                    conn: Some(conn),
                    payload: Bytes::from_static(StreamDecoder::PONG),
                }),
                Ok(Some(StreamItem::Pong)) => {}
                Err(_) => {
                    self.conns.remove(&conn);
                    self.events.push_back(Event::TransportError {
                        dst: remote,
                        transport,
                        conn: Some(conn),
                    });
                    return;
                }
            }
        }
    }

    /// The adapter could not send to `dst` (ICMP unreachable, connect refused). Every
    /// transaction sending there terminates and reports the failure (§8.1.3.1, §17.1.4).
    pub fn handle_transport_error(&mut self, now: Instant, dst: SocketAddr, transport: Transport) {
        self.events.push_back(Event::TransportError {
            dst,
            transport,
            conn: None,
        });
        let keys: Vec<ClientKey> = self
            .client_txs
            .iter()
            .filter(|(_, t)| t.peer.addr == dst && t.peer.transport == transport)
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            let mut out = std::mem::take(&mut self.scratch);
            if let Some(t) = self.client_txs.get_mut(&k) {
                match &mut t.fsm {
                    ClientFsm::Invite(f) => f.on_transport_error(&mut out),
                    ClientFsm::NonInvite(f) => f.on_transport_error(&mut out),
                    ClientFsm::Ended => {}
                }
            }
            self.run_client_outputs(now, &k, &mut out, true);
            self.scratch = out;
        }
        let ids: Vec<u64> = self
            .server_txs
            .iter()
            .filter(|(_, t)| t.peer.addr == dst && t.peer.transport == transport)
            .map(|(k, _)| *k)
            .collect();
        for id in ids {
            let mut out = std::mem::take(&mut self.scratch);
            if let Some(t) = self.server_txs.get_mut(&id) {
                match &mut t.fsm {
                    ServerFsm::Invite(f) => f.on_transport_error(&mut out),
                    ServerFsm::NonInvite(f) => f.on_transport_error(&mut out),
                }
            }
            self.run_server_outputs(now, id, &mut out);
            self.scratch = out;
        }
        // A lingering transaction terminates as its state machine would (§17.2.4).
        let handles: Vec<u64> = (self.lingering.iter())
            .flat_map(|q| q.iter())
            .filter(|(_, t)| t.peer.addr == dst && t.peer.transport == transport)
            .map(|(seq, t)| linger::handle(t.kind, seq))
            .collect();
        for h in handles {
            self.end_lingering(h);
        }
    }

    /// Time passed. Runs every expired timer; early or repeated calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire_lingering(now);
        // Everything due, each entity once; entries whose entity moved on are stale and skipped.
        let mut due = std::mem::take(&mut self.due);
        while let Some(e) = self.timer_heap.pop_due(now) {
            let what = match e.kind() {
                TimerKind::Server => TimerRef::Server(e.id()),
                TimerKind::Client => match self.client_slots.get(e.id()) {
                    Some(k) => TimerRef::Client(k.clone()),
                    // The transaction ended.
                    None => continue,
                },
                TimerKind::Call => TimerRef::Call(DialogId(e.id())),
                TimerKind::Registration => TimerRef::Registration(RegistrationId(e.id())),
            };
            // The entry leaves the heap: a later deadline equal to it must be pushed again.
            if let Some(s) = self.scheduled_mut(&what) {
                if *s == Some(e.at) {
                    *s = None;
                }
            }
            due.push(what);
        }
        for what in due.drain(..) {
            // Transactions are checked with the lookup that runs them; other entities first.
            if matches!(what, TimerRef::Call(_) | TimerRef::Registration(_))
                && self.deadline_of(&what).is_none_or(|at| at > now)
            {
                continue;
            }
            match what {
                TimerRef::Server(id) => {
                    let Some(t) = self.server_txs.get_mut(&id) else {
                        continue;
                    };
                    if t.poll_timeout().is_none_or(|at| at > now) {
                        continue;
                    }
                    let trying = t.trying_at.take_if(|at| *at <= now);
                    if trying.is_some() {
                        // No response went within the delay: the 100 the INVITE held back.
                        self.respond_tx_inner(now, id, Reply::new(100), false);
                    }
                    let mut out = std::mem::take(&mut self.scratch);
                    if let Some(t) = self.server_txs.get_mut(&id) {
                        match &mut t.fsm {
                            ServerFsm::Invite(f) => f.on_timeout(now, &mut out),
                            ServerFsm::NonInvite(f) => f.on_timeout(now, &mut out),
                        }
                    }
                    self.run_server_outputs(now, id, &mut out);
                    self.scratch = out;
                }
                TimerRef::Client(k) => {
                    let Some(t) = self.client_txs.get_mut(&k) else {
                        continue;
                    };
                    if t.poll_timeout().is_none_or(|at| at > now) {
                        continue;
                    }
                    let mut out = std::mem::take(&mut self.scratch);
                    match &mut t.fsm {
                        ClientFsm::Invite(f) => f.on_timeout(now, &mut out),
                        ClientFsm::NonInvite(f) => f.on_timeout(now, &mut out),
                        ClientFsm::Ended => {}
                    }
                    let (peer, purpose) = Self::schedule_client(&mut self.timer_heap, t);
                    self.client_outputs(now, &k, peer, purpose, &mut out, false);
                    self.scratch = out;
                }
                TimerRef::Call(id) => {
                    self.on_call_timers(now, id);
                    self.schedule(TimerRef::Call(id));
                }
                TimerRef::Registration(id) => {
                    self.on_registration_timer(now, id);
                    self.schedule(TimerRef::Registration(id));
                }
            }
        }
        self.due = due;
    }

    /// Where an entity remembers the deadline of its newest queued heap entry.
    fn scheduled_mut(&mut self, what: &TimerRef) -> Option<&mut Option<Instant>> {
        match what {
            TimerRef::Server(id) => self.server_txs.get_mut(id).map(|t| &mut t.scheduled),
            TimerRef::Client(k) => self.client_txs.get_mut(k).map(|t| &mut t.scheduled),
            TimerRef::Call(d) => self.calls.get_mut(d).map(|c| &mut c.scheduled),
            TimerRef::Registration(_) => None,
        }
    }

    /// The entity's current deadline, if it still exists and has one.
    fn deadline_of(&self, what: &TimerRef) -> Option<Instant> {
        match what {
            // A lingering one is timed by its lingering queue: its old heap entries are stale.
            TimerRef::Server(id) => self.server_txs.get(id).and_then(|t| t.poll_timeout()),
            TimerRef::Client(k) => self.client_txs.get(k).and_then(|t| t.poll_timeout()),
            TimerRef::Call(d) => self.calls.get(d).and_then(Call::next_timeout),
            TimerRef::Registration(r) => self.registrations.get(r).and_then(|r| r.refresh_at),
        }
    }

    /// Records the entity's deadline in the timer heap; called wherever it may have changed.
    /// An entity whose deadline is already queued is not pushed again.
    pub(crate) fn schedule(&mut self, what: TimerRef) {
        // One lookup for the entity, its deadline and the deadline it has queued. A lingering
        // server transaction (timed by its lingering queue) or a gone entity has no entry.
        let (at, queued, kind, id) = match &what {
            TimerRef::Server(id) => {
                let Some(t) = self.server_txs.get_mut(id) else {
                    return;
                };
                (
                    t.poll_timeout(),
                    Some(&mut t.scheduled),
                    TimerKind::Server,
                    *id,
                )
            }
            TimerRef::Client(k) => {
                let Some(t) = self.client_txs.get_mut(k) else {
                    return;
                };
                let slot = t.slot;
                (
                    t.poll_timeout(),
                    Some(&mut t.scheduled),
                    TimerKind::Client,
                    slot,
                )
            }
            TimerRef::Call(d) => {
                let Some(c) = self.calls.get_mut(d) else {
                    return;
                };
                (
                    c.next_timeout(),
                    Some(&mut c.scheduled),
                    TimerKind::Call,
                    d.0,
                )
            }
            TimerRef::Registration(r) => (
                self.registrations.get(r).and_then(|r| r.refresh_at),
                None,
                TimerKind::Registration,
                r.0,
            ),
        };
        let Some(at) = at else { return };
        if let Some(s) = queued {
            if *s == Some(at) {
                return;
            }
            *s = Some(at);
        }
        self.timer_heap.push(at, kind, id);
    }

    // ---- outputs --------------------------------------------------------------------------

    /// The next message to send, if any.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest deadline: call [`Endpoint::handle_timeout`] then (or on the next input).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        // The earliest of the heap's and the lingering queues', compared as they come.
        let mut at = self.timer_heap.next_at();
        for q in &self.lingering {
            if let Some(t) = q.next_at() {
                at = Some(at.map_or(t, |a| a.min(t)));
            }
        }
        at
    }

    // ---- internals shared by the UAS and UAC halves ------------------------------------------

    fn handle_message(&mut self, now: Instant, msg: Message, peer: Peer, local: SocketAddr) {
        if msg.is_request() {
            self.on_request(now, msg, peer, local);
        } else {
            self.on_response(now, msg, peer);
        }
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn random_hex(&mut self, n: usize) -> String {
        // Exactly `n` bytes: a tag becomes a `Box<str>` without a reallocation.
        let mut s = String::with_capacity(n);
        self.push_random_hex(&mut s, n);
        s
    }

    /// Appends `n` random hex digits.
    fn push_random_hex(&mut self, s: &mut String, n: usize) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let end = s.len() + n;
        while s.len() < end {
            let v = self.rng.next_u64();
            for i in 0..(end - s.len()).min(16) {
                s.push(HEX[((v >> (60 - 4 * i)) & 15) as usize] as char);
            }
        }
    }

    /// A fresh branch (§8.1.1.7) on the stack: what [`Endpoint::new_branch`] gives, without
    /// an allocation, for a request whose Via is written from pieces.
    fn new_branch_inline(&mut self) -> Branch {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut b = [0u8; 23];
        b[..7].copy_from_slice(crate::header::BRANCH_MAGIC_COOKIE.as_bytes());
        let v = self.rng.next_u64();
        for (i, d) in b[7..].iter_mut().enumerate() {
            *d = HEX[((v >> (60 - 4 * i)) & 15) as usize];
        }
        Branch(b)
    }

    fn new_branch(&mut self) -> String {
        let mut s = String::with_capacity(7 + 32);
        s.push_str(crate::header::BRANCH_MAGIC_COOKIE);
        self.push_random_hex(&mut s, 16);
        s
    }

    /// A fresh Call-ID: 20 random hex digits `@` our address.
    fn new_call_id(&mut self, local: SocketAddr) -> String {
        // Exactly its length for an IPv4 address: the Call-ID becomes the dialog's `Box<str>`
        // without a reallocation.
        let ip_len = match local.ip() {
            IpAddr::V4(a) => {
                3 + a
                    .octets()
                    .iter()
                    .map(|&o| 1 + usize::from(o >= 10) + usize::from(o >= 100))
                    .sum::<usize>()
            }
            IpAddr::V6(_) => 39,
        };
        let mut s = String::with_capacity(21 + ip_len);
        self.push_random_hex(&mut s, 20);
        s.push('@');
        crate::text::push_ip(&mut s, local.ip());
        s
    }

    fn new_tag(&mut self) -> String {
        self.random_hex(10)
    }

    fn local_addr(&self, transport: Transport) -> SocketAddr {
        self.cfg
            .local_addrs
            .iter()
            .find(|(t, _)| *t == transport)
            .or_else(|| self.cfg.local_addrs.first())
            .map(|(_, a)| *a)
            .unwrap_or_else(|| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 5060))
    }

    pub(crate) fn host_port(local: SocketAddr) -> String {
        match local.ip() {
            IpAddr::V4(a) => format!("{a}:{}", local.port()),
            IpAddr::V6(a) => format!("[{a}]:{}", local.port()),
        }
    }

    /// The Contact and Via prefix for an address and transport, formatted once and cached.
    fn prefixes(&mut self, local: SocketAddr, transport: Transport) -> &(String, String) {
        prefixes_in(&mut self.prefix_cache, &self.cfg, local, transport)
    }

    fn contact_for(&mut self, local: SocketAddr, transport: Transport) -> String {
        self.prefixes(local, transport).0.clone()
    }

    fn via_for(&mut self, local: SocketAddr, transport: Transport, branch: &str) -> String {
        let prefix = &self.prefixes(local, transport).1;
        let mut v = String::with_capacity(prefix.len() + branch.len() + 6);
        v.push_str(prefix);
        v.push_str(branch);
        v.push_str(";rport");
        v
    }

    fn send(&mut self, peer: Peer, payload: Bytes) {
        let conn = peer.conn.filter(|c| self.conns.contains_key(c));
        self.transmits.push_back(Transmit {
            dst: peer.addr,
            transport: peer.transport,
            conn,
            payload,
        });
    }

    /// Takes server transaction `id` in and indexes it by its key (§17.2.3), in place of any
    /// transaction with the same key.
    fn add_server_tx(&mut self, id: u64, mut tx: Box<ServerTx>) {
        tx.key_hash = self.server_index.insert(
            &tx.key,
            id,
            server_key_of(&self.server_txs, &self.lingering),
        );
        self.server_txs.insert(id, tx);
    }

    /// Drops the merged-request index entry `mk` (§8.2.2.2) if it still names transaction
    /// `id`.
    fn unmerge(&mut self, mk: MergeKey, id: u64) {
        self.merge_index.remove(&mk, id);
    }

    /// Live transactions, for [`EndpointConfig::max_transactions`] (lingering ones have their
    /// own cap).
    fn tx_count(&self) -> usize {
        self.server_txs.len() + self.client_txs.len()
    }
}

/// Parses `sip:user@host:port` into a socket address when the host is an IP literal.
pub(crate) fn uri_socket_addr(uri: &str) -> Option<SocketAddr> {
    let u = uri.trim().trim_start_matches('<');
    // Up to the first '>' (a byte search; a `char` pattern goes through the generic searcher).
    let u = u.get(..memchr::memchr(b'>', u.as_bytes()).unwrap_or(u.len()))?;
    let u = crate::Uri::parse(u).ok()?;
    let s = u.as_sip()?;
    let ip = s.host().ip()?;
    let port = s.port().unwrap_or(if s.is_secure() { 5061 } else { 5060 });
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tag_index_tests {
    use super::*;

    /// Call-IDs of live calls, for the index's `call_id_of`.
    fn live<'a>(calls: &'a [(DialogId, &'a str)]) -> impl Fn(DialogId) -> Option<&'a str> + 'a {
        move |d| calls.iter().find(|(c, _)| *c == d).map(|(_, id)| *id)
    }

    fn index(one_hash: bool) -> TagIndex {
        let mut t = TagIndex::new(&mut SplitMix64(1));
        t.one_hash = one_hash;
        t
    }

    #[test]
    fn tag_index_finds_a_call_only_by_its_call_id_and_tag() {
        for one_hash in [false, true] {
            let mut t = index(one_hash);
            let (a, b) = (DialogId(1), DialogId(2));
            t.insert("c1@h", "t1", a, live(&[]));
            let calls = [(a, "c1@h")];
            t.insert("c2@h", "t1", b, live(&calls));
            let calls = [(a, "c1@h"), (b, "c2@h")];
            assert_eq!(t.get("c1@h", "t1", live(&calls)), Some(a));
            assert_eq!(t.get("c2@h", "t1", live(&calls)), Some(b));
            assert_eq!(t.get("c1@h", "t2", live(&calls)), None);
            assert_eq!(t.get("c3@h", "t1", live(&calls)), None);
            // Call a ends: only its entry goes, even when both Call-IDs share a hash.
            let calls = [(b, "c2@h")];
            t.remove("c1@h", "t1", a, live(&calls));
            assert_eq!(t.get("c2@h", "t1", live(&calls)), Some(b));
            assert_eq!(t.get("c1@h", "t1", live(&calls)), None);
            t.remove("c2@h", "t1", b, live(&[]));
            assert!(t.is_empty(), "one_hash {one_hash}");
        }
    }

    #[test]
    fn tag_index_entry_replaced_by_a_new_call_is_removed_when_the_old_call_ends() {
        let mut t = index(false);
        let (a, b) = (DialogId(1), DialogId(2));
        t.insert("c1@h", "t1", a, live(&[]));
        // A second call under the same Call-ID and tag takes the entry over.
        let calls = [(a, "c1@h")];
        t.insert("c1@h", "t1", b, live(&calls));
        let calls = [(a, "c1@h"), (b, "c1@h")];
        assert_eq!(t.get("c1@h", "t1", live(&calls)), Some(b));
        // The first call ends: the entry of its Call-ID and tag goes (§12.2.2 keys by both).
        let calls = [(b, "c1@h")];
        t.remove("c1@h", "t1", a, live(&calls));
        assert!(t.is_empty());
    }

    #[test]
    fn tag_index_ignores_an_entry_whose_call_is_not_live() {
        let mut t = index(true);
        t.insert("c1@h", "t1", DialogId(1), live(&[]));
        assert_eq!(t.get("c1@h", "t1", live(&[])), None);
        assert_eq!(
            t.get("c1@h", "t1", live(&[(DialogId(1), "c1@h")])),
            Some(DialogId(1))
        );
    }
}

#[cfg(test)]
mod lingering_tests {
    use super::*;

    fn options(branch: &str) -> Bytes {
        Bytes::from(format!(
            "OPTIONS sip:b@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}\r\nMax-Forwards: 70\r\nFrom: <sip:a@10.0.0.1>;tag=a1\r\nTo: <sip:b@10.0.0.2>\r\nCall-ID: {branch}@10.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        ))
    }

    fn sent(ep: &mut Endpoint) -> Vec<Bytes> {
        std::iter::from_fn(|| ep.poll_transmit())
            .map(|t| t.payload)
            .collect()
    }

    fn addrs() -> (SocketAddr, SocketAddr) {
        (
            SocketAddr::from(([10, 0, 0, 1], 5060)),
            SocketAddr::from(([10, 0, 0, 2], 5060)),
        )
    }

    /// Sends OPTIONS `branch` from `from` and returns the responses.
    fn ask(ep: &mut Endpoint, now: Instant, from: SocketAddr, branch: &str) -> Vec<Bytes> {
        let b = addrs().1;
        ep.handle_datagram(now, b, from, Transport::Udp, options(branch));
        sent(ep)
    }

    #[test]
    fn lingering_transactions_end_in_the_order_they_started_at_their_timer_j() {
        let (a, _) = addrs();
        let mut ep = Endpoint::new(EndpointConfig::default(), 3u64);
        let t0 = Instant::now();
        let one = ask(&mut ep, t0, a, "z9hG4bKone");
        let two = ask(&mut ep, t0 + Duration::from_secs(1), a, "z9hG4bKtwo");
        assert_eq!(ep.lingering_len(), 2);
        assert_eq!(ep.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        // Timer J (64*T1) ends the first; the second still answers as itself.
        let now = t0 + Duration::from_millis(32_500);
        ep.handle_timeout(now);
        assert_eq!(ep.lingering_len(), 1);
        assert_eq!(ep.poll_timeout(), Some(t0 + Duration::from_secs(33)));
        assert_eq!(ask(&mut ep, now, a, "z9hG4bKtwo"), two);
        // The first request is new again: a new transaction answers it.
        assert_eq!(ask(&mut ep, now, a, "z9hG4bKone").len(), 1);
        assert_eq!(ep.lingering_len(), 2);
        ep.handle_timeout(now + Duration::from_secs(33));
        assert!(ep.is_idle());
        assert_eq!(one.len(), 1);
    }

    #[test]
    fn a_retransmission_is_answered_from_a_lingering_transaction_after_the_queue_front_advanced() {
        let (a, _) = addrs();
        let mut ep = Endpoint::new(EndpointConfig::default(), 3u64);
        let t0 = Instant::now();
        // Several blocks of the queue: the first ones end and their blocks go back.
        let n = 3000;
        let mut answers = Vec::new();
        for i in 0..n {
            let at = t0 + Duration::from_millis(i);
            answers.push(ask(&mut ep, at, a, &format!("z9hG4bK{i}")));
        }
        assert_eq!(ep.lingering_len(), n as usize);
        let now = t0 + Duration::from_millis(32_000 + 2_499);
        ep.handle_timeout(now);
        assert_eq!(ep.lingering_len(), 500);
        for i in (2500..n).step_by(97) {
            assert_eq!(
                ask(&mut ep, now, a, &format!("z9hG4bK{i}")),
                answers[i as usize]
            );
        }
        assert_eq!(ep.lingering_len(), 500, "retransmissions start nothing");
        ep.handle_timeout(now + Duration::from_secs(1));
        assert!(ep.is_idle());
    }

    #[test]
    fn transactions_ended_early_by_a_transport_error_leave_slots_that_expiry_skips() {
        let (a, _) = addrs();
        let c = SocketAddr::from(([10, 0, 0, 3], 5060));
        let mut ep = Endpoint::new(EndpointConfig::default(), 3u64);
        let t0 = Instant::now();
        let mut from_c = Vec::new();
        for i in 0..6 {
            let from = if i % 2 == 0 { a } else { c };
            let got = ask(&mut ep, t0, from, &format!("z9hG4bK{i}"));
            if from == c {
                from_c.push(got);
            }
        }
        ep.handle_transport_error(t0, a, Transport::Udp);
        while ep.poll_event().is_some() {}
        assert_eq!(ep.lingering_len(), 3);
        // C's still answer as themselves; A's are new again.
        for (k, i) in [1, 3, 5].into_iter().enumerate() {
            assert_eq!(ask(&mut ep, t0, c, &format!("z9hG4bK{i}")), from_c[k]);
        }
        assert_eq!(ep.lingering_len(), 3);
        assert_eq!(ask(&mut ep, t0, a, "z9hG4bK0").len(), 1);
        assert_eq!(ep.lingering_len(), 4);
        ep.handle_timeout(t0 + Duration::from_secs(33));
        assert!(ep.is_idle());
    }

    fn invite_like(method: &str, branch: &str) -> Bytes {
        Bytes::from(format!(
            "{method} sip:b@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}\r\nMax-Forwards: 70\r\nFrom: <sip:a@10.0.0.1>;tag=a1\r\nTo: <sip:b@10.0.0.2>\r\nCall-ID: inv@10.0.0.1\r\nCSeq: 1 {method}\r\nContact: <sip:a@10.0.0.1>\r\nContent-Length: 0\r\n\r\n"
        ))
    }

    fn to_tag(resp: &Bytes) -> String {
        let text = std::str::from_utf8(resp).unwrap();
        let line = text.lines().find(|l| l.starts_with("To:")).unwrap();
        line.split(";tag=").nth(1).unwrap().to_string()
    }

    #[test]
    fn a_lingering_invite_found_by_its_handle_answers_cancel_with_its_to_tag_and_merges() {
        struct Answer;
        impl UasHandler for Answer {
            fn handle_invite(&mut self, _r: &crate::handler::Request<'_>) -> crate::Action {
                crate::Action::respond(200)
            }
        }
        let (a, b) = addrs();
        let mut ep = Endpoint::new(EndpointConfig::default(), 3u64);
        ep.set_uas_handler_factory(|| Box::new(Answer) as Box<dyn UasHandler>);
        let now = Instant::now();
        ep.handle_datagram(
            now,
            b,
            a,
            Transport::Udp,
            invite_like("INVITE", "z9hG4bKinv"),
        );
        let ok = sent(&mut ep)
            .into_iter()
            .find(|r| r.starts_with(b"SIP/2.0 200"))
            .expect("200");
        while ep.poll_event().is_some() {}
        assert_eq!(ep.lingering[Linger::InviteAccepted as usize].len(), 1);
        // A retransmitted INVITE is absorbed.
        ep.handle_datagram(
            now,
            b,
            a,
            Transport::Udp,
            invite_like("INVITE", "z9hG4bKinv"),
        );
        assert!(sent(&mut ep).iter().all(|r| !r.starts_with(b"SIP/2.0 200")));
        // A CANCEL finds it and its 200 repeats the INVITE's To tag (§9.2).
        ep.handle_datagram(
            now,
            b,
            a,
            Transport::Udp,
            invite_like("CANCEL", "z9hG4bKinv"),
        );
        let cancel_ok = sent(&mut ep);
        assert_eq!(cancel_ok.len(), 1);
        assert!(cancel_ok[0].starts_with(b"SIP/2.0 200"));
        assert_eq!(to_tag(&cancel_ok[0]), to_tag(&ok));
        // The same request on another branch is a merged request (§8.2.2.2).
        ep.handle_datagram(
            now,
            b,
            a,
            Transport::Udp,
            invite_like("INVITE", "z9hG4bKother"),
        );
        let merged = sent(&mut ep);
        assert!(merged[0].starts_with(b"SIP/2.0 482"), "{merged:?}");
    }

    #[test]
    fn past_max_lingering_the_oldest_lingering_transaction_ends_first() {
        let (a, _) = addrs();
        let cfg = EndpointConfig {
            max_lingering: 3,
            ..EndpointConfig::default()
        };
        let mut ep = Endpoint::new(cfg, 3u64);
        let t0 = Instant::now();
        let mut answers = Vec::new();
        for i in 0..5u64 {
            let at = t0 + Duration::from_millis(i);
            answers.push(ask(&mut ep, at, a, &format!("z9hG4bK{i}")));
        }
        assert_eq!(ep.lingering_len(), 3);
        let now = t0 + Duration::from_millis(10);
        for (i, answer) in answers.iter().enumerate().skip(2) {
            assert_eq!(&ask(&mut ep, now, a, &format!("z9hG4bK{i}")), answer);
        }
        assert_eq!(ep.lingering_len(), 3);
        // The first two are gone: a new transaction answers, and pushes out the third.
        assert_eq!(ask(&mut ep, now, a, "z9hG4bK0").len(), 1);
        assert_eq!(ep.lingering_len(), 3);
        assert_eq!(ask(&mut ep, now, a, "z9hG4bK3"), answers[3]);
        assert_eq!(ask(&mut ep, now, a, "z9hG4bK2").len(), 1);
        assert_eq!(
            ep.lingering_len(),
            3,
            "the third was new again and the fourth went"
        );
    }
}

#[cfg(test)]
mod spare_client_tests {
    use super::*;

    /// Moves every datagram between `a` (at `aa`) and `b` (at `ba`) until none is left.
    fn pump(now: Instant, a: &mut Endpoint, aa: SocketAddr, b: &mut Endpoint, ba: SocketAddr) {
        loop {
            let mut moved = false;
            while let Some(t) = a.poll_transmit() {
                moved = true;
                b.handle_datagram(now, ba, aa, Transport::Udp, t.payload);
            }
            while let Some(t) = b.poll_transmit() {
                moved = true;
                a.handle_datagram(now, aa, ba, Transport::Udp, t.payload);
            }
            if !moved {
                return;
            }
        }
    }

    fn answered(ep: &mut Endpoint) -> Vec<RequestId> {
        std::iter::from_fn(|| ep.poll_event())
            .filter_map(|e| match e {
                Event::ResponseReceived { request, .. } => Some(request),
                _ => None,
            })
            .collect()
    }

    /// Two endpoints on UDP, at 10.0.0.1 and 10.0.0.2: their addresses, then the endpoints.
    fn udp_pair() -> (SocketAddr, SocketAddr, Endpoint, Endpoint) {
        let (aa, ba) = (
            SocketAddr::from(([10, 0, 0, 1], 5060)),
            SocketAddr::from(([10, 0, 0, 2], 5060)),
        );
        let cfg = |addr| EndpointConfig {
            local_addrs: vec![(Transport::Udp, addr)],
            ..EndpointConfig::default()
        };
        (
            aa,
            ba,
            Endpoint::new(cfg(aa), 1u64),
            Endpoint::new(cfg(ba), 2u64),
        )
    }

    #[test]
    fn an_ended_client_transaction_lends_its_box_to_the_next_which_runs_as_itself() {
        let (aa, ba, mut a, mut b) = udp_pair();
        let mut now = Instant::now();
        let first = a
            .options(now, "sip:b@10.0.0.2", ba, Transport::Udp)
            .unwrap();
        pump(now, &mut a, aa, &mut b, ba);
        assert_eq!(answered(&mut a), vec![first]);
        assert!(a.spare_client.is_empty(), "Timer K still runs");
        now += Duration::from_secs(6);
        a.handle_timeout(now);
        assert_eq!(a.client_transactions(), 0);
        assert_eq!(a.spare_client.len(), 1);
        assert!(matches!(a.spare_client[0].fsm, ClientFsm::Ended));
        let second = a
            .options(now, "sip:b@10.0.0.2", ba, Transport::Udp)
            .unwrap();
        assert!(a.spare_client.is_empty(), "the box was taken");
        // The new transaction retransmits on its own Timer E and takes its own response.
        let e = a.poll_timeout().unwrap();
        a.handle_timeout(e);
        pump(e, &mut a, aa, &mut b, ba);
        assert_eq!(answered(&mut a), vec![second]);
        now = e + Duration::from_secs(40);
        a.handle_timeout(now);
        b.handle_timeout(now);
        assert!(a.is_idle() && b.is_idle());
    }

    #[test]
    fn a_lingering_server_transaction_lends_its_box_to_the_next_which_runs_as_itself() {
        let (aa, ba, mut a, mut b) = udp_pair();
        let now = Instant::now();
        let first = a
            .options(now, "sip:b@10.0.0.2", ba, Transport::Udp)
            .unwrap();
        pump(now, &mut a, aa, &mut b, ba);
        assert_eq!(answered(&mut a), vec![first]);
        // Answered, it lingers; its box is kept with none of its request's bytes.
        assert_eq!(b.spare_server.len(), 1);
        let blank = b.blank.as_ref().map(Message::len);
        assert_eq!(Some(b.spare_server[0].request.len()), blank);
        // The next request's transaction runs in that box: answered, then its retransmission
        // gets the same answer again from its own lingering state.
        let second = a
            .options(now, "sip:b@10.0.0.2", ba, Transport::Udp)
            .unwrap();
        let req = a.poll_transmit().unwrap().payload;
        b.handle_datagram(now, ba, aa, Transport::Udp, req.clone());
        let answer = b.poll_transmit().unwrap().payload;
        assert_eq!(b.spare_server.len(), 1, "the box was taken and given back");
        b.handle_datagram(now, ba, aa, Transport::Udp, req);
        assert_eq!(b.poll_transmit().unwrap().payload, answer);
        a.handle_datagram(now, aa, ba, Transport::Udp, answer);
        assert_eq!(answered(&mut a), vec![second]);
        let later = now + Duration::from_secs(40);
        a.handle_timeout(later);
        b.handle_timeout(later);
        assert!(a.is_idle() && b.is_idle());
    }
}

#[cfg(test)]
mod send_tests {
    #[test]
    fn endpoint_is_send_so_it_can_live_in_a_runtime_task() {
        fn assert_send<T: Send>() {}
        assert_send::<super::Endpoint>();
    }
}

#[cfg(test)]
mod branch_tests {
    use super::*;

    #[test]
    fn call_ids_are_allocated_at_their_length() {
        let mut ep = Endpoint::new(EndpointConfig::default(), 5u64);
        for ip in [
            [10, 0, 0, 1],
            [192, 168, 100, 255],
            [0, 0, 0, 0],
            [1, 22, 99, 100],
        ] {
            let c = ep.new_call_id(SocketAddr::from((ip, 5060)));
            assert_eq!(c.len(), c.capacity(), "{c}");
            assert!(c.ends_with(&format!("@{}", Ipv4Addr::from(ip))));
        }
    }

    #[test]
    fn inline_branches_are_the_branches_the_rng_gives() {
        let mut a = Endpoint::new(EndpointConfig::default(), 7u64);
        let mut b = Endpoint::new(EndpointConfig::default(), 7u64);
        for _ in 0..4 {
            let inline = a.new_branch_inline();
            assert_eq!(inline.as_str(), b.new_branch());
            assert!(inline
                .as_str()
                .starts_with(crate::header::BRANCH_MAGIC_COOKIE));
        }
    }
}

#[cfg(test)]
mod known_to_tests {
    use super::*;
    use crate::dialog::{DialogState, Role};
    use crate::HeaderName;

    fn call(remote_uri: &str) -> Call {
        let dialog = Dialog {
            state: DialogState::Early,
            role: Role::Uac,
            call_id: "c".into(),
            local_tag: "1".into(),
            remote_tag: "".into(),
            local_uri: "<sip:a@h>".into(),
            remote_uri: remote_uri.into(),
            remote_target: "sip:b@h".into(),
            route_set: Vec::new(),
            local_cseq: 1,
            remote_cseq: None,
        };
        let addr = SocketAddr::from(([10, 0, 0, 1], 5060));
        let peer = Peer {
            addr,
            transport: Transport::Udp,
            conn: None,
        };
        Call::new(dialog, peer, addr)
    }

    proptest::proptest! {
        /// A To value read without parsing, as the bytes of one parsed before, gives the tag
        /// parsing gives; other bytes, or any before one was parsed, are parsed.
        #[test]
        fn a_known_to_gives_the_tag_parsing_gives(
            uri in proptest::prop_oneof!["<sip:b@h>", "sip:b@h", "\"B\" <sip:b@h;lr>", "[ -~]{0,16}"],
            tag in "[ -~]{0,12}",
            other in "[ -~]{0,12}",
        ) {
            let mut c = call(&uri);
            let v = format!("{uri};tag={tag}");
            let text = format!("SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@h>;tag=1\r\nTo: {v}\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
            let Ok(m) = Message::parse(text.into_bytes()) else {
                return Ok(());
            };
            let line = m.header(HeaderName::To);
            proptest::prop_assert_eq!(c.known_to_tag(line), None);
            // What the UAC does with a 1xx: parse, take the tag, remember the bytes.
            let parsed = m.to_header().ok();
            if let Some(t) = parsed.as_ref().and_then(|t| t.tag()) {
                c.dialog.update_from_response_tagged(&m, Some(t));
                c.note_parsed_to(line);
            }
            if let Some(k) = c.known_to_tag(line) {
                proptest::prop_assert_eq!(Some(k), parsed.as_ref().and_then(|t| t.tag()));
            }
            let again = format!("{uri};tag={other}");
            if again != v {
                proptest::prop_assert_eq!(c.known_to_tag(Some(&again)), None);
            }
        }
    }

    proptest::proptest! {
        /// What `Call::tagged_local_to` stands on: a To that validation parsed as a name-addr
        /// without tag and that ends in `>`, with `;tag=` and a token after it, parses, is
        /// valid and has that token as its tag.
        #[test]
        fn a_tag_after_a_bracketed_name_addr_is_its_tag(
            display in proptest::prop_oneof!["", "B ", "\"B\" ", "\"[ -~]{0,8}\" ", "[ -~]{0,8}"],
            uri in proptest::prop_oneof!["sip:b@h", "sip:b@10.0.0.2;lr", "sips:b@[::1]:5061", "[ -~]{0,16}"],
            tag in "[a-zA-Z0-9.!%*_+`'~-]{1,12}",
        ) {
            let u = format!("{display}<{uri}>");
            let Ok(na) = crate::header::NameAddr::parse(&u) else {
                return Ok(());
            };
            if !na.is_valid() || na.tag().is_some() || !u.ends_with('>') {
                return Ok(());
            }
            let v = format!("{u};tag={tag}");
            let tagged = crate::header::NameAddr::parse(&v);
            proptest::prop_assert!(tagged.is_ok(), "{v:?} does not parse");
            proptest::prop_assert!(tagged.as_ref().is_ok_and(|t| t.is_valid()), "{v:?} is not valid");
            proptest::prop_assert_eq!(tagged.ok().and_then(|t| t.tag()), Some(tag.as_str()));
            let mut c = call("<sip:a@h>");
            c.dialog.local_uri = u.as_str().into();
            c.dialog.local_tag = tag.as_str().into();
            c.to_local = true;
            proptest::prop_assert!(c.tagged_local_to(&v));
            proptest::prop_assert!(!c.tagged_local_to(&u));
        }
    }

    #[test]
    fn the_last_tag_is_a_candidate_that_the_whole_value_confirms() {
        assert_eq!(last_tag("<sip:b@h>;tag=9f"), Some("9f"));
        assert_eq!(last_tag("<sip:b@h>;tag=1;x;tag=9f"), Some("9f"));
        assert_eq!(last_tag("<sip:b@h>"), None);
        // Inside quotes it is only a candidate: the value is then no `uri;tag=tag`.
        let v = "\"a;tag=x\" <sip:b@h>";
        assert_eq!(last_tag(v), Some("x\" <sip:b@h>"));
        assert!(is_tagged("<sip:b@h>;tag=9f", "<sip:b@h>", "9f"));
        assert!(!is_tagged("<sip:b@h>;tag=", "<sip:b@h>", ""));
        assert!(!is_tagged("<sip:b@h>;tag=9f", "<sip:b@h>", "9"));
    }

    #[test]
    fn the_to_of_a_2xx_after_its_1xx_is_known() {
        let mut c = call("<sip:b@h>");
        let m = Message::parse(
            &b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=9f\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"[..],
        )
        .unwrap();
        let line = m.header(HeaderName::To);
        c.dialog.update_from_response_tagged(&m, Some("9f"));
        c.note_parsed_to(line);
        assert_eq!(c.known_to_tag(Some("<sip:b@h>;tag=9f")), Some("9f"));
        assert_eq!(c.known_to_tag(Some("<sip:b@h>;tag=9g")), None);
        assert_eq!(c.known_to_tag(Some("<sip:b@h> ;tag=9f")), None);
    }
}
