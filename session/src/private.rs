//! Not public API: the items that `#[derive(SessionState)]` generates code
//! against, reached as `::typed_sessions::__private`. They may change in any
//! release.

pub use core::default::Default;
pub use core::mem::replace;
pub use core::option::Option;
pub use core::result::Result;
pub use std::vec::Vec;

pub use serde::Serialize;
pub use serde::de::DeserializeOwned;

pub use crate::codec::CodecError;
pub use crate::state::{IndexedState, SessionState};

use std::sync::OnceLock;

use bytes::Bytes;

use crate::codec::CodecChoice;

/// A field type that can be stored in a session.
#[diagnostic::on_unimplemented(
    message = "session field type `{Self}` cannot be stored: it must implement `serde::Serialize` and `serde::de::DeserializeOwned`, and be `Send + Sync + 'static`",
    label = "this field's type is not storable",
    note = "derive `Serialize` and `Deserialize` for it, or mark the field `#[session(skip)]`"
)]
pub trait StoredField:
    serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static
{
}
impl<T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static> StoredField for T {}

/// What a namespace was loaded with, and which of its fields were changed.
/// The companion type holds one, beside a [`Lazy`] per stored field.
#[derive(Debug)]
pub struct Loaded {
    codec: CodecChoice,
    namespace: &'static str,
    names: &'static [&'static str],
    /// The stored bytes of each field, as the store returned them.
    values: Vec<Option<Bytes>>,
    changed: Vec<bool>,
    /// `reset` was called: stored values are not read, and the ones not set
    /// again are removed on save.
    cleared: bool,
}

impl Loaded {
    pub(crate) fn new<T: SessionState>(codec: CodecChoice, values: Vec<Option<Bytes>>) -> Self {
        Self {
            codec,
            namespace: T::NAMESPACE,
            names: T::FIELDS,
            changed: vec![false; values.len()],
            values,
            cleared: false,
        }
    }

    /// A namespace with nothing stored, read with the default codec.
    pub fn empty<T: SessionState>() -> Self {
        Self::new::<T>(CodecChoice::default(), vec![None; T::FIELDS.len()])
    }

    /// The value of stored field `index`, decoded from its loaded bytes, or
    /// `default()` when it is missing or corrupt (logged).
    fn decode<F: StoredField>(&self, index: usize, default: fn() -> F) -> F {
        if self.cleared {
            return default();
        }
        let Some(Some(bytes)) = self.values.get(index) else {
            return default();
        };
        match self.codec.decode::<F>(bytes) {
            Ok(value) => value,
            Err(error) => {
                tracing::warn!(
                    namespace = self.namespace,
                    field = self.names.get(index).copied().unwrap_or("?"),
                    %error,
                    "stored session field could not be decoded; using its default, it will be overwritten on its next write"
                );
                default()
            }
        }
    }

    fn mark(&mut self, index: usize) {
        if let Some(flag) = self.changed.get_mut(index) {
            *flag = true;
        }
    }

    pub(crate) fn is_changed(&self, index: usize) -> bool {
        self.changed.get(index).copied().unwrap_or(false)
    }

    pub(crate) fn cleared(&self) -> bool {
        self.cleared
    }

    pub(crate) fn stored(&self, index: usize) -> Option<&[u8]> {
        self.values.get(index).and_then(Option::as_deref)
    }

    /// Every field back to its default; stored values are removed on save.
    /// The companion also empties its [`Lazy`] cells.
    pub fn reset(&mut self) {
        self.changed.iter_mut().for_each(|flag| *flag = false);
        self.cleared = true;
    }
}

/// One stored field, decoded from the loaded bytes the first time it is
/// read, never if it is not.
pub struct Lazy<F>(OnceLock<F>);

impl<F> Default for Lazy<F> {
    fn default() -> Self {
        Self(OnceLock::new())
    }
}

impl<F: std::fmt::Debug> std::fmt::Debug for Lazy<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.get() {
            Some(value) => value.fmt(f),
            None => f.write_str("<not decoded>"),
        }
    }
}

impl<F> Lazy<F> {
    /// The value held, if the field was read or written.
    #[inline]
    pub fn current(&self) -> Option<&F> {
        self.0.get()
    }

