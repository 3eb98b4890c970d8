//! The proxy core (RFC 3261 §16): what the endpoint does with a request a handler proxies,
//! and with requests record-routed through us.
//!
//! A proxied request keeps the server transaction the UAS core made for it (which sent the
//! 100 Trying of an INVITE, §16.2) and gets a proxy context keyed by that transaction: its
//! targets, one client transaction per branch ([`Purpose::Proxy`]) and the final responses
//! gathered so far. Checks and route handling come first (§16.3 Max-Forwards, Proxy-Require
//! and loop detection, §16.4 strict and loose routing), then each branch is a copy of the
//! request with the target as Request-URI, Max-Forwards decremented, an optional Record-Route
//! and our Via (§16.6). Responses are handled as §16.7 says: provisionals other than 100 and every 2xx go
//! upstream at once, a 2xx or a 6xx to an INVITE cancels the other branches, and when every
//! branch has ended the best final response goes up (503 as 500, 401/407 challenges merged).
//! A CANCEL from upstream is answered 200 and passed to every pending branch (§16.10).
//!
//! Requests inside a record-routed dialog carry a Route naming us; they are forwarded per Route
//! (§16.12): ACK statelessly (§16.11), everything else through its own proxy context.

use super::uac::bare_uri;
use super::*;
use crate::handler::Reply;
use crate::proxy::{
    best_final, branch_hash, branch_param, loop_hash, BranchFinal, ProxyTargets,
    PROXY_BRANCH_PREFIX,
};
use crate::transaction::Timer;
use crate::{HeaderName, RequestBuilder, ResponseBuilder};

/// A request being proxied statefully (§16.2), keyed by its server transaction.
pub(crate) struct ProxyContext {
    /// The request as each branch copies it: after route preprocessing (§16.4).
    request: Message,
    method: Method,
    /// Its loop-detection hash (§16.6 item 8), the stem of every branch parameter.
    hash: u64,
    /// Targets not tried yet (sequential forking).
    targets: VecDeque<String>,
    record_route: bool,
    branches: Vec<ProxyBranch>,
    /// The non-2xx final responses of ended branches (§16.7 item 4).
    finals: Vec<BranchFinal>,
    /// A final response went upstream.
    answered: bool,
    /// A CANCEL came from upstream (§16.10).
    cancelled: bool,
}

/// One branch: a client transaction towards one target.
pub(crate) struct ProxyBranch {
    request: Option<Message>,
    peer: Peer,
    provisional: bool,
    done: bool,
    cancel_wanted: bool,
    cancel_sent: bool,
}

/// A transport named by a URI's `transport` parameter (UDP when absent).
fn uri_transport(uri: &str) -> Transport {
    crate::Uri::parse(uri)
        .ok()
        .and_then(|u| {
            u.as_sip()
                .and_then(|s| s.transport())
                .and_then(|t| Transport::from_via_token(&t.to_ascii_uppercase()))
        })
        .unwrap_or(Transport::Udp)
}

fn is_loose_route(uri: &str) -> bool {
    crate::Uri::parse(uri)
        .ok()
        .and_then(|u| u.as_sip().map(|s| s.is_loose_route()))
        .unwrap_or(false)
}

/// §16.6 item 6: when the top Route of `req` names a strict router (no `lr`), the copy being
/// built goes to it the RFC 2543 way: the target Request-URI `ruri` becomes the last Route,
/// the strict router's URI the Request-URI, and its Route value is removed. The next hop is
/// then that Request-URI (item 7), the same address as the top Route was. A loose router on
/// top, or no Route, leaves the copy as it is.
fn strict_route(b: RequestBuilder, req: &Message, ruri: &str) -> RequestBuilder {
    let routes: Vec<&str> = req.header_values(HeaderName::Route).collect();
    let Some(first) = routes.first() else {
        return b;
    };
    let next = bare_uri(first);
    if is_loose_route(next) {
        return b;
    }
    let mut b = b.uri(next).remove_header(HeaderName::Route);
    for r in &routes[1..] {
        b = b.header(HeaderName::Route, *r);
    }
    b.header(HeaderName::Route, format!("<{ruri}>"))
}

