//! Dialogs (RFC 3261 §12): identity, route set, remote target and CSeq spaces.
//!
//! A [`Dialog`] holds what §12.1 says a dialog is: Call-ID, local and remote tags, local and
//! remote URIs, the remote target (from Contact, refreshed by target-refresh requests, §12.2),
//! the route set (Record-Route, reversed on the UAC side, §12.1.2) and the two CSeq spaces. It
//! builds in-dialog requests (§12.2.1.1, loose and strict routing). The call logic around it
//! (2xx retransmission, forking, glare) lives in the endpoint.

use crate::{HeaderName, Message, Method, RequestBuilder};

/// Where a dialog stands (§12.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a provisional response with a To tag.
    Early,
    /// A 2xx was sent or received.
    Confirmed,
    /// Ended by BYE, a failure or a timeout.
    Terminated,
}

/// Which side of the dialog this endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We sent the INVITE.
    Uac,
    /// We received the INVITE.
    Uas,
}

/// The dialog state of §12.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// State.
    pub state: DialogState,
    /// Our role.
    pub role: Role,
    /// Call-ID.
    pub call_id: Box<str>,
    /// Our tag.
    pub local_tag: Box<str>,
    /// The peer's tag (empty until known).
    pub remote_tag: Box<str>,
    /// Our URI (name-addr without tag), e.g. `<sip:alice@example.com>`.
    pub local_uri: Box<str>,
    /// The peer's URI (name-addr without tag).
    pub remote_uri: Box<str>,
    /// The remote target (Contact URI).
    pub remote_target: Box<str>,
    /// The route set, in the order requests carry it.
    pub route_set: Vec<Box<str>>,
    /// Our CSeq (last used).
    pub local_cseq: u32,
    /// The peer's CSeq (last seen), `None` until a request arrives.
    pub remote_cseq: Option<u32>,
}

/// The URI inside a name-addr, with its angle brackets and parameters dropped.
pub(crate) fn contact_uri(m: &Message) -> Option<Box<str>> {
    let c = m.contacts().next()?.ok()?;
    match c {
        crate::header::ContactValue::Addr(na) => Some(na.uri_str().into()),
        crate::header::ContactValue::Star => None,
    }
}

/// The Record-Route values of `m`, in order (§12.1.1, §12.1.2): a message without
/// Record-Route (the common one) makes no list.
fn record_route(m: &Message) -> Vec<Box<str>> {
    if m.header(HeaderName::RecordRoute).is_none() {
        return Vec::new();
    }
    m.header_values(HeaderName::RecordRoute)
        .map(Box::from)
        .collect()
}

/// `<uri>` plus display name, tag parameter removed.
pub(crate) fn strip_tag(v: &str) -> Box<str> {
    // The first ";tag=", found among the ';' bytes (a substring searcher costs more to set up
    // than these short values take to scan).
    let b = v.as_bytes();
    let at = memchr::memchr_iter(b';', b).find(|&i| b.get(i + 1..i + 5) == Some(b"tag="));
    match at {
        Some(i) => {
            let end = memchr::memchr(b';', &b[i + 5..]).map_or(v.len(), |j| i + 5 + j);
            match (v.get(..i), v.get(end..)) {
                (Some(head), Some(tail)) => crate::text::concat(&[head, tail]).into(),
                _ => v.into(),
            }
        }
        None => v.into(),
    }
}

/// What `uri_socket_addr` (the endpoint's reading of a target) gives for a URI of the plain
/// shape `sip:user@host[:port]` with an IPv4 host (a user of alphanumerics and `-_.!~*'()`,
/// the host and port read by the URI parser's own one-pass [`crate::uri::scan_hostport`]), read
/// without the rest of the URI grammar; `None` for any other shape, which the general rule then
/// reads. Such a URI is also what parsing `<uri>` in a Contact or To gives.
pub(crate) fn plain_sip_ipv4(uri: &str) -> Option<std::net::SocketAddr> {
    let b = uri.as_bytes().strip_prefix(b"sip:")?;
    let at = b.iter().position(|&c| !USER_BYTE[usize::from(c)])?;
    if at == 0 || b.get(at) != Some(&b'@') {
        return None;
    }
    let hp = crate::uri::scan_hostport::<false>(b, at + 1)?;
    if hp.end != b.len() {
        return None;
    }
    Some(std::net::SocketAddr::new(
        hp.ipv4?.into(),
        hp.port.unwrap_or(5060),
    ))
}

