//! URIs: `sip:`, `sips:` (RFC 3261 §19.1), `tel:` (RFC 3966) and any other `absoluteURI`
//! (RFC 3986), kept opaque.
//!
//! Views borrow from the text they were parsed from. Escapes (`%HH`) are kept as written;
//! [`SipUri::user_decoded`] and the comparison rules of §19.1.4 ([`SipUri::rfc_eq`]) resolve
//! them where the grammar allows escapes and nowhere else.

pub use crate::header::params::{Param, Params};
use crate::text::{percent_decode, Splitter};
use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a URI did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UriError {
    /// No `scheme:` prefix, or a scheme that is not `ALPHA *(ALPHA / DIGIT / + / - / .)`.
    BadScheme,
    /// White space, `<`, `>` or `"` inside the URI.
    BadCharacter,
    /// Empty or malformed host, or an unclosed IPv6 reference.
    BadHost,
    /// A port that is not a number from 0 to 65535.
    BadPort,
    /// An empty or malformed parameter.
    BadParam,
    /// Malformed `?headers`.
    BadHeaders,
    /// A `tel:` number that is empty or holds characters RFC 3966 does not allow.
    BadNumber,
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UriError::BadScheme => "bad URI scheme",
            UriError::BadCharacter => "white space or delimiter inside URI",
            UriError::BadHost => "bad host in URI",
            UriError::BadPort => "bad port in URI",
            UriError::BadParam => "bad URI parameter",
            UriError::BadHeaders => "bad URI headers",
            UriError::BadNumber => "bad telephone number",
        })
    }
}

impl std::error::Error for UriError {}

