//! Lexical helpers shared by the parsers (RFC 3261 §25.1 basic rules).

use std::borrow::Cow;

const fn token_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
}

static TOKEN: [bool; 256] = token_table();

/// `token` characters: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~".
#[inline(always)]
pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN[b as usize]
}

/// Splits at the first occurrence of an ASCII byte: a plain loop beats a searcher on the short
/// strings of header values.
#[inline]
pub(crate) fn split_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|c| c == b)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

#[inline]
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

#[inline]
pub(crate) fn trim_lws(s: &str) -> &str {
    let b = s.as_bytes();
    let mut start = 0;
    let mut end = b.len();
    while start < end && matches!(b[start], b' ' | b'\t' | b'\r' | b'\n') {
        start += 1;
    }
    while end > start && matches!(b[end - 1], b' ' | b'\t' | b'\r' | b'\n') {
        end -= 1;
    }
    // Only ASCII bytes were skipped, so both ends are char boundaries.
    s.get(start..end).unwrap_or_default()
}

/// [`trim_lws`] of bytes.
#[inline]
pub(crate) fn trim_lws_bytes(b: &[u8]) -> &[u8] {
    let lws = |c: &u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    let start = b.iter().position(|c| !lws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !lws(c)).map_or(start, |i| i + 1);
    b.get(start..end).unwrap_or_default()
}

/// Whether `s` is `lower`, a word of lower-case ASCII letters (at most 8), but for the case of
/// its letters: [`str::eq_ignore_ascii_case`] with such a word, as one comparison. Folding a
/// byte with `| 0x20` lands on a lower-case letter only from that letter or its upper case, so
/// folding every byte of `s` is exact here.
#[inline(always)]
pub(crate) fn is_word_ignoring_case<const N: usize>(s: &str, lower: &[u8; N]) -> bool {
    const FOLD: u64 = 0x2020_2020_2020_2020;
    const { assert!(N <= 8, "a word of at most 8 letters") };
    debug_assert!(lower.iter().all(u8::is_ascii_lowercase));
    let (Some(b), true) = (s.as_bytes().first_chunk::<N>(), s.len() == N) else {
        return false;
    };
    let word = |b: &[u8; N]| {
        let mut w = [0u8; 8];
        w[..N].copy_from_slice(b);
        u64::from_le_bytes(w) | FOLD
    };
    word(b) == word(lower)
}

/// The position of the first `needle` in `b`.
///
/// The searches here run on short texts (header lines and values), where what a search costs
/// is mostly getting to it: on x86-64 the SSE2 searchers of `memchr`, always there, inline into
/// the caller, where `memchr::memchr` goes through a run-time choice of AVX2 on every call.
#[inline(always)]
pub(crate) fn find_byte(needle: u8, b: &[u8]) -> Option<usize> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if let Some(one) = memchr::arch::x86_64::sse2::memchr::One::new(needle) {
        return one.find(b);
    }
    memchr::memchr(needle, b)
}

/// The position of the first `n1` or `n2` in `b` (see [`find_byte`]).
#[inline(always)]
pub(crate) fn find_byte2(n1: u8, n2: u8, b: &[u8]) -> Option<usize> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if let Some(two) = memchr::arch::x86_64::sse2::memchr::Two::new(n1, n2) {
        return two.find(b);
    }
    memchr::memchr2(n1, n2, b)
}

/// The position of the first `n1`, `n2` or `n3` in `b` (see [`find_byte`]).
#[inline(always)]
pub(crate) fn find_byte3(n1: u8, n2: u8, n3: u8, b: &[u8]) -> Option<usize> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if let Some(three) = memchr::arch::x86_64::sse2::memchr::Three::new(n1, n2, n3) {
        return three.find(b);
    }
    memchr::memchr3(n1, n2, n3, b)
}