/// The response without its top Via (ours), as §16.7 item 3 forwards it.
fn strip_top_via(m: &Message) -> Option<Message> {
    let vias: Vec<&str> = m.header_values(HeaderName::Via).collect();
    if vias.len() < 2 {
        return None; // nobody above us: the response was for this element
    }
    let mut b = ResponseBuilder::from_message(m)?.remove_header(HeaderName::Via);
    for v in vias.iter().skip(1).rev() {
        b = b.prepend_header(HeaderName::Via, v);
    }
    b.build().ok()
}

/// Max-Forwards for a forwarded copy (§16.6 item 3): one less, or 70 when absent.
fn decremented_max_forwards(req: &Message) -> String {
    match req.max_forwards() {
        Ok(Some(n)) => n.saturating_sub(1).to_string(),
        _ => "70".to_owned(),
    }
}

impl Endpoint {
    /// Whether `addr` is one we listen on (`local`, or a configured address; an unspecified
    /// IP matches by port).
    fn is_our_addr(&self, addr: SocketAddr, local: SocketAddr) -> bool {
        let m = |a: SocketAddr| {
            a.port() == addr.port() && (a.ip() == addr.ip() || a.ip().is_unspecified())
        };
        m(local) || self.cfg.local_addrs.iter().any(|(_, a)| m(*a))
    }

    /// Whether a URI names this element (an IP literal and port we listen on, §16.4).
    fn is_our_uri(&self, uri: &str, local: SocketAddr) -> bool {
        uri_socket_addr(bare_uri(uri)).is_some_and(|a| self.is_our_addr(a, local))
    }

    /// §16.4 route information preprocessing: a Request-URI we put in a Record-Route (a strict
    /// router upstream) is replaced by the last Route, and a top Route naming us is removed.
    /// Returns the request to forward and whether a Route named us.
    fn preprocess_routes(&self, msg: &Message, local: SocketAddr) -> Option<(Message, bool)> {
        let mut routes: Vec<&str> = msg.header_values(HeaderName::Route).collect();
        if routes.is_empty() {
            return Some((msg.clone(), false));
        }
        let mut ruri = msg.request_uri_str()?.to_owned();
        let mut ours = false;
        if self.is_our_uri(&ruri, local) && is_loose_route(&ruri) {
            if let Some(last) = routes.pop() {
                ruri = bare_uri(last).to_owned();
                ours = true;
            }
        }
        if routes
            .first()
            .is_some_and(|r| self.is_our_uri(bare_uri(r), local))
        {
            routes.remove(0);
            ours = true;
        }
        if !ours {
            return Some((msg.clone(), false));
        }
        let mut b = RequestBuilder::from_message(msg)?
            .uri(&ruri)
            .remove_header(HeaderName::Route);
        for r in routes {
            b = b.header(HeaderName::Route, r);
        }
        Some((b.build().ok()?, true))
    }

    /// §16.3 item 4: a Via we wrote whose branch carries this request's hash means the request
    /// has come back unchanged (a loop, not a spiral).
    fn is_loop(&self, req: &Message, hash: u64, local: SocketAddr) -> bool {
        req.via().filter_map(Result::ok).any(|v| {
            let ours = v.host.ip().is_some_and(|ip| {
                self.is_our_addr(SocketAddr::new(ip, v.port.unwrap_or(5060)), local)
            });
            ours && v.branch().and_then(branch_hash) == Some(hash)
        })
    }

