//! [`Agent`] and [`CallHandle`]: the application's side of a running agent, the same type
//! whichever adapter drives it. Every method has an `async` form (usable on any executor) and
//! a blocking one (for code with no executor, such as a mio loop's neighbours).

use crate::api::{AudioDevice, CallEvent, CallOptions, CallOutcome, OptionsReply};
use async_channel::{Receiver, Sender};
use parrot_media_core::handler::MediaAction;
use parrot_proto::Uri;
use parrot_transport::StreamKind;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

/// Wakes the adapter's loop after a command was queued (a `mio::Waker`; a no-op for async
/// adapters, which await the command channel).
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// A request from the application to the agent's loop.
pub enum Command {
    /// Place a call.
    Call {
        /// The callee URI.
        target: String,
        /// Where to send the INVITE.
        dst: SocketAddr,
        /// Options.
        opts: CallOptions,
        /// Audio device wired to the call.
        device: Option<Box<dyn AudioDevice>>,
        /// Gets the call's number.
        reply: Sender<u64>,
        /// Gets the call's events.
        events: Sender<CallEvent>,
    },
    /// Hang up a call.
    Hangup(u64),
    /// Send DTMF digits.
    Dtmf(u64, String),
    /// A media action.
    Media(u64, MediaAction),
    /// Register an address-of-record.
    Register {
        /// Registrar URI.
        uri: String,
        /// Where to send.
        dst: SocketAddr,
        /// The AOR.
        aor: String,
        /// Credentials.
        creds: Option<(String, String)>,
        /// Expiry asked for.
        expires: u32,
        /// Gets the outcome.
        reply: Sender<Result<u32, u16>>,
    },
    /// Send OPTIONS.
    Options {
        /// Target URI.
        uri: String,
        /// Where to send.
        dst: SocketAddr,
        /// Gets the answer.
        reply: Sender<Result<OptionsReply, String>>,
    },
    /// End every call and stop.
    Shutdown(Sender<()>),
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Command::Call { .. } => "Call",
            Command::Hangup(_) => "Hangup",
            Command::Dtmf(..) => "Dtmf",
            Command::Media(..) => "Media",
            Command::Register { .. } => "Register",
            Command::Options { .. } => "Options",
            Command::Shutdown(_) => "Shutdown",
        };
        f.write_str(name)
    }
}

/// The sending side of an agent's command channel.
#[derive(Clone)]
pub struct CommandSender {
    tx: Sender<Command>,
    wake: Option<Wake>,
}

impl CommandSender {
    /// A channel whose receiving end the adapter's loop reads; `wake` is called after each
    /// command.
    pub fn channel(wake: Option<Wake>) -> (CommandSender, Receiver<Command>) {
        let (tx, rx) = async_channel::unbounded();
        (CommandSender { tx, wake }, rx)
    }

    fn send(&self, c: Command) -> io::Result<()> {
        self.tx.try_send(c).map_err(|_| stopped())?;
        if let Some(w) = &self.wake {
            w();
        }
        Ok(())
    }
}

fn stopped() -> io::Error {
    io::Error::other("agent stopped")
}

/// A running SIP user agent (server, client or both), driven by one of the adapters.
pub struct Agent {
    cmds: CommandSender,
    events: Option<Receiver<CallEvent>>,
    udp: SocketAddr,
    streams: Vec<(StreamKind, SocketAddr)>,
    runtime: &'static str,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What an adapter hands over to make an [`Agent`].
pub struct AgentParts {
    /// The command channel's sending side.
    pub cmds: CommandSender,
    /// The events of every call.
    pub events: Receiver<CallEvent>,
    /// The UDP SIP address.
    pub udp: SocketAddr,
    /// The stream listeners (TCP, TLS, WS, WSS).
    pub streams: Vec<(StreamKind, SocketAddr)>,
    /// The adapter's name (`tokio`, `smol`, `mio`).
    pub runtime: &'static str,
    /// The thread running the loop, joined at shutdown.
    pub thread: std::thread::JoinHandle<()>,
}

impl Agent {
    /// Assembles an agent (for adapters).
    pub fn from_parts(p: AgentParts) -> Agent {
        Agent {
            cmds: p.cmds,
            events: Some(p.events),
            udp: p.udp,
            streams: p.streams,
            runtime: p.runtime,
            thread: Some(p.thread),
        }
    }

    /// The UDP address SIP listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.udp
    }

