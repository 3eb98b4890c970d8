//! The lines every response to one request copies (RFC 3261 §8.2.6.2), recorded once per
//! server transaction as positions in the request: nothing is copied until a response is written.

use super::{kind_of, reason_phrase, BuildError, Headers, Piece, ResponseBuilder};
use crate::header::HeaderName;
use crate::message::{Message, Span};
use crate::method::Method;
use crate::text::{decimal, is_token};
use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;
use std::borrow::Cow;

/// The request's header fields a response copies (§8.2.6.2: Via, From, To, Call-ID, CSeq;
/// Record-Route in a response that makes a dialog, §12.1.1).
fn copied_to_response(n: HeaderName) -> bool {
    matches!(
        n,
        HeaderName::Via
            | HeaderName::From
            | HeaderName::To
            | HeaderName::CallId
            | HeaderName::CSeq
            | HeaderName::RecordRoute
    )
}

/// The header lines every response to one request copies (§8.2.6.2), gathered once per server
/// transaction instead of once per response: the Via values (the top one with its §18.2.2
/// `received`/`rport` fix), From, To, Call-ID, CSeq and Record-Route, and where our To tag goes
/// (§8.2.6.2, §12.1.1). An INVITE answered 100, 180 and 200 looks them up once.
///
/// The lines are positions in the request's header text (a folded value, rare, is kept
/// unfolded in a buffer of its own); the top Via fix and our To tag are given when writing, so
/// making a head allocates nothing for an ordinary request. Every method that reads the lines
/// takes the request the head was made from.
#[derive(Debug, Clone)]
pub(crate) struct ResponseHead {
    lines: SmallVec<[Line; 8]>,
    /// Unfolded values of folded lines.
    own: String,
    to: To,
    /// Whether `lines` holds Record-Route lines (copied only for dialog-creating responses).
    has_record_route: bool,
    /// Whether the request can create a dialog (INVITE, SUBSCRIBE, REFER, NOTIFY; §12.1.1).
    dialog_method: bool,
    /// Whether the top Via fix and our To tag, when written, hold no CR or LF (else
    /// [`ResponseHead::write`] leaves the refusal to the general builder).
    clean: bool,
    /// How [`ResponseHead::write`] writes the lines, in order: runs of request lines whose
    /// bytes are what it would write for them are copied at once. Empty: line by line.
    plan: SmallVec<[Op; 6]>,
    /// The copied lines' size and shape as [`ResponseHead::write`] reckons them, without our
    /// To tag, when every line is written whatever the status (no Record-Route).
    sizes: Option<Sizes>,
}

/// The size and shape of a head's copied lines.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    /// Their bytes, each with its CRLF.
    len: usize,
    /// How many.
    lines: usize,
    /// The longest, without CRLF.
    longest: usize,
    /// The To line's length, without CRLF, when our tag may go there (`To::One`).
    to: usize,
}

/// One step of a [`ResponseHead`]'s plan.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// The line at this index, written from its name and value.
    Line(u16),
    /// Bytes of the request's header text, copied as they are: whole lines (name, `": "`,
    /// value, CRLF) that are exactly what would be written for them, or parts of one around
    /// where our To tag goes.
    Req(Span),
    /// `;tag=` and our tag, when the response is tagged.
    Tag,
    /// The top Via fix's appended bytes and CRLF: its kept text, preceded by `Via: `, is the
    /// request's own, copied by the [`Op::Req`] before.
    TopTail,
}

/// One copied line.
#[derive(Debug, Clone, Copy)]
struct Line {
    kind: HeaderName,
    src: Src,
}

/// Where a copied line's value is.
#[derive(Debug, Clone, Copy)]
enum Src {
    /// In the request's header text.
    Req(Span),
    /// The top Via fix given when writing.
    Top,
    /// In [`ResponseHead::own`].
    Own(Piece),
}

/// Where our To tag goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum To {
    /// The To already has a tag (or there is no To).
    Keep,
    /// The one To line, at this index, gets `;tag=` and our tag.
    One(usize),
    /// Several To lines: `ResponseBuilder::build` tags each.
    Each,
}

/// How [`ResponseHead::builder_from`] adds our To tag to a materialised head.
#[derive(Debug, Clone, Copy)]
enum HeadToTag {
    Keep,
    One(usize, Piece),
    Each(Piece),
}

/// The top Via a response carries in place of the request's (§18.2.2, RFC 3581 §4), in two
/// pieces written one after the other: the request's Via text it keeps, then what is appended
/// to it (`;received=...;rport=...`, ASCII), so that neither is copied into a string of its own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Top<'a> {
    /// The kept text.
    pub(crate) kept: &'a str,
    /// The appended bytes, ASCII, without CR or LF.
    pub(crate) tail: &'a [u8],
    /// Whether `kept` is known to hold no CR or LF (checked when the fix was made).
    pub(crate) clean: bool,
}

impl<'a> Top<'a> {
    /// A top Via given whole.
    pub(crate) fn text(s: &'a str) -> Top<'a> {
        Top {
            kept: s,
            tail: b"",
            clean: false,
        }
    }

    fn len(&self) -> usize {
        self.kept.len() + self.tail.len()
    }

    fn has_crlf(&self) -> bool {
        !self.clean && has_crlf(self.kept)
    }

    /// The whole value.
    pub(crate) fn joined(&self) -> Cow<'a, str> {
        if self.tail.is_empty() {
            return Cow::Borrowed(self.kept);
        }
        let mut s = String::with_capacity(self.len());
        s.push_str(self.kept);
        s.extend(self.tail.iter().map(|&b| char::from(b)));
        Cow::Owned(s)
    }
}

