//! trybuild cases for `#[derive(SessionState)]`: every error the derive
//! reports (`ui/*.rs`, with the expected output in `ui/*.stderr`) and the
//! inputs it must accept (`ui/pass/*.rs`).
//!
//! Regenerate the expected output after a deliberate change with
//! `TRYBUILD=overwrite cargo test -p typed-sessions-ui-tests --test ui`, then
//! read every changed `.stderr`.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}
