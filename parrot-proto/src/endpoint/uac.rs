//! The UAC core (RFC 3261 §8.1, §9.1, §12.1.2, §13.2, §14.1, §15.1.1, §22.2) and outgoing
//! requests in general.
//!
//! Requests get a fresh `z9hG4bK` branch, tags and Call-ID from the endpoint's RNG, CSeq,
//! Max-Forwards 70 and a Contact built from the transport they leave on. 401/407 are answered
//! once with digest credentials (RFC 7616); the session is kept per user and reused. A 2xx is
//! ACKed by the dialog (§13.2.2.4), again for each retransmission, and a 2xx from another fork
//! is ACKed and then ended with BYE. 491 to a re-INVITE retries after the §14.1 back-off.

use super::*;
use crate::dialog::DialogState;
use crate::handler::Body;
use crate::{HeaderName, RequestBuilder};

/// An outgoing call ([`Endpoint::invite`]).
pub struct InviteRequest {
    /// The callee, a URI or name-addr (`sip:bob@192.0.2.2`, `"Bob" <sip:bob@example.com>`).
    pub to: String,
    /// Us, a URI or name-addr.
    pub from: String,
    /// The Request-URI; the URI of `to` when `None`.
    pub request_uri: Option<String>,
    /// Where to send (the adapter resolves names; §8.1.2 target selection happens there).
    pub dst: SocketAddr,
    /// The transport.
    pub transport: Transport,
    /// The body, usually the SDP offer.
    pub body: Option<Body>,
    /// Extra header lines.
    pub headers: Vec<(String, String)>,
    /// Credentials for 401/407 challenges.
    pub credentials: Option<DigestCredentials>,
    /// The call's handler, if the application wants callbacks as well as events.
    pub handler: Option<Box<dyn UacHandler>>,
}

impl std::fmt::Debug for InviteRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InviteRequest")
            .field("to", &self.to)
            .field("from", &self.from)
            .field("dst", &self.dst)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl InviteRequest {
    /// A call from `from` to `to` sent to `dst` over `transport`, without body.
    pub fn new(
        from: impl Into<String>,
        to: impl Into<String>,
        dst: SocketAddr,
        transport: Transport,
    ) -> Self {
        InviteRequest {
            to: to.into(),
            from: from.into(),
            request_uri: None,
            dst,
            transport,
            body: None,
            headers: Vec::new(),
            credentials: None,
            handler: None,
        }
    }
}

/// A request outside any dialog ([`Endpoint::request`], [`Endpoint::options`]).
#[derive(Debug, Clone)]
pub struct OutOfDialogRequest {
    /// The method (not INVITE, ACK or CANCEL).
    pub method: Method,
    /// The Request-URI.
    pub uri: String,
    /// From (URI or name-addr).
    pub from: String,
    /// To (URI or name-addr).
    pub to: String,
    /// Where to send.
    pub dst: SocketAddr,
    /// The transport.
    pub transport: Transport,
    /// Extra header lines.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Option<Body>,
    /// Credentials for 401/407 challenges.
    pub credentials: Option<DigestCredentials>,
}

pub(crate) fn name_addr(s: &str) -> String {
    let s = s.trim();
    // Byte searches: a `char` pattern goes through the generic searcher.
    if memchr::memchr(b'<', s.as_bytes()).is_some() {
        s.to_owned()
    } else {
        crate::text::concat(&["<", s, ">"])
    }
}

pub(crate) fn bare_uri(s: &str) -> &str {
    let s = s.trim();
    let find = |c: u8| memchr::memchr(c, s.as_bytes());
    match (find(b'<'), find(b'>')) {
        (Some(a), Some(b)) if a < b => &s[a + 1..b],
        _ => s,
    }
}

impl Endpoint {
    pub(super) fn authorize(
        &mut self,
        mut b: RequestBuilder,
        creds: Option<&DigestCredentials>,
        method: &Method,
        uri: &str,
    ) -> RequestBuilder {
        let Some(c) = creds else { return b };
        if let Some(mut s) = self.digest.remove(&c.username) {
            let v = s.authorization(c, method.as_str(), uri, &mut *self.rng);
            let name = if s.proxy {
                HeaderName::ProxyAuthorization
            } else {
                HeaderName::Authorization
            };
            b = b.header(name, v);
            self.digest.insert(c.username.clone(), s);
        }
        b
    }

    /// Learns a challenge from a 401/407 (§22.2). Returns whether a session now exists.
    pub(super) fn learn_challenge(&mut self, resp: &Message, creds: &DigestCredentials) -> bool {
        let proxy = resp.status() == Some(407);
        let ch = if proxy {
            resp.proxy_authenticate()
                .filter_map(|c| c.ok())
                .find_map(|c| DigestSession::from_challenge(&c, true))
        } else {
            resp.www_authenticate()
                .filter_map(|c| c.ok())
                .find_map(|c| DigestSession::from_challenge(&c, false))
        };
        match ch {
            Some(s) => {
                self.digest.insert(creds.username.clone(), s);
                true
            }
            None => false,
        }
    }

    pub(super) fn start_client(
        &mut self,
        now: Instant,
        msg: Message,
        peer: Peer,
        purpose: Purpose,
    ) -> Option<ClientKey> {
        let branch = msg.top_via().ok()?.branch()?.to_owned();
        let method = msg.method()?;
        self.start_client_with_branch(now, msg, method, &branch, peer, purpose)
    }

