//! Transaction matching (RFC 3261 §17.1.3 for clients, §17.2.3 for servers).
//!
//! A server transaction is named by the top Via's branch, its sent-by and the request method
//! (ACK folded into INVITE). A branch without the `z9hG4bK` magic cookie comes from an RFC 2543
//! element; the key is then built from the Request-URI, From tag, Call-ID, CSeq number and the
//! whole top Via (§17.2.3, second half). A client transaction is named by the branch it wrote and
//! the CSeq method of the response.

use crate::header::BRANCH_MAGIC_COOKIE;
use crate::text::decimal;
use crate::uri::Host;
use crate::{Message, Method};

/// The identity of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionKey {
    /// The branch (RFC 3261) or the RFC 2543 composite of the matching fields.
    pub branch: Box<str>,
    /// The top Via's sent-by, lower-cased (empty for client keys).
    pub sent_by: Box<str>,
    /// The method the transaction was created for (ACK is matched as INVITE).
    pub method: Method,
}

fn fold(m: Method) -> Method {
    if m == Method::Ack {
        Method::Invite
    } else {
        m
    }
}

impl TransactionKey {
    /// The key of the server transaction a request belongs to (§17.2.3); ACK gives the key of
    /// its INVITE. `None` when the top Via or CSeq cannot be read.
    pub fn server(req: &Message) -> Option<TransactionKey> {
        let method = fold(req.method()?);
        Self::server_with_method(req, method)
    }

    /// The key of the INVITE server transaction a CANCEL targets (§9.2).
    pub fn cancel_target(cancel: &Message) -> Option<TransactionKey> {
        Self::server_with_method(cancel, Method::Invite)
    }

    fn server_with_method(req: &Message, method: Method) -> Option<TransactionKey> {
        let via = req.top_via().ok()?;
        Self::server_with_via(req, &via, method)
    }

    /// [`TransactionKey::server`] with the top Via already parsed.
    pub(crate) fn server_with_via(
        req: &Message,
        via: &crate::header::Via<'_>,
        method: Method,
    ) -> Option<TransactionKey> {
        let (sent_by, branch) = server_parts(req, via)?;
        Some(TransactionKey {
            branch: branch.into(),
            sent_by: std::str::from_utf8(&sent_by).ok()?.into(),
            method,
        })
    }

    /// The key of the client transaction a response belongs to (§17.1.3): top Via branch and
    /// CSeq method.
    pub fn client_for_response(resp: &Message) -> Option<TransactionKey> {
        let via = resp.top_via().ok()?;
        let branch = via.branch()?;
        let method = resp.cseq().ok()?.method;
        Some(TransactionKey::client(branch, method))
    }

    /// The key of a client transaction created with `branch` for `method`.
    pub fn client(branch: &str, method: Method) -> TransactionKey {
        TransactionKey {
            branch: branch.into(),
            sent_by: "".into(),
            method,
        }
    }

    /// Whether the branch carries the RFC 3261 magic cookie.
    pub fn is_rfc3261(&self) -> bool {
        self.branch.starts_with(BRANCH_MAGIC_COOKIE)
    }
}

/// What names a server transaction (§17.2.3): the top Via's sent-by, lower-cased, written on
/// the stack without the formatting machinery, and the branch, or for an RFC 2543 request
/// (no magic cookie) the composite of Request-URI, From tag, Call-ID, CSeq number and top Via.
fn server_parts<'m>(
    req: &'m Message,
    via: &crate::header::Via<'m>,
) -> Option<(smallvec::SmallVec<[u8; 64]>, std::borrow::Cow<'m, str>)> {
    server_parts_with(req, via, via.branch())
}