    /// A handler returned `Proxy` / `ProxyTo` for the request of server transaction `tx`.
    pub(super) fn proxy_from_handler(
        &mut self,
        now: Instant,
        tx: Option<u64>,
        dialog: Option<DialogId>,
        targets: ProxyTargets,
    ) {
        let tx = tx.or_else(|| {
            dialog
                .and_then(|d| self.calls.get(&d))
                .and_then(|c| c.server_tx)
        });
        let Some(id) = tx else { return };
        if self.server_txs.get(&id).is_none_or(|t| t.has_final()) {
            return;
        }
        if let Some(d) = dialog {
            match self.calls.get(&d) {
                Some(c) if c.confirmed || c.server_tx != Some(id) => {
                    // A request inside one of our own calls has nowhere else to go.
                    let reply = Reply::new(501).reason("Proxying Not Supported In Dialog");
                    let _ = self.respond(now, ServerTxKey(id), reply);
                    return;
                }
                // A proxied INVITE is not a call of ours: the dialog the UAS core set up for it
                // goes, and so does its IncomingCall event, still queued.
                Some(_) => self.forget_call(d),
                None => {}
            }
        }
        let Some(t) = self.server_txs.get_mut(&id) else {
            return;
        };
        t.dialog = None;
        // A spiral (the same request back with another Request-URI) is not a merged request.
        if let Some(mk) = t.merge_key.take() {
            self.unmerge(mk, id);
        }
        self.start_proxy(now, id, targets);
    }

    /// Drops a call record without a CallEnded: it never surfaced as a call.
    pub(super) fn forget_call(&mut self, d: DialogId) {
        if let Some(call) = self.calls.remove(&d) {
            self.by_tag
                .remove(&call.dialog.call_id, &call.dialog.local_tag, d, |o| {
                    super::call_id_in(&self.calls, o)
                });
        }
        self.events
            .retain(|e| !matches!(e, Event::IncomingCall { dialog, .. } if *dialog == d));
    }

    /// §16.3 checks, §16.4 preprocessing, then the branches (§16.5, §16.6).
    fn start_proxy(&mut self, now: Instant, id: u64, targets: ProxyTargets) {
        let Some((req, local)) = self
            .server_txs
            .get(&id)
            .map(|t| (t.request.clone(), t.local))
        else {
            return;
        };
        let answer = |ep: &mut Endpoint, reply: Reply| {
            let _ = ep.respond(now, ServerTxKey(id), reply);
        };
        if matches!(req.max_forwards(), Ok(Some(0))) {
            answer(self, Reply::new(483));
            return;
        }
        // §16.3 item 5: extensions the proxy itself must understand.
        let unsupported: Vec<&str> = req
            .proxy_require()
            .filter(|t| !self.cfg.supported.iter().any(|s| s.eq_ignore_ascii_case(t)))
            .collect();
        if !unsupported.is_empty() {
            let v = unsupported.join(", ");
            answer(self, Reply::new(420).header("Unsupported", v));
            return;
        }
        let Some((req, _)) = self.preprocess_routes(&req, local) else {
            answer(self, Reply::new(400));
            return;
        };
        let Some(method) = req.method() else { return };
        let ruri = req.request_uri_str().unwrap_or("").to_owned();
        let hash = loop_hash(&req, &ruri);
        if self.is_loop(&req, hash, local) {
            answer(self, Reply::new(482));
            return;
        }
        let list: VecDeque<String> = targets
            .targets
            .iter()
            .map(|t| bare_uri(t).to_owned())
            .filter(|t| !t.is_empty())
            .take(self.cfg.proxy.max_targets)
            .collect();
        if list.is_empty() {
            answer(self, Reply::new(480));
            return;
        }
        let initial = req.to_header().ok().is_some_and(|t| t.tag().is_none());
        let record_route = initial
            && matches!(
                method,
                Method::Invite | Method::Subscribe | Method::Refer | Method::Notify
            )
            && targets.record_route.unwrap_or(self.cfg.proxy.record_route);
        self.proxies.insert(
            id,
            ProxyContext {
                request: req,
                method,
                hash,
                targets: list,
                record_route,
                branches: Vec::new(),
                finals: Vec::new(),
                answered: false,
                cancelled: false,
            },
        );
        if targets.parallel {
            while let Some(t) = self
                .proxies
                .get_mut(&id)
                .and_then(|c| c.targets.pop_front())
            {
                self.proxy_start_branch(now, id, &t);
            }
        } else if let Some(t) = self
            .proxies
            .get_mut(&id)
            .and_then(|c| c.targets.pop_front())
        {
            self.proxy_start_branch(now, id, &t);
        }
        self.proxy_advance(now, id);
    }

