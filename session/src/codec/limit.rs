//! Limits on decoding stored values: nesting depth and error message size.
//!
//! Stored bytes come from a store that may be shared or corrupted. Without a
//! bound, a field type that can nest (`struct Node { children: Vec<Node> }`)
//! decoded from a few kilobytes of crafted bincode recurses until the stack
//! overflows and the process aborts; and through erased-serde every nesting
//! level wraps and re-escapes the error of the level below, so an error ten
//! levels down becomes hundreds of megabytes. Every nested value therefore
//! goes through a [`Limited`] deserializer that counts depth (refusing past
//! [`MAX_DEPTH`]) and keeps each error to [`MAX_MESSAGE`] bytes.

use std::cell::{Cell, RefCell};
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};

/// The deepest nesting a stored value may have (serde_json's default).
pub const MAX_DEPTH: usize = 128;
/// The longest error message kept, in bytes.
pub const MAX_MESSAGE: usize = 512;

/// A decoding error with a bounded message.
#[derive(Debug)]
pub(crate) struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(message: T) -> Self {
        use fmt::Write as _;
        // Formats at most MAX_MESSAGE bytes: a huge message is never built.
        struct Bounded(String);
        impl fmt::Write for Bounded {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                let room = MAX_MESSAGE.saturating_sub(self.0.len());
                if s.len() <= room {
                    self.0.push_str(s);
                    Ok(())
                } else {
                    let mut end = room;
                    while !s.is_char_boundary(end) {
                        end -= 1;
                    }
                    self.0.push_str(&s[..end]);
                    Err(fmt::Error)
                }
            }
        }
        let mut out = Bounded(String::new());
        if write!(out, "{message}").is_err() {
            out.0.push_str("...");
        }
        Self(out.0)
    }
}

/// What the adapters of one decode share.
#[derive(Default)]
pub(crate) struct State {
    depth: Cell<usize>,
    /// The last error handed down to the deserializer below, which comes
    /// back up wrapped in its own error type: it is taken back as it was
    /// instead of wrapping (and, for bincode, re-escaping) it once more per
    /// level.
    pending: RefCell<Option<Error>>,
    /// Ask for owned strings and byte buffers as borrowed ones (see
    /// [`Codec::lends_slices`](crate::Codec::lends_slices)).
    lend_slices: bool,
}

impl State {
    pub(crate) fn new(lend_slices: bool) -> Self {
        Self {
            lend_slices,
            ..Self::default()
        }
    }

    /// An error from the layer below, as ours.
    fn import<E: fmt::Display>(&self, error: E) -> Error {
        self.pending
            .borrow_mut()
            .take()
            .unwrap_or_else(|| de::Error::custom(error))
    }

    /// Our error, for the layer below.
    fn export<E: de::Error>(&self, error: Error) -> E {
        let foreign = E::custom(&error);
        *self.pending.borrow_mut() = Some(error);
        foreign
    }
}

/// Leaves one nesting level when dropped.
struct Level<'s>(&'s Cell<usize>);

impl Drop for Level<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

fn enter(state: &State) -> Result<Level<'_>, Error> {
    let now = state.depth.get();
    if now >= MAX_DEPTH {
        return Err(de::Error::custom(format_args!(
            "value nested deeper than {MAX_DEPTH} levels"
        )));
    }
    state.depth.set(now + 1);
    Ok(Level(&state.depth))
}

/// A deserializer that counts nesting in its `State` and bounds errors.
pub(crate) struct Limited<'s, D> {
    inner: D,
    state: &'s State,
}

impl<'s, D> Limited<'s, D> {
    pub(crate) fn new(inner: D, state: &'s State) -> Self {
        Self { inner, state }
    }
}

/// Wraps a visitor, seed, or access so that what it hands on is limited.
struct Wrap<'s, X> {
    inner: X,
    state: &'s State,
}

macro_rules! forward_deserialize {
    ($($method:ident $(or $borrowed:ident)? ( $($arg:ident : $ty:ty),* );)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, Error> {
                let state = self.state;
                let _level = enter(state)?;
                let visitor = Wrap { inner: visitor, state };
                $(
                    // The visitor copies once out of the lent slice, where
                    // the owned path may fill a buffer and copy into it first.
                    if state.lend_slices {
                        return self.inner.$borrowed(visitor).map_err(|e| state.import(e));
                    }
                )?
                self.inner
                    .$method($($arg,)* visitor)
                    .map_err(|e| state.import(e))
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Limited<'_, D> {
    type Error = Error;

    forward_deserialize! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string or deserialize_str();
        deserialize_bytes();
        deserialize_byte_buf or deserialize_bytes();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident ( $ty:ty );)*) => {
        $(
            fn $method<E: de::Error>(self, value: $ty) -> Result<Self::Value, E> {
                self.inner.$method(value)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
        visit_str(&str);
        visit_borrowed_str(&'de str);
        visit_string(String);
        visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]);
        visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.inner
            .visit_some(Limited::new(deserializer, self.state))
            .map_err(|e| self.state.export(e))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        self.inner
            .visit_newtype_struct(Limited::new(deserializer, self.state))
            .map_err(|e| self.state.export(e))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.inner
            .visit_seq(Wrap {
                inner: seq,
                state: self.state,
            })
            .map_err(|e| self.state.export(e))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.inner
            .visit_map(Wrap {
                inner: map,
                state: self.state,
            })
            .map_err(|e| self.state.export(e))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.inner
            .visit_enum(Wrap {
                inner: data,
                state: self.state,
            })
            .map_err(|e| self.state.export(e))
    }
}

impl<'de, T: DeserializeSeed<'de>> DeserializeSeed<'de> for Wrap<'_, T> {
    type Value = T::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T::Value, D::Error> {
        self.inner
            .deserialize(Limited::new(deserializer, self.state))
            .map_err(|e| self.state.export(e))
    }
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Wrap<'_, A> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.inner
            .next_element_seed(Wrap {
                inner: seed,
                state: self.state,
            })
            .map_err(|e| self.state.import(e))
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Wrap<'_, A> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        self.inner
            .next_key_seed(Wrap {
                inner: seed,
                state: self.state,
            })
            .map_err(|e| self.state.import(e))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        self.inner
            .next_value_seed(Wrap {
                inner: seed,
                state: self.state,
            })
            .map_err(|e| self.state.import(e))
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, 's, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Wrap<'s, A> {
    type Error = Error;
    type Variant = Wrap<'s, A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Error> {
        let state = self.state;
        self.inner
            .variant_seed(Wrap { inner: seed, state })
            .map(|(value, variant)| {
                (
                    value,
                    Wrap {
                        inner: variant,
                        state,
                    },
                )
            })
            .map_err(|e| state.import(e))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Wrap<'_, A> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        self.inner.unit_variant().map_err(|e| self.state.import(e))
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        self.inner
            .newtype_variant_seed(Wrap {
                inner: seed,
                state: self.state,
            })
            .map_err(|e| self.state.import(e))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        let _level = enter(self.state)?;
        self.inner
            .tuple_variant(
                len,
                Wrap {
                    inner: visitor,
                    state: self.state,
                },
            )
            .map_err(|e| self.state.import(e))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let _level = enter(self.state)?;
        self.inner
            .struct_variant(
                fields,
                Wrap {
                    inner: visitor,
                    state: self.state,
                },
            )
            .map_err(|e| self.state.import(e))
    }
}