/// The bytes of a plain user part: alphanumerics and `-_.!~*'()`.
static USER_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
            );
        c += 1;
    }
    t
};

/// The tag of a To value `v` that is `uri;tag=tag` byte for byte, with `uri` a plain
/// `<sip:user@a.b.c.d[:port]>` ([`plain_sip_ipv4`]) and `tag` a token: what parsing `v` gives
/// (RFC 3261 §19.3), read without parsing. `None`: parse it.
pub(crate) fn plain_tagged<'v>(uri: &str, v: &'v str) -> Option<&'v str> {
    let tag = v.strip_prefix(uri)?.strip_prefix(";tag=")?;
    let inner = uri.strip_prefix('<')?.strip_suffix('>')?;
    (crate::text::is_token(tag) && plain_sip_ipv4(inner).is_some()).then_some(tag)
}

/// What an update from a response did to where in-dialog requests go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TargetChange {
    /// The remote target or the route set changed.
    pub(crate) changed: bool,
    /// The remote target's address, when the Contact just read was a plain `<uri>`
    /// ([`plain_sip_ipv4`]).
    pub(crate) plain: Option<std::net::SocketAddr>,
}

impl Dialog {
    /// The dialog a UAS creates on answering `invite` with `local_tag` (§12.1.1).
    pub fn uas(invite: &Message, local_tag: &str) -> Option<Dialog> {
        let route_set = record_route(invite);
        Some(Dialog {
            state: DialogState::Early,
            role: Role::Uas,
            call_id: invite.call_id().ok()?.into(),
            local_tag: local_tag.into(),
            remote_tag: invite.from_header().ok()?.tag().unwrap_or("").into(),
            local_uri: strip_tag(invite.header(HeaderName::To)?),
            remote_uri: strip_tag(invite.header(HeaderName::From)?),
            remote_target: contact_uri(invite)
                .unwrap_or_else(|| invite.request_uri_str().unwrap_or("sip:invalid").into()),
            route_set,
            local_cseq: 0,
            remote_cseq: invite.cseq().ok().map(|c| c.seq),
        })
    }

    /// [`Dialog::uas`] from what validation read already.
    pub(crate) fn uas_checked(
        invite: &Message,
        c: &crate::message::Checked<'_>,
        local_tag: Box<str>,
    ) -> Option<Dialog> {
        let route_set = record_route(invite);
        Some(Dialog {
            state: DialogState::Early,
            role: Role::Uas,
            call_id: c.call_id.into(),
            local_tag,
            remote_tag: c.from_tag.unwrap_or("").into(),
            local_uri: strip_tag(c.to),
            remote_uri: strip_tag(c.from),
            remote_target: c
                .contact
                .or_else(|| invite.request_uri_str())
                .unwrap_or("sip:invalid")
                .into(),
            route_set,
            local_cseq: 0,
            remote_cseq: Some(c.cseq.seq),
        })
    }

    /// Updates a UAC dialog from a response that carries a To tag (§12.1.2): remote tag,
    /// target, and the route set reversed from Record-Route.
    pub fn update_from_response(&mut self, resp: &Message) {
        let to = resp.to_header().ok();
        self.update_from_response_tagged(resp, to.as_ref().and_then(|t| t.tag()));
    }

    /// [`Dialog::update_from_response`] with the response's To tag already read; says whether
    /// the remote target or the route set changed.
    pub(crate) fn update_from_response_tagged(
        &mut self,
        resp: &Message,
        to_tag: Option<&str>,
    ) -> TargetChange {
        if let Some(tag) = to_tag {
            if *self.remote_tag != *tag {
                self.remote_tag = tag.into();
            }
        }
        let mut ch = self.set_target_from(resp);
        let mut rs = record_route(resp);
        rs.reverse();
        if self.state != DialogState::Confirmed || !rs.is_empty() {
            ch.changed |= self.route_set != rs;
            self.route_set = rs;
        }
        ch
    }

