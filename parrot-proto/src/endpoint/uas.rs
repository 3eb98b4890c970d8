//! The UAS core (RFC 3261 §8.2, §9.2, §12.2.2, §13.3, §14.2, §15.1.2, §17.2, §18.2, RFC 3581).
//!
//! A new request passes the checks of §8.2 in order (method, Max-Forwards, URI scheme, dialog,
//! merged request, Require, body type, caps), gets a server transaction, a 100 Trying if it is an
//! INVITE, and goes to its handler. Responses leave per §18.2.2 with `received`/`rport` added to
//! the top Via (RFC 3581 §4). A 2xx to INVITE is retransmitted by the call until the ACK comes
//! (§13.3.1.4); without ACK the call sends BYE.

use super::*;
use crate::builder::{ResponseHead, Top};
use crate::dialog::{DialogState, Role};
use crate::handler::{Action, Reply, Request};
use crate::transaction::{MergeKey, ServerRequestOutcome};
use crate::{HeaderName, ResponseBuilder};

/// How many boxes of response heads the endpoint keeps for reuse.
const SPARE_HEADS: usize = 16;

use super::SPARE_SERVER;

impl Endpoint {
    pub(super) fn on_request(&mut self, now: Instant, msg: Message, peer: Peer, local: SocketAddr) {
        let Some(method) = msg.method() else { return };
        // The top Via is read once: for the key, the response address and its fix.
        let Ok(top) = msg.top_via() else {
            return; // no usable Via: there is nowhere to answer (§18.2.1)
        };
        // Its branch, rport and validity in one scan where its parameters are plain.
        let summary = top.plain_summary();
        let branch = summary.map_or_else(|| top.branch(), |s| s.branch);
        let Some(key) = ServerKey::server_for(&msg, &top, branch, method.clone()) else {
            return;
        };
        // Retransmissions and ACKs for non-2xx (§17.2.3). The key is hashed once, for this
        // lookup and the new transaction's entry.
        let key_hash = self.server_index.hash_of(&key);
        let found = self.server_index.get_hashed(
            key_hash,
            &key,
            super::server_key_of(&self.server_txs, &self.lingering),
        );
        if let Some(id) = found {
            let is_ack = method == Method::Ack;
            if let Some(t) = self.lingering_get(id) {
                match (t.kind, is_ack) {
                    (Linger::NonInvite, false) => {
                        if let Some(last) = t.last.clone() {
                            let peer = t.peer;
                            self.send(peer, last);
                        }
                    }
                    (Linger::InviteAccepted, true) => self.on_ack_2xx(now, &msg, peer),
                    _ => {}
                }
                return;
            }
            let mut out = std::mem::take(&mut self.scratch);
            let mut to_tu = false;
            if let Some(t) = self.server_txs.get_mut(&id) {
                match &mut t.fsm {
                    ServerFsm::Invite(f) => {
                        to_tu = f.on_request(now, is_ack, &mut out) == ServerRequestOutcome::ToTu;
                    }
                    ServerFsm::NonInvite(f) => {
                        if !is_ack {
                            f.on_request(&mut out);
                        }
                    }
                }
            }
            self.run_server_outputs(now, id, &mut out);
            self.scratch = out;
            if to_tu {
                self.on_ack_2xx(now, &msg, peer);
            }
            return;
        }
        // Requests record-routed through us, inside someone else's dialog (§16.12).
        if self.proxy_route_request(now, &msg, peer, local) {
            return;
        }
        if method == Method::Ack {
            // ACK for a 2xx is its own transaction and goes to the dialog (§13.2.2.4, §17.2.3).
            self.on_ack_2xx(now, &msg, peer);
            return;
        }
        // `rport` is read once for both (RFC 3581 §4).
        let rport = summary.map_or_else(|| top.rport(), |s| s.rport);
        let via_fix = via_fix_with(&msg, &top, rport, peer.addr);
        let rpeer = response_peer_with(&top, rport, peer);
        // §8.2: validation first; each failure has its RFC answer.
        // An in-dialog request's From and To, when they are the bytes its dialog parsed
        // already, are not parsed again.
        let (known, known_dialog) = self.known_from_to(&msg);
        let checked = match msg.checked_with_known(Some((top, summary.map(|s| s.valid))), known) {
            Ok(c) => c,
            Err(e) => {
                let code = e.response_code().unwrap_or(400);
                self.respond_stateless(&msg, rpeer, via_fix.as_ref(), Reply::new(code));
                return;
            }
        };
        let to_tag = checked.to_tag;
        // The UAS-only answers (405, 420, 415) of a request outside a dialog wait for the
        // handler when the element proxies (§16.3; `ProxyConfig::defer_uas_checks`). Not for
        // REGISTER: a registrar's handler commits bindings as it answers, and §10.3 step 2
        // puts the Require check before that.
        let defer =
            self.cfg.proxy.defer_uas_checks && to_tag.is_none() && method != Method::Register;
        let mut held: Option<Reply> = None;
        if !self.cfg.allow.contains(&method) {
            let allow = self.allow_header();
            let reply = Reply::new(405).header("Allow", allow);
            if !defer {
                self.respond_stateless(&msg, rpeer, via_fix.as_ref(), reply);
                return;
            }
            held = Some(reply);
        }
        if method != Method::Options && checked.max_forwards == Some(0) {
            self.respond_stateless(&msg, rpeer, via_fix.as_ref(), Reply::new(483));
            return;
        }
        let scheme_ok = checked.scheme.is_some_and(|s| {
            s.eq_ignore_ascii_case("sip")
                || s.eq_ignore_ascii_case("sips")
                || s.eq_ignore_ascii_case("tel")
        });
        if !scheme_ok {
            self.respond_stateless(&msg, rpeer, via_fix.as_ref(), Reply::new(416));
            return;
        }
        let call_id = checked.call_id;
        let dialog = match to_tag {
            // Found already with this Call-ID and tag, when the To was known.
            Some(tag) => match known_dialog.or_else(|| {
                self.by_tag
                    .get(call_id, tag, |d| super::call_id_in(&self.calls, d))
            }) {
                Some(d) => Some(d),
                None => {
                    // §12.2.2 (and §9.2 for a CANCEL): nothing matches.
                    self.respond_stateless(&msg, rpeer, via_fix.as_ref(), Reply::new(481));
                    return;
                }
            },
            None => None,
        };
        if method == Method::Cancel {
            self.on_cancel(now, &msg, rpeer, local, via_fix);
            return;
        }
        // Overload: new work is refused while the receive queue has not emptied for
        // `shed_after`, before anything is made for it (§21.5.4).
        if dialog.is_none() && self.is_shedding(now) {
            self.shed += 1;
            self.respond_unavailable(&msg, rpeer, via_fix.as_ref());
            return;
        }
        // §8.2.2.2 merged requests: same From tag, Call-ID and CSeq, another branch.
        // Kept inline by the transaction (no allocation for an ordinary peer's), which the
        // index reads it from.
        let merge_key = to_tag.is_none().then(|| {
            MergeKey::new(
                call_id,
                checked.from_tag.unwrap_or(""),
                checked.cseq.seq,
                &method,
            )
        });
        let merge_hash = merge_key.as_ref().map(|mk| self.merge_index.hash_of(mk));
        if let (Some(mk), Some(h)) = (&merge_key, merge_hash) {
            let merged = self.merge_index.get_hashed(
                h,
                mk,
                super::merge_key_of(&self.server_txs, &self.lingering),
            );
            if merged.is_some() {
                self.respond_stateless(&msg, rpeer, via_fix.as_ref(), Reply::new(482));
                return;
            }
        }
        // A request without Require (the common one) has no list to make.
        let unsupported: Vec<&str> = if msg.header(HeaderName::Require).is_none() {
            Vec::new()
        } else {
            msg.require()
                .filter(|t| !self.cfg.supported.iter().any(|s| s.eq_ignore_ascii_case(t)))
                .collect()
        };
        if !unsupported.is_empty() && held.is_none() {
            let v = unsupported.join(", ");
            let reply = Reply::new(420).header("Unsupported", v);
            if !defer {
                self.respond_stateless(&msg, rpeer, via_fix.as_ref(), reply);
                return;
            }
            held = Some(reply);
        }
        if !msg.body_slice().is_empty() && held.is_none() {
            let ok_type = match &checked.content_type {
                Some(ct) => self.cfg.accept.iter().any(|a| ct.is_written(a)),
                _ => false,
            };
            let ok_enc = msg.header(HeaderName::ContentEncoding).is_none()
                || msg
                    .tokens(HeaderName::ContentEncoding)
                    .all(|e| e.eq_ignore_ascii_case("identity"));
            if !ok_type || !ok_enc {
                let accept = self.cfg.accept.join(", ");
                let reply = Reply::new(415)
                    .header("Accept", accept)
                    .header("Accept-Encoding", "identity");
                if !defer {
                    self.respond_stateless(&msg, rpeer, via_fix.as_ref(), reply);
                    return;
                }
                held = Some(reply);
            }
        }
        // Bounded state: past the caps, 503 + Retry-After without creating anything. Only new
        // work is shed: requests inside an existing dialog (a BYE above all) are always taken,
        // since refusing them would keep the very state the cap protects alive longer.
        let over = dialog.is_none()
            && (self.tx_count() >= self.cfg.max_transactions
                || (method == Method::Invite && self.calls.len() >= self.cfg.max_dialogs));
        if over {
            self.respond_unavailable(&msg, rpeer, via_fix.as_ref());
            return;
        }
        let mut glare = false;
        if let Some(d) = dialog {
            // §12.2.2: CSeq lower than the last one seen gets 500.
            let seq = checked.cseq.seq;
            let Some(call) = self.calls.get_mut(&d) else {
                return;
            };
            if call.dialog.remote_cseq.is_some_and(|r| seq <= r) {
                self.respond_stateless(
                    &msg,
                    rpeer,
                    via_fix.as_ref(),
                    Reply::new(500).reason("Out of Order CSeq"),
                );
                return;
            }
            call.dialog.remote_cseq = Some(seq);
            // §14.2 glare: a re-INVITE while one of ours or another of theirs is pending gets
            // 491 on its own transaction (so its retransmissions get the 491 again).
            glare = method == Method::Invite && (call.reinvite_pending || call.server_tx.is_some());
            if !glare && matches!(method, Method::Invite | Method::Update) {
                call.dialog.refresh_target(&msg);
                call.target_peer = None;
            }
        }
        // A new server transaction.
        let id = self.next_id();
        let reliable = peer.transport.is_reliable();
        let fsm = if method == Method::Invite {
            ServerFsm::Invite(ServerInviteTransaction::new(reliable, self.cfg.timers))
        } else {
            ServerFsm::NonInvite(ServerNonInviteTransaction::new(reliable, self.cfg.timers))
        };
        let tx_to_tag = match to_tag {
            Some(t) => super::TxTag::of(&msg, t),
            None => super::TxTag::Own(self.new_tag().into()),
        };
        // A new dialog's local tag (§12.1.1), which the transaction's responses carry too.
        let dialog_tag = (method == Method::Invite && dialog.is_none())
            .then(|| Box::<str>::from(tx_to_tag.as_str(&msg)));
        if let (Some(mk), Some(h)) = (&merge_key, merge_hash) {
            self.merge_index.insert_hashed(
                h,
                mk,
                id,
                super::merge_key_of(&self.server_txs, &self.lingering),
            );
        }
        let tx = ServerTx {
            key,
            key_hash: 0,
            fsm,
            peer: rpeer,
            local,
            request: msg.clone(),
            via_fix,
            to_tag: tx_to_tag,
            to_tagged: Some(to_tag.is_some()),
            cseq: Some(checked.cseq.seq),
            dialog,
            merge_key,
            head: None,
            scheduled: None,
            trying_at: None,
        };
        // In the box of one that went on lingering, when there is one.
        let tx = match self.spare_server.pop() {
            Some(mut b) => {
                *b = tx;
                b
            }
            None => Box::new(tx),
        };
        self.add_server_tx_hashed(id, key_hash, tx);
        let txk = ServerTxKey(id);
        if method == Method::Invite {
            // §8.2.6.1 / §17.2.1: 100 Trying without a To tag, at once or, with a delay, only
            // if no response goes first.
            let delay = self.cfg.trying_delay;
            if delay.is_zero() {
                self.respond_tx_inner(now, id, Reply::new(100), false);
            } else if let Some(t) = self.server_txs.get_mut(&id) {
                t.trying_at = Some(now + delay);
                self.schedule(TimerRef::Server(id));
            }
        }
        if glare {
            let _ = self.respond(now, txk, Reply::new(491));
            return;
        }
        if let Some(d) = dialog {
            // In-dialog requests are reported too, so an adapter sees re-INVITE / UPDATE
            // offers (hold, codec change) and INFO bodies without writing a handler.
            self.events.push_back(Event::RequestReceived {
                dialog: d,
                tx: txk,
                method: method.clone(),
                body: crate::handler::Body::of_typed(&msg, || checked.content_type_line),
            });
        }
        match (&method, dialog) {
            (Method::Invite, None) => {
                let local_tag = dialog_tag.unwrap_or_default();
                let Some(dlg) = Dialog::uas_checked(&msg, &checked, local_tag) else {
                    let _ = self.respond(now, txk, Reply::new(400));
                    return;
                };
                let did = DialogId(self.next_id());
                let mut call = Call::new(dlg, rpeer, local);
                call.to_local = checked.to_tag.is_none()
                    && checked.to.ends_with('>')
                    && *call.dialog.local_uri == *checked.to
                    && crate::text::is_token(&call.dialog.local_tag);
                call.from_remote = checked.from_tag.is_some() && call.is_remote(checked.from);
                call.server_tx = Some(id);
                call.offer = crate::handler::Body::of_typed(&msg, || checked.content_type_line);
                self.by_tag
                    .insert(&call.dialog.call_id, &call.dialog.local_tag, did, |d| {
                        super::call_id_in(&self.calls, d)
                    });
                if let Some(f) = self.factory.as_mut() {
                    let mut h = f.new_handler();
                    h.init();
                    call.uas = Some(h);
                }
                self.calls.insert(did, call);
                if let Some(t) = self.server_txs.get_mut(&id) {
                    t.dialog = Some(did);
                }
                self.events.push_back(Event::IncomingCall {
                    dialog: did,
                    tx: txk,
                    request: msg.clone(),
                    offer: crate::handler::Body::of_typed(&msg, || checked.content_type_line),
                });
                match held {
                    None => self.dispatch(now, id, Some(did), &msg, peer),
                    Some(reply) => self.dispatch_held(now, id, Some(did), &msg, peer, reply),
                }
            }
            (Method::Invite, Some(d)) => {
                if let Some(c) = self.calls.get_mut(&d) {
                    c.server_tx = Some(id);
                }
                self.dispatch(now, id, Some(d), &msg, peer);
            }
            (Method::Bye, Some(d)) => {
                self.dispatch(now, id, Some(d), &msg, peer);
                if self.server_txs.get(&id).is_some_and(|t| !t.has_final()) {
                    let _ = self.respond(now, txk, Reply::new(200));
                }
                self.end_call(d, EndReason::RemoteBye);
            }
            _ => match held {
                None => self.dispatch(now, id, dialog, &msg, peer),
                Some(reply) => self.dispatch_held(now, id, dialog, &msg, peer, reply),
            },
        }
    }

