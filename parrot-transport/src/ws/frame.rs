//! WebSocket base framing (RFC 6455 §5.2), masking (§5.3) and close status codes (§7.4).
//!
//! The decoder looks at a frame header only; the connection (`ws::WsSession`) waits for the
//! payload, so a header that announces an oversized payload is refused before any of it is
//! buffered.

use crate::error::WsError;

/// Frame opcodes (RFC 6455 §5.2, §11.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opcode {
    /// Continuation of a fragmented message (§5.4).
    Continuation,
    /// A UTF-8 text message (§5.6).
    Text,
    /// A binary message (§5.6).
    Binary,
    /// Close (§5.5.1).
    Close,
    /// Ping (§5.5.2).
    Ping,
    /// Pong (§5.5.3).
    Pong,
}

impl Opcode {
    fn from_bits(b: u8) -> Result<Opcode, WsError> {
        Ok(match b {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            other => return Err(WsError::UnknownOpcode(other)),
        })
    }

    fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// Control frames have the high opcode bit set (§5.5).
    pub(crate) fn is_control(self) -> bool {
        self.bits() & 0x8 != 0
    }
}

/// A decoded frame header (§5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    /// FIN: the last fragment of a message.
    pub fin: bool,
    /// The opcode.
    pub opcode: Opcode,
    /// The masking key, when the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub payload_len: u64,
    /// Bytes the header itself takes (2 to 14).
    pub header_len: usize,
}

/// Largest payload a control frame may carry (§5.5).
pub(crate) const MAX_CONTROL_PAYLOAD: usize = 125;

/// Decodes a frame header from the front of `buf`: `Ok(None)` when more bytes are needed.
pub(crate) fn decode_header(buf: &[u8]) -> Result<Option<FrameHeader>, WsError> {
    let (b0, b1) = match buf {
        [b0, b1, ..] => (*b0, *b1),
        _ => return Ok(None),
    };
    // No extension is negotiated, so RSV1-3 must be zero (§5.2).
    if b0 & 0x70 != 0 {
        return Err(WsError::ReservedBits);
    }
    let fin = b0 & 0x80 != 0;
    let opcode = Opcode::from_bits(b0 & 0x0F)?;
    let masked = b1 & 0x80 != 0;
    let (payload_len, mut at) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                let n = u64::from_be_bytes(a);
                // "the most significant bit MUST be 0" (§5.2).
                if n >> 63 != 0 {
                    return Err(WsError::BadLength);
                }
                (n, 10)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if opcode.is_control() {
        // Control frames are never fragmented and carry at most 125 bytes (§5.5).
        if !fin {
            return Err(WsError::FragmentedControl);
        }
        if payload_len > MAX_CONTROL_PAYLOAD as u64 {
            return Err(WsError::ControlTooLong);
        }
    }
    let mask = if masked {
        match buf.get(at..at + 4) {
            Some(k) => {
                at += 4;
                Some([k[0], k[1], k[2], k[3]])
            }
            None => return Ok(None),
        }
    } else {
        None
    };
    Ok(Some(FrameHeader {
        fin,
        opcode,
        mask,
        payload_len,
        header_len: at,
    }))
}

/// XORs `data` with the masking key (§5.3); its own inverse.
pub(crate) fn apply_mask(data: &mut [u8], key: [u8; 4]) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

/// Appends one frame to `out`, masking the payload when `mask` is given (client to server, §5.3).
pub(crate) fn encode_frame(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: Opcode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    out.push(if fin { 0x80 } else { 0 } | opcode.bits());
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    // The minimal length encoding is required (§5.2).
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if let Ok(n) = u16::try_from(len) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            let start = out.len();
            out.extend_from_slice(payload);
            apply_mask(&mut out[start..], key);
        }
        None => out.extend_from_slice(payload),
    }
}

/// Close status codes used by this crate (§7.4.1).
pub(crate) mod close_code {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// Protocol error.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// Data inconsistent with the message type (non-UTF-8 text).
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// Message too big to process.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
}

/// Whether a peer may send `code` in a Close frame (§7.4.1, §7.4.2): 1005, 1006 and 1015 are
/// reserved for local use, and 1016–2999 are unassigned or reserved for extensions.
pub(crate) fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(len: usize, mask: Option<[u8; 4]>) {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut out = Vec::new();
        encode_frame(&mut out, true, Opcode::Binary, &payload, mask);
        let h = decode_header(&out).unwrap().unwrap();
        assert!(h.fin);
        assert_eq!(h.opcode, Opcode::Binary);
        assert_eq!(h.mask, mask);
        assert_eq!(h.payload_len, len as u64);
        let mut body = out[h.header_len..].to_vec();
        if let Some(k) = h.mask {
            apply_mask(&mut body, k);
        }
        assert_eq!(body, payload);
        // Every strict prefix of the header is "need more".
        for cut in 0..h.header_len {
            assert_eq!(decode_header(&out[..cut]), Ok(None));
        }
    }

    #[test]
    fn lengths_use_the_three_encodings() {
        for len in [0, 1, 125, 126, 127, 65535, 65536, 70000] {
            roundtrip(len, None);
            roundtrip(len, Some([1, 2, 3, 4]));
        }
    }

    #[test]
    fn rfc_6455_section_5_7_examples() {
        // A single-frame unmasked text message "Hello".
        let h = decode_header(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f])
            .unwrap()
            .unwrap();
        assert_eq!((h.fin, h.opcode, h.payload_len), (true, Opcode::Text, 5));
        // A single-frame masked text message "Hello".
        let mut f = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let h = decode_header(&f).unwrap().unwrap();
        let key = h.mask.unwrap();
        apply_mask(&mut f[h.header_len..], key);
        assert_eq!(&f[h.header_len..], b"Hello");
        // The encoder gives the same bytes.
        let mut out = Vec::new();
        encode_frame(&mut out, true, Opcode::Text, b"Hello", Some(key));
        assert_eq!(
            out,
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
        // 256 bytes binary message in a single unmasked frame.
        let h = decode_header(&[0x82, 0x7E, 0x01, 0x00]).unwrap().unwrap();
        assert_eq!(h.payload_len, 256);
        // 64KiB binary message in a single unmasked frame.
        let h = decode_header(&[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0])
            .unwrap()
            .unwrap();
        assert_eq!(h.payload_len, 65536);
    }

    #[test]
    fn bad_headers_are_refused() {
        assert_eq!(decode_header(&[0xC1, 0x00]), Err(WsError::ReservedBits));
        assert_eq!(decode_header(&[0x83, 0x00]), Err(WsError::UnknownOpcode(3)));
        assert_eq!(
            decode_header(&[0x09, 0x00]),
            Err(WsError::FragmentedControl)
        );
        assert_eq!(
            decode_header(&[0x89, 0x7E, 0, 126]),
            Err(WsError::ControlTooLong)
        );
        assert_eq!(
            decode_header(&[0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(WsError::BadLength)
        );
    }

    #[test]
    fn close_codes() {
        assert!(is_valid_close_code(1000));
        assert!(is_valid_close_code(4999));
        for bad in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
            assert!(!is_valid_close_code(bad), "{bad}");
        }
    }
}
