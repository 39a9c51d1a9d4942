#!/bin/bash
# bench/bounce/run.sh [--quick] - bounce parsing throughput: lib/bounce (bounce_bench) against
# Debian's Sisimai 4.25 (libsisimai-perl), both over the whole shared corpus N times in one
# process each, so start-up (rules compilation, Perl module loading) drops out. Prints msgs/s for
# each and the ratio. Runs the two one after the other on an otherwise idle machine.
#
# Environment: BUILD (default /work/main/build) holds bench/bounce/bounce_bench; CORPUS (default
# ../shared/corpus/bounces next to the repo) the messages; RULES the rules file (default the
# repo's contrib/bounce-rules.conf); N_SLUICE / N_SISIMAI the passes (defaults 200 and 3; --quick
# 50 and 1). Needs no root and no network.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-/work/main/build}
CORPUS=${CORPUS:-$REPO/../shared/corpus/bounces}
RULES=${RULES:-$REPO/contrib/bounce-rules.conf}
if [ "${1:-}" = --quick ]; then N_SLUICE=${N_SLUICE:-50}; N_SISIMAI=${N_SISIMAI:-1}
else N_SLUICE=${N_SLUICE:-200}; N_SISIMAI=${N_SISIMAI:-3}; fi
BIN=$BUILD/bench/bounce/bounce_bench
[ -x "$BIN" ] || { echo "missing $BIN: cmake --build \$BUILD --target bounce_bench" >&2; exit 1; }
perl -MSisimai -e1 2>/dev/null || { echo "Sisimai missing: apt-get install libsisimai-perl" >&2; exit 1; }
MSGS=$CORPUS/messages
echo "corpus: $(ls "$MSGS" | wc -l) files in $MSGS"
ours=$("$BIN" "$RULES" "$MSGS" "$N_SLUICE")
theirs=$(perl "$HERE/sisimai_bench.pl" "$MSGS" "$N_SISIMAI")
echo "$ours  (passes=$N_SLUICE)"
echo "$theirs  (passes=$N_SISIMAI, Sisimai $(perl -MSisimai -e 'print $Sisimai::VERSION'))"
a=$(sed -n 's/.*msgs_per_s=\([0-9.]*\).*/\1/p' <<< "$ours")
b=$(sed -n 's/.*msgs_per_s=\([0-9.]*\).*/\1/p' <<< "$theirs")
printf '%-28s %12s\n' parser msgs/s
printf '%-28s %12.0f\n' "sluice lib/bounce" "$a" "Sisimai 4.25 (perl)" "$b"
awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "ratio sluice/Sisimai: %.1fx (target >= 50x)\n", a / b }'