/// [`server_parts`] with the Via's branch already read.
fn server_parts_with<'m>(
    req: &'m Message,
    via: &crate::header::Via<'m>,
    branch: Option<&'m str>,
) -> Option<(smallvec::SmallVec<[u8; 64]>, std::borrow::Cow<'m, str>)> {
    let mut buf: smallvec::SmallVec<[u8; 64]> = smallvec::SmallVec::new();
    let mut digits = [0u8; 10];
    match via.host {
        Host::Domain(d) => {
            buf.extend_from_slice(d.as_bytes());
            buf.make_ascii_lowercase();
        }
        Host::Ipv4(a) => {
            // Written on the stack and copied once: digits and dots hold no upper case.
            let mut text = [0u8; 15];
            let mut n = 0;
            for (i, o) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    text[n] = b'.';
                    n += 1;
                }
                if o >= 100 {
                    text[n] = b'0' + o / 100;
                    n += 1;
                }
                if o >= 10 {
                    text[n] = b'0' + o / 10 % 10;
                    n += 1;
                }
                text[n] = b'0' + o % 10;
                n += 1;
            }
            buf.extend_from_slice(&text[..n]);
        }
        Host::Ipv6(a) => {
            buf.push(b'[');
            buf.extend_from_slice(a.as_bytes());
            buf.push(b']');
            buf.make_ascii_lowercase();
        }
    }
    if let Some(p) = via.port {
        buf.push(b':');
        buf.extend_from_slice(decimal(u64::from(p), &mut digits));
    }
    match branch {
        Some(b) if b.starts_with(BRANCH_MAGIC_COOKIE) => Some((buf, b.into())),
        _ => {
            // RFC 2543 (§17.2.3): Request-URI, From tag, Call-ID, CSeq number, top Via.
            // The To tag is left out so that the ACK, whose To carries our tag, matches.
            let from_tag = req.from_header().ok()?.tag().unwrap_or("").to_owned();
            let cseq = req.cseq().ok()?.seq;
            // ACK for non-2xx carries the INVITE's Request-URI (§17.1.1.3).
            let ruri = req.request_uri_str()?;
            let top = req.header(crate::HeaderName::Via)?;
            let top = top.split(',').next().unwrap_or(top).trim();
            let composite = format!(
                "2543|{}|{}|{}|{}|{}",
                ruri,
                from_tag,
                req.call_id().ok()?,
                cseq,
                top
            );
            Some((buf, composite.into()))
        }
    }
}

/// Key bytes kept inline up to `N` bytes, boxed beyond.
#[derive(Debug, Clone)]
pub(crate) enum KeyText<const N: usize> {
    Inline(u8, [u8; N]),
    Heap(Box<[u8]>),
}

impl<const N: usize> KeyText<N> {
    /// The concatenation of `parts`.
    pub(crate) fn new(parts: &[&[u8]]) -> Self {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len <= N && len <= usize::from(u8::MAX) {
            let mut buf = [0u8; N];
            let mut at = 0;
            for p in parts {
                buf[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            }
            KeyText::Inline(len as u8, buf)
        } else {
            KeyText::Heap(parts.concat().into())
        }
    }

    /// The bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            KeyText::Inline(n, buf) => &buf[..usize::from(*n)],
            KeyText::Heap(b) => b,
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            KeyText::Inline(..) => 0,
            KeyText::Heap(b) => b.len(),
        }
    }

    /// Feeds the key to a hasher: an inline key as whole 16-byte words of its buffer (the
    /// unused tail is zero), one folded multiply each with foldhash instead of its loop over
    /// byte slices longer than 16; a boxed key as its bytes. Equal keys hash alike: the same
    /// bytes are always kept the same way ([`KeyText::new`]).
    #[inline]
    pub(crate) fn hash_into<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            KeyText::Inline(_, buf) => {
                for c in buf.chunks(16) {
                    let mut w = [0u8; 16];
                    w[..c.len()].copy_from_slice(c);
                    state.write_u128(u128::from_le_bytes(w));
                }
            }
            KeyText::Heap(b) => state.write(b),
        }
    }

    #[inline]
    fn same(&self, o: &Self) -> bool {
        match (self, o) {
            // Fixed-size arrays compare without a call (the unused tail is zero on both sides).
            (KeyText::Inline(n, a), KeyText::Inline(m, b)) => n == m && a == b,
            _ => self.bytes() == o.bytes(),
        }
    }
}

/// The merged-request key of a request outside a dialog (§8.2.2.2): its Call-ID, From tag,
/// CSeq number and method, written `call-id|from-tag|seq|METHOD`. Kept inline up to
/// [`MergeKey::INLINE`] bytes (an ordinary peer's), so that indexing a request allocates
/// nothing.
#[derive(Debug, Clone)]
pub(crate) struct MergeKey(KeyText<{ MergeKey::INLINE }>);

impl MergeKey {
    /// The longest key kept inline.
    pub(crate) const INLINE: usize = 62;

