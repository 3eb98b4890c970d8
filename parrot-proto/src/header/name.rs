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
                let mut padded = [0u8; 24];
                match padded.get_mut(..name.len()) {
                    Some(p) if !name.is_empty() => p.copy_from_slice(name),
                    _ => return HeaderName::Other,
                }
                Self::lookup(words(&padded), name.len()).unwrap_or(HeaderName::Other)
            }
        }

        /// Every spelling of a known name, long (as written canonically) and compact, with its
        /// kind: what [`BY_HASH`] is built from.
        const SPELLINGS: &[(&[u8], HeaderName)] = &[
            $( ($canonical.as_bytes(), HeaderName::$variant), $( (&[ascii($compact)], HeaderName::$variant), )? )*
        ];
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

/// A compact form's letter as its byte.
const fn ascii(c: char) -> u8 {
    assert!(c.is_ascii(), "compact forms are ASCII letters");
    c as u8
}

/// A known spelling in lower case as three little-endian words (zero past its end), with the
/// letters marked: a name matches when, its letters' case folded, it equals the words.
struct Spelling {
    words: [u64; 3],
    /// `0x20` at the letters of the spelling: OR-ed into a name, it folds the case of letters
    /// only, so any other byte must be exactly the spelling's.
    letters: [u64; 3],
    len: usize,
    kind: HeaderName,
}

const NO_SPELLING: Spelling = Spelling {
    words: [0; 3],
    letters: [0; 3],
    len: usize::MAX,
    kind: HeaderName::Other,
};

/// `0x20` in every byte: folds the case of letters (and leaves `-` and digits as they are).
const FOLD: u64 = 0x2020_2020_2020_2020;

/// The multiplier of [`slot`]: with it the known spellings, long and compact, fall in distinct
/// slots of 256 (the build of [`BY_HASH`] fails at compile time otherwise). Found by trying odd
/// multipliers from a xorshift sequence until no two spellings shared a slot (about one in
/// 70,000 does for 75 spellings, a second's search); a new name that collides needs another
/// one, found the same way.
const MULTIPLIER: u64 = 0xeec9_ef89_9359_2a6f;

/// The slot of a name from its first two words, case folded and cut at the name's end.
#[inline(always)]
const fn slot(f0: u64, f1: u64) -> usize {
    ((f0 ^ f1.rotate_left(32)).wrapping_mul(MULTIPLIER) >> 56) as usize
}

/// The low `n` bytes of a word (all of them for `n` ≥ 8).
#[inline(always)]
const fn low_bytes(n: usize) -> u64 {
    if n == 0 {
        0
    } else if n >= 8 {
        u64::MAX
    } else {
        u64::MAX >> (64 - 8 * n)
    }
}

/// The masks of the first `len` bytes in three words.
#[inline(always)]
const fn masks(len: usize) -> [u64; 3] {
    [
        low_bytes(len),
        low_bytes(len.saturating_sub(8)),
        low_bytes(len.saturating_sub(16)),
    ]
}

/// [`masks`] of every length a known name can have.
static MASKS: [[u64; 3]; 25] = {
    let mut t = [[0; 3]; 25];
    let mut len = 0;
    while len < 25 {
        t[len] = masks(len);
        len += 1;
    }
    t
};

/// The first 24 bytes of `b` as little-endian words.
#[inline(always)]
fn words(b: &[u8; 24]) -> [u64; 3] {
    let w = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[8 * i..8 * i + 8]);
        u64::from_le_bytes(a)
    };
    [w(0), w(1), w(2)]
}

/// The known spellings by [`slot`]: an index into the second table, 0 for none (its entry
/// matches no name).
static BY_HASH: ([u8; 256], [Spelling; 128]) = by_hash();

const fn by_hash() -> ([u8; 256], [Spelling; 128]) {
    assert!(
        SPELLINGS.len() < 128,
        "the spellings and the empty entry fit 128 entries"
    );
    let mut slots = [0u8; 256];
    let mut entries = [NO_SPELLING; 128];
    let mut i = 0;
    while i < SPELLINGS.len() {
        let (name, kind) = SPELLINGS[i];
        assert!(
            !name.is_empty() && name.len() <= 24,
            "a known name is 1-24 bytes"
        );
        let mut words = [0u64; 3];
        let mut letters = [0u64; 3];
        let mut j = 0;
        while j < name.len() {
            let c = name[j].to_ascii_lowercase();
            words[j / 8] |= (c as u64) << (8 * (j % 8));
            if c.is_ascii_lowercase() {
                letters[j / 8] |= 0x20 << (8 * (j % 8));
            }
            j += 1;
        }
        let m = masks(name.len());
        let at = slot((words[0] | FOLD) & m[0], (words[1] | FOLD) & m[1]);
        assert!(
            slots[at] == 0,
            "two known header names share a slot: change MULTIPLIER"
        );
        slots[at] = (i + 1) as u8;
        entries[i + 1] = Spelling {
            words,
            letters,
            len: name.len(),
            kind,
        };
        i += 1;
    }
    (slots, entries)
}