/// A parsed URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uri<'a> {
    /// `sip:` or `sips:` (RFC 3261 §19.1).
    Sip(SipUri<'a>),
    /// `tel:` (RFC 3966).
    Tel(TelUri<'a>),
    /// Any other scheme, kept opaque (RFC 3261 §25.1 `absoluteURI`).
    Absolute(AbsoluteUri<'a>),
}

impl<'a> Uri<'a> {
    /// Parses a URI.
    pub fn parse(s: &'a str) -> Result<Uri<'a>, UriError> {
        // `sip:` and `sips:` are recognised without the general scheme walk; the common URI
        // shapes then go through one byte scan ([`SipUri::parse_rest_fast`]).
        let b = s.as_bytes();
        if b.len() > 4 && b[0] | 0x20 == b's' && b[1] | 0x20 == b'i' && b[2] | 0x20 == b'p' {
            let (secure, at) = match b[3] {
                b':' => (false, 4),
                c if c | 0x20 == b's' && b[4] == b':' => (true, 5),
                _ => return Self::parse_general(s),
            };
            let rest = s.get(at..).unwrap_or_default();
            if let Some(u) = SipUri::parse_rest_fast::<false>(s, secure, rest) {
                return Ok(Uri::Sip(u));
            }
            return SipUri::parse_rest(s, secure, rest).map(Uri::Sip);
        }
        Self::parse_general(s)
    }

    /// Whether `s` is a URI ([`Uri::parse`] is `Ok`), with its scheme and whether it is a SIP
    /// URI with `?headers`: what validation reads. The common `sip:`/`sips:` shapes are
    /// scanned by [`SipUri::parse_rest_fast`], where no URI is made of them; any
    /// other text is parsed, so the answer is always the parser's.
    pub(crate) fn check(s: &'a str) -> Result<UriCheck<'a>, UriError> {
        let b = s.as_bytes();
        if b.len() > 4 && b[0] | 0x20 == b's' && b[1] | 0x20 == b'i' && b[2] | 0x20 == b'p' {
            let at = match b[3] {
                b':' => 4,
                c if c | 0x20 == b's' && b[4] == b':' => 5,
                _ => 0,
            };
            if at > 0 {
                let rest = s.get(at..).unwrap_or_default();
                if SipUri::parse_rest_fast::<true>(s, at == 5, rest).is_some() {
                    return Ok(UriCheck {
                        scheme: s.get(..at - 1).unwrap_or_default(),
                        sip_headers: false,
                    });
                }
            }
        }
        Uri::parse(s).map(|u| UriCheck {
            scheme: u.scheme(),
            sip_headers: u.as_sip().is_some_and(|u| u.headers().is_some()),
        })
    }

    /// [`Uri::parse`] without the `sip:` fast path: the grammar as written in RFC 3261 §25.1
    /// and RFC 3986, one part at a time.
    fn parse_general(s: &'a str) -> Result<Uri<'a>, UriError> {
        let (scheme, rest) = crate::text::split_byte(s, b':').ok_or(UriError::BadScheme)?;
        if !valid_scheme(scheme) {
            return Err(UriError::BadScheme);
        }
        // SIP URIs check every byte against their own grammar below; other schemes are only
        // required to hold no white space or delimiters.
        if scheme.eq_ignore_ascii_case("sip") {
            SipUri::parse_rest(s, false, rest).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case("sips") {
            SipUri::parse_rest(s, true, rest).map(Uri::Sip)
        } else if s
            .bytes()
            .any(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'<' | b'>' | b'"'))
        {
            Err(UriError::BadCharacter)
        } else if scheme.eq_ignore_ascii_case("tel") {
            TelUri::parse_rest(s, rest).map(Uri::Tel)
        } else {
            if rest.is_empty() {
                return Err(UriError::BadScheme);
            }
            Ok(Uri::Absolute(AbsoluteUri {
                raw: s,
                scheme,
                rest,
            }))
        }
    }

    /// The URI as written.
    pub fn as_str(&self) -> &'a str {
        match self {
            Uri::Sip(u) => u.raw,
            Uri::Tel(u) => u.raw,
            Uri::Absolute(u) => u.raw,
        }
    }

    /// The scheme as written.
    pub fn scheme(&self) -> &'a str {
        match self {
            Uri::Sip(u) => &u.raw[..if u.secure { 4 } else { 3 }],
            Uri::Tel(u) => &u.raw[..3],
            Uri::Absolute(u) => u.scheme,
        }
    }

    /// The SIP URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri<'a>> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }

    /// Equality per RFC 3261 §19.1.4 (SIP), RFC 3966 §4 (tel), and case-insensitive scheme
    /// plus exact remainder for other schemes.
    pub fn rfc_eq(&self, other: &Uri<'_>) -> bool {
        match (self, other) {
            (Uri::Sip(a), Uri::Sip(b)) => a.rfc_eq(b),
            (Uri::Tel(a), Uri::Tel(b)) => a.rfc_eq(b),
            (Uri::Absolute(a), Uri::Absolute(b)) => {
                a.scheme.eq_ignore_ascii_case(b.scheme) && a.rest == b.rest
            }
            _ => false,
        }
    }
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn valid_scheme(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

/// The host part of a SIP URI or Via sent-by (RFC 3261 §25.1 `host`, RFC 5118).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    /// A domain name.
    Domain(&'a str),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 reference, without its brackets, as written. RFC 5118 §4.10 asks parsers to
    /// tolerate forms `std` refuses (three colons), so it stays text; see [`Host::ip`].
    Ipv6(&'a str),
}

impl<'a> Host<'a> {
    /// Parses a host: a bracketed IPv6 reference, an IPv4 address or a domain name.
    pub fn parse(s: &'a str) -> Result<Host<'a>, UriError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(UriError::BadHost)?;
            if valid_ipv6ish(inner) {
                return Ok(Host::Ipv6(inner));
            }
            return Err(UriError::BadHost);
        }
        if s.is_empty() {
            return Err(UriError::BadHost);
        }
        // One table lookup per byte: 1 for digits and dots, 2 for the other hostname bytes.
        let mut seen = 0u8;
        for &b in s.as_bytes() {
            let class = HOST_CLASS[b as usize];
            if class == 0 {
                return Err(UriError::BadHost);
            }
            seen |= class;
        }
        let numeric = seen == 1;
        if numeric {
            return parse_ipv4(s).map(Host::Ipv4).ok_or(UriError::BadHost);
        }
        if !s.starts_with('.') && !s.starts_with('-') {
            return Ok(Host::Domain(s));
        }
        Err(UriError::BadHost)
    }

    /// The IP address, if the host is one (IPv6 forms that `std` refuses give `None`).
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Domain(_) => None,
            Host::Ipv4(a) => Some(IpAddr::V4(*a)),
            Host::Ipv6(s) => s.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        }
    }

    fn eq_host(&self, other: &Host<'_>) -> bool {
        match (self, other) {
            (Host::Domain(a), Host::Domain(b)) => a.eq_ignore_ascii_case(b),
            (Host::Ipv4(a), Host::Ipv4(b)) => a == b,
            (Host::Ipv6(a), Host::Ipv6(b)) => match (self.ip(), other.ip()) {
                (Some(x), Some(y)) => x == y,
                _ => a.eq_ignore_ascii_case(b),
            },
            _ => false,
        }
    }
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

const fn host_class() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = if b.is_ascii_digit() || b == b'.' {
            1
        } else if b.is_ascii_alphabetic() || b == b'-' || b == b'_' {
            2
        } else {
            0
        };
        i += 1;
    }
    t
}

static HOST_CLASS: [u8; 256] = host_class();

/// Dotted-quad IPv4 without leading-zero ambiguity checks beyond 0-255 per octet.
fn parse_ipv4(s: &str) -> Option<Ipv4Addr> {
    // One pass over the bytes (a `split('.')` searcher costs several times more): four parts of
    // one to three digits, each at most 255. Any byte other than a digit or a dot is refused.
    let mut octets = [0u8; 4];
    let mut n = 0;
    let mut v: u16 = 0;
    let mut digits = 0;
    for &b in s.as_bytes() {
        if b == b'.' {
            if digits == 0 || n == 3 {
                return None;
            }
            octets[n] = u8::try_from(v).ok()?;
            n += 1;
            v = 0;
            digits = 0;
        } else if b.is_ascii_digit() && digits < 3 {
            v = v * 10 + u16::from(b - b'0');
            digits += 1;
        } else {
            return None;
        }
    }
    if digits == 0 || n != 3 {
        return None;
    }
    octets[3] = u8::try_from(v).ok()?;
    Some(Ipv4Addr::from(octets))
}

pub(crate) fn valid_ipv6ish(s: &str) -> bool {
    s.contains(':')
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
}

/// What [`scan_hostport`] found: an IPv4 address, or a domain name ending at `end`.
pub(crate) struct HostPortScan {
    pub(crate) ipv4: Option<Ipv4Addr>,
    pub(crate) host_end: usize,
    pub(crate) port: Option<u16>,
    pub(crate) end: usize,
}

impl HostPortScan {
    /// The host, `s` being the text the scan ran over.
    #[inline]
    pub(crate) fn host<'a>(&self, s: &'a str, h: usize) -> Option<Host<'a>> {
        match self.ipv4 {
            Some(a) => Some(Host::Ipv4(a)),
            None => Some(Host::Domain(s.get(h..self.host_end)?)),
        }
    }
}

