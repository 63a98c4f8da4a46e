//! Codecs turn one field's value into stored bytes and back.
//!
//! Values are encoded field by field, so a codec sees one field at a time.
//! The trait is object-safe (through [`erased_serde`]) so the layer can hold
//! any codec without a type parameter; adding a codec is one impl.

use std::fmt;

mod limit;

pub use limit::{MAX_DEPTH, MAX_MESSAGE};

/// The largest value, in bytes, a built-in codec will decode. A store that
/// returns a length prefix beyond it gets an error, not an allocation of that
/// size.
pub const MAX_DECODED_FIELD: usize = 16 * 1024 * 1024;

/// A codec's error: the value could not be encoded, or the bytes could not be
/// decoded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(pub String);

impl CodecError {
    /// Wraps any displayable error.
    pub fn new(error: impl fmt::Display) -> Self {
        Self(error.to_string())
    }
}

/// The decoding half's callback: given a deserializer over the stored bytes,
/// it deserializes one value.
pub type DecodeFn<'f> =
    dyn FnMut(&mut dyn erased_serde::Deserializer<'_>) -> Result<(), erased_serde::Error> + 'f;

/// A serialization format for stored field values.
pub trait Codec: Send + Sync + 'static {
    /// Encodes one value.
    fn encode(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, CodecError>;

    /// Decodes `bytes` by handing a deserializer over them to `decode`.
    fn decode(&self, bytes: &[u8], decode: &mut DecodeFn<'_>) -> Result<(), CodecError>;

    /// Whether that deserializer can always answer `deserialize_str` and
    /// `deserialize_bytes` where it answers `deserialize_string` and
    /// `deserialize_byte_buf`. If so, decoding asks for the borrowed forms
    /// and the value copies once out of the stored bytes. The default,
    /// `false`, asks for what the value's type asks for.
    fn lends_slices(&self) -> bool {
        false
    }
}

/// The default codec: bincode 2 in serde mode with its standard
/// configuration (variable-length integers), limited to
/// [`MAX_DECODED_FIELD`] bytes per value.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bincode;

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_DECODED_FIELD>()
}

impl Codec for Bincode {
    fn encode(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, CodecError> {
        bincode::serde::encode_to_vec(value, bincode_config()).map_err(CodecError::new)
    }

    fn decode(&self, bytes: &[u8], decode: &mut DecodeFn<'_>) -> Result<(), CodecError> {
        let mut decoder =
            bincode::serde::BorrowedSerdeDecoder::from_slice(bytes, bincode_config(), ());
        let deserializer = decoder.as_deserializer();
        decode(&mut <dyn erased_serde::Deserializer>::erase(deserializer)).map_err(CodecError::new)
    }

    /// bincode's borrowing decoder lends every string and byte buffer; its
    /// owned path would zero-fill a buffer before copying into it.
    fn lends_slices(&self) -> bool {
        true
    }
}

/// JSON, for stores a person wants to read. Feature `json`.
#[cfg(feature = "json")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

#[cfg(feature = "json")]
impl Codec for Json {
    fn encode(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, CodecError> {
        serde_json::to_vec(value).map_err(CodecError::new)
    }

    fn decode(&self, bytes: &[u8], decode: &mut DecodeFn<'_>) -> Result<(), CodecError> {
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        decode(&mut <dyn erased_serde::Deserializer>::erase(
            &mut deserializer,
        ))
        .map_err(CodecError::new)?;
        deserializer.end().map_err(CodecError::new)
    }
}

/// Encodes `value` with `codec`.
pub fn encode_value<T: serde::Serialize>(
    codec: &dyn Codec,
    value: &T,
) -> Result<Vec<u8>, CodecError> {
    codec.encode(value)
}

/// Decodes a `T` from `bytes` with `codec`, refusing values nested deeper
/// than [`MAX_DEPTH`] and keeping error messages under [`MAX_MESSAGE`] bytes.
pub fn decode_value<T: serde::de::DeserializeOwned>(
    codec: &dyn Codec,
    bytes: &[u8],
) -> Result<T, CodecError> {
    let mut out = None;
    codec.decode(bytes, &mut |deserializer| {
        let state = limit::State::new(codec.lends_slices());
        let value = T::deserialize(limit::Limited::new(deserializer, &state))
            .map_err(serde::de::Error::custom)?;
        out = Some(value);
        Ok(())
    })?;
    out.ok_or_else(|| CodecError("codec produced no value".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn round_trip(codec: &dyn Codec) {
        let value: (u64, String, Option<Vec<HashMap<String, i32>>>) = (
            7,
            "hi".into(),
            Some(vec![HashMap::from([("a".into(), -3)])]),
        );
        let bytes = encode_value(codec, &value).unwrap();
        let back: (u64, String, Option<Vec<HashMap<String, i32>>>) =
            decode_value(codec, &bytes).unwrap();
        assert_eq!(back, value);
        assert!(decode_value::<u64>(codec, b"\xff\xff\xff").is_err());
    }

    #[test]
    fn bincode_round_trips_and_rejects_garbage() {
        round_trip(&Bincode);
        // A length prefix claiming far more than the limit is refused up front.
        let huge = encode_value(&Bincode, &(u64::MAX)).unwrap();
        assert!(decode_value::<Vec<u8>>(&Bincode, &huge).is_err());
    }

    #[derive(serde::Deserialize, Debug)]
    struct Node {
        #[allow(dead_code)]
        children: Vec<Node>,
    }

    /// Bincode of a `Node` nested `depth` levels (each level one child).
    fn nested(depth: usize) -> Vec<u8> {
        let mut bytes = vec![1u8; depth];
        bytes.push(0);
        bytes
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        // A struct and a sequence per level: 60 levels fit in MAX_DEPTH.
        assert!(decode_value::<Node>(&Bincode, &nested(60)).is_ok());
        for depth in [70, 1000, 1_000_000] {
            let error = decode_value::<Node>(&Bincode, &nested(depth)).unwrap_err();
            assert!(error.0.contains("nested deeper"), "{depth}: {}", error.0);
            assert!(
                error.0.len() <= MAX_MESSAGE + 3,
                "{depth}: {} bytes",
                error.0.len()
            );
        }
    }

    #[test]
    fn errors_deep_down_stay_small() {
        // A truncated value 50 levels down: one short error, not one wrapped
        // and re-escaped per level.
        let mut bytes = nested(50);
        bytes.pop();
        let error = decode_value::<Node>(&Bincode, &bytes).unwrap_err();
        assert!(error.0.len() <= MAX_MESSAGE + 3, "{} bytes", error.0.len());
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_round_trips_and_rejects_garbage() {
        round_trip(&Json);
        assert!(decode_value::<u64>(&Json, b"1 2").is_err());
    }
}
