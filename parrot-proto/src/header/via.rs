//! The Via header (RFC 3261 §20.42, §18.2.1, RFC 3581 `rport`, RFC 5118 IPv6).

use super::params::Params;
use crate::text::{is_token, is_word_ignoring_case, trim_lws};
use crate::uri::{scan_hostport, split_hostport, valid_ipv6ish, Host};
use std::fmt;

/// The magic cookie that marks an RFC 3261 branch (§8.1.1.7).
pub const BRANCH_MAGIC_COOKIE: &str = "z9hG4bK";

/// The transport of a Via (`sent-protocol`'s third part). Unknown tokens are kept
/// (RFC 4475 §3.1.1.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport<'a> {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// SCTP.
    Sctp,
    /// WebSocket (RFC 7118).
    Ws,
    /// Secure WebSocket (RFC 7118).
    Wss,
    /// Any other token.
    Other(&'a str),
}

impl<'a> Transport<'a> {
    /// Classifies a transport token, case-insensitively.
    pub fn from_token(s: &'a str) -> Transport<'a> {
        if s == "UDP" {
            return Transport::Udp; // the common spelling, without the table walk
        }
        let t = [
            ("UDP", Transport::Udp),
            ("TCP", Transport::Tcp),
            ("TLS", Transport::Tls),
            ("SCTP", Transport::Sctp),
            ("WS", Transport::Ws),
            ("WSS", Transport::Wss),
        ];
        t.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(s))
            .map(|(_, v)| *v)
            .unwrap_or(Transport::Other(s))
    }

    /// The token as Parrot writes it.
    pub fn as_str(&self) -> &'a str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Sctp => "SCTP",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
            Transport::Other(s) => s,
        }
    }

    /// Whether the transport is reliable (§17.1.1.2: timers A, E, G and K collapse).
    pub fn is_reliable(&self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

impl fmt::Display for Transport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Via value: `sent-protocol LWS sent-by *( SEMI via-params )`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    /// The protocol name, `SIP`.
    pub protocol: &'a str,
    /// The protocol version, `2.0`.
    pub version: &'a str,
    /// The transport.
    pub transport: Transport<'a>,
    /// The sent-by host.
    pub host: Host<'a>,
    /// The sent-by port, if explicit.
    pub port: Option<u16>,
    /// The via-params.
    pub params: Params<'a>,
}

/// A top Via's validity, `branch` and `rport`, read in one scan ([`Via::plain_summary`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ViaSummary<'a> {
    /// What [`Via::is_valid`] gives.
    pub(crate) valid: bool,
    /// What [`Via::branch`] gives.
    pub(crate) branch: Option<&'a str>,
    /// What [`Via::rport`] gives.
    pub(crate) rport: Option<Option<u16>>,
}

/// Why a Via value did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViaError;