    /// `add_server_tx` for a transaction whose key's hash in the index is `h` already.
    fn add_server_tx_hashed(&mut self, id: u64, h: u64, mut tx: Box<ServerTx>) {
        tx.key_hash = self.server_index.insert_hashed(
            h,
            &tx.key,
            id,
            super::server_key_of(&self.server_txs, &self.lingering),
        );
        self.server_txs.insert(id, tx);
    }

    /// [`Endpoint::dispatch`] for a request whose UAS answer (405, 420, 415) was held back
    /// (`ProxyConfig::defer_uas_checks`): a handler that proxies it has it proxied; any other
    /// action gives way to `reply`, and an INVITE's call record goes without surfacing.
    fn dispatch_held(
        &mut self,
        now: Instant,
        id: u64,
        dialog: Option<DialogId>,
        msg: &Message,
        peer: Peer,
        reply: Reply,
    ) {
        let action = self.call_handler(dialog, Some(ServerTxKey(id)), msg, peer);
        if matches!(action, Action::Proxy(_) | Action::ProxyTo(_)) {
            self.apply_action(now, Some(id), dialog, action);
            return;
        }
        if let Some(d) = dialog {
            self.forget_call(d);
            if let Some(t) = self.server_txs.get_mut(&id) {
                t.dialog = None;
            }
        }
        let _ = self.respond(now, ServerTxKey(id), reply);
    }

