//! The big values of the big-field cells (`cart-incr`, `bytes-incr`): what a
//! session holds beside its counter and the measured route never touches.
//! The codec comparison (`src/bin/codecs.rs`) measures the same values.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Items in the cart.
pub const CART_ITEMS: usize = 500;

/// The length of the byte buffer.
pub const OCTETS_LEN: usize = 16 * 1024;

/// One line of a cart.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Item {
    /// The article number.
    pub sku: u64,
    /// How many.
    pub qty: u32,
    /// The article's name.
    pub name: String,
}

/// A cart of [`CART_ITEMS`] structs, about 16 KB in a compact encoding.
pub type Cart = Vec<Item>;

/// A [`OCTETS_LEN`]-byte buffer (an upload, a token, an encrypted blob).
pub type Octets = Vec<u8>;

/// A big value a cell stores once and checks once at the end.
pub trait BigValue: Serialize + DeserializeOwned + Default + Send + Sync + 'static {
    /// The value every session of the cell holds.
    fn make() -> Self;

    /// Whether this is still the value [`BigValue::make`] made.
    fn is_intact(&self) -> bool;
}

/// The cart: skus of seven digits, quantities 1 to 5, names of 24
/// characters.
pub fn cart() -> Cart {
    (0..CART_ITEMS)
        .map(|i| Item {
            sku: 4_000_000 + 37 * i as u64,
            qty: 1 + (i % 5) as u32,
            name: format!("organic cotton tee {:03} M", i % 1000),
        })
        .collect()
}

/// Bytes spread over the whole range, as in compressed or encrypted data
/// (xorshift), so that formats which write a byte above 127 in two bytes
/// show it.
pub fn octets() -> Octets {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..OCTETS_LEN)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

impl BigValue for Cart {
    fn make() -> Self {
        cart()
    }

    fn is_intact(&self) -> bool {
        *self == cart()
    }
}

impl BigValue for Octets {
    fn make() -> Self {
        octets()
    }

    fn is_intact(&self) -> bool {
        *self == octets()
    }
}
