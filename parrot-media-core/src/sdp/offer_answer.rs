//! The offer/answer model (RFC 3264): creating offers (§5), answering them (§6) with the m-line
//! count and order kept and rejected streams at port 0, processing answers (§7), and modifying a
//! session (§8): hold and resume through re-offers with `sendonly`/`inactive` (§8.4) and the `o=`
//! version bumped on every change.
//!
//! One audio stream is negotiated: the first acceptable `m=audio` line. Further streams, non-RTP
//! or secure profiles this crate cannot terminate are rejected, never dropped.

use super::view::{MediaView, SdpView};
use super::RtpMap;
use super::{
    attrs, Attribute, AttributeList, Connection, Direction, MediaDescription, Origin,
    SessionDescription, Timing,
};
use crate::codec::Codec;
use core::net::{IpAddr, SocketAddr};
use smallvec::SmallVec;
use std::borrow::Cow;

/// The handler's answer to codec negotiation (Parrot `handle_codec_negotiation`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodecChoice {
    /// Use this codec.
    One(Codec),
    /// Use these codecs, most preferred first.
    Ordered(Vec<Codec>),
    /// Nothing acceptable: the stream is rejected.
    NoCommonCodec,
}

impl CodecChoice {
    /// The default policy: offered codecs that we support, in our preference order (a single
    /// one as [`CodecChoice::One`], the usual answer to a one-codec offer, which allocates
    /// nothing).
    #[must_use]
    pub fn default_for(offered: &[Codec], supported: &[Codec]) -> Self {
        let mut common = supported.iter().copied().filter(|c| offered.contains(c));
        match (common.next(), common.next()) {
            (None, _) => CodecChoice::NoCommonCodec,
            (Some(c), None) => CodecChoice::One(c),
            (Some(a), Some(b)) => {
                let mut v = Vec::with_capacity(supported.len());
                v.extend([a, b]);
                v.extend(common);
                CodecChoice::Ordered(v)
            }
        }
    }

    /// The codecs chosen, most preferred first.
    fn as_slice(&self) -> &[Codec] {
        match self {
            CodecChoice::One(c) => core::slice::from_ref(c),
            CodecChoice::Ordered(v) => v,
            CodecChoice::NoCommonCodec => &[],
        }
    }
}

/// Our side of the negotiation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalMedia {
    /// Address put in `c=` and `o=`.
    pub address: IpAddr,
    /// RTP port in `m=`.
    pub rtp_port: u16,
    /// Codecs we can use, most preferred first (borrowed from a constant for the defaults, so
    /// that a configuration is cloned per call without allocating).
    pub codecs: Cow<'static, [Codec]>,
    /// Whether we offer/accept RFC 4733 `telephone-event`.
    pub telephone_event: bool,
    /// Payload type we use for `telephone-event` in offers.
    pub telephone_event_pt: u8,
    /// Payload type we use for dynamic codecs (Opus) in offers.
    pub dynamic_pt_base: u8,
    /// Packetisation time to ask for, ms.
    pub ptime: u32,
    /// Whether we offer/accept `a=rtcp-mux` (RFC 5761).
    pub rtcp_mux: bool,
}

/// The outcome of a negotiation for the audio stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegotiatedMedia {
    /// Index of the m-line.
    pub media_index: usize,
    /// Codecs with the payload types to use, preferred (sending) codec first (inline for up
    /// to four: a negotiation allocates nothing for them).
    pub codecs: SmallVec<[(Codec, u8); 4]>,
    /// Payload type of `telephone-event`, if both sides have it.
    pub telephone_event_pt: Option<u8>,
    /// Our direction.
    pub direction: Direction,
    /// Where to send RTP.
    pub remote_rtp: Option<SocketAddr>,
    /// Where to send RTCP (the RTP address when muxed, else `a=rtcp` or port + 1, RFC 3605).
    pub remote_rtcp: Option<SocketAddr>,
    /// Whether RTP and RTCP share a port (RFC 5761).
    pub rtcp_mux: bool,
    /// Packetisation time in ms (the peer's `a=ptime`, else ours).
    pub ptime: u32,
}