    /// The TCP address SIP listens on, if any.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.stream_addr(StreamKind::Tcp)
    }

    /// The address of the first listener of `kind` (TCP, TLS, WS, WSS), if any.
    pub fn stream_addr(&self, kind: StreamKind) -> Option<SocketAddr> {
        self.streams
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, a)| *a)
    }

    /// Which adapter drives this agent.
    pub fn runtime(&self) -> &'static str {
        self.runtime
    }

    /// The events of every call, in order. Can be taken once.
    pub fn take_events(&mut self) -> Option<Receiver<CallEvent>> {
        self.events.take()
    }

    /// Places a call to `uri` (`sip:user@host[:port]`).
    pub async fn call(&self, uri: &str, opts: CallOptions) -> io::Result<CallHandle> {
        let (rx, handle) = self.call_start(uri, opts, None)?;
        handle.finish(rx.recv().await)
    }

    /// Places a call whose audio comes from and goes to `device` (a microphone and speakers,
    /// see `parrot-cpal`, or any [`AudioDevice`]).
    pub async fn call_with_device(
        &self,
        uri: &str,
        opts: CallOptions,
        device: impl AudioDevice,
    ) -> io::Result<CallHandle> {
        let (rx, handle) = self.call_start(uri, opts, Some(Box::new(device)))?;
        handle.finish(rx.recv().await)
    }

    /// [`Agent::call`], blocking.
    pub fn call_blocking(
        &self,
        uri: &str,
        opts: CallOptions,
        device: Option<Box<dyn AudioDevice>>,
    ) -> io::Result<CallHandle> {
        let (rx, handle) = self.call_start(uri, opts, device)?;
        handle.finish(rx.recv_blocking())
    }

    fn call_start(
        &self,
        uri: &str,
        opts: CallOptions,
        device: Option<Box<dyn AudioDevice>>,
    ) -> io::Result<(Receiver<u64>, PendingCall)> {
        let dst = resolve(uri)?;
        let (reply, rx) = async_channel::bounded(1);
        let (etx, erx) = async_channel::unbounded();
        self.cmds.send(Command::Call {
            target: uri.to_owned(),
            dst,
            opts,
            device,
            reply,
            events: etx,
        })?;
        Ok((
            rx,
            PendingCall {
                cmds: self.cmds.clone(),
                events: erx,
            },
        ))
    }

    /// Registers `aor` with the registrar at `uri`; returns the granted expiry or the failing
    /// status. The binding is refreshed until the agent stops.
    pub async fn register(
        &self,
        uri: &str,
        aor: &str,
        credentials: Option<(String, String)>,
        expires: u32,
    ) -> io::Result<Result<u32, u16>> {
        let rx = self.register_start(uri, aor, credentials, expires)?;
        rx.recv().await.map_err(|_| stopped())
    }

    /// [`Agent::register`], blocking.
    pub fn register_blocking(
        &self,
        uri: &str,
        aor: &str,
        credentials: Option<(String, String)>,
        expires: u32,
    ) -> io::Result<Result<u32, u16>> {
        let rx = self.register_start(uri, aor, credentials, expires)?;
        rx.recv_blocking().map_err(|_| stopped())
    }

    fn register_start(
        &self,
        uri: &str,
        aor: &str,
        creds: Option<(String, String)>,
        expires: u32,
    ) -> io::Result<Receiver<Result<u32, u16>>> {
        let dst = resolve(uri)?;
        let (reply, rx) = async_channel::bounded(1);
        self.cmds.send(Command::Register {
            uri: uri.to_owned(),
            dst,
            aor: aor.to_owned(),
            creds,
            expires,
            reply,
        })?;
        Ok(rx)
    }

    /// Sends OPTIONS to `uri` and reports the answer and the round-trip time.
    pub async fn options(&self, uri: &str) -> io::Result<Result<OptionsReply, String>> {
        let rx = self.options_start(uri)?;
        rx.recv().await.map_err(|_| stopped())
    }

    /// [`Agent::options`], blocking.
    pub fn options_blocking(&self, uri: &str) -> io::Result<Result<OptionsReply, String>> {
        let rx = self.options_start(uri)?;
        rx.recv_blocking().map_err(|_| stopped())
    }

    fn options_start(&self, uri: &str) -> io::Result<Receiver<Result<OptionsReply, String>>> {
        let dst = resolve(uri)?;
        let (reply, rx) = async_channel::bounded(1);
        self.cmds.send(Command::Options {
            uri: uri.to_owned(),
            dst,
            reply,
        })?;
        Ok(rx)
    }

    /// Ends every live call with BYE (or CANCEL / 503 before the answer), waits up to five
    /// seconds for them to end, and stops.
    pub async fn shutdown(mut self) {
        let (tx, rx) = async_channel::bounded(1);
        if self.cmds.send(Command::Shutdown(tx)).is_ok() {
            let _ = rx.recv().await;
        }
        // The loop has answered: its thread ends at once.
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// [`Agent::shutdown`], blocking.
    pub fn shutdown_blocking(mut self) {
        let (tx, rx) = async_channel::bounded(1);
        if self.cmds.send(Command::Shutdown(tx)).is_ok() {
            let _ = rx.recv_blocking();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.thread.is_some() {
            // Dropped without shutdown: ask the loop to stop, without waiting.
            let (tx, _rx) = async_channel::bounded(1);
            let _ = self.cmds.send(Command::Shutdown(tx));
        }
    }
}

struct PendingCall {
    cmds: CommandSender,
    events: Receiver<CallEvent>,
}

impl PendingCall {
    fn finish(self, number: Result<u64, async_channel::RecvError>) -> io::Result<CallHandle> {
        let number = number.map_err(|_| stopped())?;
        Ok(CallHandle {
            number,
            cmds: self.cmds,
            events: self.events,
            seen: Vec::new(),
        })
    }
}

/// A call placed with [`Agent::call`].
pub struct CallHandle {
    number: u64,
    cmds: CommandSender,
    events: Receiver<CallEvent>,
    seen: Vec<CallEvent>,
}

impl CallHandle {
    /// The call's number in this agent.
    pub fn number(&self) -> u64 {
        self.number
    }
    /// The next event of this call (`None` once it has ended).
    pub async fn next_event(&mut self) -> Option<CallEvent> {
        let e = self.events.recv().await.ok()?;
        self.seen.push(e.clone());
        Some(e)
    }
    /// [`CallHandle::next_event`], blocking.
    pub fn next_event_blocking(&mut self) -> Option<CallEvent> {
        let e = self.events.recv_blocking().ok()?;
        self.seen.push(e.clone());
        Some(e)
    }
    /// Hangs up: BYE once answered, CANCEL before.
    pub fn hangup(&self) {
        let _ = self.cmds.send(Command::Hangup(self.number));
    }
    /// Sends DTMF digits (RFC 4733), one after another.
    pub fn send_dtmf(&self, digits: &str) {
        let _ = self.cmds.send(Command::Dtmf(self.number, digits.into()));
    }
    /// Plays a file (WAV) to the peer.
    pub fn play(&self, path: &str) {
        let _ = self
            .cmds
            .send(Command::Media(self.number, MediaAction::play(path)));
    }
    /// Records what the peer sends to a WAV file, until the call ends.
    pub fn record(&self, path: &str) {
        let _ = self.cmds.send(Command::Media(
            self.number,
            MediaAction::StartRecording(path.into()),
        ));
    }
    /// Waits for the end of the call.
    pub async fn wait(mut self) -> CallOutcome {
        while self.next_event().await.is_some() {}
        CallOutcome::from_events(std::mem::take(&mut self.seen))
    }
    /// [`CallHandle::wait`], blocking.
    pub fn wait_blocking(mut self) -> CallOutcome {
        while self.next_event_blocking().is_some() {}
        CallOutcome::from_events(std::mem::take(&mut self.seen))
    }
}

/// Where to send a request for `uri`: its `maddr`, host and port. Names are looked up with the
/// system resolver (A/AAAA only; the rest of RFC 3263 is not applied).
pub fn resolve(uri: &str) -> io::Result<SocketAddr> {
    let u = Uri::parse(uri)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{uri}: {e}")))?;
    let Uri::Sip(s) = u else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{uri}: only sip: and sips: URIs can be called"),
        ));
    };
    let default_port = if s.is_secure() { 5061 } else { 5060 };
    let port = s.port().unwrap_or(default_port);
    let host = match s.params().value("maddr") {
        Some(m) => m.to_owned(),
        None => match s.host() {
            parrot_proto::uri::Host::Ipv6(h) => h.to_owned(),
            h => h.to_string(),
        },
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let found = (host.as_str(), port).to_socket_addrs()?.next();
    found.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address")))
}
