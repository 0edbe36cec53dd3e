#!/usr/bin/env bash
# Fuzzes zoneagent with cargo-fuzz (libFuzzer): every target in
# fuzz/Cargo.toml for SECONDS each (default 60), one after another, and
# prints each target's executions, coverage and findings. Not run by CI
# (too slow); CI replays the corpora and regressions on stable Rust
# instead (see fuzz/README.md).
#
#   scripts/fuzz.sh [SECONDS]
#
# Environment:
#   FUZZ_SANITIZER  none (default: plain stable Rust) or address (ASan:
#                   needs -Z flags, so RUSTC_BOOTSTRAP=1 is set for this
#                   build only; about 10x slower, and zoneagent has no
#                   unsafe code)
#   FUZZ_TARGETS    space-separated subset of the targets (default: all)
#   FUZZ_JOBS       libFuzzer -fork=N workers per target (default: 1)
#   CARGO_TARGET_DIR  build directory (default: fuzz/target)
#
# New corpus entries go to fuzz/work/<target>/ (git-ignored) and persist
# between runs; fuzz/corpus/<target>/ holds the committed seeds and is
# only read. A crash leaves its input in fuzz/artifacts/<target>/; the
# script prints it and the command that minimizes it, and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
if ! [[ $secs =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS]   (seconds per target, default 60)" >&2
  exit 2
fi
sanitizer=${FUZZ_SANITIZER:-none}
jobs=${FUZZ_JOBS:-1}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/fuzz/target}

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz from crates.io"
  cargo install cargo-fuzz
fi
if [ "$sanitizer" != none ]; then
  # cargo-fuzz passes -Zsanitizer=...; a stable compiler accepts it only
  # with RUSTC_BOOTSTRAP. Exported for this script's cargo calls only.
  export RUSTC_BOOTSTRAP=1
fi

targets=${FUZZ_TARGETS:-$(cargo fuzz list)}
echo "building: $targets (sanitizer: $sanitizer)"
cargo fuzz build -O --sanitizer "$sanitizer" >/dev/null 2>fuzz/build.log || {
  cat fuzz/build.log >&2
  exit 1
}
rm -f fuzz/build.log

failed=0
summary=()
for t in $targets; do
  work=fuzz/work/$t
  log=fuzz/work/$t.log
  mkdir -p "$work" "fuzz/artifacts/$t"
  args=(-max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=10
        -dict=fuzz/dict/zone.dict -print_final_stats=1)
  if [ "$jobs" -gt 1 ]; then args+=(-fork="$jobs"); fi
  echo "fuzzing $t for ${secs}s (log: $log)"
  status=ok
  cargo fuzz run -O --sanitizer "$sanitizer" "$t" "$work" "fuzz/corpus/$t" -- "${args[@]}" \
    >"$log" 2>&1 || status=FAILED
  runs=$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second\(s\)' "$log" | tail -1 || true)
  if [ -z "$runs" ]; then
    runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | tail -1 | grep -Eo '[0-9]+$' || true)
    runs="${runs:-?} runs before stopping"
  fi
  cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[A-Za-z]*' "$log" | tail -1 || true)
  line="$t: $status; $runs; ${cov:-no coverage line}"
  echo "  $line"
  summary+=("$line")
  if [ "$status" != ok ]; then
    failed=1
    grep -E "panicked at|^thread '|Test unit written to|SUMMARY|ERROR:" "$log" | head -20 | sed 's/^/    /'
    for a in $(grep -Eo "fuzz/artifacts/$t/[a-z]+-[0-9a-f]+" "$log" | sort -u); do
      echo "    minimize: cargo fuzz tmin -O --sanitizer $sanitizer $t $a"
      echo "    then keep it: cp <minimized> fuzz/regressions/$t/"
    done
  fi
done

echo
echo "summary (${secs}s per target, sanitizer $sanitizer):"
printf '  %s\n' "${summary[@]}"
exit "$failed"