/// One pass over `host[:port]` starting at `b[h]`, for an IPv4 address or a domain name
/// (RFC 3261 §25.1 `hostport`): returns the host, the port and the index of the first byte
/// after them. `None` for an IPv6 reference, a malformed host or port, or a port with more than
/// five digits: [`split_hostport`] then decides, so whatever this accepts it accepts alike.
///
/// `CHECK` only gives [`Uri::check`]'s scan its own copy (see [`SipUri::parse_rest_fast`]).
#[inline]
pub(crate) fn scan_hostport<const CHECK: bool>(b: &[u8], h: usize) -> Option<HostPortScan> {
    let n = b.len();
    // Dotted quad first: four groups of one to three digits, each at most 255, then a byte
    // that cannot continue a host name.
    let mut j = h;
    let ipv4 = 'quad: {
        let mut octets = [0u8; 4];
        for (k, o) in octets.iter_mut().enumerate() {
            if k > 0 {
                if b.get(j) != Some(&b'.') {
                    break 'quad None;
                }
                j += 1;
            }
            // One to three digits, read without a loop: the value and the bytes taken.
            let digit = |at: usize| b.get(at).map(|c| c.wrapping_sub(b'0')).filter(|&d| d < 10);
            let Some(d0) = digit(j) else {
                break 'quad None;
            };
            let (v, taken) = match digit(j + 1) {
                None => (u32::from(d0), 1),
                Some(d1) => match digit(j + 2) {
                    None => (u32::from(d0) * 10 + u32::from(d1), 2),
                    Some(d2) => (u32::from(d0) * 100 + u32::from(d1) * 10 + u32::from(d2), 3),
                },
            };
            if v > 255 {
                break 'quad None;
            }
            j += taken;
            *o = v as u8;
        }
        if j < n && HOST_CLASS[b[j] as usize] != 0 {
            break 'quad None;
        }
        Some(Ipv4Addr::from(octets))
    };
    let host = if ipv4.is_some() {
        ipv4
    } else {
        // A domain name: host bytes with at least one that is not a digit or a dot (all-numeric
        // text that is no dotted quad is refused by `Host::parse`).
        let mut seen = 0u8;
        j = h;
        while j < n {
            let c = HOST_CLASS[b[j] as usize];
            if c == 0 {
                break;
            }
            seen |= c;
            j += 1;
        }
        if seen & 2 == 0 || b[h] == b'.' || b[h] == b'-' {
            return None;
        }
        None
    };
    let host_end = j;
    let port = if j < n && b[j] == b':' {
        j += 1;
        let start = j;
        let mut p: u32 = 0;
        while j < n && b[j].is_ascii_digit() && j - start < 5 {
            p = p * 10 + u32::from(b[j] - b'0');
            j += 1;
        }
        if j == start || (j < n && b[j].is_ascii_digit()) {
            return None;
        }
        Some(u16::try_from(p).ok()?)
    } else {
        None
    };
    Some(HostPortScan {
        ipv4: host,
        host_end,
        port,
        end: j,
    })
}

