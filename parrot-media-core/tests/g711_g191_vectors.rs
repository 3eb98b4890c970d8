//! G.711 against the ITU-T G.191 reference vectors: all 65,536 linear inputs for both laws, and
//! all 256 codes for both decoders.

use parrot_media_core::codec::g711::{alaw_decode, alaw_encode, ulaw_decode, ulaw_encode};
use std::path::PathBuf;

fn vector(name: &str) -> Vec<u16> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../conformance/g711")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(bytes.len(), 131072);
    bytes
        .chunks_exact(2)
        .map(|w| u16::from_le_bytes([w[0], w[1]]))
        .collect()
}

#[test]
fn sweep_source_is_every_linear_value() {
    let src = vector("sweep.src");
    for (i, &w) in src.iter().enumerate() {
        assert_eq!(w as i16 as i32, i as i32 - 32768);
    }
}

#[test]
fn alaw_encoder_matches_g191_for_all_65536_inputs() {
    let codes = vector("sweep-r.a");
    for (i, &w) in codes.iter().enumerate() {
        let x = (i as i32 - 32768) as i16;
        assert_eq!(alaw_encode(x), (w & 0xFF) as u8, "input {x}");
    }
}

#[test]
fn ulaw_encoder_matches_g191_for_all_65536_inputs() {
    let codes = vector("sweep-r.u");
    for (i, &w) in codes.iter().enumerate() {
        let x = (i as i32 - 32768) as i16;
        assert_eq!(ulaw_encode(x), (w & 0xFF) as u8, "input {x}");
    }
}

#[test]
fn alaw_decoder_matches_g191() {
    let codes = vector("sweep-r.a");
    let decoded = vector("sweep-r.a-a");
    let roundtrip = vector("sweep-r.rea");
    for i in 0..65536 {
        let code = (codes[i] & 0xFF) as u8;
        assert_eq!(alaw_decode(code), decoded[i] as i16, "code {code:#x}");
        let x = (i as i32 - 32768) as i16;
        assert_eq!(alaw_decode(alaw_encode(x)), roundtrip[i] as i16);
    }
}

#[test]
fn ulaw_decoder_matches_g191() {
    let codes = vector("sweep-r.u");
    let decoded = vector("sweep-r.u-u");
    let roundtrip = vector("sweep-r.reu");
    for i in 0..65536 {
        let code = (codes[i] & 0xFF) as u8;
        assert_eq!(ulaw_decode(code), decoded[i] as i16, "code {code:#x}");
        let x = (i as i32 - 32768) as i16;
        assert_eq!(ulaw_decode(ulaw_encode(x)), roundtrip[i] as i16);
    }
}

fn tsv(name: &str) -> Vec<Vec<String>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../conformance")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

fn hex(s: &str) -> u8 {
    u8::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

#[test]
fn ulaw_follows_g191_where_sun_encoder_differs() {
    let rows = tsv("g711/ulaw_encode_g191_vs_sun.tsv");
    assert_eq!(rows.len(), 508);
    for r in rows {
        let x: i16 = r[0].parse().unwrap();
        assert_eq!(ulaw_encode(x), hex(&r[1]));
        assert_ne!(ulaw_encode(x), hex(&r[2]));
    }
}

#[test]
fn known_pairs_and_decode_tables_match() {
    for r in tsv("media/g711_known_pairs.tsv") {
        let x: i16 = r[0].parse().unwrap();
        assert_eq!(alaw_encode(x), hex(&r[1]));
        assert_eq!(alaw_decode(hex(&r[1])), r[2].parse::<i16>().unwrap());
        assert_eq!(ulaw_encode(x), hex(&r[3]));
        assert_eq!(ulaw_decode(hex(&r[3])), r[4].parse::<i16>().unwrap());
    }
    let rows = tsv("media/g711_tables.tsv");
    assert_eq!(rows.len(), 256);
    for r in rows {
        let code: u8 = r[1].parse().unwrap();
        assert_eq!(alaw_decode(code), r[2].parse::<i16>().unwrap());
        assert_eq!(ulaw_decode(code), r[3].parse::<i16>().unwrap());
    }
}