    /// The key of a request whose Call-ID, From tag (empty without one), CSeq number and
    /// method these are.
    pub(crate) fn new(call_id: &str, from_tag: &str, seq: u32, method: &Method) -> MergeKey {
        let mut digits = [0u8; 10];
        let cs = decimal(u64::from(seq), &mut digits);
        MergeKey(KeyText::new(&[
            call_id.as_bytes(),
            b"|",
            from_tag.as_bytes(),
            b"|",
            cs,
            b"|",
            method.as_str().as_bytes(),
        ]))
    }

    /// The key's text.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> &[u8] {
        self.0.bytes()
    }

    /// Heap bytes held (a key too long to keep inline).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.0.heap_bytes()
    }
}

impl PartialEq for MergeKey {
    #[inline]
    fn eq(&self, o: &MergeKey) -> bool {
        self.0.same(&o.0)
    }
}

impl Eq for MergeKey {}

impl std::hash::Hash for MergeKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash_into(state);
    }
}

/// How the endpoint names its server transactions (§17.2.3): what [`TransactionKey::server`]
/// holds (branch, sent-by, method with ACK as INVITE), its text kept inline when short (every
/// RFC 3261 request of an ordinary peer) so that indexing a request allocates nothing.
#[derive(Debug, Clone)]
pub(crate) struct ServerKey {
    /// The branch followed by the sent-by.
    text: KeyText<{ ServerKey::INLINE }>,
    branch_len: u32,
    method: Method,
}

impl ServerKey {
    /// The longest branch and sent-by, together, kept inline.
    pub(crate) const INLINE: usize = 46;

    /// A key no request has (no branch, no sent-by): what a transaction's box kept for reuse
    /// holds.
    pub(crate) fn blank() -> ServerKey {
        ServerKey {
            text: KeyText::Inline(0, [0; Self::INLINE]),
            branch_len: 0,
            method: Method::Invite,
        }
    }

    /// [`TransactionKey::server`], as a [`ServerKey`].
    pub(crate) fn server(req: &Message) -> Option<ServerKey> {
        let method = fold(req.method()?);
        let via = req.top_via().ok()?;
        Self::with_via(req, &via, method)
    }

    /// [`ServerKey::server`] for a request whose method, top Via and its branch are already
    /// read.
    pub(crate) fn server_for<'m>(
        req: &'m Message,
        via: &crate::header::Via<'m>,
        branch: Option<&'m str>,
        method: Method,
    ) -> Option<ServerKey> {
        if let Some(k) = Self::inline_ipv4(via, branch, &method) {
            return Some(k);
        }
        let (sent_by, branch) = server_parts_with(req, via, branch)?;
        Some(ServerKey {
            text: KeyText::new(&[branch.as_bytes(), &sent_by]),
            branch_len: u32::try_from(branch.len()).ok()?,
            method: fold(method),
        })
    }

    /// The key of a request whose top Via has an RFC 3261 branch and an IPv4 sent-by, when it
    /// fits inline: the branch, the address and the port written straight into the key's
    /// buffer (what [`server_parts_with`] and [`KeyText::new`] give, without the sent-by's
    /// own buffer); `None` for any other shape.
    fn inline_ipv4(
        via: &crate::header::Via<'_>,
        branch: Option<&str>,
        method: &Method,
    ) -> Option<ServerKey> {
        let (Host::Ipv4(a), Some(b)) = (&via.host, branch) else {
            return None;
        };
        // The longest address and port: 15 + 1 + 5 bytes.
        if !b.starts_with(BRANCH_MAGIC_COOKIE) || b.len() + 21 > Self::INLINE {
            return None;
        }
        let mut buf = [0u8; Self::INLINE];
        let mut at = 0;
        let mut put = |s: &[u8]| {
            if let Some(d) = buf.get_mut(at..at + s.len()) {
                d.copy_from_slice(s);
            }
            at += s.len();
        };
        put(b.as_bytes());
        put(crate::text::ipv4_dotted(*a, &mut [0u8; 15]));
        if let Some(p) = via.port {
            let mut digits = [0u8; 5];
            put(b":");
            put(decimal(u64::from(p), &mut digits));
        }
        Some(ServerKey {
            text: KeyText::Inline(u8::try_from(at).ok()?, buf),
            branch_len: u32::try_from(b.len()).ok()?,
            method: fold(method.clone()),
        })
    }

    /// [`TransactionKey::cancel_target`], as a [`ServerKey`].
    pub(crate) fn cancel_target(cancel: &Message) -> Option<ServerKey> {
        let via = cancel.top_via().ok()?;
        Self::with_via(cancel, &via, Method::Invite)
    }

    fn with_via(req: &Message, via: &crate::header::Via<'_>, method: Method) -> Option<ServerKey> {
        let (sent_by, branch) = server_parts(req, via)?;
        Some(ServerKey {
            text: KeyText::new(&[branch.as_bytes(), &sent_by]),
            branch_len: u32::try_from(branch.len()).ok()?,
            method,
        })
    }

    /// Heap bytes held (a key too long to keep inline).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.text.heap_bytes()
    }
}

