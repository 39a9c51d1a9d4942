#!/bin/bash
# test.sh - install dependencies, build, and run every test (the README's second command and
# what .ci/run calls):
#   1. the main build (g++), all ctest tests in parallel: unit, fuzz-corpus replays, end-to-end
#      tests with a real Postfix, swaks and our daemons;
#   2. lib's, the programs' and the parsers' unit tests again in an ASan+UBSan build;
#   3. the libFuzzer targets built with clang-14, each fuzzed for FUZZ_SECONDS (default 30).
# Prints a summary and exits non-zero if any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
JOBS=$(nproc)
# The ASan and fuzz builds below share scripts/build.sh's ccache settings.
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache} CCACHE_BASEDIR=$ROOT CCACHE_NOHASHDIR=1
start=$(date +%s)
step() { printf '\n==== %s (%ds)\n' "$*" $(( $(date +%s) - start )); }

step "installing packages"
bash scripts/install-deps.sh || { echo "test.sh: package installation failed"; exit 1; }

fail=0
step "main build"
bash scripts/build.sh || { echo "test.sh: build failed"; exit 1; }
step "tests (ctest -j$JOBS)"
ctest --test-dir build -j"$JOBS" --output-on-failure --timeout 900 || fail=1

step "ASan+UBSan build of the unit tests"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
replays=$(for f in tests/fuzz/fuzz_*.cc; do basename "$f" .cc; done | sed 's/$/_replay/')
if cmake -S . -B build-asan -G Ninja -DSLUICE_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
   ninja -C build-asan unit_tests $replays; then
  step "unit tests and fuzz-corpus replays under ASan+UBSan"
  ctest --test-dir build-asan -j"$JOBS" -L 'unit|fuzz' --output-on-failure --timeout 300 || fail=1
else
  echo "test.sh: ASan build failed"; fail=1
fi

step "libFuzzer build (clang-14)"
if CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DSLUICE_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
   ninja -C build-fuzz; then
  for t in build-fuzz/tests/fuzz/fuzz_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    step "fuzzing $name for ${FUZZ_SECONDS}s"
    work=$(mktemp -d); cp -r "tests/fuzz/corpus/$name/." "$work/"
    if "$t" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -print_final_stats=1 "$work" >"$work.log" 2>&1; then
      grep -E 'stat::number_of_executed_units|Done' "$work.log" | tail -2
    else
      echo "FUZZ FAILURE in $name:"; tail -40 "$work.log"; fail=1
    fi
    rm -rf "$work" "$work.log"
  done
else
  echo "test.sh: fuzz build failed"; fail=1
fi

step "done"
if [ "$fail" -ne 0 ]; then echo "test.sh: FAILED"; exit 1; fi
echo "test.sh: all tests passed"
