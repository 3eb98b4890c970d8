//! One connection's stream layer: raw TCP bytes in and out, SIP in and out, with TLS
//! (RFC 3261 §26.2.1, RFC 8446 via rustls) and/or WebSocket (RFC 6455, RFC 7118) in between.
//!
//! ```text
//!   Tcp:  socket bytes ─────────────────────────────── SIP byte stream
//!   Tls:  socket bytes ── rustls ───────────────────── SIP byte stream
//!   Ws:   socket bytes ─────────── WsSession ───────── one SIP message per WS message
//!   Wss:  socket bytes ── rustls ── WsSession ───────── one SIP message per WS message
//! ```

use std::collections::VecDeque;
use std::io::{Read, Write};

use bytes::Bytes;
use rand_core::RngCore;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, Connection, ServerConnection};

use crate::error::TransportError;
use crate::tls::{TlsClient, TlsServer};
use crate::ws::{handshake, WsSession};
use crate::{SipData, StreamKind};

/// One connection's TLS / WebSocket layer, server or client side.
///
/// Methods come in the usual four kinds, in this order: getters, `handle_*` (input from the
/// socket), mutators (`send_sip`, `close`), and `poll_*` (output). After every `handle_*` or
/// mutator, drain `poll_sip` and `poll_output` until both return `None`, writing what
/// `poll_output` gives to the socket in order.
#[derive(Debug)]
pub struct StreamLayer {
    kind: StreamKind,
    tls: Option<Connection>,
    ws: Option<WsSession>,
    sip: VecDeque<SipData>,
    out: Vec<u8>,
    /// The peer ended its side (TLS close_notify, WS Close, TCP FIN).
    peer_closed: bool,
    /// We started an orderly close; no more SIP may be sent.
    local_closed: bool,
    /// An error ended the connection.
    failed: bool,
    close_notify_sent: bool,
}

impl StreamLayer {
    /// The server side of a connection accepted on a SIP listener of this kind (`tls` is needed
    /// for [`StreamKind::Tls`] and [`StreamKind::Wss`]).
    pub fn accept(
        kind: StreamKind,
        tls: Option<&TlsServer>,
    ) -> Result<StreamLayer, TransportError> {
        let tls = match (kind.is_secure(), tls) {
            (true, Some(cfg)) => Some(Connection::Server(ServerConnection::new(cfg.0.clone())?)),
            (true, None) => return Err(TransportError::MissingTlsConfig),
            (false, _) => None,
        };
        let ws = kind.is_websocket().then(WsSession::server);
        Ok(StreamLayer::new(kind, tls, ws))
    }

    /// The client side of a connection we opened.
    ///
    /// `server_name` is the TLS name to verify and send as SNI (a DNS name or an IP address;
    /// unused without TLS). `ws_host` and `ws_path` go into the WebSocket handshake's Host header
    /// and request target (unused without WebSocket). For WebSocket kinds, `rng` gives the
    /// `Sec-WebSocket-Key` (RFC 6455 §4.1) and seeds the stream of frame masking keys (§5.3);
    /// nothing is drawn otherwise.
    pub fn connect(
        kind: StreamKind,
        tls: Option<&TlsClient>,
        server_name: &str,
        ws_host: &str,
        ws_path: &str,
        rng: &mut dyn RngCore,
    ) -> Result<StreamLayer, TransportError> {
        let tls = match (kind.is_secure(), tls) {
            (true, Some(cfg)) => {
                let name = ServerName::try_from(server_name.to_owned())
                    .map_err(|_| TransportError::InvalidTarget)?;
                Some(Connection::Client(ClientConnection::new(
                    cfg.0.clone(),
                    name,
                )?))
            }
            (true, None) => return Err(TransportError::MissingTlsConfig),
            (false, _) => None,
        };
        let ws = if kind.is_websocket() {
            if !handshake::is_clean(ws_host) || !ws_path.starts_with('/') {
                return Err(TransportError::InvalidTarget);
            }
            if !handshake::is_clean(ws_path) {
                return Err(TransportError::InvalidTarget);
            }
            let mut nonce = [0u8; 16];
            rng.fill_bytes(&mut nonce);
            let mut seed = [0u8; 32];
            rng.fill_bytes(&mut seed);
            Some(WsSession::client(ws_host, ws_path, nonce, seed))
        } else {
            None
        };
        let mut layer = StreamLayer::new(kind, tls, ws);
        // The ClientHello and/or the WebSocket GET go out at once.
        layer.flush()?;
        Ok(layer)
    }

