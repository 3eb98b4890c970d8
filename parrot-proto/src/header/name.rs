//! Header names, compact forms and case-insensitive matching (RFC 3261 §7.3.1, §7.3.3, §20).

macro_rules! header_names {
    ($( $(#[$doc:meta])* $variant:ident => $canonical:literal $(, $compact:literal)? ;)*) => {
        /// A SIP header name. Known names compare by variant; matching is case-insensitive and
        /// the compact forms of RFC 3261 §7.3.3 and the extension RFCs (o r b u x y a j d) map
        /// to the same variant as their long forms.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum HeaderName {
            $( $(#[$doc])* $variant, )*
            /// Any other (extension) header; its spelling is kept in the message.
            Other,
        }

        impl HeaderName {
            /// The canonical spelling, as Parrot writes it (`"Other"` for extension headers).
            #[inline]
            pub fn as_str(self) -> &'static str {
                match self {
                    $( HeaderName::$variant => $canonical, )*
                    HeaderName::Other => "Other",
                }
            }

            /// The compact form (§7.3.3), if the header has one.
            pub fn compact(self) -> Option<char> {
                match self {
                    $( $( HeaderName::$variant => Some($compact), )? )*
                    _ => None,
                }
            }

            /// Classifies a header name, case-insensitively, long or compact form.
            pub fn from_name(name: &[u8]) -> HeaderName {
                if name.len() == 1 {
                    let c = name[0].to_ascii_lowercase() as char;
                    $( $( if c == $compact { return HeaderName::$variant; } )? )*
                    return HeaderName::Other;
                }
                let first = name[0] | 0x20;
                for c in Self::candidates(name.len()) {
                    let n = c.lower.as_bytes();
                    if n[0] == first && eq_folded(name, n) {
                        return c.kind;
                    }
                }
                HeaderName::Other
            }
        }
    };
}

header_names! {
    /// `Accept` (§20.1).
    Accept => "Accept";
    /// `Accept-Contact` (RFC 3841), compact `a`.
    AcceptContact => "Accept-Contact", 'a';
    /// `Accept-Encoding` (§20.2).
    AcceptEncoding => "Accept-Encoding";
    /// `Accept-Language` (§20.3).
    AcceptLanguage => "Accept-Language";
    /// `Alert-Info` (§20.4).
    AlertInfo => "Alert-Info";
    /// `Allow` (§20.5).
    Allow => "Allow";
    /// `Allow-Events` (RFC 6665), compact `u`.
    AllowEvents => "Allow-Events", 'u';
    /// `Authentication-Info` (§20.6, RFC 7615).
    AuthenticationInfo => "Authentication-Info";
    /// `Authorization` (§20.7).
    Authorization => "Authorization";
    /// `Call-ID` (§20.8), compact `i`.
    CallId => "Call-ID", 'i';
    /// `Call-Info` (§20.9).
    CallInfo => "Call-Info";
    /// `Contact` (§20.10), compact `m`.
    Contact => "Contact", 'm';
    /// `Content-Disposition` (§20.11).
    ContentDisposition => "Content-Disposition";
    /// `Content-Encoding` (§20.12), compact `e`.
    ContentEncoding => "Content-Encoding", 'e';
    /// `Content-Language` (§20.13).
    ContentLanguage => "Content-Language";
    /// `Content-Length` (§20.14), compact `l`.
    ContentLength => "Content-Length", 'l';
    /// `Content-Type` (§20.15), compact `c`.
    ContentType => "Content-Type", 'c';
    /// `CSeq` (§20.16).
    CSeq => "CSeq";
    /// `Date` (§20.17).
    Date => "Date";
    /// `Error-Info` (§20.18).
    ErrorInfo => "Error-Info";
    /// `Event` (RFC 6665), compact `o`.
    Event => "Event", 'o';
    /// `Expires` (§20.19).
    Expires => "Expires";
    /// `From` (§20.20), compact `f`.
    From => "From", 'f';
    /// `Identity` (RFC 8224), compact `y`.
    Identity => "Identity", 'y';
    /// `In-Reply-To` (§20.21).
    InReplyTo => "In-Reply-To";
    /// `Max-Forwards` (§20.22).
    MaxForwards => "Max-Forwards";
    /// `Min-Expires` (§20.23).
    MinExpires => "Min-Expires";
    /// `MIME-Version` (§20.24).
    MimeVersion => "MIME-Version";
    /// `Organization` (§20.25).
    Organization => "Organization";
    /// `Priority` (§20.26).
    Priority => "Priority";
    /// `Proxy-Authenticate` (§20.27).
    ProxyAuthenticate => "Proxy-Authenticate";
    /// `Proxy-Authorization` (§20.28).
    ProxyAuthorization => "Proxy-Authorization";
    /// `Proxy-Require` (§20.29).
    ProxyRequire => "Proxy-Require";
    /// `RAck` (RFC 3262).
    RAck => "RAck";
    /// `Record-Route` (§20.30).
    RecordRoute => "Record-Route";
    /// `Refer-To` (RFC 3515), compact `r`.
    ReferTo => "Refer-To", 'r';
    /// `Referred-By` (RFC 3892), compact `b`.
    ReferredBy => "Referred-By", 'b';
    /// `Reject-Contact` (RFC 3841), compact `j`.
    RejectContact => "Reject-Contact", 'j';
    /// `Reply-To` (§20.31).
    ReplyTo => "Reply-To";
    /// `Request-Disposition` (RFC 3841), compact `d`.
    RequestDisposition => "Request-Disposition", 'd';
    /// `Require` (§20.32).
    Require => "Require";
    /// `Retry-After` (§20.33).
    RetryAfter => "Retry-After";
    /// `Route` (§20.34).
    Route => "Route";
    /// `RSeq` (RFC 3262).
    RSeq => "RSeq";
    /// `Server` (§20.35).
    Server => "Server";
    /// `Session-Expires` (RFC 4028), compact `x`.
    SessionExpires => "Session-Expires", 'x';
    /// `Subject` (§20.36), compact `s`.
    Subject => "Subject", 's';
    /// `Subscription-State` (RFC 6665).
    SubscriptionState => "Subscription-State";
    /// `Supported` (§20.37), compact `k`.
    Supported => "Supported", 'k';
    /// `Timestamp` (§20.38).
    Timestamp => "Timestamp";
    /// `To` (§20.39), compact `t`.
    To => "To", 't';
    /// `Unsupported` (§20.40).
    Unsupported => "Unsupported";
    /// `User-Agent` (§20.41).
    UserAgent => "User-Agent";
    /// `Via` (§20.42), compact `v`.
    Via => "Via", 'v';
    /// `Warning` (§20.43).
    Warning => "Warning";
    /// `WWW-Authenticate` (§20.44).
    WwwAuthenticate => "WWW-Authenticate";
}

/// A known name in lower case and as three little-endian words (zero past its end), for
/// [`HeaderName::from_token_name`].
struct Known {
    lower: &'static str,
    words: [u64; 3],
    /// `0x20` at the letters of `lower`: OR-ed into a name, it folds the case of letters only.
    letters: [u64; 3],
    kind: HeaderName,
}

const fn k(lower: &'static str, kind: HeaderName) -> Known {
    let b = lower.as_bytes();
    let mut words = [0u64; 3];
    let mut letters = [0u64; 3];
    let mut i = 0;
    while i < b.len() {
        words[i / 8] |= (b[i] as u64) << (8 * (i % 8));
        if b[i].is_ascii_lowercase() {
            letters[i / 8] |= 0x20 << (8 * (i % 8));
        }
        i += 1;
    }
    Known {
        lower,
        words,
        letters,
        kind,
    }
}

impl HeaderName {
    /// Classifies the token of `len` bytes that starts `text` (a header name the parser has
    /// checked is a token, followed by the rest of the message). With 24 bytes to read it
    /// compares three folded words per candidate instead of byte loops; the names and the
    /// folding are those of [`HeaderName::from_name`].
    pub(crate) fn from_token_name(text: &[u8], len: usize) -> HeaderName {
        let Some(chunk) = text.get(..24) else {
            return Self::from_name(&text[..len.min(text.len())]);
        };
        if !(2..=24).contains(&len) {
            return Self::from_name(&chunk[..len.min(24)]);
        }
        let word = |i: usize| -> u64 {
            let valid = len.saturating_sub(8 * i).min(8);
            if valid == 0 {
                return 0;
            }
            let mut a = [0u8; 8];
            a.copy_from_slice(&chunk[8 * i..8 * i + 8]);
            let mask = u64::MAX >> (64 - 8 * valid);
            (u64::from_le_bytes(a) | 0x2020_2020_2020_2020) & mask
        };
        let w = [word(0), word(1), word(2)];
        for c in Self::candidates(len) {
            if c.words == w {
                return c.kind;
            }
        }
        HeaderName::Other
    }
}

/// Compares a header name with a lower-case known name. Names are tokens, and in a token only
/// the letters change under `| 0x20`: the known names hold letters, digits and `-`, which no
/// other token byte folds onto, so eight bytes compare at a time.
fn eq_folded(name: &[u8], lower: &[u8]) -> bool {
    if name.len() != lower.len() {
        return false;
    }
    let mut a = name.chunks_exact(8);
    let mut b = lower.chunks_exact(8);
    for (x, y) in (&mut a).zip(&mut b) {
        let mut wx = [0u8; 8];
        let mut wy = [0u8; 8];
        wx.copy_from_slice(x);
        wy.copy_from_slice(y);
        if u64::from_le_bytes(wx) | 0x2020_2020_2020_2020 != u64::from_le_bytes(wy) {
            return false;
        }
    }
    a.remainder()
        .iter()
        .zip(b.remainder())
        .all(|(x, y)| x | 0x20 == *y)
}

impl HeaderName {
    /// The header name that starts a line when it is a known long name, in any case, followed
    /// at once by `:`: its kind and length. `None` for anything else (a compact form, another
    /// name, white space before the colon, a name of 24 bytes or more), which the parser's
    /// token scan and [`HeaderName::from_token_name`] then decide; whatever this finds, they
    /// find alike.
    ///
    /// The colon is found in three words at once, and a candidate matches when the name equals
    /// it with only its letters' case folded: every byte of the name is then a token byte.
    pub(crate) fn known_at_line_start(text: &[u8]) -> Option<(HeaderName, usize)> {
        const LO: u64 = 0x0101_0101_0101_0101;
        const HI: u64 = 0x8080_8080_8080_8080;
        // A short text (the last line of a message, `Content-Length: 0`) is padded with
        // zeros, which are not colons: the name and its colon are found as in a longer text.
        let mut padded = [0u8; 24];
        let words: &[u8] = match text.get(..24) {
            Some(w) => w,
            None => {
                padded[..text.len()].copy_from_slice(text);
                &padded
            }
        };
        let Some(
            &[a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7, c0, c1, c2, c3, c4, c5, c6, c7],
        ) = words.get(..24)
        else {
            return None;
        };
        let w0 = u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]);
        let w1 = u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]);
        let w2 = u64::from_le_bytes([c0, c1, c2, c3, c4, c5, c6, c7]);
        // The lowest set bit of the zero-byte test is exact: the first colon.
        let colon_bits = |x: u64| {
            let y = x ^ (LO * u64::from(b':'));
            y.wrapping_sub(LO) & !y & HI
        };
        let tail = |valid: usize| u64::MAX >> (64 - 8 * valid);
        let (z0, z1, z2) = (colon_bits(w0), colon_bits(w1), colon_bits(w2));
        let (len, m) = if z0 != 0 {
            let l = (z0.trailing_zeros() / 8) as usize;
            if l < 2 {
                return None;
            }
            (l, [tail(l), 0, 0])
        } else if z1 != 0 {
            let l = (z1.trailing_zeros() / 8) as usize;
            (8 + l, [u64::MAX, if l == 0 { 0 } else { tail(l) }, 0])
        } else if z2 != 0 {
            let l = (z2.trailing_zeros() / 8) as usize;
            (
                16 + l,
                [u64::MAX, u64::MAX, if l == 0 { 0 } else { tail(l) }],
            )
        } else {
            return None;
        };
        for c in Self::candidates(len) {
            if (w0 | c.letters[0]) & m[0] == c.words[0]
                && (w1 | c.letters[1]) & m[1] == c.words[1]
                && (w2 | c.letters[2]) & m[2] == c.words[2]
            {
                return Some((c.kind, len));
            }
        }
        None
    }

    /// The known names of a given length, in lower case: a handful at most, so classifying a
    /// name is a length dispatch and one or two comparisons.
    fn candidates(len: usize) -> &'static [Known] {
        match len {
            2 => {
                const C: &[Known] = &[k("to", HeaderName::To)];
                C
            }
            3 => {
                const C: &[Known] = &[k("via", HeaderName::Via)];
                C
            }
            4 => {
                const C: &[Known] = &[
                    k("cseq", HeaderName::CSeq),
                    k("date", HeaderName::Date),
                    k("from", HeaderName::From),
                    k("rack", HeaderName::RAck),
                    k("rseq", HeaderName::RSeq),
                ];
                C
            }
            5 => {
                const C: &[Known] = &[
                    k("allow", HeaderName::Allow),
                    k("event", HeaderName::Event),
                    k("route", HeaderName::Route),
                ];
                C
            }
            6 => {
                const C: &[Known] = &[
                    k("accept", HeaderName::Accept),
                    k("server", HeaderName::Server),
                ];
                C
            }
            7 => {
                const C: &[Known] = &[
                    k("call-id", HeaderName::CallId),
                    k("contact", HeaderName::Contact),
                    k("expires", HeaderName::Expires),
                    k("require", HeaderName::Require),
                    k("subject", HeaderName::Subject),
                    k("warning", HeaderName::Warning),
                ];
                C
            }
            8 => {
                const C: &[Known] = &[
                    k("identity", HeaderName::Identity),
                    k("priority", HeaderName::Priority),
                    k("refer-to", HeaderName::ReferTo),
                    k("reply-to", HeaderName::ReplyTo),
                ];
                C
            }
            9 => {
                const C: &[Known] = &[
                    k("call-info", HeaderName::CallInfo),
                    k("supported", HeaderName::Supported),
                    k("timestamp", HeaderName::Timestamp),
                ];
                C
            }
            10 => {
                const C: &[Known] = &[
                    k("alert-info", HeaderName::AlertInfo),
                    k("error-info", HeaderName::ErrorInfo),
                    k("user-agent", HeaderName::UserAgent),
                ];
                C
            }
            11 => {
                const C: &[Known] = &[
                    k("in-reply-to", HeaderName::InReplyTo),
                    k("min-expires", HeaderName::MinExpires),
                    k("referred-by", HeaderName::ReferredBy),
                    k("retry-after", HeaderName::RetryAfter),
                    k("unsupported", HeaderName::Unsupported),
                ];
                C
            }
            12 => {
                const C: &[Known] = &[
                    k("allow-events", HeaderName::AllowEvents),
                    k("content-type", HeaderName::ContentType),
                    k("max-forwards", HeaderName::MaxForwards),
                    k("mime-version", HeaderName::MimeVersion),
                    k("organization", HeaderName::Organization),
                    k("record-route", HeaderName::RecordRoute),
                ];
                C
            }
            13 => {
                const C: &[Known] = &[
                    k("authorization", HeaderName::Authorization),
                    k("proxy-require", HeaderName::ProxyRequire),
                ];
                C
            }
            14 => {
                const C: &[Known] = &[
                    k("accept-contact", HeaderName::AcceptContact),
                    k("content-length", HeaderName::ContentLength),
                    k("reject-contact", HeaderName::RejectContact),
                ];
                C
            }
            15 => {
                const C: &[Known] = &[
                    k("accept-encoding", HeaderName::AcceptEncoding),
                    k("accept-language", HeaderName::AcceptLanguage),
                    k("session-expires", HeaderName::SessionExpires),
                ];
                C
            }
            16 => {
                const C: &[Known] = &[
                    k("content-encoding", HeaderName::ContentEncoding),
                    k("content-language", HeaderName::ContentLanguage),
                    k("www-authenticate", HeaderName::WwwAuthenticate),
                ];
                C
            }
            18 => {
                const C: &[Known] = &[
                    k("proxy-authenticate", HeaderName::ProxyAuthenticate),
                    k("subscription-state", HeaderName::SubscriptionState),
                ];
                C
            }
            19 => {
                const C: &[Known] = &[
                    k("authentication-info", HeaderName::AuthenticationInfo),
                    k("content-disposition", HeaderName::ContentDisposition),
                    k("proxy-authorization", HeaderName::ProxyAuthorization),
                    k("request-disposition", HeaderName::RequestDisposition),
                ];
                C
            }
            _ => &[],
        }
    }

    /// Whether several values of this header may be joined in one line with commas
    /// (§7.3.1). Headers whose grammar contains bare commas (Date, the auth headers,
    /// User-Agent, Call-ID, ...) are not lists.
    pub fn is_list(self) -> bool {
        use HeaderName::*;
        matches!(
            self,
            Accept
                | AcceptContact
                | AcceptEncoding
                | AcceptLanguage
                | AlertInfo
                | Allow
                | AllowEvents
                | CallInfo
                | Contact
                | ContentEncoding
                | ContentLanguage
                | ErrorInfo
                | InReplyTo
                | ProxyRequire
                | RecordRoute
                | RejectContact
                | RequestDisposition
                | Require
                | Route
                | Supported
                | Unsupported
                | Via
                | Warning
        )
    }

    /// Whether the header may appear at most once (§7.3.1, table 2 of §20): a second,
    /// different value is an error ([`crate::ErrorKind::DuplicateHeader`]).
    pub fn is_single(self) -> bool {
        use HeaderName::*;
        matches!(
            self,
            CallId
                | ContentLength
                | ContentType
                | CSeq
                | From
                | To
                | MaxForwards
                | Expires
                | MinExpires
                | Event
                | ReferTo
                | SubscriptionState
                | RetryAfter
                | Date
        )
    }
}

