//! Decoding stored bytes with the default MessagePack codec; see
//! [`typed_sessions_fuzz::codec_round_trip`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    typed_sessions_fuzz::codec_round_trip(&typed_sessions::MessagePack, data)
});
