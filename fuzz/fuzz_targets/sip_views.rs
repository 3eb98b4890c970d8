#![no_main]
// Header views on a message built around the input: the bytes become one header value of a
// valid request, so the fuzzer spends its time inside the value grammars.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut m = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nX: ".to_vec();
    let (name, value) = data.split_at(data.len().min(1));
    let names: [&[u8]; 8] = [b"To", b"From", b"Contact", b"Via", b"CSeq", b"Route", b"WWW-Authenticate", b"Date"];
    m.extend_from_slice(b"\r\n");
    m.extend_from_slice(names[usize::from(name.first().copied().unwrap_or(0)) % names.len()]);
    m.extend_from_slice(b": ");
    m.extend_from_slice(value);
    m.extend_from_slice(b"\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
    parrot_proto::checks::datagram(&m);
});
