//! The media handlers of the CLI: the `serve` answering machine (prompt, DTMF menu, voicemail)
//! and the `call` player/recorder.

use parrot_media_core::handler::{
    Actions, DtmfSource, MediaAction, MediaHandler, PlayOptions, StreamDirection,
};
use std::path::Path;
use std::sync::Arc;

/// Names of the prompts built into the binary (see `assets/README.md`).
pub const WELCOME: &str = "builtin:welcome.wav";
pub const RECORD: &str = "builtin:record.wav";
pub const BEEP: &str = "builtin:beep.wav";
pub const GOODBYE: &str = "builtin:goodbye.wav";

/// The built-in prompts, for [`parrot_tokio::AgentConfig::builtin_files`].
pub fn builtin_files() -> Vec<(String, bytes::Bytes)> {
    vec![
        (
            WELCOME.into(),
            bytes::Bytes::from_static(include_bytes!("../../assets/welcome.wav")),
        ),
        (
            RECORD.into(),
            bytes::Bytes::from_static(include_bytes!("../../assets/record.wav")),
        ),
        (
            BEEP.into(),
            bytes::Bytes::from_static(include_bytes!("../../assets/beep.wav")),
        ),
        (
            GOODBYE.into(),
            bytes::Bytes::from_static(include_bytes!("../../assets/goodbye.wav")),
        ),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Menu,
    RecordPrompt,
    Recording,
    Leaving,
}

/// `parrot serve`: play the prompt (or `--play FILE` in a loop), then a DTMF menu:
/// 1 replays the prompt, 2 records a message after the tone (# ends it), # says goodbye and
/// hangs up.
pub struct AnsweringMachine {
    /// `--play`'s file (played in a loop), else the built-in welcome.
    play: Option<Arc<str>>,
    /// Where a message is recorded, with the call's number (the path is written only when a
    /// caller records one: most calls never do).
    record_dir: Arc<Path>,
    call: u64,
    state: State,
}

impl AnsweringMachine {
    /// A handler for call `call`, recording messages into `record_dir`.
    /// Shared with every other call's handler: making one allocates nothing but itself.
    pub fn new(play: Option<Arc<str>>, record_dir: Arc<Path>, call: u64) -> Self {
        AnsweringMachine {
            play,
            record_dir,
            call,
            state: State::Menu,
        }
    }

    fn prompt(&self) -> MediaAction {
        MediaAction::play_with(
            self.play.as_deref().unwrap_or(WELCOME),
            PlayOptions {
                repeat: 1,
                looped: self.play.is_some(),
            },
        )
    }

    /// The file a message is recorded in.
    fn recording(&self) -> String {
        self.record_dir
            .join(format!("message-{}.wav", self.call))
            .display()
            .to_string()
    }
}

impl MediaHandler for AnsweringMachine {
    fn handle_stream_start(&mut self, _id: &str, _direction: StreamDirection) -> Actions {
        self.prompt().into()
    }

    fn handle_dtmf(&mut self, digit: char, _source: DtmfSource) -> Actions {
        match (self.state, digit) {
            (State::Menu, '1') => vec![MediaAction::Stop, self.prompt()].into(),
            (State::Menu, '2') => {
                self.state = State::RecordPrompt;
                vec![
                    MediaAction::Stop,
                    MediaAction::play(RECORD),
                    MediaAction::play(BEEP),
                ]
                .into()
            }
            (State::Recording, '#') => {
                self.state = State::Leaving;
                vec![MediaAction::StopRecording, MediaAction::play(GOODBYE)].into()
            }
            (State::Menu | State::RecordPrompt, '#') => {
                self.state = State::Leaving;
                vec![MediaAction::Stop, MediaAction::play(GOODBYE)].into()
            }
            _ => Actions::None,
        }
    }

    fn handle_play_complete(&mut self, path: &str) -> Actions {
        match self.state {
            State::RecordPrompt if path == BEEP => {
                self.state = State::Recording;
                MediaAction::StartRecording(self.recording()).into()
            }
            State::Leaving if path == GOODBYE => {
                MediaAction::Hangup("caller pressed #".into()).into()
            }
            _ => Actions::None,
        }
    }
}

/// `parrot call`: play a file and record what comes back.
pub struct Caller {
    play: Option<String>,
    record: Option<String>,
}

impl Caller {
    /// Plays `play` (once) and records into `record` from the start of the stream.
    pub fn new(play: Option<String>, record: Option<String>) -> Self {
        Caller { play, record }
    }
}

impl MediaHandler for Caller {
    fn handle_stream_start(&mut self, _id: &str, _direction: StreamDirection) -> Actions {
        let mut v = Vec::new();
        if let Some(r) = &self.record {
            v.push(MediaAction::StartRecording(r.clone()));
        }
        if let Some(p) = &self.play {
            v.push(MediaAction::play(p.clone()));
        }
        v.into()
    }
}