/// Why a negotiation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NegotiationError {
    /// No audio stream could be accepted (488 Not Acceptable Here).
    NoAcceptableStream,
    /// The answer does not match the offer (m-line count or order, RFC 3264 §6).
    AnswerMismatch,
    /// The answer picked no codec we offered.
    NoCommonCodec,
}

impl core::fmt::Display for NegotiationError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for NegotiationError {}

fn is_rtp_avp(proto: &str) -> bool {
    proto.eq_ignore_ascii_case("RTP/AVP") || proto.eq_ignore_ascii_case("RTP/AVPF")
}

/// The codec a payload type stands for in `m`: its `a=rtpmap`, else the static table.
#[must_use]
pub fn codec_for_pt(m: &MediaDescription, pt: u8) -> Option<Codec> {
    match m.rtpmap(pt) {
        Some(map) => Codec::from_rtpmap(map.encoding_name, map.clock_rate),
        None => Codec::from_static_payload_type(pt),
    }
}

fn telephone_event_pt(m: &MediaDescription, clock: u32) -> Option<u8> {
    m.payload_types().find(|&pt| {
        m.rtpmap(pt).is_some_and(|r| {
            r.encoding_name.eq_ignore_ascii_case("telephone-event") && r.clock_rate == clock
        })
    })
}

/// The RTP payload types of a borrowed m-line, in order; non-numeric formats are skipped.
fn view_payload_types<'m>(m: &'m MediaView<'_>) -> impl Iterator<Item = u8> + 'm {
    m.formats.iter().filter_map(|f| f.parse().ok())
}

/// An m-line's `a=rtpmap` lines that parse, in order, read once.
type RtpMaps<'m> = SmallVec<[RtpMap<'m>; 8]>;

/// The first `a=rtpmap` for `pt`, as [`AttributeList::rtpmap`] finds it.
fn find_rtpmap<'r, 'm>(maps: &'r RtpMaps<'m>, pt: u8) -> Option<&'r RtpMap<'m>> {
    maps.iter().find(|r| r.payload_type == pt)
}

/// [`codec_for_pt`] over an m-line's rtpmaps.
fn view_codec_for_pt(maps: &RtpMaps<'_>, pt: u8) -> Option<Codec> {
    match find_rtpmap(maps, pt) {
        Some(map) => Codec::from_rtpmap(map.encoding_name, map.clock_rate),
        None => Codec::from_static_payload_type(pt),
    }
}

/// [`telephone_event_pt`] on a borrowed m-line.
fn view_telephone_event_pt(m: &MediaView<'_>, maps: &RtpMaps<'_>, clock: u32) -> Option<u8> {
    view_payload_types(m).find(|&pt| {
        find_rtpmap(maps, pt).is_some_and(|r| {
            r.encoding_name.eq_ignore_ascii_case("telephone-event") && r.clock_rate == clock
        })
    })
}

fn rtpmap_attr(codec: Codec, pt: u8) -> Attribute {
    let v = match codec.rtpmap_channels() {
        Some(ch) => format!("{pt} {}/{}/{ch}", codec.encoding_name(), codec.clock_rate()),
        None => format!("{pt} {}/{}", codec.encoding_name(), codec.clock_rate()),
    };
    Attribute::value("rtpmap", v)
}

fn remote_addrs(
    sd: &SessionDescription,
    i: usize,
    mux: bool,
) -> (Option<SocketAddr>, Option<SocketAddr>) {
    remote_addrs_view(&SdpView::of(sd), i, mux)
}

