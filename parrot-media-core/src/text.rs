//! Text building without `core::fmt`: decimal integers and IP addresses pushed straight onto a
//! `String`. SDP lines (RFC 8866 §5) and RTCP CNAMEs (RFC 3550 §6.5.1) are made of these, and
//! going through the formatting machinery costs several times more than the bytes themselves.

use core::net::{IpAddr, Ipv4Addr};

/// Writes `n` in decimal, exactly as `n.to_string()` writes it.
pub(crate) fn write_u64<W: core::fmt::Write>(w: &mut W, n: u64) -> core::fmt::Result {
    w.write_str(itoa::Buffer::new().format(n))
}

/// Writes `n` in decimal, exactly as `n.to_string()` writes it, a digit at a time (octets and
/// payload types are too short to be worth a conversion buffer).
pub(crate) fn write_u8<W: core::fmt::Write>(w: &mut W, n: u8) -> core::fmt::Result {
    if n >= 100 {
        w.write_char(char::from(b'0' + n / 100))?;
    }
    if n >= 10 {
        w.write_char(char::from(b'0' + n / 10 % 10))?;
    }
    w.write_char(char::from(b'0' + n % 10))
}

/// Writes `ip` exactly as its `Display` writes it (dotted quad; RFC 5952 text for IPv6).
pub(crate) fn write_ip<W: core::fmt::Write>(out: &mut W, ip: IpAddr) -> core::fmt::Result {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.write_char('.')?;
                }
                write_u8(out, octet)?;
            }
            Ok(())
        }
        // IPv6 text has zero-run compression and embedded IPv4 forms: leave it to `Display`.
        IpAddr::V6(v6) => write!(out, "{v6}"),
    }
}

/// Text of at most `N` bytes written on the stack (a write past the end fails).
pub(crate) struct StackText<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackText<N> {
    pub(crate) fn new() -> Self {
        StackText {
            buf: [0; N],
            len: 0,
        }
    }

    /// What was written.
    pub(crate) fn as_str(&self) -> &str {
        // Only whole `&str`s are copied in: always UTF-8.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl<const N: usize> core::fmt::Write for StackText<N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(core::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The index of the first `b` in `hay`: eight bytes at a time (a word compare, no SIMD setup,
/// so short SDP lines and fields stay cheap), the tail byte by byte.
pub(crate) fn find_byte(hay: &[u8], b: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pat = LO * u64::from(b);
    let mut chunks = hay.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        let Ok(word) = <[u8; 8]>::try_from(c) else {
            break;
        };
        let x = u64::from_le_bytes(word) ^ pat;
        // Non-zero iff a byte of `x` is zero; the lowest flagged byte is the first match.
        let found = x.wrapping_sub(LO) & !x & HI;
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    hay.get(at..)?.iter().position(|&x| x == b).map(|i| at + i)
}

/// `s` split at every `sep`, as `str::split` with an ASCII character splits it, with
/// [`find_byte`] (the general pattern searcher, or `memchr`, costs more on these short fields).
#[derive(Clone, Debug)]
pub(crate) struct SplitByte<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

impl<'a> SplitByte<'a> {
    /// Splits `s` at `sep`, which must be ASCII.
    pub(crate) fn new(s: &'a str, sep: u8) -> Self {
        debug_assert!(sep.is_ascii());
        SplitByte { rest: Some(s), sep }
    }
}

impl<'a> Iterator for SplitByte<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        match find_byte(s.as_bytes(), self.sep) {
            Some(i) => {
                // `sep` is ASCII, so both sides of it are character boundaries.
                self.rest = s.get(i + 1..);
                s.get(..i)
            }
            None => {
                self.rest = None;
                Some(s)
            }
        }
    }
}

