//! Parameter lists: `*( SEMI generic-param )` of headers and URIs (RFC 3261 §19.1.1, §25.1).

use crate::text::{is_token, trim_lws, unquote, Splitter};
use std::borrow::Cow;

/// A borrowed parameter list, parsed on access. The raw text starts after the first `;`.
///
/// Names match case-insensitively (§7.3.1); linear white space around `;` and `=` is ignored,
/// so folded headers such as RFC 4475's `wsinv` read naturally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a> {
    raw: &'a str,
}

/// One parameter: a name and an optional value (quoted values keep their quotes; see
/// [`Param::unquoted_value`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// The parameter name, trimmed.
    pub name: &'a str,
    /// The value after `=`, trimmed, quotes kept; `None` for a flag parameter.
    pub value: Option<&'a str>,
}

impl<'a> Param<'a> {
    /// The `generic-param` grammar: the name a token, the value a token, a host or a quoted
    /// string.
    pub(crate) fn is_valid(&self) -> bool {
        is_token(self.name)
            && match self.value {
                None => true,
                Some(v) if v.starts_with('"') => unquote(v).is_some(),
                Some(v) => {
                    !v.is_empty()
                        && v.bytes().all(|b| {
                            crate::text::is_token_byte(b) || matches!(b, b'[' | b']' | b':')
                        })
                }
            }
    }

    /// The value with a quoted string's quotes and escapes resolved.
    pub fn unquoted_value(&self) -> Option<Cow<'a, str>> {
        let v = self.value?;
        if v.starts_with('"') {
            unquote(v)
        } else {
            Some(Cow::Borrowed(v))
        }
    }
}

impl<'a> Params<'a> {
    /// Wraps the raw text after the first `;` (empty for no parameters).
    pub fn new(raw: &'a str) -> Self {
        Params { raw }
    }

    /// The raw text, as in the message.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        trim_lws(self.raw).is_empty()
    }

    /// The parameters in order.
    pub fn iter(&self) -> impl Iterator<Item = Param<'a>> + 'a {
        let raw = self.raw;
        let empty = trim_lws(raw).is_empty();
        Splitter::new(raw, b';').filter(move |_| !empty).map(|p| {
            match crate::text::split_byte(p, b'=') {
                Some((n, v)) => Param {
                    name: trim_lws(n),
                    value: Some(trim_lws(v)),
                },
                None => Param {
                    name: trim_lws(p),
                    value: None,
                },
            }
        })
    }

    /// Looks a parameter up: `None` if absent, `Some(None)` if present without a value.
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        for p in Splitter::new(self.raw, b';') {
            let (n, v) = match crate::text::split_byte(p, b'=') {
                Some((n, v)) => (n, Some(v)),
                None => (p, None),
            };
            if trim_lws(n).eq_ignore_ascii_case(name) {
                return Some(v.map(trim_lws));
            }
        }
        None
    }

    /// The value of a parameter that has one.
    pub fn value(&self, name: &str) -> Option<&'a str> {
        self.get(name).flatten()
    }

    /// Whether a parameter is present, with or without a value.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Checks the `generic-param` grammar: every name is a token, every value a token, a host
    /// or a quoted string; no empty parameters (RFC 4475 §3.1.2.1 `badinv01`).
    pub fn is_valid(&self) -> bool {
        if self.is_empty() {
            return true;
        }
        self.iter().all(|p| p.is_valid())
    }
}