/// Where the peer of m-line `i` receives RTP and RTCP (RFC 3605, RFC 5761).
fn remote_addrs_view(
    sd: &SdpView<'_>,
    i: usize,
    mux: bool,
) -> (Option<SocketAddr>, Option<SocketAddr>) {
    let Some(m) = sd.media.get(i) else {
        return (None, None);
    };
    let ip = sd
        .media_connection(i)
        .and_then(|c| super::connection_ip(c.addr_type, c.address));
    let rtp = ip.map(|ip| SocketAddr::new(ip, m.port));
    let rtcp = if mux {
        rtp
    } else if let Some((port, connection)) = attrs::rtcp(&m.attributes) {
        connection
            .and_then(|(_, t, a)| super::connection_ip(t, a))
            .or(ip)
            .map(|ip| SocketAddr::new(ip, port))
    } else {
        ip.map(|ip| SocketAddr::new(ip, m.port.wrapping_add(1)))
    };
    (rtp, rtcp)
}

fn skeleton(origin: Origin, address: IpAddr) -> SessionDescription {
    SessionDescription {
        origin,
        session_name: "parrot".into(),
        information: None,
        uri: None,
        emails: Vec::new(),
        phones: Vec::new(),
        connection: Some(Connection::for_ip(address)),
        bandwidths: Vec::new(),
        times: vec![Timing {
            start: 0,
            stop: 0,
            repeats: Vec::new(),
        }],
        time_zones: None,
        key: None,
        attributes: Vec::new(),
        media: Vec::new(),
        line_ending: super::LineEnding::CrLf,
    }
}

/// An `o=` line for a new session (RFC 8866 §5.2).
#[must_use]
pub fn new_origin(session_id: u64, address: IpAddr) -> Origin {
    Origin {
        username: "-".into(),
        session_id: session_id.to_string(),
        session_version: session_id & 0xFFFF_FFFF,
        net_type: "IN".into(),
        addr_type: if address.is_ipv4() { "IP4" } else { "IP6" }.into(),
        address: address.to_string(),
    }
}

/// Creates an offer with one audio stream (RFC 3264 §5).
#[must_use]
pub fn create_offer(
    local: &LocalMedia,
    origin: Origin,
    direction: Direction,
) -> SessionDescription {
    let mut sd = skeleton(origin, local.address);
    let mut formats = Vec::new();
    let mut attributes = Vec::new();
    let mut next_dynamic = local.dynamic_pt_base;
    for &c in local.codecs.iter() {
        let pt = c.static_payload_type().unwrap_or_else(|| {
            let pt = next_dynamic;
            next_dynamic += 1;
            pt
        });
        formats.push(pt.to_string());
        attributes.push(rtpmap_attr(c, pt));
    }
    if local.telephone_event {
        // One telephone-event per codec clock rate (RFC 4733 §7.1.1: its rate must match the
        // audio codec's), 8000 Hz first.
        let mut rates: Vec<u32> = vec![8000];
        for c in local.codecs.iter() {
            if !rates.contains(&c.clock_rate()) {
                rates.push(c.clock_rate());
            }
        }
        for (i, rate) in rates.into_iter().enumerate() {
            let pt = local.telephone_event_pt.wrapping_add(i as u8) & 0x7F;
            formats.push(pt.to_string());
            attributes.push(Attribute::value(
                "rtpmap",
                format!("{pt} telephone-event/{rate}"),
            ));
            attributes.push(Attribute::value("fmtp", format!("{pt} 0-16")));
        }
    }
    attributes.push(Attribute::value("ptime", local.ptime.to_string()));
    if local.rtcp_mux {
        attributes.push(Attribute::flag("rtcp-mux"));
    }
    attributes.push(Attribute::flag(direction.as_str()));
    sd.media.push(MediaDescription {
        media: "audio".into(),
        port: local.rtp_port,
        num_ports: None,
        proto: "RTP/AVP".into(),
        formats,
        information: None,
        connections: Vec::new(),
        bandwidths: Vec::new(),
        key: None,
        attributes,
    });
    sd
}

/// Answers `offer` (RFC 3264 §6): same number and order of m-lines, the first acceptable audio
/// stream accepted with the codecs `choose(offered, supported)` returns (payload types as offered,
/// §6.1), `telephone-event` carried over, the direction derived from the offer and `wish`, every
/// other stream rejected with port 0.
pub fn create_answer(
    offer: &SessionDescription,
    local: &LocalMedia,
    origin: Origin,
    wish: Direction,
    choose: impl FnMut(&[Codec], &[Codec]) -> CodecChoice,
) -> Result<(SessionDescription, NegotiatedMedia), NegotiationError> {
    let view = SdpView::of(offer);
    let (plan, neg) = plan_answer(&view, local, wish, choose)?;
    Ok((plan.to_description(origin, local.address, &neg), neg))
}

