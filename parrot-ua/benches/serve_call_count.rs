//! `parrot serve`'s per-call work without sockets, for counting instructions and allocations:
//! N zero-length calls as SIPp's built-in `uac` places them (INVITE with SDP, ACK, BYE) fed to
//! a [`UserAgent`] set up as `parrot serve` sets up its own (auto-answer with the welcome
//! prompt playing, the same endpoint settings, media written 10 ms ahead as with sending
//! threads), with every transmit, event and timer drained as the adapters' `Driver` does.
//! Run it under callgrind (or memcheck) with N and 2N; per call = (count(2N) − count(N)) / N.
//!
//! `bash parrot-ua/benches/serve_call_count.sh` does it all; by hand: `cargo bench -p
//! parrot-ua --bench serve_call_count --no-run`, then `valgrind --tool=callgrind <binary> 2000`
//! and `... 4000`, less the inclusive counts of `invite`, `in_dialog` and `dialog_of` (the
//! bench's own work).
//!
//! Timing: one call starts every 100 µs (10,000 calls a second); its ACK comes 200 µs and its
//! BYE 400 µs after its INVITE, so five calls are in progress at once, as under SIPp's load.
//! After the last call the clock runs on 40 s so every lingering transaction expires: the
//! count covers a call's whole life in the agent.
//!
//! What it leaves out: the sockets and the reactor (system calls, readiness), the driver's
//! socket-pair bookkeeping (the bench hands out ports itself) and the thread that prints the
//! events (the bench drains the events channel itself).
#![allow(missing_docs)]

use bytes::Bytes;
use parrot_media_core::handler::{
    Actions, MediaAction, MediaHandler, PlayOptions, StreamDirection,
};
use parrot_proto::{Action, Request, Transport, UasHandler};
use parrot_ua::{AgentConfig, CallEvent, Output, UaEvent, UserAgent};
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const WELCOME: &str = "builtin:welcome.wav";

/// `parrot serve`'s SIP handler when it neither proxies nor registers: lets the agent answer
/// every call (it holds nothing).
struct AnswerEveryCall;

impl UasHandler for AnswerEveryCall {
    fn handle_invite(&mut self, _req: &Request<'_>) -> Action {
        Action::NoReply
    }
}

/// `parrot serve`'s answering machine as far as a zero-length call goes: the welcome prompt
/// when the stream starts.
struct Prompt;

impl MediaHandler for Prompt {
    fn handle_stream_start(&mut self, _id: &str, _direction: StreamDirection) -> Actions {
        MediaAction::play_with(
            WELCOME,
            PlayOptions {
                repeat: 1,
                looped: false,
            },
        )
        .into()
    }
}

const SDP: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