/// Splits `host[:port]`, with bracketed IPv6 references (RFC 5118 §4.3, §4.4).
pub(crate) fn split_hostport(s: &str) -> Result<(Host<'_>, Option<u16>), UriError> {
    let (host, port) = if s.starts_with('[') {
        let close = s.find(']').ok_or(UriError::BadHost)?;
        let (h, rest) = s.split_at(close + 1);
        match rest {
            "" => (h, None),
            _ => (h, Some(rest.strip_prefix(':').ok_or(UriError::BadPort)?)),
        }
    } else {
        match crate::text::split_byte(s, b':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => Some(
            crate::text::parse_u32(p)
                .and_then(|v| u16::try_from(v).ok())
                .ok_or(UriError::BadPort)?,
        ),
    };
    Ok((Host::parse(host)?, port))
}

/// What [`Uri::check`] reads of a valid URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UriCheck<'a> {
    /// The scheme as written ([`Uri::scheme`]).
    pub(crate) scheme: &'a str,
    /// Whether it is a SIP URI with `?headers` ([`SipUri::headers`]).
    pub(crate) sip_headers: bool,
}

/// A `sip:` or `sips:` URI (RFC 3261 §19.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipUri<'a> {
    raw: &'a str,
    secure: bool,
    user: Option<&'a str>,
    password: Option<&'a str>,
    host: Host<'a>,
    host_raw: &'a str,
    port: Option<u16>,
    params: Params<'a>,
    headers: Option<&'a str>,
}

/// `unreserved / escaped` of RFC 3261 §25.1 (`%` starts an escape): the base of every URI part.
const fn unreserved_or_escape(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')' | b'%'
        )
}

const USER: u8 = 1;
const PARAM: u8 = 2;
const HEADER: u8 = 4;
/// The password: user bytes other than ';', '?' and '/'.
const PASSWORD: u8 = 8;

