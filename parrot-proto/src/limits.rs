//! Parser limits: how much a single message may cost to parse.

/// Bounds on what one message may use. Exceeding any of them is a [`crate::ParseError`] with
/// [`crate::ErrorKind::TooLarge`], never a crash or an unbounded allocation.
///
/// The defaults fit every message of the RFC 4475 and RFC 5118 corpora with a wide margin and
/// are far above what real SIP traffic carries (RFC 3261 §18.1.1 keeps UDP messages near the
/// path MTU; anything past 64 KiB cannot even be a UDP datagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message, start line, headers and body together, in bytes.
    pub max_message_size: usize,
    /// Most header lines (a folded header counts once; a comma list counts once).
    pub max_headers: usize,
    /// Longest single header, name and (unfolded) value, in bytes.
    pub max_header_len: usize,
}

impl Limits {
    /// Defaults: 64 KiB per message, 256 header lines, 16 KiB per header.
    pub const DEFAULT: Limits = Limits {
        max_message_size: 64 * 1024,
        max_headers: 256,
        max_header_len: 16 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
