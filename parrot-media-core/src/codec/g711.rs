//! G.711 μ-law (PCMU) and A-law (PCMA), ITU-T G.711 as implemented by the ITU-T G.191 Software
//! Tool Library (`g711.c`: `alaw_compress`, `alaw_expand`, `ulaw_compress`, `ulaw_expand`).
//!
//! Where G.191 and the common Sun `linear2ulaw` disagree (negative inputs at step boundaries, e.g.
//! -1 encodes to 0x7F in G.191 and 0x7E in Sun), this module follows G.191: it takes the one's
//! complement of negative inputs. Encoding and decoding are table lookups; every table is built at
//! compile time by `const fn`, so there is no lazy initialisation and no branch per sample.

/// The μ-law code of a linear 16-bit sample, computed the G.191 way (`ulaw_compress`).
const fn ulaw_compress(x: i16) -> u8 {
    let x = x as i32;
    // One's complement for negative input is what makes G.191 differ from the Sun encoder.
    let mut absno = if x < 0 {
        ((!x) >> 2) + 33
    } else {
        (x >> 2) + 33
    };
    if absno > 0x1FFF {
        absno = 0x1FFF;
    }
    let mut i = absno >> 6;
    let mut segno = 1;
    while i != 0 {
        segno += 1;
        i >>= 1;
    }
    let high_nibble = 0x0008 - segno;
    let low_nibble = 0x000F - ((absno >> segno) & 0x000F);
    let mut out = (high_nibble << 4) | low_nibble;
    if x >= 0 {
        out |= 0x0080;
    }
    (out & 0xFF) as u8
}

/// The linear value of a μ-law code (`ulaw_expand`).
const fn ulaw_expand(code: u8) -> i16 {
    let sign: i32 = if code < 0x80 { -1 } else { 1 };
    let mantissa = !(code as i32);
    let exponent = (mantissa >> 4) & 0x07;
    let segment = exponent + 1;
    let mantissa = mantissa & 0x0F;
    let step = 4 << segment;
    (sign * ((0x80 << exponent) + step * mantissa + step / 2 - 4 * 33)) as i16
}

/// The A-law code of a linear 16-bit sample (`alaw_compress`).
const fn alaw_compress(x: i16) -> u8 {
    let x = x as i32;
    let mut ix = if x < 0 { (!x) >> 4 } else { x >> 4 };
    if ix > 15 {
        let mut iexp = 1;
        while ix > 16 + 15 {
            ix >>= 1;
            iexp += 1;
        }
        ix -= 16;
        ix += iexp << 4;
    }
    if x >= 0 {
        ix |= 0x0080;
    }
    ((ix ^ 0x0055) & 0xFF) as u8
}

/// The linear value of an A-law code (`alaw_expand`).
const fn alaw_expand(code: u8) -> i16 {
    let ix = ((code as i32) ^ 0x0055) & 0x007F;
    let iexp = ix >> 4;
    let mut mant = ix & 0x000F;
    if iexp > 0 {
        mant += 16;
    }
    mant = (mant << 4) + 0x0008;
    if iexp > 1 {
        mant <<= iexp - 1;
    }
    (if code > 127 { mant } else { -mant }) as i16
}

/// μ-law encoding depends only on the top 14 bits of the sample (`x >> 2`), so the table is
/// indexed by those bits, read as unsigned.
static ULAW_ENCODE: [u8; 16384] = {
    let mut t = [0u8; 16384];
    let mut i = 0;
    while i < 16384 {
        let x = ((i as u16) << 2) as i16;
        t[i] = ulaw_compress(x);
        i += 1;
    }
    t
};

/// A-law encoding depends only on the top 12 bits of the sample (`x >> 4`).
static ALAW_ENCODE: [u8; 4096] = {
    let mut t = [0u8; 4096];
    let mut i = 0;
    while i < 4096 {
        let x = ((i as u16) << 4) as i16;
        t[i] = alaw_compress(x);
        i += 1;
    }
    t
};

static ULAW_DECODE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_expand(i as u8);
        i += 1;
    }
    t
};

static ALAW_DECODE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_expand(i as u8);
        i += 1;
    }
    t
};

/// Encodes one linear sample to μ-law (PCMU).
#[inline(always)]
#[must_use]
pub fn ulaw_encode(sample: i16) -> u8 {
    ULAW_ENCODE[(sample as u16 >> 2) as usize]
}

/// Decodes one μ-law (PCMU) code to a linear 16-bit sample.
#[inline(always)]
#[must_use]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[code as usize]
}

/// Encodes one linear sample to A-law (PCMA).
#[inline(always)]
#[must_use]
pub fn alaw_encode(sample: i16) -> u8 {
    ALAW_ENCODE[(sample as u16 >> 4) as usize]
}

/// Decodes one A-law (PCMA) code to a linear 16-bit sample.
#[inline(always)]
#[must_use]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[code as usize]
}