    fn allow_header(&self) -> String {
        allow_header(&self.cfg)
    }

    /// §9.2: CANCEL gets 200 on its own transaction; a pending INVITE gets 487.
    fn on_cancel(
        &mut self,
        now: Instant,
        msg: &Message,
        rpeer: Peer,
        local: SocketAddr,
        via_fix: Option<ViaFix>,
    ) {
        let Some(target) = ServerKey::cancel_target(msg) else {
            return;
        };
        let Some(inv_id) = self.server_index.get(
            &target,
            super::server_key_of(&self.server_txs, &self.lingering),
        ) else {
            self.respond_stateless(msg, rpeer, via_fix.as_ref(), Reply::new(481));
            return;
        };
        if self.tx_count() >= self.cfg.max_transactions {
            self.respond_unavailable(msg, rpeer, via_fix.as_ref());
            return;
        }
        let Some(key) = ServerKey::server(msg) else {
            return;
        };
        let (to_tag, dialog, pending) = match self.server_txs.get(&inv_id) {
            Some(t) => (
                super::TxTag::Own(t.to_tag.as_str(&t.request).into()),
                t.dialog,
                !t.has_final(),
            ),
            None => match self.lingering_get(inv_id) {
                Some(t) => (super::TxTag::Own(t.to_tag.clone()), t.dialog, false),
                None => return,
            },
        };
        // A lingering INVITE was found by its handle: the rest names it by its id.
        let inv_id = self.lingering_get(inv_id).map_or(inv_id, |t| t.id);
        let id = self.next_id();
        self.add_server_tx(
            id,
            Box::new(ServerTx {
                key,
                key_hash: 0,
                fsm: ServerFsm::NonInvite(ServerNonInviteTransaction::new(
                    rpeer.transport.is_reliable(),
                    self.cfg.timers,
                )),
                peer: rpeer,
                local,
                request: msg.clone(),
                via_fix,
                to_tag,
                to_tagged: None,
                cseq: None,
                dialog,
                merge_key: None,
                head: None,
                scheduled: None,
                trying_at: None,
            }),
        );
        let _ = self.respond(now, ServerTxKey(id), Reply::new(200));
        if self.proxies.contains_key(&inv_id) {
            // §16.10: the branches are cancelled; their answers decide the INVITE's.
            self.proxy_on_cancel(now, inv_id);
            return;
        }
        if pending {
            if let Some(d) = dialog {
                if let Some(c) = self.calls.get_mut(&d) {
                    c.cancelled = true;
                }
                let peer = rpeer;
                self.dispatch(now, id, Some(d), msg, peer);
            }
            let _ = self.respond(now, ServerTxKey(inv_id), Reply::new(487));
        }
    }

    /// For [`Message::checked_with_known`]: the lengths of the tags ending the first From and
    /// To lines of `msg` when they are those of the UAS dialog their tags name, as the INVITE
    /// had them (From) or as our 2xx wrote them (To; see `Call::tagged_local_to`).
    ///
    /// With them, the dialog found: the one validation's Call-ID and To tag name.
    fn known_from_to(&self, msg: &Message) -> ([Option<usize>; 2], Option<DialogId>) {
        const NONE: ([Option<usize>; 2], Option<DialogId>) = ([None, None], None);
        // A To without a tag (a new request) needs no Call-ID lookup.
        let Some(to) = msg.header(HeaderName::To) else {
            return NONE;
        };
        let Some(tag) = super::last_tag(to) else {
            return NONE;
        };
        let Some(d) = msg.header(HeaderName::CallId).and_then(|call_id| {
            self.by_tag
                .get(call_id, tag, |d| super::call_id_in(&self.calls, d))
        }) else {
            return NONE;
        };
        let Some(c) = self.calls.get(&d).filter(|c| c.tagged_local_to(to)) else {
            return NONE;
        };
        let from = msg
            .header(HeaderName::From)
            .filter(|f| c.from_remote && c.is_remote(f))
            .map(|_| c.dialog.remote_tag.len());
        ([from, Some(c.dialog.local_tag.len())], Some(d))
    }

    /// An ACK for a 2xx (§13.3.1.4): stops the retransmission and confirms the call.
    fn on_ack_2xx(&mut self, now: Instant, msg: &Message, peer: Peer) {
        let Ok(call_id) = msg.call_id() else { return };
        // Most often the To is the one our 2xx carried, `local_uri;tag=local_tag`: the dialog
        // its last tag names is asked first, and the To is parsed only when it is not that.
        let line = msg.header(HeaderName::To);
        let known = line.and_then(|v| {
            let tag = super::last_tag(v)?;
            let d = self
                .by_tag
                .get(call_id, tag, |d| super::call_id_in(&self.calls, d))?;
            self.calls
                .get(&d)
                .is_some_and(|c| c.tagged_local_to(v))
                .then_some(d)
        });
        let d = match known {
            Some(d) => d,
            None => {
                let Ok(to) = msg.to_header() else { return };
                let Some(tag) = to.tag() else {
                    return;
                };
                let Some(d) = self
                    .by_tag
                    .get(call_id, tag, |d| super::call_id_in(&self.calls, d))
                else {
                    return;
                };
                d
            }
        };
        let seq = msg.cseq().map(|c| c.seq).unwrap_or(0);
        let Some(call) = self.calls.get_mut(&d) else {
            return;
        };
        if call.pending_2xx.is_none() || call.pending_2xx_cseq != seq {
            return; // a retransmitted ACK: absorbed, never answered
        }
        call.pending_2xx = None;
        call.timers[CallTimer::Retransmit2xx as usize] = None;
        call.timers[CallTimer::AckWait as usize] = None;
        let body = crate::handler::Body::of(msg);
        let first = !call.acked;
        call.acked = true;
        let remote_sdp = body.clone().or_else(|| call.offer.take());
        self.events.push_back(Event::AckReceived {
            dialog: d,
            body: body.clone(),
        });
        if first {
            self.events.push_back(Event::CallEstablished {
                dialog: d,
                role: Role::Uas,
                remote_sdp,
            });
        }
        self.dispatch_no_tx(now, Some(d), msg, peer);
    }