    /// §16.6: one forwarded copy of the request, on its own client transaction.
    fn proxy_start_branch(&mut self, now: Instant, id: u64, target: &str) {
        let Some((in_transport, fix)) = self.server_txs.get(&id).map(|t| {
            (
                t.peer.transport,
                t.via_fix.as_ref().map(|f| f.text(&t.request)),
            )
        }) else {
            return;
        };
        let Some(ctx) = self.proxies.get_mut(&id) else {
            return;
        };
        let idx = ctx.branches.len();
        let unreachable = ProxyBranch {
            request: None,
            peer: Peer {
                addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
                transport: Transport::Udp,
                conn: None,
            },
            provisional: false,
            done: true,
            cancel_wanted: false,
            cancel_sent: false,
        };
        // §16.6 item 7: the next hop is the top Route if there is one, else the target
        // (RFC 3263 only as far as IP literals go).
        let hop = ctx
            .request
            .header_values(HeaderName::Route)
            .next()
            .map(|r| bare_uri(r).to_owned())
            .unwrap_or_else(|| target.to_owned());
        let transport = uri_transport(&hop);
        let Some(addr) = uri_socket_addr(&hop) else {
            ctx.branches.push(unreachable);
            ctx.finals.push(BranchFinal::Local(503));
            return;
        };
        let branch = branch_param(ctx.hash, &idx.to_string());
        let record_route = ctx.record_route;
        let is_invite = ctx.method == Method::Invite;
        let Some(mut b) = RequestBuilder::from_message(&ctx.request) else {
            ctx.branches.push(unreachable);
            ctx.finals.push(BranchFinal::Local(500));
            return;
        };
        let mf = decremented_max_forwards(&ctx.request);
        b = b
            .uri(target)
            .remove_header(HeaderName::MaxForwards)
            .header(HeaderName::MaxForwards, mf);
        b = strict_route(b, &ctx.request, target);
        if let Some(fix) = fix {
            // §18.2.1: the Via we received gets `received` / `rport` before it travels on.
            let vias: Vec<String> = ctx
                .request
                .header_values(HeaderName::Via)
                .skip(1)
                .map(str::to_owned)
                .collect();
            b = b.remove_header(HeaderName::Via);
            for v in vias.iter().rev() {
                b = b.prepend_header(HeaderName::Via, v);
            }
            b = b.prepend_header(HeaderName::Via, fix);
        }
        let local = self.local_addr(transport);
        if record_route {
            let hp = Self::host_port(self.local_addr(in_transport));
            let rr = match in_transport.uri_param() {
                Some(p) => format!("<sip:{hp};transport={p};lr>"),
                None => format!("<sip:{hp};lr>"),
            };
            b = b.prepend_header(HeaderName::RecordRoute, rr);
        }
        b = b.prepend_header(HeaderName::Via, self.via_for(local, transport, &branch));
        let peer = Peer {
            addr,
            transport,
            conn: None,
        };
        let Some(ctx) = self.proxies.get_mut(&id) else {
            return;
        };
        let Ok(m) = b.build() else {
            ctx.branches.push(unreachable);
            ctx.finals.push(BranchFinal::Local(500));
            return;
        };
        ctx.branches.push(ProxyBranch {
            request: Some(m.clone()),
            peer,
            provisional: false,
            done: false,
            cancel_wanted: false,
            cancel_sent: false,
        });
        match self.start_client(now, m, peer, Purpose::Proxy(id, idx)) {
            Some(key) => {
                if is_invite {
                    let c = self.cfg.proxy.timer_c;
                    if let Some(ClientFsm::Invite(f)) =
                        self.client_txs.get_mut(&key).map(|t| &mut t.fsm)
                    {
                        f.set_proxy_timer_c(c);
                    }
                }
            }
            None => self.proxy_branch_failed(now, id, idx, 503),
        }
    }

