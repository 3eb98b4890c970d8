//! `name-addr` / `addr-spec` values: From, To, Contact, Route, Record-Route, Reply-To,
//! Refer-To, Referred-By (RFC 3261 §20.10, §20.20, §20.30, §20.34, §20.39, §25.1).

use super::params::Params;
use crate::text::{is_token_byte, trim_lws, unquote};
use crate::uri::{Uri, UriError};
use std::borrow::Cow;

/// A `name-addr` (`"Display" <uri>;params`) or an `addr-spec` (`uri;params`).
///
/// In the `addr-spec` form everything after the first `;` is a header parameter, not a URI
/// parameter (§20.10; RFC 4475 §3.3.12 `cparam01`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    display: Option<&'a str>,
    uri: Uri<'a>,
    angle: bool,
    params: Params<'a>,
}

/// Why a name-addr did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameAddrError {
    /// An unterminated quoted display name (RFC 4475 `quotbal`).
    UnterminatedQuote,
    /// An unquoted display name with characters other than tokens and spaces (RFC 4475 `baddn`).
    BadDisplayName,
    /// `<` without `>`, or text between `>` and the parameters.
    BadBrackets,
    /// The URI did not parse (RFC 4475 `badaspec`, `regbadct`).
    Uri(UriError),
    /// A malformed header parameter.
    BadParam,
}

impl<'a> NameAddr<'a> {
    /// Parses one value. Parameters are split but not checked against their grammar here (the
    /// hot path reads one or two of them); [`NameAddr::is_valid`] and
    /// [`crate::Message::validate`] check them.
    pub fn parse(s: &'a str) -> Result<NameAddr<'a>, NameAddrError> {
        let s = trim_lws(s);
        if let Some((uri, params)) = Self::bracketed(s) {
            return Ok(NameAddr {
                display: None,
                uri: Uri::parse(uri).map_err(NameAddrError::Uri)?,
                angle: true,
                params: Params::new(params),
            });
        }
        Self::parse_general(s)
    }

    /// Whether `s` is a name-addr or addr-spec ([`NameAddr::parse`] is `Ok`), with the URI's
    /// text ([`NameAddr::uri_str`]) and the header parameters ([`NameAddr::params`]): what
    /// validation reads. The URI is checked without being made ([`Uri::check`]), in every
    /// shape: the value is split by the parser's own rule ([`NameAddr::split`]).
    pub(crate) fn check(s: &'a str) -> Result<(&'a str, Params<'a>), NameAddrError> {
        let s = trim_lws(s);
        if let Some((uri, params)) = Self::bracketed(s) {
            Uri::check(uri).map_err(NameAddrError::Uri)?;
            return Ok((uri, Params::new(params)));
        }
        // The other shapes as `parse_general` splits them, the URI checked without being made
        // (its text is the slice the parser would take as `uri_str`).
        let (_, uri, _, params) = Self::split(s, |u| Uri::check(u).map(|_| u))?;
        Ok((uri, Params::new(params)))
    }

    /// The common shape `<uri>` or `<uri>;params`, no display name (one search for '>'): the
    /// URI's text and the parameters' text; `None` for every other shape, which
    /// [`NameAddr::split`] takes.
    #[inline(always)]
    fn bracketed(s: &'a str) -> Option<(&'a str, &'a str)> {
        if s.as_bytes().first() != Some(&b'<') {
            return None;
        }
        let gt = crate::text::find_byte(b'>', s.as_bytes())?;
        let after = s.get(gt + 1..).unwrap_or_default();
        let params = match after.as_bytes().first() {
            None => "",
            Some(b';') => after.get(1..)?,
            Some(_) => return None,
        };
        Some((s.get(1..gt).unwrap_or_default(), params))
    }

    /// [`NameAddr::parse`] for every shape: quoted or token display names, white space
    /// around the brackets, `addr-spec`.
    fn parse_general(s: &'a str) -> Result<NameAddr<'a>, NameAddrError> {
        let (display, uri, angle, params) = Self::split(s, Uri::parse)?;
        Ok(NameAddr {
            display,
            uri,
            angle,
            params: Params::new(params),
        })
    }

    /// The parts of a value of any shape (see [`NameAddr::parse_general`]): the display name,
    /// the URI as `read_uri` reads its text, whether it was in angle brackets, and the header
    /// parameters' text. Generic over the URI reader so that the parser ([`Uri::parse`]) and
    /// the check ([`Uri::check`]) split by the same rule.
    #[inline(always)]
    #[allow(clippy::type_complexity)]
    fn split<U>(
        s: &'a str,
        read_uri: impl FnOnce(&'a str) -> Result<U, UriError>,
    ) -> Result<(Option<&'a str>, U, bool, &'a str), NameAddrError> {
        let (display, rest) = if s.starts_with('"') {
            let end = closing_quote(s).ok_or(NameAddrError::UnterminatedQuote)?;
            let rest = trim_lws(&s[end + 1..]);
            if !rest.starts_with('<') {
                return Err(NameAddrError::BadBrackets);
            }
            (Some(&s[..=end]), rest)
        } else if let Some(lt) = crate::text::find_byte(b'<', s.as_bytes()) {
            let d = trim_lws(&s[..lt]);
            if !d.is_empty()
                && !d
                    .bytes()
                    .all(|b| is_token_byte(b) || matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            {
                return Err(NameAddrError::BadDisplayName);
            }
            ((!d.is_empty()).then_some(d), &s[lt..])
        } else {
            // addr-spec: the URI ends at the first ';' (header params follow). A URI with
            // '?', ',' or ';' of its own must be in angle brackets.
            let (uri, params) = match crate::text::split_byte(s, b';') {
                Some((u, p)) => (trim_lws(u), p),
                None => (s, ""),
            };
            if crate::text::find_byte(b'?', uri.as_bytes()).is_some() {
                return Err(NameAddrError::Uri(UriError::BadHeaders));
            }
            let uri = read_uri(uri).map_err(NameAddrError::Uri)?;
            return Ok((None, uri, false, params));
        };
        let inner = &rest[1..];
        let gt =
            crate::text::find_byte(b'>', inner.as_bytes()).ok_or(NameAddrError::BadBrackets)?;
        let uri = read_uri(&inner[..gt]).map_err(NameAddrError::Uri)?;
        let after = trim_lws(&inner[gt + 1..]);
        let params = if after.is_empty() {
            ""
        } else {
            after.strip_prefix(';').ok_or(NameAddrError::BadBrackets)?
        };
        Ok((display, uri, true, params))
    }

    /// Whether the header parameters follow the `generic-param` grammar (RFC 4475 `badinv01`).
    pub fn is_valid(&self) -> bool {
        self.params.is_valid()
    }

    /// The display name as written (quotes kept for a quoted one).
    pub fn display_name_raw(&self) -> Option<&'a str> {
        self.display
    }

    /// The display name with quotes and escapes resolved; UTF-8 is kept (§25.1 `TEXT-UTF8`).
    pub fn display_name(&self) -> Option<Cow<'a, str>> {
        let d = self.display?;
        if d.starts_with('"') {
            unquote(d)
        } else {
            Some(Cow::Borrowed(d))
        }
    }

    /// The URI text.
    pub fn uri_str(&self) -> &'a str {
        self.uri.as_str()
    }

    /// The parsed URI (checked when the value was parsed).
    pub fn uri(&self) -> Uri<'a> {
        self.uri
    }

