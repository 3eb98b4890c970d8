#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(c) = parrot_media_core::rtp::rtcp::RtcpCompound::parse(data) {
        for p in c.packets() {
            if let parrot_media_core::rtp::rtcp::RtcpPacket::SourceDescription(chunks) = p {
                chunks.iter().for_each(|c| { let _ = c.items().count(); });
            }
        }
    }
});