/// Where [`ResponseHead::write`] copies the next bytes of a response.
struct Cursor<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Cursor<'_> {
    #[inline]
    fn put(&mut self, s: &[u8]) {
        let end = self.at + s.len();
        if let Some(d) = self.buf.get_mut(self.at..end) {
            d.copy_from_slice(s);
        }
        self.at = end;
    }

    #[inline]
    fn put_top(&mut self, t: Top<'_>) {
        self.put(t.kept.as_bytes());
        self.put(t.tail);
    }
}

/// Whether `reason` is the standard phrase of `code` itself (the same bytes in the same place),
/// which holds no CR or LF.
fn is_standard_reason(reason: &str, code: u16) -> bool {
    std::ptr::eq(reason, reason_phrase(code))
}

/// Whether `a` is `b`, compared byte by byte: a header name is a few bytes, fewer than a call
/// to `memcmp` costs.
#[inline(always)]
fn same_short(a: Option<&[u8]>, b: &[u8]) -> bool {
    a.is_some_and(|a| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y))
}

/// Whether `s` holds CR or LF.
fn has_crlf(s: &str) -> bool {
    crate::text::has_crlf(s.as_bytes())
}

impl ResponseHead {
    /// The copied lines of `req`'s responses, with the top Via replaced by `top` when given
    /// (written first, then the other Via values, then the rest in request order: what
    /// `ResponseBuilder::for_request` followed by a Via rewrite gives) and `to_tag` as our tag.
    /// `to_tagged` says whether the request's To has a tag, when validation already read it.
    ///
    /// The head keeps neither `top` nor `to_tag`: every write is given the same ones again.
    pub(crate) fn new(
        req: &Message,
        top: Option<Top<'_>>,
        to_tag: &str,
        to_tagged: Option<bool>,
    ) -> ResponseHead {
        let fixed_top = top.is_some();
        let mut head = ResponseHead {
            lines: SmallVec::new(),
            own: String::new(),
            to: To::Keep,
            has_record_route: false,
            dialog_method: matches!(
                req.method(),
                Some(Method::Invite | Method::Subscribe | Method::Refer | Method::Notify)
            ),
            clean: true,
            plan: SmallVec::new(),
            sizes: None,
        };
        if fixed_top {
            // One Via line without a comma holds one value: the fixed top, and nothing to split.
            let mut lines = req.header_lines(HeaderName::Via);
            let one = match (lines.next(), lines.next()) {
                (Some(l), None) => memchr::memchr(b',', l.as_bytes()).is_none(),
                _ => false,
            };
            if one {
                head.push(HeaderName::Via, Src::Top);
            } else {
                for (i, v) in req.header_values(HeaderName::Via).enumerate() {
                    let src = if i == 0 { Src::Top } else { head.src(req, v) };
                    head.push(HeaderName::Via, src);
                }
            }
        }
        if !req.has_folds() {
            // Every value is its trimmed line, a slice of the request's text: its place is its
            // source, as `src` would find.
            for (kind, span) in req.value_spans_where(copied_to_response) {
                if fixed_top && kind == HeaderName::Via {
                    continue;
                }
                head.has_record_route |= kind == HeaderName::RecordRoute;
                let src = match span {
                    Some(span) => Src::Req(span),
                    None => head.src(req, ""),
                };
                head.push(kind, src);
            }
        } else {
            for line in req.headers_where(copied_to_response) {
                if fixed_top && line.name == HeaderName::Via {
                    continue;
                }
                head.has_record_route |= line.name == HeaderName::RecordRoute;
                let src = match line.value_unfolded() {
                    Cow::Borrowed(v) => head.src(req, v),
                    Cow::Owned(v) => head.src(req, &v),
                };
                head.push(line.name, src);
            }
        }
        let mut tos = head
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.kind == HeaderName::To);
        head.to = match (tos.next(), tos.next()) {
            (Some(_), Some(_)) => To::Each,
            (Some((i, l)), None) => {
                let has_tag = to_tagged.unwrap_or_else(|| {
                    crate::header::NameAddr::parse(head.value(req, None, l.src))
                        .map(|na| na.tag().is_some())
                        .unwrap_or(true)
                });
                if has_tag {
                    To::Keep
                } else {
                    To::One(i)
                }
            }
            _ => To::Keep,
        };
        if !head.has_record_route {
            let mut sizes = Sizes {
                len: 0,
                lines: 0,
                longest: 0,
                to: 0,
            };
            for (i, l) in head.lines.iter().enumerate() {
                let n = l.kind.as_str().len() + 2 + head.value_len(req, top, l.src);
                if head.to == To::One(i) {
                    sizes.to = n;
                }
                sizes.len += n + 2;
                sizes.lines += 1;
                sizes.longest = sizes.longest.max(n);
            }
            head.sizes = Some(sizes);
        }
        let tag_written = head.to != To::Keep;
        head.clean = !(top.is_some_and(|t| t.has_crlf()) || tag_written && has_crlf(to_tag));
        head.plan(req, top);
        head
    }

    /// Makes [`ResponseHead::plan`]: a line of the request's text is copied as it is when
    /// its bytes are its canonical name, `": "`, its value and CRLF (what writing it gives), and
    /// neighbouring such lines are copied at once. Record-Route lines, which some responses
    /// drop, and lines from elsewhere are written one by one.
    fn plan(&mut self, req: &Message, top: Option<Top<'_>>) {
        let text = req.head_text().as_bytes();
        // Where `Via: ` and the top Via fix's kept text start, when both are the request's.
        let top_line = top.and_then(|t| {
            let span = req.span_of(t.kept);
            let own = req
                .head_text()
                .get(span.range())
                .is_some_and(|k| std::ptr::eq(k.as_ptr(), t.kept.as_ptr()));
            let st = (span.start as usize).checked_sub(5)?;
            (own && text.get(st..span.start as usize) == Some(b"Via: "))
                .then_some((st, span.end as usize))
        });
        let plan = &mut self.plan;
        let mut copied = 0;
        let push_req = |plan: &mut SmallVec<[Op; 6]>, a: usize, z: usize| {
            if let Some(Op::Req(prev)) = plan.last_mut() {
                if prev.end as usize == a {
                    prev.end = z as u32;
                    return;
                }
            }
            plan.push(Op::Req(Span::new(a, z)));
        };
        for (i, l) in self.lines.iter().enumerate() {
            let Ok(at) = u16::try_from(i) else {
                plan.clear();
                return;
            };
            let verbatim = match l.src {
                Src::Req(v) if l.kind != HeaderName::RecordRoute => {
                    let (vs, ve) = (v.start as usize, v.end as usize);
                    let name = l.kind.as_str().as_bytes();
                    let start = vs.checked_sub(name.len() + 2);
                    start.filter(|&st| {
                        text.get(st..vs)
                            .is_some_and(|p| p[..name.len()] == *name && p[name.len()..] == *b": ")
                            && text.get(ve..ve + 2) == Some(b"\r\n")
                    })
                }
                _ => None,
            };
            match (verbatim, l.src) {
                (_, Src::Top) if top_line.is_some() => {
                    if let Some((st, end)) = top_line {
                        copied += 1;
                        push_req(plan, st, end);
                        plan.push(Op::TopTail);
                    }
                }
                (Some(st), Src::Req(v)) => {
                    copied += 1;
                    let ve = v.end as usize;
                    if self.to == To::One(i) {
                        push_req(plan, st, ve);
                        plan.push(Op::Tag);
                        push_req(plan, ve, ve + 2);
                    } else {
                        push_req(plan, st, ve + 2);
                    }
                }
                _ => plan.push(Op::Line(at)),
            }
        }
        // Worth it only when lines join into fewer copies.
        if copied < 2 {
            plan.clear();
        }
    }

    fn push(&mut self, kind: HeaderName, src: Src) {
        self.lines.push(Line { kind, src });
    }

    /// `v` as a line source: its place in `req` when it is a slice of it, else a copy.
    fn src(&mut self, req: &Message, v: &str) -> Src {
        let span = req.span_of(v);
        if req
            .head_text()
            .get(span.range())
            .is_some_and(|s| std::ptr::eq(s, v))
        {
            return Src::Req(span);
        }
        let start = self.own.len();
        self.own.push_str(v);
        Src::Own(Piece {
            start: start as u32,
            end: self.own.len() as u32,
        })
    }

    /// The value of a line.
    fn value<'a>(&'a self, req: &'a Message, top: Option<&'a str>, src: Src) -> &'a str {
        match src {
            Src::Req(s) => req.head_text().get(s.range()).unwrap_or_default(),
            Src::Top => top.unwrap_or_default(),
            Src::Own(p) => self.own.get(p.range()).unwrap_or_default(),
        }
    }

    /// The value of a line as bytes (sliced without a look at character boundaries).
    #[inline]
    fn value_bytes<'a>(&'a self, req: &'a Message, src: Src) -> &'a [u8] {
        match src {
            Src::Req(s) => req
                .head_text()
                .as_bytes()
                .get(s.range())
                .unwrap_or_default(),
            Src::Top => b"",
            Src::Own(p) => self.own.as_bytes().get(p.range()).unwrap_or_default(),
        }
    }

    /// The length of a line's value, the top Via fix's for [`Src::Top`].
    #[inline]
    fn value_len(&self, req: &Message, top: Option<Top<'_>>, src: Src) -> usize {
        match (src, top) {
            (Src::Top, Some(t)) => t.len(),
            _ => self.value_bytes(req, src).len(),
        }
    }

    fn drops_record_route(&self, code: u16) -> bool {
        self.has_record_route && !(self.dialog_method && (101..300).contains(&code))
    }

    /// The lines in the builder's form, with room for the lines a response adds.
    fn materialise(&self, req: &Message, top: Option<&str>, to_tag: &str) -> (Headers, HeadToTag) {
        let len: usize = self
            .lines
            .iter()
            .map(|l| self.value(req, top, l.src).len())
            .sum();
        let mut h = Headers {
            text: String::with_capacity(len + 2 * to_tag.len() + 256),
            list: Vec::with_capacity(self.lines.len() + 6),
            body: Bytes::new(),
        };
        for l in &self.lines {
            h.push_known(l.kind, self.value(req, top, l.src));
        }
        let tag = match self.to {
            To::Keep => HeadToTag::Keep,
            To::Each => HeadToTag::Each(h.add_text(to_tag)),
            To::One(i) => {
                let v = h.value(&h.list[i]).to_owned();
                let p = h.add_text(&v);
                h.add_text(";tag=");
                let end = h.add_text(to_tag).end;
                HeadToTag::One(
                    i,
                    Piece {
                        start: p.start,
                        end,
                    },
                )
            }
        };
        (h, tag)
    }

    fn builder_from(
        mut h: Headers,
        code: u16,
        tag: bool,
        to_tag: HeadToTag,
        drop_rr: bool,
    ) -> ResponseBuilder {
        let mut each = None;
        match to_tag {
            HeadToTag::One(i, v) if tag => h.list[i].value = v,
            HeadToTag::Each(t) if tag => each = Some(t),
            _ => {}
        }
        if drop_rr {
            h.list.retain(|e| e.kind != HeaderName::RecordRoute);
        }
        ResponseBuilder {
            code,
            reason: Cow::Borrowed(reason_phrase(code)),
            to_tag: each,
            h,
        }
    }

    /// A response builder with the lines of `req` (the request this head was made from), `top`
    /// and `to_tag` as given to [`ResponseHead::new`]; `tag` adds our To tag.
    pub(crate) fn builder(
        &self,
        req: &Message,
        top: Option<&str>,
        to_tag: &str,
        code: u16,
        tag: bool,
    ) -> ResponseBuilder {
        let (h, t) = self.materialise(req, top, to_tag);
        Self::builder_from(h, code, tag, t, self.drops_record_route(code))
    }

    /// Writes a response from the lines of `req` (the request this head was made from) straight
    /// into one buffer, without a builder or a [`Message`]: the status line, the copied lines
    /// (`top` and `to_tag` as given to [`ResponseHead::new`], our To tag added when
    /// `tag`), the `extra` lines `(name, value)` in order, Content-Type and the body,
    /// Content-Length. The bytes are those `self.builder(..)` with the same additions would
    /// build. They are written at the end of `wire` and split off it (a new buffer of
    /// [`super::WIRE_CHUNK`] bytes replaces it when they do not fit), so a response costs no
    /// allocation of its own and its clones share it.
    ///
    /// `None` when the general builder must do it: several To lines, CR or LF in the top Via or
    /// the tag, an extra line that is Content-Length or (with a body) Content-Type, or a size
    /// near the parser's limits.
    ///
    /// The first `trusted` lines of `extra` are the caller's own, known to be neither
    /// Content-Length nor Content-Type, with a token name and no CR or LF in the value (our
    /// Contact): they are not checked again. Neither is the standard reason phrase of `code`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write(
        &self,
        req: &Message,
        top: Option<Top<'_>>,
        to_tag: &str,
        code: u16,
        reason: &str,
        tag: bool,
        extra: &[(&str, &str)],
        trusted: usize,
        body: Option<(&str, &Bytes)>,
        wire: &mut BytesMut,
    ) -> Option<Result<Bytes, BuildError>> {
        if !self.clean {
            return None;
        }
        let tagged = match self.to {
            To::Each => return None,
            To::One(i) => tag.then_some(i),
            To::Keep => None,
        };
        if !(100..=699).contains(&code) {
            return Some(Err(BuildError::BadStatus(code)));
        }
        if !is_standard_reason(reason, code) && has_crlf(reason) {
            return Some(Err(BuildError::BadReason));
        }
        match check_extra(extra, trusted, body) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => return Some(Err(e)),
        }
        let drop_rr = self.drops_record_route(code);
        let kept = |l: &Line| {
            l.kind != HeaderName::ContentLength && !(drop_rr && l.kind == HeaderName::RecordRoute)
        };
        let suffix = |i: usize| {
            if tagged == Some(i) {
                5 + to_tag.len()
            } else {
                0
            }
        };
        // The size and shape, as `Headers::wire_len` and `within_limits` reckon them.
        let mut len = 0;
        let mut lines = 1;
        let mut longest = 0;
        let mut line = |l: usize| {
            longest = usize::max(longest, l);
            len += l + 2;
            lines += 1;
        };
        match self.sizes {
            // Reckoned when the head was made (with the same `top`): our tag added.
            Some(z) => {
                let tag_len = if tagged.is_some() {
                    5 + to_tag.len()
                } else {
                    0
                };
                len = z.len + tag_len;
                lines += z.lines;
                longest = z
                    .longest
                    .max(if tagged.is_some() { z.to + tag_len } else { 0 });
            }
            None => {
                for (i, l) in self.lines.iter().enumerate().filter(|(_, l)| kept(l)) {
                    line(l.kind.as_str().len() + 2 + self.value_len(req, top, l.src) + suffix(i));
                }
            }
        }
        #[cfg(debug_assertions)]
        if self.sizes.is_some() {
            // The reckoning kept in the head is the line-by-line one.
            let (mut l2, mut n2, mut m2) = (0, 1, 0);
            for (i, l) in self.lines.iter().enumerate().filter(|(_, l)| kept(l)) {
                let n = l.kind.as_str().len() + 2 + self.value_len(req, top, l.src) + suffix(i);
                l2 += n + 2;
                n2 += 1;
                m2 = usize::max(m2, n);
            }
            assert_eq!((len, lines, longest), (l2, n2, m2), "a head's kept sizes");
        }
        let (out, total) =
            &mut open_response(wire, code, reason, (len, lines, longest), extra, body)?;
        let write_line = |out: &mut Cursor<'_>, i: usize, l: &Line| {
            out.put(l.kind.as_str().as_bytes());
            out.put(b": ");
            match (l.src, top) {
                (Src::Top, Some(t)) => out.put_top(t),
                _ => out.put(self.value_bytes(req, l.src)),
            }
            if tagged == Some(i) {
                out.put(b";tag=");
                out.put(to_tag.as_bytes());
            }
            out.put(b"\r\n");
        };
        if self.plan.is_empty() {
            for (i, l) in self.lines.iter().enumerate().filter(|(_, l)| kept(l)) {
                write_line(out, i, l);
            }
        } else {
            let text = req.head_text().as_bytes();
            for op in &self.plan {
                match *op {
                    Op::Line(i) => {
                        let i = usize::from(i);
                        if let Some(l) = self.lines.get(i).filter(|l| kept(l)) {
                            write_line(out, i, l);
                        }
                    }
                    Op::Req(s) => out.put(text.get(s.range()).unwrap_or_default()),
                    Op::TopTail => {
                        if let Some(t) = top {
                            out.put(t.tail);
                        }
                        out.put(b"\r\n");
                    }
                    Op::Tag => {
                        if tagged.is_some() {
                            out.put(b";tag=");
                            out.put(to_tag.as_bytes());
                        }
                    }
                }
            }
        }
        close_response(out, *total, extra, body);
        Some(Ok(wire.split().freeze()))
    }

    /// The response [`ResponseHead::new`] followed by [`ResponseHead::write`] with the same
    /// arguments gives, written in one pass over `req`'s lines without making a head: for a
    /// transaction's only response (a BYE's 200), whose head would be dropped once written.
    ///
    /// `None` (the caller then makes the head) unless the request has the plain shape: no
    /// folds, no Record-Route, one Via line without a comma (or no top Via fix), one To line
    /// whose tag `to_tagged` gives, every copied line exactly its canonical name, `": "`, its
    /// value and CRLF, and nothing that either would refuse or leave to the general builder.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write_once(
        req: &Message,
        top: Option<Top<'_>>,
        to_tag: &str,
        to_tagged: Option<bool>,
        code: u16,
        reason: &str,
        tag: bool,
        extra: &[(&str, &str)],
        trusted: usize,
        body: Option<(&str, &Bytes)>,
        wire: &mut BytesMut,
    ) -> Option<Bytes> {
        if req.has_folds()
            || !(100..=699).contains(&code)
            || !is_standard_reason(reason, code) && has_crlf(reason)
        {
            return None;
        }
        // Our tag goes after the To's value when the To has none (`To::One`).
        let tagged = tag && !to_tagged?;
        if tagged && has_crlf(to_tag) || top.is_some_and(|t| t.has_crlf()) {
            return None;
        }
        if !matches!(check_extra(extra, trusted, body), Ok(true)) {
            return None;
        }
        let text = req.head_text().as_bytes();
        // The request's bytes to copy, in order; our tag goes at the end of run `tag_at`.
        let mut runs: SmallVec<[(u32, u32); 6]> = SmallVec::new();
        let mut tag_at = None;
        let (mut vias, mut tos) = (0, 0);
        let mut len = 0;
        let mut lines = 1;
        let mut longest = 0;
        let mut line = |l: usize| {
            longest = usize::max(longest, l);
            len += l + 2;
            lines += 1;
        };
        if let Some(t) = top {
            line(3 + 2 + t.len());
        }
        for (kind, span) in req.value_spans_where(copied_to_response) {
            let (vs, ve) = span.map(|v| (v.start as usize, v.end as usize))?;
            match kind {
                HeaderName::RecordRoute => return None,
                HeaderName::Via if top.is_some() => {
                    vias += 1;
                    if vias > 1 || memchr::memchr(b',', text.get(vs..ve)?).is_some() {
                        return None;
                    }
                    continue;
                }
                HeaderName::To => {
                    tos += 1;
                    if tos > 1 {
                        return None;
                    }
                }
                _ => {}
            }
            let name = kind.as_str().as_bytes();
            let st = vs.checked_sub(name.len() + 2)?;
            let verbatim = text
                .get(st..vs)
                .is_some_and(|p| p.ends_with(b": ") && same_short(p.get(..name.len()), name))
                && text.get(ve..ve + 2) == Some(b"\r\n");
            if !verbatim {
                return None;
            }
            let to_tag_here = tagged && kind == HeaderName::To;
            line(name.len() + 2 + (ve - vs) + if to_tag_here { 5 + to_tag.len() } else { 0 });
            let (a, z) = (st as u32, (ve + 2) as u32);
            match runs.last_mut() {
                Some(last) if last.1 == a => last.1 = z,
                _ => runs.push((a, z)),
            }
            if to_tag_here {
                // The run ends before the To's CRLF; the next one starts with it.
                if let Some(last) = runs.last_mut() {
                    last.1 = ve as u32;
                }
                tag_at = Some(runs.len() - 1);
                runs.push((ve as u32, (ve + 2) as u32));
            }
        }
        if top.is_some() && vias != 1 {
            return None;
        }
        let (out, total) =
            &mut open_response(wire, code, reason, (len, lines, longest), extra, body)?;
        if let Some(t) = top {
            out.put(b"Via: ");
            out.put_top(t);
            out.put(b"\r\n");
        }
        for (i, &(a, z)) in runs.iter().enumerate() {
            out.put(text.get(a as usize..z as usize).unwrap_or_default());
            if tag_at == Some(i) {
                out.put(b";tag=");
                out.put(to_tag.as_bytes());
            }
        }
        close_response(out, *total, extra, body);
        Some(wire.split().freeze())
    }

    /// Approximate heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        let lines = if self.lines.spilled() {
            self.lines.capacity() * std::mem::size_of::<Line>()
        } else {
            0
        };
        let plan = if self.plan.spilled() {
            self.plan.capacity() * std::mem::size_of::<Op>()
        } else {
            0
        };
        self.own.capacity() + lines + plan
    }
}