    /// A response on branch `idx` (§16.7).
    pub(super) fn on_proxy_response(&mut self, now: Instant, id: u64, idx: usize, m: &Message) {
        let Some(code) = m.status() else { return };
        let is_invite_2xx = (200..300).contains(&code)
            && m.cseq()
                .map(|c| c.method == Method::Invite)
                .unwrap_or(false);
        let Some(ctx) = self.proxies.get_mut(&id) else {
            // The context ended; a 2xx to INVITE must still reach the caller (§16.7 item 5).
            if is_invite_2xx {
                self.forward_response_stateless(m);
            }
            return;
        };
        let answered = ctx.answered;
        let is_invite = ctx.method == Method::Invite;
        let Some(br) = ctx.branches.get_mut(idx) else {
            return;
        };
        if code < 200 {
            br.provisional = true;
            let send_cancel = br.cancel_wanted && !br.cancel_sent;
            let forward = code > 100 && !br.done && !answered;
            if send_cancel {
                self.proxy_send_cancel(now, id, idx);
            }
            if forward {
                self.proxy_forward_response(now, id, m);
            }
            return;
        }
        if code < 300 {
            br.done = true;
            if let Some(ctx) = self.proxies.get_mut(&id) {
                ctx.answered = true;
                ctx.targets.clear();
            }
            self.proxy_forward_response(now, id, m);
            if is_invite && !answered {
                self.proxy_cancel_pending(now, id);
            }
            self.proxy_advance(now, id);
            return;
        }
        if br.done {
            return; // Timer C already settled this branch
        }
        br.done = true;
        ctx.finals.push(BranchFinal::Response(Box::new(m.clone())));
        if code >= 600 && is_invite {
            ctx.targets.clear();
            self.proxy_cancel_pending(now, id);
        }
        self.proxy_advance(now, id);
    }

    /// A branch's client transaction timed out (B, F), hit Timer C, or could not send.
    pub(super) fn on_proxy_timeout(&mut self, now: Instant, id: u64, idx: usize, timer: Timer) {
        if timer == Timer::C {
            // §16.8: a branch with a provisional is CANCELled; either way it counts as a 408.
            let provisional = self
                .proxies
                .get(&id)
                .and_then(|c| c.branches.get(idx))
                .is_some_and(|b| !b.done && b.provisional && !b.cancel_sent);
            if provisional {
                self.proxy_send_cancel(now, id, idx);
            }
        }
        self.proxy_branch_failed(now, id, idx, 408);
    }

    /// Ends a branch with a response the proxy stands in for.
    pub(super) fn proxy_branch_failed(&mut self, now: Instant, id: u64, idx: usize, code: u16) {
        let Some(ctx) = self.proxies.get_mut(&id) else {
            return;
        };
        let Some(br) = ctx.branches.get_mut(idx) else {
            return;
        };
        if br.done {
            return;
        }
        br.done = true;
        ctx.finals.push(BranchFinal::Local(code));
        self.proxy_advance(now, id);
    }

    /// After a branch ended: the next target (sequential forking), the best response once
    /// every branch has ended (§16.7 item 6), and the context's end once nothing is pending.
    fn proxy_advance(&mut self, now: Instant, id: u64) {
        for _ in 0..=self.cfg.proxy.max_targets {
            let Some(ctx) = self.proxies.get_mut(&id) else {
                return;
            };
            if ctx.branches.iter().any(|b| !b.done) {
                return;
            }
            if ctx.answered {
                self.proxies.remove(&id);
                return;
            }
            if !ctx.cancelled {
                if let Some(t) = ctx.targets.pop_front() {
                    self.proxy_start_branch(now, id, &t);
                    continue;
                }
            }
            self.proxy_send_best(now, id);
            return;
        }
    }

