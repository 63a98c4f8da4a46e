//! See [`typed_sessions_fuzz::codec_limited`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| typed_sessions_fuzz::codec_limited(data));