    /// Calls the handler for `msg` and applies its action to server transaction `id`.
    fn dispatch(
        &mut self,
        now: Instant,
        id: u64,
        dialog: Option<DialogId>,
        msg: &Message,
        peer: Peer,
    ) {
        let action = self.call_handler(dialog, Some(ServerTxKey(id)), msg, peer);
        self.apply_action(now, Some(id), dialog, action);
    }

    fn dispatch_no_tx(
        &mut self,
        now: Instant,
        dialog: Option<DialogId>,
        msg: &Message,
        peer: Peer,
    ) {
        let action = self.call_handler(dialog, None, msg, peer);
        self.apply_action(now, None, dialog, action);
    }

    fn call_handler(
        &mut self,
        dialog: Option<DialogId>,
        tx: Option<ServerTxKey>,
        msg: &Message,
        peer: Peer,
    ) -> Action {
        let Some(method) = msg.method() else {
            return Action::NoReply;
        };
        let own = dialog
            .and_then(|d| self.calls.get_mut(&d))
            .and_then(|c| c.uas.take());
        let (mut h, is_own) = match own {
            Some(h) => (h, true),
            None => match self.default_handler.take() {
                Some(h) => (h, false),
                None => match self.factory.as_mut() {
                    Some(f) => {
                        let mut h = f.new_handler();
                        h.init();
                        (h, false)
                    }
                    None => {
                        return match method {
                            Method::Ack | Method::Cancel | Method::Invite => Action::NoReply,
                            Method::Bye => Action::respond(200),
                            _ => Action::not_implemented(),
                        }
                    }
                },
            },
        };
        let req = Request {
            message: msg,
            dialog,
            tx,
            remote: peer.addr,
            transport: peer.transport,
        };
        let action = match method {
            Method::Invite => h.handle_invite(&req),
            Method::Ack => h.handle_ack(&req),
            Method::Bye => h.handle_bye(&req),
            Method::Cancel => h.handle_cancel(&req),
            Method::Options => h.handle_options(&req),
            Method::Register => h.handle_register(&req),
            Method::Subscribe => h.handle_subscribe(&req),
            Method::Notify => h.handle_notify(&req),
            Method::Publish => h.handle_publish(&req),
            Method::Message => h.handle_message(&req),
            Method::Info => h.handle_info(&req),
            _ => h.handle_other(&req),
        };
        if is_own {
            if let Some(c) = dialog.and_then(|d| self.calls.get_mut(&d)) {
                c.uas = Some(h);
            }
        } else {
            self.default_handler = Some(h);
        }
        action
    }

    fn apply_action(
        &mut self,
        now: Instant,
        tx: Option<u64>,
        dialog: Option<DialogId>,
        action: Action,
    ) {
        match action {
            Action::Respond(reply) => {
                let tx = tx.or_else(|| {
                    dialog
                        .and_then(|d| self.calls.get(&d))
                        .and_then(|c| c.server_tx)
                });
                if let Some(id) = tx {
                    let _ = self.respond(now, ServerTxKey(id), reply);
                }
            }
            Action::NoReply => {}
            Action::Proxy(uri) => {
                let targets = crate::proxy::ProxyTargets::single(uri);
                self.proxy_from_handler(now, tx, dialog, targets);
            }
            Action::ProxyTo(targets) => self.proxy_from_handler(now, tx, dialog, targets),
            Action::Stop(reason) => {
                if let Some(id) = tx {
                    let _ = self.respond(now, ServerTxKey(id), Reply::new(500));
                }
                if let Some(d) = dialog {
                    if let Some(c) = self.calls.get_mut(&d) {
                        c.uas = None;
                        if let Some(pending) = c.server_tx {
                            let _ = self.respond(now, ServerTxKey(pending), Reply::new(500));
                        }
                    }
                    if self.calls.get(&d).is_some_and(|c| c.confirmed) {
                        self.send_bye(now, d);
                    }
                    if self.calls.contains_key(&d) {
                        self.end_call(d, EndReason::HandlerStopped(reason));
                    }
                } else {
                    self.default_handler = None;
                }
            }
        }
    }

    /// Delivers an application message to a handler (Elixir's `handle_info/2` for Erlang
    /// messages): the handler of `dialog`, or the endpoint-wide one for `None`. The handler's
    /// `Respond` answers the dialog's pending INVITE (a deferred answer decided inside the
    /// handler); `Stop` ends the call.
    pub fn send_to_handler(
        &mut self,
        now: Instant,
        dialog: Option<DialogId>,
        msg: &mut dyn std::any::Any,
    ) -> Result<(), CommandError> {
        if let Some(d) = dialog {
            if !self.calls.contains_key(&d) {
                return Err(CommandError::Unknown);
            }
        }
        let own = dialog
            .and_then(|d| self.calls.get_mut(&d))
            .and_then(|c| c.uas.take());
        let (mut h, is_own) = match own {
            Some(h) => (h, true),
            None => match self.default_handler.take() {
                Some(h) => (h, false),
                None => match self.factory.as_mut() {
                    Some(f) => {
                        let mut h = f.new_handler();
                        h.init();
                        (h, false)
                    }
                    None => return Err(CommandError::Unknown),
                },
            },
        };
        let action = h.handle_app_message(dialog, msg);
        if is_own {
            if let Some(c) = dialog.and_then(|d| self.calls.get_mut(&d)) {
                c.uas = Some(h);
            }
        } else {
            self.default_handler = Some(h);
        }
        self.apply_action(now, None, dialog, action);
        Ok(())
    }

    /// Answers a server transaction: the deferred answer of a handler that returned `NoReply`,
    /// or the application's answer to an [`Event::IncomingCall`]. A 2xx to INVITE is
    /// retransmitted until ACKed (§13.3.1.4); Contact is added to 1xx/2xx of INVITE when the
    /// reply has none (§12.1.1).
    pub fn respond(
        &mut self,
        now: Instant,
        tx: ServerTxKey,
        reply: Reply,
    ) -> Result<(), CommandError> {
        // A transaction is live or lingering, never both: the lingering table is asked only
        // for an id the live one does not hold.
        let Some(t) = self.server_txs.get(&tx.0) else {
            return Err(if self.lingering_ids.contains(tx.0) {
                CommandError::AlreadyAnswered
            } else {
                CommandError::Unknown
            });
        };
        if t.has_final() {
            return Err(CommandError::AlreadyAnswered);
        }
        if !(100..=699).contains(&reply.status) {
            return Err(CommandError::BadInput);
        }
        if self.respond_tx_inner(now, tx.0, reply, true) {
            Ok(())
        } else {
            Err(CommandError::BadInput)
        }
    }