/// One table lookup per byte for the three URI character classes below.
const fn uri_class() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let base = unreserved_or_escape(b);
        let mut c = 0;
        if base || matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/') || b >= 0x80 {
            c |= USER;
        }
        if base || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$') {
            c |= PARAM;
        }
        if base || matches!(b, b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$') {
            c |= HEADER;
        }
        if c & USER != 0 && !matches!(b, b';' | b'?' | b'/') {
            c |= PASSWORD;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static URI_CLASS: [u8; 256] = uri_class();

/// The user part: plus `user-unreserved` (and UTF-8, tolerated); ':' is split off by the caller.
#[inline(always)]
fn user_byte_ok(b: u8) -> bool {
    URI_CLASS[b as usize] & USER != 0
}

/// `paramchar`: plus `param-unreserved`.
#[inline(always)]
fn param_byte_ok(b: u8) -> bool {
    URI_CLASS[b as usize] & PARAM != 0
}

/// `hname` / `hvalue`: plus `hnv-unreserved`.
#[inline(always)]
fn header_byte_ok(b: u8) -> bool {
    URI_CLASS[b as usize] & HEADER != 0
}

impl<'a> SipUri<'a> {
    /// Parses a `sip:` or `sips:` URI.
    pub fn parse(s: &'a str) -> Result<SipUri<'a>, UriError> {
        match Uri::parse(s)? {
            Uri::Sip(u) => Ok(u),
            _ => Err(UriError::BadScheme),
        }
    }

    /// One pass over the common shapes of a SIP URI (RFC 3261 §19.1.1): `[user[:password]@]`
    /// an IPv4 address or a domain name, an optional port and `;params`. Anything else (IPv6
    /// references, `?headers`, any byte the grammar refuses) gives `None` and is left to
    /// [`SipUri::parse_rest`], which decides and names the error; whenever this returns a URI,
    /// it is the one `parse_rest` returns.
    ///
    /// `CHECK` only makes [`Uri::check`]'s copy its own function, so that each copy has one
    /// caller and is inlined there as the parser's always was.
    fn parse_rest_fast<const CHECK: bool>(
        raw: &'a str,
        secure: bool,
        rest: &'a str,
    ) -> Option<SipUri<'a>> {
        let b = rest.as_bytes();
        let n = b.len();
        // userinfo: user bytes up to '@' or ':'; the password up to '@'.
        let mut i = 0;
        while i < n && URI_CLASS[b[i] as usize] & USER != 0 {
            i += 1;
        }
        let (mut user, mut password, mut h) = (None, None, 0);
        if i < n && b[i] == b'@' {
            if i == 0 {
                return None;
            }
            user = Some(rest.get(..i)?);
            h = i + 1;
        } else {
            if i < n && b[i] == b':' {
                let u_end = i;
                i += 1;
                while i < n && URI_CLASS[b[i] as usize] & PASSWORD != 0 {
                    i += 1;
                }
                if i < n && b[i] == b'@' {
                    if u_end == 0 {
                        return None;
                    }
                    user = Some(rest.get(..u_end)?);
                    password = Some(rest.get(u_end + 1..i)?);
                    h = i + 1;
                }
            }
            // No userinfo, unless an '@' further on makes the bytes before it a bad one.
            if h == 0 && i < n && crate::text::find_byte(b'@', &b[i..]).is_some() {
                return None;
            }
        }
        let hp = scan_hostport::<CHECK>(b, h)?;
        let (port, j) = (hp.port, hp.end);
        let host_raw = rest.get(h..j)?;
        let host = hp.host(rest, h)?;
        let params = if j < n {
            if b[j] != b';' {
                return None;
            }
            // `name[=value]` of paramchars, separated by ';'; '?headers' go the long way.
            let mut k = j + 1;
            loop {
                let start = k;
                while k < n && URI_CLASS[b[k] as usize] & PARAM != 0 {
                    k += 1;
                }
                if k == start {
                    return None;
                }
                if k < n && b[k] == b'=' {
                    k += 1;
                    let v = k;
                    while k < n && URI_CLASS[b[k] as usize] & PARAM != 0 {
                        k += 1;
                    }
                    if k == v {
                        return None;
                    }
                }
                if k == n {
                    break;
                }
                if b[k] != b';' {
                    return None;
                }
                k += 1;
            }
            rest.get(j + 1..)?
        } else {
            ""
        };
        Some(SipUri {
            raw,
            secure,
            user,
            password,
            host,
            host_raw,
            port,
            params: Params::new(params),
            headers: None,
        })
    }

    fn parse_rest(raw: &'a str, secure: bool, rest: &'a str) -> Result<SipUri<'a>, UriError> {
        // userinfo ends at the first '@': neither user nor password may hold an unescaped '@',
        // while the user part may hold ';', '?', '/' and ',' (RFC 4475 `intmeth`, `semiuri`).
        let (userinfo, after) = match rest.bytes().position(|b| b == b'@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                let (u, p) = match crate::text::split_byte(ui, b':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (ui, None),
                };
                if u.is_empty() || !u.bytes().all(user_byte_ok) {
                    return Err(UriError::BadCharacter);
                }
                if let Some(p) = p {
                    if !p
                        .bytes()
                        .all(|b| user_byte_ok(b) && b != b';' && b != b'?' && b != b'/')
                    {
                        return Err(UriError::BadCharacter);
                    }
                }
                (Some(u), p)
            }
        };
        let (before_headers, headers) = match crate::text::split_byte(after, b'?') {
            Some((a, h)) => (a, Some(h)),
            None => (after, None),
        };
        let (hostport, params) = match crate::text::split_byte(before_headers, b';') {
            Some((h, p)) => (h, p),
            None => (before_headers, ""),
        };
        let (host, port) = split_hostport(hostport)?;
        if !params.is_empty()
            && !params.split(';').all(|p| {
                let (n, v) = match crate::text::split_byte(p, b'=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (p, None),
                };
                !n.is_empty()
                    && n.bytes().all(param_byte_ok)
                    && v.is_none_or(|v| !v.is_empty() && v.bytes().all(param_byte_ok))
            })
        {
            return Err(UriError::BadParam);
        }
        if let Some(h) = headers {
            if h.is_empty()
                || !h
                    .split('&')
                    .all(|kv| match crate::text::split_byte(kv, b'=') {
                        Some((k, v)) => {
                            !k.is_empty()
                                && k.bytes().all(header_byte_ok)
                                && v.bytes().all(header_byte_ok)
                        }
                        None => false,
                    })
            {
                return Err(UriError::BadHeaders);
            }
        }
        Ok(SipUri {
            raw,
            secure,
            user,
            password,
            host,
            host_raw: hostport,
            port,
            params: Params::new(params),
            headers,
        })
    }

    /// The URI as written.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }
    /// Whether the scheme is `sips`.
    pub fn is_secure(&self) -> bool {
        self.secure
    }
    /// The user part as written (escapes kept).
    pub fn user(&self) -> Option<&'a str> {
        self.user
    }
    /// The user part with `%HH` escapes resolved (§19.1.2); may hold any byte, even NUL.
    pub fn user_decoded(&self) -> Option<Cow<'a, [u8]>> {
        self.user.map(percent_decode)
    }
    /// The password as written (its use is NOT RECOMMENDED, §19.1.1).
    pub fn password(&self) -> Option<&'a str> {
        self.password
    }
    /// The host.
    pub fn host(&self) -> Host<'a> {
        self.host
    }
    /// `host[:port]` as written.
    pub fn host_port(&self) -> &'a str {
        self.host_raw
    }
    /// The explicit port, if any (§19.1.4: an absent port is not equal to 5060).
    pub fn port(&self) -> Option<u16> {
        self.port
    }
    /// The URI parameters (`transport`, `user`, `method`, `ttl`, `maddr`, `lr`, ...).
    pub fn params(&self) -> Params<'a> {
        self.params
    }
    /// The raw `?headers` part without the `?`.
    pub fn headers(&self) -> Option<&'a str> {
        self.headers
    }
    /// The `?headers` as `(name, value)` pairs, escapes kept.
    pub fn header_pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.headers
            .into_iter()
            .flat_map(|h| h.split('&'))
            .filter_map(|kv| crate::text::split_byte(kv, b'='))
    }
    /// The `transport` parameter.
    pub fn transport(&self) -> Option<&'a str> {
        self.params.value("transport")
    }
    /// Whether the `lr` parameter is present (loose routing, §16.12).
    pub fn is_loose_route(&self) -> bool {
        self.params.contains("lr")
    }

    /// Equality per RFC 3261 §19.1.4: user and password compared case-sensitively after
    /// unescaping, host case-insensitively, ports only equal when both absent or both equal,
    /// `user`/`ttl`/`method`/`maddr`/`transport` must agree when present in either, other
    /// parameters only when present in both, and all `?headers` must agree.
    pub fn rfc_eq(&self, other: &SipUri<'_>) -> bool {
        if self.secure != other.secure
            || self.user.map(percent_decode) != other.user.map(percent_decode)
            || self.password.map(percent_decode) != other.password.map(percent_decode)
            || !self.host.eq_host(&other.host)
            || self.port != other.port
        {
            return false;
        }
        let decoded = |v: Option<&str>| v.map(|v| percent_decode(v).to_ascii_lowercase());
        for special in ["user", "ttl", "method", "maddr", "transport"] {
            let a = self.params.get(special).map(decoded);
            let b = other.params.get(special).map(decoded);
            if a != b {
                return false;
            }
        }
        // A name given twice counts once, with its first value, on both sides.
        for p in self.params.iter() {
            if let (Some(mine), Some(v)) = (self.params.get(p.name), other.params.get(p.name)) {
                if decoded(mine) != decoded(v) {
                    return false;
                }
            }
        }
        let mut mine: Vec<_> = self
            .header_pairs()
            .map(|(k, v)| (percent_decode(k).to_ascii_lowercase(), percent_decode(v)))
            .collect();
        let mut theirs: Vec<_> = other
            .header_pairs()
            .map(|(k, v)| (percent_decode(k).to_ascii_lowercase(), percent_decode(v)))
            .collect();
        mine.sort();
        theirs.sort();
        mine == theirs
    }
}

