//! Codecs turn one field's value into stored bytes and back.
//!
//! Values are encoded field by field, so a codec sees one field at a time.
//! The trait is object-safe (through [`erased_serde`]) so the layer can hold
//! any codec without a type parameter; adding a codec is one impl.

use std::fmt;

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

/// Decodes a `T` from `bytes` with `codec`.
pub fn decode_value<T: serde::de::DeserializeOwned>(
    codec: &dyn Codec,
    bytes: &[u8],
) -> Result<T, CodecError> {
    let mut out = None;
    codec.decode(bytes, &mut |de| {
        out = Some(erased_serde::deserialize::<T>(de)?);
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

    #[cfg(feature = "json")]
    #[test]
    fn json_round_trips_and_rejects_garbage() {
        round_trip(&Json);
        assert!(decode_value::<u64>(&Json, b"1 2").is_err());
    }
}
