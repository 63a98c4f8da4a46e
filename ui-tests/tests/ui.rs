//! trybuild cases for `#[derive(SessionState)]`: every error the derive
//! reports (`ui/*.rs`, with the expected output in `ui/*.stderr`) and the
//! inputs it must accept (`ui/pass/*.rs`).
//!
//! Regenerate the expected output after a deliberate change with
//! `TRYBUILD=overwrite cargo test -p typed-sessions-ui-tests --test ui`, then
//! read every changed `.stderr`.

/// The expected errors are rustc's words, which change between releases, so
/// they are compared only on the stable release they were recorded with
/// (keep in step with `rust-version`). Any other compiler reports this test
/// as ignored instead of failing on a reworded note; re-record the
/// `.stderr` files and move the version when the toolchain moves.
#[rustversion::attr(
    not(stable(1.95)),
    ignore = "the .stderr files were recorded with rustc 1.95"
)]
#[test]
fn compile_fail() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}

/// Accepted inputs do not depend on rustc's wording: checked on every
/// compiler.
#[test]
fn pass() {
    trybuild::TestCases::new().pass("tests/ui/pass/*.rs");
}
