//! SDP, the Session Description Protocol (RFC 8866, which obsoletes RFC 4566): a typed model that
//! parses every line type and serialises back byte for byte, and the offer/answer model of
//! RFC 3264 on top of it.
//!
//! Design: lines the session machinery understands are typed fields; everything else, including
//! unknown attributes, is kept verbatim in order, so a description round-trips through
//! [`SessionDescription::parse`] and [`Display`](core::fmt::Display) unchanged when it uses the
//! RFC 8866 §5 line order.

mod attrs;
pub mod offer_answer;
mod parse;
pub(crate) mod stored;
pub(crate) mod view;
pub(crate) mod write;

pub(crate) use parse::parse_into;
pub use parse::{SdpError, SdpErrorKind};

use crate::text::{split_once_byte, SplitByte};
use core::fmt;
use core::net::IpAddr;

/// The line terminator a description was written with (RFC 8866 §5 requires CRLF, parsers accept
/// LF alone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LineEnding {
    /// `\r\n`.
    #[default]
    CrLf,
    /// `\n`.
    Lf,
}

/// `o=` (RFC 8866 §5.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// User name, `-` when none.
    pub username: String,
    /// Session id (numeric string).
    pub session_id: String,
    /// Session version; bumped on every change of the description (RFC 3264 §8).
    pub session_version: u64,
    /// Network type, `IN`.
    pub net_type: String,
    /// `IP4` or `IP6`.
    pub addr_type: String,
    /// Unicast address of the originating host.
    pub address: String,
}

/// `c=` (RFC 8866 §5.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// Network type, `IN`.
    pub net_type: String,
    /// `IP4` or `IP6`.
    pub addr_type: String,
    /// Address, verbatim, including any `/ttl/count` suffix.
    pub address: String,
}

impl Connection {
    /// A connection line for `ip`.
    #[must_use]
    pub fn for_ip(ip: IpAddr) -> Self {
        Connection {
            net_type: "IN".into(),
            addr_type: if ip.is_ipv4() { "IP4" } else { "IP6" }.into(),
            address: ip.to_string(),
        }
    }

    /// The address as an IP address, without a multicast `/ttl/count` suffix.
    #[must_use]
    pub fn ip(&self) -> Option<IpAddr> {
        connection_ip(&self.addr_type, &self.address)
    }
}

/// The address of a `c=` line (RFC 8866 §5.7) as an IP address, without a multicast
/// `/ttl/count` suffix, when it matches the address type.
fn connection_ip(addr_type: &str, address: &str) -> Option<IpAddr> {
    // The plain dotted quad of almost every offer without the split or the general parser
    // (`parse_ipv4` takes no `/`).
    let ip: IpAddr = match crate::text::parse_ipv4(address) {
        Some(v4) => IpAddr::V4(v4),
        None => SplitByte::new(address, b'/').next()?.parse().ok()?,
    };
    match (addr_type, ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Some(ip),
        _ => None,
    }
}

/// `b=` (RFC 8866 §5.8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bandwidth {
    /// `CT`, `AS` or an extension type.
    pub bwtype: String,
    /// Kilobits per second (for `CT`/`AS`).
    pub bandwidth: u64,
}

/// `t=` with its `r=` lines (RFC 8866 §5.9, §5.10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Start time (NTP seconds), 0 for unbounded.
    pub start: u64,
    /// Stop time, 0 for unbounded.
    pub stop: u64,
    /// `r=` lines, verbatim.
    pub repeats: Vec<String>,
}

/// `a=` (RFC 8866 §5.13): `a=name` or `a=name:value`, kept verbatim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    /// Attribute name.
    pub name: String,
    /// Value after the first colon, if any.
    pub value: Option<String>,
}

impl Attribute {
    /// A property attribute (`a=name`).
    #[must_use]
    pub fn flag(name: &str) -> Self {
        Attribute {
            name: name.into(),
            value: None,
        }
    }
    /// A value attribute (`a=name:value`).
    #[must_use]
    pub fn value(name: &str, value: impl Into<String>) -> Self {
        Attribute {
            name: name.into(),
            value: Some(value.into()),
        }
    }
}

