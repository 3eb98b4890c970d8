//! Audio codecs: identifiers as negotiated in SDP (RFC 3551 §4.5, §6) and the [`AudioCodec`] trait
//! the session encodes and decodes through, so a codec such as Opus can be added without touching
//! the session.

pub mod g711;
#[cfg(feature = "opus")]
pub mod opus;

/// A codec as named in an `a=rtpmap` line or by a static payload type (RFC 3551 §6, Table 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// G.711 μ-law, static payload type 0, 8000 Hz.
    Pcmu,
    /// G.711 A-law, static payload type 8, 8000 Hz.
    Pcma,
    /// G.722, static payload type 9 (RTP clock 8000 Hz per RFC 3551 §4.5.2, audio at 16 kHz).
    G722,
    /// Opus (RFC 7587), dynamic payload type, RTP clock 48000 Hz, two channels in SDP.
    Opus,
}

impl Codec {
    /// The encoding name used in `a=rtpmap` (RFC 3551 §6).
    #[must_use]
    pub const fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::G722 => "G722",
            Codec::Opus => "opus",
        }
    }

    /// The RTP timestamp clock rate (RFC 3551 §4.5).
    #[must_use]
    pub const fn clock_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma | Codec::G722 => 8000,
            Codec::Opus => 48000,
        }
    }

    /// The channel count written in `a=rtpmap`, if any (RFC 7587 §7 mandates `/2` for Opus).
    #[must_use]
    pub const fn rtpmap_channels(self) -> Option<u8> {
        match self {
            Codec::Opus => Some(2),
            _ => None,
        }
    }

    /// The static payload type of RFC 3551 Table 4, if the codec has one.
    #[must_use]
    pub const fn static_payload_type(self) -> Option<u8> {
        match self {
            Codec::Pcmu => Some(0),
            Codec::Pcma => Some(8),
            Codec::G722 => Some(9),
            Codec::Opus => None,
        }
    }

    /// The codec for a static payload type (RFC 3551 Table 4), if it is one this crate knows.
    #[must_use]
    pub const fn from_static_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            9 => Some(Codec::G722),
            _ => None,
        }
    }

    /// The codec for an `a=rtpmap` encoding name and clock rate (names are case-insensitive,
    /// RFC 4855 §3).
    #[must_use]
    pub fn from_rtpmap(name: &str, clock_rate: u32) -> Option<Codec> {
        [Codec::Pcmu, Codec::Pcma, Codec::G722, Codec::Opus]
            .into_iter()
            .find(|c| c.encoding_name().eq_ignore_ascii_case(name) && c.clock_rate() == clock_rate)
    }
}

impl core::fmt::Display for Codec {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.encoding_name())
    }
}

/// An audio codec instance: mono 16-bit PCM in, RTP payload out, and back.
///
/// Implementations must not allocate in `encode`/`decode`; the session calls them once per packet.
pub trait AudioCodec: Send {
    /// Which codec this is.
    fn codec(&self) -> Codec;
    /// The sample rate of the PCM this codec consumes and produces (may differ from the RTP
    /// clock, e.g. G.722).
    fn sample_rate(&self) -> u32;
    /// Encodes `pcm` into `out`; returns the payload length, or `None` if `out` is too small.
    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Option<usize>;
    /// Decodes `payload` into `out`; returns the number of samples, or `None` if the payload is
    /// invalid or `out` too small.
    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Option<usize>;
}

/// G.711 μ-law as an [`AudioCodec`].
#[derive(Clone, Copy, Debug, Default)]
pub struct PcmuCodec;

/// G.711 A-law as an [`AudioCodec`].
#[derive(Clone, Copy, Debug, Default)]
pub struct PcmaCodec;

impl AudioCodec for PcmuCodec {
    fn codec(&self) -> Codec {
        Codec::Pcmu
    }
    fn sample_rate(&self) -> u32 {
        8000
    }
    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Option<usize> {
        (out.len() >= pcm.len()).then(|| g711::ulaw_encode_slice(pcm, out))
    }
    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Option<usize> {
        (out.len() >= payload.len()).then(|| g711::ulaw_decode_slice(payload, out))
    }
}

impl AudioCodec for PcmaCodec {
    fn codec(&self) -> Codec {
        Codec::Pcma
    }
    fn sample_rate(&self) -> u32 {
        8000
    }
    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Option<usize> {
        (out.len() >= pcm.len()).then(|| g711::alaw_encode_slice(pcm, out))
    }
    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Option<usize> {
        (out.len() >= payload.len()).then(|| g711::alaw_decode_slice(payload, out))
    }
}

/// Creates the built-in codec implementation for `codec`, or `None` if this build has none
/// (Opus needs the `opus` cargo feature; G.722 an implementation supplied through
/// [`crate::session::MediaConfig::codec_factory`]).
#[must_use]
pub fn builtin_codec(codec: Codec) -> Option<Box<dyn AudioCodec>> {
    match codec {
        Codec::Pcmu => Some(Box::new(PcmuCodec)),
        Codec::Pcma => Some(Box::new(PcmaCodec)),
        #[cfg(feature = "opus")]
        Codec::Opus => opus::OpusCodec::new().map(|c| Box::new(c) as Box<dyn AudioCodec>),
        _ => None,
    }
}
