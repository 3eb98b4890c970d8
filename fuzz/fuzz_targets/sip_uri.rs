#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| parrot_proto::checks::uri(data));
