//! Authentication headers: WWW-Authenticate, Proxy-Authenticate, Authorization,
//! Proxy-Authorization (RFC 3261 §20.7, §20.27, §20.28, §20.44, §25.1; RFC 7616 §3) and
//! Authentication-Info (RFC 7615 §3).

use crate::text::{trim_lws, unquote, Splitter};
use std::borrow::Cow;

/// A comma-separated `auth-param` list (`realm="x", nonce="y", qop="auth"`), parsed on access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthParams<'a> {
    raw: &'a str,
}

impl<'a> AuthParams<'a> {
    /// Wraps the raw list.
    pub fn new(raw: &'a str) -> Self {
        AuthParams { raw }
    }

    /// The raw list as written.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// The `(name, raw value)` pairs in order; quoted values keep their quotes.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        Splitter::new(self.raw, b',').filter_map(|p| {
            let (n, v) = crate::text::split_byte(p, b'=')?;
            Some((trim_lws(n), trim_lws(v)))
        })
    }

    /// A parameter's value with quotes and escapes resolved.
    pub fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        let (_, v) = self.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))?;
        if v.starts_with('"') {
            unquote(v)
        } else {
            Some(Cow::Borrowed(v))
        }
    }

    /// Whether every element is `token = (token / quoted-string)`.
    pub fn is_valid(&self) -> bool {
        Splitter::new(self.raw, b',').all(|p| match crate::text::split_byte(p, b'=') {
            Some((n, v)) => {
                let (n, v) = (trim_lws(n), trim_lws(v));
                crate::text::is_token(n)
                    && (if v.starts_with('"') {
                        unquote(v).is_some()
                    } else {
                        crate::text::is_token(v)
                    })
            }
            None => false,
        })
    }
}

fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let s = trim_lws(s);
    let end = crate::text::find_lws(s).unwrap_or(s.len());
    let scheme = &s[..end];
    crate::text::is_token(scheme).then(|| (scheme, trim_lws(&s[end..])))
}

/// A challenge from WWW-Authenticate or Proxy-Authenticate (RFC 7616 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge<'a> {
    /// The scheme, `Digest` for everything Parrot answers.
    pub scheme: &'a str,
    /// The parameters.
    pub params: AuthParams<'a>,
}

impl<'a> Challenge<'a> {
    /// Parses `auth-scheme LWS auth-param *(COMMA auth-param)`.
    pub fn parse(s: &'a str) -> Option<Challenge<'a>> {
        let (scheme, rest) = split_scheme(s)?;
        Some(Challenge {
            scheme,
            params: AuthParams::new(rest),
        })
    }
    /// Whether the scheme is Digest.
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Digest")
    }
    /// `realm`.
    pub fn realm(&self) -> Option<Cow<'a, str>> {
        self.params.get("realm")
    }
    /// `nonce`.
    pub fn nonce(&self) -> Option<Cow<'a, str>> {
        self.params.get("nonce")
    }
    /// `opaque`.
    pub fn opaque(&self) -> Option<Cow<'a, str>> {
        self.params.get("opaque")
    }
    /// `algorithm` (MD5 when absent, RFC 7616 §3.3).
    pub fn algorithm(&self) -> Option<Cow<'a, str>> {
        self.params.get("algorithm")
    }
    /// `stale=true` (RFC 7616 §3.3).
    pub fn stale(&self) -> bool {
        self.params
            .get("stale")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
    /// Whether `qop` offers the given option (`auth`, `auth-int`).
    pub fn offers_qop(&self, qop: &str) -> bool {
        self.params
            .get("qop")
            .is_some_and(|v| v.split(',').any(|q| trim_lws(q).eq_ignore_ascii_case(qop)))
    }
}

/// Credentials from Authorization or Proxy-Authorization (RFC 7616 §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials<'a> {
    /// The scheme.
    pub scheme: &'a str,
    /// The parameters.
    pub params: AuthParams<'a>,
}

impl<'a> Credentials<'a> {
    /// Parses `auth-scheme LWS auth-param *(COMMA auth-param)`.
    pub fn parse(s: &'a str) -> Option<Credentials<'a>> {
        let (scheme, rest) = split_scheme(s)?;
        Some(Credentials {
            scheme,
            params: AuthParams::new(rest),
        })
    }
    /// `username`.
    pub fn username(&self) -> Option<Cow<'a, str>> {
        self.params.get("username")
    }
    /// `realm`.
    pub fn realm(&self) -> Option<Cow<'a, str>> {
        self.params.get("realm")
    }
    /// `nonce`.
    pub fn nonce(&self) -> Option<Cow<'a, str>> {
        self.params.get("nonce")
    }
    /// `uri` (the digest-uri).
    pub fn uri(&self) -> Option<Cow<'a, str>> {
        self.params.get("uri")
    }
    /// `response`.
    pub fn response(&self) -> Option<Cow<'a, str>> {
        self.params.get("response")
    }
    /// `algorithm`.
    pub fn algorithm(&self) -> Option<Cow<'a, str>> {
        self.params.get("algorithm")
    }
    /// `cnonce`.
    pub fn cnonce(&self) -> Option<Cow<'a, str>> {
        self.params.get("cnonce")
    }
    /// `qop`.
    pub fn qop(&self) -> Option<Cow<'a, str>> {
        self.params.get("qop")
    }
    /// `nc`, the nonce count in hex (RFC 7616 §3.4).
    pub fn nonce_count(&self) -> Option<u32> {
        let nc = self.params.get("nc")?;
        u32::from_str_radix(&nc, 16).ok()
    }
    /// `opaque`.
    pub fn opaque(&self) -> Option<Cow<'a, str>> {
        self.params.get("opaque")
    }
}