/// The answer to one offered m-line (RFC 3264 §6): rejected (port 0, the offered formats) or
/// accepted.
#[derive(Debug)]
pub(crate) struct AnswerLine<'v, 'a> {
    /// The offered m-line.
    pub offered: &'v MediaView<'a>,
    /// What we accept of it, if anything.
    pub accepted: Option<Accepted<'v>>,
}

/// The accepted audio stream of an answer; its codecs are [`NegotiatedMedia::codecs`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Accepted<'a> {
    /// Our RTP port.
    pub port: u16,
    /// `telephone-event`: its payload type and the offered events (RFC 4733 §7.1.1).
    pub telephone_event: Option<(u8, &'a str)>,
    /// The sending codec's clock rate (that of `telephone-event`).
    pub clock_rate: u32,
    /// `a=ptime`.
    pub ptime: u32,
    /// Whether `a=rtcp-mux` is answered.
    pub rtcp_mux: bool,
    /// Our direction.
    pub direction: Direction,
}

/// An answer as decided, before it is written out (by [`super::write::answer`]) or built into a
/// [`SessionDescription`].
#[derive(Debug)]
pub(crate) struct AnswerPlan<'v, 'a> {
    /// One per offered m-line, in order.
    pub lines: SmallVec<[AnswerLine<'v, 'a>; 2]>,
}

impl AnswerPlan<'_, '_> {
    /// The answer as a description, with `origin` and our `address` in `c=`.
    pub(crate) fn to_description(
        &self,
        origin: Origin,
        address: IpAddr,
        neg: &NegotiatedMedia,
    ) -> SessionDescription {
        let mut sd = skeleton(origin, address);
        for l in &self.lines {
            let m = l.offered;
            let mut answer = MediaDescription {
                media: m.media.into(),
                port: 0,
                num_ports: None,
                proto: m.proto.into(),
                formats: m.formats.iter().map(|f| String::from(*f)).collect(),
                information: None,
                connections: Vec::new(),
                bandwidths: Vec::new(),
                key: None,
                attributes: Vec::new(),
            };
            if let Some(a) = &l.accepted {
                answer.port = a.port;
                answer.formats = neg.codecs.iter().map(|(_, pt)| pt.to_string()).collect();
                for &(c, pt) in &neg.codecs {
                    answer.attributes.push(rtpmap_attr(c, pt));
                }
                if let Some((pt, events)) = a.telephone_event {
                    answer.formats.push(pt.to_string());
                    answer.attributes.push(Attribute::value(
                        "rtpmap",
                        format!("{pt} telephone-event/{}", a.clock_rate),
                    ));
                    answer
                        .attributes
                        .push(Attribute::value("fmtp", format!("{pt} {events}")));
                }
                answer
                    .attributes
                    .push(Attribute::value("ptime", a.ptime.to_string()));
                if a.rtcp_mux {
                    answer.attributes.push(Attribute::flag("rtcp-mux"));
                }
                answer
                    .attributes
                    .push(Attribute::flag(a.direction.as_str()));
            }
            sd.media.push(answer);
        }
        sd
    }
}

