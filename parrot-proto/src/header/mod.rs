//! Header names and typed header views (RFC 3261 §7.3, §20, and the extension RFCs).
//!
//! Every view borrows from the message it was read from and is parsed when it is asked for.

pub mod auth;
mod name;
pub mod name_addr;
pub mod params;
pub mod via;

pub use auth::{AuthParams, Challenge, Credentials};
pub use name::HeaderName;
pub use name_addr::{ContactValue, NameAddr, NameAddrError};
pub use params::{Param, Params};
pub use via::{Transport, Via, BRANCH_MAGIC_COOKIE};

use crate::method::Method;
use crate::text::{is_token, parse_u32, trim_lws};

/// The CSeq header (§20.16): a sequence number and a method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// The sequence number (32 bits, §8.1.1.5).
    pub seq: u32,
    /// The method, which must equal the request's (§8.1.1.5).
    pub method: Method,
}

impl CSeq {
    /// Parses `1*DIGIT LWS Method`; numbers over 2^32-1 are refused (RFC 4475 §3.1.2.4).
    pub fn parse(s: &str) -> Option<CSeq> {
        // The common shape `DIGITS SP METHOD` in one pass; anything else (white space around
        // or doubled, overflow) the general rule below decides.
        let b = s.as_bytes();
        let mut i = 0;
        let mut seq: u32 = 0;
        let mut fits = true;
        while i < b.len() && b[i].is_ascii_digit() {
            match seq
                .checked_mul(10)
                .and_then(|v| v.checked_add(u32::from(b[i] - b'0')))
            {
                Some(v) => seq = v,
                None => fits = false,
            }
            i += 1;
        }
        if fits && i > 0 && b.get(i) == Some(&b' ') {
            let m = s.get(i + 1..)?;
            if is_token(m) {
                return Some(CSeq {
                    seq,
                    method: Method::from_token(m),
                });
            }
        }
        Self::parse_general(s)
    }

    /// [`CSeq::parse`] with linear white space anywhere the grammar allows it.
    fn parse_general(s: &str) -> Option<CSeq> {
        let s = trim_lws(s);
        let end = crate::text::find_lws(s)?;
        let seq = parse_u32(&s[..end])?;
        let m = trim_lws(&s[end..]);
        if !is_token(m) {
            return None;
        }
        Some(CSeq {
            seq,
            method: Method::from_token(m),
        })
    }
}

/// A media type: Content-Type (§20.15) or one Accept value (§20.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaType<'a> {
    /// The type, e.g. `application`.
    pub kind: &'a str,
    /// The subtype, e.g. `sdp`.
    pub subtype: &'a str,
    /// Parameters such as `boundary` or `charset`.
    pub params: Params<'a>,
}

impl<'a> MediaType<'a> {
    /// Parses `type "/" subtype *( SEMI m-parameter )`.
    pub fn parse(s: &'a str) -> Option<MediaType<'a>> {
        if let Some(m) = Self::parse_plain(s) {
            return Some(m);
        }
        Self::parse_general(s)
    }

    /// One pass over the common shape `token "/" token` (no parameters, no white space):
    /// `None` for anything else, which [`MediaType::parse_general`] then decides.
    fn parse_plain(s: &'a str) -> Option<MediaType<'a>> {
        let b = s.as_bytes();
        let mut slash = None;
        for (i, &c) in b.iter().enumerate() {
            if c == b'/' && slash.is_none() {
                slash = Some(i);
            } else if !crate::text::is_token_byte(c) {
                return None;
            }
        }
        let k = slash.filter(|&k| k > 0 && k + 1 < b.len())?;
        Some(MediaType {
            kind: s.get(..k)?,
            subtype: s.get(k + 1..)?,
            params: Params::new(""),
        })
    }

    /// [`MediaType::parse`] part by part, white space and parameters allowed.
    fn parse_general(s: &'a str) -> Option<MediaType<'a>> {
        let s = trim_lws(s);
        let (main, params) = crate::text::split_byte(s, b';').unwrap_or((s, ""));
        let (kind, subtype) = crate::text::split_byte(main, b'/')?;
        let (kind, subtype) = (trim_lws(kind), trim_lws(subtype));
        if !is_token(kind) || !is_token(subtype) {
            return None;
        }
        let params = Params::new(params);
        params.is_valid().then_some(MediaType {
            kind,
            subtype,
            params,
        })
    }

    /// Whether this is `type/subtype`, case-insensitively.
    pub fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind) && self.subtype.eq_ignore_ascii_case(subtype)
    }

    /// Whether this is the media type written `text` (`type/subtype`), case-insensitively:
    /// what [`MediaType::is`] says for `text` split at its first `/`, without splitting it.
    pub(crate) fn is_written(&self, text: &str) -> bool {
        let (t, k) = (text.as_bytes(), self.kind.len());
        // Written alike is the common case: one comparison of bytes before folding case.
        let same = |a: &[u8], b: &[u8]| a == b || a.eq_ignore_ascii_case(b);
        t.len() == k + 1 + self.subtype.len()
            && t.get(k) == Some(&b'/')
            && same(&t[..k], self.kind.as_bytes())
            && same(&t[k + 1..], self.subtype.as_bytes())
    }
}

/// A header made of a token and parameters: Event (RFC 6665 §8.2.1), Subscription-State
/// (RFC 6665 §8.2.3), Content-Disposition (§20.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenParams<'a> {
    /// The token: the event package, the subscription state, the disposition type.
    pub value: &'a str,
    /// The parameters.
    pub params: Params<'a>,
}

