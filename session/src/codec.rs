//! Codecs turn one field's value into stored bytes and back.
//!
//! # The stored format
//!
//! Every stored value is one **codec tag** byte followed by the codec's
//! encoding of the field's value:
//!
//! | tag | codec | feature |
//! |---|---|---|
//! | `0x01` | [`MessagePack`], maps with named fields (the default) | always |
//! | `0x02` | `Bincode` (bincode 2, serde mode) | `bincode` |
//! | `0x03` | `Json` | `json` |
//! | `0x20`–`0xFF` | a codec of your own ([`Codec::tag`]) | |
//!
//! Values are decoded by their tag, not by the configured codec, so an
//! application that switches codecs keeps reading the sessions it already
//! has; a field is rewritten in the configured codec the next time it is
//! written. A value whose tag names a codec this build does not have (a
//! built-in whose feature is off, or a codec of your own that is no longer
//! configured) is treated like corrupt data: the field reads as its default,
//! a warning is logged, and the next write of the field replaces it.
//!
//! # Changing a field's type
//!
//! The default codec is self-describing: structs are maps keyed by field
//! name and enum variants are named. So, inside a stored field's type,
//! adding a field with `#[serde(default)]`, removing a field, and adding an
//! enum variant all keep old sessions readable; renaming a field or variant
//! (without `#[serde(alias)]`) or changing a value's type makes the field
//! unreadable, which resets it to its default with a warning. bincode is
//! not self-describing: any change of a field's type can reset it or, worse,
//! decode wrong values without an error. Use it only for types that never
//! change.
//!
//! Values are encoded and decoded with the field's concrete type for the
//! built-in codecs; only a codec of your own goes through [`erased_serde`].
//!
//! serde hands a `Vec<u8>` to every format as a sequence of numbers, which
//! MessagePack stores as one to two bytes per element; mark large byte
//! buffers `#[serde(with = "serde_bytes")]` (crate `serde_bytes`) to store
//! them as one binary value.

/// The `erased_serde` crate this module's public API uses, so callers need not
/// depend on a matching version of it themselves.
pub use ::erased_serde;

use std::any::TypeId;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

mod limit;

pub use limit::{MAX_DEPTH, MAX_MESSAGE};

/// The largest value, in bytes, a built-in codec will decode. A store that
/// returns a length prefix beyond it gets an error, not an allocation of that
/// size.
pub const MAX_DECODED_FIELD: usize = 16 * 1024 * 1024;

/// The tag of [`MessagePack`] values.
pub const TAG_MESSAGE_PACK: u8 = 0x01;
/// The tag of `Bincode` values.
pub const TAG_BINCODE: u8 = 0x02;
/// The tag of `Json` values.
pub const TAG_JSON: u8 = 0x03;
/// The lowest tag a codec of your own may use; the ones below are reserved
/// for the built-in codecs.
pub const FIRST_CUSTOM_TAG: u8 = 0x20;

/// A codec's error: the value could not be encoded, or the bytes could not be
/// decoded. Its [`source`](std::error::Error::source) is the codec's own
/// error, when there is one.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CodecError {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl CodecError {
    /// Wraps a codec's error: the message is its own, and it is the source.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            message: error.to_string(),
            source: Some(Box::new(error)),
        }
    }

    /// An error with a message only.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            source: None,
        }
    }
}

