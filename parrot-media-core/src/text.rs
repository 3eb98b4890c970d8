//! Text building without `core::fmt`: decimal integers and IP addresses pushed straight onto a
//! `String`. SDP lines (RFC 8866 §5) and RTCP CNAMEs (RFC 3550 §6.5.1) are made of these, and
//! going through the formatting machinery costs several times more than the bytes themselves.

use core::fmt::Write as _;
use core::net::IpAddr;

/// `n` in decimal, exactly as `n.to_string()` writes it, in `buf`.
pub(crate) fn u64_text(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    core::str::from_utf8(&buf[i..]).unwrap_or_default()
}

/// Appends `n` in decimal, exactly as `n.to_string()` writes it.
pub(crate) fn push_u64(out: &mut String, n: u64) {
    out.push_str(u64_text(n, &mut [0; 20]));
}

/// Appends `ip` exactly as its `Display` writes it (dotted quad; RFC 5952 text for IPv6).
pub(crate) fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_u64(out, u64::from(octet));
            }
        }
        // IPv6 text has zero-run compression and embedded IPv4 forms: leave it to `Display`.
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn push_u64_writes_what_to_string_writes(n in any::<u64>()) {
            let mut s = String::from("x");
            push_u64(&mut s, n);
            prop_assert_eq!(s, format!("x{n}"));
        }

        #[test]
        fn push_ip_writes_what_display_writes(v4 in any::<[u8; 4]>(), v6 in any::<[u16; 8]>()) {
            for ip in [IpAddr::from(v4), IpAddr::from(v6)] {
                let mut s = String::new();
                push_ip(&mut s, ip);
                prop_assert_eq!(s, ip.to_string());
            }
        }
    }

    #[test]
    fn push_u64_writes_the_extremes() {
        for n in [0, 9, 10, 99, 100, u64::MAX] {
            let mut s = String::new();
            push_u64(&mut s, n);
            assert_eq!(s, n.to_string());
        }
    }
}