/// Whether a response's `extra` lines past the first `trusted` (ours, known good) and its
/// body's type can be written as given: `Ok(false)` when the general builder must decide (a
/// Content-Length line, which the writers put themselves, or a Content-Type beside a body), an
/// error for a name that is no token or a value with a line break (§7.3.1).
fn check_extra(
    extra: &[(&str, &str)],
    trusted: usize,
    body: Option<(&str, &Bytes)>,
) -> Result<bool, BuildError> {
    for &(n, v) in extra.get(trusted..).unwrap_or_default() {
        // Only a name of the length of Content-Length or Content-Type, long or compact, can
        // be one of them.
        let kind = match n.len() {
            1 | 12 | 14 => kind_of(n),
            _ => HeaderName::Other,
        };
        if kind == HeaderName::ContentLength || (body.is_some() && kind == HeaderName::ContentType)
        {
            return Ok(false);
        }
        if !is_token(n) {
            return Err(BuildError::BadHeaderName(n.to_owned()));
        }
        if has_crlf(v) {
            return Err(BuildError::BadHeaderValue(n.to_owned()));
        }
    }
    if body.is_some_and(|(ct, _)| has_crlf(ct)) {
        return Err(BuildError::BadHeaderValue("Content-Type".to_owned()));
    }
    Ok(true)
}