/// Encodes `min(pcm.len(), out.len())` samples to μ-law; returns how many were written.
pub fn ulaw_encode_slice(pcm: &[i16], out: &mut [u8]) -> usize {
    let n = pcm.len().min(out.len());
    // An OR over the whole frame (no early exit, so it vectorises) tells silence apart.
    if pcm[..n].iter().fold(0, |acc, &s| acc | s) == 0 {
        // Digital silence (what a call sends when nothing plays): one code, filled.
        out[..n].fill(ulaw_encode(0));
        return n;
    }
    for (o, &s) in out[..n].iter_mut().zip(&pcm[..n]) {
        *o = ulaw_encode(s);
    }
    n
}

/// Decodes `min(codes.len(), out.len())` μ-law codes; returns how many samples were written.
pub fn ulaw_decode_slice(codes: &[u8], out: &mut [i16]) -> usize {
    decode_with(codes, out, ulaw_decode)
}

/// Encodes `min(pcm.len(), out.len())` samples to A-law; returns how many were written.
pub fn alaw_encode_slice(pcm: &[i16], out: &mut [u8]) -> usize {
    let n = pcm.len().min(out.len());
    // An OR over the whole frame (no early exit, so it vectorises) tells silence apart.
    if pcm[..n].iter().fold(0, |acc, &s| acc | s) == 0 {
        // Digital silence (what a call sends when nothing plays): one code, filled.
        out[..n].fill(alaw_encode(0));
        return n;
    }
    for (o, &s) in out[..n].iter_mut().zip(&pcm[..n]) {
        *o = alaw_encode(s);
    }
    n
}

/// Decodes `min(codes.len(), out.len())` A-law codes; returns how many samples were written.
pub fn alaw_decode_slice(codes: &[u8], out: &mut [i16]) -> usize {
    decode_with(codes, out, alaw_decode)
}

/// Decodes four codes per step and stores them as one 64-bit word: one store instead of four
/// halves the store-port pressure that bounds a table decoder.
#[inline(always)]
fn decode_with(codes: &[u8], out: &mut [i16], f: impl Fn(u8) -> i16) -> usize {
    let n = codes.len().min(out.len());
    let (codes, out) = (&codes[..n], &mut out[..n]);
    let mut oc = out.chunks_exact_mut(4);
    let mut cc = codes.chunks_exact(4);
    for (o, c) in (&mut oc).zip(&mut cc) {
        let mut w = 0u64;
        for (i, &code) in c.iter().enumerate() {
            w |= u64::from(f(code) as u16) << (16 * i);
        }
        let b = w.to_le_bytes();
        for (i, s) in o.iter_mut().enumerate() {
            *s = i16::from_le_bytes([b[2 * i], b[2 * i + 1]]);
        }
    }
    for (o, &c) in oc.into_remainder().iter_mut().zip(cc.remainder()) {
        *o = f(c);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sun_and_g191_disagree_on_minus_one() {
        assert_eq!(ulaw_encode(-1), 0x7F);
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
    }

    #[test]
    fn slice_decoders_match_per_sample_decoders_for_every_length() {
        let codes: Vec<u8> = (0..=255u8).chain(0..=255).collect();
        for len in 0..20 {
            let mut a = vec![0i16; len];
            let mut u = vec![0i16; len];
            assert_eq!(alaw_decode_slice(&codes[..len], &mut a), len);
            assert_eq!(ulaw_decode_slice(&codes[..len], &mut u), len);
            for i in 0..len {
                assert_eq!(a[i], alaw_decode(codes[i]));
                assert_eq!(u[i], ulaw_decode(codes[i]));
            }
        }
        let mut out = vec![0i16; 512];
        assert_eq!(ulaw_decode_slice(&codes, &mut out[..100]), 100);
        assert_eq!(ulaw_decode_slice(&codes[..7], &mut out), 7);
    }

    #[test]
    fn decode_of_silence_codes_is_near_zero() {
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(alaw_decode(0xD5), 8);
    }

    #[test]
    fn slice_encoders_give_the_per_sample_codes_for_silence_and_for_a_lone_sample() {
        let mut pcm = [0i16; 160];
        let mut out = [0u8; 160];
        assert_eq!(ulaw_encode_slice(&pcm, &mut out), 160);
        assert!(out.iter().all(|&c| c == ulaw_encode(0) && c == 0xFF));
        assert_eq!(alaw_encode_slice(&pcm, &mut out), 160);
        assert!(out.iter().all(|&c| c == alaw_encode(0) && c == 0xD5));
        pcm[159] = -1;
        ulaw_encode_slice(&pcm, &mut out);
        assert_eq!(out[159], ulaw_encode(-1));
        assert!(out[..159].iter().all(|&c| c == ulaw_encode(0)));
    }
}
