//! Parameter lists: `*( SEMI generic-param )` of headers and URIs (RFC 3261 §19.1.1, §25.1).

use crate::text::{is_token, trim_lws, unquote, Splitter};
use std::borrow::Cow;

/// A borrowed parameter list, parsed on access. The raw text starts after the first `;`.
///
/// Names match case-insensitively (§7.3.1); linear white space around `;` and `=` is ignored,
/// so folded headers such as RFC 4475's `wsinv` read naturally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a> {
    raw: &'a str,
}

/// One parameter: a name and an optional value (quoted values keep their quotes; see
/// [`Param::unquoted_value`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// The parameter name, trimmed.
    pub name: &'a str,
    /// The value after `=`, trimmed, quotes kept; `None` for a flag parameter.
    pub value: Option<&'a str>,
}

impl<'a> Param<'a> {
    /// The `generic-param` grammar: the name a token, the value a token, a host or a quoted
    /// string.
    pub(crate) fn is_valid(&self) -> bool {
        is_token(self.name)
            && match self.value {
                None => true,
                Some(v) if v.starts_with('"') => unquote(v).is_some(),
                Some(v) => {
                    !v.is_empty()
                        && v.bytes().all(|b| {
                            crate::text::is_token_byte(b) || matches!(b, b'[' | b']' | b':')
                        })
                }
            }
    }

    /// The value with a quoted string's quotes and escapes resolved.
    pub fn unquoted_value(&self) -> Option<Cow<'a, str>> {
        let v = self.value?;
        if v.starts_with('"') {
            unquote(v)
        } else {
            Some(Cow::Borrowed(v))
        }
    }
}

/// The bytes that end a parameter's name: `;`, `=`, and the openers of quoted strings and
/// bracketed URIs, inside which a `;` does not separate.
static PARAM_STOP: [bool; 256] = {
    let mut t = [false; 256];
    t[b';' as usize] = true;
    t[b'=' as usize] = true;
    t[b'"' as usize] = true;
    t[b'<' as usize] = true;
    t
};

/// Whether a parameter's name as written (white space around it allowed) is `want`, ASCII
/// case ignored (§7.3.1).
#[inline]
fn name_is(cand: &[u8], want: &[u8]) -> bool {
    let lws = |c: &u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    let cand = if cand.first().is_some_and(lws) || cand.last().is_some_and(lws) {
        trim_lws_bytes(cand)
    } else {
        cand
    };
    cand.len() == want.len()
        && cand
            .iter()
            .zip(want)
            .all(|(&x, &y)| x == y || (x | 0x20 == y | 0x20 && (x | 0x20).is_ascii_lowercase()))
}

fn trim_lws_bytes(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r' | b'\n', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r' | b'\n'] = b {
        b = rest;
    }
    b
}

/// The bytes [`segment_end`] stops at.
static SEGMENT_STOP: [bool; 256] = {
    let mut t = [false; 256];
    t[b';' as usize] = true;
    t[b'"' as usize] = true;
    t[b'<' as usize] = true;
    t
};

/// Whether any byte of the word is `;`, `"` or `<` (the zero-byte test on the word XORed with
/// each of them: exact as a yes/no).
#[inline(always)]
fn has_segment_stop(w: u64) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
    (zero(w ^ (LO * u64::from(b';')))
        | zero(w ^ (LO * u64::from(b'"')))
        | zero(w ^ (LO * u64::from(b'<'))))
        != 0
}

