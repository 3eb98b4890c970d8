//! Sans-IO media core of Parrot: SDP offer/answer, RTP/RTCP, G.711, pacing, jitter buffer, DTMF,
//! WAV playback and recording frames.
//!
//! `parrot-media-core` does for media what `parrot-proto` does for signalling. It is a set of
//! deterministic state machines that take `(now, bytes)` and return packets, events and the next
//! timeout. **It performs no IO, reads no clock, sleeps never, spawns nothing, and draws
//! randomness only from the RNG handed to it.** Time is a [`std::time::Instant`] passed in by the
//! caller. It does not depend on `parrot-proto`: a [`session::MediaSession`] works with any
//! signalling that can carry SDP strings.
//!
//! # Driving a session (the drain rule)
//!
//! An adapter (tokio, smol, mio, a simulation) owns the sockets, the timer and the files:
//!
//! 1. Feed inputs with the `handle_*` methods: [`handle_rtp`](session::MediaSession::handle_rtp),
//!    [`handle_rtcp`](session::MediaSession::handle_rtcp),
//!    [`handle_timeout`](session::MediaSession::handle_timeout),
//!    [`handle_file`](session::MediaSession::handle_file) (bytes for a
//!    [`FileRequest`](session::MediaEvent::FileRequest)),
//!    [`handle_command`](session::MediaSession::handle_command),
//!    [`send_dtmf`](session::MediaSession::send_dtmf), and the offer/answer mutators.
//! 2. **After every `handle_*` or mutator call, drain
//!    [`poll_transmit`](session::MediaSession::poll_transmit),
//!    [`poll_event`](session::MediaSession::poll_event) and
//!    [`poll_audio`](session::MediaSession::poll_audio) until each returns `None`.**
//! 3. Sleep until [`poll_timeout`](session::MediaSession::poll_timeout) or the next datagram,
//!    whichever comes first; then call `handle_timeout(now)` and drain again. Early or spurious
//!    `handle_timeout` calls are harmless.
//!
//! ```
//! use parrot_media_core::handler::DefaultHandler;
//! use parrot_media_core::session::{MediaConfig, MediaSession, Role};
//! use std::time::{Duration, Instant};
//!
//! # struct Rng(u64);
//! # impl rand_core::RngCore for Rng {
//! #     fn next_u32(&mut self) -> u32 { self.next_u64() as u32 }
//! #     fn next_u64(&mut self) -> u64 { self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1); self.0 }
//! #     fn fill_bytes(&mut self, d: &mut [u8]) { rand_core::impls::fill_bytes_via_next(self, d) }
//! # }
//! let start = Instant::now(); // in an adapter: the runtime's clock, read at the edge
//! let config = MediaConfig::new("192.0.2.1".parse().unwrap(), 40000);
//! let mut call = MediaSession::new("call-1", Role::Uac, config, DefaultHandler, &mut Rng(7), start).unwrap();
//! let offer = call.create_offer(start).unwrap(); // put it in an INVITE
//! # let answer = {
//! #   let mut peer = MediaSession::new("peer", Role::Uas, MediaConfig::new("192.0.2.2".parse().unwrap(), 50000), DefaultHandler, &mut Rng(8), start).unwrap();
//! #   peer.process_offer(start, &offer).unwrap()
//! # };
//! call.process_answer(start, &answer).unwrap(); // from the 200 OK
//! let mut buf = [0u8; 1500];
//! let mut now = start;
//! for _ in 0..3 {
//!     call.handle_timeout(now);
//!     while let Some(t) = call.poll_transmit(now, &mut buf) {
//!         let _datagram = &buf[..t.len]; // socket.send_to(datagram, t.destination)
//!     }
//!     while let Some(_event) = call.poll_event() {}
//!     now = call.poll_timeout().unwrap(); // sleep until then
//! }
//! assert!(call.packets_sent() >= 2);
//! ```
//!
//! # Modules
//!
//! - [`sdp`]: SDP parse/serialise (RFC 8866) and offer/answer (RFC 3264).
//! - [`rtp`]: RTP packets (RFC 3550 §5), RTCP (§6), receiver statistics (§A.1, §A.3, §A.8),
//!   the drift-free pacer and the jitter buffer; rtcp-mux demultiplexing (RFC 5761).
//! - [`codec`]: codec identifiers (RFC 3551) and the [`codec::AudioCodec`] trait; G.711
//!   bit-exact against ITU-T G.191.
//! - [`dtmf`]: RFC 4733 telephone-events and Goertzel in-band detection.
//! - [`wav`], [`resample`]: playback files from bytes, converted to the codec's clock.
//! - [`handler`]: the Parrot `MediaHandler` behaviour; [`session`]: `MediaSession`.
#![forbid(unsafe_code)]

pub mod codec;
pub mod dtmf;
pub mod handler;
pub mod resample;
pub mod rtp;
pub mod sdp;
pub mod session;
mod text;
pub mod wav;
