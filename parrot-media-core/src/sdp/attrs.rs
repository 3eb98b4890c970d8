//! Attribute lookups (RFC 8866 §6) shared by owned and borrowed descriptions, so both read
//! `a=rtpmap`, `a=fmtp`, `a=ptime`, the direction and `a=rtcp` the same way.

use super::view::AttributeView;
use super::{Attribute, Direction, RtpMap};
use crate::text::{split_once_byte, SplitByte};

/// An `a=` line, owned or borrowed.
pub(crate) trait AttrLike {
    /// The attribute name.
    fn name(&self) -> &str;
    /// The value after the first colon.
    fn value(&self) -> Option<&str>;
}

impl AttrLike for Attribute {
    fn name(&self) -> &str {
        &self.name
    }
    fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }
}

impl AttrLike for AttributeView<'_> {
    fn name(&self) -> &str {
        self.name
    }
    fn value(&self) -> Option<&str> {
        self.value
    }
}

/// The value of the first attribute called `name`; `Some(None)` for a flag.
pub(crate) fn attribute<'a, A: AttrLike>(attrs: &'a [A], name: &str) -> Option<Option<&'a str>> {
    attrs.iter().find(|a| a.name() == name).map(|a| a.value())
}

/// Whether a flag or value attribute `name` is present.
pub(crate) fn has_attribute<A: AttrLike>(attrs: &[A], name: &str) -> bool {
    attrs.iter().any(|a| a.name() == name)
}

/// All `a=rtpmap` lines that parse (RFC 8866 §6.6).
pub(crate) fn rtpmaps<A: AttrLike>(attrs: &[A]) -> impl Iterator<Item = RtpMap<'_>> {
    attrs
        .iter()
        .filter(|a| a.name() == "rtpmap")
        .filter_map(|a| super::parse_rtpmap(a.value()?))
}

/// The `a=rtpmap` for a payload type.
pub(crate) fn rtpmap<A: AttrLike>(attrs: &[A], pt: u8) -> Option<RtpMap<'_>> {
    rtpmaps(attrs).find(|m| m.payload_type == pt)
}

/// The `a=fmtp` parameters for a payload type (RFC 8866 §6.15).
pub(crate) fn fmtp<A: AttrLike>(attrs: &[A], pt: u8) -> Option<&str> {
    attrs.iter().filter(|a| a.name() == "fmtp").find_map(|a| {
        let v = a.value()?;
        let (p, rest) = split_once_byte(v, b' ').unwrap_or((v, ""));
        (p.parse::<u8>().ok()? == pt).then_some(rest)
    })
}

/// `a=ptime` in milliseconds (RFC 8866 §6.4).
pub(crate) fn ptime<A: AttrLike>(attrs: &[A]) -> Option<u32> {
    super::parse_ms(attribute(attrs, "ptime")??)
}

/// The direction attribute present, if any (RFC 8866 §6.7).
pub(crate) fn direction<A: AttrLike>(attrs: &[A]) -> Option<Direction> {
    attrs.iter().find_map(|a| {
        if a.value().is_none() {
            Direction::from_attribute(a.name())
        } else {
            None
        }
    })
}

/// The connection part of `a=rtcp`: network type, address type and address.
pub(crate) type RtcpConnection<'a> = (&'a str, &'a str, &'a str);

/// `a=rtcp` (RFC 3605): the port and, when all three are given, the connection part.
pub(crate) fn rtcp<A: AttrLike>(attrs: &[A]) -> Option<(u16, Option<RtcpConnection<'_>>)> {
    let v = attribute(attrs, "rtcp")??;
    let mut it = SplitByte::new(v, b' ');
    let port = it.next()?.parse().ok()?;
    let connection = match (it.next(), it.next(), it.next()) {
        (Some(n), Some(t), Some(a)) => Some((n, t, a)),
        _ => None,
    };
    Some((port, connection))
}