impl<'a> Via<'a> {
    /// Parses one Via value. Linear white space (folding included) is allowed around the `/`
    /// of sent-protocol, before sent-by and around `;` and `=` (RFC 4475 `wsinv`).
    pub fn parse(s: &'a str) -> Result<Via<'a>, ViaError> {
        if let Some(v) = Self::parse_fast(s) {
            return Ok(v);
        }
        Self::parse_general(s)
    }

    /// One pass over the common shape `SIP/2.0/TRANSPORT SP host[:port][;params]` with no other
    /// white space and no IPv6 reference. `None` for anything else, which
    /// [`Via::parse_general`] then decides: whatever this accepts, that accepts alike.
    fn parse_fast(s: &'a str) -> Option<Via<'a>> {
        let b = s.as_bytes();
        let n = b.len();
        if n < 10 || b.get(..8)? != b"SIP/2.0/" || matches!(b[n - 1], b' ' | b'\t' | b'\r' | b'\n')
        {
            return None;
        }
        let mut i = 8;
        while i < n && crate::text::is_token_byte(b[i]) {
            i += 1;
        }
        if i == 8 || i >= n || b[i] != b' ' {
            return None;
        }
        let transport = Transport::from_token(s.get(8..i)?);
        let h = i + 1;
        let hp = scan_hostport::<false>(b, h)?;
        let params = match b.get(hp.end) {
            None => "",
            Some(b';') => s.get(hp.end + 1..)?,
            Some(_) => return None,
        };
        Some(Via {
            protocol: s.get(..3)?,
            version: s.get(4..7)?,
            transport,
            host: hp.host(s, h)?,
            port: hp.port,
            params: Params::new(params),
        })
    }

    /// [`Via::parse`] part by part, white space allowed wherever RFC 3261 §25.1 allows it.
    fn parse_general(s: &'a str) -> Result<Via<'a>, ViaError> {
        let s = trim_lws(s);
        let (protocol, rest) = crate::text::split_byte(s, b'/').ok_or(ViaError)?;
        let (version, rest) = crate::text::split_byte(rest, b'/').ok_or(ViaError)?;
        let rest = trim_lws(rest);
        let end = crate::text::find_lws(rest).ok_or(ViaError)?;
        let transport = &rest[..end];
        let rest = trim_lws(&rest[end..]);
        let (sent_by, params) = match crate::text::split_byte(rest, b';') {
            Some((h, p)) => (trim_lws(h), p),
            None => (rest, ""),
        };
        let (protocol, version) = (trim_lws(protocol), trim_lws(version));
        if !is_token(protocol) || !is_token(version) || !is_token(transport) {
            return Err(ViaError);
        }
        let (host, port) = split_hostport(sent_by).map_err(|_| ViaError)?;
        let params = Params::new(params);
        Ok(Via {
            protocol,
            version,
            transport: Transport::from_token(transport),
            host,
            port,
            params,
        })
    }

    /// The `branch` parameter (§8.1.1.7).
    pub fn branch(&self) -> Option<&'a str> {
        self.params.value("branch")
    }

    /// Whether the branch starts with the RFC 3261 magic cookie; otherwise the transaction
    /// layer falls back to RFC 2543 matching (§17.2.3).
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch().is_some_and(|b| {
            b.len() > BRANCH_MAGIC_COOKIE.len() && b.starts_with(BRANCH_MAGIC_COOKIE)
        })
    }

    /// The `received` parameter (§18.2.1). Accepts an IPv6 address with or without brackets
    /// (RFC 5118 §4.5).
    pub fn received(&self) -> Option<&'a str> {
        let v = self.params.value("received")?;
        Some(
            v.strip_prefix('[')
                .and_then(|x| x.strip_suffix(']'))
                .unwrap_or(v),
        )
    }