    /// Target refresh (§12.2.1.2, §12.2.2): a Contact in a re-INVITE, UPDATE or its 2xx.
    pub fn refresh_target(&mut self, m: &Message) {
        let _ = self.set_target_from(m);
    }

    /// The remote target from the first Contact of `m`, when it has one; the same URI again
    /// (a 200 after its 180) is not copied.
    fn set_target_from(&mut self, m: &Message) -> TargetChange {
        let same = TargetChange {
            changed: false,
            plain: None,
        };
        let line = m.header(HeaderName::Contact);
        if Self::contact_is_target(line, &self.remote_target) {
            return same;
        }
        // A first Contact line `<uri>` with a plain `uri` (no comma, bracket, quote or white
        // space: the line is its first value) has that URI, read without parsing.
        let plain = line
            .and_then(|v| v.strip_prefix('<'))
            .and_then(|v| v.strip_suffix('>'))
            .and_then(|u| Some((u, plain_sip_ipv4(u)?)));
        if let Some((uri, addr)) = plain {
            let changed = *self.remote_target != *uri;
            if changed {
                self.remote_target = uri.into();
            }
            return TargetChange {
                changed,
                plain: Some(addr),
            };
        }
        let Some(Ok(crate::header::ContactValue::Addr(na))) = m.contacts().next() else {
            return same;
        };
        let uri = na.uri_str();
        if *self.remote_target == *uri {
            return same;
        }
        self.remote_target = uri.into();
        TargetChange {
            changed: true,
            plain: None,
        }
    }

    /// Whether the first Contact line is `<target>` exactly, with a target that holds nothing
    /// that splits or ends a value (`,` `<` `>` `"`, white space): its first value is then that
    /// line, and parsing it gives `target` or an error, either of which leaves the target as
    /// it is, so it need not be parsed.
    fn contact_is_target(line: Option<&str>, target: &str) -> bool {
        let Some(inner) = line
            .and_then(|v| v.strip_prefix('<'))
            .and_then(|v| v.strip_suffix('>'))
        else {
            return false;
        };
        // The bytes that split or end a value, all below 64: one bit each.
        const SPLITS: u64 = 1 << b','
            | 1 << b'<'
            | 1 << b'>'
            | 1 << b'"'
            | 1 << b' '
            | 1 << b'\t'
            | 1 << b'\r'
            | 1 << b'\n';
        inner == target
            && !target.is_empty()
            && !target.bytes().any(|c| c < 64 && SPLITS >> c & 1 != 0)
    }

    /// The next local CSeq.
    pub fn next_cseq(&mut self) -> u32 {
        self.local_cseq = self.local_cseq.wrapping_add(1).max(1);
        self.local_cseq
    }

    /// The Request-URI and Route values of an in-dialog request (§12.2.1.1): loose routing
    /// sends to the remote target with the whole route set; strict routing puts the first
    /// route in the Request-URI and the remote target last.
    pub fn request_target(&self) -> (Box<str>, Vec<Box<str>>) {
        match self.route_set.first() {
            None => (self.remote_target.clone(), Vec::new()),
            Some(first) if first.contains(";lr") => {
                (self.remote_target.clone(), self.route_set.clone())
            }
            Some(first) => {
                let uri = first.trim().trim_start_matches('<');
                let uri = uri.split('>').next().unwrap_or(uri);
                let mut routes: Vec<Box<str>> = self.route_set[1..].to_vec();
                routes.push(format!("<{}>", self.remote_target).into());
                (uri.into(), routes)
            }
        }
    }

    /// Starts an in-dialog request with `cseq` (§12.2.1.1): Request-URI, Route, From, To,
    /// Call-ID and CSeq; the caller adds Via, Max-Forwards, Contact and a body.
    pub fn request(&self, method: Method, cseq: u32) -> RequestBuilder {
        self.request_in(method, cseq, &mut None)
    }