/// Media direction attributes (RFC 8866 §6.7, RFC 3264 §5.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `a=sendrecv` (the default when none is given).
    #[default]
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// The attribute name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
    /// Parses an attribute name.
    #[must_use]
    pub fn from_attribute(name: &str) -> Option<Self> {
        Some(match name {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }
    /// Whether this side sends.
    #[must_use]
    pub const fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }
    /// Whether this side receives.
    #[must_use]
    pub const fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
    /// The direction with `sends` and `receives` given.
    #[must_use]
    pub const fn from_flags(sends: bool, receives: bool) -> Self {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }
    /// The answer to an offer with this direction from an answerer that wants `wish`
    /// (RFC 3264 §6.1): the answerer may only receive what is sent and send what is received.
    #[must_use]
    pub const fn answer(self, wish: Direction) -> Direction {
        Direction::from_flags(
            self.receives() && wish.sends(),
            self.sends() && wish.receives(),
        )
    }
}

/// `a=rtpmap` (RFC 8866 §6.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpMap<'a> {
    /// Payload type.
    pub payload_type: u8,
    /// Encoding name.
    pub encoding_name: &'a str,
    /// Clock rate.
    pub clock_rate: u32,
    /// Encoding parameters (audio channels).
    pub channels: Option<u32>,
}

/// `a=rtcp` (RFC 3605).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtcpAttribute {
    /// RTCP port.
    pub port: u16,
    /// Optional address.
    pub connection: Option<Connection>,
}

/// Lookups over an attribute list (session or media level).
pub trait AttributeList {
    /// The attributes.
    fn attrs(&self) -> &[Attribute];

    /// The value of the first attribute called `name`; `Some(None)` for a flag.
    fn attribute(&self, name: &str) -> Option<Option<&str>> {
        attrs::attribute(self.attrs(), name)
    }
    /// Whether a flag or value attribute `name` is present.
    fn has_attribute(&self, name: &str) -> bool {
        attrs::has_attribute(self.attrs(), name)
    }
    /// All `a=rtpmap` lines that parse (RFC 8866 §6.6).
    fn rtpmaps(&self) -> impl Iterator<Item = RtpMap<'_>> {
        attrs::rtpmaps(self.attrs())
    }
    /// The `a=rtpmap` for a payload type.
    fn rtpmap(&self, pt: u8) -> Option<RtpMap<'_>> {
        attrs::rtpmap(self.attrs(), pt)
    }
    /// The `a=fmtp` parameters for a payload type (RFC 8866 §6.15).
    fn fmtp(&self, pt: u8) -> Option<&str> {
        attrs::fmtp(self.attrs(), pt)
    }
    /// `a=ptime` in milliseconds (RFC 8866 §6.4).
    fn ptime(&self) -> Option<u32> {
        attrs::ptime(self.attrs())
    }
    /// `a=maxptime` in milliseconds (RFC 8866 §6.5).
    fn maxptime(&self) -> Option<u32> {
        parse_ms(self.attribute("maxptime")??)
    }
    /// The direction attribute present, if any (RFC 8866 §6.7).
    fn direction(&self) -> Option<Direction> {
        attrs::direction(self.attrs())
    }
    /// `a=rtcp` (RFC 3605).
    fn rtcp(&self) -> Option<RtcpAttribute> {
        let (port, connection) = attrs::rtcp(self.attrs())?;
        Some(RtcpAttribute {
            port,
            connection: connection.map(|(n, t, a)| Connection {
                net_type: n.into(),
                addr_type: t.into(),
                address: a.into(),
            }),
        })
    }
    /// `a=rtcp-mux` (RFC 5761 §5.1.1).
    fn rtcp_mux(&self) -> bool {
        self.has_attribute("rtcp-mux")
    }
}

