//! The SDP writer (RFC 8866 §5 line order): whole descriptions for
//! [`Display`](core::fmt::Display), and answers (RFC 3264 §6) straight from a negotiation plan,
//! without building a [`SessionDescription`]. Lines go out with `write_str`, never through
//! `core::fmt` argument formatting.

use super::offer_answer::{AnswerPlan, NegotiatedMedia};
use super::{Attribute, Connection, LineEnding, SessionDescription};
use core::fmt::{self, Write};
use core::net::IpAddr;

fn u64<W: Write>(w: &mut W, n: u64) -> fmt::Result {
    crate::text::write_u64(w, n)
}

fn ip<W: Write>(w: &mut W, ip: IpAddr) -> fmt::Result {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    w.write_char('.')?;
                }
                crate::text::write_u8(w, octet)?;
            }
            Ok(())
        }
        IpAddr::V6(v6) => write!(w, "{v6}"),
    }
}

/// `<t>=<value><nl>`.
fn line<W: Write>(w: &mut W, t: &str, value: &str, nl: &str) -> fmt::Result {
    w.write_str(t)?;
    w.write_str(value)?;
    w.write_str(nl)
}

fn connection<W: Write>(w: &mut W, c: &Connection, nl: &str) -> fmt::Result {
    w.write_str("c=")?;
    w.write_str(&c.net_type)?;
    w.write_char(' ')?;
    w.write_str(&c.addr_type)?;
    w.write_char(' ')?;
    w.write_str(&c.address)?;
    w.write_str(nl)
}

fn bandwidth<W: Write>(w: &mut W, bwtype: &str, kbps: u64, nl: &str) -> fmt::Result {
    w.write_str("b=")?;
    w.write_str(bwtype)?;
    w.write_char(':')?;
    u64(w, kbps)?;
    w.write_str(nl)
}

fn attr<W: Write>(w: &mut W, name: &str, value: Option<&str>, nl: &str) -> fmt::Result {
    w.write_str("a=")?;
    w.write_str(name)?;
    if let Some(v) = value {
        w.write_char(':')?;
        w.write_str(v)?;
    }
    w.write_str(nl)
}

fn attribute<W: Write>(w: &mut W, a: &Attribute, nl: &str) -> fmt::Result {
    attr(w, &a.name, a.value.as_deref(), nl)
}

/// Writes `sd` in the RFC 8866 §5 order with its own line ending.
pub(crate) fn description<W: Write>(w: &mut W, sd: &SessionDescription) -> fmt::Result {
    let nl = match sd.line_ending {
        LineEnding::CrLf => "\r\n",
        LineEnding::Lf => "\n",
    };
    let o = &sd.origin;
    w.write_str("v=0")?;
    w.write_str(nl)?;
    w.write_str("o=")?;
    for s in [&o.username, &o.session_id] {
        w.write_str(s)?;
        w.write_char(' ')?;
    }
    u64(w, o.session_version)?;
    for s in [&o.net_type, &o.addr_type, &o.address] {
        w.write_char(' ')?;
        w.write_str(s)?;
    }
    w.write_str(nl)?;
    line(w, "s=", &sd.session_name, nl)?;
    if let Some(i) = &sd.information {
        line(w, "i=", i, nl)?;
    }
    if let Some(u) = &sd.uri {
        line(w, "u=", u, nl)?;
    }
    for e in &sd.emails {
        line(w, "e=", e, nl)?;
    }
    for p in &sd.phones {
        line(w, "p=", p, nl)?;
    }
    if let Some(c) = &sd.connection {
        connection(w, c, nl)?;
    }
    for b in &sd.bandwidths {
        bandwidth(w, &b.bwtype, b.bandwidth, nl)?;
    }
    for t in &sd.times {
        w.write_str("t=")?;
        u64(w, t.start)?;
        w.write_char(' ')?;
        u64(w, t.stop)?;
        w.write_str(nl)?;
        for r in &t.repeats {
            line(w, "r=", r, nl)?;
        }
    }
    if let Some(z) = &sd.time_zones {
        line(w, "z=", z, nl)?;
    }
    if let Some(k) = &sd.key {
        line(w, "k=", k, nl)?;
    }
    for a in &sd.attributes {
        attribute(w, a, nl)?;
    }
    for m in &sd.media {
        w.write_str("m=")?;
        w.write_str(&m.media)?;
        w.write_char(' ')?;
        u64(w, u64::from(m.port))?;
        if let Some(n) = m.num_ports {
            w.write_char('/')?;
            u64(w, u64::from(n))?;
        }
        w.write_char(' ')?;
        w.write_str(&m.proto)?;
        for f in &m.formats {
            w.write_char(' ')?;
            w.write_str(f)?;
        }
        w.write_str(nl)?;
        if let Some(i) = &m.information {
            line(w, "i=", i, nl)?;
        }
        for c in &m.connections {
            connection(w, c, nl)?;
        }
        for b in &m.bandwidths {
            bandwidth(w, &b.bwtype, b.bandwidth, nl)?;
        }
        if let Some(k) = &m.key {
            line(w, "k=", k, nl)?;
        }
        for a in &m.attributes {
            attribute(w, a, nl)?;
        }
    }
    Ok(())
}

