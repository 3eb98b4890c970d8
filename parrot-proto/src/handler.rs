//! The handler traits: Parrot's programming model (the Elixir `Parrot.UasHandler` behaviour).
//!
//! Handlers are synchronous traits returning actions, as the Elixir callbacks return tuples
//! (`{:respond, ...}`, `{:proxy, ...}`, `{:noreply, ...}`, `{:stop, ...}`). Because they are pure
//! functions of their state and the message, the [`Endpoint`](crate::Endpoint) calls them inline
//! and stays deterministic. A handler that must wait (a database lookup) returns
//! [`Action::NoReply`] and answers later with [`Endpoint::respond`](crate::Endpoint::respond).
//!
//! Per-dialog state: the endpoint asks its [`UasHandlerFactory`] for a fresh handler for every
//! incoming INVITE (the Elixir handler process of a call) and keeps it with the dialog; requests
//! outside any dialog (OPTIONS, REGISTER, MESSAGE, ...) go to one endpoint-wide instance.

use crate::endpoint::{DialogId, EndReason, ServerTxKey};
use crate::{Message, Transport};
use bytes::Bytes;
use std::any::Any;
use std::borrow::Cow;
use std::net::SocketAddr;

/// A message body with its media type (an SDP offer or answer passes through untouched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// The Content-Type (RFC 3261 §20.15), e.g. `application/sdp`: borrowed for the common
    /// types, so an SDP body names its type without allocating.
    pub content_type: Cow<'static, str>,
    /// The bytes.
    pub bytes: Bytes,
}

/// The media type of SDP (RFC 4566 §5).
const SDP: &str = "application/sdp";
/// The media type of a body whose message names none (RFC 3261 §7.4.1 leaves it unknown).
const OCTET_STREAM: &str = "application/octet-stream";

impl Body {
    /// A body of `content_type` (a `&'static str` or a `String`).
    pub fn new(content_type: impl Into<Cow<'static, str>>, bytes: impl Into<Bytes>) -> Self {
        Body {
            content_type: content_type.into(),
            bytes: bytes.into(),
        }
    }

    /// An `application/sdp` body (RFC 3264).
    pub fn sdp(bytes: impl Into<Bytes>) -> Self {
        Body::new(SDP, bytes)
    }

    /// The body of a message, if it has one.
    pub fn of(m: &Message) -> Option<Body> {
        Self::of_typed(m, || m.header(crate::HeaderName::ContentType))
    }

    /// [`Body::of`] with the Content-Type line given by `ct`, read only when there is a body.
    pub(crate) fn of_typed<'a>(
        m: &'a Message,
        ct: impl FnOnce() -> Option<&'a str>,
    ) -> Option<Body> {
        let bytes = m.body();
        if bytes.is_empty() {
            return None;
        }
        // Written as the common types are, the type is borrowed; otherwise copied as written.
        let ct: Cow<'static, str> = match ct() {
            None => Cow::Borrowed(OCTET_STREAM),
            Some(SDP) => Cow::Borrowed(SDP),
            Some(other) => Cow::Owned(other.to_owned()),
        };
        Some(Body::new(ct, bytes))
    }
}

/// A response a handler asks for (`{:respond, status, reason, headers, body, state}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status code, 100-699.
    pub status: u16,
    /// The reason phrase; `None` uses the standard one (§21).
    pub reason: Option<String>,
    /// Extra header lines `(name, value)`.
    pub headers: Vec<(String, String)>,
    /// The body, e.g. an SDP answer.
    pub body: Option<Body>,
}

impl Reply {
    /// A bare response with the standard reason phrase.
    pub fn new(status: u16) -> Self {
        Reply {
            status,
            reason: None,
            headers: Vec::new(),
            body: None,
        }
    }

