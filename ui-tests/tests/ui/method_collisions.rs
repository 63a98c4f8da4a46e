// The accessors `x()`, `set_x()`, `x_mut()` and `take_x()` of one field may
// not share a name with another field's accessors.
use typed_sessions::SessionState;

#[derive(SessionState)]
struct Collisions {
    x: u32,
    set_x: u32,
    x_mut: u32,
    take_x: u32,
    // `rename` changes the stored name only, so it does not help.
    #[session(rename = "y_setter")]
    set_y: u32,
    y: u32,
    r#type: u32,
    type_mut: u32,
    // A skipped field has no accessors: no collision.
    #[session(skip)]
    set_z: u32,
    z: u32,
}

fn main() {}
