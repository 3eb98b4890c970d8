//! A borrowed session description: the same lines as [`SessionDescription`] (RFC 8866 §5), as
//! slices of the text they came from. The parser fills one and validates it; an owned
//! description is copied out of it only when one is asked for, so answering an offer
//! (RFC 3264 §6) copies no strings.

use smallvec::SmallVec;

use super::{
    Attribute, Bandwidth, Connection, LineEnding, MediaDescription, Origin, SessionDescription,
    Timing,
};

/// Formats kept inline (more spill to the heap).
pub(crate) type Formats<'a> = SmallVec<[&'a str; 8]>;
/// Attributes of one section kept inline.
pub(crate) type Attributes<'a> = SmallVec<[AttributeView<'a>; 8]>;
/// M-lines kept inline.
pub(crate) type MediaLines<'a> = SmallVec<[MediaView<'a>; 1]>;

/// `o=` (RFC 8866 §5.2), borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OriginView<'a> {
    pub username: &'a str,
    pub session_id: &'a str,
    pub session_version: u64,
    pub net_type: &'a str,
    pub addr_type: &'a str,
    pub address: &'a str,
}

/// `c=` (RFC 8866 §5.7), borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConnectionView<'a> {
    pub net_type: &'a str,
    pub addr_type: &'a str,
    pub address: &'a str,
}

/// `b=` (RFC 8866 §5.8), borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BandwidthView<'a> {
    pub bwtype: &'a str,
    pub bandwidth: u64,
}

/// `t=` with its `r=` lines (RFC 8866 §5.9, §5.10), borrowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TimingView<'a> {
    pub start: u64,
    pub stop: u64,
    pub repeats: Vec<&'a str>,
}

/// `a=` (RFC 8866 §5.13), borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AttributeView<'a> {
    pub name: &'a str,
    pub value: Option<&'a str>,
}

/// An `m=` section (RFC 8866 §5.14), borrowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MediaView<'a> {
    pub media: &'a str,
    pub port: u16,
    pub num_ports: Option<u16>,
    pub proto: &'a str,
    pub formats: Formats<'a>,
    pub information: Option<&'a str>,
    pub connections: Vec<ConnectionView<'a>>,
    pub bandwidths: Vec<BandwidthView<'a>>,
    pub key: Option<&'a str>,
    pub attributes: Attributes<'a>,
}

/// A session description (RFC 8866 §5), borrowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SdpView<'a> {
    pub origin: OriginView<'a>,
    pub session_name: &'a str,
    pub information: Option<&'a str>,
    pub uri: Option<&'a str>,
    pub emails: Vec<&'a str>,
    pub phones: Vec<&'a str>,
    pub connection: Option<ConnectionView<'a>>,
    pub bandwidths: Vec<BandwidthView<'a>>,
    pub times: SmallVec<[TimingView<'a>; 1]>,
    pub time_zones: Option<&'a str>,
    pub key: Option<&'a str>,
    pub attributes: Attributes<'a>,
    pub media: MediaLines<'a>,
    pub line_ending: LineEnding,
}

fn owned(s: &str) -> String {
    s.to_owned()
}

fn owned_opt(s: Option<&str>) -> Option<String> {
    s.map(owned)
}

impl ConnectionView<'_> {
    fn into_owned(self) -> Connection {
        Connection {
            net_type: owned(self.net_type),
            addr_type: owned(self.addr_type),
            address: owned(self.address),
        }
    }
}

impl<'a> ConnectionView<'a> {
    pub(crate) fn of(c: &'a Connection) -> Self {
        ConnectionView {
            net_type: &c.net_type,
            addr_type: &c.addr_type,
            address: &c.address,
        }
    }
}

impl<'a> BandwidthView<'a> {
    fn of(b: &'a Bandwidth) -> Self {
        BandwidthView {
            bwtype: &b.bwtype,
            bandwidth: b.bandwidth,
        }
    }

    fn into_owned(self) -> Bandwidth {
        Bandwidth {
            bwtype: owned(self.bwtype),
            bandwidth: self.bandwidth,
        }
    }
}

impl AttributeView<'_> {
    fn into_owned(self) -> Attribute {
        Attribute {
            name: owned(self.name),
            value: owned_opt(self.value),
        }
    }
}

impl<'a> MediaView<'a> {
    fn owned(&self) -> MediaDescription {
        MediaDescription {
            media: owned(self.media),
            port: self.port,
            num_ports: self.num_ports,
            proto: owned(self.proto),
            formats: self.formats.iter().copied().map(owned).collect(),
            information: owned_opt(self.information),
            connections: self.connections.iter().map(|c| c.into_owned()).collect(),
            bandwidths: self.bandwidths.iter().map(|b| b.into_owned()).collect(),
            key: owned_opt(self.key),
            attributes: self.attributes.iter().map(|a| a.into_owned()).collect(),
        }
    }

