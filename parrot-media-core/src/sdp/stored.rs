//! A session's current local or remote description, kept as the text that went over the wire
//! and parsed into a [`SessionDescription`] only if someone asks for it: answering a call needs
//! the text, not the model (RFC 3264 §6 negotiation runs on a borrowed parse).

use super::SessionDescription;
use std::sync::OnceLock;

/// A description held as text (parsed on first access) or already parsed.
#[derive(Debug)]
pub(crate) enum StoredSdp {
    /// Text known to parse, and its parse once asked for.
    Text {
        /// The description as sent or received.
        text: String,
        /// Filled on the first [`StoredSdp::get`].
        parsed: OnceLock<Option<Box<SessionDescription>>>,
    },
    /// A description built or parsed already (boxed: a session holds two of these, and a
    /// description is large next to a `String`).
    Parsed(Box<SessionDescription>),
    /// Text known to parse, held at `start..end` of a buffer the session owns (the first offer
    /// and its answer share one allocation), and its parse once asked for.
    Shared {
        /// Where the text starts in the session's buffer.
        start: usize,
        /// Where it ends.
        end: usize,
        /// Filled on the first [`StoredSdp::get`].
        parsed: OnceLock<Option<Box<SessionDescription>>>,
    },
}

impl StoredSdp {
    /// Holds `text`, which the caller has checked parses.
    pub(crate) fn text(text: String) -> Self {
        StoredSdp::Text {
            text,
            parsed: OnceLock::new(),
        }
    }

    /// Holds `shared[start..end]`, which the caller has checked parses.
    pub(crate) fn shared(start: usize, end: usize) -> Self {
        StoredSdp::Shared {
            start,
            end,
            parsed: OnceLock::new(),
        }
    }

    /// The description (`None` only if the text did not parse after all). `shared` is the
    /// session's buffer a [`StoredSdp::Shared`] points into.
    pub(crate) fn get<'a>(&'a self, shared: &str) -> Option<&'a SessionDescription> {
        match self {
            StoredSdp::Text { text, parsed } => parsed
                .get_or_init(|| SessionDescription::parse(text).ok().map(Box::new))
                .as_deref(),
            StoredSdp::Parsed(sd) => Some(sd),
            StoredSdp::Shared { start, end, parsed } => parsed
                .get_or_init(|| {
                    shared
                        .get(*start..*end)
                        .and_then(|t| SessionDescription::parse(t).ok())
                        .map(Box::new)
                })
                .as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str =
        "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

    #[test]
    fn text_parses_on_first_access_to_what_parse_gives() {
        let s = StoredSdp::text(SDP.to_owned());
        let want = SessionDescription::parse(SDP).unwrap();
        assert_eq!(s.get(""), Some(&want));
        assert_eq!(s.get(""), Some(&want));
        assert_eq!(
            StoredSdp::Parsed(Box::new(want.clone())).get(""),
            Some(&want)
        );
        let buf = format!("x{SDP}y");
        let shared = StoredSdp::shared(1, 1 + SDP.len());
        assert_eq!(shared.get(&buf), Some(&want));
        assert_eq!(shared.get(&buf), Some(&want));
    }

    #[test]
    fn text_that_does_not_parse_gives_none() {
        assert_eq!(StoredSdp::text("v=1\r\n".into()).get(""), None);
        assert_eq!(StoredSdp::shared(0, 5).get("v=1\r\n"), None);
    }
}