/// Room for a response in `wire`, its status line written (§7.2): `copied` is the size and
/// shape (bytes with their CRLFs, lines counting the status line, longest line) of the lines
/// between the status line and `extra`, which [`close_response`] writes with the body's type,
/// Content-Length and the body. `None` when the builder's limits refuse the whole; else the
/// cursor and the response's exact length.
// Inlined into its two callers: 177 instructions a simulated call fewer than a call.
#[inline(always)]
fn open_response<'w>(
    wire: &'w mut BytesMut,
    code: u16,
    reason: &str,
    (mut len, mut lines, mut longest): (usize, usize, usize),
    extra: &[(&str, &str)],
    body: Option<(&str, &Bytes)>,
) -> Option<(Cursor<'w>, usize)> {
    let mut line = |l: usize| {
        longest = usize::max(longest, l);
        len += l + 2;
        lines += 1;
    };
    for &(n, v) in extra {
        line(n.len() + 2 + v.len());
    }
    let body_len = body.map_or(0, |(_, b)| b.len());
    if let Some((ct, _)) = body {
        line("Content-Type".len() + 2 + ct.len());
    }
    let start_len = 8 + 3 + 1 + reason.len() + 2;
    if !Headers::within_limits(start_len, (len + 16 + 20 + 4 + body_len, lines, longest)) {
        return None;
    }
    let mut buf = [0u8; 20];
    // Exactly the bytes written, split off the shared buffer.
    let total = start_len + len + 16 + decimal(body_len as u64, &mut buf).len() + 4 + body_len;
    super::wire_room(wire, total);
    // Zeroed, then filled in place: a copy into a slice costs less than an append.
    let base = wire.len();
    wire.resize(base + total, 0);
    let mut out = Cursor {
        buf: wire.get_mut(base..).unwrap_or_default(),
        at: 0,
    };
    out.put(b"SIP/2.0 ");
    out.put(decimal(u64::from(code), &mut buf));
    out.put(b" ");
    out.put(reason.as_bytes());
    out.put(b"\r\n");
    Some((out, total))
}