    /// [`Endpoint::start_client`] for a `method` request whose top Via we just wrote with
    /// `branch`.
    pub(super) fn start_client_with_branch(
        &mut self,
        now: Instant,
        msg: Message,
        method: Method,
        branch: &str,
        peer: Peer,
        purpose: Purpose,
    ) -> Option<ClientKey> {
        let key = ClientKey::new(branch, method.clone());
        let reliable = peer.transport.is_reliable();
        let mut out = std::mem::take(&mut self.scratch);
        let fsm = if method == Method::Invite {
            ClientFsm::Invite(ClientInviteTransaction::start(
                now,
                msg,
                reliable,
                self.cfg.timers,
                &mut out,
            ))
        } else {
            ClientFsm::NonInvite(ClientNonInviteTransaction::start(
                now,
                msg,
                reliable,
                self.cfg.timers,
                &mut out,
            ))
        };
        let slot = self.client_slots.insert(key.clone());
        // In the box of one that ended, when there is one, filled field by field (no whole
        // transaction built on the stack and moved in).
        let tx = match self.spare_client.pop() {
            Some(mut b) => {
                b.fsm = fsm;
                b.peer = peer;
                b.purpose = purpose;
                b.scheduled = None;
                b.slot = slot;
                b
            }
            None => Box::new(ClientTx {
                fsm,
                peer,
                purpose,
                scheduled: None,
                slot,
            }),
        };
        // One lookup puts it in the table and queues its timer.
        let t = match self.client_txs.entry(key.clone()) {
            std::collections::hash_map::Entry::Occupied(mut o) => {
                let old = std::mem::replace(o.get_mut(), tx);
                self.client_slots.remove(old.slot);
                o.into_mut()
            }
            std::collections::hash_map::Entry::Vacant(v) => v.insert(tx),
        };
        let (peer, purpose) = Self::schedule_client(&mut self.timer_heap, t);
        self.client_outputs(now, &key, peer, purpose, &mut out, false);
        self.scratch = out;
        Some(key)
    }