/// Decides the answer to a borrowed offer; see [`create_answer`].
pub(crate) fn plan_answer<'v, 'a>(
    offer: &'v SdpView<'a>,
    local: &LocalMedia,
    wish: Direction,
    mut choose: impl FnMut(&[Codec], &[Codec]) -> CodecChoice,
) -> Result<(AnswerPlan<'v, 'a>, NegotiatedMedia), NegotiationError>
where
    'a: 'v,
{
    let mut lines = SmallVec::with_capacity(offer.media.len());
    let mut negotiated = None;
    for (i, m) in offer.media.iter().enumerate() {
        let mut line = AnswerLine {
            offered: m,
            accepted: None,
        };
        if negotiated.is_none() && m.media == "audio" && m.port != 0 && is_rtp_avp(m.proto) {
            // Pushed one by one: cheaper than collecting into inline storage.
            let mut maps: RtpMaps<'_> = SmallVec::new();
            for map in attrs::rtpmaps(&m.attributes) {
                maps.push(map);
            }
            let mut offered_pts: SmallVec<[(Codec, u8); 8]> = SmallVec::new();
            let mut offered: SmallVec<[Codec; 8]> = SmallVec::new();
            for pt in view_payload_types(m) {
                if let Some(c) = view_codec_for_pt(&maps, pt) {
                    offered_pts.push((c, pt));
                    offered.push(c);
                }
            }
            let choice = choose(&offered, &local.codecs);
            let chosen = choice.as_slice();
            // Sized once (at most one entry per chosen codec) rather than grown on the first push.
            let mut codecs: SmallVec<[(Codec, u8); 4]> = SmallVec::with_capacity(chosen.len());
            for &c in chosen {
                if local.codecs.contains(&c) {
                    if let Some(&p) = offered_pts.iter().find(|(o, _)| *o == c) {
                        codecs.push(p);
                    }
                }
            }
            if let Some(&(first, _)) = codecs.first() {
                let mux = local.rtcp_mux && attrs::has_attribute(&m.attributes, "rtcp-mux");
                let te = if local.telephone_event {
                    view_telephone_event_pt(m, &maps, first.clock_rate())
                } else {
                    None
                };
                let direction = offer.media_direction(i).answer(wish);
                let telephone_event =
                    te.map(|pt| (pt, attrs::fmtp(&m.attributes, pt).unwrap_or("0-15")));
                let ptime = attrs::ptime(&m.attributes)
                    .or_else(|| attrs::ptime(&offer.attributes))
                    .unwrap_or(local.ptime);
                line.accepted = Some(Accepted {
                    port: local.rtp_port,
                    telephone_event,
                    clock_rate: first.clock_rate(),
                    ptime,
                    rtcp_mux: mux,
                    direction,
                });
                let (remote_rtp, remote_rtcp) = remote_addrs_view(offer, i, mux);
                negotiated = Some(NegotiatedMedia {
                    media_index: i,
                    codecs,
                    telephone_event_pt: te,
                    direction,
                    remote_rtp,
                    remote_rtcp,
                    rtcp_mux: mux,
                    ptime,
                });
            }
        }
        lines.push(line);
    }
    let n = negotiated.ok_or(NegotiationError::NoAcceptableStream)?;
    Ok((AnswerPlan { lines }, n))
}

/// Processes the answer to our `offer` (RFC 3264 §7): checks the m-lines match, takes the codecs
/// of the accepted audio stream in the answerer's order with its payload types.
pub fn process_answer(
    offer: &SessionDescription,
    answer: &SessionDescription,
    local: &LocalMedia,
) -> Result<NegotiatedMedia, NegotiationError> {
    if offer.media.len() != answer.media.len()
        || offer
            .media
            .iter()
            .zip(&answer.media)
            .any(|(o, a)| o.media != a.media)
    {
        return Err(NegotiationError::AnswerMismatch);
    }
    for (i, (o, a)) in offer.media.iter().zip(&answer.media).enumerate() {
        if o.media != "audio" || o.port == 0 || a.port == 0 {
            continue;
        }
        let codecs: SmallVec<[(Codec, u8); 4]> = a
            .payload_types()
            .filter_map(|pt| codec_for_pt(a, pt).map(|c| (c, pt)))
            .filter(|(c, _)| local.codecs.contains(c))
            .collect();
        let Some(&(first, _)) = codecs.first() else {
            return Err(NegotiationError::NoCommonCodec);
        };
        let mux = local.rtcp_mux && a.rtcp_mux() && o.rtcp_mux();
        let te = if local.telephone_event {
            telephone_event_pt(a, first.clock_rate())
        } else {
            None
        };
        // Our direction is what we offered, narrowed by what the answerer accepted.
        let theirs = answer.media_direction(i);
        let ours = offer.media_direction(i);
        let direction = Direction::from_flags(
            ours.sends() && theirs.receives(),
            ours.receives() && theirs.sends(),
        );
        let (remote_rtp, remote_rtcp) = remote_addrs(answer, i, mux);
        let ptime = a.ptime().or_else(|| answer.ptime()).unwrap_or(local.ptime);
        return Ok(NegotiatedMedia {
            media_index: i,
            codecs,
            telephone_event_pt: te,
            direction,
            remote_rtp,
            remote_rtcp,
            rtcp_mux: mux,
            ptime,
        });
    }
    Err(NegotiationError::NoAcceptableStream)
}

