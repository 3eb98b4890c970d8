//! The Parrot `MediaHandler` behaviour, re-imagined as a synchronous Rust trait that returns
//! actions, exactly as the Elixir callbacks return tuples. Every callback has a default, so a
//! handler implements only what it cares about; the session calls them at the points of the
//! Parrot callback flow:
//!
//! `init` → `handle_session_start` → `handle_offer` → `handle_codec_negotiation` →
//! `handle_answer` → `handle_negotiation_complete` → `handle_stream_start` →
//! `handle_play_complete`* → `handle_stream_stop` → `handle_session_stop`.
//!
//! Because handlers are plain functions of their inputs, the session stays deterministic and a
//! whole call can be simulated.

use crate::codec::Codec;
pub use crate::sdp::offer_answer::CodecChoice;
use crate::wav::WavError;
use core::any::Any;

/// Which party a description comes from (Parrot `direction()` of `handle_offer`/`handle_answer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SdpOrigin {
    /// Received from the peer.
    Inbound,
    /// About to be sent by us.
    Outbound,
}

/// Which way media flows (Parrot `handle_stream_start` direction).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamDirection {
    /// We only receive.
    Inbound,
    /// We only send.
    Outbound,
    /// Both ways (or neither yet, for an `inactive` stream that may resume).
    Bidirectional,
}

/// A handler's verdict on an SDP offer or answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SdpDecision {
    /// Use this SDP instead (`{:ok, modified_sdp, state}`).
    Modified(String),
    /// Refuse it (`{:reject, reason, state}`); the signalling layer answers 488.
    Reject(String),
    /// Process it unchanged (`{:noreply, state}`).
    NoReply,
}

/// Options of `Play(path, opts)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlayOptions {
    /// How many times to play the file (at least once).
    pub repeat: u32,
    /// Play until `Stop`, ignoring `repeat`.
    pub looped: bool,
}

impl Default for PlayOptions {
    fn default() -> Self {
        PlayOptions {
            repeat: 1,
            looped: false,
        }
    }
}

/// Media actions returned from callbacks (Parrot `media_action()`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaAction {
    /// Queue a file for playback (`{:play, path}` / `{:play, path, opts}`).
    Play(String, PlayOptions),
    /// Stop playback and clear the queue.
    Stop,
    /// Pause playback (silence is sent; RTP timestamps keep running).
    Pause,
    /// Resume playback where it paused.
    Resume,
    /// Switch the sending codec to another negotiated one.
    SetCodec(Codec),
    /// Start keeping received audio for a recording at this path: the driver collects the
    /// [`crate::session::AudioFrame`]s of [`crate::session::MediaSession::poll_audio`] from
    /// [`crate::session::MediaEvent::RecordingStarted`] to `RecordingStopped` and writes them
    /// (the core does no IO). Needs a [`crate::session::RecordMode`] other than `Off`.
    StartRecording(String),
    /// Stop the current recording.
    StopRecording,
    /// Ask the signalling side to end the call (a BYE): the session reports
    /// [`crate::session::MediaEvent::HangupRequested`] and the driver hangs up.
    Hangup(String),
    /// Do nothing.
    NoReply,
}

impl MediaAction {
    /// `Play(path)` with default options.
    #[must_use]
    pub fn play(path: impl Into<String>) -> Self {
        MediaAction::Play(path.into(), PlayOptions::default())
    }
    /// `Play(path, opts)`.
    #[must_use]
    pub fn play_with(path: impl Into<String>, opts: PlayOptions) -> Self {
        MediaAction::Play(path.into(), opts)
    }
}

/// One action, an ordered list, or none (`{[media_action], state}` / `{:noreply, state}`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Actions {
    /// Nothing to do.
    #[default]
    None,
    /// A single action.
    One(MediaAction),
    /// Several actions, applied in order.
    Many(Vec<MediaAction>),
}

impl From<MediaAction> for Actions {
    fn from(a: MediaAction) -> Self {
        Actions::One(a)
    }
}

impl From<Vec<MediaAction>> for Actions {
    fn from(v: Vec<MediaAction>) -> Self {
        Actions::Many(v)
    }
}

impl Actions {
    /// The actions in order.
    #[must_use]
    pub fn into_vec(self) -> Vec<MediaAction> {
        match self {
            Actions::None => Vec::new(),
            Actions::One(a) => vec![a],
            Actions::Many(v) => v,
        }
    }
}

/// How a stream error is handled (`{:retry, _}`, `{:continue, _}`, `{:stop, reason, _}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorDecision {
    /// Retry the failed operation (for a file: request it again).
    Retry,
    /// Skip what failed and carry on.
    Continue,
    /// Stop the stream with this reason.
    Stop(String),
}

/// Errors reported to [`MediaHandler::handle_stream_error`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamError {
    /// The adapter could not provide a file.
    FileUnavailable {
        /// The requested path.
        path: String,
        /// The adapter's reason.
        reason: String,
    },
    /// The file's bytes are not playable WAV.
    BadFile {
        /// The path.
        path: String,
        /// What is wrong with it.
        error: WavError,
    },
    /// `SetCodec` named a codec that was not negotiated or has no implementation.
    CodecUnavailable(Codec),
}

/// Where a DTMF digit came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DtmfSource {
    /// RFC 4733 telephone-event packets.
    Rfc4733,
    /// Tones detected in the audio (Goertzel).
    InBand,
}

