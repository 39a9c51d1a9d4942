#!/bin/bash
# bench/bounce/run.sh [--quick] - bounce parsing throughput: lib/bounce (bounce_bench) against
# Debian's Sisimai 4.25 (libsisimai-perl), both over the whole shared corpus N times in one
# process each, so start-up (rules compilation, Perl module loading) drops out. Two pairings:
#   files   each pass reads every file: bounce_bench against a loop over Sisimai->make(FILE);
#   memory  messages in memory (how relayd receives them): bounce_bench --preload against the
#           same Perl loop without the file reading (Sisimai::Message->new + Sisimai::Data->make).
# Each pairing runs ROUNDS times, ours and Sisimai's in turn, and keeps each side's best rate
# (a busy moment slows one run, never speeds one up). Prints msgs/s, the allocator bounce_bench
# runs with (tcmalloc, as the programs: CMakeLists.txt) and the ratio. Run it on an idle machine.
#
# Environment: BUILD (default /work/main/build) holds bench/bounce/bounce_bench; CORPUS (default
# ../shared/corpus/bounces next to the repo) the messages; RULES the rules file (default the
# repo's contrib/bounce-rules.conf); N_SLUICE / N_SISIMAI the passes (defaults 200 and 3; --quick
# 50 and 1); ROUNDS (default 3; --quick 1). Needs no root and no network.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-/work/main/build}
CORPUS=${CORPUS:-$REPO/../shared/corpus/bounces}
RULES=${RULES:-$REPO/contrib/bounce-rules.conf}
if [ "${1:-}" = --quick ]; then N_SLUICE=${N_SLUICE:-50}; N_SISIMAI=${N_SISIMAI:-1}; ROUNDS=${ROUNDS:-1}
else N_SLUICE=${N_SLUICE:-200}; N_SISIMAI=${N_SISIMAI:-3}; ROUNDS=${ROUNDS:-3}; fi
BIN=$BUILD/bench/bounce/bounce_bench
[ -x "$BIN" ] || { echo "missing $BIN: cmake --build \$BUILD --target bounce_bench" >&2; exit 1; }
perl -MSisimai -e1 2>/dev/null || { echo "Sisimai missing: apt-get install libsisimai-perl" >&2; exit 1; }
MSGS=$CORPUS/messages
rate() { sed -n 's/.*msgs_per_s=\([0-9.]*\).*/\1/p' <<< "$1"; }
alloc() { sed -n 's/.*allocator=\([a-z]*\).*/\1/p' <<< "$1"; }
echo "corpus: $(ls "$MSGS" | wc -l) files in $MSGS; Sisimai $(perl -MSisimai -e 'print $Sisimai::VERSION')"
printf '%-8s %-42s %10s\n' pairing parser msgs/s
best() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 > b + 0) ? a : b }'; }
for mode in files memory; do
  a=0; b=0
  for round in $(seq "$ROUNDS"); do
    if [ $mode = files ]; then ours=$("$BIN" "$RULES" "$MSGS" "$N_SLUICE"); theirs=$(perl "$HERE/sisimai_bench.pl" "$MSGS" "$N_SISIMAI" make)
    else ours=$("$BIN" "$RULES" "$MSGS" "$N_SLUICE" --preload); theirs=$(perl "$HERE/sisimai_bench.pl" "$MSGS" "$N_SISIMAI" memory); fi
    a=$(best "$a" "$(rate "$ours")"); b=$(best "$b" "$(rate "$theirs")")
  done
  printf '%-8s %-42s %10.0f\n' $mode "sluice lib/bounce ($N_SLUICE passes, $(alloc "$ours"))" "$a" $mode "Sisimai 4.25 ($N_SISIMAI passes)" "$b"
  awk -v m=$mode -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%-8s ratio sluice/Sisimai: %.1fx (target >= 50x)\n", m, a / b }'
done
