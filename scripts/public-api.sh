#!/usr/bin/env bash
# Compares typed-sessions' public API with the snapshot in
# session/public-api.txt, so that every change of the public surface shows up
# in review. After a deliberate change: `scripts/public-api.sh --bless`, then
# read and commit the snapshot's diff.
#
# rustdoc's JSON output is unstable; stable rustc accepts the flag under
# RUSTC_BOOTSTRAP=1, in a target directory of its own so the main build's
# artifacts are not rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${API_TARGET_DIR:-target/api}
RUSTC_BOOTSTRAP=1 cargo rustdoc --quiet -p typed-sessions --all-features --lib -- \
  -Z unstable-options --output-format json
current="$CARGO_TARGET_DIR/public-api.txt"
cargo run --quiet -p api-snapshot -- "$CARGO_TARGET_DIR/doc/typed_sessions.json" >"$current"
if [[ ${1:-} == --bless ]]; then
  cp "$current" session/public-api.txt
  echo "session/public-api.txt updated: review and commit its diff"
  exit 0
fi
if ! diff -u session/public-api.txt "$current"; then
  echo "the public API changed (diff above). If intended: scripts/public-api.sh --bless, and commit session/public-api.txt" >&2
  exit 1
fi
echo "public API unchanged ($(wc -l <"$current") items)"