/// `s` split at the first `sep`, as `str::split_once` with an ASCII character splits it.
pub(crate) fn split_once_byte(s: &str, sep: u8) -> Option<(&str, &str)> {
    let i = find_byte(s.as_bytes(), sep)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// Whether `s` contains a CRLF (RFC 8866 §5 line ending).
pub(crate) fn has_crlf(s: &str) -> bool {
    s.as_bytes().windows(2).any(|w| w == b"\r\n")
}

/// A dotted-quad IPv4 address (RFC 8866 §5.7 `IP4` unicast), by the rules of
/// `Ipv4Addr::from_str`: four decimal octets of one to three digits, no leading zeros, each at
/// most 255. `None` for anything else, which callers hand to the general parser.
pub(crate) fn parse_ipv4(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    // The octet being read: its index, value so far and digit count.
    let (mut k, mut v, mut n) = (0usize, 0u32, 0u32);
    for &c in s.as_bytes() {
        if c == b'.' {
            if n == 0 {
                return None;
            }
            *octets.get_mut(k)? = u8::try_from(v).ok()?;
            k += 1;
            (v, n) = (0, 0);
        } else if c.is_ascii_digit() {
            // A fourth digit, or a digit after a leading zero.
            if n == 3 || (n == 1 && v == 0) {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
            n += 1;
        } else {
            return None;
        }
    }
    if k != 3 || n == 0 {
        return None;
    }
    octets[3] = u8::try_from(v).ok()?;
    Some(Ipv4Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parse_ipv4_is_ipv4addr_from_str(s in "[0-9.]{0,18}") {
            prop_assert_eq!(parse_ipv4(&s), s.parse::<Ipv4Addr>().ok());
        }

        #[test]
        fn parse_ipv4_reads_every_quad(o: [u8; 4], zeros in proptest::collection::vec(0usize..2, 4), tail in "[0-9a:./ ]{0,2}") {
            let s = format!("{}{}{}.{}{}.{}{}.{}{}", "0".repeat(zeros[0]), o[0], "", "0".repeat(zeros[1]), o[1], "0".repeat(zeros[2]), o[2], "0".repeat(zeros[3]), o[3]);
            let s = format!("{s}{tail}");
            prop_assert_eq!(parse_ipv4(&s), s.parse::<Ipv4Addr>().ok());
        }

        #[test]
        fn find_byte_finds_the_first_occurrence(hay in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b' '), Just(0x80u8), Just(0xFFu8), Just(0u8), Just(1u8)], 0..40), b in prop_oneof![Just(b' '), Just(0u8), Just(0x80u8), Just(1u8)]) {
            prop_assert_eq!(find_byte(&hay, b), hay.iter().position(|&x| x == b));
        }

        #[test]
        fn write_u8_writes_what_to_string_writes(n: u8) {
            let mut s = String::new();
            write_u8(&mut s, n).unwrap();
            prop_assert_eq!(s, n.to_string());
        }

        #[test]
        fn split_byte_splits_as_str_split_does(s in "[ a/:\\.é\r\n]{0,12}", sep in prop_oneof![Just(b' '), Just(b'/'), Just(b'\n')]) {
            let ours: Vec<&str> = SplitByte::new(&s, sep).collect();
            let std: Vec<&str> = s.split(char::from(sep)).collect();
            prop_assert_eq!(ours, std);
            prop_assert_eq!(split_once_byte(&s, sep), s.split_once(char::from(sep)));
            prop_assert_eq!(has_crlf(&s), s.contains("\r\n"));
        }

        #[test]
        fn write_u64_writes_what_to_string_writes(n in any::<u64>()) {
            let mut s = String::from("x");
            write_u64(&mut s, n).unwrap();
            prop_assert_eq!(s, format!("x{n}"));
        }

        #[test]
        fn write_ip_writes_what_display_writes(v4 in any::<[u8; 4]>(), v6 in any::<[u16; 8]>()) {
            for ip in [IpAddr::from(v4), IpAddr::from(v6)] {
                let mut s = String::new();
                write_ip(&mut s, ip).unwrap();
                prop_assert_eq!(&s, &ip.to_string());
                let mut t = StackText::<64>::new();
                write_ip(&mut t, ip).unwrap();
                prop_assert_eq!(t.as_str(), s);
            }
        }
    }

    #[test]
    fn write_u64_writes_the_extremes() {
        for n in [0, 9, 10, 99, 100, u64::MAX] {
            let mut s = String::new();
            write_u64(&mut s, n).unwrap();
            assert_eq!(s, n.to_string());
        }
    }
}