impl fmt::Display for SipUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw)
    }
}

/// A `tel:` URI (RFC 3966 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelUri<'a> {
    raw: &'a str,
    number: &'a str,
    params: Params<'a>,
}

impl<'a> TelUri<'a> {
    fn parse_rest(raw: &'a str, rest: &'a str) -> Result<TelUri<'a>, UriError> {
        let (number, params) = match crate::text::split_byte(rest, b';') {
            Some((n, p)) => (n, p),
            None => (rest, ""),
        };
        let digits = number.strip_prefix('+').unwrap_or(number);
        if digits.is_empty()
            || !digits.bytes().all(|b| {
                b.is_ascii_hexdigit() || matches!(b, b'*' | b'#' | b'-' | b'.' | b'(' | b')')
            })
            || !digits
                .bytes()
                .any(|b| b.is_ascii_hexdigit() || b == b'*' || b == b'#')
        {
            return Err(UriError::BadNumber);
        }
        if !params.is_empty() && Splitter::new(params, b';').any(|p| p.is_empty()) {
            return Err(UriError::BadParam);
        }
        Ok(TelUri {
            raw,
            number,
            params: Params::new(params),
        })
    }

    /// The number as written, with visual separators.
    pub fn number(&self) -> &'a str {
        self.number
    }
    /// Whether the number is global (`+` and E.164 digits, RFC 3966 §5.1.4).
    pub fn is_global(&self) -> bool {
        self.number.starts_with('+')
    }
    /// The parameters (`phone-context`, `ext`, `isub`, ...).
    pub fn params(&self) -> Params<'a> {
        self.params
    }

    /// Equality per RFC 3966 §4: numbers compared without visual separators, parameters as a
    /// set, names case-insensitively.
    pub fn rfc_eq(&self, other: &TelUri<'_>) -> bool {
        let digits = |n: &str| -> String {
            n.chars()
                .filter(|c| !matches!(c, '-' | '.' | '(' | ')'))
                .map(|c| c.to_ascii_lowercase())
                .collect()
        };
        if digits(self.number) != digits(other.number) {
            return false;
        }
        let set = |p: Params<'_>| -> Vec<(String, Option<String>)> {
            let mut v: Vec<_> = p
                .iter()
                .map(|x| {
                    (
                        x.name.to_ascii_lowercase(),
                        x.value.map(|v| v.to_ascii_lowercase()),
                    )
                })
                .collect();
            v.sort();
            v
        };
        set(self.params) == set(other.params)
    }
}

