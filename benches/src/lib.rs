//! The same work for every parser: parse a message and read the headers every transaction and
//! dialog needs (top Via branch, From tag, To URI and tag, Call-ID, CSeq). Shared by the
//! criterion bench (`benches/parse.rs`) and the instruction counter (`src/bin/count.rs`).

use bytes::Bytes;

/// The messages every parser reads: a real INVITE with SDP, its 200 OK, a REGISTER.
pub const MESSAGES: [(&str, &[u8]); 3] = [
    ("invite_sdp", include_bytes!("../messages/invite.sip")),
    ("ok200_sdp", include_bytes!("../messages/ok200.sip")),
    ("register", include_bytes!("../messages/register.sip")),
];

/// Parrot: parse, read the typical headers.
pub fn parrot(b: &Bytes) -> usize {
    use parrot_proto::Message;
    let m = Message::parse(b.clone()).expect("parse");
    let via = m.top_via().expect("via");
    let branch = via.branch().expect("branch");
    let from = m.from_header().expect("from");
    let to = m.to_header().expect("to");
    let cseq = m.cseq().expect("cseq");
    branch.len()
        + from.tag().map_or(0, str::len)
        + to.uri_str().len()
        + to.tag().map_or(0, str::len)
        + m.call_id().expect("call-id").len()
        + cseq.seq as usize
        + cseq.method.as_str().len()
}

/// rsipstack: parse, read the typical headers.
pub fn rsipstack(b: &Bytes) -> usize {
    use rsipstack::sip::message::{HeadersExt, SipMessage};
    use rsipstack::sip::ToTypedHeader;
    let m = rsipstack::sip::parser::parse_message(b).expect("parse");
    fn read<T: HeadersExt>(m: &T) -> usize {
        let via = m.via_header().expect("via").typed().expect("typed via");
        let branch = via.branch().map_or(0, |b| b.to_string().len());
        let from = m.from_header().expect("from").tag().expect("tag");
        let to = m.to_header().expect("to").typed().expect("typed to");
        let cseq = m.cseq_header().expect("cseq");
        branch
            + from.map_or(0, |t| t.to_string().len())
            + to.uri.to_string().len()
            + to.tag().map_or(0, |t| t.to_string().len())
            + m.call_id_header().expect("call-id").value().len()
            + cseq.seq().expect("seq") as usize
            + cseq.method().expect("method").to_string().len()
    }
    match &m {
        SipMessage::Request(r) => read(r),
        SipMessage::Response(r) => read(r),
    }
}

/// rsip: parse, read the typical headers.
pub fn rsip(b: &Bytes) -> usize {
    use rsip::prelude::*;
    let m = rsip::SipMessage::try_from(&b[..]).expect("parse");
    let via = m.via_header().expect("via").typed().expect("typed via");
    let branch = via.branch().map_or(0, |b| b.to_string().len());
    let from = m.from_header().expect("from").tag().expect("tag");
    let to = m.to_header().expect("to").typed().expect("typed to");
    let cseq = m.cseq_header().expect("cseq").typed().expect("typed cseq");
    branch
        + from.map_or(0, |t| t.to_string().len())
        + to.uri.to_string().len()
        + to.tag().map_or(0, |t| t.to_string().len())
        + m.call_id_header().expect("call-id").value().len()
        + cseq.seq as usize
        + cseq.method.to_string().len()
}

/// sipx-sip: parse, read the typical headers.
pub fn sipx(b: &Bytes) -> usize {
    use sipx_sip::headers::{CSeq, CallId, From, To, Via};
    let m = sipx_sip::parse_datagram(b.clone(), &sipx_sip::Limits::default()).expect("parse");
    let h = m.headers();
    let via = h.typed::<Via>().expect("via").expect("typed via");
    let from = h.typed::<From>().expect("from").expect("typed from");
    let to = h.typed::<To>().expect("to").expect("typed to");
    let cseq = h.typed::<CSeq>().expect("cseq").expect("typed cseq");
    let call_id = h
        .typed::<CallId>()
        .expect("call-id")
        .expect("typed call-id");
    via.branch().map_or(0, <[u8]>::len)
        + from.tag().map_or(0, <[u8]>::len)
        + to.uri.to_string().len()
        + to.tag().map_or(0, <[u8]>::len)
        + call_id.0.len()
        + cseq.sequence as usize
        + cseq.method.as_bytes().len()
}
