#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(p) = parrot_media_core::rtp::RtpPacket::parse(data) {
        let _ = p.csrcs().count();
    }
});