    /// Adds a header line.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: Body) -> Self {
        self.body = Some(body);
        self
    }

    /// Sets the reason phrase.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// What a handler callback asks the endpoint to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a response on the request's server transaction.
    Respond(Reply),
    /// Forward the request to this URI, statefully, with Record-Route as configured
    /// (RFC 3261 §16, see [`crate::proxy`]). The caller gets the best response of the branch
    /// (§16.7); the core answers itself when it cannot forward (483, 482, 480, 500).
    Proxy(String),
    /// Forward the request to several targets, in parallel or in sequence (forking, §16.5,
    /// §16.6); see [`ProxyTargets`](crate::proxy::ProxyTargets).
    ProxyTo(crate::proxy::ProxyTargets),
    /// Send nothing now; answer later with [`Endpoint::respond`](crate::Endpoint::respond).
    NoReply,
    /// End this handler (and its call): a pending request is answered 500, an established
    /// call gets a BYE.
    Stop(String),
}

impl Action {
    /// `Respond` with a bare status.
    pub fn respond(status: u16) -> Self {
        Action::Respond(Reply::new(status))
    }

    /// The 501 Not Implemented every default callback answers (as Parrot does).
    pub fn not_implemented() -> Self {
        Action::respond(501)
    }
}

/// A request handed to a handler, with where it came from.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The request.
    pub message: &'a Message,
    /// The dialog it belongs to, if any (the call of an INVITE, including the initial one).
    pub dialog: Option<DialogId>,
    /// The server transaction to answer on, for a deferred [`Endpoint::respond`](crate::Endpoint::respond).
    pub tx: Option<ServerTxKey>,
    /// The address the request came from.
    pub remote: SocketAddr,
    /// The transport it came on.
    pub transport: Transport,
}

/// The server side of Parrot's handler model: one callback per method (RFC 3261 §8.2 and the
/// method RFCs). Every default answers 501 Not Implemented as Parrot does, except ACK (no
/// answer is possible, §17.1.1.3), CANCEL (the core answers it, §9.2) and BYE (200: §15.1.2
/// requires the session to end).
pub trait UasHandler: Send {
    /// Called once when the handler is created, before its first request (Elixir `init/1`).
    fn init(&mut self) {}

    /// INVITE (§13): initial or re-INVITE (then `req.dialog` is the established dialog).
    fn handle_invite(&mut self, req: &Request<'_>) -> Action {
        let _ = req;
        Action::not_implemented()
    }

    /// ACK for a 2xx (§13.2.2.4); the body may carry the SDP answer.
    fn handle_ack(&mut self, req: &Request<'_>) -> Action {
        let _ = req;
        Action::NoReply
    }

    /// BYE (§15.1.2). The dialog ends whatever is answered.
    fn handle_bye(&mut self, req: &Request<'_>) -> Action {
        let _ = req;
        Action::respond(200)
    }

    /// CANCEL of a pending INVITE (§9.2). A notification: the core has answered 200 and 487.
    fn handle_cancel(&mut self, req: &Request<'_>) -> Action {
        let _ = req;
        Action::NoReply
    }

    /// OPTIONS (§11).
    fn handle_options(&mut self, req: &Request<'_>) -> Action {
        let _ = req;
        Action::not_implemented()
    }

    /// REGISTER (§10).
    fn handle_register(&mut self, req: &Request<'_>) -> Action {
        let _ = req;
        Action::not_implemented()
    }

    /// SUBSCRIBE (RFC 6665).
    fn handle_subscribe(&mut self, req: &Request<'_>) -> Action {
        let _ = req;
        Action::not_implemented()
    }

    /// NOTIFY (RFC 6665).
    fn handle_notify(&mut self, req: &Request<'_>) -> Action {
        let _ = req;
        Action::not_implemented()
    }

    /// PUBLISH (RFC 3903).
    fn handle_publish(&mut self, req: &Request<'_>) -> Action {
        let _ = req;
        Action::not_implemented()
    }

    /// MESSAGE (RFC 3428).
    fn handle_message(&mut self, req: &Request<'_>) -> Action {
        let _ = req;
        Action::not_implemented()
    }

    /// INFO (RFC 6086).
    fn handle_info(&mut self, req: &Request<'_>) -> Action {
        let _ = req;
        Action::not_implemented()
    }

