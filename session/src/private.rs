//! Not public API: the items that `#[derive(SessionState)]` generates code
//! against, reached as `::typed_sessions::__private`. They may change in any
//! release.

pub use core::default::Default;
pub use core::mem::replace;
pub use core::ops::Deref;
pub use core::result::Result;
pub use std::vec::Vec;

pub use crate::codec::CodecError;
pub use crate::state::SessionState;

use bytes::Bytes;

use crate::codec::{Codec, decode_value};

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

/// A field type whose default comes from `Default`.
#[diagnostic::on_unimplemented(
    message = "session field type `{Self}` has no default: it must implement `Default`",
    label = "this field's type has no `Default`",
    note = "implement `Default` for it, or name a function with `#[session(default = \"path::to::function\")]`"
)]
pub trait DefaultField: Default {}
impl<T: Default> DefaultField for T {}

/// A state value together with the set of its fields that were changed.
#[derive(Debug)]
pub struct Tracked<T> {
    value: T,
    changed: Vec<bool>,
    cleared: bool,
}

impl<T: SessionState> Tracked<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            value,
            changed: vec![false; T::FIELDS.len()],
            cleared: false,
        }
    }

    /// Reads the state.
    #[inline]
    pub fn get(&self) -> &T {
        &self.value
    }

    /// Gives write access to the state and marks field `index` changed.
    #[inline]
    pub fn get_mut(&mut self, index: usize) -> &mut T {
        if let Some(flag) = self.changed.get_mut(index) {
            *flag = true;
        }
        &mut self.value
    }

    /// Every field back to its default; stored values are removed on save.
    pub(crate) fn reset(&mut self) {
        self.value = T::__default();
        self.changed.iter_mut().for_each(|flag| *flag = false);
        self.cleared = true;
    }

    pub(crate) fn is_changed(&self, index: usize) -> bool {
        self.changed.get(index).copied().unwrap_or(false)
    }

    pub(crate) fn cleared(&self) -> bool {
        self.cleared
    }
}

/// The companion type the derive generates: a newtype over [`Tracked`]
/// carrying the accessors.
pub trait Companion: Deref<Target = Self::State> + Send + Sync + Sized + 'static {
    /// The state type.
    type State: SessionState<Session = Self>;
    /// Wraps tracked state.
    fn from_tracked(tracked: Tracked<Self::State>) -> Self;
    /// The tracked state.
    fn tracked(&self) -> &Tracked<Self::State>;
    /// The tracked state, mutably.
    fn tracked_mut(&mut self) -> &mut Tracked<Self::State>;
    /// Unwraps the tracked state.
    fn into_tracked(self) -> Tracked<Self::State>;
}

/// Decodes stored fields for [`SessionState::__decode`]: a missing field
/// gets its default, a field that fails to decode is logged and gets its
/// default too.
pub struct FieldDecoder<'a> {
    codec: &'a dyn Codec,
    namespace: &'static str,
    names: &'static [&'static str],
    values: &'a [Option<Bytes>],
}

impl<'a> FieldDecoder<'a> {
    pub(crate) fn new<T: SessionState>(codec: &'a dyn Codec, values: &'a [Option<Bytes>]) -> Self {
        Self {
            codec,
            namespace: T::NAMESPACE,
            names: T::FIELDS,
            values,
        }
    }

    /// The value of stored field `index`, or `default()` when it is missing
    /// or corrupt.
    pub fn field<F: serde::de::DeserializeOwned>(&mut self, index: usize, default: fn() -> F) -> F {
        let Some(Some(bytes)) = self.values.get(index) else {
            return default();
        };
        match decode_value::<F>(self.codec, bytes) {
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
}

/// Encodes one field for [`SessionState::__encode_field`].
pub struct FieldEncoder<'a> {
    codec: &'a dyn Codec,
}

impl<'a> FieldEncoder<'a> {
    pub(crate) fn new(codec: &'a dyn Codec) -> Self {
        Self { codec }
    }

    /// Encodes one field value.
    pub fn field<F: serde::Serialize>(&self, value: &F) -> Result<Vec<u8>, CodecError> {
        self.codec.encode(value)
    }

    /// The error for an index the state does not have.
    pub fn no_such_field(&self, index: usize) -> Result<Vec<u8>, CodecError> {
        Err(CodecError(format!("no stored field with index {index}")))
    }
}
