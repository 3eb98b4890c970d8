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
}

impl StoredSdp {
    /// Holds `text`, which the caller has checked parses.
    pub(crate) fn text(text: String) -> Self {
        StoredSdp::Text {
            text,
            parsed: OnceLock::new(),
        }
    }

    /// The description (`None` only if the text did not parse after all).
    pub(crate) fn get(&self) -> Option<&SessionDescription> {
        match self {
            StoredSdp::Text { text, parsed } => parsed
                .get_or_init(|| SessionDescription::parse(text).ok().map(Box::new))
                .as_deref(),
            StoredSdp::Parsed(sd) => Some(sd),
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
        assert_eq!(s.get(), Some(&want));
        assert_eq!(s.get(), Some(&want));
        assert_eq!(StoredSdp::Parsed(Box::new(want.clone())).get(), Some(&want));
    }

    #[test]
    fn text_that_does_not_parse_gives_none() {
        assert_eq!(StoredSdp::text("v=1\r\n".into()).get(), None);
    }
}
