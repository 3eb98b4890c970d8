//! DTMF: RFC 4733 telephone-events out of band ([`rfc4733`]) and in-band tone detection with the
//! Goertzel algorithm ([`goertzel`]).

pub mod goertzel;
pub mod rfc4733;

/// The event code of a DTMF key (RFC 4733 §3.2, Table 7): 0-9, `*`=10, `#`=11, A-D=12-15.
#[must_use]
pub fn event_for_digit(digit: char) -> Option<u8> {
    Some(match digit {
        '0'..='9' => digit as u8 - b'0',
        '*' => 10,
        '#' => 11,
        'A'..='D' => digit as u8 - b'A' + 12,
        'a'..='d' => digit as u8 - b'a' + 12,
        _ => return None,
    })
}

/// The key of a DTMF event code (RFC 4733 §3.2), `None` for other events (flash is 16).
#[must_use]
pub fn digit_for_event(event: u8) -> Option<char> {
    Some(match event {
        0..=9 => (b'0' + event) as char,
        10 => '*',
        11 => '#',
        12..=15 => (b'A' + event - 12) as char,
        _ => return None,
    })
}