/// Appends `n` in decimal.
fn num(v: &mut Vec<u8>, n: u64) {
    v.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// SIPp's uac INVITE (its built-in scenario, with its SDP) for the server at 127.0.0.1:5060.
/// The bench's own work (this, [`in_dialog`], [`dialog_of`]) is kept out of line so that its
/// cost can be read off callgrind's inclusive counts.
#[inline(never)]
fn invite(v: &mut Vec<u8>, n: u64) {
    v.clear();
    v.extend_from_slice(b"INVITE sip:service@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-4242-");
    num(v, n);
    v.extend_from_slice(b"-0\r\nFrom: sipp <sip:sipp@127.0.0.1:5061>;tag=4242SIPpTag00");
    num(v, n);
    v.extend_from_slice(b"\r\nTo: service <sip:service@127.0.0.1:5060>\r\nCall-ID: ");
    num(v, n);
    v.extend_from_slice(b"-4242@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: sip:sipp@127.0.0.1:5061\r\nMax-Forwards: 70\r\nSubject: Performance Test\r\nContent-Type: application/sdp\r\nContent-Length: ");
    num(v, SDP.len() as u64);
    v.extend_from_slice(b"\r\n\r\n");
    v.extend_from_slice(SDP.as_bytes());
}

/// SIPp's ACK or BYE in the dialog the 200 made (`tag`, `contact`).
#[inline(never)]
fn in_dialog(v: &mut Vec<u8>, n: u64, d: &Dialog, bye: bool) {
    let (tag, contact) = (d.tag(), d.contact());
    let (method, cseq, branch): (&[u8], &[u8], &[u8]) = if bye {
        (b"BYE ", b"2 BYE", b"-7")
    } else {
        (b"ACK ", b"1 ACK", b"-5")
    };
    v.clear();
    v.extend_from_slice(method);
    v.extend_from_slice(contact);
    v.extend_from_slice(b" SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-4242-");
    num(v, n);
    v.extend_from_slice(branch);
    v.extend_from_slice(b"\r\nFrom: sipp <sip:sipp@127.0.0.1:5061>;tag=4242SIPpTag00");
    num(v, n);
    v.extend_from_slice(b"\r\nTo: service <sip:service@127.0.0.1:5060>;tag=");
    v.extend_from_slice(tag);
    v.extend_from_slice(b"\r\nCall-ID: ");
    num(v, n);
    v.extend_from_slice(b"-4242@127.0.0.1\r\nCSeq: ");
    v.extend_from_slice(cseq);
    v.extend_from_slice(b"\r\nContact: sip:sipp@127.0.0.1:5061\r\nMax-Forwards: 70\r\nSubject: Performance Test\r\nContent-Length: 0\r\n\r\n");
}

/// Where `needle` starts in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The bytes after `name` up to the end of its line (`name` includes the line break before it).
fn line_after<'a>(msg: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let at = find(msg, name)? + name.len();
    let rest = &msg[at..];
    Some(&rest[..find(rest, b"\r\n")?])
}

/// A call's To tag and Contact URI, from its 200, kept without allocating (so that every
/// allocation counted is the agent's).
#[derive(Clone, Copy)]
struct Dialog {
    text: [u8; 128],
    tag_len: usize,
    len: usize,
}

impl Dialog {
    fn tag(&self) -> &[u8] {
        &self.text[..self.tag_len]
    }
    fn contact(&self) -> &[u8] {
        &self.text[self.tag_len..self.len]
    }
}

/// The call number and dialog of a 200 to an INVITE.
#[inline(never)]
fn dialog_of(ok: &[u8]) -> Option<(usize, Dialog)> {
    if !ok.starts_with(b"SIP/2.0 200") || find(ok, b"\r\nCSeq: 1 INVITE\r\n").is_none() {
        return None;
    }
    let to = line_after(ok, b"\r\nTo: ")?;
    let tag = &to[find(to, b";tag=")? + 5..];
    let tag = tag.split(|&b| b == b';').next()?;
    let contact = line_after(ok, b"\r\nContact: ")?;
    let contact = contact.strip_prefix(b"<").unwrap_or(contact);
    let contact = contact.split(|&b| b == b'>' || b == b';').next()?;
    let call_id = line_after(ok, b"\r\nCall-ID: ")?;
    let n = call_id
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0usize, |n, &d| n * 10 + usize::from(d - b'0'));
    let mut d = Dialog {
        text: [0; 128],
        tag_len: tag.len(),
        len: tag.len() + contact.len(),
    };
    d.text.get_mut(..d.tag_len)?.copy_from_slice(tag);
    d.text.get_mut(d.tag_len..d.len)?.copy_from_slice(contact);
    Some((n, d))
}

struct Bench {
    ua: UserAgent,
    buf: Vec<u8>,
    server: SocketAddr,
    peer: SocketAddr,
    /// Each call's To tag and Contact, by its number (1, 2, ...), from its 200.
    dialogs: Vec<Option<Dialog>>,
    /// The datagram being made.
    scratch: Vec<u8>,
    copies: parrot_ua::DatagramBuf,
    events: async_channel::Sender<CallEvent>,
    sent: usize,
}

impl Bench {
    /// Hands the datagram in `scratch` to the agent as the adapters do (copied out of the
    /// socket's buffer with a `DatagramBuf`).
    fn feed(&mut self, now: Instant) {
        self.run_timers(now);
        let data = self.copies.copy(&self.scratch);
        self.ua
            .handle_sip_datagram(now, self.server, self.peer, Transport::Udp, data);
        self.flush(now);
    }

