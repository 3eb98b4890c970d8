//! Parrot's conformance suite.
//!
//! * `tests/rfc4475.rs` and `tests/rfc5118.rs` run every message of the RFC 4475 (SIP torture
//!   tests) and RFC 5118 (IPv6 torture tests) corpora against its verdict in `MANIFEST.tsv`.
//! * The interop scenarios against real peers (SIPp, baresip, Kamailio, tshark) live in
//!   `scripts/` and are run by the README's test command.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

/// One row of a corpus manifest.
#[derive(Debug, Clone)]
pub struct Case {
    /// Short name, e.g. `wsinv`.
    pub name: String,
    /// Path of the message file.
    pub path: PathBuf,
    /// RFC section.
    pub section: String,
    /// The expected verdict, as written in the manifest.
    pub expected: String,
}

/// The directory holding this crate's corpora.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Reads a manifest: `columns` names the column holding the file path (relative to the
/// manifest's directory), the section and the verdict.
pub fn manifest(dir: &str, file_col: &str) -> Vec<Case> {
    let base = corpus_dir().join(dir);
    let text = std::fs::read_to_string(base.join("MANIFEST.tsv")).expect("manifest is shipped");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let col = |n: &str| {
        header
            .iter()
            .position(|h| *h == n)
            .expect("manifest column")
    };
    let (name, file, section, expected) = (
        col("name"),
        col(file_col),
        col("rfc_section"),
        col("expected"),
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Case {
                name: f[name].to_owned(),
                path: base.join(f[file]),
                section: f[section].to_owned(),
                expected: f[expected].to_owned(),
            }
        })
        .collect()
}