    /// §16.7 items 6-8: the best final response goes upstream.
    fn proxy_send_best(&mut self, now: Instant, id: u64) {
        let Some(ctx) = self.proxies.get_mut(&id) else {
            return;
        };
        ctx.answered = true;
        let cancelled = ctx.cancelled;
        let finals = std::mem::take(&mut ctx.finals);
        let pending = ctx.branches.iter().any(|b| !b.done);
        if !pending {
            self.proxies.remove(&id);
        }
        let best = best_final(&finals);
        let answer = |ep: &mut Endpoint, reply: Reply| {
            let _ = ep.respond(now, ServerTxKey(id), reply);
        };
        let Some(i) = best else {
            // No branch ever answered (§16.7 item 6 asks for 408; a CANCEL makes it 487).
            answer(self, Reply::new(if cancelled { 487 } else { 408 }));
            return;
        };
        let m = match &finals[i] {
            BranchFinal::Local(503) => return answer(self, Reply::new(500)),
            BranchFinal::Local(code) => return answer(self, Reply::new(*code)),
            BranchFinal::Response(m) => m,
        };
        let code = m.status().unwrap_or(500);
        if code == 503 {
            // §16.7 item 6: a 503 would make the caller think *we* are overloaded.
            return answer(self, Reply::new(500));
        }
        if code == 401 || code == 407 {
            // §16.7 item 7: every challenge of every branch goes up in one response.
            let Some(mut b) = ResponseBuilder::from_message(m) else {
                return;
            };
            for (j, f) in finals.iter().enumerate() {
                let BranchFinal::Response(o) = f else {
                    continue;
                };
                if j == i || !matches!(o.status(), Some(401 | 407)) {
                    continue;
                }
                for v in o.header_lines(HeaderName::WwwAuthenticate) {
                    b = b.header(HeaderName::WwwAuthenticate, v);
                }
                for v in o.header_lines(HeaderName::ProxyAuthenticate) {
                    b = b.header(HeaderName::ProxyAuthenticate, v);
                }
            }
            if let Ok(merged) = b.build() {
                self.proxy_forward_response(now, id, &merged);
            }
            return;
        }
        let m = (**m).clone();
        self.proxy_forward_response(now, id, &m);
    }

    /// Sends a branch's response upstream on the server transaction, our Via removed
    /// (§16.7 item 3). Further 2xx to an INVITE pass the finished transaction (item 5).
    fn proxy_forward_response(&mut self, now: Instant, id: u64, m: &Message) {
        let Some(resp) = strip_top_via(m) else { return };
        let is_invite_2xx = resp.status().is_some_and(|c| (200..300).contains(&c))
            && resp
                .cseq()
                .map(|c| c.method == Method::Invite)
                .unwrap_or(false);
        // (A transaction lingers only once its context is gone: this is seldom asked.)
        let lingering_peer = || {
            (self.lingering.iter())
                .flat_map(|q| q.iter())
                .find(|(_, t)| t.id == id)
                .map(|(_, t)| t.peer)
        };
        if let Some(peer) = self
            .lingering_ids
            .contains(id)
            .then(lingering_peer)
            .flatten()
        {
            // Past its final response: a further 2xx passes it (item 5).
            if is_invite_2xx {
                self.send(peer, resp.to_bytes());
            }
            return;
        }
        let Some(peer) = self.server_txs.get(&id).map(|t| t.peer) else {
            if is_invite_2xx {
                self.send_response_by_via(&resp);
            }
            return;
        };
        let mut out = std::mem::take(&mut self.scratch);
        let sent = match self.server_txs.get_mut(&id).map(|t| &mut t.fsm) {
            Some(ServerFsm::Invite(f)) => f.send_response(now, &resp, &mut out),
            Some(ServerFsm::NonInvite(f)) => f.send_response(now, &resp, &mut out),
            None => false,
        };
        self.run_server_outputs(now, id, &mut out);
        self.scratch = out;
        if !sent && is_invite_2xx {
            self.send(peer, resp.to_bytes());
        }
    }