    /// Starts an outgoing call (§13.2.1). The returned id names the call in every later event
    /// and command.
    pub fn invite(
        &mut self,
        now: Instant,
        mut req: InviteRequest,
    ) -> Result<DialogId, CommandError> {
        if self.tx_count() >= self.cfg.max_transactions || self.calls.len() >= self.cfg.max_dialogs
        {
            return Err(CommandError::Overloaded);
        }
        let local = self.local_addr(req.transport);
        let call_id = self.new_call_id(local);
        let tag = self.new_tag();
        let to = name_addr(&req.to);
        let from = name_addr(&req.from);
        // The Request-URI given, or the callee's URI: the callee's text itself (moved, not
        // copied) when it is a bare URI already.
        let ruri: Box<str> = match req.request_uri.take() {
            Some(r) => r.into(),
            None if bare_uri(&req.to).len() == req.to.len() => std::mem::take(&mut req.to).into(),
            None => bare_uri(&req.to).into(),
        };
        let dialog = Dialog {
            state: DialogState::Early,
            role: Role::Uac,
            call_id: call_id.into(),
            local_tag: tag.into(),
            remote_tag: "".into(),
            local_uri: from.into(),
            remote_uri: to.into(),
            remote_target: ruri,
            route_set: Vec::new(),
            local_cseq: 0,
            remote_cseq: None,
        };
        let peer = Peer {
            addr: req.dst,
            transport: req.transport,
            conn: None,
        };
        let mut call = Call::new(dialog, peer, local);
        call.uac = req.handler;
        call.owns_call_id = true;
        call.creds = req.credentials.map(Box::new);
        let cseq = call.dialog.next_cseq();
        let branch = self.new_branch_inline();
        let (contact, via) =
            super::prefixes_in(&mut self.prefix_cache, &self.cfg, local, req.transport);
        let via = [via.as_str(), branch.as_str(), ";rport"];
        // Without extra lines or credentials, written at once from the dialog's values.
        let written = if req.headers.is_empty() && call.creds.is_none() {
            let ua = self.cfg.user_agent.as_deref().map(|u| [u.as_bytes()]);
            let ct = req.body.as_ref().map(|b| [b.content_type.as_bytes()]);
            let mut extra: smallvec::SmallVec<[crate::builder::Line<'_>; 2]> =
                smallvec::SmallVec::new();
            if let Some(ua) = &ua {
                extra.push((HeaderName::UserAgent, &ua[..]));
            }
            if let Some(ct) = &ct {
                extra.push((HeaderName::ContentType, &ct[..]));
            }
            let body = req.body.as_ref().map_or(&[][..], |b| &b.bytes[..]);
            call.dialog.write_request_owned(
                &Method::Invite,
                cseq,
                &via,
                Some(contact.as_str()),
                &extra,
                body,
            )
        } else {
            None
        };
        let msg = match written {
            Some(m) => m,
            None => {
                // The Request-URI is the remote target the dialog starts with (no route set yet).
                let mut b = call
                    .dialog
                    .request_in(Method::Invite, cseq, &mut self.builder_bufs)
                    .prepend_header_pieces(HeaderName::Via, &via)
                    .header(HeaderName::MaxForwards, "70")
                    .header(HeaderName::Contact, contact);
                if let Some(ua) = &self.cfg.user_agent {
                    b = b.header(HeaderName::UserAgent, ua);
                }
                for (n, v) in &req.headers {
                    b = b.raw_header(n, v);
                }
                if let Some(body) = &req.body {
                    b = b.body(&body.content_type, body.bytes.clone());
                }
                let creds = call.creds.as_deref().cloned();
                b = self.authorize(
                    b,
                    creds.as_ref(),
                    &Method::Invite,
                    &call.dialog.remote_target,
                );
                b.build_reusing(&mut self.builder_bufs)
                    .map_err(|_| CommandError::BadInput)?
            }
        };
        // The offer is kept as given (moved, not copied).
        call.offer = req.body;
        let id = DialogId(self.next_id());
        call.invite = Some(msg.clone());
        self.by_tag
            .insert(&call.dialog.call_id, &call.dialog.local_tag, id, |d| {
                super::call_id_in(&self.calls, d)
            });
        self.calls.insert(id, call);
        if self
            .start_client_with_branch(
                now,
                msg,
                Method::Invite,
                branch.as_str(),
                peer,
                Purpose::Invite(id),
            )
            .is_none()
        {
            self.end_call(id, EndReason::TransportError);
            return Err(CommandError::BadInput);
        }
        Ok(id)
    }

    /// Cancels an outgoing call that has no final response (§9.1). The CANCEL leaves once a
    /// provisional response has arrived.
    pub fn cancel(&mut self, now: Instant, dialog: DialogId) -> Result<(), CommandError> {
        let call = self.calls.get_mut(&dialog).ok_or(CommandError::Unknown)?;
        if call.dialog.role != Role::Uac || call.confirmed {
            return Err(CommandError::InvalidState);
        }
        call.cancel_requested = true;
        if call.got_provisional && !call.cancel_sent {
            self.send_cancel(now, dialog);
        }
        Ok(())
    }

    fn send_cancel(&mut self, now: Instant, dialog: DialogId) {
        let Some(call) = self.calls.get_mut(&dialog) else {
            return;
        };
        let Some(inv) = call.invite.as_ref() else {
            return;
        };
        call.cancel_sent = true;
        let (inv, peer) = (inv.clone(), call.peer);
        self.cancel_invite(now, &inv, peer);
    }

    /// Sends the CANCEL of the INVITE `inv` sent to `peer` (§9.1: the same Request-URI, top
    /// Via, Route, From, To, Call-ID and CSeq number) and tells the INVITE's client
    /// transaction, whose Timer C / final-response wait now runs (§16.8, §9.1). Used by the UAC
    /// core and by the proxy for its branches.
    pub(super) fn cancel_invite(&mut self, now: Instant, inv: &Message, peer: Peer) {
        let build = || -> Option<Message> {
            let mut b = RequestBuilder::new(Method::Cancel, inv.request_uri_str()?);
            b = b.header(HeaderName::Via, inv.header_values(HeaderName::Via).next()?);
            for r in inv.header_lines(HeaderName::Route) {
                b = b.header(HeaderName::Route, r);
            }
            b.header(HeaderName::MaxForwards, "70")
                .header(HeaderName::From, inv.header(HeaderName::From)?)
                .header(HeaderName::To, inv.header(HeaderName::To)?)
                .header(HeaderName::CallId, inv.header(HeaderName::CallId)?)
                .header(HeaderName::CSeq, format!("{} CANCEL", inv.cseq().ok()?.seq))
                .build()
                .ok()
        };
        let inv_key = inv
            .top_via()
            .ok()
            .and_then(|v| v.branch())
            .map(|b| ClientKey::new(b, Method::Invite));
        if let Some(m) = build() {
            self.start_client(now, m, peer, Purpose::Cancel);
        }
        if let Some(ClientFsm::Invite(f)) = inv_key
            .and_then(|k| self.client_txs.get_mut(&k))
            .map(|t| &mut t.fsm)
        {
            f.on_cancel_sent(now);
        }
    }

    /// Hangs up: BYE on an established call (§15.1.1), CANCEL on an outgoing call not yet
    /// answered, 603 Decline on an incoming call not yet answered.
    pub fn bye(&mut self, now: Instant, dialog: DialogId) -> Result<(), CommandError> {
        let call = self.calls.get(&dialog).ok_or(CommandError::Unknown)?;
        if !call.confirmed {
            return match call.dialog.role {
                Role::Uac => self.cancel(now, dialog),
                Role::Uas => match call.server_tx {
                    Some(tx) => self.respond(now, ServerTxKey(tx), crate::handler::Reply::new(603)),
                    None => Err(CommandError::InvalidState),
                },
            };
        }
        self.send_bye(now, dialog);
        self.end_call(dialog, EndReason::LocalBye);
        Ok(())
    }

    /// Sends BYE in a dialog without ending the call record (the caller does, with its reason).
    pub(super) fn send_bye(&mut self, now: Instant, dialog: DialogId) {
        if let Some((m, branch, peer)) = self.in_dialog_request(dialog, Method::Bye, &[], None) {
            self.start_client_with_branch(now, m, Method::Bye, branch.as_str(), peer, Purpose::Bye);
        }
    }

    fn in_dialog_request(
        &mut self,
        dialog: DialogId,
        method: Method,
        headers: &[(String, String)],
        body: Option<&Body>,
    ) -> Option<(Message, Branch, Peer)> {
        let branch = self.new_branch_inline();
        let call = self.calls.get_mut(&dialog)?;
        // Where it goes, with the same lookup: the first loose route or the remote target when
        // it is an IP literal (§12.2.1.1, §8.1.2), else the address the dialog was set up with.
        let peer = call.target_peer();
        let cseq = call.dialog.next_cseq();
        let (local, transport) = (call.local, call.peer.transport);
        let (contact, via) =
            super::prefixes_in(&mut self.prefix_cache, &self.cfg, local, transport);
        let via = [via.as_str(), branch.as_str(), ";rport"];
        let contact = matches!(
            method,
            Method::Invite | Method::Update | Method::Subscribe | Method::Refer
        )
        .then_some(contact.as_str());
        // A non-INVITE without extra lines or body (a BYE) written at once; it shares the
        // responses' buffer (below).
        if method != Method::Invite && headers.is_empty() && body.is_none() {
            if let Some(m) = call
                .dialog
                .write_request(&method, cseq, &via, contact, &mut self.wire)
            {
                return Some((m, branch, peer));
            }
        }
        let mut b = call
            .dialog
            .request_in(method.clone(), cseq, &mut self.builder_bufs);
        b = b
            .prepend_header_pieces(HeaderName::Via, &via)
            .header(HeaderName::MaxForwards, "70");
        if let Some(contact) = contact {
            b = b.header(HeaderName::Contact, contact);
        }
        for (n, v) in headers {
            b = b.raw_header(n, v.clone());
        }
        if let Some(body) = body {
            b = b.body(&body.content_type, body.bytes.clone());
        }
        // A non-INVITE is kept by its transaction for 64*T1 at most (§17.1.2.2): it shares
        // the responses' buffer instead of allocating its own.
        let built = if method == Method::Invite {
            b.build_reusing(&mut self.builder_bufs)
        } else {
            b.build_in(&mut self.builder_bufs, &mut self.wire)
        };
        built.ok().map(|m| (m, branch, peer))
    }

    /// Sends a request inside an established dialog (§12.2.1): BYE, re-INVITE, UPDATE, INFO,
    /// MESSAGE, NOTIFY, REFER, ... Its final response comes back as
    /// [`Event::ResponseReceived`]; a re-INVITE's 2xx is ACKed by the endpoint.
    pub fn request_in_dialog(
        &mut self,
        now: Instant,
        dialog: DialogId,
        method: Method,
        headers: Vec<(String, String)>,
        body: Option<Body>,
    ) -> Result<RequestId, CommandError> {
        let call = self.calls.get(&dialog).ok_or(CommandError::Unknown)?;
        if !call.confirmed || matches!(method, Method::Ack | Method::Cancel) {
            return Err(CommandError::InvalidState);
        }
        let busy = call.reinvite_pending || call.server_tx.is_some() || call.glare.is_some();
        if self.tx_count() >= self.cfg.max_transactions {
            return Err(CommandError::Overloaded);
        }
        let rid = RequestId(self.next_id());
        if method == Method::Bye {
            self.bye(now, dialog)?;
            return Ok(rid);
        }
        if method == Method::Invite {
            if busy {
                return Err(CommandError::InvalidState);
            }
            self.send_reinvite(now, dialog, rid, headers, body)?;
            return Ok(rid);
        }
        let (m, branch, peer) = self
            .in_dialog_request(dialog, method.clone(), &headers, body.as_ref())
            .ok_or(CommandError::BadInput)?;
        self.start_client_with_branch(
            now,
            m,
            method,
            branch.as_str(),
            peer,
            Purpose::Request(rid, Some(dialog)),
        );
        Ok(rid)
    }

    pub(super) fn send_reinvite(
        &mut self,
        now: Instant,
        dialog: DialogId,
        rid: RequestId,
        headers: Vec<(String, String)>,
        body: Option<Body>,
    ) -> Result<(), CommandError> {
        let (m, branch, peer) = self
            .in_dialog_request(dialog, Method::Invite, &headers, body.as_ref())
            .ok_or(CommandError::BadInput)?;
        if let Some(c) = self.calls.get_mut(&dialog) {
            c.reinvite_pending = true;
            c.glare = Some(Box::new(GlareRetry {
                request: rid,
                headers,
                body,
            }));
        }
        self.start_client_with_branch(
            now,
            m,
            Method::Invite,
            branch.as_str(),
            peer,
            Purpose::ReInvite(dialog, rid),
        );
        // Keep the retry material only while the re-INVITE is in flight.
        Ok(())
    }

    /// Sends a request outside any dialog (OPTIONS, MESSAGE, SUBSCRIBE, PUBLISH, ...). The
    /// final response comes back as [`Event::ResponseReceived`].
    pub fn request(
        &mut self,
        now: Instant,
        req: OutOfDialogRequest,
    ) -> Result<RequestId, CommandError> {
        if matches!(req.method, Method::Invite | Method::Ack | Method::Cancel) {
            return Err(CommandError::InvalidState);
        }
        if self.tx_count() >= self.cfg.max_transactions {
            return Err(CommandError::Overloaded);
        }
        let local = self.local_addr(req.transport);
        let branch = self.new_branch();
        let call_id = self.new_call_id(local);
        let tag = self.new_tag();
        let mut b = RequestBuilder::new(req.method.clone(), req.uri.clone())
            .header(HeaderName::Via, self.via_for(local, req.transport, &branch))
            .header(HeaderName::MaxForwards, "70")
            .header(
                HeaderName::From,
                format!("{};tag={}", name_addr(&req.from), tag),
            )
            .header(HeaderName::To, name_addr(&req.to))
            .header(HeaderName::CallId, call_id)
            .header(HeaderName::CSeq, format!("1 {}", req.method.as_str()))
            .header(HeaderName::Contact, self.contact_for(local, req.transport));
        for (n, v) in &req.headers {
            b = b.raw_header(n, v.clone());
        }
        if let Some(body) = &req.body {
            b = b.body(&body.content_type, body.bytes.clone());
        }
        b = self.authorize(b, req.credentials.as_ref(), &req.method, &req.uri);
        let m = b.build().map_err(|_| CommandError::BadInput)?;
        let rid = RequestId(self.next_id());
        let peer = Peer {
            addr: req.dst,
            transport: req.transport,
            conn: None,
        };
        self.start_client(now, m, peer, Purpose::Request(rid, None));
        Ok(rid)
    }

    /// Sends OPTIONS to `uri` at `dst` (§11).
    pub fn options(
        &mut self,
        now: Instant,
        uri: &str,
        dst: SocketAddr,
        transport: Transport,
    ) -> Result<RequestId, CommandError> {
        let from = format!(
            "sip:{}@{}",
            self.cfg.contact_user,
            // An IPv6 host goes in brackets (RFC 3261 §19.1.1, RFC 5118 §4.1).
            match self.local_addr(transport).ip() {
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                v4 => v4.to_string(),
            }
        );
        self.request(
            now,
            OutOfDialogRequest {
                method: Method::Options,
                uri: uri.to_owned(),
                from,
                to: uri.to_owned(),
                dst,
                transport,
                headers: Vec::new(),
                body: None,
                credentials: None,
            },
        )
    }

    // ---- responses -------------------------------------------------------------------------

    pub(super) fn on_response(&mut self, now: Instant, msg: Message, _peer: Peer) {
        let prefixes = self.prefix_cache.iter().map(|(_, _, p)| p.1.as_str());
        let Some(key) = ClientKey::for_response_after(&msg, prefixes) else {
            return;
        };
        // One lookup finds the transaction, runs its state machine and queues its timer.
        let mut out = std::mem::take(&mut self.scratch);
        let found = match self.client_txs.get_mut(&key) {
            Some(t) => {
                match &mut t.fsm {
                    ClientFsm::Invite(f) => f.on_response(now, &msg, &mut out),
                    ClientFsm::NonInvite(f) => f.on_response(now, &msg, &mut out),
                    ClientFsm::Ended => {}
                }
                Some(Self::schedule_client(&mut self.timer_heap, t))
            }
            None => None,
        };
        if let Some((peer, purpose)) = found {
            self.client_outputs(now, &key, peer, purpose, &mut out, false);
            self.scratch = out;
            return;
        }
        self.scratch = out;
        // A 2xx after the transaction ended (RFC 6026): the dialog ACKs it again.
        let is_invite_2xx = msg.status().is_some_and(|c| (200..300).contains(&c))
            && msg
                .cseq()
                .map(|c| c.method == Method::Invite)
                .unwrap_or(false);
        if is_invite_2xx && Self::is_proxy_branch(&msg) {
            // A 2xx retransmission after the proxy branch ended (§16.7 item 5).
            self.forward_response_stateless(&msg);
            return;
        }
        if is_invite_2xx {
            let Ok(call_id) = msg.call_id() else { return };
            let Some(tag) = msg
                .from_header()
                .ok()
                .and_then(|f| f.tag().map(Box::<str>::from))
            else {
                return;
            };
            if let Some(d) = self
                .by_tag
                .get(call_id, &tag, |d| super::call_id_in(&self.calls, d))
            {
                self.on_invite_2xx(now, d, &msg);
            }
        }
    }

    pub(super) fn run_client_outputs(
        &mut self,
        now: Instant,
        key: &ClientKey,
        out: &mut Vec<TxOutput>,
        transport_error: bool,
    ) {
        // One lookup for the transaction and its timer.
        let Some(t) = self.client_txs.get_mut(key) else {
            out.clear();
            return;
        };
        let (peer, purpose) = Self::schedule_client(&mut self.timer_heap, t);
        self.client_outputs(now, key, peer, purpose, out, transport_error);
    }

    /// [`Endpoint::schedule`] for client transaction `t`, whose state machine just ran: its
    /// deadline queued unless already; its peer and purpose, for [`Endpoint::client_outputs`].
    pub(super) fn schedule_client(
        heap: &mut super::TimerHeap,
        t: &mut ClientTx,
    ) -> (Peer, Purpose) {
        if let Some(at) = t.poll_timeout().filter(|&at| t.scheduled != Some(at)) {
            t.scheduled = Some(at);
            heap.push(at, super::TimerKind::Client, t.slot);
        }
        (t.peer, t.purpose)
    }

    /// What client transaction `key` (to `peer`, for `purpose`) put out, acted on.
    pub(super) fn client_outputs(
        &mut self,
        now: Instant,
        key: &ClientKey,
        peer: Peer,
        purpose: Purpose,
        out: &mut Vec<TxOutput>,
        transport_error: bool,
    ) {
        // Drained, not taken: the caller's scratch keeps its capacity for the next message.
        for o in out.drain(..) {
            match o {
                TxOutput::Send(b) => self.send(peer, b),
                TxOutput::Deliver(m) => match purpose {
                    Purpose::Proxy(c, i) => self.on_proxy_response(now, c, i, &m),
                    _ => self.on_client_response(now, purpose, key, &m),
                },
                TxOutput::Timeout(t) => match purpose {
                    Purpose::Proxy(c, i) => self.on_proxy_timeout(now, c, i, t),
                    _ => self.on_client_failure(now, purpose, 408),
                },
                TxOutput::Terminated => {
                    if let Some(mut t) = self.client_txs.remove(key) {
                        self.client_slots.remove(t.slot);
                        // Its box is kept for the next one, its state machine dropped.
                        if self.spare_client.len() < super::SPARE_CLIENT {
                            t.fsm = ClientFsm::Ended;
                            self.spare_client.push(t);
                        }
                    }
                    if transport_error {
                        self.on_client_failure(now, purpose, 503);
                    }
                }
            }
        }
    }

    fn on_client_failure(&mut self, now: Instant, purpose: Purpose, status: u16) {
        match purpose {
            Purpose::Invite(d) => {
                if let Some(c) = self.calls.get_mut(&d) {
                    if c.confirmed {
                        return;
                    }
                    if let Some(h) = c.uac.as_mut() {
                        h.on_failure(d, status, None);
                    }
                }
                let reason = if status == 408 {
                    EndReason::Timeout
                } else {
                    EndReason::TransportError
                };
                self.end_call(d, reason);
            }
            Purpose::ReInvite(d, rid) => {
                if let Some(c) = self.calls.get_mut(&d) {
                    c.reinvite_pending = false;
                    c.glare = None;
                }
                self.events.push_back(Event::ResponseReceived {
                    request: rid,
                    dialog: Some(d),
                    status,
                    response: None,
                });
                // §12.2.1.2: a timeout of an in-dialog request ends the dialog.
                if status == 408 {
                    let _ = self.bye(now, d);
                }
            }
            Purpose::Request(rid, d) => {
                self.events.push_back(Event::ResponseReceived {
                    request: rid,
                    dialog: d,
                    status,
                    response: None,
                });
                if status == 408 {
                    if let Some(d) = d {
                        let _ = self.bye(now, d);
                    }
                }
            }
            Purpose::Register(r) => self.on_register_failure(r, status),
            Purpose::Proxy(c, i) => self.proxy_branch_failed(now, c, i, status),
            Purpose::Cancel | Purpose::Bye => {}
        }
    }

    fn on_client_response(&mut self, now: Instant, purpose: Purpose, key: &ClientKey, m: &Message) {
        let Some(code) = m.status() else { return };
        match purpose {
            Purpose::Invite(d) => self.on_invite_response(now, d, key, m, code),
            Purpose::ReInvite(d, rid) => {
                if code < 200 {
                    return;
                }
                if (200..300).contains(&code) {
                    self.on_invite_2xx(now, d, m);
                    if let Some(c) = self.calls.get_mut(&d) {
                        if c.reinvite_pending {
                            c.reinvite_pending = false;
                            c.glare = None;
                            self.events.push_back(Event::ResponseReceived {
                                request: rid,
                                dialog: Some(d),
                                status: code,
                                response: Some(m.clone()),
                            });
                        }
                    }
                    return;
                }
                let Some(c) = self.calls.get_mut(&d) else {
                    return;
                };
                if !c.reinvite_pending {
                    return;
                }
                c.reinvite_pending = false;
                if code == 491 {
                    // §14.1: owner of the Call-ID waits 2.1-4 s, the other side 0-2 s, in
                    // units of 10 ms.
                    let units = if c.owns_call_id {
                        210 + (self.rng.next_u32() % 191)
                    } else {
                        self.rng.next_u32() % 201
                    };
                    if let Some(c) = self.calls.get_mut(&d) {
                        c.timers[CallTimer::GlareRetry as usize] =
                            Some(now + Duration::from_millis(units as u64 * 10));
                    }
                    self.schedule(TimerRef::Call(d));
                    return;
                }
                c.glare = None;
                self.events.push_back(Event::ResponseReceived {
                    request: rid,
                    dialog: Some(d),
                    status: code,
                    response: Some(m.clone()),
                });
                if code == 481 || code == 408 {
                    let _ = self.bye(now, d);
                }
            }
            Purpose::Request(rid, d) => {
                if code < 200 {
                    return;
                }
                self.events.push_back(Event::ResponseReceived {
                    request: rid,
                    dialog: d,
                    status: code,
                    response: Some(m.clone()),
                });
                if let Some(d) = d {
                    if code == 481 || code == 408 {
                        let _ = self.bye(now, d);
                    }
                }
            }
            Purpose::Register(r) => self.on_register_response(now, r, m, code),
            Purpose::Proxy(c, i) => self.on_proxy_response(now, c, i, m),
            Purpose::Cancel | Purpose::Bye => {}
        }
    }

    fn on_invite_response(
        &mut self,
        now: Instant,
        d: DialogId,
        key: &ClientKey,
        m: &Message,
        code: u16,
    ) {
        let Some(call) = self.calls.get_mut(&d) else {
            return;
        };
        if code < 200 {
            call.got_provisional = true;
            if code > 100 && !call.confirmed {
                let line = m.header(HeaderName::To);
                // Most often our To as we sent it with the peer's tag: read without parsing.
                let plain =
                    line.and_then(|v| crate::dialog::plain_tagged(&call.dialog.remote_uri, v));
                let to = match plain {
                    Some(_) => None,
                    None => m.to_header().ok(),
                };
                if let Some(tag) = plain.or_else(|| to.as_ref().and_then(|t| t.tag())) {
                    let ch = call.dialog.update_from_response_tagged(m, Some(tag));
                    if ch.changed {
                        call.target_peer = peer_after(&call.dialog, call.peer, ch.plain);
                    }
                    if plain.is_some() {
                        // `remote_uri;tag=remote_tag` byte for byte, the tag just taken.
                        call.to_parsed = true;
                    } else {
                        call.note_parsed_to(line);
                    }
                }
            }
            if let Some(h) = call.uac.as_mut() {
                h.on_provisional(d, m);
            }
            let send_cancel = call.cancel_requested && !call.cancel_sent;
            self.events.push_back(Event::CallProgress {
                dialog: d,
                status: code,
                body: Body::of(m),
            });
            if send_cancel {
                self.send_cancel(now, d);
            }
            return;
        }
        if code < 300 {
            self.on_invite_2xx(now, d, m);
            return;
        }
        if call.confirmed {
            return;
        }
        // Only the INVITE in flight decides the call (an earlier, challenged one is ACKed only).
        let current = call
            .invite
            .as_ref()
            .and_then(|i| {
                i.top_via()
                    .ok()
                    .and_then(|v| v.branch().map(|b| b.as_bytes() == key.branch()))
            })
            .unwrap_or(false);
        if !current {
            return;
        }
        if (code == 401 || code == 407) && !call.auth_tried && !call.cancel_requested {
            if let Some(creds) = call.creds.as_deref().cloned() {
                call.auth_tried = true;
                if self.learn_challenge(m, &creds) && self.resend_invite_with_auth(now, d, &creds) {
                    return;
                }
            }
        }
        let Some(call) = self.calls.get_mut(&d) else {
            return;
        };
        if (300..400).contains(&code) {
            let contacts: Vec<String> = m
                .contacts()
                .filter_map(|c| c.ok())
                .filter_map(|c| match c {
                    crate::header::ContactValue::Addr(a) => Some(a.uri_str().to_owned()),
                    crate::header::ContactValue::Star => None,
                })
                .collect();
            if let Some(h) = call.uac.as_mut() {
                h.on_redirect(d, m);
            }
            self.events.push_back(Event::CallRedirected {
                dialog: d,
                contacts,
            });
            self.end_call(d, EndReason::Rejected(code));
            return;
        }
        if let Some(h) = call.uac.as_mut() {
            h.on_failure(d, code, Some(m));
        }
        let reason = if code == 487 && call.cancel_requested {
            EndReason::Cancelled
        } else if code == 408 {
            EndReason::Timeout
        } else {
            EndReason::Rejected(code)
        };
        self.end_call(d, reason);
    }

    fn resend_invite_with_auth(
        &mut self,
        now: Instant,
        d: DialogId,
        creds: &DigestCredentials,
    ) -> bool {
        let branch = self.new_branch();
        let Some(call) = self.calls.get_mut(&d) else {
            return false;
        };
        let Some(old) = call.invite.clone() else {
            return false;
        };
        let cseq = call.dialog.next_cseq();
        let (local, peer) = (call.local, call.peer);
        let Some(mut b) = RequestBuilder::from_message(&old) else {
            return false;
        };
        b = b
            .remove_header(HeaderName::Via)
            .remove_header(HeaderName::CSeq)
            .remove_header(HeaderName::Authorization)
            .remove_header(HeaderName::ProxyAuthorization)
            .prepend_header(
                HeaderName::Via,
                self.via_for(local, peer.transport, &branch),
            )
            .header(HeaderName::CSeq, format!("{cseq} INVITE"));
        let uri = old.request_uri_str().unwrap_or("").to_owned();
        b = self.authorize(b, Some(creds), &Method::Invite, &uri);
        let Ok(m) = b.build() else { return false };
        if let Some(c) = self.calls.get_mut(&d) {
            c.invite = Some(m.clone());
        }
        self.start_client(now, m, peer, Purpose::Invite(d))
            .is_some()
    }

    /// A 2xx to an INVITE or re-INVITE (§13.2.2.4): confirm, ACK; the same 2xx again gets the
    /// same ACK; a 2xx from another fork gets ACK and BYE.
    fn on_invite_2xx(&mut self, now: Instant, d: DialogId, m: &Message) {
        let branch = self.new_branch_inline();
        // One lookup of the call; the Via prefix from the cache beside it.
        let Some(call) = self.calls.get_mut(&d) else {
            return;
        };
        let (local, transport) = (call.local, call.peer.transport);
        let via = super::prefixes_in(&mut self.prefix_cache, &self.cfg, local, transport);
        let via = [via.1.as_str(), branch.as_str(), ";rport"];
        // The To of a 2xx is most often the bytes of its 1xx's, parsed already.
        let line = m.header(HeaderName::To);
        let known = call.known_to_tag(line);
        let parsed = match known {
            Some(_) => None,
            None => m.to_header().ok(),
        };
        let to_tag = known.or_else(|| parsed.as_ref().and_then(|t| t.tag()));
        let tag = to_tag.unwrap_or_default();
        let seq = m.cseq().map(|c| c.seq).unwrap_or(0);
        if call.confirmed && *tag != *call.dialog.remote_tag {
            // Forking (§13.2.2.4): a second dialog is ACKed and ended at once.
            let mut other = call.dialog.clone();
            other.remote_tag = tag.into();
            other.route_set.clear();
            other.state = DialogState::Early;
            other.update_from_response(m);
            let peer = peer_for(&other, call.peer);
            if let Ok(ack) = other
                .request(Method::Ack, seq)
                .prepend_header_pieces(HeaderName::Via, &via)
                .header(HeaderName::MaxForwards, "70")
                .build_bytes()
            {
                self.send(peer, ack);
            }
            let branch2 = self.new_branch();
            let via2 = self.via_for(local, transport, &branch2);
            let bye_cseq = other.next_cseq();
            if let Ok(bye) = other
                .request(Method::Bye, bye_cseq)
                .prepend_header(HeaderName::Via, via2)
                .header(HeaderName::MaxForwards, "70")
                .build()
            {
                self.start_client(now, bye, peer, Purpose::Bye);
            }
            return;
        }
        if call.confirmed && seq < call.ack_cseq {
            return;
        }
        // The same 2xx again (its ACK was lost) gets an ACK built again, not a kept copy: the
        // ACK of a 2xx is a request of the dialog, generated for each 2xx (§13.2.2.4).
        let again = call.confirmed && seq == call.ack_cseq;
        let first = !call.confirmed;
        if first {
            let ch = call.dialog.update_from_response_tagged(m, to_tag);
            if known.is_none() {
                // Parsed now: remembered only when it gave the tag the dialog took.
                call.note_parsed_to(line.filter(|_| to_tag.is_some()));
            }
            if ch.changed {
                call.target_peer = peer_after(&call.dialog, call.peer, ch.plain);
            }
            call.dialog.state = DialogState::Confirmed;
            call.confirmed = true;
            call.invite = None;
        } else if !again {
            call.dialog.refresh_target(m);
            call.target_peer = None;
        }
        let peer = call.target_peer();
        // Sent and not kept: written into the shared buffer, as responses are.
        let ack = match call
            .dialog
            .write_request_bytes(&Method::Ack, seq, &via, &mut self.wire)
        {
            Some(ack) => ack,
            None => {
                let Ok(ack) = call
                    .dialog
                    .request_in(Method::Ack, seq, &mut self.builder_bufs)
                    .prepend_header_pieces(HeaderName::Via, &via)
                    .header(HeaderName::MaxForwards, "70")
                    .build_bytes_in(&mut self.builder_bufs, &mut self.wire)
                else {
                    return;
                };
                ack
            }
        };
        call.ack_cseq = seq;
        // What `send` does, beside the call still borrowed (no second lookup of it).
        let conn = peer.conn.filter(|c| self.conns.contains_key(c));
        self.transmits.push_back(Transmit {
            dst: peer.addr,
            transport: peer.transport,
            conn,
            payload: ack,
        });
        if !first {
            return;
        }
        let answer = Body::of(m);
        if let Some(h) = call.uac.as_mut() {
            h.on_success(d, m);
            h.on_call_established(d, answer.as_ref());
        }
        let cancelled = call.cancel_requested;
        self.events.push_back(Event::CallAnswered {
            dialog: d,
            answer: answer.clone(),
        });
        self.events.push_back(Event::CallEstablished {
            dialog: d,
            role: Role::Uac,
            remote_sdp: answer,
        });
        if cancelled {
            // §9.1: the CANCEL crossed the 2xx; the call is ended with BYE.
            if let Some((bye, branch, peer)) = self.in_dialog_request(d, Method::Bye, &[], None) {
                self.start_client_with_branch(
                    now,
                    bye,
                    Method::Bye,
                    branch.as_str(),
                    peer,
                    Purpose::Bye,
                );
            }
            self.end_call(d, EndReason::Cancelled);
        }
    }
}

/// Where in-dialog requests go after an update that changed the remote target or the route
/// set ([`crate::dialog::TargetChange`]): what [`peer_for`] gives, from the new target's address
/// read already, when that target is plain and there is no route set; `None` (worked out when
/// needed) otherwise.
fn peer_after(d: &Dialog, default: Peer, plain: Option<SocketAddr>) -> Option<Peer> {
    let addr = plain.filter(|_| d.route_set.is_empty())?;
    Some(Peer {
        addr,
        transport: default.transport,
        conn: if addr == default.addr {
            default.conn
        } else {
            None
        },
    })
}

pub(super) fn peer_for(d: &Dialog, default: Peer) -> Peer {
    let target = match d.route_set.first() {
        Some(r) if r.contains(";lr") => r.as_ref(),
        Some(r) => r.as_ref(),
        None => d.remote_target.as_ref(),
    };
    // A plain target holds no white space or angle bracket: `bare_uri` would give it as it is.
    match crate::dialog::plain_sip_ipv4(target).or_else(|| uri_socket_addr(bare_uri(target))) {
        Some(addr) => Peer {
            addr,
            transport: default.transport,
            conn: if addr == default.addr {
                default.conn
            } else {
                None
            },
        },
        None => default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialog::plain_sip_ipv4;
    use proptest::prelude::*;

    proptest! {
        /// The plain-shape reading of a target gives what the URI grammar gives, whenever it
        /// gives anything; and it reads the shape the endpoint's own Contacts have.
        #[test]
        fn a_plain_sip_ipv4_target_reads_as_the_uri_grammar_reads_it(
            uri in prop_oneof![
                "sip:[a-zA-Z0-9_.~-]{1,8}@[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}(:[0-9]{0,6})?",
                "(sip|sips|SIP):[a-z%@:;.<> ]{0,6}@?[0-9.]{0,12}(:[0-9a-z]{0,6})?[;>?]?[a-z=]{0,4}",
                "sip:[!~*'()a-z]{1,4}@(0|00|1|255|256)\\.[0-9]\\.[0-9]\\.(0|01|9):(0|00|65535|65536|5060)",
            ]
        ) {
            if let Some(addr) = plain_sip_ipv4(&uri) {
                prop_assert_eq!(Some(addr), uri_socket_addr(bare_uri(&uri)), "{}", uri);
            }
        }
    }

    proptest! {
        /// After an update, the peer worked out from a plain target's address is the one
        /// `peer_for` gives, for any target, route set and dialog peer.
        #[test]
        fn the_peer_after_a_plain_target_is_the_one_peer_for_gives(
            target in "sip:[a-z]{1,3}@10\\.0\\.0\\.[1-3](:506[0-2])?|sip:b@h",
            routes in prop::collection::vec("<sip:10\\.0\\.0\\.9(;lr)?>", 0..2),
            port in 5060u16..5063,
            conn in prop::option::of(1u64..3),
        ) {
            let mut d = Dialog {
                state: crate::dialog::DialogState::Early,
                role: crate::dialog::Role::Uac,
                call_id: "c".into(),
                local_tag: "1".into(),
                remote_tag: "2".into(),
                local_uri: "<sip:a@h>".into(),
                remote_uri: "<sip:b@h>".into(),
                remote_target: target.clone().into(),
                route_set: routes.into_iter().map(Box::from).collect(),
                local_cseq: 1,
                remote_cseq: None,
            };
            let default = Peer {
                addr: SocketAddr::from(([10, 0, 0, 2], port)),
                transport: Transport::Udp,
                conn: conn.map(crate::ConnectionId),
            };
            if let Some(p) = peer_after(&d, default, plain_sip_ipv4(&target)) {
                let q = peer_for(&d, default);
                prop_assert_eq!((p.addr, p.transport, p.conn), (q.addr, q.transport, q.conn));
            }
            d.route_set.clear();
            prop_assert_eq!(
                peer_after(&d, default, plain_sip_ipv4(&target)).is_some(),
                plain_sip_ipv4(&target).is_some()
            );
        }
    }

    #[test]
    fn an_endpoint_contact_target_is_read_plainly() {
        assert_eq!(
            plain_sip_ipv4("sip:parrot@10.0.0.2:5062"),
            Some("10.0.0.2:5062".parse().unwrap())
        );
        assert_eq!(
            plain_sip_ipv4("sip:bob@192.0.2.4"),
            Some("192.0.2.4:5060".parse().unwrap())
        );
        assert_eq!(plain_sip_ipv4("sip:bob@example.com"), None);
        assert_eq!(plain_sip_ipv4("sip:bob@192.0.2.4;transport=tcp"), None);
        assert_eq!(plain_sip_ipv4("sip:bob@192.0.2.4:"), None);
        // A leading zero reads as the URI grammar reads it (the scan is the parser's own).
        assert_eq!(
            plain_sip_ipv4("sip:bob@192.0.2.04"),
            uri_socket_addr(bare_uri("sip:bob@192.0.2.04"))
        );
        assert_eq!(plain_sip_ipv4("sip:bob@192.0.2.4:65536"), None);
    }
}