/// The decoding half's callback: given a deserializer over the stored bytes,
/// it deserializes one value.
pub type DecodeFn<'f> =
    dyn FnMut(&mut dyn erased_serde::Deserializer<'_>) -> Result<(), erased_serde::Error> + 'f;

/// A serialization format for stored field values.
///
/// The built-in codecs ([`MessagePack`], `Bincode`, `Json`) implement it too,
/// but the layer recognises them and calls them with each field's concrete
/// type; a codec of your own is called through [`erased_serde`].
pub trait Codec: Send + Sync + 'static {
    /// The tag byte stored before every value this codec encodes, so that
    /// values are later decoded by the codec that wrote them. A codec of your
    /// own picks a fixed tag from [`FIRST_CUSTOM_TAG`] up; a lower one is
    /// refused when the layer is validated.
    fn tag(&self) -> u8;

    /// Encodes one value (without the tag).
    fn encode(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, CodecError>;

    /// Decodes `bytes` (without the tag) by handing a deserializer over them
    /// to `decode`.
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

/// The default codec: MessagePack (`rmp-serde`) with structs as maps keyed
/// by field name, so values survive fields added to (with
/// `#[serde(default)]`) or removed from the types inside a session field.
/// Tag `0x01`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MessagePack;

impl Codec for MessagePack {
    fn tag(&self) -> u8 {
        TAG_MESSAGE_PACK
    }

    fn encode(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, CodecError> {
        rmp_serde::to_vec_named(value).map_err(CodecError::new)
    }

    fn decode(&self, bytes: &[u8], decode: &mut DecodeFn<'_>) -> Result<(), CodecError> {
        let mut deserializer = message_pack_deserializer(bytes);
        decode(&mut <dyn erased_serde::Deserializer>::erase(
            &mut deserializer,
        ))
        .map_err(CodecError::new)
    }

    fn lends_slices(&self) -> bool {
        true
    }
}

fn message_pack_deserializer(
    bytes: &[u8],
) -> rmp_serde::Deserializer<rmp_serde::decode::ReadRefReader<'_, [u8]>> {
    let mut deserializer = rmp_serde::Deserializer::from_read_ref(bytes);
    // `Limited` refuses nesting past MAX_DEPTH with its own message; this
    // bounds what rmp-serde skips on its own (an unknown field's value),
    // where `Limited` does not see the levels.
    deserializer.set_max_depth(2 * MAX_DEPTH);
    deserializer
}

/// bincode 2 in serde mode with its standard configuration
/// (variable-length integers), limited to [`MAX_DECODED_FIELD`] bytes per
/// value. Tag `0x02`. Feature `bincode`.
///
/// Compact and fast, but not self-describing: a value written by one
/// version of a type and read by another (a field added or removed inside a
/// stored struct) fails to decode or, worse, decodes to wrong values without
/// any error. Use it only for field types that never change. bincode is no
/// longer maintained (RUSTSEC-2025-0141).
#[cfg(feature = "bincode")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Bincode;

#[cfg(feature = "bincode")]
fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_DECODED_FIELD>()
}

#[cfg(feature = "bincode")]
impl Codec for Bincode {
    fn tag(&self) -> u8 {
        TAG_BINCODE
    }

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

/// JSON, for stores a person wants to read. Tag `0x03`. Feature `json`.
#[cfg(feature = "json")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

#[cfg(feature = "json")]
impl Codec for Json {
    fn tag(&self) -> u8 {
        TAG_JSON
    }

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

/// The codec a layer writes with: a built-in one, called with concrete
/// types, or one of the application's, called through `erased_serde`.
#[derive(Clone, Default)]
pub(crate) enum CodecChoice {
    #[default]
    MessagePack,
    #[cfg(feature = "bincode")]
    Bincode,
    #[cfg(feature = "json")]
    Json,
    Custom(Arc<dyn Codec>),
}

impl fmt::Debug for CodecChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MessagePack => f.write_str("MessagePack"),
            #[cfg(feature = "bincode")]
            Self::Bincode => f.write_str("Bincode"),
            #[cfg(feature = "json")]
            Self::Json => f.write_str("Json"),
            Self::Custom(codec) => write!(f, "Custom(tag {:#04x})", codec.tag()),
        }
    }
}

impl CodecChoice {
    /// Recognises the built-in codecs by type.
    pub(crate) fn of<C: Codec>(codec: C) -> Self {
        match builtin::<C>() {
            Some(choice) => choice,
            None => Self::Custom(Arc::new(codec)),
        }
    }

    /// The tag this codec writes.
    pub(crate) fn tag(&self) -> u8 {
        match self {
            Self::MessagePack => TAG_MESSAGE_PACK,
            #[cfg(feature = "bincode")]
            Self::Bincode => TAG_BINCODE,
            #[cfg(feature = "json")]
            Self::Json => TAG_JSON,
            Self::Custom(codec) => codec.tag(),
        }
    }