impl<'a> TokenParams<'a> {
    /// Parses `token *( SEMI generic-param )`.
    pub fn parse(s: &'a str) -> Option<TokenParams<'a>> {
        let s = trim_lws(s);
        let (v, p) = crate::text::split_byte(s, b';').unwrap_or((s, ""));
        let v = trim_lws(v);
        let params = Params::new(p);
        (is_token(v) && params.is_valid()).then_some(TokenParams { value: v, params })
    }

    /// The Event `id` parameter (RFC 6665 §8.2.1).
    pub fn id(&self) -> Option<&'a str> {
        self.params.value("id")
    }

    /// The Subscription-State `expires` parameter (RFC 6665 §8.2.3).
    pub fn expires(&self) -> Option<u32> {
        self.params.value("expires").and_then(parse_u32)
    }

    /// The Subscription-State `reason` parameter.
    pub fn reason(&self) -> Option<&'a str> {
        self.params.value("reason")
    }

    /// The Subscription-State `retry-after` parameter.
    pub fn retry_after(&self) -> Option<u32> {
        self.params.value("retry-after").and_then(parse_u32)
    }
}

/// The Retry-After header (§20.33): seconds, an optional comment and parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter<'a> {
    /// Delta-seconds.
    pub seconds: u32,
    /// The comment, without its parentheses.
    pub comment: Option<&'a str>,
    /// Parameters (`duration`).
    pub params: Params<'a>,
}

impl<'a> RetryAfter<'a> {
    /// Parses `delta-seconds [ comment ] *( SEMI retry-param )`.
    pub fn parse(s: &'a str) -> Option<RetryAfter<'a>> {
        let s = trim_lws(s);
        let digits = s.bytes().take_while(|b| b.is_ascii_digit()).count();
        let seconds = parse_u32(&s[..digits])?;
        let mut rest = trim_lws(&s[digits..]);
        let mut comment = None;
        if let Some(r) = rest.strip_prefix('(') {
            let close = r.rfind(')')?;
            comment = Some(&r[..close]);
            rest = trim_lws(&r[close + 1..]);
        }
        let params = match rest {
            "" => Params::default(),
            r => Params::new(r.strip_prefix(';')?),
        };
        params.is_valid().then_some(RetryAfter {
            seconds,
            comment,
            params,
        })
    }

    /// The `duration` parameter.
    pub fn duration(&self) -> Option<u32> {
        self.params.value("duration").and_then(parse_u32)
    }
}

/// The Date header (§20.17): an RFC 1123 date, always in GMT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipDate {
    /// Year.
    pub year: u16,
    /// Month, 1-12.
    pub month: u8,
    /// Day of the month, 1-31.
    pub day: u8,
    /// Hour, 0-23.
    pub hour: u8,
    /// Minute, 0-59.
    pub minute: u8,
    /// Second, 0-60.
    pub second: u8,
}

impl SipDate {
    /// Parses `wkday "," SP date1 SP time SP "GMT"`; any zone but GMT is refused
    /// (RFC 4475 §3.1.2.12).
    pub fn parse(s: &str) -> Option<SipDate> {
        const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let s = trim_lws(s);
        let (wkday, rest) = s.split_once(", ")?;
        if !DAYS.contains(&wkday) {
            return None;
        }
        let mut parts = rest.split(' ');
        let day = parts.next()?;
        let month = parts.next()?;
        let year = parts.next()?;
        let time = parts.next()?;
        if parts.next()? != "GMT" || parts.next().is_some() {
            return None;
        }
        let two = |v: &str| (v.len() == 2).then(|| parse_u32(v)).flatten();
        let month = MONTHS.iter().position(|m| *m == month)? as u8 + 1;
        let mut t = time.split(':');
        let (h, m, sec) = (two(t.next()?)?, two(t.next()?)?, two(t.next()?)?);
        if t.next().is_some() || year.len() != 4 {
            return None;
        }
        let (day, year) = (two(day)?, parse_u32(year)?);
        if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
            return None;
        }
        Some(SipDate {
            year: year as u16,
            month,
            day: day as u8,
            hour: h as u8,
            minute: m as u8,
            second: sec as u8,
        })
    }
}

