#!/usr/bin/env bash
# The project's test command: installs (where missing) and starts the servers
# the tests talk to, then runs fmt, clippy, the docs build, the packaging and
# dependency checks and every test of the workspace with all features. Stops
# the servers it started unless KEEP_SERVERS=1 (handy while developing).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

servers_were_up=0
if (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/27017) 2>/dev/null; then
  servers_were_up=1
fi
step "servers: redis 6379, redis cluster 7000-7002, memcached 11211, SecantusDB 27017"
bash scripts/test-servers.sh start
if [[ ${KEEP_SERVERS:-0} != 1 && $servers_were_up == 0 ]]; then
  trap 'bash scripts/test-servers.sh stop' EXIT
fi

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (all targets, all features, warnings are errors)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "the library builds with each store feature alone (as users pick them)"
for features in "" redis redis-rustls mongodb memcache conformance; do
  cargo check --quiet -p typed-sessions --no-default-features ${features:+--features "$features"}
done

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --quiet

step "public API matches session/public-api.txt"
bash scripts/public-api.sh

step "the crates as packaged for crates.io: build, check and docs (all features), cargo deny check advisories bans"
bash scripts/package.sh

step "cargo test --workspace --all-features"
cargo test --workspace --all-features

step "short fuzz run (${FUZZ_SECONDS:=20} s per target; scripts/fuzz.sh 600 for a long one)"
bash scripts/fuzz.sh "$FUZZ_SECONDS"