    /// A response that matches no transaction of ours but carries our Via on top (a 2xx
    /// retransmission after the branch ended): forwarded statelessly (§16.7 item 3, §16.11).
    pub(super) fn forward_response_stateless(&mut self, m: &Message) {
        if let Some(resp) = strip_top_via(m) {
            self.send_response_by_via(&resp);
        }
    }

    /// §18.2.2: to `received` / `rport` of the top Via, else its sent-by.
    fn send_response_by_via(&mut self, resp: &Message) {
        let Ok(via) = resp.top_via() else { return };
        let ip = via
            .received()
            .and_then(|r| r.parse::<IpAddr>().ok())
            .or_else(|| via.host.ip());
        let Some(ip) = ip else { return };
        let port = via.rport().flatten().or(via.port).unwrap_or(
            if via.transport.as_str().eq_ignore_ascii_case("TLS") {
                5061
            } else {
                5060
            },
        );
        let transport = Transport::from_via_token(&via.transport.as_str().to_ascii_uppercase())
            .unwrap_or(Transport::Udp);
        let peer = Peer {
            addr: SocketAddr::new(ip, port),
            transport,
            conn: None,
        };
        self.send(peer, resp.to_bytes());
    }

    /// CANCELs every branch of an INVITE still waiting for a final response (§16.10, §16.7
    /// item 10); a branch without a provisional yet gets its CANCEL when one arrives (§9.1).
    fn proxy_cancel_pending(&mut self, now: Instant, id: u64) {
        let Some(ctx) = self.proxies.get_mut(&id) else {
            return;
        };
        if ctx.method != Method::Invite {
            return;
        }
        let mut now_cancel = Vec::new();
        for (i, b) in ctx.branches.iter_mut().enumerate() {
            if b.done || b.cancel_sent {
                continue;
            }
            if b.provisional {
                now_cancel.push(i);
            } else {
                b.cancel_wanted = true;
            }
        }
        for i in now_cancel {
            self.proxy_send_cancel(now, id, i);
        }
    }

    /// §9.1: the CANCEL copies the branch's Request-URI, Via, Route, From, To, Call-ID and
    /// CSeq number.
    fn proxy_send_cancel(&mut self, now: Instant, id: u64, idx: usize) {
        let Some(br) = self
            .proxies
            .get_mut(&id)
            .and_then(|c| c.branches.get_mut(idx))
        else {
            return;
        };
        if br.cancel_sent {
            return;
        }
        br.cancel_sent = true;
        let peer = br.peer;
        let Some(inv) = br.request.clone() else {
            return;
        };
        self.cancel_invite(now, &inv, peer);
    }

    /// A CANCEL for the proxied INVITE of server transaction `id` (§16.10); the CANCEL itself
    /// has been answered 200 already.
    pub(super) fn proxy_on_cancel(&mut self, now: Instant, id: u64) {
        let Some(ctx) = self.proxies.get_mut(&id) else {
            return;
        };
        if ctx.answered {
            return;
        }
        ctx.cancelled = true;
        ctx.targets.clear();
        self.proxy_cancel_pending(now, id);
        self.proxy_advance(now, id);
    }