impl std::fmt::Display for HeaderName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::HeaderName;
    use proptest::prelude::*;

    /// What the parser's token scan and word classification give for a line: the kind, the
    /// name's length and whether a colon follows at once.
    fn scanned(line: &[u8]) -> (HeaderName, usize, bool) {
        let mut n = 0;
        while n < line.len() && crate::text::is_token_byte(line[n]) {
            n += 1;
        }
        (
            HeaderName::from_token_name(line, n),
            n,
            line.get(n) == Some(&b':'),
        )
    }

    proptest! {
        #[test]
        fn known_name_shortcut_agrees_with_the_token_scan(
            name in prop_oneof![
                proptest::sample::select(vec![
                    "Via", "VIA", "from", "To", "Call-ID", "call-id", "CSeq", "Contact",
                    "Max-Forwards", "Content-Length", "content-TYPE", "Record-Route", "v", "t",
                    "X-Via", "Vias", "Call-IDs", "WWW-Authenticate", "Proxy-Authorization",
                ]).prop_map(str::to_owned),
                "[!-~]{0,26}",
                "[a-zA-Z\\-\\r\\n\\x0d\\x10-\\x19]{1,14}",
            ],
            sep in proptest::sample::select(vec![":", " :", ":x", "\t:", ""]),
            tail in "[ -~]{0,24}",
        ) {
            let line = format!("{name}{sep}{tail}").into_bytes();
            if let Some((kind, len)) = HeaderName::known_at_line_start(&line) {
                prop_assert_eq!(scanned(&line), (kind, len, true));
            }
        }
    }

    #[test]
    fn known_names_followed_by_a_colon_take_the_shortcut() {
        let tail = ": SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK";
        for (n, k) in [
            ("Via", HeaderName::Via),
            ("cseq", HeaderName::CSeq),
            ("CALL-ID", HeaderName::CallId),
            ("Content-Length", HeaderName::ContentLength),
        ] {
            let line = format!("{n}{tail}");
            assert_eq!(
                HeaderName::known_at_line_start(line.as_bytes()),
                Some((k, n.len()))
            );
        }
        // A line shorter than the three words, as the last of a message.
        assert_eq!(
            HeaderName::known_at_line_start(b"Content-Length: 0\r\n\r\n"),
            Some((HeaderName::ContentLength, 14))
        );
        assert_eq!(
            HeaderName::known_at_line_start(b"To:"),
            Some((HeaderName::To, 2))
        );
        assert_eq!(HeaderName::known_at_line_start(b"Via"), None);
        for n in ["v", "Via ", "X-Custom", "Call\rID"] {
            let line = format!("{n}{tail}");
            assert_eq!(
                HeaderName::known_at_line_start(line.as_bytes()),
                None,
                "{n}"
            );
        }
    }

    /// The parser's word-at-a-time classification agrees with `from_name` on every known name
    /// (long forms, any case), near misses and other tokens, with and without trailing text.
    #[test]
    fn token_name_classification_matches_from_name() {
        let mut names: Vec<String> = Vec::new();
        for len in 0..=24 {
            for c in HeaderName::candidates(len) {
                let l = c.lower.to_owned();
                names.push(l.to_ascii_uppercase());
                names.push(
                    l.char_indices()
                        .map(|(i, ch)| {
                            if i % 2 == 0 {
                                ch.to_ascii_uppercase()
                            } else {
                                ch
                            }
                        })
                        .collect(),
                );
                let mut near = l.clone().into_bytes();
                let last = near.len() - 1;
                near[last] = b'x';
                names.push(String::from_utf8(near).unwrap_or_default());
                names.push(format!("{l}_"));
                names.push(l);
            }
        }
        names.extend(
            [
                "X-Custom",
                "v",
                "To",
                "Max-Forwards",
                "a",
                "AB",
                "Content-Length-Extra-Long-X",
            ]
            .map(String::from),
        );
        for n in &names {
            let want = HeaderName::from_name(n.as_bytes());
            for tail in [
                "",
                ": value\r\n",
                ": a much longer value that runs past 24 bytes\r\n",
            ] {
                let text = format!("{n}{tail}");
                assert_eq!(
                    HeaderName::from_token_name(text.as_bytes(), n.len()),
                    want,
                    "{n:?} with tail {tail:?}"
                );
            }
        }
    }
}
