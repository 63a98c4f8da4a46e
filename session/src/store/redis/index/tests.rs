use super::*;

#[test]
fn index_keys_are_unambiguous_and_parse_back() {
    let store_prefix = "p:";
    let a = index_key(store_prefix, "a:b", b"c");
    let b = index_key(store_prefix, "a", b"b:c");
    assert_ne!(a, b);
    assert_eq!(a, b"p:__index:3:a:b:c".to_vec());
}