    /// [`Dialog::request`] written into the header buffers kept in `bufs`, if any (see
    /// [`crate::builder::Buffers`]).
    pub(crate) fn request_in(
        &self,
        method: Method,
        cseq: u32,
        bufs: &mut Option<crate::builder::Buffers>,
    ) -> RequestBuilder {
        let b = match self.route_set.first() {
            // Loose routing (or none): the remote target and the route set as they are.
            None => RequestBuilder::new_in(
                method.clone(),
                &self.remote_target,
                crate::builder::Buffers::take(bufs),
            ),
            Some(first) if first.contains(";lr") => {
                let mut b = RequestBuilder::new(method.clone(), self.remote_target.as_ref());
                for r in &self.route_set {
                    b = b.header(HeaderName::Route, r.as_ref());
                }
                b
            }
            Some(_) => {
                let (ruri, routes) = self.request_target();
                let mut b = RequestBuilder::new(method.clone(), ruri.as_ref());
                for r in routes {
                    b = b.header(HeaderName::Route, r.as_ref());
                }
                b
            }
        };
        // Values made of pieces are written straight into the builder's buffer.
        b.header_with(HeaderName::From, |t| {
            t.push_str(&self.local_uri);
            t.push_str(";tag=");
            t.push_str(&self.local_tag);
        })
        .header_with(HeaderName::To, |t| {
            t.push_str(&self.remote_uri);
            if !self.remote_tag.is_empty() {
                t.push_str(";tag=");
                t.push_str(&self.remote_tag);
            }
        })
        .header(HeaderName::CallId, self.call_id.as_ref())
        .header_with(HeaderName::CSeq, |t| {
            crate::text::push_u32(t, cseq);
            t.push(' ');
            t.push_str(method.as_str());
        })
    }