    /// The response `reply` on server transaction `t`, its copied lines taken from the
    /// transaction's [`ResponseHead`] (made at the first response, dropped at the final one),
    /// written straight into one buffer. An associated function over the endpoint's parts, so
    /// that the caller looks the transaction up once for this and the rest of the response.
    #[allow(clippy::too_many_arguments, clippy::vec_box)]
    fn build_response(
        t: &mut ServerTx,
        prefix_cache: &mut Vec<(SocketAddr, Transport, (String, String))>,
        cfg: &EndpointConfig,
        plain: super::PlainConfig,
        spare_heads: &mut Vec<Box<ResponseHead>>,
        reply: &Reply,
        tag: bool,
        wire: &mut bytes::BytesMut,
    ) -> Option<Bytes> {
        let (local, transport) = (t.local, t.peer.transport);
        let is_invite = matches!(t.fsm, ServerFsm::Invite(_));
        let tagged = tag && reply.status > 100;
        let top = t.via_fix.as_ref().map(|f| f.top(&t.request));
        let has_contact = reply
            .headers
            .iter()
            .any(|(n, _)| HeaderName::from_name(n.as_bytes()) == HeaderName::Contact);
        let contact = is_invite && (101..300).contains(&reply.status) && !has_contact;
        let allow = (reply.status == 405
            && !reply
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("allow")))
        .then(|| allow_header(cfg));
        let contact = if contact {
            Some(prefixes_in(prefix_cache, cfg, local, transport).0.as_str())
        } else {
            None
        };
        let mut extra: smallvec::SmallVec<[(&str, &str); 8]> = smallvec::SmallVec::new();
        if let Some(c) = contact {
            extra.push((HeaderName::Contact.as_str(), c));
        }
        // Our Contact, written from our address and the configured user: a token name and no
        // CR or LF when that user has none.
        let mut trusted = if contact.is_some() && !plain.contact_user {
            0
        } else {
            extra.len()
        };
        if let Some(a) = &allow {
            extra.push((HeaderName::Allow.as_str(), a));
        }
        if let Some(ua) = &cfg.user_agent {
            // Ours too, when every line before it is and the configured value has no line break.
            let after_trusted = trusted == extra.len();
            extra.push((HeaderName::Server.as_str(), ua));
            if after_trusted && plain.user_agent {
                trusted = extra.len();
            }
        }
        for (n, v) in &reply.headers {
            extra.push((n, v));
        }
        let reason = reply
            .reason
            .as_deref()
            .unwrap_or_else(|| crate::builder::reason_phrase(reply.status));
        let body = reply.body.as_ref().map(|b| (&*b.content_type, &b.bytes));
        // A transaction's first response that is also its last (a BYE's 200) is written
        // straight from the request where it has the plain shape: no head is made for it.
        if t.head.is_none() && reply.status >= 200 {
            let once = ResponseHead::write_once(
                &t.request,
                top,
                t.to_tag.as_str(&t.request),
                t.to_tagged,
                reply.status,
                reason,
                tagged,
                &extra,
                trusted,
                body,
                wire,
            );
            if let Some(b) = once {
                #[cfg(debug_assertions)]
                {
                    let head = ResponseHead::new(
                        &t.request,
                        top,
                        t.to_tag.as_str(&t.request),
                        t.to_tagged,
                    );
                    let lines = HeadLines {
                        head: &head,
                        req: &t.request,
                        top,
                        to_tag: t.to_tag.as_str(&t.request),
                    };
                    assert_eq!(
                        Some(&b),
                        general_response(&lines, reply, tagged, &extra).as_ref(),
                        "a response written straight from its request differs from the built one"
                    );
                }
                return Some(b);
            }
        }
        if t.head.is_none() {
            let head = ResponseHead::new(&t.request, top, t.to_tag.as_str(&t.request), t.to_tagged);
            t.head = Some(match spare_heads.pop() {
                Some(mut b) => {
                    *b = head;
                    b
                }
                None => Box::new(head),
            });
        }
        let head = t.head.as_deref()?;
        let lines = HeadLines {
            head,
            req: &t.request,
            top,
            to_tag: t.to_tag.as_str(&t.request),
        };
        let built = match head.write(
            lines.req,
            lines.top,
            lines.to_tag,
            reply.status,
            reason,
            tagged,
            &extra,
            trusted,
            body,
            wire,
        ) {
            Some(r) => r.ok(),
            None => general_response(&lines, reply, tagged, &extra),
        };
        #[cfg(debug_assertions)]
        if let Some(b) = &built {
            assert_eq!(
                Some(b),
                general_response(&lines, reply, tagged, &extra).as_ref(),
                "a response written from its head differs from the built one"
            );
        }
        drop(extra);
        if reply.status >= 200 {
            if let Some(h) = t.head.take() {
                if spare_heads.len() < SPARE_HEADS {
                    spare_heads.push(h);
                }
            }
        }
        built
    }

    pub(super) fn respond_tx_inner(
        &mut self,
        now: Instant,
        id: u64,
        reply: Reply,
        tag: bool,
    ) -> bool {
        let Some(t) = self.server_txs.get_mut(&id) else {
            return false;
        };
        let Some(resp) = Self::build_response(
            t,
            &mut self.prefix_cache,
            &self.cfg,
            self.plain_cfg,
            &mut self.spare_heads,
            &reply,
            tag,
            &mut self.wire,
        ) else {
            return false;
        };
        let code = reply.status;
        // Any response makes a held-back 100 needless (§17.2.1).
        t.trying_at = None;
        let dialog = t.dialog;
        let is_invite = matches!(t.fsm, ServerFsm::Invite(_));
        let cseq = if is_invite && (200..300).contains(&reply.status) {
            t.cseq
                .or_else(|| t.request.cseq().ok().map(|c| c.seq))
                .unwrap_or(0)
        } else {
            0
        };
        let peer = t.peer;
        let mut out = std::mem::take(&mut self.scratch);
        let sent = match &mut t.fsm {
            ServerFsm::Invite(f) => f.send_response_bytes(now, code, resp.clone(), &mut out),
            ServerFsm::NonInvite(f) => f.send_response_bytes(now, code, resp.clone(), &mut out),
        };
        self.run_server_outputs_to(now, id, peer, &mut out);
        self.scratch = out;
        if !sent || !is_invite {
            return sent;
        }
        let Some(d) = dialog else { return sent };
        let t1 = self.cfg.timers.t1;
        let t64 = self.cfg.timers.t1x64();
        let Some(call) = self.calls.get_mut(&d) else {
            return sent;
        };
        if call.server_tx != Some(id) {
            return sent; // e.g. a 491 to a glaring re-INVITE
        }
        if code > 100 && code < 200 && call.dialog.state == DialogState::Early {
            // An early dialog exists from the first 1xx with a tag (§12.1.1).
        } else if (200..300).contains(&code) {
            call.server_tx = None;
            call.dialog.state = DialogState::Confirmed;
            call.confirmed = true;
            // §13.3.1.4: the TU retransmits the 2xx until the ACK arrives.
            call.pending_2xx = Some(resp);
            call.pending_2xx_cseq = cseq;
            if !call.peer.transport.is_reliable() {
                call.retx_interval = t1;
                call.timers[CallTimer::Retransmit2xx as usize] = Some(now + t1);
            }
            call.timers[CallTimer::AckWait as usize] = Some(now + t64);
            self.schedule(TimerRef::Call(d));
        } else if code >= 300 {
            call.server_tx = None;
            if !call.confirmed {
                let reason = if call.cancelled {
                    EndReason::Cancelled
                } else {
                    EndReason::Rejected(code)
                };
                self.end_call(d, reason);
            }
        }
        sent
    }

    /// 503 with our Retry-After, statelessly: past a cap, or shedding load (§21.5.4, §20.33).
    fn respond_unavailable(&mut self, req: &Message, peer: Peer, via_fix: Option<&ViaFix>) {
        let ra = self.cfg.retry_after.to_string();
        self.respond_stateless(
            req,
            peer,
            via_fix,
            Reply::new(503).header("Retry-After", ra),
        );
    }

    pub(super) fn respond_stateless(
        &mut self,
        req: &Message,
        peer: Peer,
        via_fix: Option<&ViaFix>,
        reply: Reply,
    ) {
        if req.method() == Some(Method::Ack) {
            return; // never answer an ACK (§17.2.1)
        }
        let mut b = ResponseBuilder::for_request(req, reply.status);
        if let Some(fix) = via_fix {
            b = fix_via(b, req, &fix.text(req));
        }
        if reply.status > 100 {
            let tag = self.new_tag();
            b = b.to_tag(tag);
        }
        for (n, v) in &reply.headers {
            b = b.raw_header(n, v.clone());
        }
        if let Some(ua) = &self.cfg.user_agent {
            b = b.header(HeaderName::Server, ua.clone());
        }
        if let Ok(m) = b.build() {
            self.send(peer, m.to_bytes());
        }
    }

    pub(super) fn run_server_outputs(&mut self, now: Instant, id: u64, out: &mut Vec<TxOutput>) {
        let Some(peer) = self.server_txs.get(&id).map(|t| t.peer) else {
            out.clear();
            return;
        };
        self.run_server_outputs_to(now, id, peer, out);
    }

    /// [`Endpoint::run_server_outputs`] for a transaction whose peer the caller has read.
    fn run_server_outputs_to(
        &mut self,
        _now: Instant,
        id: u64,
        peer: Peer,
        out: &mut Vec<TxOutput>,
    ) {
        for o in out.drain(..) {
            match o {
                TxOutput::Send(b) => self.send(peer, b),
                TxOutput::Deliver(_) => {}
                TxOutput::Timeout(_) => {
                    // Timer H: no ACK for a non-2xx; the call (if any) has already ended.
                }
                TxOutput::Terminated => {
                    if let Some(t) = self.server_txs.remove(&id) {
                        self.server_index.remove_hashed(t.key_hash, &t.key, id);
                        if let Some(mk) = t.merge_key {
                            self.unmerge(mk, id);
                        }
                    }
                }
            }
        }
        // A transaction that lingers now is timed by its lingering queue, the rest by the heap.
        self.linger(id);
    }

    /// Replaces a server transaction that only waits for its last timer with a
    /// [`LingeringTx`]: the request, the copied response lines and the state machine go. A
    /// transaction a proxy context still forwards on keeps its whole form.
    /// One that stays live has its deadline put in the timer heap ([`Endpoint::schedule`]),
    /// with the same lookup.
    fn linger(&mut self, id: u64) {
        let Some(t) = self.server_txs.get_mut(&id) else {
            return;
        };
        let state = match &t.fsm {
            ServerFsm::NonInvite(f)
                if f.state() == crate::transaction::ServerNonInviteState::Completed =>
            {
                Some(Linger::NonInvite)
            }
            ServerFsm::Invite(f) => match f.state() {
                crate::transaction::ServerInviteState::Accepted => Some(Linger::InviteAccepted),
                crate::transaction::ServerInviteState::Confirmed => Some(Linger::InviteConfirmed),
                _ => None,
            },
            ServerFsm::NonInvite(_) => None,
        };
        let deadline = t.poll_timeout();
        let (kind, deadline) = match (state, deadline) {
            (Some(kind), Some(at)) if !self.proxies.contains_key(&id) => (kind, at),
            _ => {
                // Still live: what `schedule` does for it.
                if let Some(at) = deadline.filter(|&at| t.scheduled != Some(at)) {
                    t.scheduled = Some(at);
                    self.timer_heap.push(at, super::TimerKind::Server, id);
                }
                return;
            }
        };
        // Copied out of the buffer it was written in, which it would otherwise keep whole
        // for as long as it lingers.
        let last = match &t.fsm {
            ServerFsm::NonInvite(f) => f.last_response().map(|b| Bytes::copy_from_slice(b)),
            ServerFsm::Invite(_) => None,
        };
        let Some(mut t) = self.server_txs.remove(&id) else {
            return;
        };
        // The indexes name it by its place in its queue from now on.
        let h = super::linger::handle(kind, self.lingering[kind as usize].next_seq());
        self.server_index.replace_hashed(t.key_hash, &t.key, id, h);
        if let Some(mk) = &t.merge_key {
            self.merge_index.replace(mk, id, h);
        }
        self.lingering_ids.insert(id);
        // The fields it keeps are taken out of the box one by one (moving the whole
        // transaction out of it first would copy it), and the box is kept for the next one.
        // Only an INVITE's tag is read again (by its CANCEL's 200, §9.2).
        let to_tag = match (
            kind,
            std::mem::replace(&mut t.to_tag, super::TxTag::Own(Box::default())),
        ) {
            (Linger::NonInvite, _) => Box::default(),
            (_, super::TxTag::Own(tag)) => tag,
            (_, tag @ super::TxTag::Request(_)) => tag.as_str(&t.request).into(),
        };
        self.lingering[kind as usize].push(LingeringTx {
            key: std::mem::replace(&mut t.key, ServerKey::blank()),
            key_hash: t.key_hash,
            id,
            deadline,
            last,
            peer: t.peer,
            kind,
            to_tag,
            dialog: t.dialog,
            merge_key: t.merge_key.take(),
        });
        if let Some(blank) = self
            .blank
            .as_ref()
            .filter(|_| self.spare_server.len() < SPARE_SERVER)
        {
            // Nothing of this transaction stays: not its request's bytes, nor its responses'.
            t.request = blank.clone();
            t.fsm = ServerFsm::NonInvite(ServerNonInviteTransaction::new(false, self.cfg.timers));
            t.via_fix = None;
            t.head = None;
            self.spare_server.push(t);
        }
        // Past the cap, the one nearest its end goes first.
        while self.lingering_len() > self.cfg.max_lingering {
            let Some((_, oldest)) = (0..self.lingering.len())
                .filter_map(|k| self.lingering[k].earliest().map(|(at, seq)| (at, (k, seq))))
                .min_by_key(|&(at, _)| at)
            else {
                break;
            };
            self.end_lingering(super::linger::handle_of(oldest.0, oldest.1));
        }
    }

    /// Lingering server transaction `h` (a handle from the indexes; `None` for an id).
    pub(super) fn lingering_get(&self, h: u64) -> Option<&LingeringTx> {
        let (kind, seq) = super::linger::unhandle(h)?;
        self.lingering[kind].get(seq)
    }

    /// Ends the lingering transactions whose last timer has run out.
    pub(super) fn expire_lingering(&mut self, now: Instant) {
        for kind in 0..self.lingering.len() {
            while let Some((at, seq)) = self.lingering[kind].earliest() {
                if at > now {
                    break;
                }
                self.end_lingering(super::linger::handle_of(kind, seq));
            }
        }
    }

    /// Ends lingering server transaction `h` (its timer ran out, the transport failed or the
    /// cap was reached).
    pub(super) fn end_lingering(&mut self, h: u64) {
        let Some((kind, seq)) = super::linger::unhandle(h) else {
            return;
        };
        // Unindexed from where it lies, then dropped there (not moved out first: it is a few
        // hundred bytes).
        let Some(t) = self.lingering[kind].get(seq) else {
            return;
        };
        self.server_index.remove_hashed(t.key_hash, &t.key, h);
        if let Some(mk) = &t.merge_key {
            self.merge_index.remove(mk, h);
        }
        self.lingering_ids.remove(t.id);
        self.lingering[kind].remove(seq);
    }

    pub(super) fn on_call_timers(&mut self, now: Instant, d: DialogId) {
        let t2 = self.cfg.timers.t2;
        let Some(call) = self.calls.get_mut(&d) else {
            return;
        };
        let due = |i: CallTimer| call.timers[i as usize].is_some_and(|at| at <= now);
        if due(CallTimer::AckWait) {
            call.timers = [None; 3];
            call.pending_2xx = None;
            // §13.3.1.4: no ACK in 64*T1: confirm and end with BYE.
            self.send_bye(now, d);
            self.end_call(d, EndReason::AckTimeout);
            return;
        }
        if due(CallTimer::Retransmit2xx) {
            call.retx_interval = (call.retx_interval * 2).min(t2);
            call.timers[CallTimer::Retransmit2xx as usize] = Some(now + call.retx_interval);
            if let Some(b) = call.pending_2xx.clone() {
                let peer = call.peer;
                self.send(peer, b);
            }
        }
        let Some(call) = self.calls.get_mut(&d) else {
            return;
        };
        if call.timers[CallTimer::GlareRetry as usize].is_some_and(|at| at <= now) {
            call.timers[CallTimer::GlareRetry as usize] = None;
            if let Some(g) = call.glare.take() {
                let _ = self.send_reinvite(now, d, g.request, g.headers, g.body);
            }
        }
    }

    /// Removes a call and reports its end, exactly once.
    pub(super) fn end_call(&mut self, d: DialogId, reason: EndReason) {
        let Some(mut call) = self.calls.remove(&d) else {
            return;
        };
        self.by_tag
            .remove(&call.dialog.call_id, &call.dialog.local_tag, d, |o| {
                super::call_id_in(&self.calls, o)
            });
        if let Some(h) = call.uac.as_mut() {
            h.on_call_ended(d, &reason);
        }
        self.events
            .push_back(Event::CallEnded { dialog: d, reason });
    }
}