/// A URI of a scheme Parrot does not interpret, kept as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbsoluteUri<'a> {
    raw: &'a str,
    scheme: &'a str,
    rest: &'a str,
}

impl<'a> AbsoluteUri<'a> {
    /// The scheme.
    pub fn scheme(&self) -> &'a str {
        self.scheme
    }
    /// Everything after `scheme:`.
    pub fn rest(&self) -> &'a str {
        self.rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_sip_uri() {
        let u = SipUri::parse("sips:alice:pw@[2001:db8::1]:5061;transport=tls;lr?Subject=hi&x=y")
            .unwrap();
        assert!(u.is_secure());
        assert_eq!(u.user(), Some("alice"));
        assert_eq!(u.password(), Some("pw"));
        assert_eq!(u.host(), Host::Ipv6("2001:db8::1"));
        assert_eq!(u.port(), Some(5061));
        assert_eq!(u.transport(), Some("tls"));
        assert!(u.is_loose_route());
        assert_eq!(u.header_pairs().count(), 2);
    }

    #[test]
    fn unbracketed_ipv6_is_rejected() {
        assert!(Uri::parse("sip:2001:db8::10").is_err());
    }

    #[test]
    fn port_inside_brackets_is_part_of_the_address() {
        let u = SipUri::parse("sip:[2001:db8::10:5070]").unwrap();
        assert_eq!(u.port(), None);
        assert_eq!(u.host(), Host::Ipv6("2001:db8::10:5070"));
    }

    #[test]
    fn comparison_follows_19_1_4_examples() {
        let eq = |a: &str, b: &str| Uri::parse(a).unwrap().rfc_eq(&Uri::parse(b).unwrap());
        assert!(eq(
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=tcp"
        ));
        assert!(eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com;newparam=5"
        ));
        assert!(eq(
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"
        ));
        assert!(eq(
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x"
        ));
        assert!(!eq(
            "SIP:ALICE@AtLanTa.CoM;Transport=udp",
            "sip:alice@AtLanTa.CoM;Transport=UDP"
        ));
        assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
        assert!(!eq(
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com;transport=udp"
        ));
        assert!(!eq(
            "sip:carol@chicago.com;security=on",
            "sip:carol@chicago.com;security=off"
        ));
        assert!(!eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com?Subject=next%20meeting"
        ));
    }

    #[test]
    fn tel_uris_compare_without_separators() {
        let a = Uri::parse("tel:+1-201-555-0123").unwrap();
        let b = Uri::parse("tel:+12015550123").unwrap();
        assert!(a.rfc_eq(&b));
        assert!(Uri::parse("tel:").is_err());
    }

    #[test]
    fn other_schemes_stay_opaque() {
        let u = Uri::parse("nobodyKnowsThisScheme:totallyopaquecontent").unwrap();
        assert!(matches!(u, Uri::Absolute(a) if a.scheme() == "nobodyKnowsThisScheme"));
    }
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;
    use proptest::prelude::*;

    /// Pieces that meet at every boundary the grammar cares about.
    const PIECES: &[&str] = &[
        "alice",
        "a%41",
        "%",
        "@",
        ":",
        "pw",
        "127.0.0.1",
        "10.0.0",
        "1.2.3.4.5",
        "256",
        "0",
        "01",
        "example.com",
        "EXAMPLE",
        "-x",
        ".",
        "_",
        "[",
        "]",
        "2001:db8::1",
        ";",
        "transport=udp",
        "lr",
        "=",
        "?",
        "&",
        "h=v",
        "5060",
        "65535",
        "65536",
        "000005060",
        "99999",
        " ",
        "<",
        "/",
        ",",
        "$",
        "+",
        "é",
        "\t",
        "Transport=TCP",
        "maddr=[::1]",
    ];

    fn uri_text() -> impl Strategy<Value = String> {
        let scheme = prop::sample::select(vec!["sip:", "SIP:", "sips:", "SiPs:", "sip", "tel:"]);
        let pieces = prop::collection::vec(prop::sample::select(PIECES), 0..10);
        (scheme, pieces).prop_map(|(s, p)| format!("{s}{}", p.concat()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// The one-pass scanner never disagrees with the grammar read part by part: same URI
        /// when both accept, and when the scanner declines the general parser decides.
        #[test]
        fn sip_uri_scan_agrees_with_part_by_part_grammar(s in uri_text()) {
            prop_assert_eq!(Uri::parse(&s), Uri::parse_general(&s));
        }

        /// The check without a URI made answers as the parser: valid or the same error, and
        /// the same scheme and `?headers` presence.
        #[test]
        fn uri_check_agrees_with_parser(s in uri_text()) {
            let parsed = Uri::parse(&s).map(|u| UriCheck {
                scheme: u.scheme(),
                sip_headers: u.as_sip().is_some_and(|u| u.headers().is_some()),
            });
            prop_assert_eq!(Uri::check(&s), parsed);
        }
    }

    #[test]
    fn sip_uri_scan_handles_common_and_edge_shapes() {
        for s in [
            "sip:alice@127.0.0.1:5060;transport=udp",
            "sip:alice:secret@example.com;lr",
            "sip:127.0.0.1",
            "sip:example.com:5060",
            "sips:a%20b@host;maddr=10.0.0.1;ttl=1",
            "sip:user;x=y?z@host",
            "sip:1.2.3.4a",
            "sip:01.2.3.4",
            "sip:1.2.3.256",
            "sip:host:65536",
            "sip:host:0005060",
            "sip:host;lr=",
            "sip:host;=x",
            "sip:host;;lr",
            "sip:[::1]:5060",
            "sip:host?subject=x",
            "sip::pw@host",
            "sip:@host",
            "sip:a@b@c",
            "sip:host:",
            "sip:-host",
            "sip:123",
        ] {
            assert_eq!(Uri::parse(s), Uri::parse_general(s), "{s}");
        }
        let u = SipUri::parse("sip:alice@127.0.0.1:5060;transport=udp").unwrap();
        assert_eq!(u.host(), Host::Ipv4(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(u.port(), Some(5060));
        assert_eq!(u.host_port(), "127.0.0.1:5060");
        assert_eq!(u.transport(), Some("udp"));
    }
}

#[cfg(test)]
mod ipv4_tests {
    use super::parse_ipv4;

    #[test]
    fn ipv4_literals_parse_like_std() {
        for s in [
            "0.0.0.0",
            "10.0.0.1",
            "255.255.255.255",
            "1.2.3.4",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            ".1.2.3",
            "1.2.3.",
            "0001.2.3.4",
            "1.2.3.4a",
            "",
            "...",
        ] {
            assert_eq!(parse_ipv4(s), s.parse().ok(), "{s}");
        }
        // std refuses leading zeros; up to three digits pass (RFC 3261 IPv4address).
        assert_eq!(
            parse_ipv4("01.2.3.4"),
            Some(std::net::Ipv4Addr::new(1, 2, 3, 4))
        );
    }
}