    /// Whether a request arriving outside our transactions belongs to the proxy: a Route
    /// names us (§16.4) and it is either inside a dialog that is not ours (a To tag, or an
    /// ACK) or still has Routes to follow. Those are forwarded and `true` returned; anything
    /// else is left to the UAS core.
    pub(super) fn proxy_route_request(
        &mut self,
        now: Instant,
        msg: &Message,
        peer: Peer,
        local: SocketAddr,
    ) -> bool {
        if msg.header(HeaderName::Route).is_none() {
            return false;
        }
        let Some(method) = msg.method() else {
            return false;
        };
        if method == Method::Cancel {
            return false; // matched to its INVITE by the UAS core, proxied or not
        }
        let Some((pre, ours)) = self.preprocess_routes(msg, local) else {
            return false;
        };
        if !ours {
            return false;
        }
        let to_tag = pre
            .to_header()
            .ok()
            .and_then(|t| t.tag().map(Box::<str>::from));
        match &to_tag {
            Some(tag) => {
                let call_id = pre.call_id().unwrap_or_default();
                if self
                    .by_tag
                    .get(call_id, tag, |d| super::call_id_in(&self.calls, d))
                    .is_some()
                {
                    return false; // a dialog of our own
                }
            }
            None => {
                if method != Method::Ack && pre.header(HeaderName::Route).is_none() {
                    return false; // routed to us, for us: the handler decides
                }
            }
        }
        if method == Method::Ack {
            self.proxy_forward_ack(&pre, local);
            return true;
        }
        let via_fix = super::uas::via_fix(msg, peer.addr);
        let rpeer = super::uas::response_peer(msg, peer);
        if let Err(e) = msg.validate() {
            let code = e.response_code().unwrap_or(400);
            self.respond_stateless(msg, rpeer, via_fix.as_ref(), Reply::new(code));
            return true;
        }
        let Some(key) = ServerKey::server(msg) else {
            return true;
        };
        if self.tx_count() >= self.cfg.max_transactions {
            let ra = self.cfg.retry_after.to_string();
            self.respond_stateless(
                msg,
                rpeer,
                via_fix.as_ref(),
                Reply::new(503).header("Retry-After", ra),
            );
            return true;
        }
        let id = self.next_id();
        let reliable = peer.transport.is_reliable();
        let fsm = if method == Method::Invite {
            ServerFsm::Invite(ServerInviteTransaction::new(reliable, self.cfg.timers))
        } else {
            ServerFsm::NonInvite(ServerNonInviteTransaction::new(reliable, self.cfg.timers))
        };
        let to_tag = super::TxTag::Own(self.new_tag().into());
        self.add_server_tx(
            id,
            Box::new(ServerTx {
                key,
                key_hash: 0,
                fsm,
                peer: rpeer,
                local,
                request: msg.clone(),
                via_fix,
                to_tag,
                to_tagged: None,
                cseq: None,
                dialog: None,
                merge_key: None,
                head: None,
                scheduled: None,
                trying_at: None,
            }),
        );
        if method == Method::Invite {
            self.respond_tx_inner(now, id, Reply::new(100), false);
        }
        let target = pre.request_uri_str().unwrap_or("").to_owned();
        self.start_proxy(now, id, ProxyTargets::single(target));
        true
    }

    /// §16.11 / §16.12: an ACK for a 2xx travels end to end; forwarded without a transaction,
    /// with a branch that is the same for every retransmission.
    fn proxy_forward_ack(&mut self, pre: &Message, _local: SocketAddr) {
        if matches!(pre.max_forwards(), Ok(Some(0))) {
            return;
        }
        let Some(ruri) = pre.request_uri_str() else {
            return;
        };
        let hop = pre
            .header_values(HeaderName::Route)
            .next()
            .map(|r| bare_uri(r).to_owned())
            .unwrap_or_else(|| ruri.to_owned());
        let Some(addr) = uri_socket_addr(&hop) else {
            return;
        };
        let transport = uri_transport(&hop);
        let branch = branch_param(loop_hash(pre, ruri), "a");
        let local = self.local_addr(transport);
        let via = self.via_for(local, transport, &branch);
        let Some(b) = RequestBuilder::from_message(pre) else {
            return;
        };
        let mf = decremented_max_forwards(pre);
        let b = strict_route(b, pre, ruri);
        let Ok(m) = b
            .remove_header(HeaderName::MaxForwards)
            .header(HeaderName::MaxForwards, mf)
            .prepend_header(HeaderName::Via, via)
            .build()
        else {
            return;
        };
        let peer = Peer {
            addr,
            transport,
            conn: None,
        };
        self.send(peer, m.to_bytes());
    }

    /// Whether a response's top Via is one of our proxy branches.
    pub(super) fn is_proxy_branch(resp: &Message) -> bool {
        resp.top_via()
            .ok()
            .and_then(|v| v.branch())
            .is_some_and(|b| b.starts_with(PROXY_BRANCH_PREFIX))
    }
}