/// `reply` built from `head` by the general builder: what [`ResponseHead::write`] writes
/// directly, and the path for the shapes it leaves (see there). `extra` holds the lines the
/// endpoint adds (Contact, Allow, Server) then the reply's own.
fn general_response(
    lines: &HeadLines<'_>,
    reply: &Reply,
    tagged: bool,
    extra: &[(&str, &str)],
) -> Option<Bytes> {
    let top = lines.top.map(|t| t.joined());
    let mut b = lines.head.builder(
        lines.req,
        top.as_deref(),
        lines.to_tag,
        reply.status,
        tagged,
    );
    if let Some(r) = &reply.reason {
        b = b.reason(r.clone());
    }
    for (n, v) in extra {
        b = b.raw_header(n, v);
    }
    if let Some(body) = &reply.body {
        b = b.body(&body.content_type, body.bytes.clone());
    }
    b.build().ok().map(|m| m.to_bytes())
}

/// The Allow header value: the methods the endpoint takes (§20.5).
fn allow_header(cfg: &EndpointConfig) -> String {
    cfg.allow
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A server transaction's [`ResponseHead`] with what its lines are read from: the request it
/// was made from, the top Via fix and our To tag.
struct HeadLines<'a> {
    head: &'a ResponseHead,
    req: &'a Message,
    top: Option<Top<'a>>,
    to_tag: &'a str,
}