    /// Encodes `value` as tag and body.
    pub(crate) fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        let mut out = vec![self.tag()];
        match self {
            Self::MessagePack => {
                rmp_serde::encode::write_named(&mut out, value).map_err(CodecError::new)?
            }
            #[cfg(feature = "bincode")]
            Self::Bincode => {
                bincode::serde::encode_into_std_write(value, &mut out, bincode_config())
                    .map_err(CodecError::new)?;
            }
            #[cfg(feature = "json")]
            Self::Json => serde_json::to_writer(&mut out, value).map_err(CodecError::new)?,
            Self::Custom(codec) => out.extend_from_slice(&codec.encode(&value)?),
        }
        Ok(out)
    }

    /// Decodes a tagged value with the codec its tag names, refusing values
    /// nested deeper than [`MAX_DEPTH`] and keeping error messages under
    /// [`MAX_MESSAGE`] bytes.
    pub(crate) fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        let Some((&tag, body)) = bytes.split_first() else {
            return Err(CodecError::msg("empty stored value: no codec tag"));
        };
        match tag {
            TAG_MESSAGE_PACK => {
                let state = limit::State::new(true);
                let mut deserializer = message_pack_deserializer(body);
                T::deserialize(limit::Limited::new(&mut deserializer, &state))
                    .map_err(CodecError::new)
            }
            #[cfg(feature = "bincode")]
            TAG_BINCODE => {
                let state = limit::State::new(true);
                let mut decoder =
                    bincode::serde::BorrowedSerdeDecoder::from_slice(body, bincode_config(), ());
                T::deserialize(limit::Limited::new(decoder.as_deserializer(), &state))
                    .map_err(CodecError::new)
            }
            #[cfg(feature = "json")]
            TAG_JSON => {
                let state = limit::State::new(false);
                let mut deserializer = serde_json::Deserializer::from_slice(body);
                let value = T::deserialize(limit::Limited::new(&mut deserializer, &state))
                    .map_err(CodecError::new)?;
                deserializer.end().map_err(CodecError::new)?;
                Ok(value)
            }
            _ => match self {
                Self::Custom(codec) if codec.tag() == tag => decode_erased(&**codec, body),
                _ => Err(CodecError::msg(format_args!(
                    "stored value has codec tag {tag:#04x}, which names no codec this layer can read"
                ))),
            },
        }
    }
}

fn builtin_of<C: Codec + ?Sized>(_: &C) -> Option<CodecChoice> {
    builtin::<C>()
}

fn builtin<C: Codec + ?Sized>() -> Option<CodecChoice> {
    let id = TypeId::of::<C>();
    if id == TypeId::of::<MessagePack>() {
        return Some(CodecChoice::MessagePack);
    }
    #[cfg(feature = "bincode")]
    if id == TypeId::of::<Bincode>() {
        return Some(CodecChoice::Bincode);
    }
    #[cfg(feature = "json")]
    if id == TypeId::of::<Json>() {
        return Some(CodecChoice::Json);
    }
    None
}

fn decode_erased<T: DeserializeOwned>(
    codec: &(impl Codec + ?Sized),
    body: &[u8],
) -> Result<T, CodecError> {
    let mut out = None;
    codec.decode(body, &mut |deserializer| {
        let state = limit::State::new(codec.lends_slices());
        let value = T::deserialize(limit::Limited::new(deserializer, &state))
            .map_err(serde::de::Error::custom)?;
        out = Some(value);
        Ok(())
    })?;
    out.ok_or_else(|| CodecError::msg("codec produced no value"))
}

/// Encodes `value` with `codec` as the layer stores it: tag, then body.
pub(crate) fn encode_value<T: Serialize>(
    codec: &(impl Codec + ?Sized),
    value: &T,
) -> Result<Vec<u8>, CodecError> {
    match builtin_of(codec) {
        Some(choice) => choice.encode(value),
        None => {
            let mut out = vec![codec.tag()];
            out.extend_from_slice(&codec.encode(value)?);
            Ok(out)
        }
    }
}

