//! HTTP Digest for SIP, client side (RFC 3261 §22.4, RFC 7616 §3.4, RFC 8760 for SHA-256).
//!
//! A [`DigestSession`] is built from a challenge (`WWW-Authenticate` or `Proxy-Authenticate`)
//! and writes `Authorization` values. It keeps the nonce and the nonce count, so later requests
//! to the same realm reuse it without a new challenge (`nc` increases, a fresh `cnonce` each
//! time from the caller's RNG).

use crate::header::Challenge;
use md5::Md5;
use rand_core::RngCore;
use sha2::{Digest, Sha256};

/// The hash algorithm of a challenge (RFC 7616 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// MD5, the default when the challenge names none.
    Md5,
    /// SHA-256 (RFC 8760).
    Sha256,
}

impl DigestAlgorithm {
    /// Parses an `algorithm=` value; `None` for unsupported ones (`-sess` variants included).
    pub fn from_token(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("MD5") {
            Some(DigestAlgorithm::Md5)
        } else if s.eq_ignore_ascii_case("SHA-256") {
            Some(DigestAlgorithm::Sha256)
        } else {
            None
        }
    }

    /// The token written in credentials.
    pub fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Sha256 => "SHA-256",
        }
    }

    /// Lower-case hex of the hash of `data`.
    pub fn hex(self, data: &str) -> String {
        match self {
            DigestAlgorithm::Md5 => to_hex(&Md5::digest(data.as_bytes())),
            DigestAlgorithm::Sha256 => to_hex(&Sha256::digest(data.as_bytes())),
        }
    }
}

fn to_hex(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(H[(x >> 4) as usize] as char);
        s.push(H[(x & 15) as usize] as char);
    }
    s
}

/// A user name and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestCredentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl DigestCredentials {
    /// Credentials for `username`.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        DigestCredentials {
            username: username.into(),
            password: password.into(),
        }
    }
}

/// The response value of RFC 7616 §3.4.1: `H(H(A1):nonce[:nc:cnonce:qop]:H(A2))`.
#[allow(clippy::too_many_arguments)]
pub fn response(
    alg: DigestAlgorithm,
    username: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<(u32, &str)>,
) -> String {
    let ha1 = alg.hex(&format!("{username}:{realm}:{password}"));
    let ha2 = alg.hex(&format!("{method}:{uri}"));
    match qop {
        Some((nc, cnonce)) => alg.hex(&format!("{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}")),
        None => alg.hex(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// The state kept from one challenge for one realm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestSession {
    /// The realm.
    pub realm: String,
    nonce: String,
    opaque: Option<String>,
    algorithm: DigestAlgorithm,
    qop_auth: bool,
    nc: u32,
    /// Whether the challenge came in Proxy-Authenticate (answer with Proxy-Authorization).
    pub proxy: bool,
}

impl DigestSession {
    /// A session from a Digest challenge; `None` for other schemes and unsupported algorithms.
    pub fn from_challenge(ch: &Challenge<'_>, proxy: bool) -> Option<DigestSession> {
        if !ch.is_digest() {
            return None;
        }
        let algorithm = match ch.algorithm() {
            None => DigestAlgorithm::Md5,
            Some(a) => DigestAlgorithm::from_token(&a)?,
        };
        Some(DigestSession {
            realm: ch.realm()?.into_owned(),
            nonce: ch.nonce()?.into_owned(),
            opaque: ch.opaque().map(|o| o.into_owned()),
            algorithm,
            qop_auth: ch.offers_qop("auth"),
            nc: 0,
            proxy,
        })
    }

    /// The algorithm in use.
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The header value answering the challenge for `method` and `uri`; the nonce count
    /// increases on each call (RFC 7616 §3.4).
    pub fn authorization(
        &mut self,
        creds: &DigestCredentials,
        method: &str,
        uri: &str,
        rng: &mut dyn RngCore,
    ) -> String {
        let mut v = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", algorithm={}",
            creds.username,
            self.realm,
            self.nonce,
            uri,
            self.algorithm.as_str()
        );
        let resp = if self.qop_auth {
            self.nc = self.nc.wrapping_add(1);
            let cnonce = format!("{:016x}", rng.next_u64());
            let r = response(
                self.algorithm,
                &creds.username,
                &self.realm,
                &creds.password,
                method,
                uri,
                &self.nonce,
                Some((self.nc, &cnonce)),
            );
            v.push_str(&format!(
                ", qop=auth, nc={:08x}, cnonce=\"{}\"",
                self.nc, cnonce
            ));
            r
        } else {
            response(
                self.algorithm,
                &creds.username,
                &self.realm,
                &creds.password,
                method,
                uri,
                &self.nonce,
                None,
            )
        };
        v.push_str(&format!(", response=\"{resp}\""));
        if let Some(o) = &self.opaque {
            v.push_str(&format!(", opaque=\"{o}\""));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_md5_example_matches() {
        // RFC 2617 §3.5 example (HTTP, qop=auth).
        let r = response(
            DigestAlgorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some((1, "0a4f113b")),
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc7616_sha256_example_matches() {
        // RFC 7616 §3.9.1.
        let r = response(
            DigestAlgorithm::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            Some((1, "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")),
        );
        assert_eq!(
            r,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }
}