/// The index of the `;` that ends the parameter containing `b[from]` (or `b.len()`), skipping
/// quoted strings (with `quoted-pair`s) and `<...>` as [`Splitter`] does.
fn segment_end(b: &[u8], from: usize) -> usize {
    let n = b.len();
    let mut i = from;
    while i < n {
        // Jump to the next byte that matters: a table scan over short tails (a branch or a
        // tag), a vector search over longer ones.
        if n - i <= 32 {
            // Eight bytes at a time while none of them is a stop byte, then byte by byte.
            while i + 8 <= n {
                let mut w = [0u8; 8];
                w.copy_from_slice(&b[i..i + 8]);
                if has_segment_stop(u64::from_le_bytes(w)) {
                    break;
                }
                i += 8;
            }
            while i < n && !SEGMENT_STOP[b[i] as usize] {
                i += 1;
            }
            if i == n {
                return n;
            }
        } else {
            match crate::text::find_byte3(b';', b'"', b'<', &b[i..]) {
                Some(off) => i += off,
                None => return n,
            }
        }
        match b[i] {
            b';' => return i,
            b'"' => {
                i += 1;
                while i < n {
                    match b[i] {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                i += 1;
            }
            b'<' => match crate::text::find_byte(b'>', &b[i..]) {
                Some(gt) => i += gt + 1,
                None => return n,
            },
            _ => i += 1,
        }
    }
    n
}

impl<'a> Params<'a> {
    /// Wraps the raw text after the first `;` (empty for no parameters).
    pub fn new(raw: &'a str) -> Self {
        Params { raw }
    }

    /// The raw text, as in the message.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        trim_lws(self.raw).is_empty()
    }

    /// The parameters in order.
    pub fn iter(&self) -> impl Iterator<Item = Param<'a>> + 'a {
        let raw = self.raw;
        let empty = trim_lws(raw).is_empty();
        Splitter::new(raw, b';').filter(move |_| !empty).map(|p| {
            match crate::text::split_byte(p, b'=') {
                Some((n, v)) => Param {
                    name: trim_lws(n),
                    value: Some(trim_lws(v)),
                },
                None => Param {
                    name: trim_lws(p),
                    value: None,
                },
            }
        })
    }

    /// Looks a parameter up: `None` if absent, `Some(None)` if present without a value.
    ///
    /// One forward scan: each parameter's name is compared where it ends, and a parameter that
    /// does not match is skipped to the next `;` outside quotes and angle brackets.
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        if let Some(v) = self.first_plain_value(name) {
            return Some(Some(v));
        }
        self.get_scan(name)
    }

    /// The value of the first parameter when it is written `name=value` exactly as `name` is
    /// given, the value one or more token bytes ended by `;` or the end: a Via's `branch`, a
    /// From or To `tag`, as Parrot and most peers write them. `None` for anything else, which
    /// [`Params::get_scan`] then decides; whatever this finds, it finds alike (the value holds
    /// no white space, quote, bracket or `;`).
    #[inline]
    fn first_plain_value(&self, name: &str) -> Option<&'a str> {
        let b = self.raw.as_bytes();
        let w = name.as_bytes();
        let start = w.len() + 1;
        if b.get(..w.len())? != w || b.get(w.len()) != Some(&b'=') {
            return None;
        }
        let mut i = start;
        while i < b.len() && crate::text::is_token_byte(b[i]) {
            i += 1;
        }
        if i == start || (i < b.len() && b[i] != b';') {
            return None;
        }
        self.raw.get(start..i)
    }

    /// [`Params::get`] by one forward scan of the whole list.
    fn get_scan(&self, name: &str) -> Option<Option<&'a str>> {
        let s = self.raw;
        let b = s.as_bytes();
        let n = b.len();
        let want = name.as_bytes();
        let mut i = 0;
        loop {
            let start = i;
            while i < n && !PARAM_STOP[b[i] as usize] {
                i += 1;
            }
            match b.get(i) {
                Some(b'"' | b'<') => {
                    // Quotes or brackets before any '=': the general rule below.
                    let end = segment_end(b, start);
                    let seg = s.get(start..end)?;
                    let (n_, v) = match crate::text::split_byte(seg, b'=') {
                        Some((n_, v)) => (n_, Some(v)),
                        None => (seg, None),
                    };
                    if trim_lws(n_).eq_ignore_ascii_case(name) {
                        return Some(v.map(trim_lws));
                    }
                    i = end;
                }
                Some(b'=') => {
                    let hit = name_is(&b[start..i], want);
                    let end = segment_end(b, i + 1);
                    if hit {
                        return Some(Some(crate::text::trimmed(s, i + 1, end)));
                    }
                    i = end;
                }
                _ => {
                    if name_is(&b[start..i], want) {
                        return Some(None);
                    }
                }
            }
            if i >= n {
                return None;
            }
            i += 1; // the ';'
        }
    }

    /// [`Params::get`] as the split-then-compare rule it implements (kept to check the scan).
    #[cfg(test)]
    fn get_by_splitting(&self, name: &str) -> Option<Option<&'a str>> {
        for p in Splitter::new(self.raw, b';') {
            let (n, v) = match crate::text::split_byte(p, b'=') {
                Some((n, v)) => (n, Some(v)),
                None => (p, None),
            };
            if trim_lws(n).eq_ignore_ascii_case(name) {
                return Some(v.map(trim_lws));
            }
        }
        None
    }

    /// The value of a parameter that has one.
    pub fn value(&self, name: &str) -> Option<&'a str> {
        self.get(name).flatten()
    }

    /// Whether a parameter is present, with or without a value.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Checks the `generic-param` grammar: every name is a token, every value a token, a host
    /// or a quoted string; no empty parameters (RFC 4475 §3.1.2.1 `badinv01`).
    pub fn is_valid(&self) -> bool {
        if self.is_plain() {
            return true;
        }
        if self.is_empty() {
            return true;
        }
        self.iter().all(|p| p.is_valid())
    }

    /// [`Params::is_valid`] and [`Params::get`] in one scan of a plain list (see
    /// [`plain_param_at`]): `Some(get(name))` for a plain list, which is valid; `None` when the
    /// list is not plain, and the two must be asked on their own.
    pub(crate) fn plain_get(&self, name: &str) -> Option<Option<Option<&'a str>>> {
        // A list of the one parameter `name=token` (a From tag) is plain and holds it.
        if let Some(v) = self.first_plain_value(name) {
            if name.len() + 1 + v.len() == self.raw.len() && is_token(name) {
                return Some(Some(Some(v)));
            }
        }
        let mut found = None;
        let mut at = Some(0);
        while let Some(i) = at {
            let (n, v, next) = plain_param_at(self.raw, i)?;
            if found.is_none() && n.eq_ignore_ascii_case(name) {
                found = Some(v);
            }
            at = next;
        }
        Some(found)
    }

    /// Whether the list is `name[=value]` separated by `;`, names tokens and values tokens or
    /// hosts, nothing else (no white space, no quoted strings): valid at a glance. `false`
    /// means only that [`Params::is_valid`] must look closer.
    fn is_plain(&self) -> bool {
        let mut at = Some(0);
        while let Some(i) = at {
            match plain_param_at(self.raw, i) {
                Some((_, _, next)) => at = next,
                None => return false,
            }
        }
        true
    }
}

