//! See [`typed_sessions_fuzz::stored_fields`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| typed_sessions_fuzz::stored_fields(data));