/// `trim_lws(&s[start..end])`, trimmed on the bytes and sliced once (`""` for a range that
/// is not one of `s`).
#[inline]
pub(crate) fn trimmed(s: &str, mut start: usize, end: usize) -> &str {
    let b = s.as_bytes();
    let mut end = end.min(b.len());
    while start < end && matches!(b[start], b' ' | b'\t' | b'\r' | b'\n') {
        start += 1;
    }
    while end > start && matches!(b[end - 1], b' ' | b'\t' | b'\r' | b'\n') {
        end -= 1;
    }
    s.get(start..end).unwrap_or_default()
}

/// Index of the first LWS byte (space, tab, CR, LF).
#[inline]
pub(crate) fn find_lws(s: &str) -> Option<usize> {
    s.bytes()
        .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// Splits `s` at every `sep` that is outside a quoted string and outside `<...>`.
/// Backslash escapes inside quoted strings are honoured (§25.1 `quoted-pair`).
pub(crate) struct Splitter<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

impl<'a> Splitter<'a> {
    pub(crate) fn new(s: &'a str, sep: u8) -> Self {
        Splitter { rest: Some(s), sep }
    }

    /// The first part of `s`: the whole of it when `sep` does not occur (one byte search, the
    /// common case for header lines holding one value), else what [`Splitter::next`] gives.
    pub(crate) fn first(s: &'a str, sep: u8) -> &'a str {
        if find_byte(sep, s.as_bytes()).is_none() {
            return s;
        }
        Splitter::new(s, sep).next().unwrap_or(s)
    }
}

impl<'a> Iterator for Splitter<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        let bytes = s.as_bytes();
        // Fast path: jump between the bytes that matter with memchr.
        let mut i = 0;
        loop {
            // Short tails (the last parameter, mostly) are scanned directly; a vector search pays
            // off on longer ones.
            let found = if bytes.len() - i <= 16 {
                bytes[i..]
                    .iter()
                    .position(|&b| b == self.sep || b == b'"' || b == b'<')
            } else {
                find_byte3(self.sep, b'"', b'<', &bytes[i..])
            };
            let Some(off) = found else {
                self.rest = None;
                return Some(s);
            };
            i += off;
            match bytes[i] {
                b'"' => {
                    i += 1;
                    while i < bytes.len() {
                        match bytes[i] {
                            b'\\' => i += 2,
                            b'"' => break,
                            _ => i += 1,
                        }
                    }
                    i += 1;
                }
                b'<' => match find_byte(b'>', &bytes[i..]) {
                    Some(gt) => i += gt + 1,
                    None => {
                        self.rest = None;
                        return Some(s);
                    }
                },
                _ => {
                    self.rest = s.get(i + 1..);
                    return Some(s.get(..i).unwrap_or_default());
                }
            }
            if i >= bytes.len() {
                self.rest = None;
                return Some(s);
            }
        }
    }
}

/// Removes the quotes of a `quoted-string` and resolves its `quoted-pair`s. Borrowed when there
/// is nothing to resolve. Returns `None` when `s` is not a complete quoted string.
pub(crate) fn unquote(s: &str) -> Option<Cow<'_, str>> {
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        // An unescaped quote inside means the string ended early.
        if inner.contains('"') {
            return None;
        }
        return Some(Cow::Borrowed(inner));
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(Cow::Owned(out))
}

/// Resolves `%HH` escapes (RFC 3261 §19.1.2, RFC 3986 §2.1). Borrowed when there is none.
/// A `%` not followed by two hex digits is kept literally. The result may hold any byte,
/// including NUL, so it is bytes, not text.
pub fn percent_decode(s: &str) -> Cow<'_, [u8]> {
    if !s.contains('%') {
        return Cow::Borrowed(s.as_bytes());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let (Some(h), Some(l)) = (hex(b.get(i + 1)), hex(b.get(i + 2))) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Cow::Owned(out)
}