/// Whether two descriptions differ in anything but the `o=` version (RFC 3264 §8: the version is
/// bumped only when the description changes).
#[must_use]
pub fn differs_ignoring_version(a: &SessionDescription, b: &SessionDescription) -> bool {
    let mut b2 = b.clone();
    b2.origin.session_version = a.origin.session_version;
    *a != b2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> LocalMedia {
        LocalMedia {
            address: "192.0.2.10".parse().unwrap(),
            rtp_port: 40000,
            codecs: vec![Codec::Pcmu, Codec::Pcma].into(),
            telephone_event: true,
            telephone_event_pt: 101,
            dynamic_pt_base: 96,
            ptime: 20,
            rtcp_mux: true,
        }
    }

    const OFFER: &str = "v=0\r\no=alice 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n\
m=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
m=audio 6000 RTP/AVP 8 0 97 18\r\na=rtpmap:97 telephone-event/8000\r\na=fmtp:97 0-16\r\na=sendonly\r\n\
m=audio 7000 RTP/AVP 0\r\n";

    #[test]
    fn answer_keeps_m_line_order_and_rejects_with_port_zero() {
        let offer = SessionDescription::parse(OFFER).unwrap();
        let (ans, neg) = create_answer(
            &offer,
            &local(),
            new_origin(5, local().address),
            Direction::SendRecv,
            CodecChoice::default_for,
        )
        .unwrap();
        assert_eq!(ans.media.len(), 3);
        assert_eq!(ans.media[0].port, 0);
        assert_eq!(ans.media[0].media, "video");
        assert_eq!(ans.media[2].port, 0);
        assert_eq!(ans.media[1].port, 40000);
        // Our preference order (PCMU first), the offerer's payload types, DTMF carried over.
        assert_eq!(ans.media[1].formats, vec!["0", "8", "97"]);
        assert_eq!(&neg.codecs[..], [(Codec::Pcmu, 0), (Codec::Pcma, 8)]);
        assert_eq!(neg.telephone_event_pt, Some(97));
        assert_eq!(ans.media[1].fmtp(97), Some("0-16"));
        // sendonly offer -> recvonly answer.
        assert_eq!(neg.direction, Direction::RecvOnly);
        assert_eq!(ans.media_direction(1), Direction::RecvOnly);
        assert_eq!(neg.remote_rtp, Some("198.51.100.7:6000".parse().unwrap()));
        assert_eq!(neg.remote_rtcp, Some("198.51.100.7:6001".parse().unwrap()));
        assert!(!neg.rtcp_mux);
        // The answer itself parses back.
        assert_eq!(SessionDescription::parse(&ans.to_string()).unwrap(), ans);
    }

    #[test]
    fn handler_choice_of_one_codec_is_honoured_and_no_common_codec_rejects() {
        let offer = SessionDescription::parse(OFFER).unwrap();
        let (_, neg) = create_answer(
            &offer,
            &local(),
            new_origin(5, local().address),
            Direction::SendRecv,
            |_, _| CodecChoice::One(Codec::Pcma),
        )
        .unwrap();
        assert_eq!(&neg.codecs[..], [(Codec::Pcma, 8)]);
        let err = create_answer(
            &offer,
            &local(),
            new_origin(5, local().address),
            Direction::SendRecv,
            |_, _| CodecChoice::NoCommonCodec,
        );
        assert_eq!(err.unwrap_err(), NegotiationError::NoAcceptableStream);
    }

    #[test]
    fn direction_answers_follow_rfc3264() {
        use Direction::*;
        assert_eq!(SendRecv.answer(SendRecv), SendRecv);
        assert_eq!(SendOnly.answer(SendRecv), RecvOnly);
        assert_eq!(RecvOnly.answer(SendRecv), SendOnly);
        assert_eq!(Inactive.answer(SendRecv), Inactive);
        assert_eq!(SendRecv.answer(SendOnly), SendOnly);
        assert_eq!(SendOnly.answer(SendOnly), Inactive);
    }

    #[test]
    fn offer_then_answer_negotiates_dynamic_dtmf_and_mux() {
        let l = local();
        let offer = create_offer(&l, new_origin(9, l.address), Direction::SendRecv);
        let text = offer.to_string();
        assert!(text.contains("m=audio 40000 RTP/AVP 0 8 101\r\n"), "{text}");
        let (answer, neg_b) = create_answer(
            &offer,
            &l,
            new_origin(10, l.address),
            Direction::SendRecv,
            CodecChoice::default_for,
        )
        .unwrap();
        let neg_a = process_answer(&offer, &answer, &l).unwrap();
        assert_eq!(neg_a.codecs[0], (Codec::Pcmu, 0));
        assert_eq!(neg_a.telephone_event_pt, Some(101));
        assert!(neg_a.rtcp_mux && neg_b.rtcp_mux);
        assert_eq!(neg_a.remote_rtcp, neg_a.remote_rtp);
    }

    #[test]
    fn answer_with_different_m_line_count_is_a_mismatch() {
        let l = local();
        let offer = create_offer(&l, new_origin(9, l.address), Direction::SendRecv);
        let mut answer = offer.clone();
        answer.media.push(answer.media[0].clone());
        assert_eq!(
            process_answer(&offer, &answer, &l),
            Err(NegotiationError::AnswerMismatch)
        );
    }
}