    /// Runs every timer due by `now`, as the adapters' loops wake for them.
    fn run_timers(&mut self, now: Instant) {
        while let Some(t) = self.ua.poll_timeout().filter(|t| *t <= now) {
            self.ua.handle_timeout(t);
            self.flush(t);
        }
    }

    /// What `Driver::flush` does, with the sockets left out.
    fn flush(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(out) = self.ua.poll_transmit(now, &mut self.buf) {
                match out {
                    Output::Sip(t) => {
                        if let Some((n, d)) = dialog_of(&t.payload) {
                            if let Some(slot) = self.dialogs.get_mut(n) {
                                *slot = Some(d);
                            }
                        }
                        self.sent += t.payload.len();
                    }
                    Output::Media { len, .. } => self.sent += len,
                }
            }
            while let Some(e) = self.ua.poll_event() {
                progressed = true;
                match e {
                    UaEvent::Call(ev) => {
                        let _ = self.events.try_send(ev);
                    }
                    UaEvent::OpenMedia { call } => {
                        let port = 20_000 + (call % 4096) as u16 * 2;
                        self.ua.media_ready(now, call, port);
                    }
                    _ => {}
                }
            }
            if !progressed {
                break;
            }
        }
    }
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let server: SocketAddr = "127.0.0.1:5060".parse().expect("address");
    let peer: SocketAddr = "127.0.0.1:5061".parse().expect("address");
    let mut cfg = AgentConfig::new(server);
    cfg.builtin_files = vec![(
        WELCOME.to_owned(),
        Bytes::from_static(include_bytes!("../../assets/welcome.wav")),
    )];
    cfg.endpoint.trying_delay = Duration::from_millis(100);
    // As `Driver` sets it up when media has sending threads (`parrot serve` on 2 cores).
    cfg.media_threads = 2;
    cfg.media_lookahead = Some(Duration::from_millis(10));
    let uas: parrot_ua::UasFactory = Box::new(|| Box::new(AnswerEveryCall) as Box<dyn UasHandler>);
    let media: parrot_ua::MediaHandlerFactory =
        Box::new(|_call, _role| Box::new(Prompt) as Box<dyn MediaHandler + Send>);
    let ua = UserAgent::new(
        cfg,
        server,
        &[],
        Some(uas),
        Some(media),
        Box::new(parrot_proto::endpoint::SplitMix64(7)),
    );
    let (tx, rx) = async_channel::unbounded();
    let mut b = Bench {
        ua,
        buf: vec![0; 2048],
        server,
        peer,
        dialogs: vec![None; n as usize + 1],
        scratch: Vec::with_capacity(1024),
        copies: parrot_ua::DatagramBuf::new(),
        events: tx,
        sent: 0,
    };
    let t0 = Instant::now();
    let step = Duration::from_micros(100);
    // Call k (1, 2, ...) sends its INVITE at step k, its ACK at k + 2, its BYE at k + 4.
    let mut received = 0usize;
    for k in 1..=n + 4 {
        let now = t0 + step * k as u32;
        if k <= n {
            invite(&mut b.scratch, k);
            b.feed(now);
        }
        for (lag, bye) in [(2, false), (4, true)] {
            let Some(c) = k.checked_sub(lag).filter(|c| (1..=n).contains(c)) else {
                continue;
            };
            let Some(d) = b.dialogs.get(c as usize).copied().flatten() else {
                continue;
            };
            in_dialog(&mut b.scratch, c, &d, bye);
            b.feed(now);
        }
        // The application's thread reads the events.
        while let Ok(ev) = rx.try_recv() {
            received += black_box(&ev).call as usize;
        }
    }
    let end = t0 + step * (n as u32 + 4) + Duration::from_secs(40);
    b.run_timers(end);
    while let Ok(ev) = rx.try_recv() {
        received += black_box(&ev).call as usize;
    }
    let answered = b.dialogs.iter().filter(|d| d.is_some()).count() as u64;
    assert_eq!(answered, n, "every call answered");
    assert_eq!(b.ua.calls(), 0, "every call ended");
    black_box((b.sent, received));
}