impl PartialEq for ServerKey {
    #[inline]
    fn eq(&self, o: &ServerKey) -> bool {
        self.branch_len == o.branch_len && self.text.same(&o.text) && self.method == o.method
    }
}

impl Eq for ServerKey {}

impl std::hash::Hash for ServerKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // The text alone; equality checks the rest.
        self.text.hash_into(state);
    }
}

/// How the endpoint names its client transactions (§17.1.3): the branch it wrote and the
/// method. A branch of up to [`ClientKey::INLINE`] bytes (every branch Parrot writes) is kept
/// inline, so the key is copied into the timer heap and built from a response without
/// allocating; a longer one (a peer's) is boxed.
#[derive(Debug, Clone)]
pub(crate) struct ClientKey {
    branch: KeyText<{ ClientKey::INLINE }>,
    method: Method,
}

impl ClientKey {
    /// The longest branch kept inline: Parrot's branches are 23 bytes (the magic cookie and 16
    /// hex digits); a smaller key is cheaper to move through the timer heap and the table.
    pub(crate) const INLINE: usize = 30;

    /// The key of a client transaction created with `branch` for `method`.
    pub(crate) fn new(branch: &str, method: Method) -> ClientKey {
        ClientKey {
            branch: KeyText::new(&[branch.as_bytes()]),
            method,
        }
    }

    /// [`TransactionKey::client_for_response`], as a [`ClientKey`].
    pub(crate) fn for_response(resp: &Message) -> Option<ClientKey> {
        let via = resp.top_via().ok()?;
        let branch = via.branch()?;
        let method = resp.cseq().ok()?.method;
        Some(ClientKey::new(branch, method))
    }

    /// [`ClientKey::for_response`] for the endpoint whose Vias begin with one of `prefixes`
    /// (`SIP/2.0/UDP host:port;branch=`, as it writes them, §8.1.1.7, §18.1.1): a top Via that
    /// begins with one has its branch read from the token bytes after it, without the Via
    /// parsed again. A Via parses or not by its text before the first `;` alone, which is the
    /// prefix's (and the prefix's parses), and a branch so written is what [`Params::get`]
    /// reads; anything else is left to [`ClientKey::for_response`].
    ///
    /// [`Params::get`]: crate::header::Params::get
    pub(crate) fn for_response_after<'p>(
        resp: &Message,
        prefixes: impl IntoIterator<Item = &'p str>,
    ) -> Option<ClientKey> {
        if let Some(k) = Self::after_prefix(resp, prefixes) {
            return Some(k);
        }
        Self::for_response(resp)
    }

    /// The shortcut of [`ClientKey::for_response_after`]: `None` when it does not apply.
    #[inline]
    fn after_prefix<'p>(
        resp: &Message,
        prefixes: impl IntoIterator<Item = &'p str>,
    ) -> Option<ClientKey> {
        let v = resp.header(crate::header::HeaderName::Via)?;
        let rest = prefixes
            .into_iter()
            .find_map(|p| v.strip_prefix(p))?
            .as_bytes();
        let n = rest
            .iter()
            .position(|&c| !crate::text::is_token_byte(c))
            .unwrap_or(rest.len());
        if n == 0 || (n < rest.len() && rest[n] != b';') {
            return None;
        }
        let method = resp.cseq().ok()?.method;
        Some(ClientKey {
            branch: KeyText::new(&[&rest[..n]]),
            method,
        })
    }

    /// Heap bytes held (a branch too long to keep inline).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.branch.heap_bytes()
    }

    /// The branch, as bytes.
    pub(crate) fn branch(&self) -> &[u8] {
        self.branch.bytes()
    }
}

impl PartialEq for ClientKey {
    #[inline]
    fn eq(&self, o: &ClientKey) -> bool {
        self.branch.same(&o.branch) && self.method == o.method
    }
}

impl Eq for ClientKey {}

