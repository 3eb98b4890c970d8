//! SIP over WebSocket (RFC 7118) on RFC 6455: one connection's WebSocket state machine.
//!
//! Bytes in (`handle_input`), whole messages out (`poll_message`), bytes to write out
//! (`take_output`). Each WebSocket message carries exactly one SIP message (RFC 7118 §5.2), so a
//! completed message is handed up whole, never as part of a byte stream. Fragmented messages
//! (§5.4) are reassembled up to a size limit; control frames may arrive between fragments.

pub(crate) mod frame;
pub(crate) mod handshake;

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;

use crate::error::{HandshakeError, TransportError, WsError};
use frame::{close_code, decode_header, encode_frame, Opcode};

/// Default cap on one reassembled WebSocket message: a SIP message over 64 KiB is refused with
/// close code 1009 (RFC 6455 §7.4.1).
pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the peer's half of the opening handshake.
    Handshake,
    /// Messages flow both ways.
    Open,
    /// Both Close frames exchanged, or the connection failed.
    Closed,
}

/// Which side of the connection this is, with what each side needs.
#[derive(Debug)]
enum Role {
    /// Server: frames from the client must be masked (§5.1).
    Server {
        /// The request target and Origin of the accepted handshake.
        request: Option<(String, Option<String>)>,
    },
    /// Client: our frames are masked with keys from `rng` (§5.3).
    Client { key: String, rng: Box<ChaCha20Rng> },
}

/// One WebSocket connection (RFC 6455), either side.
#[derive(Debug)]
pub(crate) struct WsSession {
    role: Role,
    state: State,
    inbuf: BytesMut,
    /// The fragmented message being reassembled, with its opcode (§5.4).
    partial: Option<(Opcode, BytesMut)>,
    messages: VecDeque<Bytes>,
    out: Vec<u8>,
    /// Messages queued before the handshake finished (§4.1: a client sends nothing more until
    /// the server's answer; a server has nowhere to send before it answers).
    pending: Vec<Vec<u8>>,
    max_message: usize,
    close_sent: bool,
    /// The code of the peer's Close frame, when one arrived (`Some(None)`: no code given).
    close_received: Option<Option<u16>>,
}

impl WsSession {
    /// The server side, waiting for the client's GET.
    pub(crate) fn server() -> WsSession {
        WsSession::new(Role::Server { request: None })
    }

    /// The client side: queues the opening handshake at once.
    pub(crate) fn client(host: &str, path: &str, nonce: [u8; 16], seed: [u8; 32]) -> WsSession {
        use rand_core::SeedableRng;
        let key = handshake::new_key(nonce);
        let mut s = WsSession::new(Role::Client {
            key: key.clone(),
            rng: Box::new(ChaCha20Rng::from_seed(seed)),
        });
        s.out
            .extend_from_slice(handshake::client_request(host, path, &key).as_bytes());
        s
    }

    fn new(role: Role) -> WsSession {
        WsSession {
            role,
            state: State::Handshake,
            inbuf: BytesMut::new(),
            partial: None,
            messages: VecDeque::new(),
            out: Vec::new(),
            pending: Vec::new(),
            max_message: DEFAULT_MAX_MESSAGE,
            close_sent: false,
            close_received: None,
        }
    }

    // --- getters ---

    /// Whether the opening handshake has completed and no Close was exchanged yet.
    pub(crate) fn is_open(&self) -> bool {
        self.state == State::Open && !self.close_sent && self.close_received.is_none()
    }

    /// Whether no more messages will come: the peer sent Close, or the connection failed.
    pub(crate) fn is_closed(&self) -> bool {
        self.state == State::Closed || self.close_received.is_some()
    }

    /// Whether both Close frames went by (or the connection failed): the stream under it may end.
    pub(crate) fn is_finished(&self) -> bool {
        self.state == State::Closed
    }

    /// The peer's close code, if its Close frame carried one.
    pub(crate) fn peer_close_code(&self) -> Option<u16> {
        self.close_received.flatten()
    }

    /// The request target of the client's handshake (server side).
    pub(crate) fn path(&self) -> Option<&str> {
        match &self.role {
            Role::Server {
                request: Some((path, _)),
            } => Some(path),
            _ => None,
        }
    }