impl HeaderName {
    /// The known name of `len` bytes (1-24) at the start of `w`, the first 24 bytes of a text
    /// as words, in any case: one table probe and one comparison. `None` for any other name.
    #[inline(always)]
    fn lookup(w: [u64; 3], len: usize) -> Option<HeaderName> {
        let m = *MASKS.get(len)?;
        let (slots, entries) = &BY_HASH;
        let e =
            &entries[usize::from(slots[slot((w[0] | FOLD) & m[0], (w[1] | FOLD) & m[1])] & 127)];
        let same = |i: usize| (w[i] | e.letters[i]) & m[i] == e.words[i];
        // The words past the name's end are masked out: only those it reaches are compared.
        (e.len == len && same(0) && (len <= 8 || (same(1) && (len <= 16 || same(2)))))
            .then_some(e.kind)
    }

    /// Classifies the token of `len` bytes that starts `text` (a header name the parser has
    /// checked is a token, followed by the rest of the message), as [`HeaderName::from_name`]
    /// does, reading its words from `text` when it holds 24 bytes.
    pub(crate) fn from_token_name(text: &[u8], len: usize) -> HeaderName {
        match text.first_chunk::<24>() {
            Some(chunk) if (1..=24).contains(&len) => {
                Self::lookup(words(chunk), len).unwrap_or(HeaderName::Other)
            }
            _ => Self::from_name(&text[..len.min(text.len())]),
        }
    }

    /// The header name that starts a line when it is a known name (long or compact), in any
    /// case, followed at once by `:`: its kind and length. `None` for anything else (another
    /// name, white space before the colon, a name of 24 bytes or more), which the parser's
    /// token scan and [`HeaderName::from_token_name`] then decide; whatever this finds, they
    /// find alike.
    ///
    /// The colon is found in the first words at once, and a name matches when it equals a
    /// known spelling with only its letters' case folded: every byte of the name is then a
    /// token byte.
    #[inline]
    pub(crate) fn known_at_line_start(text: &[u8]) -> Option<(HeaderName, usize)> {
        const LO: u64 = 0x0101_0101_0101_0101;
        const HI: u64 = 0x8080_8080_8080_8080;
        // A short text (the last line of a message, `l: 0`) is padded with zeros, which are
        // not colons: the name and its colon are found as in a longer text.
        let w = match text.first_chunk::<24>() {
            Some(chunk) => words(chunk),
            None => {
                let mut b = [0u8; 24];
                b[..text.len()].copy_from_slice(text);
                words(&b)
            }
        };
        // The lowest set bit of the zero-byte test is exact: the first colon.
        let colon_bits = |x: u64| {
            let y = x ^ (LO * u64::from(b':'));
            y.wrapping_sub(LO) & !y & HI
        };
        let (z0, z1) = (colon_bits(w[0]), colon_bits(w[1]));
        let len = if z0 != 0 {
            (z0.trailing_zeros() / 8) as usize
        } else if z1 != 0 {
            8 + (z1.trailing_zeros() / 8) as usize
        } else {
            match colon_bits(w[2]) {
                0 => return None,
                z2 => 16 + (z2.trailing_zeros() / 8) as usize,
            }
        };
        if len == 0 {
            return None;
        }
        Self::lookup(w, len).map(|kind| (kind, len))
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
            ("v", HeaderName::Via),
            ("I", HeaderName::CallId),
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
        // A line that starts with white space is a fold, never a name.
        for n in ["Via ", "X-Custom", "Call\rID", "q", " Via", "\tTo", " v"] {
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
        for (spelling, _) in super::SPELLINGS {
            let l = String::from_utf8_lossy(spelling).to_ascii_lowercase();
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

    /// What classification means, spelled out: the known spelling equal to the name but for
    /// the case of its letters.
    fn by_search(name: &[u8]) -> HeaderName {
        super::SPELLINGS
            .iter()
            .find(|(s, _)| s.eq_ignore_ascii_case(name))
            .map_or(HeaderName::Other, |&(_, k)| k)
    }

    proptest! {
        #[test]
        fn hashed_classification_agrees_with_a_search_of_the_spellings(
            name in prop_oneof![
                proptest::sample::select(
                    super::SPELLINGS.iter().map(|(s, _)| String::from_utf8_lossy(s).into_owned())
                        .collect::<Vec<_>>()
                ),
                "[a-zA-Z\\-]{1,20}",
                "[!-~]{0,26}",
                "[a-zA-Z\\-\\r\\n\\x0d\\x00\\x7f\\x80-\\xff]{1,20}",
            ],
            flip in proptest::collection::vec(any::<bool>(), 26),
        ) {
            let name: Vec<u8> = name
                .bytes()
                .zip(flip.iter().cycle())
                .map(|(c, &f)| if f { c.to_ascii_uppercase() } else { c })
                .collect();
            let want = by_search(&name);
            prop_assert_eq!(HeaderName::from_name(&name), want);
            let mut text = name.clone();
            text.extend_from_slice(b": value that runs on past the name\r\n");
            if !name.is_empty() {
                prop_assert_eq!(HeaderName::from_token_name(&text, name.len()), want);
            }
            // The line's name ends at its first colon.
            if !name.contains(&b':') {
                match HeaderName::known_at_line_start(&text) {
                    Some((kind, len)) => {
                        prop_assert_eq!(len, name.len());
                        prop_assert_eq!(kind, want);
                    }
                    None => prop_assert!(
                        want == HeaderName::Other,
                        "{:?} is {:?} but was not recognised", String::from_utf8_lossy(&name), want
                    ),
                }
            }
        }
    }
}