#[cfg(test)]
mod answer_writer_tests {
    use super::super::parse::parse_view;
    use super::super::write::{answer, OriginParts};
    use super::*;
    use proptest::prelude::*;

    fn media_line() -> impl Strategy<Value = String> {
        let kind = prop_oneof!["audio", "video", "audio"];
        let proto = prop_oneof!["RTP/AVP", "RTP/AVPF", "RTP/SAVP", "rtp/avp"];
        let fmt = prop_oneof!["0", "8", "9", "18", "96", "97", "100", "101", "x"];
        let attr = prop_oneof![
            "a=rtpmap:(0|8|96|97|100|101) (PCMU|PCMA|opus|telephone-event|G722)/(8000|16000|48000)(/2)?",
            "a=fmtp:(96|100|101)( 0-1[56]| events| )?",
            "a=ptime:(10|20|30|20\\.0|x)",
            "a=(rtcp-mux|sendrecv|sendonly|recvonly|inactive|label:1)",
            "a=rtcp:[0-9]{1,5}( IN IP4 10\\.0\\.0\\.[0-9])?",
            "c=IN (IP4|IP6) (10\\.0\\.0\\.7|2001:db8::7|x)",
        ];
        (
            kind,
            prop_oneof![Just(0u16), 1u16..65535],
            proto,
            proptest::collection::vec(fmt, 1..6),
            proptest::collection::vec(attr, 0..8),
        )
            .prop_map(|(k, port, proto, fmts, attrs)| {
                let mut s = format!("m={k} {port} {proto} {}\r\n", fmts.join(" "));
                // c= goes before a= (RFC 8866 §5).
                let (c, a): (Vec<_>, Vec<_>) = attrs.into_iter().partition(|l| l.starts_with("c="));
                for l in c.iter().take(1).chain(a.iter()) {
                    s.push_str(l);
                    s.push_str("\r\n");
                }
                s
            })
    }