/// §18.2.2 and RFC 3581 §4: responses go back over the connection the request came on; over
/// UDP to the source address when `rport` was asked for, else to the source IP and the Via port.
pub(super) fn response_peer(req: &Message, peer: Peer) -> Peer {
    match req.top_via() {
        Ok(via) => response_peer_of(&via, peer),
        Err(_) => peer,
    }
}

/// [`response_peer`] with the top Via already parsed.
pub(super) fn response_peer_of(via: &crate::header::Via<'_>, peer: Peer) -> Peer {
    response_peer_with(via, via.rport(), peer)
}

/// [`response_peer_of`] with the Via's `rport` already read.
fn response_peer_with(
    via: &crate::header::Via<'_>,
    rport: Option<Option<u16>>,
    peer: Peer,
) -> Peer {
    if peer.transport.is_reliable() {
        return peer;
    }
    if rport.is_some() {
        return peer;
    }
    let port = via.port.unwrap_or(5060);
    Peer {
        addr: SocketAddr::new(peer.addr.ip(), port),
        ..peer
    }
}

/// The top Via a server transaction's responses carry (§18.2.2, RFC 3581 §4): the request's
/// top Via less any `received` (and an empty `rport` being filled), then `;received=` with the
/// source IP and, when `rport` was asked for, `;rport=` with the source port.
///
/// Kept in the transaction beside the request it was made from, which every method reading it
/// takes. Where the kept parts are one run of the request's text and the source is IPv4 (the
/// usual case), the fix is that run's place and the appended bytes, inline: no string of its own.
#[derive(Debug, Clone)]
pub(crate) enum ViaFix {
    /// The request's header text at `kept` (checked to hold no CR or LF), then the first
    /// `tail_len` bytes of `tail` (ASCII, no CR or LF).
    Appended {
        kept: crate::message::Span,
        tail: [u8; ViaFix::TAIL],
        tail_len: u8,
    },
    /// Written out.
    Text(String),
}

impl ViaFix {
    /// Room for `;received=` with an IPv4 address and `;rport=` with a port.
    const TAIL: usize = 40;

    /// The fix in the pieces [`ResponseHead`] writes, for `req`, the request it was made from.
    pub(crate) fn top<'a>(&'a self, req: &'a Message) -> Top<'a> {
        match self {
            ViaFix::Appended {
                kept,
                tail,
                tail_len,
            } => Top {
                kept: req.head_text().get(kept.range()).unwrap_or_default(),
                tail: tail.get(..usize::from(*tail_len)).unwrap_or_default(),
                clean: true,
            },
            ViaFix::Text(s) => Top::text(s),
        }
    }

    /// The fix written out, for `req`, the request it was made from.
    pub(crate) fn text(&self, req: &Message) -> String {
        self.top(req).joined().into_owned()
    }
}

