#!/usr/bin/env bash
# Runs each fuzz target of fuzz/ for SECONDS seconds with cargo-fuzz
# (libFuzzer), installing cargo-fuzz when it is missing, and prints the
# executions per target. Exits non-zero when a target finds a crash: the
# input is kept in fuzz/artifacts/<target>/ and the end of libFuzzer's log is
# printed; turn it into a regression test (docs/hostile-input.md).
#
#   scripts/fuzz.sh SECONDS [TARGET...]     e.g. scripts/fuzz.sh 30
#
# The machine has a stable toolchain only; cargo-fuzz passes -Z flags
# (sanitizer, coverage), which RUSTC_BOOTSTRAP=1 lets stable rustc accept.
# FUZZ_SANITIZER=none skips AddressSanitizer (faster; default: address).
# Inputs the fuzzer finds accumulate in fuzz/corpus/<target>/ (not
# committed); the committed starting points are fuzz/seeds/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${1:-}
if [[ ! $seconds =~ ^[0-9]+$ || $seconds == 0 ]]; then
  echo "usage: scripts/fuzz.sh SECONDS [TARGET...]" >&2
  exit 2
fi
shift

export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked --version 0.13.2
fi

targets=("$@")
if [[ ${#targets[@]} == 0 ]]; then
  mapfile -t targets < <(cargo fuzz list)
fi
sanitizer=${FUZZ_SANITIZER:-address}

echo "==> building fuzz targets (sanitizer: $sanitizer)"
cargo fuzz build --sanitizer "$sanitizer"

mkdir -p logs
failed=()
summary=()
for target in "${targets[@]}"; do
  echo "==> fuzzing $target for ${seconds}s"
  mkdir -p "corpus/$target" "seeds/$target"
  log="logs/$target.log"
  # -timeout: an input that runs 10 s is a hang; -malloc_limit_mb: one
  # allocation over 256 MiB is a crash (no stored record justifies one);
  # -rss_limit_mb: the process as a whole stays under 2 GiB.
  if cargo fuzz run --sanitizer "$sanitizer" "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -malloc_limit_mb=256 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$log" 2>&1; then
    status=ok
  else
    status=CRASH
    failed+=("$target")
    tail -n 40 "$log"
  fi
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1 || true)
  if [[ $status == ok ]]; then
    summary+=("$(printf '%-18s %-6s %12s execs in %ss' "$target" "$status" "${execs:-?}" "$seconds")")
  else
    summary+=("$(printf '%-18s %-6s %12s execs before it' "$target" "$status" "${execs:-?}")")
  fi
done

echo
echo "==> fuzz summary"
printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} != 0 ]]; then
  echo "crashes in: ${failed[*]} (inputs in fuzz/artifacts/<target>/, logs in fuzz/logs/)" >&2
  exit 1
fi
