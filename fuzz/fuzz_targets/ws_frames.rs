#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| parrot_transport::checks::ws_frames(data));
