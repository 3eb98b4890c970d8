//! The offer/answer model (RFC 3264): creating offers (§5), answering them (§6) with the m-line
//! count and order kept and rejected streams at port 0, processing answers (§7), and modifying a
//! session (§8): hold and resume through re-offers with `sendonly`/`inactive` (§8.4) and the `o=`
//! version bumped on every change.
//!
//! One audio stream is negotiated: the first acceptable `m=audio` line. Further streams, non-RTP
//! or secure profiles this crate cannot terminate are rejected, never dropped.

use super::{
    Attribute, AttributeList, Connection, Direction, MediaDescription, Origin, SessionDescription,
    Timing,
};
use crate::codec::Codec;
use core::net::{IpAddr, SocketAddr};

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
    /// The default policy: offered codecs that we support, in our preference order.
    #[must_use]
    pub fn default_for(offered: &[Codec], supported: &[Codec]) -> Self {
        let v: Vec<Codec> = supported
            .iter()
            .copied()
            .filter(|c| offered.contains(c))
            .collect();
        if v.is_empty() {
            CodecChoice::NoCommonCodec
        } else {
            CodecChoice::Ordered(v)
        }
    }

    fn into_list(self) -> Vec<Codec> {
        match self {
            CodecChoice::One(c) => vec![c],
            CodecChoice::Ordered(v) => v,
            CodecChoice::NoCommonCodec => Vec::new(),
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
    /// Codecs we can use, most preferred first.
    pub codecs: Vec<Codec>,
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
    /// Codecs with the payload types to use, preferred (sending) codec first.
    pub codecs: Vec<(Codec, u8)>,
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
    let Some(m) = sd.media.get(i) else {
        return (None, None);
    };
    let ip = sd.media_connection(i).and_then(Connection::ip);
    let rtp = ip.map(|ip| SocketAddr::new(ip, m.port));
    let rtcp = if mux {
        rtp
    } else if let Some(a) = m.rtcp() {
        a.connection
            .as_ref()
            .and_then(Connection::ip)
            .or(ip)
            .map(|ip| SocketAddr::new(ip, a.port))
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
    for &c in &local.codecs {
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
        for c in &local.codecs {
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
    mut choose: impl FnMut(&[Codec], &[Codec]) -> CodecChoice,
) -> Result<(SessionDescription, NegotiatedMedia), NegotiationError> {
    let mut sd = skeleton(origin, local.address);
    let mut negotiated = None;
    for (i, m) in offer.media.iter().enumerate() {
        let mut answer = MediaDescription {
            media: m.media.clone(),
            port: 0,
            num_ports: None,
            proto: m.proto.clone(),
            formats: m.formats.clone(),
            information: None,
            connections: Vec::new(),
            bandwidths: Vec::new(),
            key: None,
            attributes: Vec::new(),
        };
        if negotiated.is_none() && m.media == "audio" && m.port != 0 && is_rtp_avp(&m.proto) {
            let offered_pts: Vec<(Codec, u8)> = m
                .payload_types()
                .filter_map(|pt| codec_for_pt(m, pt).map(|c| (c, pt)))
                .collect();
            let offered: Vec<Codec> = offered_pts.iter().map(|(c, _)| *c).collect();
            let chosen = choose(&offered, &local.codecs).into_list();
            let codecs: Vec<(Codec, u8)> = chosen
                .into_iter()
                .filter(|c| local.codecs.contains(c))
                .filter_map(|c| offered_pts.iter().find(|(o, _)| *o == c).copied())
                .collect();
            if let Some(&(first, _)) = codecs.first() {
                let mux = local.rtcp_mux && m.rtcp_mux();
                let te = if local.telephone_event {
                    telephone_event_pt(m, first.clock_rate())
                } else {
                    None
                };
                let direction = offer.media_direction(i).answer(wish);
                answer.port = local.rtp_port;
                answer.formats = codecs.iter().map(|(_, pt)| pt.to_string()).collect();
                for &(c, pt) in &codecs {
                    answer.attributes.push(rtpmap_attr(c, pt));
                }
                if let Some(pt) = te {
                    answer.formats.push(pt.to_string());
                    answer.attributes.push(Attribute::value(
                        "rtpmap",
                        format!("{pt} telephone-event/{}", first.clock_rate()),
                    ));
                    let events = m.fmtp(pt).unwrap_or("0-15");
                    answer
                        .attributes
                        .push(Attribute::value("fmtp", format!("{pt} {events}")));
                }
                let ptime = m.ptime().or_else(|| offer.ptime()).unwrap_or(local.ptime);
                answer
                    .attributes
                    .push(Attribute::value("ptime", ptime.to_string()));
                if mux {
                    answer.attributes.push(Attribute::flag("rtcp-mux"));
                }
                answer.attributes.push(Attribute::flag(direction.as_str()));
                let (remote_rtp, remote_rtcp) = remote_addrs(offer, i, mux);
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
        sd.media.push(answer);
    }
    let n = negotiated.ok_or(NegotiationError::NoAcceptableStream)?;
    Ok((sd, n))
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
        let codecs: Vec<(Codec, u8)> = a
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
            codecs: vec![Codec::Pcmu, Codec::Pcma],
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
        assert_eq!(neg.codecs, vec![(Codec::Pcmu, 0), (Codec::Pcma, 8)]);
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
        assert_eq!(neg.codecs, vec![(Codec::Pcma, 8)]);
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