    /// The Origin of the client's handshake (server side), if it sent one.
    pub(crate) fn origin(&self) -> Option<&str> {
        match &self.role {
            Role::Server {
                request: Some((_, origin)),
            } => origin.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn set_max_message(&mut self, max: usize) {
        self.max_message = max;
    }

    // --- handle_* ---

    /// Bytes from the stream below (TCP or TLS plaintext).
    pub(crate) fn handle_input(&mut self, data: &[u8]) -> Result<(), TransportError> {
        if self.state == State::Closed {
            return Ok(());
        }
        self.inbuf.extend_from_slice(data);
        if self.state == State::Handshake {
            let Some(end) = handshake::head_end(&self.inbuf) else {
                if self.inbuf.len() > handshake::MAX_HANDSHAKE {
                    return Err(self.fail_handshake(HandshakeError::TooLarge));
                }
                return Ok(());
            };
            if end > handshake::MAX_HANDSHAKE {
                return Err(self.fail_handshake(HandshakeError::TooLarge));
            }
            let head = self.inbuf.split_to(end);
            let checked = match &mut self.role {
                Role::Server { request } => handshake::parse_request(&head).map(|req| {
                    *request = Some((req.path, req.origin));
                    Some(req.key)
                }),
                Role::Client { key, .. } => handshake::check_response(&head, key).map(|()| None),
            };
            match checked {
                Ok(server_key) => {
                    if let Some(key) = server_key {
                        self.out
                            .extend_from_slice(handshake::accept_response(&key).as_bytes());
                    }
                    self.state = State::Open;
                    for msg in std::mem::take(&mut self.pending) {
                        self.write_message(&msg);
                    }
                }
                Err(e) => return Err(self.fail_handshake(e)),
            }
        }
        self.read_frames()
    }

    fn read_frames(&mut self) -> Result<(), TransportError> {
        while self.state == State::Open {
            let h = match decode_header(&self.inbuf) {
                Ok(Some(h)) => h,
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.fail(e)),
            };
            let is_server = matches!(self.role, Role::Server { .. });
            // Client-to-server frames are masked, server-to-client frames are not (§5.1).
            match (is_server, h.mask.is_some()) {
                (true, false) => return Err(self.fail(WsError::UnmaskedClientFrame)),
                (false, true) => return Err(self.fail(WsError::MaskedServerFrame)),
                _ => {}
            }
            // Refuse an oversized message from its header, before buffering the payload.
            let so_far = match (&self.partial, h.opcode) {
                (Some((_, buf)), Opcode::Continuation) => buf.len() as u64,
                _ => 0,
            };
            if !h.opcode.is_control() && so_far + h.payload_len > self.max_message as u64 {
                return Err(self.fail(WsError::MessageTooBig));
            }
            // The length is at most max_message here (or 125 for control frames).
            let Ok(len) = usize::try_from(h.payload_len) else {
                return Err(self.fail(WsError::MessageTooBig));
            };
            let total = h.header_len.saturating_add(len);
            if self.inbuf.len() < total {
                return Ok(());
            }
            let mut payload = self.inbuf.split_to(total);
            payload.advance(h.header_len);
            if let Some(key) = h.mask {
                frame::apply_mask(&mut payload, key);
            }
            self.on_frame(h.fin, h.opcode, payload)?;
        }
        Ok(())
    }

    fn on_frame(&mut self, fin: bool, op: Opcode, payload: BytesMut) -> Result<(), TransportError> {
        match op {
            Opcode::Text | Opcode::Binary => {
                if self.partial.is_some() {
                    return Err(self.fail(WsError::ExpectedContinuation));
                }
                if fin {
                    self.deliver(op, payload)?;
                } else {
                    self.partial = Some((op, payload));
                }
            }
            Opcode::Continuation => {
                let Some((first, mut buf)) = self.partial.take() else {
                    return Err(self.fail(WsError::UnexpectedContinuation));
                };
                buf.extend_from_slice(&payload);
                if fin {
                    self.deliver(first, buf)?;
                } else {
                    self.partial = Some((first, buf));
                }
            }
            Opcode::Ping => {
                // A Pong carries the Ping's payload (§5.5.2); none after our Close (§5.5.1).
                if !self.close_sent {
                    self.write_frame(Opcode::Pong, &payload);
                }
            }
            Opcode::Pong => {}
            Opcode::Close => self.on_close(&payload)?,
        }
        Ok(())
    }

    fn deliver(&mut self, op: Opcode, payload: BytesMut) -> Result<(), TransportError> {
        if op == Opcode::Text && std::str::from_utf8(&payload).is_err() {
            return Err(self.fail(WsError::InvalidUtf8));
        }
        // An empty message holds no SIP message; nothing to hand up.
        if !payload.is_empty() {
            self.messages.push_back(payload.freeze());
        }
        Ok(())
    }

    /// A Close frame from the peer (§5.5.1, §7.1.5).
    fn on_close(&mut self, payload: &[u8]) -> Result<(), TransportError> {
        let code = match payload {
            [] => None,
            [_] => return Err(self.fail(WsError::BadClosePayload)),
            [a, b, reason @ ..] => {
                let code = u16::from_be_bytes([*a, *b]);
                if !frame::is_valid_close_code(code) {
                    return Err(self.fail(WsError::BadClosePayload));
                }
                if std::str::from_utf8(reason).is_err() {
                    return Err(self.fail(WsError::InvalidUtf8));
                }
                Some(code)
            }
        };
        self.close_received = Some(code);
        if !self.close_sent {
            // Echo the status code back (§5.5.1).
            self.send_close(code.unwrap_or(close_code::NORMAL));
        }
        self.state = State::Closed;
        self.inbuf.clear();
        Ok(())
    }

    // --- mutators ---

    /// Queues one SIP message as one WebSocket message (RFC 7118 §5.2).
    pub(crate) fn send_message(&mut self, msg: &[u8]) -> Result<(), TransportError> {
        if self.close_sent || self.state == State::Closed {
            return Err(TransportError::Closed);
        }
        match self.state {
            State::Handshake => self.pending.push(msg.to_vec()),
            _ => self.write_message(msg),
        }
        Ok(())
    }

    /// Starts the closing handshake with 1000 (§7.1.2). Messages queued before the handshake
    /// finished are dropped: there is no open connection to carry them.
    pub(crate) fn close(&mut self) {
        match self.state {
            State::Handshake => {
                self.pending.clear();
                self.state = State::Closed;
            }
            State::Open if !self.close_sent => self.send_close(close_code::NORMAL),
            _ => {}
        }
    }

    /// Queues a Ping (§5.5.2); the peer answers with a Pong, which is absorbed.
    pub(crate) fn send_ping(&mut self, payload: &[u8]) -> Result<(), WsError> {
        if payload.len() > frame::MAX_CONTROL_PAYLOAD {
            return Err(WsError::ControlTooLong);
        }
        if self.is_open() {
            self.write_frame(Opcode::Ping, payload);
        }
        Ok(())
    }

    fn write_message(&mut self, msg: &[u8]) {
        // SIP is text, but a body may not be UTF-8; such a message goes as binary (RFC 7118 §5.1).
        let op = if std::str::from_utf8(msg).is_ok() {
            Opcode::Text
        } else {
            Opcode::Binary
        };
        self.write_frame(op, msg);
    }

    fn write_frame(&mut self, op: Opcode, payload: &[u8]) {
        let mask = match &mut self.role {
            Role::Client { rng, .. } => Some(rng.next_u32().to_be_bytes()),
            Role::Server { .. } => None,
        };
        encode_frame(&mut self.out, true, op, payload, mask);
    }

    fn send_close(&mut self, code: u16) {
        self.write_frame(Opcode::Close, &code.to_be_bytes());
        self.close_sent = true;
    }

    /// "Fail the WebSocket Connection" (§7.1.7): a Close frame with the error's code, then done.
    fn fail(&mut self, e: WsError) -> TransportError {
        if !self.close_sent {
            self.send_close(e.close_code());
        }
        self.state = State::Closed;
        self.inbuf.clear();
        self.partial = None;
        TransportError::WebSocket(e)
    }

    fn fail_handshake(&mut self, e: HandshakeError) -> TransportError {
        if matches!(self.role, Role::Server { .. }) {
            self.out
                .extend_from_slice(handshake::reject_response(e).as_bytes());
        }
        self.state = State::Closed;
        self.inbuf.clear();
        self.pending.clear();
        TransportError::Handshake(e)
    }

    // --- poll_* ---

    /// The next whole message received.
    pub(crate) fn poll_message(&mut self) -> Option<Bytes> {
        self.messages.pop_front()
    }

    /// Moves the bytes to send (handshake, frames) to the end of `dst`.
    pub(crate) fn take_output(&mut self, dst: &mut Vec<u8>) {
        dst.append(&mut self.out);
    }

    /// Whether there are bytes to send.
    pub(crate) fn has_output(&self) -> bool {
        !self.out.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (WsSession, WsSession) {
        let mut c = WsSession::client("example.com", "/", [7; 16], [9; 32]);
        let mut s = WsSession::server();
        shuttle(&mut c, &mut s);
        assert!(c.is_open() && s.is_open());
        (c, s)
    }

    fn shuttle(c: &mut WsSession, s: &mut WsSession) {
        for _ in 0..4 {
            let mut b = Vec::new();
            c.take_output(&mut b);
            s.handle_input(&b).unwrap();
            let mut b = Vec::new();
            s.take_output(&mut b);
            c.handle_input(&b).unwrap();
        }
    }

    #[test]
    fn messages_both_ways() {
        let (mut c, mut s) = pair();
        c.send_message(b"INVITE").unwrap();
        s.send_message(b"SIP/2.0 200 OK").unwrap();
        shuttle(&mut c, &mut s);
        assert_eq!(s.poll_message().as_deref(), Some(&b"INVITE"[..]));
        assert_eq!(c.poll_message().as_deref(), Some(&b"SIP/2.0 200 OK"[..]));
    }

    #[test]
    fn messages_sent_before_open_wait_for_the_handshake() {
        let mut c = WsSession::client("h", "/", [1; 16], [2; 32]);
        c.send_message(b"REGISTER").unwrap();
        let mut b = Vec::new();
        c.take_output(&mut b);
        // Only the handshake went out.
        assert_eq!(handshake::head_end(&b), Some(b.len()));
        let mut s = WsSession::server();
        s.handle_input(&b).unwrap();
        shuttle(&mut c, &mut s);
        assert_eq!(s.poll_message().as_deref(), Some(&b"REGISTER"[..]));
    }

    #[test]
    fn close_is_echoed() {
        let (mut c, mut s) = pair();
        c.close();
        assert!(!c.is_finished());
        shuttle(&mut c, &mut s);
        assert!(s.is_closed() && s.is_finished());
        assert!(c.is_closed() && c.is_finished());
        assert_eq!(c.peer_close_code(), Some(1000));
        assert_eq!(c.send_message(b"x"), Err(TransportError::Closed));
    }
}