    fn new(kind: StreamKind, mut tls: Option<Connection>, ws: Option<WsSession>) -> StreamLayer {
        if let Some(conn) = &mut tls {
            // Our own output is bounded by what the application sends and drained into `out`
            // after every call; rustls' 64 KiB default would only make big messages fail.
            conn.set_buffer_limit(None);
        }
        StreamLayer {
            kind,
            tls,
            ws,
            sip: VecDeque::new(),
            out: Vec::new(),
            peer_closed: false,
            local_closed: false,
            failed: false,
            close_notify_sent: false,
        }
    }

    // --- getters ---

    /// The layer's kind.
    pub fn kind(&self) -> StreamKind {
        self.kind
    }

    /// The SIP transport this connection is (for Via and Contact, RFC 3261 §18, RFC 7118 §5).
    pub fn transport(&self) -> parrot_proto::Transport {
        self.kind.transport()
    }

    /// Whether the TLS and WebSocket handshakes (those that apply) are done and nothing closed.
    pub fn is_established(&self) -> bool {
        let tls_done = self.tls.as_ref().is_none_or(|c| !c.is_handshaking());
        let ws_open = self.ws.as_ref().is_none_or(WsSession::is_open);
        tls_done && ws_open && !self.is_closed() && !self.local_closed
    }

    /// Whether no more SIP will arrive: the peer closed (TLS close_notify, WebSocket Close, TCP
    /// end of stream) or the connection failed. Drain `poll_output`, then close the socket.
    pub fn is_closed(&self) -> bool {
        self.failed || self.peer_closed || self.ws.as_ref().is_some_and(WsSession::is_closed)
    }

    /// The close code of the peer's WebSocket Close frame, if it gave one (RFC 6455 §7.1.5).
    pub fn ws_close_code(&self) -> Option<u16> {
        self.ws.as_ref().and_then(WsSession::peer_close_code)
    }

    /// Server side: the request target of the client's WebSocket handshake (e.g. `/ws`).
    pub fn ws_path(&self) -> Option<&str> {
        self.ws.as_ref().and_then(WsSession::path)
    }

    /// Server side: the Origin header of the client's WebSocket handshake, which browsers send
    /// (RFC 6455 §4.2.1 item 7); a server may refuse origins it does not serve (§10.2).
    pub fn ws_origin(&self) -> Option<&str> {
        self.ws.as_ref().and_then(WsSession::origin)
    }

    /// Sets the largest WebSocket message accepted; a bigger one fails the connection with
    /// close code 1009 (RFC 6455 §7.4.1). Default [`crate::DEFAULT_MAX_MESSAGE`].
    pub fn set_max_message_size(&mut self, max: usize) {
        if let Some(ws) = &mut self.ws {
            ws.set_max_message(max);
        }
    }

    // --- handle_* ---