    /// [`Dialog::request_in`] with a Via of `via`'s pieces before every line, then
    /// Max-Forwards 70, when given a Contact, and `extra` after them, handed to `write` as the
    /// Request-URI and lines of [`crate::builder::request_lines_in`]. `None` under strict
    /// routing (the Request-URI and routes are made anew): build with `request_in` then.
    fn with_lines<R>(
        &self,
        method: &Method,
        cseq: u32,
        via: &[&str],
        contact: Option<&str>,
        extra: &[crate::builder::Line<'_>],
        write: impl FnOnce(&[u8], &[crate::builder::Line<'_>]) -> Option<R>,
    ) -> Option<R> {
        let loose = match self.route_set.first() {
            None => true,
            Some(first) => first.contains(";lr"),
        };
        if !loose {
            return None;
        }
        let via: smallvec::SmallVec<[&[u8]; 3]> = via.iter().map(|p| p.as_bytes()).collect();
        let routes: smallvec::SmallVec<[[&[u8]; 1]; 2]> =
            self.route_set.iter().map(|r| [r.as_bytes()]).collect();
        let from: [&[u8]; 3] = [
            self.local_uri.as_bytes(),
            b";tag=",
            self.local_tag.as_bytes(),
        ];
        let to_all: [&[u8]; 3] = [
            self.remote_uri.as_bytes(),
            b";tag=",
            self.remote_tag.as_bytes(),
        ];
        let to = if self.remote_tag.is_empty() {
            &to_all[..1]
        } else {
            &to_all[..]
        };
        let call_id: [&[u8]; 1] = [self.call_id.as_bytes()];
        let mut digits = [0u8; 10];
        let cseq: [&[u8]; 3] = [
            crate::text::decimal(u64::from(cseq), &mut digits),
            b" ",
            method.as_str().as_bytes(),
        ];
        let contact = contact.map(|c| [c.as_bytes()]);
        let mut lines: smallvec::SmallVec<[crate::builder::Line<'_>; 10]> =
            smallvec::SmallVec::new();
        lines.push((HeaderName::Via, &via[..]));
        for r in &routes {
            lines.push((HeaderName::Route, &r[..]));
        }
        lines.push((HeaderName::From, &from[..]));
        lines.push((HeaderName::To, to));
        lines.push((HeaderName::CallId, &call_id[..]));
        lines.push((HeaderName::CSeq, &cseq[..]));
        const MAX_FORWARDS: &[&[u8]] = &[b"70"];
        lines.push((HeaderName::MaxForwards, MAX_FORWARDS));
        if let Some(c) = &contact {
            lines.push((HeaderName::Contact, &c[..]));
        }
        lines.extend_from_slice(extra);
        write(self.remote_target.as_bytes(), &lines)
    }

    /// What `request_in(method, cseq, ..)` with a Via of `via`'s pieces prepended, then
    /// Max-Forwards 70 and `contact` (if any) added and no body, builds with
    /// `build_in(.., wire)`, written at once ([`crate::builder::request_lines_in`]). `None`:
    /// build it that way instead (strict routing, or a case the builder decides on).
    pub(crate) fn write_request(
        &self,
        method: &Method,
        cseq: u32,
        via: &[&str],
        contact: Option<&str>,
        wire: &mut bytes::BytesMut,
    ) -> Option<Message> {
        self.with_lines(method, cseq, via, contact, &[], |uri, lines| {
            crate::builder::request_lines_in(method, uri, lines, wire)
        })
    }

    /// [`Dialog::write_request`] with `extra` lines after the Contact and a body (its
    /// Content-Type the last of `extra`), in a buffer of its own: what the same builder gives
    /// with `header` for each of `extra` but the Content-Type, `body` and `build`.
    pub(crate) fn write_request_owned(
        &self,
        method: &Method,
        cseq: u32,
        via: &[&str],
        contact: Option<&str>,
        extra: &[crate::builder::Line<'_>],
        body: &[u8],
    ) -> Option<Message> {
        self.with_lines(method, cseq, via, contact, extra, |uri, lines| {
            crate::builder::request_lines_owned(method, uri, lines, body)
        })
    }

    /// [`Dialog::write_request`] for a request only sent (an ACK for a 2xx): its bytes.
    pub(crate) fn write_request_bytes(
        &self,
        method: &Method,
        cseq: u32,
        via: &[&str],
        wire: &mut bytes::BytesMut,
    ) -> Option<bytes::Bytes> {
        self.with_lines(method, cseq, via, None, &[], |uri, lines| {
            crate::builder::request_lines_bytes_in(method, uri, lines, wire)
        })
    }

    /// Approximate heap bytes held (for the memory figures of the bench).
    pub fn heap_bytes(&self) -> usize {
        self.call_id.len()
            + self.local_tag.len()
            + self.remote_tag.len()
            + self.local_uri.len()
            + self.remote_uri.len()
            + self.remote_target.len()
            + self.route_set.iter().map(|r| r.len() + 16).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_set_is_every_record_route_value_in_order() {
        let m = |rr: &str| {
            Message::parse(
                format!(
                    "INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n{rr}To: <sip:b@h>\r\n\r\n"
                )
                .into_bytes(),
            )
            .unwrap()
        };
        let with = m("Record-Route: <sip:p1;lr>, <sip:p2;lr>\r\nrecord-route: <sip:p3;lr>\r\n");
        let all: Vec<Box<str>> = with
            .header_values(HeaderName::RecordRoute)
            .map(Box::from)
            .collect();
        assert_eq!(all.len(), 3);
        assert_eq!(record_route(&with), all);
        assert!(record_route(&m("")).is_empty());
    }
    use proptest::prelude::*;

    fn dialog_with_target(target: &str) -> Dialog {
        Dialog {
            state: DialogState::Early,
            role: Role::Uac,
            call_id: "c".into(),
            local_tag: "1".into(),
            remote_tag: "2".into(),
            local_uri: "<sip:a@h>".into(),
            remote_uri: "<sip:b@h>".into(),
            remote_target: target.into(),
            route_set: Vec::new(),
            local_cseq: 1,
            remote_cseq: None,
        }
    }

    /// What `set_target_from` does without its shortcut: parse the first Contact value.
    fn target_by_parsing(target: &str, m: &Message) -> Box<str> {
        match m.contacts().next() {
            Some(Ok(crate::header::ContactValue::Addr(na))) => na.uri_str().into(),
            _ => target.into(),
        }
    }

    proptest! {
        /// A Contact that is the target in angle brackets is not parsed; the target is what
        /// parsing the Contact would give, for any target and Contact.
        #[test]
        fn a_contact_naming_the_target_leaves_it_as_parsing_would(
            target in "[a-z:@.,<>\" ;=]{0,12}|sip:[a-z]{1,4}@[a-z0-9.:]{1,10}",
            shape in 0..6usize,
            other in "[a-z:@.,<>\" ;=]{0,12}",
        ) {
            let contact = match shape {
                0 => format!("<{target}>"),
                1 => format!("<{target}>;expires=5"),
                2 => format!("<{target}>, <{other}>"),
                3 => format!("\"x\" <{target}>"),
                4 => format!("<{other}>"),
                _ => other.clone(),
            };
            let raw = format!(
                "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContact: {contact}\r\nContent-Length: 0\r\n\r\n"
            );
            let Ok(m) = Message::parse(raw.into_bytes()) else {
                return Ok(());
            };
            let mut d = dialog_with_target(&target);
            d.set_target_from(&m);
            prop_assert_eq!(d.remote_target, target_by_parsing(&target, &m));
        }
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => "[a-zA-Z0-9<>:@;=.]{0,10}",
            1 => "[ a-z]{0,3}[\r\n]?[a-z]{0,2}",
        ]
    }

    fn route() -> impl Strategy<Value = String> {
        prop_oneof![
            "<sip:p[0-9]\\.example;lr>",
            "<sip:p[0-9]\\.example>",
            text(),
        ]
    }

    prop_compose! {
        fn any_dialog()(
            call_id in text(),
            local_tag in text(),
            remote_tag in text(),
            local_uri in text(),
            remote_uri in text(),
            target in prop_oneof![3 => "sip:[a-z]{1,4}@[0-9.]{1,9}", 1 => text()],
            route_set in prop::collection::vec(route(), 0..3),
            cseq in any::<u32>(),
        ) -> (Dialog, u32) {
            let mut d = dialog_with_target(&target);
            d.call_id = call_id.into();
            d.local_tag = local_tag.into();
            d.remote_tag = remote_tag.into();
            d.local_uri = local_uri.into();
            d.remote_uri = remote_uri.into();
            d.route_set = route_set.into_iter().map(Box::from).collect();
            (d, cseq)
        }
    }

    proptest! {
        /// An in-dialog request written at once is, byte for byte and position for position,
        /// the one `request_in` and the builder give, for any dialog, method, Via and Contact;
        /// it is written whenever the dialog's values are plain and routing is loose.
        #[test]
        fn a_dialog_request_written_at_once_is_the_built_one(
            (d, cseq) in any_dialog(),
            method in prop_oneof![Just(Method::Bye), Just(Method::Ack), Just(Method::Update)],
            via in prop::collection::vec(text(), 0..4),
            contact in prop::option::of(text()),
        ) {
            let via: Vec<&str> = via.iter().map(|s| s.as_str()).collect();
            let mut wire = bytes::BytesMut::new();
            let fast = d.write_request(&method, cseq, &via, contact.as_deref(), &mut wire);
            let fast_bytes = match contact {
                None => d.write_request_bytes(&method, cseq, &via, &mut wire),
                Some(_) => fast.as_ref().map(|m| m.to_bytes()),
            };
            let mut b = d
                .request_in(method.clone(), cseq, &mut None)
                .prepend_header_pieces(HeaderName::Via, &via)
                .header(HeaderName::MaxForwards, "70");
            if let Some(c) = &contact {
                b = b.header(HeaderName::Contact, c);
            }
            let owned_general = b.clone();
            let general = b.build_in(&mut None, &mut wire);
            prop_assert_eq!(fast.is_some(), fast_bytes.is_some());
            if let Some(m) = &fast {
                let g = general.as_ref().expect("the builder builds what is written at once");
                prop_assert_eq!(m.to_bytes(), g.to_bytes());
                #[cfg(debug_assertions)]
                prop_assert!(m.same_layout(g));
                prop_assert_eq!(fast_bytes, Some(g.to_bytes()));
            }
            let values = [&*d.call_id, &*d.local_tag, &*d.remote_tag, &*d.local_uri, &*d.remote_uri]
                .into_iter()
                .chain(d.route_set.iter().map(|r| &**r))
                .chain(via.iter().copied())
                .chain(contact.as_deref());
            let plain = values.into_iter().all(|v| !v.contains(['\r', '\n']))
                && d.remote_target.contains(':')
                && !d.remote_target.starts_with('<')
                && !d.remote_target.bytes().any(|b| b.is_ascii_whitespace())
                && d.route_set.first().is_none_or(|r| r.contains(";lr"));
            prop_assert_eq!(fast.is_some(), plain);

            // With a User-Agent and a body, in a buffer of its own (an INVITE).
            let ua: [&[u8]; 1] = [b"parrot/1"];
            let ct: [&[u8]; 1] = [b"application/sdp"];
            let extra = [(HeaderName::UserAgent, &ua[..]), (HeaderName::ContentType, &ct[..])];
            let body = b"v=0\r\n";
            let owned = d.write_request_owned(&method, cseq, &via, contact.as_deref(), &extra, body);
            let general = owned_general
                .header(HeaderName::UserAgent, "parrot/1")
                .body("application/sdp", &body[..])
                .build();
            if let Some(m) = &owned {
                let g = general.as_ref().expect("the builder builds what is written at once");
                prop_assert_eq!(m.to_bytes(), g.to_bytes());
                #[cfg(debug_assertions)]
                prop_assert!(m.same_layout(g));
            }
            prop_assert_eq!(owned.is_some(), plain);
        }
    }

    fn plain_uri() -> impl Strategy<Value = String> {
        "sip:[a-z0-9!~*'()._-]{1,6}@(0|1|10|255|256|01)\\.[0-9]{1,3}\\.0\\.[0-9]{1,2}(:[0-9]{1,6})?"
    }

    proptest! {
        /// A Contact whose first line is a plain `<uri>` leaves the target parsing would, for
        /// any second value or parameters after it.
        #[test]
        fn a_plain_contact_gives_the_target_parsing_gives(
            uri in plain_uri(),
            shape in 0..5usize,
            other in "[a-z:@.,<>\" ;=]{0,12}",
        ) {
            let contact = match shape {
                0 => format!("<{uri}>"),
                1 => format!("<{uri}>;expires=5"),
                2 => format!("<{uri}>, <{other}>"),
                3 => format!("<{uri}>{other}"),
                _ => format!(" <{uri}> "),
            };
            let raw = format!(
                "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContact: {contact}\r\nContent-Length: 0\r\n\r\n"
            );
            let Ok(m) = Message::parse(raw.into_bytes()) else {
                return Ok(());
            };
            let mut d = dialog_with_target("sip:b@192.0.2.2");
            d.set_target_from(&m);
            prop_assert_eq!(d.remote_target, target_by_parsing("sip:b@192.0.2.2", &m));
        }

        /// The tag read from a To of a plain `<uri>` and `;tag=` is what parsing the To gives;
        /// other values are left to parsing.
        #[test]
        fn a_plain_tagged_to_has_the_tag_parsing_gives(
            uri in plain_uri(),
            tag in "[a-zA-Z0-9.!%*_+`'~-]{0,8}|[a-z;=\" ,>]{0,6}",
            tail in "|;x=1|>|[;a-z=]{0,4}",
        ) {
            let uri = format!("<{uri}>");
            let to = format!("{uri};tag={tag}{tail}");
            let raw = format!(
                "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: {to}\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
            );
            let Ok(m) = Message::parse(raw.into_bytes()) else {
                return Ok(());
            };
            let Some(line) = m.header(HeaderName::To) else {
                return Ok(());
            };
            if let Some(t) = plain_tagged(&uri, line) {
                let parsed = m.to_header().ok();
                prop_assert_eq!(Some(t), parsed.as_ref().and_then(|p| p.tag()), "{}", to);
            }
        }
    }

    #[test]
    fn a_plain_tagged_to_is_read_without_parsing() {
        let uri = "<sip:bob@10.0.0.2>";
        assert_eq!(
            plain_tagged(uri, "<sip:bob@10.0.0.2>;tag=a6c85cf"),
            Some("a6c85cf")
        );
        assert_eq!(plain_tagged(uri, "<sip:bob@10.0.0.2>;tag="), None);
        assert_eq!(plain_tagged(uri, "<sip:bob@10.0.0.2>;tag=a;b=c"), None);
        assert_eq!(
            plain_tagged("<sip:bob@example.com>", "<sip:bob@example.com>;tag=a"),
            None
        );
    }

    #[test]
    fn a_contact_naming_the_target_is_recognised_without_parsing() {
        assert!(Dialog::contact_is_target(
            Some("<sip:b@h:5060>"),
            "sip:b@h:5060"
        ));
        assert!(!Dialog::contact_is_target(
            Some("<sip:b@h:5060>"),
            "sip:b@h"
        ));
        assert!(!Dialog::contact_is_target(Some("<sip:b@h>;x"), "sip:b@h"));
        assert!(!Dialog::contact_is_target(Some("<a>,<b>"), "a>,<b"));
        assert!(!Dialog::contact_is_target(Some("<>"), ""));
        assert!(!Dialog::contact_is_target(None, "sip:b@h"));
    }

    #[test]
    fn strip_tag_keeps_other_params() {
        assert_eq!(&*strip_tag("<sip:a@h>;tag=12;x=1"), "<sip:a@h>;x=1");
        assert_eq!(&*strip_tag("<sip:a@h>;tag=12"), "<sip:a@h>");
    }

    #[test]
    fn strict_route_moves_remote_target_last() {
        let mut d = Dialog {
            state: DialogState::Confirmed,
            role: Role::Uac,
            call_id: "c".into(),
            local_tag: "1".into(),
            remote_tag: "2".into(),
            local_uri: "<sip:a@h>".into(),
            remote_uri: "<sip:b@h>".into(),
            remote_target: "sip:b@10.0.0.2".into(),
            route_set: vec!["<sip:p1.example>".into(), "<sip:p2.example;lr>".into()],
            local_cseq: 1,
            remote_cseq: None,
        };
        let (uri, routes) = d.request_target();
        assert_eq!(&*uri, "sip:p1.example");
        assert_eq!(routes.last().map(|r| &**r), Some("<sip:b@10.0.0.2>"));
        d.route_set = vec!["<sip:p1.example;lr>".into()];
        let (uri, routes) = d.request_target();
        assert_eq!(&*uri, "sip:b@10.0.0.2");
        assert_eq!(routes.len(), 1);
    }
}

#[cfg(test)]
mod strip_tag_tests {
    use super::strip_tag;

    /// The rule `strip_tag` implements, with a substring search.
    fn reference(v: &str) -> String {
        match v.find(";tag=") {
            Some(i) => {
                let rest = &v[i + 5..];
                let end = rest.find(';').map(|j| i + 5 + j).unwrap_or(v.len());
                format!("{}{}", &v[..i], &v[end..])
            }
            None => v.to_owned(),
        }
    }

    #[test]
    fn tag_parameter_is_removed_and_the_rest_kept() {
        for v in [
            "<sip:alice@example.com>;tag=1928301774",
            "\"A\" <sip:a@h>;x=1;tag=abc;y=2",
            "<sip:a@h;tag=uri-param>;tag=real",
            "<sip:a@h>",
            "<sip:a@h>;TAG=upper",
            "<sip:a@h>;tag=",
            "<sip:a@h>;tag",
            ";tag=x",
            "é<sip:é@h>;tag=é;z",
        ] {
            assert_eq!(&*strip_tag(v), reference(v), "{v}");
        }
    }
}
