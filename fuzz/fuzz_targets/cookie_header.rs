//! See [`typed_sessions_fuzz::cookie_header`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| typed_sessions_fuzz::cookie_header(data));