/// The top Via with `received` (when the sent-by host is not the source address) and a filled
/// `rport` (RFC 3581 §4); `None` when it needs no change.
pub(super) fn via_fix(req: &Message, src: SocketAddr) -> Option<ViaFix> {
    let via = req.top_via().ok()?;
    via_fix_of(req, &via, src)
}

/// [`via_fix`] with the top Via already parsed.
pub(super) fn via_fix_of(
    req: &Message,
    via: &crate::header::Via<'_>,
    src: SocketAddr,
) -> Option<ViaFix> {
    via_fix_with(req, via, via.rport(), src)
}

/// [`via_fix_of`] with the Via's `rport` already read.
fn via_fix_with(
    req: &Message,
    via: &crate::header::Via<'_>,
    rport: Option<Option<u16>>,
    src: SocketAddr,
) -> Option<ViaFix> {
    let same_host = via.host.ip() == Some(src.ip());
    let wants_rport = rport == Some(None);
    if same_host && !wants_rport {
        return None;
    }
    // The top Via's text: from its protocol to the end of its parameters when both are
    // slices of `req` (what `top_via` parses: the first value of the first line, trimmed),
    // else looked up again.
    let top = match (
        req.slice_between(via.protocol, via.params.as_str()),
        via.params.is_empty(),
    ) {
        (Some(t), false) => t,
        _ => crate::text::trim_lws(crate::text::Splitter::first(
            req.header(HeaderName::Via)?,
            b',',
        )),
    };
    // The value's parts minus any old `received` (and the empty `rport`), as runs of `top`:
    // each kept part with the ';' before it (none before the first), neighbours joined.
    let b = top.as_bytes();
    let mut start = 0;
    let mut runs: smallvec::SmallVec<[(usize, usize); 4]> = smallvec::SmallVec::new();
    loop {
        let end = b
            .get(start..)
            .and_then(|r| crate::text::find_byte(b';', r))
            .map_or(b.len(), |i| start + i);
        // A part whose first byte is visible ASCII other than `r` has a name (trimmed) that
        // begins with that byte: neither `received` nor `rport`, kept without a closer look.
        let drop = match b.get(start) {
            Some(&c) if c.is_ascii_graphic() && c | 0x20 != b'r' => false,
            _ => {
                let p = top.get(start..end)?;
                let n = crate::text::find_byte(b'=', p.as_bytes())
                    .and_then(|i| p.get(..i))
                    .unwrap_or(p);
                // `trim` only where an end is not a visible ASCII byte: anything else is no
                // white space.
                let visible = |c: Option<&u8>| c.is_some_and(|&c| c.is_ascii_graphic());
                let n = if visible(n.as_bytes().first()) && visible(n.as_bytes().last()) {
                    n
                } else {
                    n.trim()
                };
                (n.len() == 8 && n.eq_ignore_ascii_case("received"))
                    || (wants_rport && n.len() == 5 && n.eq_ignore_ascii_case("rport"))
            }
        };
        if !drop {
            let from = start.saturating_sub(1);
            match runs.last_mut() {
                Some(last) if last.1 == from => last.1 = end,
                _ => runs.push((from, end)),
            }
        }
        if end >= b.len() {
            break;
        }
        start = end + 1;
    }
    // One run of the request's own text and an IPv4 source: its place and the appended bytes.
    if let (&[(a, z)], std::net::IpAddr::V4(ip)) = (runs.as_slice(), src.ip()) {
        let kept = top.get(a..z)?;
        let span = req.span_of(kept);
        let ours = req
            .head_text()
            .get(span.range())
            .is_some_and(|t| std::ptr::eq(t.as_ptr(), kept.as_ptr()))
            && crate::text::find_byte2(b'\r', b'\n', kept.as_bytes()).is_none();
        if ours {
            let mut tail = [0u8; ViaFix::TAIL];
            let mut at = 0;
            let mut put = |s: &[u8]| {
                if let Some(d) = tail.get_mut(at..at + s.len()) {
                    d.copy_from_slice(s);
                }
                at += s.len();
            };
            put(b";received=");
            put(crate::text::ipv4_dotted(ip, &mut [0u8; 15]));
            if wants_rport {
                let mut digits = [0u8; 5];
                put(b";rport=");
                put(crate::text::decimal(u64::from(src.port()), &mut digits));
            }
            // At most 10 + 15 + 7 + 5 = 37 bytes.
            return Some(ViaFix::Appended {
                kept: span,
                tail,
                tail_len: u8::try_from(at).ok()?,
            });
        }
    }
    let mut out = String::with_capacity(top.len() + 48);
    for &(a, z) in &runs {
        out.push_str(top.get(a..z)?);
    }
    out.push_str(";received=");
    crate::text::push_ip(&mut out, src.ip());
    if wants_rport {
        out.push_str(";rport=");
        crate::text::push_u32(&mut out, u32::from(src.port()));
    }
    Some(ViaFix::Text(out))
}

fn fix_via(b: ResponseBuilder, req: &Message, top: &str) -> ResponseBuilder {
    let vias: Vec<&str> = req.header_values(HeaderName::Via).collect();
    let mut b = b.remove_header(HeaderName::Via);
    for (i, v) in vias.iter().enumerate().rev() {
        let v = if i == 0 { top } else { v };
        b = b.prepend_header(HeaderName::Via, v);
    }
    b
}

#[cfg(test)]
mod via_fix_tests {
    use super::*;
    use proptest::prelude::*;

    /// The rule `via_fix_of` implements, part by part: the top Via's parts joined by ';',
    /// less any `received` (and an `rport` being filled in), then the new values.
    fn reference(top: &str, wants_rport: bool, src: SocketAddr) -> String {
        let mut out = String::new();
        for (i, p) in top.split(';').enumerate() {
            let n = p.split('=').next().unwrap_or(p).trim();
            let drop = n.eq_ignore_ascii_case("received")
                || (wants_rport && n.eq_ignore_ascii_case("rport"));
            if !drop {
                if i > 0 {
                    out.push(';');
                }
                out.push_str(p);
            }
        }
        out.push_str(";received=");
        out.push_str(&src.ip().to_string());
        if wants_rport {
            out.push_str(";rport=");
            out.push_str(&src.port().to_string());
        }
        out
    }

    const PIECES: &[&str] = &[
        ";",
        "branch=z9hG4bKa",
        "rport",
        "rport=5",
        "received=1.2.3.4",
        "RECEIVED",
        " ",
        "=",
        "x",
        "maddr=h",
        "\u{3000}received",
        "\x0brport",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The fixed top Via keeps every part but the replaced ones, in order.
        #[test]
        fn fixed_via_keeps_other_parts_in_order(
            p in prop::collection::vec(prop::sample::select(PIECES), 0..10),
        ) {
            let top = format!("SIP/2.0/UDP 192.0.2.1:5060{}", p.concat());
            let raw = format!(
                "OPTIONS sip:b@h SIP/2.0\r\nVia: {top}\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            );
            let Ok(m) = Message::parse(raw.into_bytes()) else { return Ok(()) };
            let Ok(via) = m.top_via() else { return Ok(()) };
            let src = SocketAddr::from(([10, 0, 0, 9], 6000));
            let wants_rport = via.rport() == Some(None);
            if let Some(fixed) = via_fix_of(&m, &via, src).map(|f| f.text(&m)) {
                let top = m.header(HeaderName::Via).unwrap_or_default();
                prop_assert_eq!(fixed, reference(top, wants_rport, src));
            }
        }
    }
}