    fn of(m: &'a MediaDescription) -> Self {
        MediaView {
            media: &m.media,
            port: m.port,
            num_ports: m.num_ports,
            proto: &m.proto,
            formats: m.formats.iter().map(String::as_str).collect(),
            information: m.information.as_deref(),
            connections: m.connections.iter().map(ConnectionView::of).collect(),
            bandwidths: m.bandwidths.iter().map(BandwidthView::of).collect(),
            key: m.key.as_deref(),
            attributes: m.attributes.iter().map(AttributeView::of).collect(),
        }
    }
}

impl<'a> AttributeView<'a> {
    fn of(a: &'a Attribute) -> Self {
        AttributeView {
            name: &a.name,
            value: a.value.as_deref(),
        }
    }
}

impl<'a> SdpView<'a> {
    /// A view with no lines, to parse into.
    pub(crate) fn empty() -> Self {
        SdpView {
            origin: OriginView {
                username: "",
                session_id: "",
                session_version: 0,
                net_type: "",
                addr_type: "",
                address: "",
            },
            session_name: "",
            information: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: None,
            bandwidths: Vec::new(),
            times: SmallVec::new(),
            time_zones: None,
            key: None,
            attributes: SmallVec::new(),
            media: SmallVec::new(),
            line_ending: LineEnding::CrLf,
        }
    }

    /// Copies the description out into owned strings.
    pub(crate) fn to_owned(&self) -> SessionDescription {
        let o = &self.origin;
        SessionDescription {
            origin: Origin {
                username: owned(o.username),
                session_id: owned(o.session_id),
                session_version: o.session_version,
                net_type: owned(o.net_type),
                addr_type: owned(o.addr_type),
                address: owned(o.address),
            },
            session_name: owned(self.session_name),
            information: owned_opt(self.information),
            uri: owned_opt(self.uri),
            emails: self.emails.iter().copied().map(owned).collect(),
            phones: self.phones.iter().copied().map(owned).collect(),
            connection: self.connection.map(ConnectionView::into_owned),
            bandwidths: self.bandwidths.iter().map(|b| b.into_owned()).collect(),
            times: self
                .times
                .iter()
                .map(|t| Timing {
                    start: t.start,
                    stop: t.stop,
                    repeats: t.repeats.iter().copied().map(owned).collect(),
                })
                .collect(),
            time_zones: owned_opt(self.time_zones),
            key: owned_opt(self.key),
            attributes: self.attributes.iter().map(|a| a.into_owned()).collect(),
            media: self.media.iter().map(MediaView::owned).collect(),
            line_ending: self.line_ending,
        }
    }

    /// Borrows an owned description (for the offer/answer functions that take one).
    pub(crate) fn of(sd: &'a SessionDescription) -> Self {
        let o = &sd.origin;
        SdpView {
            origin: OriginView {
                username: &o.username,
                session_id: &o.session_id,
                session_version: o.session_version,
                net_type: &o.net_type,
                addr_type: &o.addr_type,
                address: &o.address,
            },
            session_name: &sd.session_name,
            information: sd.information.as_deref(),
            uri: sd.uri.as_deref(),
            emails: sd.emails.iter().map(String::as_str).collect(),
            phones: sd.phones.iter().map(String::as_str).collect(),
            connection: sd.connection.as_ref().map(ConnectionView::of),
            bandwidths: sd.bandwidths.iter().map(BandwidthView::of).collect(),
            times: sd
                .times
                .iter()
                .map(|t| TimingView {
                    start: t.start,
                    stop: t.stop,
                    repeats: t.repeats.iter().map(String::as_str).collect(),
                })
                .collect(),
            time_zones: sd.time_zones.as_deref(),
            key: sd.key.as_deref(),
            attributes: sd.attributes.iter().map(AttributeView::of).collect(),
            media: sd.media.iter().map(MediaView::of).collect(),
            line_ending: sd.line_ending,
        }
    }

    /// The effective direction of media section `i` (RFC 8866 §6.7), as
    /// [`SessionDescription::media_direction`].
    pub(crate) fn media_direction(&self, i: usize) -> super::Direction {
        self.media
            .get(i)
            .and_then(|m| super::attrs::direction(&m.attributes))
            .or_else(|| super::attrs::direction(&self.attributes))
            .unwrap_or_default()
    }

    /// The effective connection of media section `i`, as
    /// [`SessionDescription::media_connection`].
    pub(crate) fn media_connection(&self, i: usize) -> Option<&ConnectionView<'a>> {
        self.media
            .get(i)
            .and_then(|m| m.connections.first())
            .or(self.connection.as_ref())
    }
}