/// The parameter of a plain list (`name[=value]` separated by `;`, names tokens, values
/// tokens or hosts, no white space or quoted strings) that starts at byte `i` of `s`: its name,
/// its value, and where the next one starts (`None` after the last). `None` where the list
/// is not plain there: the part-by-part grammar then decides (§25.1 `generic-param`).
#[inline]
pub(crate) fn plain_param_at(s: &str, mut i: usize) -> Option<(&str, Option<&str>, Option<usize>)> {
    let b = s.as_bytes();
    let n = b.len();
    let ns = i;
    while i < n && crate::text::is_token_byte(b[i]) {
        i += 1;
    }
    if i == ns {
        return None;
    }
    let name = s.get(ns..i)?;
    let mut value = None;
    if i < n && b[i] == b'=' {
        i += 1;
        let vs = i;
        while i < n && (crate::text::is_token_byte(b[i]) || matches!(b[i], b'[' | b']' | b':')) {
            i += 1;
        }
        if i == vs {
            return None;
        }
        value = Some(s.get(vs..i)?);
    }
    match b.get(i) {
        None => Some((name, value, None)),
        Some(b';') => Some((name, value, Some(i + 1))),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PIECES: &[&str] = &[
        "branch",
        "BRANCH",
        "=",
        ";",
        " ",
        "\t",
        "\r\n ",
        "z9hG4bK1",
        "branch=z9hG4bK71c1",
        "tag=f893a2eefb",
        "ab.c-d!e",
        "tag=",
        "rport",
        "tag",
        "\"",
        "\\",
        "\"a;b\"",
        "<",
        ">",
        "<sip:x;lr>",
        "lr",
        "received=1.2.3.4",
        "x",
        "=\"q=1\"",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// The forward scan finds what splitting at every `;` and then at the first `=` finds,
        /// names compared case-insensitively, quotes and brackets respected.
        #[test]
        fn first_plain_value_agrees_with_the_scan(
            p in prop::collection::vec(prop::sample::select(PIECES), 0..12),
            name in prop::sample::select(vec!["branch", "rport", "tag", "lr", "x", "received"]),
        ) {
            let raw = p.concat();
            let params = Params::new(&raw);
            if let Some(v) = params.first_plain_value(name) {
                prop_assert_eq!(Some(Some(v)), params.get_scan(name), "{}", raw);
            }
        }

        #[test]
        fn lookup_scan_agrees_with_splitting(
            p in prop::collection::vec(prop::sample::select(PIECES), 0..12),
            name in prop::sample::select(vec!["branch", "rport", "tag", "lr", "x", "received"]),
        ) {
            let raw = p.concat();
            let params = Params::new(&raw);
            prop_assert_eq!(params.get(name), params.get_by_splitting(name));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// A list the one-scan check calls plain is valid by the parameter-by-parameter rule.
        #[test]
        fn plain_lists_are_valid_by_the_general_rule(
            p in prop::collection::vec(prop::sample::select(PIECES), 0..12),
        ) {
            let raw = p.concat();
            let params = Params::new(&raw);
            if params.is_plain() {
                prop_assert!(params.iter().all(|p| p.is_valid()), "{}", raw);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// The one-scan check and lookup of a plain list is what the check and the lookup give.
        #[test]
        fn plain_lookup_agrees_with_check_then_lookup(
            p in prop::collection::vec(prop::sample::select(PIECES), 0..12),
            name in prop::sample::select(vec!["branch", "rport", "tag", "lr", "x", "received"]),
        ) {
            let raw = p.concat();
            let params = Params::new(&raw);
            if let Some(found) = params.plain_get(name) {
                prop_assert!(params.is_valid(), "{}", raw);
                prop_assert_eq!(found, params.get(name), "{}", raw);
            }
        }
    }

    #[test]
    fn plain_check_accepts_tokens_and_hosts_only() {
        assert!(Params::new("tag=1928301774;lr;maddr=[::1]").is_plain());
        assert!(!Params::new("tag=1;").is_plain());
        assert!(!Params::new("tag= 1").is_plain());
        assert!(!Params::new("x=\"q\"").is_plain());
        assert!(Params::new("x=\"q\"").is_valid());
        assert!(!Params::new("x=\"q").is_valid());
        assert!(Params::new("").is_valid());
    }

    #[test]
    fn word_test_finds_stop_bytes_anywhere() {
        for pos in 0..8 {
            for stop in [b';', b'"', b'<'] {
                let mut w = *b"z9hG4bK7";
                w[pos] = stop;
                assert!(has_segment_stop(u64::from_le_bytes(w)));
            }
        }
        for w in [*b"z9hG4bK7", *b"\xff\x80\x3a\x3d\x21\x23\x3b\x00"] {
            let has = w.iter().any(|c| SEGMENT_STOP[*c as usize]);
            assert_eq!(has_segment_stop(u64::from_le_bytes(w)), has);
        }
        for c in 0..=255u8 {
            assert_eq!(
                has_segment_stop(u64::from_le_bytes([c; 8])),
                SEGMENT_STOP[c as usize],
                "{c}"
            );
        }
    }

    #[test]
    fn lookup_handles_flags_case_quotes_and_white_space() {
        let p = Params::new("branch=z9hG4bKx;RPort;tag = \"a;b\" ;lr");
        assert_eq!(p.get("branch"), Some(Some("z9hG4bKx")));
        assert_eq!(p.get("rport"), Some(None));
        assert_eq!(p.get("TAG"), Some(Some("\"a;b\"")));
        assert_eq!(p.get("lr"), Some(None));
        assert_eq!(p.get("b"), None);
        assert_eq!(Params::new("").get("x"), None);
        assert_eq!(Params::new("x=<sip:a;b=c>;b=d").get("b"), Some(Some("d")));
    }
}
