#!/usr/bin/env bash
# The crates as crates.io would get them: packages typed-sessions-derive and
# typed-sessions (cargo builds each package with its default features), then,
# outside the workspace, checks and documents the packaged library with all
# features (rustdoc warnings are errors).
set -euo pipefail
cd "$(dirname "$0")/.."

root=$PWD
target_dir=${CARGO_TARGET_DIR:-$root/target}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)

cargo package --quiet --allow-dirty -p typed-sessions-derive -p typed-sessions

unpacked=$(mktemp -d)
trap 'rm -rf "$unpacked"' EXIT
for crate in typed-sessions-derive typed-sessions; do
  tar -xzf "$target_dir/package/$crate-$version.crate" -C "$unpacked"
done
lib="$unpacked/typed-sessions-$version"
# The derive is not on crates.io yet: its packaged copy stands in for it.
mkdir -p "$lib/.cargo"
printf '[patch.crates-io]\ntyped-sessions-derive = { path = "../typed-sessions-derive-%s" }\n' \
  "$version" >"$lib/.cargo/config.toml"

(
  cd "$lib"
  export CARGO_TARGET_DIR=$target_dir
  cargo check --quiet --all-features
  RUSTDOCFLAGS="-D warnings" cargo doc --quiet --all-features --no-deps \
    -p typed-sessions -p typed-sessions-derive
)
