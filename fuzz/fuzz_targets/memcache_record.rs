//! See [`typed_sessions_fuzz::memcache_record`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| typed_sessions_fuzz::memcache_record(data));