fn hex(b: Option<&u8>) -> Option<u8> {
    let b = *b?;
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Parses a decimal number with no sign, allowing leading zeros (§25.1 `1*DIGIT`), refusing
/// overflow instead of wrapping (RFC 4475 §3.1.2.4, §3.1.2.19).
pub(crate) fn parse_u32(s: &str) -> Option<u32> {
    parse_u32_bytes(s.as_bytes())
}

/// [`parse_u32`] of bytes (any non-digit, ASCII or not, refuses the number).
pub(crate) fn parse_u32_bytes(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u32 = 0;
    for &b in s {
        v = v.checked_mul(10)?.checked_add(u32::from(b - b'0'))?;
    }
    Some(v)
}

/// Appends `n` in decimal (no formatting machinery: this runs for every CSeq, port and
/// address the endpoint writes).
pub(crate) fn push_u32(s: &mut String, n: u32) {
    let mut buf = [0u8; 10];
    for &b in decimal(u64::from(n), &mut buf) {
        s.push(char::from(b));
    }
}

/// The decimal digits of `n`, written at the end of `buf`, which holds them: 10 bytes for a
/// `u32`, 20 for any `u64`.
pub(crate) fn decimal<const N: usize>(mut n: u64, buf: &mut [u8; N]) -> &[u8] {
    // Two digits per division, from a table of the hundred pairs.
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut i = buf.len();
    while n >= 100 {
        let d = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[d..d + 2]);
    }
    if n >= 10 {
        let d = n as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[d..d + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + n as u8;
    }
    &buf[i..]
}

/// Appends an IP address as text: dotted quad, or IPv6 without brackets.
pub(crate) fn push_ip(s: &mut String, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(a) => {
            let mut buf = [0u8; 15];
            s.push_str(std::str::from_utf8(ipv4_dotted(a, &mut buf)).unwrap_or_default());
        }
        std::net::IpAddr::V6(a) => {
            use std::fmt::Write;
            let _ = write!(s, "{a}");
        }
    }
}

/// `a` in dotted-quad form (RFC 3261 §25.1 `IPv4address`), written at the start of `buf`.
#[inline]
pub(crate) fn ipv4_dotted(a: std::net::Ipv4Addr, buf: &mut [u8; 15]) -> &[u8] {
    let mut at = 0;
    for (i, o) in a.octets().into_iter().enumerate() {
        let mut put = |c: u8| {
            if let Some(d) = buf.get_mut(at) {
                *d = c;
            }
            at += 1;
        };
        if i > 0 {
            put(b'.');
        }
        // Two comparisons instead of the general digit loop's divisions.
        if o >= 100 {
            put(b'0' + o / 100);
        }
        if o >= 10 {
            put(b'0' + o / 10 % 10);
        }
        put(b'0' + o % 10);
    }
    buf.get(..at).unwrap_or_default()
}

/// The concatenation of `parts`, allocated once at its exact size.
pub(crate) fn concat(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        s.push_str(p);
    }
    s
}