/// The Timestamp header (§20.38): a time value and an optional delay, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp<'a> {
    /// The timestamp, `1*DIGIT [ "." *DIGIT ]`.
    pub value: &'a str,
    /// The delay, when a UAS added one.
    pub delay: Option<&'a str>,
}

impl<'a> Timestamp<'a> {
    /// Parses `1*(DIGIT) [ "." *(DIGIT) ] [ LWS delay ]`.
    pub fn parse(s: &'a str) -> Option<Timestamp<'a>> {
        let s = trim_lws(s);
        let (value, delay) = match crate::text::find_lws(s) {
            Some(i) => (&s[..i], Some(trim_lws(&s[i..]))),
            None => (s, None),
        };
        let num = |v: &str| {
            let (i, f) = crate::text::split_byte(v, b'.').unwrap_or((v, ""));
            !i.is_empty()
                && i.bytes().all(|b| b.is_ascii_digit())
                && f.bytes().all(|b| b.is_ascii_digit())
        };
        (num(value) && delay.is_none_or(num)).then_some(Timestamp { value, delay })
    }

    /// The value as seconds.
    pub fn seconds(&self) -> f64 {
        self.value.parse().unwrap_or(0.0)
    }
}

#[cfg(test)]
mod media_type_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The one-pass reading of `type/subtype` is the general one.
        #[test]
        fn media_type_shortcut_agrees_with_general_rule(s in "[ \t]?[a-zA-Z0-9/+.;=\" -]{0,16}[ \t]?") {
            if let Some(plain) = MediaType::parse_plain(&s) {
                prop_assert_eq!(Some(plain), MediaType::parse_general(&s));
            }
            prop_assert_eq!(MediaType::parse(&s), MediaType::parse_general(&s));
        }
    }

    #[test]
    fn media_type_reads_type_subtype_and_parameters() {
        let m = MediaType::parse("application/sdp").unwrap();
        assert_eq!(
            (m.kind, m.subtype, m.params.as_str()),
            ("application", "sdp", "")
        );
        assert!(MediaType::parse_plain("application/sdp").is_some());
        let m = MediaType::parse("text/plain;charset=utf-8").unwrap();
        assert_eq!((m.kind, m.subtype), ("text", "plain"));
        assert!(MediaType::parse_plain("text/plain;charset=utf-8").is_none());
        for bad in ["/sdp", "application/", "application", "a/b/c", "a b/c", ""] {
            assert!(MediaType::parse_plain(bad).is_none(), "{bad}");
        }
        assert_eq!(MediaType::parse("a/b/c"), None);
    }

    proptest! {
        /// Matching a written media type is splitting it at its first `/` and comparing.
        #[test]
        fn written_media_type_matches_as_split(ct in "[a-zA-Z]{1,5}/[a-zA-Z+]{1,5}", text in "[a-zA-Z/+]{0,12}") {
            let m = MediaType::parse(&ct).unwrap();
            let split = text.split_once('/').is_some_and(|(k, s)| m.is(k, s));
            prop_assert_eq!(m.is_written(&text), split);
            let same = ct.to_ascii_uppercase();
            prop_assert!(m.is_written(&same));
        }
    }
}

#[cfg(test)]
mod cseq_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The one-pass reading of `DIGITS SP METHOD` is the general one.
        #[test]
        fn cseq_shortcut_agrees_with_general_rule(s in "[ \t]?[0-9]{0,11}[ \t]{0,2}[A-Za-z!%]{0,7}[ \t]?") {
            prop_assert_eq!(CSeq::parse(&s), CSeq::parse_general(&s));
        }
    }

    #[test]
    fn cseq_reads_number_and_method() {
        let c = CSeq::parse("4711 INVITE").unwrap();
        assert_eq!((c.seq, c.method), (4711, Method::Invite));
        assert_eq!(CSeq::parse("4294967296 INVITE"), None);
        assert_eq!(CSeq::parse(" 1  BYE ").map(|c| c.seq), Some(1));
        assert_eq!(CSeq::parse("1 INV ITE"), None);
    }
}