    /// Raw bytes read from the socket.
    ///
    /// On error the connection is over: drain `poll_output` (a TLS alert, an HTTP error answer
    /// to a bad WebSocket handshake, or a Close frame) and close the socket.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<(), TransportError> {
        if self.failed {
            return Err(TransportError::Closed);
        }
        let r = self.input(data);
        if r.is_err() {
            self.failed = true;
        }
        // Flush even on error: the alert / error answer / Close frame must go out.
        let f = self.flush();
        r.and(f)
    }

    fn input(&mut self, data: &[u8]) -> Result<(), TransportError> {
        let Some(conn) = &mut self.tls else {
            return self.plaintext_in(data);
        };
        let mut rest = data;
        let mut plain = Vec::new();
        let mut tls_error = None;
        while !rest.is_empty() && tls_error.is_none() {
            // read_tls takes as much as its buffer allows; loop until all is consumed.
            if conn.read_tls(&mut rest).is_err() {
                tls_error = Some(rustls::Error::General("TLS input buffer full".into()));
                break;
            }
            let state = match conn.process_new_packets() {
                Ok(state) => Some(state),
                Err(e) => {
                    tls_error = Some(e);
                    None
                }
            };
            // Plaintext from records before a bad one is still handed up, so that the result
            // does not depend on how the bytes were split into reads.
            let mut buf = [0u8; 4096];
            loop {
                match conn.reader().read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => plain.extend_from_slice(&buf[..n]),
                    // WouldBlock: no more plaintext for now.
                    Err(_) => break,
                }
            }
            if state.is_some_and(|s| s.peer_has_closed()) {
                self.peer_closed = true;
            }
        }
        let r = if plain.is_empty() {
            Ok(())
        } else if self.ws.is_none() {
            // TLS: the decrypted bytes are handed up as they are, without another copy.
            self.sip.push_back(SipData::Stream(Bytes::from(plain)));
            Ok(())
        } else {
            self.plaintext_in(&plain)
        };
        match tls_error {
            Some(e) => Err(TransportError::Tls(e)),
            None => r,
        }
    }

    fn plaintext_in(&mut self, data: &[u8]) -> Result<(), TransportError> {
        match &mut self.ws {
            Some(ws) => {
                let r = ws.handle_input(data);
                while let Some(m) = ws.poll_message() {
                    self.sip.push_back(SipData::Message(m));
                }
                r
            }
            None => {
                if !data.is_empty() {
                    self.sip
                        .push_back(SipData::Stream(Bytes::copy_from_slice(data)));
                }
                Ok(())
            }
        }
    }

    /// The socket reached end of stream (the peer's TCP FIN).
    pub fn handle_eof(&mut self) {
        if let Some(conn) = &mut self.tls {
            // An empty read tells rustls the stream ended; a missing close_notify is then visible
            // as a truncation, which we treat as a close all the same.
            let _ = conn.read_tls(&mut &[][..]);
        }
        self.peer_closed = true;
    }

    // --- mutators ---

    /// Queues one whole SIP message: as one WebSocket message on WS/WSS (text, or binary when it
    /// is not UTF-8; RFC 7118 §5.1, §5.2), as stream bytes on TCP/TLS. Before the handshakes
    /// finish, the message waits for them.
    pub fn send_sip(&mut self, msg: &[u8]) -> Result<(), TransportError> {
        if self.failed || self.local_closed {
            return Err(TransportError::Closed);
        }
        match (&mut self.ws, &mut self.tls) {
            (Some(ws), _) => ws.send_message(msg)?,
            (None, Some(conn)) => conn
                .writer()
                .write_all(msg)
                .map_err(|_| TransportError::Closed)?,
            (None, None) => self.out.extend_from_slice(msg),
        }
        self.flush()
    }

    /// Queues a WebSocket Ping (RFC 6455 §5.5.2) with up to 125 bytes of payload, e.g. as a
    /// keep-alive; the Pong is absorbed. A no-op on TCP/TLS or before the handshake is done.
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), TransportError> {
        if self.failed || self.local_closed {
            return Err(TransportError::Closed);
        }
        if let Some(ws) = &mut self.ws {
            ws.send_ping(payload).map_err(TransportError::WebSocket)?;
        }
        self.flush()
    }

    /// Starts an orderly close: a WebSocket Close frame (1000, RFC 6455 §7.1.2), then TLS
    /// close_notify once the WebSocket close handshake is over (RFC 8446 §6.1). Keep draining
    /// `poll_output` and feeding input until [`StreamLayer::is_closed`], or just close the
    /// socket after writing the output.
    pub fn close(&mut self) {
        if self.local_closed {
            return;
        }
        self.local_closed = true;
        if let Some(ws) = &mut self.ws {
            ws.close();
        }
        let _ = self.flush();
    }

    /// Moves what the WebSocket layer wrote through TLS (if any) into the output buffer.
    fn flush(&mut self) -> Result<(), TransportError> {
        let mut ws_bytes = Vec::new();
        if let Some(ws) = &mut self.ws {
            if ws.has_output() {
                ws.take_output(&mut ws_bytes);
            }
        }
        let ws_done = self.ws.as_ref().is_none_or(WsSession::is_finished);
        let closing = self.local_closed || self.is_closed();
        match &mut self.tls {
            None => self.out.extend_from_slice(&ws_bytes),
            Some(conn) => {
                if !ws_bytes.is_empty() {
                    conn.writer()
                        .write_all(&ws_bytes)
                        .map_err(|_| TransportError::Closed)?;
                }
                if closing && ws_done && !self.close_notify_sent {
                    conn.send_close_notify();
                    self.close_notify_sent = true;
                }
                while conn.wants_write() {
                    if conn.write_tls(&mut self.out).is_err() {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    // --- poll_* ---

    /// The next SIP data that arrived: [`SipData::Stream`] on TCP/TLS (feed it to the SIP stream
    /// framer), [`SipData::Message`] on WS/WSS (exactly one SIP message, RFC 7118 §5.2).
    #[must_use]
    pub fn poll_sip(&mut self) -> Option<SipData> {
        self.sip.pop_front()
    }

    /// Raw bytes to write to the socket, in order: handshakes, TLS records, WebSocket frames.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Vec<u8>> {
        if self.out.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.out))
        }
    }

    /// Like [`StreamLayer::poll_output`], appending to a caller's buffer; returns the bytes added.
    pub fn poll_output_into(&mut self, buf: &mut Vec<u8>) -> usize {
        let n = self.out.len();
        buf.append(&mut self.out);
        n
    }
}