    /// Any other method the endpoint allows (UPDATE, REFER, PRACK, extensions).
    fn handle_other(&mut self, req: &Request<'_>) -> Action {
        let _ = req;
        Action::not_implemented()
    }

    /// An application message sent with [`Endpoint::send_to_handler`](crate::Endpoint::send_to_handler)
    /// (Elixir `handle_info/2` for Erlang messages). `Respond` answers the dialog's pending
    /// INVITE, which is how deferred answers are given from inside the handler.
    fn handle_app_message(&mut self, dialog: Option<DialogId>, msg: &mut dyn Any) -> Action {
        let _ = (dialog, msg);
        Action::NoReply
    }
}

/// Creates a handler per incoming call (per-dialog handler state). Handlers are `Send` so an
/// endpoint can move into a runtime task.
pub trait UasHandlerFactory: Send {
    /// A fresh handler for a new dialog or for the endpoint-wide instance.
    fn new_handler(&mut self) -> Box<dyn UasHandler>;
}

impl<F: FnMut() -> Box<dyn UasHandler> + Send> UasHandlerFactory for F {
    fn new_handler(&mut self) -> Box<dyn UasHandler> {
        self()
    }
}

/// The handler of an outgoing call (UAC, §13.2). Every method defaults to doing nothing; the
/// same information is also reported as [`Event`](crate::Event)s.
pub trait UacHandler: Send {
    /// A provisional response (§13.2.2.1).
    fn on_provisional(&mut self, dialog: DialogId, resp: &Message) {
        let _ = (dialog, resp);
    }

    /// A 2xx (§13.2.2.4); the ACK has been sent.
    fn on_success(&mut self, dialog: DialogId, resp: &Message) {
        let _ = (dialog, resp);
    }

    /// A 3xx (§13.2.2.2): the call ended; the Contacts are the alternatives.
    fn on_redirect(&mut self, dialog: DialogId, resp: &Message) {
        let _ = (dialog, resp);
    }

    /// A 4xx-6xx, or a timeout reported as 408 (§8.1.3.1).
    fn on_failure(&mut self, dialog: DialogId, status: u16, resp: Option<&Message>) {
        let _ = (dialog, status, resp);
    }

    /// The call is established (2xx ACKed); `remote` is the SDP answer, if any.
    fn on_call_established(&mut self, dialog: DialogId, remote: Option<&Body>) {
        let _ = (dialog, remote);
    }

    /// The call ended.
    fn on_call_ended(&mut self, dialog: DialogId, reason: &EndReason) {
        let _ = (dialog, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_body(content_type: Option<&str>) -> Message {
        let ct = content_type.map_or(String::new(), |t| format!("Content-Type: {t}\r\n"));
        let raw = format!(
            "INVITE sip:b@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n\
             From: <sip:a@10.0.0.1>;tag=1\r\nTo: <sip:b@10.0.0.2>\r\nCall-ID: c\r\n\
             CSeq: 1 INVITE\r\nMax-Forwards: 70\r\n{ct}Content-Length: 3\r\n\r\nv=0"
        );
        Message::parse(Bytes::from(raw)).expect("a message")
    }

    #[test]
    fn a_body_names_its_type_as_the_message_wrote_it_borrowing_the_common_ones() {
        let sdp = Body::of(&with_body(Some("application/sdp"))).expect("a body");
        assert!(matches!(sdp.content_type, Cow::Borrowed("application/sdp")));
        assert_eq!(sdp.bytes, "v=0");
        let untyped = Body::of(&with_body(None)).expect("a body");
        assert!(matches!(
            untyped.content_type,
            Cow::Borrowed("application/octet-stream")
        ));
        for written in [
            "Application/SDP",
            "application/sdp;charset=utf-8",
            "text/plain",
        ] {
            let b = Body::of(&with_body(Some(written))).expect("a body");
            assert_eq!(b.content_type, written);
            assert!(matches!(b.content_type, Cow::Owned(_)));
        }
        assert_eq!(Body::sdp("v=0"), sdp);
        assert_eq!(
            Body::new(String::from("text/plain"), "x").content_type,
            "text/plain"
        );
    }
}