    /// Forgets the value, so the next read decodes again (after a reset,
    /// decoding gives the default).
    #[inline]
    pub fn clear(&mut self) {
        self.0 = OnceLock::new();
    }
}

impl<F: StoredField> Lazy<F> {
    /// Reads the field, decoding it on first use.
    #[inline]
    pub fn get(&self, loaded: &Loaded, index: usize, default: fn() -> F) -> &F {
        self.0.get_or_init(|| loaded.decode(index, default))
    }

    /// Mutable access; marks the field changed.
    #[inline]
    pub fn get_mut(&mut self, loaded: &mut Loaded, index: usize, default: fn() -> F) -> &mut F {
        loaded.mark(index);
        if self.0.get().is_none() {
            self.0 = OnceLock::from(loaded.decode(index, default));
        }
        match self.0.get_mut() {
            Some(value) => value,
            None => unreachable!("the cell was filled just above"),
        }
    }

    /// Replaces the field without decoding the old value; marks it changed.
    #[inline]
    pub fn set(&mut self, loaded: &mut Loaded, index: usize, value: F) {
        loaded.mark(index);
        self.0 = OnceLock::from(value);
    }

    /// The field's value, leaving its default; marks it changed.
    #[inline]
    pub fn take(&mut self, loaded: &mut Loaded, index: usize, default: fn() -> F) -> F {
        replace(self.get_mut(loaded, index, default), default())
    }
}

/// The companion type the derive generates: the [`Loaded`] state and one
/// [`Lazy`] per stored field, carrying the accessors.
pub trait Companion: Send + Sync + Sized + 'static {
    /// The state type.
    type State: SessionState<Session = Self>;
    /// The companion of a freshly loaded namespace; nothing is decoded yet.
    fn from_loaded(loaded: Loaded) -> Self;
    /// The loaded state and change flags.
    fn loaded(&self) -> &Loaded;
    /// Every field back to its default; stored values are removed on save.
    fn reset(&mut self);
    /// Encodes stored field `index` if it holds a value (it always does once
    /// changed).
    fn encode_field(&self, index: usize) -> Result<Option<Vec<u8>>, CodecError>;
    /// The stored index of the `#[session(index)]` field, if there is one.
    const INDEX: Option<usize> = None;
    /// The index key of the index field's current value (decoding it if
    /// needed); `None` for the default value, which is not indexed, and for
    /// a state without an index field.
    fn index_key(&self) -> Result<Option<Vec<u8>>, CodecError> {
        Ok(None)
    }
}

/// The index key of a field's value, for [`Companion::index_key`]: `None`
/// when it encodes as the default does.
pub fn index_key<F: StoredField>(
    loaded: &Loaded,
    lazy: &Lazy<F>,
    index: usize,
    default: fn() -> F,
) -> Result<Option<Vec<u8>>, CodecError> {
    let key = crate::index::key_bytes(lazy.get(loaded, index, default))?;
    Ok((key != crate::index::key_bytes(&default())?).then_some(key))
}

/// Encodes a field's value if it has one, for [`Companion::encode_field`].
#[inline]
pub fn encode_current<F: StoredField>(
    loaded: &Loaded,
    lazy: &Lazy<F>,
) -> Result<Option<Vec<u8>>, CodecError> {
    lazy.current()
        .map(|value| loaded.codec.encode(value))
        .transpose()
}

/// A value as a layer with `codec` stores it (tag, then body): for the fuzz
/// targets and fault tests, which check the stored format without a store.
pub fn encode_value<T: serde::Serialize>(
    codec: &(impl crate::Codec + ?Sized),
    value: &T,
) -> Result<Vec<u8>, CodecError> {
    crate::codec::encode_value(codec, value)
}

/// Decodes a stored value as a layer with `codec` would, for the same
/// callers as [`encode_value`].
pub fn decode_value<T: serde::de::DeserializeOwned>(
    codec: &(impl crate::Codec + ?Sized),
    bytes: &[u8],
) -> Result<T, CodecError> {
    crate::codec::decode_value(codec, bytes)
}