    /// The `rport` parameter (RFC 3581): `None` if absent, `Some(None)` if requested without a
    /// value, `Some(Some(port))` once filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params.get("rport").map(|v| {
            v.and_then(crate::text::parse_u32)
                .and_then(|p| u16::try_from(p).ok())
        })
    }

    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&'a str> {
        self.params.value("maddr")
    }

    /// The `ttl` parameter (0-255).
    pub fn ttl(&self) -> Option<u8> {
        self.params
            .value("ttl")
            .and_then(crate::text::parse_u32)
            .and_then(|v| u8::try_from(v).ok())
    }

    /// Checks the parameter grammar and the values of the well-known parameters (§25.1 `via-ttl`, `via-received`).
    pub fn is_valid(&self) -> bool {
        if let Some(ok) = self.is_valid_fast() {
            return ok;
        }
        self.is_valid_general()
    }

    /// [`Via::is_valid`] in one scan for parameters without white space or quoted values:
    /// `None` for anything else, which [`Via::is_valid_general`] then decides.
    fn is_valid_fast(&self) -> Option<bool> {
        self.plain_summary().map(|sum| sum.valid)
    }

    /// What a server reads of a request's top Via, in one scan of a plain parameter list (see
    /// [`Via::is_valid`]'s shortcut): whether it is valid, its `branch` and its `rport`, as
    /// [`Via::is_valid`], [`Via::branch`] and [`Via::rport`] give them. `None` for an empty or
    /// not plain list, where each must be asked on its own.
    pub(crate) fn plain_summary(&self) -> Option<ViaSummary<'a>> {
        let s = self.params.as_str();
        if s.is_empty() {
            return None;
        }
        let mut sum = ViaSummary {
            valid: true,
            branch: None,
            rport: None,
        };
        let (mut ttl, mut received, mut branch) = (false, false, false);
        let mut i = 0;
        loop {
            let (name, value, next) = super::params::plain_param_at(s, i)?;
            let ok = match name.len() {
                3 if !ttl && is_word_ignoring_case(name, b"ttl") => {
                    ttl = true;
                    value
                        .and_then(crate::text::parse_u32)
                        .is_some_and(|v| v <= 255)
                }
                8 if !received && is_word_ignoring_case(name, b"received") => {
                    received = true;
                    value.is_none_or(|v| {
                        let r = v
                            .strip_prefix('[')
                            .and_then(|x| x.strip_suffix(']'))
                            .unwrap_or(v);
                        r.parse::<std::net::Ipv4Addr>().is_ok() || valid_ipv6ish(r)
                    })
                }
                5 if sum.rport.is_none() && is_word_ignoring_case(name, b"rport") => {
                    let port = value
                        .map(|v| crate::text::parse_u32(v).and_then(|p| u16::try_from(p).ok()));
                    sum.rport = Some(port.flatten());
                    port.is_none_or(|p| p.is_some())
                }
                6 if !branch && is_word_ignoring_case(name, b"branch") => {
                    branch = true;
                    sum.branch = value;
                    true
                }
                _ => true,
            };
            sum.valid &= ok;
            match next {
                Some(j) => i = j,
                None => return Some(sum),
            }
        }
    }

    /// [`Via::is_valid`] parameter by parameter, white space and quoted strings allowed.
    fn is_valid_general(&self) -> bool {
        // One pass over the parameters; the well-known ones are checked at their first
        // occurrence, which is the one the getters read.
        let (mut ttl, mut received, mut rport) = (false, false, false);
        for p in self.params.iter() {
            if !p.is_valid() {
                return false;
            }
            if !ttl && p.name.eq_ignore_ascii_case("ttl") {
                ttl = true;
                let ok = p
                    .value
                    .and_then(crate::text::parse_u32)
                    .is_some_and(|v| v <= 255);
                if !ok {
                    return false;
                }
            } else if !received && p.name.eq_ignore_ascii_case("received") {
                received = true;
                if let Some(v) = p.value {
                    let r = v
                        .strip_prefix('[')
                        .and_then(|x| x.strip_suffix(']'))
                        .unwrap_or(v);
                    if r.parse::<std::net::Ipv4Addr>().is_err() && !valid_ipv6ish(r) {
                        return false;
                    }
                }
            } else if !rport && p.name.eq_ignore_ascii_case("rport") {
                rport = true;
                if let Some(v) = p.value {
                    if crate::text::parse_u32(v).is_none_or(|p| p > 65535) {
                        return false;
                    }
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PIECES: &[&str] = &[
        "SIP/2.0/",
        "SIP",
        "/",
        "2.0",
        "UDP",
        "tcp",
        "Udp",
        " ",
        "\t",
        "\r\n ",
        "127.0.0.1",
        "1.2.3",
        "example.com",
        "[2001:db8::1]",
        "[",
        ":",
        "5060",
        "70000",
        ";",
        "branch=z9hG4bK1",
        "rport",
        "=",
        "received=10.0.0.1",
        ",",
        "-",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// The one-pass scanner gives the Via the part-by-part parser gives, or declines.
        #[test]
        fn via_scan_agrees_with_part_by_part_grammar(
            p in prop::collection::vec(prop::sample::select(PIECES), 0..10),
            prefix in prop::bool::ANY,
        ) {
            let s = if prefix { format!("SIP/2.0/{}", p.concat()) } else { p.concat() };
            if let Some(v) = Via::parse_fast(&s) {
                prop_assert_eq!(Ok(v), Via::parse_general(&s));
            }
            prop_assert_eq!(Via::parse(&s), Via::parse_general(&s));
        }
    }

    const PARAM_PIECES: &[&str] = &[
        "branch", "=", ";", "z9hG4bK1", "rport", "5060", "70000", "ttl", "1", "256", "received",
        "10.0.0.1", "[::1]", "::1", "host", " ", "\"q\"", "maddr", "TTL", "x", "%", "(",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// The one-scan parameter check gives the parameter-by-parameter answer, or declines.
        #[test]
        fn via_param_check_agrees_with_general_rule(
            p in prop::collection::vec(prop::sample::select(PARAM_PIECES), 0..10),
        ) {
            let raw = format!("SIP/2.0/UDP h;{}", p.concat());
            if let Ok(v) = Via::parse(&raw) {
                if let Some(ok) = v.is_valid_fast() {
                    prop_assert_eq!(ok, v.is_valid_general(), "{}", raw);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// The one-scan summary gives what the check, `branch` and `rport` give, or declines.
        #[test]
        fn via_summary_agrees_with_its_getters(
            p in prop::collection::vec(prop::sample::select(PARAM_PIECES), 0..10),
        ) {
            let raw = format!("SIP/2.0/UDP h;{}", p.concat());
            if let Ok(v) = Via::parse(&raw) {
                if let Some(sum) = v.plain_summary() {
                    let expected = ViaSummary {
                        valid: v.is_valid(),
                        branch: v.branch(),
                        rport: v.rport(),
                    };
                    prop_assert_eq!(sum, expected, "{}", raw);
                }
            }
        }
    }

    #[test]
    fn via_param_check_reads_well_known_values() {
        let ok = |p: &str| {
            Via::parse(&format!("SIP/2.0/UDP h;{p}"))
                .unwrap()
                .is_valid()
        };
        assert!(ok("branch=z9hG4bKa;rport"));
        assert!(ok("branch=z9hG4bKa;rport=5060;received=10.0.0.1"));
        assert!(ok("received=[2001:db8::1];ttl=255"));
        assert!(!ok("ttl=256"));
        assert!(!ok("rport=70000"));
        assert!(!ok("received=host"));
        assert!(ok("ttl=1;ttl=300"), "only the first ttl is read");
        assert!(!ok("branch="));
        assert!(!ok("branch=a;;rport"));
        assert!(ok("branch = z9hG4bKa"));
    }

    #[test]
    fn via_scan_reads_the_common_shapes() {
        for s in [
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabc;rport",
            "SIP/2.0/TCP example.com;branch=z9hG4bKabc",
            "SIP/2.0/tls host:5061",
            "SIP/2.0/UDP 1.2.3.4",
            "SIP/2.0/UDP [::1]:5060;branch=z9hG4bKa",
            "SIP / 2.0 / UDP host;branch=z9hG4bKa",
            "SIP/2.0/UDP  host",
            "SIP/2.0/UDP host ;branch=x",
            "SIP/2.0/UDP host:99999",
            "SIP/2.0/UDP 1.2.3",
        ] {
            if let Some(v) = Via::parse_fast(s) {
                assert_eq!(Ok(v), Via::parse_general(s), "{s}");
            }
            assert_eq!(Via::parse(s), Via::parse_general(s), "{s}");
        }
        let v = Via::parse("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabc;rport").unwrap();
        assert_eq!(v.transport, Transport::Udp);
        assert_eq!(v.host, Host::Ipv4(std::net::Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.branch(), Some("z9hG4bKabc"));
        assert_eq!(v.rport(), Some(None));
        assert!(Via::parse_fast("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabc").is_some());
    }
}