/// Decodes a stored (tagged) value as a layer configured with `codec`
/// would: by the codec its tag names.
pub(crate) fn decode_value<T: DeserializeOwned>(
    codec: &(impl Codec + ?Sized),
    bytes: &[u8],
) -> Result<T, CodecError> {
    match builtin_of(codec) {
        Some(choice) => choice.decode(bytes),
        None => match bytes.split_first() {
            Some((&tag, body)) if tag == codec.tag() => decode_erased(codec, body),
            _ => CodecChoice::MessagePack.decode(bytes),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    type Sample = (u64, String, Option<Vec<HashMap<String, i32>>>);

    fn sample() -> Sample {
        (
            7,
            "hi".into(),
            Some(vec![HashMap::from([("a".into(), -3)])]),
        )
    }

    fn round_trip<C: Codec>(codec: C) {
        let bytes = encode_value(&codec, &sample()).unwrap();
        assert_eq!(bytes[0], codec.tag());
        let back: Sample = decode_value(&codec, &bytes).unwrap();
        assert_eq!(back, sample());
        let mut garbage = vec![codec.tag()];
        garbage.extend_from_slice(b"\xff\xff\xff");
        assert!(decode_value::<u64>(&codec, &garbage).is_err());
        assert!(decode_value::<u64>(&codec, &[]).is_err());
    }

    #[test]
    fn message_pack_round_trips_and_rejects_garbage() {
        round_trip(MessagePack);
        // A length prefix claiming far more than there is fails without
        // allocating it.
        assert!(decode_value::<Vec<u8>>(&MessagePack, b"\x01\xdd\xff\xff\xff\xff").is_err());
    }

    #[derive(serde::Deserialize, Debug)]
    struct Node {
        #[allow(dead_code)]
        children: Vec<Node>,
    }

    /// MessagePack of a `Node` nested `depth` levels (each level one child).
    fn nested(depth: usize) -> Vec<u8> {
        let mut bytes = vec![TAG_MESSAGE_PACK];
        for level in 0..=depth {
            bytes.extend_from_slice(b"\x81\xa8children");
            bytes.push(if level == depth { 0x90 } else { 0x91 });
        }
        bytes
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        // A struct and a sequence per level: 60 levels fit in MAX_DEPTH.
        assert!(decode_value::<Node>(&MessagePack, &nested(60)).is_ok());
        for depth in [70, 1000, 100_000] {
            let error = decode_value::<Node>(&MessagePack, &nested(depth)).unwrap_err();
            assert!(
                error.to_string().contains("nested deeper"),
                "{depth}: {}",
                error
            );
            assert!(
                error.to_string().len() <= MAX_MESSAGE + 3,
                "{depth}: {} bytes",
                error.to_string().len()
            );
        }
        // Passing over an unknown field's deeply nested value is bounded too.
        #[derive(serde::Deserialize, Debug)]
        struct Nothing {}
        let mut bytes = vec![TAG_MESSAGE_PACK, 0x81, 0xa1, b'x'];
        bytes.extend(std::iter::repeat_n(0x91, 100_000));
        bytes.push(0x90);
        assert!(decode_value::<Nothing>(&MessagePack, &bytes).is_err());
    }

    #[test]
    fn errors_deep_down_stay_small() {
        // A truncated value 50 levels down: one short error, not one wrapped
        // and re-escaped per level.
        let mut bytes = nested(50);
        bytes.pop();
        let error = decode_value::<Node>(&MessagePack, &bytes).unwrap_err();
        assert!(
            error.to_string().len() <= MAX_MESSAGE + 3,
            "{} bytes",
            error.to_string().len()
        );
    }

    #[test]
    fn unknown_tags_are_errors() {
        let error = decode_value::<u64>(&MessagePack, b"\x7f\x01").unwrap_err();
        assert!(error.to_string().contains("0x7f"), "{}", error);
    }

    /// A codec of one's own: JSON-ish through serde_json is not available
    /// without the feature, so it reuses MessagePack's body under its own tag.
    struct Mine;
    impl Codec for Mine {
        fn tag(&self) -> u8 {
            0x42
        }
        fn encode(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, CodecError> {
            MessagePack.encode(value)
        }
        fn decode(&self, bytes: &[u8], decode: &mut DecodeFn<'_>) -> Result<(), CodecError> {
            MessagePack.decode(bytes, decode)
        }
    }

    #[test]
    fn a_custom_codec_round_trips_and_reads_built_in_values() {
        round_trip(Mine);
        let choice = CodecChoice::of(Mine);
        let written_before = CodecChoice::MessagePack.encode(&5u64).unwrap();
        assert_eq!(choice.decode::<u64>(&written_before).unwrap(), 5);
        let mine = choice.encode(&6u64).unwrap();
        assert_eq!(mine[0], 0x42);
        // Once the custom codec is no longer configured its values are
        // unreadable, not misread.
        assert!(CodecChoice::MessagePack.decode::<u64>(&mine).is_err());
    }

    #[cfg(feature = "bincode")]
    #[test]
    fn bincode_round_trips_and_rejects_garbage() {
        round_trip(Bincode);
        let huge = encode_value(&Bincode, &(u64::MAX)).unwrap();
        assert!(decode_value::<Vec<u8>>(&Bincode, &huge).is_err());
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_round_trips_and_rejects_garbage() {
        round_trip(Json);
        assert!(decode_value::<u64>(&Json, b"\x031 2").is_err());
    }

    #[cfg(all(feature = "json", feature = "bincode"))]
    #[test]
    fn every_codec_reads_every_other_codecs_values() {
        let choices = [
            CodecChoice::MessagePack,
            CodecChoice::Bincode,
            CodecChoice::Json,
        ];
        for writer in &choices {
            let bytes = writer.encode(&sample()).unwrap();
            for reader in &choices {
                assert_eq!(reader.decode::<Sample>(&bytes).unwrap(), sample());
            }
        }
    }
}
