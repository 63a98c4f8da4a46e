// Namespaces and stored names: ASCII letters, digits, `_` and `-`, at most
// 64 bytes; namespaces starting with `__` are reserved.
use typed_sessions::SessionState;

#[derive(SessionState)]
#[session(namespace = "")]
struct Empty {
    a: u32,
}

#[derive(SessionState)]
#[session(namespace = "shop.cart")]
struct Dot {
    a: u32,
}

#[derive(SessionState)]
#[session(namespace = "my cart")]
struct Space {
    a: u32,
}

#[derive(SessionState)]
#[session(namespace = "cart:v2")]
struct Colon {
    a: u32,
}

#[derive(SessionState)]
#[session(namespace = "$cart")]
struct Dollar {
    a: u32,
}

#[derive(SessionState)]
#[session(namespace = "a_namespace_that_is_much_longer_than_the_sixty_four_bytes_allowed")]
struct TooLong {
    a: u32,
}

#[derive(SessionState)]
#[session(namespace = "__internal")]
struct Reserved {
    a: u32,
}

#[derive(SessionState)]
struct Größe {
    a: u32,
}

#[derive(SessionState)]
struct StoredNames {
    #[session(rename = "user.id")]
    dot: u32,
    #[session(rename = "")]
    empty: u32,
    größe: u32,
    a_field_name_that_is_much_longer_than_the_sixty_four_bytes_allowed: u32,
}

fn main() {}
