#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(sd) = parrot_media_core::sdp::SessionDescription::parse(s) {
            // A parsed description must serialise to text that parses to the same thing.
            let again = parrot_media_core::sdp::SessionDescription::parse(&sd.to_string()).expect("re-parse");
            assert_eq!(again, sd);
        }
    }
});
