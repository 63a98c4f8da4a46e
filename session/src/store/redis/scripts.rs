//! The Lua scripts of the single-key operations (see the [module docs](super)
//! for what each runs); their text is in the `.lua` files beside this file.

use std::sync::LazyLock;

use redis::Script;

/// ARGV: creation time, expiry, then field/value pairs. One `HSET` of
/// everything (in chunks of 1000 arguments beyond that: Lua's `unpack` has a
/// limit).
pub(super) static CREATE: LazyLock<Script> = LazyLock::new(|| Script::new(CREATE_LUA));
pub(super) const CREATE_LUA: &str = include_str!("create.lua");

/// ARGV: expiry (empty: keep the stored one), the number n of fields to
/// set, n field/value pairs, then the fields to remove. 1 written, 0 not a
/// session, 2 busy: while `__frozen`
/// holds a time in the future nothing is written (see the module docs). A
/// write clears `__moving`. 3 written, and the expiry moved past
/// `__indexed_until`: the session's index keys need a longer life (see
/// [`index`](super::index)).
pub(super) static UPDATE: LazyLock<Script> = LazyLock::new(|| Script::new(UPDATE_LUA));
pub(super) const UPDATE_LUA: &str = include_str!("update.lua");

/// ARGV: expiry. 1 touched, 0 not a session, 3 touched past
/// `__indexed_until` (as for [`UPDATE`]).
pub(super) static TOUCH: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("touch.lua")));

/// KEYS: from, to (one slot). ARGV: expiry, the new id, the end of the
/// forward window. 1 moved (leaving the forward at `from`), 0 `from`
/// missing, -1 `to` exists, 2 `from` has index entries (nothing done: the
/// move must take its index keys along, see [`index`](super::index)).
pub(super) static RENAME: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("rename.lua")));

/// Cluster move, step 1 on `from`. ARGV: token, lease in ms (0: writes go
/// on). All fields, or nil.
pub(super) static COPY_OUT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("copy_out.lua")));

/// Cluster move, step 2 on `to`. ARGV: token, expiry, field/value pairs (the
/// copy, which carries the token; without `__frozen` and `__expires`). 1
/// created (or already created by this move), 0 `to` exists.
pub(super) static COPY_IN: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("copy_in.lua")));

/// Cluster move, step 3 on `from`. ARGV: token, the new id, the end of the
/// forward window. 1 done (now, or by an earlier attempt of this step), 0
/// written meanwhile, -1 gone. The tombstone it leaves carries the forward.
pub(super) static FINISH: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("finish.lua")));

/// Lets writes to `from` go on after a failed cluster move, if it still
/// carries the move's token.
pub(super) static THAW: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("thaw.lua")));

/// Deletes the copy a cluster move made, if it still carries the move's token.
pub(super) static DISCARD: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("discard.lua")));
