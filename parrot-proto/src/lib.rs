//! # parrot-proto: the sans-IO SIP core of Parrot
//!
//! This crate is the signalling half of Parrot's protocol core. It is **deterministic** and does
//! **no IO**: it never opens a socket, reads a clock, sleeps, spawns a task or draws entropy that
//! was not handed to it. Bytes and time go in; parsed messages, bytes to send, events and the next
//! deadline come out. Runtime adapters (`parrot-tokio`, `parrot-smol`, `parrot-mio`) own the
//! sockets and timers.
//!
//! ## The message layer (RFC 3261 §7, §18.3, §19, §20, §25)
//!
//! * [`Message::parse`] parses one message from a datagram (UDP): the body is framed by
//!   `Content-Length` when present, otherwise it runs to the end of the datagram, and trailing
//!   octets after a `Content-Length` body are discarded (§18.3).
//! * [`parse_stream`] and [`StreamDecoder`] frame messages on a byte stream (TCP, TLS,
//!   WebSocket): each call answers *complete*, *need more bytes* or *invalid*, and CRLF
//!   keep-alives (RFC 5626 §3.5.1) are reported rather than treated as garbage.
//! * A parsed [`Message`] owns a [`bytes::Bytes`] and keeps only offsets into it. Typed views
//!   ([`Message::via`], [`Message::from_header`], [`Message::cseq`], ...) parse a header value on
//!   access and borrow from the buffer: nothing of the message is copied.
//! * [`Message::validate`] applies the semantic checks of §8.2 and §20 (mandatory headers, single
//!   values, CSeq range and method, header grammar) and maps failures to the status code a UAS
//!   answers with ([`ParseError::response_code`]).
//! * [`RequestBuilder`] and [`ResponseBuilder`] write messages; every message they build parses
//!   back to an equal message.
//!
//! ## Errors and limits
//!
//! Bad input is never a panic: every failure is a [`ParseError`] that names what is wrong, the
//! header it was found in and the byte offset. [`Limits`] bounds message size, header count and
//! header length so that hostile input cannot make the parser allocate without bound.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod builder;
#[doc(hidden)]
pub mod checks;
mod error;
pub mod header;
mod limits;
mod message;
mod method;
mod parse;
mod stream;
mod text;
pub mod uri;

pub use builder::{reason_phrase, BuildError, RequestBuilder, ResponseBuilder};
pub use error::{ErrorKind, ParseError};
pub use header::HeaderName;
pub use limits::Limits;
pub use message::{Header, Message, StartLine};
pub use method::Method;
pub use stream::{parse_stream, Parsed, StreamDecoder, StreamItem};
pub use uri::Uri;

pub mod transaction;
mod transport;
pub use transport::{ConnectionId, Transmit, Transport};

pub mod auth;
pub mod dialog;
pub mod endpoint;
pub mod handler;
pub mod proxy;
pub mod registrar;
pub mod registration;
pub mod sim;
pub use endpoint::{
    CommandError, DialogId, EndReason, Endpoint, EndpointConfig, Event, InviteRequest,
    OutOfDialogRequest, RegistrationId, RequestId, ServerTxKey,
};
pub use handler::{Action, Body, Reply, Request, UacHandler, UasHandler, UasHandlerFactory};
pub use proxy::{ProxyConfig, ProxyTargets};
pub use registrar::{
    Binding, InMemoryLocationStore, LocationStore, Registrar, RegistrarConfig, RegistrarReply,
};
pub use registration::RegisterRequest;
#[doc(hidden)]
pub mod fuzzing;