/// The Parrot `MediaHandler` behaviour. All methods have defaults.
pub trait MediaHandler {
    /// Initialise the handler (`init/1`); an error prevents the session from starting.
    fn init(&mut self, session_id: &str) -> Result<(), String> {
        let _ = session_id;
        Ok(())
    }

    /// A media session is being established (`handle_session_start/3`).
    fn handle_session_start(
        &mut self,
        session_id: &str,
        role: crate::session::Role,
    ) -> Result<(), String> {
        let _ = (session_id, role);
        Ok(())
    }

    /// An SDP offer, received or about to be sent (`handle_offer/3`).
    fn handle_offer(&mut self, sdp: &str, origin: SdpOrigin) -> SdpDecision {
        let _ = (sdp, origin);
        SdpDecision::NoReply
    }

    /// An SDP answer, received or about to be sent (`handle_answer/3`).
    fn handle_answer(&mut self, sdp: &str, origin: SdpOrigin) -> SdpDecision {
        let _ = (sdp, origin);
        SdpDecision::NoReply
    }

    /// Pick codecs (`handle_codec_negotiation/3`): one codec, an ordered list, or none.
    /// The default keeps the offered codecs we support, in our preference order.
    fn handle_codec_negotiation(&mut self, offered: &[Codec], supported: &[Codec]) -> CodecChoice {
        CodecChoice::default_for(offered, supported)
    }

    /// Negotiation finished (`handle_negotiation_complete/4`); an error aborts the session.
    fn handle_negotiation_complete(
        &mut self,
        local_sdp: &str,
        remote_sdp: &str,
        codec: Codec,
    ) -> Result<(), String> {
        let _ = (local_sdp, remote_sdp, codec);
        Ok(())
    }

    /// Media starts flowing (`handle_stream_start/3`).
    fn handle_stream_start(&mut self, session_id: &str, direction: StreamDirection) -> Actions {
        let _ = (session_id, direction);
        Actions::None
    }

    /// A file finished playing, all repetitions included (`handle_play_complete/2`).
    fn handle_play_complete(&mut self, path: &str) -> Actions {
        let _ = path;
        Actions::None
    }

    /// The stream stopped (`handle_stream_stop/3`).
    fn handle_stream_stop(&mut self, session_id: &str, reason: &str) {
        let _ = (session_id, reason);
    }

    /// Something failed (`handle_stream_error/3`). The default carries on.
    fn handle_stream_error(&mut self, session_id: &str, error: &StreamError) -> ErrorDecision {
        let _ = (session_id, error);
        ErrorDecision::Continue
    }

    /// The session ends (`handle_session_stop/3`).
    fn handle_session_stop(&mut self, session_id: &str, reason: &str) {
        let _ = (session_id, reason);
    }

    /// An application-defined request (`handle_media_request/2`).
    fn handle_media_request(&mut self, request: &dyn Any) -> Result<Actions, String> {
        let _ = request;
        Ok(Actions::None)
    }

    /// A DTMF digit was received, once per key press (a Parrot-Rust extension; Parrot reported
    /// DTMF through the SIP handler).
    fn handle_dtmf(&mut self, digit: char, source: DtmfSource) -> Actions {
        let _ = (digit, source);
        Actions::None
    }
}

/// A handler that takes every default.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultHandler;

impl MediaHandler for DefaultHandler {}

impl<T: MediaHandler + ?Sized> MediaHandler for Box<T> {
    fn init(&mut self, session_id: &str) -> Result<(), String> {
        (**self).init(session_id)
    }
    fn handle_session_start(
        &mut self,
        session_id: &str,
        role: crate::session::Role,
    ) -> Result<(), String> {
        (**self).handle_session_start(session_id, role)
    }
    fn handle_offer(&mut self, sdp: &str, origin: SdpOrigin) -> SdpDecision {
        (**self).handle_offer(sdp, origin)
    }
    fn handle_answer(&mut self, sdp: &str, origin: SdpOrigin) -> SdpDecision {
        (**self).handle_answer(sdp, origin)
    }
    fn handle_codec_negotiation(&mut self, offered: &[Codec], supported: &[Codec]) -> CodecChoice {
        (**self).handle_codec_negotiation(offered, supported)
    }
    fn handle_negotiation_complete(
        &mut self,
        local_sdp: &str,
        remote_sdp: &str,
        codec: Codec,
    ) -> Result<(), String> {
        (**self).handle_negotiation_complete(local_sdp, remote_sdp, codec)
    }
    fn handle_stream_start(&mut self, session_id: &str, direction: StreamDirection) -> Actions {
        (**self).handle_stream_start(session_id, direction)
    }
    fn handle_play_complete(&mut self, path: &str) -> Actions {
        (**self).handle_play_complete(path)
    }
    fn handle_stream_stop(&mut self, session_id: &str, reason: &str) {
        (**self).handle_stream_stop(session_id, reason);
    }
    fn handle_stream_error(&mut self, session_id: &str, error: &StreamError) -> ErrorDecision {
        (**self).handle_stream_error(session_id, error)
    }
    fn handle_session_stop(&mut self, session_id: &str, reason: &str) {
        (**self).handle_session_stop(session_id, reason);
    }
    fn handle_media_request(&mut self, request: &dyn Any) -> Result<Actions, String> {
        (**self).handle_media_request(request)
    }
    fn handle_dtmf(&mut self, digit: char, source: DtmfSource) -> Actions {
        (**self).handle_dtmf(digit, source)
    }
}