/// Our `o=` line's variable parts (RFC 8866 §5.2): user `-`, network `IN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OriginParts {
    /// Session id.
    pub session_id: u64,
    /// Session version.
    pub session_version: u64,
    /// Our address, in `o=` and `c=`.
    pub address: IpAddr,
}

/// `<pt> <name>/<rate>[/<channels>]`, an `a=rtpmap` value (RFC 8866 §6.6).
fn rtpmap_value<W: Write>(w: &mut W, pt: u8, name: &str, rate: u32, ch: Option<u8>) -> fmt::Result {
    crate::text::write_u8(w, pt)?;
    w.write_char(' ')?;
    w.write_str(name)?;
    w.write_char('/')?;
    u64(w, u64::from(rate))?;
    if let Some(ch) = ch {
        w.write_char('/')?;
        u64(w, u64::from(ch))?;
    }
    Ok(())
}

/// Writes the answer `plan` stands for, byte for byte what the [`SessionDescription`] built
/// from it (`AnswerPlan::to_description`) displays as.
pub(crate) fn answer(
    w: &mut String,
    origin: OriginParts,
    plan: &AnswerPlan<'_, '_>,
    neg: &NegotiatedMedia,
) -> fmt::Result {
    const NL: &str = "\r\n";
    let addr_type = if origin.address.is_ipv4() {
        "IP4"
    } else {
        "IP6"
    };
    w.write_str("v=0\r\no=- ")?;
    u64(w, origin.session_id)?;
    w.write_char(' ')?;
    u64(w, origin.session_version)?;
    w.write_char(' ')?;
    // `IN IP4 <address>` ends the `o=` line and is the whole `c=` value: written once, copied.
    let start = w.len();
    w.write_str("IN ")?;
    w.write_str(addr_type)?;
    w.write_char(' ')?;
    ip(w, origin.address)?;
    // (`String::extend_from_within` is newer than the crate's MSRV: copy via the stack; the
    // text is at most `IN IP6 ` and 45 characters.)
    let mut again = [0u8; 64];
    let seg = w.as_bytes().get(start..).unwrap_or_default();
    let n = seg.len();
    if let Some(dst) = again.get_mut(..n) {
        dst.copy_from_slice(seg);
        w.write_str("\r\ns=parrot\r\nc=")?;
        w.write_str(core::str::from_utf8(&again[..n]).map_err(|_| fmt::Error)?)?;
    } else {
        w.write_str("\r\ns=parrot\r\nc=IN ")?;
        w.write_str(addr_type)?;
        w.write_char(' ')?;
        ip(w, origin.address)?;
    }
    w.write_str("\r\nt=0 0\r\n")?;
    for l in &plan.lines {
        w.write_str("m=")?;
        w.write_str(l.offered.media)?;
        w.write_char(' ')?;
        u64(w, u64::from(l.accepted.as_ref().map_or(0, |a| a.port)))?;
        w.write_char(' ')?;
        w.write_str(l.offered.proto)?;
        let Some(a) = &l.accepted else {
            for f in &l.offered.formats {
                w.write_char(' ')?;
                w.write_str(f)?;
            }
            w.write_str(NL)?;
            continue;
        };
        for &(_, pt) in &neg.codecs {
            w.write_char(' ')?;
            crate::text::write_u8(w, pt)?;
        }
        if let Some((pt, _)) = a.telephone_event {
            w.write_char(' ')?;
            crate::text::write_u8(w, pt)?;
        }
        w.write_str(NL)?;
        for &(c, pt) in &neg.codecs {
            w.write_str("a=rtpmap:")?;
            rtpmap_value(
                w,
                pt,
                c.encoding_name(),
                c.clock_rate(),
                c.rtpmap_channels(),
            )?;
            w.write_str(NL)?;
        }
        if let Some((pt, events)) = a.telephone_event {
            w.write_str("a=rtpmap:")?;
            rtpmap_value(w, pt, "telephone-event", a.clock_rate, None)?;
            w.write_str("\r\na=fmtp:")?;
            u64(w, u64::from(pt))?;
            w.write_char(' ')?;
            w.write_str(events)?;
            w.write_str(NL)?;
        }
        w.write_str("a=ptime:")?;
        u64(w, u64::from(a.ptime))?;
        w.write_str(NL)?;
        if a.rtcp_mux {
            w.write_str("a=rtcp-mux\r\n")?;
        }
        attr(w, a.direction.as_str(), None, NL)?;
    }
    Ok(())
}