/// Whether `b` holds CR or LF. Short text is scanned without a short-circuit (the loop
/// vectorises), where setting up memchr's search would cost more than the scan.
pub(crate) fn has_crlf(b: &[u8]) -> bool {
    if b.len() >= 64 {
        return find_byte2(b'\r', b'\n', b).is_some();
    }
    b.iter()
        .fold(false, |f, &c| f | (c == b'\r') | (c == b'\n'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn ipv4_writer_matches_display(ip in any::<u32>()) {
            let ip = std::net::IpAddr::V4(std::net::Ipv4Addr::from(ip));
            let mut s = String::from("x");
            push_ip(&mut s, ip);
            prop_assert_eq!(s, format!("x{ip}"));
        }

        #[test]
        fn word_comparison_agrees_with_eq_ignore_ascii_case(
            s in prop_oneof![
                proptest::sample::select(vec!["branch", "BRANCH", "Branch", "rport", "RPort", "ttl",
                    "TTL", "received", "RECEIVED", "branc", "branchx", "bRaNcH"]).prop_map(str::to_owned),
                "[a-zA-Z@\\[`{\\x01-\\x1a\\x80-\\xff]{0,9}",
            ],
        ) {
            prop_assert_eq!(is_word_ignoring_case(&s, b"branch"), s.eq_ignore_ascii_case("branch"));
            prop_assert_eq!(is_word_ignoring_case(&s, b"rport"), s.eq_ignore_ascii_case("rport"));
            prop_assert_eq!(is_word_ignoring_case(&s, b"ttl"), s.eq_ignore_ascii_case("ttl"));
            prop_assert_eq!(is_word_ignoring_case(&s, b"received"), s.eq_ignore_ascii_case("received"));
        }

        #[test]
        fn crlf_scan_agrees_with_memchr(s in proptest::collection::vec(
            prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'a'), any::<u8>()], 0..100
        )) {
            let mut clean = s.clone();
            clean.retain(|&c| c != b'\r' && c != b'\n');
            prop_assert_eq!(has_crlf(&s), memchr::memchr2(b'\r', b'\n', &s).is_some());
            prop_assert!(!has_crlf(&clean));
        }
    }

    #[test]
    fn splitter_respects_quotes_and_angles() {
        let v: Vec<_> = Splitter::new(r#""a,b" <sip:x;a=1,2>, c, "q\"," d"#, b',').collect();
        assert_eq!(v, vec![r#""a,b" <sip:x;a=1,2>"#, " c", r#" "q\"," d"#]);
    }

    #[test]
    fn first_part_is_what_splitting_gives_first() {
        for s in [
            "a",
            "",
            "a,b",
            r#""a,b" <x>"#,
            "<sip:x,y>, z",
            r#""open,"#,
            "<open,",
            ",",
        ] {
            assert_eq!(
                Splitter::first(s, b','),
                Splitter::new(s, b',').next().unwrap(),
                "{s}"
            );
        }
    }

    #[test]
    fn percent_decode_keeps_nul_and_bad_escapes() {
        assert_eq!(&*percent_decode("a%00b"), b"a\0b");
        assert_eq!(&*percent_decode("%4"), b"%4");
        assert_eq!(&*percent_decode("%zz%41"), b"%zzA");
    }

    #[test]
    fn unquote_resolves_pairs() {
        assert_eq!(unquote(r#""J \"R\"""#).unwrap(), r#"J "R""#);
        assert!(unquote(r#""open"#).is_none());
    }

    #[test]
    fn decimal_and_ip_writers_match_display() {
        for n in [0u32, 7, 10, 65535, u32::MAX] {
            let mut s = String::new();
            push_u32(&mut s, n);
            assert_eq!(s, n.to_string());
        }
        for ip in ["10.0.0.1", "255.255.255.0", "0.0.0.0", "2001:db8::1"] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            let mut s = String::new();
            push_ip(&mut s, ip);
            assert_eq!(s, ip.to_string());
        }
    }

    proptest::proptest! {
        #[test]
        fn decimal_digits_are_display_for_any_number(n in proptest::prelude::any::<u64>(), small in 0u64..1000) {
            let mut buf = [0u8; 20];
            let want = n.to_string();
            proptest::prop_assert_eq!(decimal(n, &mut buf), want.as_bytes());
            let mut buf = [0u8; 10];
            let m = n as u32;
            let want = m.to_string();
            proptest::prop_assert_eq!(decimal(u64::from(m), &mut buf), want.as_bytes());
            let mut buf = [0u8; 3];
            let want = small.to_string();
            proptest::prop_assert_eq!(decimal(small, &mut buf), want.as_bytes());
        }
    }

    #[test]
    fn decimal_digits_at_the_edges_of_each_length() {
        for n in [
            0u64,
            9,
            10,
            99,
            100,
            999,
            1000,
            9999,
            10000,
            99999,
            u64::MAX,
        ] {
            let mut buf = [0u8; 20];
            assert_eq!(decimal(n, &mut buf), n.to_string().as_bytes());
        }
    }

    #[test]
    fn numbers_refuse_overflow() {
        assert_eq!(parse_u32("0009"), Some(9));
        assert_eq!(parse_u32("4294967296"), None);
        assert_eq!(parse_u32("-1"), None);
    }
}