    /// Whether the URI was in angle brackets.
    pub fn is_name_addr(&self) -> bool {
        self.angle
    }

    /// The header parameters (`tag`, `expires`, `q`, ...).
    pub fn params(&self) -> Params<'a> {
        self.params
    }

    /// The `tag` parameter (§19.3).
    pub fn tag(&self) -> Option<&'a str> {
        self.params.value("tag")
    }

    /// The Contact `expires` parameter (§20.10), saturating at `u32::MAX`.
    pub fn expires(&self) -> Option<u32> {
        self.params.value("expires").and_then(saturating_u32)
    }

    /// The Contact `q` parameter in thousandths (`q=0.7` is 700), per §20.10 `qvalue`.
    pub fn q(&self) -> Option<u16> {
        let v = self.params.value("q")?;
        let (int, frac) = crate::text::split_byte(v, b'.').unwrap_or((v, ""));
        if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let whole = match int {
            "0" => 0u16,
            "1" => 1000,
            _ => return None,
        };
        let mut f = 0u16;
        for (i, b) in frac.bytes().enumerate() {
            f += u16::from(b - b'0') * [100, 10, 1][i];
        }
        let q = whole + f;
        (q <= 1000).then_some(q)
    }
}

fn saturating_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(crate::text::parse_u32(s).unwrap_or(u32::MAX))
}

/// Index of the quote that closes the quoted string starting at `s[0]`.
pub(crate) fn closing_quote(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// One Contact value: a binding or the `*` wildcard (§10.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactValue<'a> {
    /// `Contact: *`, only valid with `Expires: 0` in a REGISTER.
    Star,
    /// A name-addr or addr-spec.
    Addr(NameAddr<'a>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PIECES: &[&str] = &[
        "<",
        ">",
        "sip:alice@10.0.0.1",
        "sip:a@h:5060;lr",
        ";",
        "tag=1",
        "\"Alice\"",
        "Bob",
        " ",
        "\t",
        "\r\n ",
        "expires=3600",
        "=",
        "?",
        "sip:x?y=z",
        "<sip:[::1]>",
        "bad uri",
        "\"",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// The `<uri>;params` shortcut reads what the general rule reads, errors included.
        #[test]
        fn bracketed_shortcut_agrees_with_general_rule(
            p in prop::collection::vec(prop::sample::select(PIECES), 0..8),
        ) {
            let s = p.concat();
            prop_assert_eq!(NameAddr::parse(&s), NameAddr::parse_general(trim_lws(&s)));
        }

        /// The check without a URI made answers as the parser: valid or the same error, and
        /// the same URI text and parameters.
        #[test]
        fn name_addr_check_agrees_with_parser(
            p in prop::collection::vec(prop::sample::select(PIECES), 0..8),
        ) {
            let s = p.concat();
            let parsed = NameAddr::parse(&s).map(|na| (na.uri_str(), na.params()));
            prop_assert_eq!(NameAddr::check(&s), parsed);
        }
    }

    #[test]
    fn bracketed_values_keep_uri_and_header_params_apart() {
        let na = NameAddr::parse("<sip:alice@10.0.0.1;transport=udp>;tag=f893a2eefb").unwrap();
        assert!(na.is_name_addr());
        assert_eq!(na.uri_str(), "sip:alice@10.0.0.1;transport=udp");
        assert_eq!(na.tag(), Some("f893a2eefb"));
        assert_eq!(na.display_name(), None);
        let spaced = NameAddr::parse(" <sip:bob@h> ;tag=2").unwrap();
        assert_eq!(spaced.tag(), Some("2"));
        assert!(NameAddr::parse("<sip:bob@h>x").is_err());
        assert!(NameAddr::parse("<sip:bob@h").is_err());
    }
}