    fn offer() -> impl Strategy<Value = String> {
        (
            proptest::option::of("c=IN IP4 192\\.0\\.2\\.[0-9]"),
            proptest::collection::vec("a=(sendonly|recvonly|inactive|ptime:40|tool:x)", 0..3),
            proptest::collection::vec(media_line(), 1..4),
            any::<bool>(),
        )
            .prop_map(|(c, attrs, media, lf)| {
                let mut s = String::from("v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\n");
                if let Some(c) = c {
                    s.push_str(&c);
                    s.push_str("\r\n");
                }
                s.push_str("t=0 0\r\n");
                for a in attrs {
                    s.push_str(&a);
                    s.push_str("\r\n");
                }
                for m in media {
                    s.push_str(&m);
                }
                if lf {
                    s = s.replace("\r\n", "\n");
                }
                s
            })
    }

    fn local(v6: bool, te: bool, mux: bool) -> LocalMedia {
        LocalMedia {
            address: if v6 {
                "2001:db8::9".parse().unwrap()
            } else {
                "192.0.2.9".parse().unwrap()
            },
            rtp_port: 30000,
            codecs: vec![Codec::Pcmu, Codec::Pcma].into(),
            telephone_event: te,
            telephone_event_pt: 101,
            dynamic_pt_base: 96,
            ptime: 20,
            rtcp_mux: mux,
        }
    }

    proptest! {
        #[test]
        fn default_choice_is_the_offered_codecs_we_support_in_our_order(
            offered in proptest::collection::vec(0usize..4, 0..5),
            supported in proptest::collection::vec(0usize..4, 0..5),
        ) {
            const ALL: [Codec; 4] = [Codec::Pcmu, Codec::Pcma, Codec::G722, Codec::Opus];
            let offered: Vec<Codec> = offered.into_iter().map(|i| ALL[i]).collect();
            let supported: Vec<Codec> = supported.into_iter().map(|i| ALL[i]).collect();
            let want: Vec<Codec> =
                supported.iter().copied().filter(|c| offered.contains(c)).collect();
            let choice = CodecChoice::default_for(&offered, &supported);
            prop_assert_eq!(choice.as_slice(), &want[..]);
            prop_assert_eq!(want.is_empty(), choice == CodecChoice::NoCommonCodec);
        }
    }

    proptest! {
        #[test]
        fn written_answer_is_what_the_answer_description_displays_and_parses_back_to_it(
            offer in offer(), sid: u64, v6: bool, te: bool, mux: bool,
            wish in prop_oneof![Just(Direction::SendRecv), Just(Direction::SendOnly), Just(Direction::RecvOnly)],
        ) {
            let Ok(view) = parse_view(&offer) else { return Ok(()) };
            let local = local(v6, te, mux);
            let choose = |o: &[Codec], s: &[Codec]| CodecChoice::default_for(o, s);
            let Ok((plan, neg)) = plan_answer(&view, &local, wish, choose) else { return Ok(()) };
            let origin = new_origin(sid >> 2, local.address);
            let parts = OriginParts {
                session_id: sid >> 2,
                session_version: origin.session_version,
                address: local.address,
            };
            let mut text = String::new();
            answer(&mut text, parts, &plan, &neg).unwrap();
            let sd = plan.to_description(origin, local.address, &neg);
            prop_assert_eq!(&text, &sd.to_string());
            prop_assert_eq!(&SessionDescription::parse(&text).unwrap(), &sd);
            // The public create_answer (owned offer) decides the same.
            let owned = SessionDescription::parse(&offer).unwrap();
            let (sd2, neg2) = create_answer(&owned, &local, sd.origin.clone(), wish, choose).unwrap();
            prop_assert_eq!(sd2, sd);
            prop_assert_eq!(neg2, neg);
        }

        #[test]
        fn borrowed_parse_accepts_what_parse_accepts(offer in offer(), cut in 0usize..400) {
            let text = &offer[..offer.len().min(cut)];
            match (parse_view(text), SessionDescription::parse(text)) {
                (Ok(v), Ok(sd)) => prop_assert_eq!(v.to_owned(), sd),
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                _ => prop_assert!(false, "parsers disagree"),
            }
        }
    }
}
