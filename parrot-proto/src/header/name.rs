//! Header names, compact forms and case-insensitive matching (RFC 3261 §7.3.1, §7.3.3, §20).

macro_rules! header_names {
    ($( $(#[$doc:meta])* $variant:ident => $canonical:literal $(, $compact:literal)? ;)*) => {
        /// A SIP header name. Known names compare by variant; matching is case-insensitive and
        /// the compact forms of RFC 3261 §7.3.3 and the extension RFCs (o r b u x y a j d) map
        /// to the same variant as their long forms.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum HeaderName {
            $( $(#[$doc])* $variant, )*
            /// Any other (extension) header; its spelling is kept in the message.
            Other,
        }

        impl HeaderName {
            /// The canonical spelling, as Parrot writes it (`"Other"` for extension headers).
            pub fn as_str(self) -> &'static str {
                match self {
                    $( HeaderName::$variant => $canonical, )*
                    HeaderName::Other => "Other",
                }
            }

            /// The compact form (§7.3.3), if the header has one.
            pub fn compact(self) -> Option<char> {
                match self {
                    $( $( HeaderName::$variant => Some($compact), )? )*
                    _ => None,
                }
            }

            /// Classifies a header name, case-insensitively, long or compact form.
            pub fn from_name(name: &[u8]) -> HeaderName {
                if name.len() == 1 {
                    let c = name[0].to_ascii_lowercase() as char;
                    $( $( if c == $compact { return HeaderName::$variant; } )? )*
                    return HeaderName::Other;
                }
                let first = name[0] | 0x20;
                for (n, h) in Self::candidates(name.len()) {
                    let n = n.as_bytes();
                    if n[0] == first && eq_folded(name, n) {
                        return *h;
                    }
                }
                HeaderName::Other
            }
        }
    };
}

header_names! {
    /// `Accept` (§20.1).
    Accept => "Accept";
    /// `Accept-Contact` (RFC 3841), compact `a`.
    AcceptContact => "Accept-Contact", 'a';
    /// `Accept-Encoding` (§20.2).
    AcceptEncoding => "Accept-Encoding";
    /// `Accept-Language` (§20.3).
    AcceptLanguage => "Accept-Language";
    /// `Alert-Info` (§20.4).
    AlertInfo => "Alert-Info";
    /// `Allow` (§20.5).
    Allow => "Allow";
    /// `Allow-Events` (RFC 6665), compact `u`.
    AllowEvents => "Allow-Events", 'u';
    /// `Authentication-Info` (§20.6, RFC 7615).
    AuthenticationInfo => "Authentication-Info";
    /// `Authorization` (§20.7).
    Authorization => "Authorization";
    /// `Call-ID` (§20.8), compact `i`.
    CallId => "Call-ID", 'i';
    /// `Call-Info` (§20.9).
    CallInfo => "Call-Info";
    /// `Contact` (§20.10), compact `m`.
    Contact => "Contact", 'm';
    /// `Content-Disposition` (§20.11).
    ContentDisposition => "Content-Disposition";
    /// `Content-Encoding` (§20.12), compact `e`.
    ContentEncoding => "Content-Encoding", 'e';
    /// `Content-Language` (§20.13).
    ContentLanguage => "Content-Language";
    /// `Content-Length` (§20.14), compact `l`.
    ContentLength => "Content-Length", 'l';
    /// `Content-Type` (§20.15), compact `c`.
    ContentType => "Content-Type", 'c';
    /// `CSeq` (§20.16).
    CSeq => "CSeq";
    /// `Date` (§20.17).
    Date => "Date";
    /// `Error-Info` (§20.18).
    ErrorInfo => "Error-Info";
    /// `Event` (RFC 6665), compact `o`.
    Event => "Event", 'o';
    /// `Expires` (§20.19).
    Expires => "Expires";
    /// `From` (§20.20), compact `f`.
    From => "From", 'f';
    /// `Identity` (RFC 8224), compact `y`.
    Identity => "Identity", 'y';
    /// `In-Reply-To` (§20.21).
    InReplyTo => "In-Reply-To";
    /// `Max-Forwards` (§20.22).
    MaxForwards => "Max-Forwards";
    /// `Min-Expires` (§20.23).
    MinExpires => "Min-Expires";
    /// `MIME-Version` (§20.24).
    MimeVersion => "MIME-Version";
    /// `Organization` (§20.25).
    Organization => "Organization";
    /// `Priority` (§20.26).
    Priority => "Priority";
    /// `Proxy-Authenticate` (§20.27).
    ProxyAuthenticate => "Proxy-Authenticate";
    /// `Proxy-Authorization` (§20.28).
    ProxyAuthorization => "Proxy-Authorization";
    /// `Proxy-Require` (§20.29).
    ProxyRequire => "Proxy-Require";
    /// `RAck` (RFC 3262).
    RAck => "RAck";
    /// `Record-Route` (§20.30).
    RecordRoute => "Record-Route";
    /// `Refer-To` (RFC 3515), compact `r`.
    ReferTo => "Refer-To", 'r';
    /// `Referred-By` (RFC 3892), compact `b`.
    ReferredBy => "Referred-By", 'b';
    /// `Reject-Contact` (RFC 3841), compact `j`.
    RejectContact => "Reject-Contact", 'j';
    /// `Reply-To` (§20.31).
    ReplyTo => "Reply-To";
    /// `Request-Disposition` (RFC 3841), compact `d`.
    RequestDisposition => "Request-Disposition", 'd';
    /// `Require` (§20.32).
    Require => "Require";
    /// `Retry-After` (§20.33).
    RetryAfter => "Retry-After";
    /// `Route` (§20.34).
    Route => "Route";
    /// `RSeq` (RFC 3262).
    RSeq => "RSeq";
    /// `Server` (§20.35).
    Server => "Server";
    /// `Session-Expires` (RFC 4028), compact `x`.
    SessionExpires => "Session-Expires", 'x';
    /// `Subject` (§20.36), compact `s`.
    Subject => "Subject", 's';
    /// `Subscription-State` (RFC 6665).
    SubscriptionState => "Subscription-State";
    /// `Supported` (§20.37), compact `k`.
    Supported => "Supported", 'k';
    /// `Timestamp` (§20.38).
    Timestamp => "Timestamp";
    /// `To` (§20.39), compact `t`.
    To => "To", 't';
    /// `Unsupported` (§20.40).
    Unsupported => "Unsupported";
    /// `User-Agent` (§20.41).
    UserAgent => "User-Agent";
    /// `Via` (§20.42), compact `v`.
    Via => "Via", 'v';
    /// `Warning` (§20.43).
    Warning => "Warning";
    /// `WWW-Authenticate` (§20.44).
    WwwAuthenticate => "WWW-Authenticate";
}

/// Compares a header name with a lower-case known name. Names are tokens, and in a token only
/// the letters change under `| 0x20`: the known names hold letters, digits and `-`, which no
/// other token byte folds onto, so eight bytes compare at a time.
fn eq_folded(name: &[u8], lower: &[u8]) -> bool {
    if name.len() != lower.len() {
        return false;
    }
    let mut a = name.chunks_exact(8);
    let mut b = lower.chunks_exact(8);
    for (x, y) in (&mut a).zip(&mut b) {
        let mut wx = [0u8; 8];
        let mut wy = [0u8; 8];
        wx.copy_from_slice(x);
        wy.copy_from_slice(y);
        if u64::from_le_bytes(wx) | 0x2020_2020_2020_2020 != u64::from_le_bytes(wy) {
            return false;
        }
    }
    a.remainder()
        .iter()
        .zip(b.remainder())
        .all(|(x, y)| x | 0x20 == *y)
}

impl HeaderName {
    /// The known names of a given length, in lower case: a handful at most, so classifying a
    /// name is a length dispatch and one or two comparisons.
    fn candidates(len: usize) -> &'static [(&'static str, HeaderName)] {
        match len {
            2 => &[("to", HeaderName::To)],
            3 => &[("via", HeaderName::Via)],
            4 => &[
                ("cseq", HeaderName::CSeq),
                ("date", HeaderName::Date),
                ("from", HeaderName::From),
                ("rack", HeaderName::RAck),
                ("rseq", HeaderName::RSeq),
            ],
            5 => &[
                ("allow", HeaderName::Allow),
                ("event", HeaderName::Event),
                ("route", HeaderName::Route),
            ],
            6 => &[
                ("accept", HeaderName::Accept),
                ("server", HeaderName::Server),
            ],
            7 => &[
                ("call-id", HeaderName::CallId),
                ("contact", HeaderName::Contact),
                ("expires", HeaderName::Expires),
                ("require", HeaderName::Require),
                ("subject", HeaderName::Subject),
                ("warning", HeaderName::Warning),
            ],
            8 => &[
                ("identity", HeaderName::Identity),
                ("priority", HeaderName::Priority),
                ("refer-to", HeaderName::ReferTo),
                ("reply-to", HeaderName::ReplyTo),
            ],
            9 => &[
                ("call-info", HeaderName::CallInfo),
                ("supported", HeaderName::Supported),
                ("timestamp", HeaderName::Timestamp),
            ],
            10 => &[
                ("alert-info", HeaderName::AlertInfo),
                ("error-info", HeaderName::ErrorInfo),
                ("user-agent", HeaderName::UserAgent),
            ],
            11 => &[
                ("in-reply-to", HeaderName::InReplyTo),
                ("min-expires", HeaderName::MinExpires),
                ("referred-by", HeaderName::ReferredBy),
                ("retry-after", HeaderName::RetryAfter),
                ("unsupported", HeaderName::Unsupported),
            ],
            12 => &[
                ("allow-events", HeaderName::AllowEvents),
                ("content-type", HeaderName::ContentType),
                ("max-forwards", HeaderName::MaxForwards),
                ("mime-version", HeaderName::MimeVersion),
                ("organization", HeaderName::Organization),
                ("record-route", HeaderName::RecordRoute),
            ],
            13 => &[
                ("authorization", HeaderName::Authorization),
                ("proxy-require", HeaderName::ProxyRequire),
            ],
            14 => &[
                ("accept-contact", HeaderName::AcceptContact),
                ("content-length", HeaderName::ContentLength),
                ("reject-contact", HeaderName::RejectContact),
            ],
            15 => &[
                ("accept-encoding", HeaderName::AcceptEncoding),
                ("accept-language", HeaderName::AcceptLanguage),
                ("session-expires", HeaderName::SessionExpires),
            ],
            16 => &[
                ("content-encoding", HeaderName::ContentEncoding),
                ("content-language", HeaderName::ContentLanguage),
                ("www-authenticate", HeaderName::WwwAuthenticate),
            ],
            18 => &[
                ("proxy-authenticate", HeaderName::ProxyAuthenticate),
                ("subscription-state", HeaderName::SubscriptionState),
            ],
            19 => &[
                ("authentication-info", HeaderName::AuthenticationInfo),
                ("content-disposition", HeaderName::ContentDisposition),
                ("proxy-authorization", HeaderName::ProxyAuthorization),
                ("request-disposition", HeaderName::RequestDisposition),
            ],
            _ => &[],
        }
    }

    /// Whether several values of this header may be joined in one line with commas
    /// (§7.3.1). Headers whose grammar contains bare commas (Date, the auth headers,
    /// User-Agent, Call-ID, ...) are not lists.
    pub fn is_list(self) -> bool {
        use HeaderName::*;
        matches!(
            self,
            Accept
                | AcceptContact
                | AcceptEncoding
                | AcceptLanguage
                | AlertInfo
                | Allow
                | AllowEvents
                | CallInfo
                | Contact
                | ContentEncoding
                | ContentLanguage
                | ErrorInfo
                | InReplyTo
                | ProxyRequire
                | RecordRoute
                | RejectContact
                | RequestDisposition
                | Require
                | Route
                | Supported
                | Unsupported
                | Via
                | Warning
        )
    }

    /// Whether the header may appear at most once (§7.3.1, table 2 of §20): a second,
    /// different value is an error ([`crate::ErrorKind::DuplicateHeader`]).
    pub fn is_single(self) -> bool {
        use HeaderName::*;
        matches!(
            self,
            CallId
                | ContentLength
                | ContentType
                | CSeq
                | From
                | To
                | MaxForwards
                | Expires
                | MinExpires
                | Event
                | ReferTo
                | SubscriptionState
                | RetryAfter
                | Date
        )
    }
}

impl std::fmt::Display for HeaderName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