impl std::hash::Hash for ClientKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // The branch alone, in one write: the method rarely tells keys apart (a CANCEL shares
        // its INVITE's branch) and equality checks it.
        self.branch.hash_into(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(s: &str) -> Message {
        Message::parse(s.replace('\n', "\r\n").into_bytes()).expect("test message parses")
    }

    proptest::proptest! {
        /// A merged-request key is the text `call-id|from-tag|seq|METHOD` (as it was kept
        /// before it was kept inline), inline or boxed by its length, and two keys are equal
        /// (and hash alike) exactly when their texts are.
        #[test]
        fn merge_key_is_its_text_inline_or_boxed(
            a in ("[a-zA-Z0-9@.-]{0,70}", "[a-zA-Z0-9]{0,20}", proptest::prelude::any::<u32>(), 0usize..4),
            b in ("[a-zA-Z0-9@.-]{0,70}", "[a-zA-Z0-9]{0,20}", proptest::prelude::any::<u32>(), 0usize..4),
            same in proptest::prelude::any::<bool>(),
        ) {
            use std::hash::BuildHasher;
            let methods = [Method::Invite, Method::Options, Method::Message, Method::Register];
            let b = if same { a.clone() } else { b };
            let key = |(c, t, s, m): &(String, String, u32, usize)| {
                (MergeKey::new(c, t, *s, &methods[*m]), format!("{c}|{t}|{s}|{}", methods[*m]))
            };
            let ((ka, ta), (kb, tb)) = (key(&a), key(&b));
            proptest::prop_assert_eq!(ka.bytes(), ta.as_bytes());
            proptest::prop_assert_eq!(ka.heap_bytes() > 0, ta.len() > MergeKey::INLINE);
            proptest::prop_assert_eq!(ka == kb, ta == tb);
            let h = foldhash::fast::FixedState::with_seed(7);
            if ta == tb {
                proptest::prop_assert_eq!(h.hash_one(&ka), h.hash_one(&kb));
            }
        }
    }

    proptest::proptest! {
        /// A key written straight for an IPv4 sent-by is the one the general parts give.
        #[test]
        fn ipv4_server_key_written_straight_is_the_general_one(
            ip in proptest::prelude::any::<[u8; 4]>(),
            port in proptest::option::of(proptest::prelude::any::<u16>()),
            branch in "z9hG4bK[a-zA-Z0-9.!%*_+`'~-]{0,30}",
            ack in proptest::prelude::any::<bool>(),
        ) {
            let host = std::net::Ipv4Addr::from(ip);
            let sent_by = match port {
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            };
            let method = if ack { "ACK" } else { "INVITE" };
            let m = msg(&format!("{method} sip:b@h SIP/2.0\nVia: SIP/2.0/UDP {sent_by};branch={branch}\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c1\nCSeq: 1 {method}\nContent-Length: 0\n\n"));
            let via = m.top_via().expect("generated Via parses");
            let method = m.method().expect("a request");
            let fast = ServerKey::inline_ipv4(&via, via.branch(), &method);
            proptest::prop_assert!(fast.is_some() || branch.len() + 21 > ServerKey::INLINE);
            if let Some(fast) = fast {
                let (sent_by, b) = server_parts_with(&m, &via, via.branch()).expect("parts");
                let general = ServerKey {
                    text: KeyText::new(&[b.as_bytes(), &sent_by]),
                    branch_len: u32::try_from(b.len()).expect("short"),
                    method: fold(method),
                };
                proptest::prop_assert!(fast == general);
                proptest::prop_assert_eq!(fast.text.bytes(), general.text.bytes());
            }
        }
    }

    #[test]
    fn ack_matches_invite_server_transaction() {
        let inv = msg("INVITE sip:b@h SIP/2.0\nVia: SIP/2.0/UDP a.example:5060;branch=z9hG4bKx1\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c1\nCSeq: 1 INVITE\nContent-Length: 0\n\n");
        let ack = msg("ACK sip:b@h SIP/2.0\nVia: SIP/2.0/UDP A.example:5060;branch=z9hG4bKx1\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>;tag=2\nCall-ID: c1\nCSeq: 1 ACK\nContent-Length: 0\n\n");
        let cancel = msg("CANCEL sip:b@h SIP/2.0\nVia: SIP/2.0/UDP a.example:5060;branch=z9hG4bKx1\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c1\nCSeq: 1 CANCEL\nContent-Length: 0\n\n");
        let k = TransactionKey::server(&inv).unwrap();
        assert_eq!(TransactionKey::server(&ack).unwrap(), k);
        assert_ne!(TransactionKey::server(&cancel).unwrap(), k);
        assert_eq!(TransactionKey::cancel_target(&cancel).unwrap(), k);
    }

    #[test]
    fn client_keys_match_by_branch_and_method_inline_or_boxed() {
        let long = format!("z9hG4bK{}", "x".repeat(60));
        for b in ["z9hG4bK71c18690ee42c90b", long.as_str(), "x"] {
            let k = ClientKey::new(b, Method::Invite);
            assert_eq!(k.branch(), b.as_bytes());
            assert_eq!(k.clone(), ClientKey::new(b, Method::Invite));
            assert_ne!(k, ClientKey::new(b, Method::Cancel));
            assert_ne!(k, ClientKey::new(&b[..b.len() - 1], Method::Invite));
        }
        let resp = msg("SIP/2.0 200 OK\nVia: SIP/2.0/UDP a.example;branch=z9hG4bKx1\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>;tag=2\nCall-ID: c1\nCSeq: 1 INVITE\nContent-Length: 0\n\n");
        assert_eq!(
            ClientKey::for_response(&resp),
            Some(ClientKey::new("z9hG4bKx1", Method::Invite))
        );
    }

    fn hash_of<K: std::hash::Hash>(k: &K) -> u64 {
        use std::hash::BuildHasher;
        foldhash::fast::FixedState::with_seed(7).hash_one(k)
    }

    proptest::proptest! {
        /// Keys hashed by words: equal keys hash alike, inline or boxed, and keys of other
        /// bytes (almost always) do not.
        #[test]
        fn key_hash_follows_equality(a in "[ -~]{0,64}", b in "[ -~]{0,64}") {
            for m in [Method::Invite, Method::Bye] {
                let (ka, kb) = (ClientKey::new(&a, m.clone()), ClientKey::new(&b, m.clone()));
                proptest::prop_assert_eq!(hash_of(&ka), hash_of(&ClientKey::new(&a, m.clone())));
                if ka == kb {
                    proptest::prop_assert_eq!(hash_of(&ka), hash_of(&kb));
                } else if a != b {
                    proptest::prop_assert_ne!(hash_of(&ka), hash_of(&kb));
                }
            }
            let (ta, tb) = (KeyText::<46>::new(&[a.as_bytes()]), KeyText::<46>::new(&[b.as_bytes()]));
            let h = |t: &KeyText<46>| {
                use std::hash::{BuildHasher, Hasher};
                let mut s = foldhash::fast::FixedState::with_seed(7).build_hasher();
                t.hash_into(&mut s);
                s.finish()
            };
            if a == b {
                proptest::prop_assert_eq!(h(&ta), h(&tb));
            } else {
                proptest::prop_assert_ne!(h(&ta), h(&tb));
            }
        }
    }

    proptest::proptest! {
        /// A response whose top Via begins as the endpoint writes its Vias gets the key the
        /// general rule gives, whatever follows the prefix and whichever address it names.
        #[test]
        fn response_key_after_own_via_prefix_is_the_general_rule(
            local in proptest::prelude::any::<std::net::SocketAddr>(),
            t in 0usize..5,
            branch in proptest::prop_oneof!["[a-zA-Z0-9.!%*_+`'~-]{1,40}", "[ -~]{0,30}"],
            rest in proptest::prop_oneof!["", ";rport=5060;received=10.0.0.1", "[ -~]{0,24}"],
            second in proptest::prelude::any::<bool>(),
        ) {
            use crate::Transport;
            let transport = [Transport::Udp, Transport::Tcp, Transport::Tls, Transport::Ws, Transport::Wss][t];
            let prefix = crate::endpoint::via_prefix(&crate::Endpoint::host_port(local), transport);
            let via = format!("{prefix}{branch}{rest}");
            let more = if second { "Via: SIP/2.0/UDP b.example;branch=z9hG4bKb\r\n" } else { "" };
            let text = format!("SIP/2.0 200 OK\r\nVia: {via}\r\n{more}From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
            let Ok(resp) = Message::parse(text.into_bytes()) else {
                return Ok(());
            };
            let general = ClientKey::for_response(&resp);
            let other = crate::endpoint::via_prefix("192.0.2.7:5070", Transport::Udp);
            proptest::prop_assert_eq!(
                &ClientKey::for_response_after(&resp, [other.as_str(), prefix.as_str()]),
                &general
            );
            proptest::prop_assert_eq!(&ClientKey::for_response_after(&resp, []), &general);
        }
    }

    proptest::proptest! {
        /// The sent-by of a server key is the address as `Ipv4Addr` displays it, then the port.
        #[test]
        fn ipv4_sent_by_is_the_displayed_address(ip in proptest::prelude::any::<u32>(), port in proptest::prelude::any::<Option<u16>>()) {
            let ip = std::net::Ipv4Addr::from(ip);
            let hp = match port {
                Some(p) => format!("{ip}:{p}"),
                None => ip.to_string(),
            };
            let m = msg(&format!("INVITE sip:b@h SIP/2.0\nVia: SIP/2.0/UDP {hp};branch=z9hG4bKx1\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c1\nCSeq: 1 INVITE\nContent-Length: 0\n\n"));
            let k = TransactionKey::server(&m).unwrap();
            proptest::prop_assert_eq!(&*k.sent_by, hp.as_str());
        }
    }

    #[test]
    fn server_keys_match_as_transaction_keys_do() {
        let inv = msg("INVITE sip:b@h SIP/2.0\nVia: SIP/2.0/UDP a.example:5060;branch=z9hG4bKx1\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c1\nCSeq: 1 INVITE\nContent-Length: 0\n\n");
        let ack = msg("ACK sip:b@h SIP/2.0\nVia: SIP/2.0/UDP A.example:5060;branch=z9hG4bKx1\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>;tag=2\nCall-ID: c1\nCSeq: 1 ACK\nContent-Length: 0\n\n");
        let cancel = msg("CANCEL sip:b@h SIP/2.0\nVia: SIP/2.0/UDP a.example:5060;branch=z9hG4bKx1\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c1\nCSeq: 1 CANCEL\nContent-Length: 0\n\n");
        let other_host = msg("INVITE sip:b@h SIP/2.0\nVia: SIP/2.0/UDP b.example:5060;branch=z9hG4bKx1\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c1\nCSeq: 1 INVITE\nContent-Length: 0\n\n");
        // The same bytes split differently between branch and sent-by are different keys.
        let shifted = msg("INVITE sip:b@h SIP/2.0\nVia: SIP/2.0/UDP example:5060;branch=z9hG4bKx1a.\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c1\nCSeq: 1 INVITE\nContent-Length: 0\n\n");
        let old = msg("INVITE sip:bob@biloxi.example.com SIP/2.0\nVia: SIP/2.0/UDP a.example;branch=old1\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c1\nCSeq: 1 INVITE\nContent-Length: 0\n\n");
        let k = ServerKey::server(&inv).unwrap();
        assert_eq!(ServerKey::server(&ack).unwrap(), k);
        assert_ne!(ServerKey::server(&cancel).unwrap(), k);
        assert_eq!(ServerKey::cancel_target(&cancel).unwrap(), k);
        assert_ne!(ServerKey::server(&other_host).unwrap(), k);
        assert_ne!(ServerKey::server(&shifted).unwrap(), k);
        let o = ServerKey::server(&old).unwrap();
        assert!(o.heap_bytes() > 0, "an RFC 2543 composite is boxed");
        assert_eq!(o, ServerKey::server(&old).unwrap());
    }

    #[test]
    fn rfc2543_fallback_uses_dialog_fields() {
        let a = msg("INVITE sip:b@h SIP/2.0\nVia: SIP/2.0/UDP a.example;branch=old1\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c1\nCSeq: 1 INVITE\nContent-Length: 0\n\n");
        let ack = msg("ACK sip:b@h SIP/2.0\nVia: SIP/2.0/UDP a.example;branch=old1\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>;tag=9\nCall-ID: c1\nCSeq: 1 ACK\nContent-Length: 0\n\n");
        let other = msg("INVITE sip:b@h SIP/2.0\nVia: SIP/2.0/UDP a.example;branch=old1\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c2\nCSeq: 1 INVITE\nContent-Length: 0\n\n");
        let k = TransactionKey::server(&a).unwrap();
        assert!(!k.is_rfc3261());
        assert_eq!(TransactionKey::server(&ack).unwrap(), k);
        assert_ne!(TransactionKey::server(&other).unwrap(), k);
    }
}