fn parse_ms(v: &str) -> Option<u32> {
    // ptime may be fractional ("20.0"); keep the integer part.
    SplitByte::new(v, b'.').next()?.trim().parse().ok()
}

fn parse_rtpmap(v: &str) -> Option<RtpMap<'_>> {
    let (pt, enc) = split_once_byte(v, b' ')?;
    let mut parts = SplitByte::new(enc.trim(), b'/');
    let encoding_name = parts.next()?;
    let clock_rate = parts.next()?.parse().ok()?;
    let channels = match parts.next() {
        Some(c) => Some(c.parse().ok()?),
        None => None,
    };
    Some(RtpMap {
        payload_type: pt.parse().ok()?,
        encoding_name,
        clock_rate,
        channels,
    })
}

/// An `m=` section (RFC 8866 §5.14) with its lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, `application`...
    pub media: String,
    /// Transport port; 0 rejects the stream (RFC 3264 §6).
    pub port: u16,
    /// `/<number of ports>` if given.
    pub num_ports: Option<u16>,
    /// `RTP/AVP`, `RTP/AVPF`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`...
    pub proto: String,
    /// Formats (payload types for RTP).
    pub formats: Vec<String>,
    /// `i=`.
    pub information: Option<String>,
    /// `c=` lines.
    pub connections: Vec<Connection>,
    /// `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// `k=`.
    pub key: Option<String>,
    /// `a=` lines in order.
    pub attributes: Vec<Attribute>,
}

impl AttributeList for MediaDescription {
    fn attrs(&self) -> &[Attribute] {
        &self.attributes
    }
}

impl MediaDescription {
    /// The RTP payload types in the format list, in order; non-numeric formats are skipped.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse().ok())
    }
    /// Replaces the direction attribute, or appends one.
    pub fn set_direction(&mut self, d: Direction) {
        self.attributes
            .retain(|a| !(a.value.is_none() && Direction::from_attribute(&a.name).is_some()));
        self.attributes.push(Attribute::flag(d.as_str()));
    }
}

/// A session description (RFC 8866 §5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`.
    pub origin: Origin,
    /// `s=`.
    pub session_name: String,
    /// `i=`.
    pub information: Option<String>,
    /// `u=`.
    pub uri: Option<String>,
    /// `e=` lines.
    pub emails: Vec<String>,
    /// `p=` lines.
    pub phones: Vec<String>,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// Session-level `b=`.
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` (with `r=`) lines; at least one on the wire.
    pub times: Vec<Timing>,
    /// `z=`, verbatim.
    pub time_zones: Option<String>,
    /// `k=`.
    pub key: Option<String>,
    /// Session-level `a=` lines in order.
    pub attributes: Vec<Attribute>,
    /// `m=` sections in order.
    pub media: Vec<MediaDescription>,
    /// The terminator used when serialising.
    pub line_ending: LineEnding,
}

impl AttributeList for SessionDescription {
    fn attrs(&self) -> &[Attribute] {
        &self.attributes
    }
}

impl SessionDescription {
    /// Parses a description (RFC 8866 §5). Never panics.
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        parse::parse(text)
    }

    /// The effective direction of media section `i`: its own attribute, else the session-level
    /// one, else `sendrecv` (RFC 8866 §6.7).
    #[must_use]
    pub fn media_direction(&self, i: usize) -> Direction {
        self.media
            .get(i)
            .and_then(|m| m.direction())
            .or_else(|| self.direction())
            .unwrap_or_default()
    }

    /// The effective connection of media section `i`: its first `c=`, else the session `c=`.
    #[must_use]
    pub fn media_connection(&self, i: usize) -> Option<&Connection> {
        self.media
            .get(i)
            .and_then(|m| m.connections.first())
            .or(self.connection.as_ref())
    }
}

impl fmt::Display for SessionDescription {
    /// Serialises in the RFC 8866 §5 order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write::description(f, self)
    }
}