/// The end of a response [`open_response`] opened: `extra`, the body's Content-Type,
/// Content-Length, the blank line and the body.
#[inline(always)]
fn close_response(
    out: &mut Cursor<'_>,
    total: usize,
    extra: &[(&str, &str)],
    body: Option<(&str, &Bytes)>,
) {
    let put = |out: &mut Cursor<'_>, n: &str, v: &str| {
        out.put(n.as_bytes());
        out.put(b": ");
        out.put(v.as_bytes());
        out.put(b"\r\n");
    };
    for &(n, v) in extra {
        put(out, n, v);
    }
    if let Some((ct, _)) = body {
        put(out, "Content-Type", ct);
    }
    let mut buf = [0u8; 20];
    out.put(b"Content-Length: ");
    out.put(decimal(body.map_or(0, |(_, b)| b.len()) as u64, &mut buf));
    out.put(b"\r\n\r\n");
    if let Some((_, b)) = body {
        out.put(b);
    }
    debug_assert_eq!(out.at, total, "a response written to its reckoned length");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn req(s: &str) -> Message {
        Message::parse(s.replace('\n', "\r\n").into_bytes()).expect("test request parses")
    }

    /// What `write` gives, and what the general builder gives for the same response.
    fn both(
        m: &Message,
        top: Option<&str>,
        to_tag: &str,
        code: u16,
        tag: bool,
    ) -> (Option<Bytes>, Option<Bytes>) {
        let head = ResponseHead::new(m, top.map(Top::text), to_tag, None);
        let extra = [("Contact", "<sip:b@192.0.2.2>"), ("X-Extra", "1")];
        let body = Bytes::from_static(b"v=0\r\n");
        let written = head
            .write(
                m,
                top.map(Top::text),
                to_tag,
                code,
                reason_phrase(code),
                tag,
                &extra,
                0,
                Some(("application/sdp", &body)),
                &mut BytesMut::new(),
            )
            .and_then(Result::ok);
        let mut b = head.builder(m, top, to_tag, code, tag);
        for (n, v) in extra {
            b = b.raw_header(n, v);
        }
        let built = b
            .body("application/sdp", body)
            .build()
            .ok()
            .map(|m| m.to_bytes());
        (written, built)
    }

    /// What `write_once` gives (with the To's tag as parsing reads it), for the same response
    /// as [`both`].
    fn once(m: &Message, top: Option<&str>, to_tag: &str, code: u16, tag: bool) -> Option<Bytes> {
        let to_tagged = m.to_header().ok().map(|na| na.tag().is_some());
        let extra = [("Contact", "<sip:b@192.0.2.2>"), ("X-Extra", "1")];
        let body = Bytes::from_static(b"v=0\r\n");
        ResponseHead::write_once(
            m,
            top.map(Top::text),
            to_tag,
            to_tagged,
            code,
            reason_phrase(code),
            tag,
            &extra,
            0,
            Some(("application/sdp", &body)),
            &mut BytesMut::new(),
        )
    }

    #[test]
    fn a_reason_or_line_not_trusted_is_still_checked_for_line_breaks() {
        let m = req("INVITE sip:b@h SIP/2.0\nVia: SIP/2.0/UDP a.example;branch=z9hG4bK1\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c1\nCSeq: 1 INVITE\nContent-Length: 0\n\n");
        let head = ResponseHead::new(&m, None, "t", Some(false));
        let write = |reason: &str, extra: &[(&str, &str)], trusted: usize| {
            head.write(
                &m,
                None,
                "t",
                200,
                reason,
                true,
                extra,
                trusted,
                None,
                &mut BytesMut::new(),
            )
            .map(|r| r.err())
        };
        let standard = reason_phrase(200);
        assert_eq!(write(standard, &[], 0), Some(None));
        assert_eq!(
            write("OK\r\nX: y", &[], 0),
            Some(Some(BuildError::BadReason))
        );
        let ours = ("Contact", "<sip:b@192.0.2.2>");
        let bad = ("X-A", "1\r\nX-B: 2");
        assert_eq!(
            write(standard, &[ours, bad], 1),
            Some(Some(BuildError::BadHeaderValue("X-A".into())))
        );
        assert_eq!(write(standard, &[ours], 1), Some(None));
    }

    #[test]
    fn a_plain_request_answered_once_is_written_straight_as_built() {
        let bye = req("BYE sip:b@h SIP/2.0\nVia: SIP/2.0/UDP a.example;branch=z9hG4bK2;rport\nMax-Forwards: 70\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>;tag=2\nCall-ID: c1\nCSeq: 2 BYE\nContent-Length: 0\n\n");
        let untagged = req("OPTIONS sip:b@h SIP/2.0\nVia: SIP/2.0/UDP a.example;branch=z9hG4bK3\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c2\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n");
        for m in [&bye, &untagged] {
            for top in [
                None,
                Some("SIP/2.0/UDP a.example;branch=z9hG4bK2;received=192.0.2.9;rport=5060"),
            ] {
                for (code, tag) in [(200, true), (200, false), (486, true)] {
                    let written = once(m, top, "ourtag", code, tag);
                    assert!(written.is_some(), "{code} {top:?}");
                    assert_eq!(
                        written,
                        both(m, top, "ourtag", code, tag).1,
                        "{code} {top:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_top_via_kept_from_the_request_is_copied_with_its_line_name() {
        let m = req("INVITE sip:b@h SIP/2.0\nVia: SIP/2.0/UDP a.example;branch=z9hG4bK1;rport\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c1\nCSeq: 1 INVITE\nContent-Length: 0\n\n");
        let line = m.header(HeaderName::Via).expect("a Via");
        let split = Top {
            kept: line.strip_suffix(";rport").expect("rport last"),
            tail: b";received=192.0.2.9;rport=5060",
            clean: true,
        };
        let head = ResponseHead::new(&m, Some(split), "t", Some(false));
        assert!(head.plan.iter().any(|op| matches!(op, Op::TopTail)));
        let whole = split.joined();
        for (code, tag) in [(100, false), (180, true), (200, true)] {
            let written = head
                .write(
                    &m,
                    Some(split),
                    "t",
                    code,
                    reason_phrase(code),
                    tag,
                    &[],
                    0,
                    None,
                    &mut BytesMut::new(),
                )
                .and_then(Result::ok);
            let built = head
                .builder(&m, Some(&whole), "t", code, tag)
                .build()
                .ok()
                .map(|m| m.to_bytes());
            assert!(written.is_some());
            assert_eq!(written, built, "{code}");
        }
    }

    #[test]
    fn a_top_via_given_in_two_pieces_is_written_as_given_whole() {
        let m = req("INVITE sip:b@h SIP/2.0\nVia: SIP/2.0/UDP a.example;branch=z9hG4bK1;rport\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c1\nCSeq: 1 INVITE\nContent-Length: 0\n\n");
        let whole = "SIP/2.0/UDP a.example;branch=z9hG4bK1;received=192.0.2.9;rport=5060";
        let split = Top {
            kept: "SIP/2.0/UDP a.example;branch=z9hG4bK1",
            tail: b";received=192.0.2.9;rport=5060",
            clean: true,
        };
        assert_eq!(split.joined(), whole);
        let write = |top: Top<'_>, code: u16| {
            let head = ResponseHead::new(&m, Some(top), "t", Some(false));
            let with_head = head
                .write(
                    &m,
                    Some(top),
                    "t",
                    code,
                    "OK",
                    true,
                    &[],
                    0,
                    None,
                    &mut BytesMut::new(),
                )
                .and_then(Result::ok);
            let once = ResponseHead::write_once(
                &m,
                Some(top),
                "t",
                Some(false),
                code,
                "OK",
                true,
                &[],
                0,
                None,
                &mut BytesMut::new(),
            );
            (with_head, once)
        };
        for code in [180, 200] {
            let (a, b) = write(split, code);
            assert!(a.is_some() && b.is_some());
            assert_eq!((a, b), write(Top::text(whole), code));
        }
    }

    #[test]
    fn written_responses_are_the_built_ones_with_folds_fixes_and_record_routes() {
        let folded = req("INVITE sip:b@h SIP/2.0\nVia: SIP/2.0/UDP a.example;branch=z9hG4bK1;rport, SIP/2.0/TCP c.example;branch=z9hG4bK0\nVia: SIP/2.0/UDP d.example;branch=z9hG4bKd\nFrom: <sip:a@h>\n ;tag=1\nTo:\n <sip:b@h>\nRecord-Route: <sip:p.example;lr>\nCall-ID: c1\nCSeq: 1 INVITE\nContent-Length: 0\n\n");
        let plain = req("BYE sip:b@h SIP/2.0\nVia: SIP/2.0/UDP a.example;branch=z9hG4bK2\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>;tag=2\nCall-ID: c1\nCSeq: 2 BYE\nContent-Length: 0\n\n");
        for m in [&folded, &plain] {
            for top in [
                None,
                Some("SIP/2.0/UDP a.example;branch=z9hG4bK1;rport=5060;received=192.0.2.9"),
            ] {
                for (code, tag) in [(100, false), (180, true), (200, true), (486, true)] {
                    let (written, built) = both(m, top, "ourtag", code, tag);
                    assert!(written.is_some(), "{code} {top:?}");
                    assert_eq!(written, built, "{code} {top:?}");
                }
            }
        }
    }

    /// A request's copied lines in many spellings: canonical or not, compact, with other
    /// separators, trailing white space, bare LF, folds, Record-Route between them, one Via line
    /// or two, a To with a tag or without.
    fn spelled_request() -> impl Strategy<Value = String> {
        let name = |canon: &'static str, other: &'static str| prop_oneof![3 => Just(canon), 1 => Just(other)];
        let sep = prop_oneof![4 => Just(": "), 1 => Just(":"), 1 => Just(" : "), 1 => Just(":\t")];
        let end = prop_oneof![6 => Just("\r\n"), 1 => Just(" \r\n"), 1 => Just("\n")];
        let line = move |n: BoxedStrategy<&'static str>, v: &'static str| {
            (n, sep.clone(), end.clone()).prop_map(move |(n, s, e)| format!("{n}{s}{v}{e}"))
        };
        let lines = (
            line(name("From", "from").boxed(), "<sip:a@h>;tag=1"),
            line(name("To", "t").boxed(), "<sip:b@h>"),
            line(name("Call-ID", "i").boxed(), "c1"),
            line(name("CSeq", "cseq").boxed(), "1 INVITE"),
            line(
                name("Via", "v").boxed(),
                "SIP/2.0/UDP d.example;branch=z9hG4bKd",
            ),
            prop_oneof![
                Just(String::new()),
                Just("Record-Route: <sip:p.example;lr>\r\n".to_owned())
            ],
            prop_oneof![Just(""), Just("To: <sip:b@h>\r\n ;x=1\r\n")],
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        );
        lines.prop_map(|(f, t, i, c, v, rr, fold, swap, to_tagged, one_via)| {
            let to = if fold.is_empty() { t } else { fold.to_owned() };
            let to = if to_tagged {
                to.replace("<sip:b@h>", "<sip:b@h>;tag=9")
            } else {
                to
            };
            let v = if one_via { String::new() } else { v };
            let (a, b) = if swap { (c, i) } else { (i, c) };
            format!(
                "INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP a.example;branch=z9hG4bK1\r\n{v}{f}{rr}{to}{a}{b}Content-Length: 0\r\n\r\n"
            )
        })
    }

    proptest! {
        #[test]
        fn lines_copied_as_written_give_the_built_response(text in spelled_request()) {
            let m = Message::parse(text.into_bytes()).expect("generated request parses");
            for top in [None, Some("SIP/2.0/UDP a.example;branch=z9hG4bK1;received=192.0.2.9")] {
                for (code, tag) in [(100, false), (180, true), (200, true), (486, true)] {
                    let (written, built) = both(&m, top, "ourtag", code, tag);
                    prop_assert!(written.is_some());
                    // A fix whose kept text is the request's own Via value, written in pieces.
                    if let Some(v) = m.header(HeaderName::Via) {
                        let split = Top { kept: v, tail: b";received=192.0.2.9", clean: false };
                        let whole = split.joined();
                        let head = ResponseHead::new(&m, Some(split), "ourtag", None);
                        let written = head
                            .write(&m, Some(split), "ourtag", code, reason_phrase(code), tag, &[], 0, None, &mut BytesMut::new())
                            .and_then(Result::ok);
                        let built = head
                            .builder(&m, Some(&whole), "ourtag", code, tag)
                            .build()
                            .ok()
                            .map(|m| m.to_bytes());
                        prop_assert!(written.is_some());
                        prop_assert_eq!(written, built);
                    }
                    // Written straight or left to the head, never different.
                    if let Some(straight) = once(&m, top, "ourtag", code, tag) {
                        prop_assert_eq!(Some(straight), built.clone());
                    }
                    prop_assert_eq!(written, built);
                }
            }
        }
    }

    #[test]
    fn a_fix_or_tag_with_a_line_break_is_left_to_the_builder() {
        let m = req("INVITE sip:b@h SIP/2.0\nVia: SIP/2.0/UDP a.example;branch=z9hG4bK1\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c1\nCSeq: 1 INVITE\nContent-Length: 0\n\n");
        assert_eq!(
            both(&m, Some("SIP/2.0/UDP a\r\nX: y"), "t", 200, true),
            (None, None)
        );
        assert_eq!(both(&m, None, "t\r\nX: y", 200, true), (None, None));
    }
}
