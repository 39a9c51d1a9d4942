#!/bin/bash
# bench/intake/run.sh [--quick] - durable intake only: smtp-source (Postfix package) sends N
# messages of 4 KB and of 100 KB over 20 sessions into sluice-relayd, and in the same run into an
# isolated Postfix whose delivery is held back (defer_transports = smtp), so both sides measure
# accepting and making mail durable, fsync on in both (relayd: one syncfs + one synchronous SQLite
# commit per batch; Postfix: fsync of every queue file). Prints msgs/s for each and the ratio.
#
# Environment: BUILD (default /work/main/build), N (default 20000; --quick 2000), SESS (20), ROW_GAP
# (seconds of quiet before each timed row, default 60: bench/common.sh, quiet_disk_and_cpu).
# Needs root (Postfix instance). Loopback only; every process stopped by PID at exit.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../common.sh"
QUICK=0; [ "${1:-}" = --quick ] && QUICK=1
BUILD=${BUILD:-/work/main/build}
RELAYD=$BUILD/relay-core/sluice-relayd
[ -x "$RELAYD" ] || { echo "no $RELAYD" >&2; exit 1; }
if [ $QUICK = 1 ]; then N=${N:-2000}; else N=${N:-20000}; fi
SESS=${SESS:-20}
R=$(mktemp -d /var/tmp/sluice-bench-intake.XXXXXX)   # a real disk, not a tmpfs
chmod 755 "$R"
RP=$(free_port); PP=$(free_port)
RELAYD_PID=
cleanup() {
  [ -f "$R/pf/etc/main.cf" ] && postfix -c "$R/pf/etc" stop >/dev/null 2>&1 || true
  stop_pid "$RELAYD_PID"
  if [ "${KEEP:-0}" = 1 ]; then echo "scratch kept in $R" >&2; else rm -rf "$R"; fi
}
trap cleanup EXIT

mkdir -p "$R/relayd/state"
cat > "$R/relayd/sluice.yaml" <<YAML
state_dir: $R/relayd/state
run_as_user: ""
log: { target: stderr, level: warning }
relayd:
  listen: 127.0.0.1:$RP
  max_message_size: 10M
  metrics_listen: ""
delivery: { enabled: false }   # intake only, as Postfix's defer_transports on the other side
dns: { servers: [127.0.0.1@9] }
YAML
"$RELAYD" --config "$R/relayd/sluice.yaml" 2> "$R/relayd/stderr.log" &
RELAYD_PID=$!
wait_port 127.0.0.1 "$RP"

"$HERE/../postfix/pf-instance.sh" "$R/pf" "$PP" 9 >/dev/null
postconf -c "$R/pf/etc" -e "defer_transports = smtp" "relayhost = [127.0.0.1]:9" "default_process_limit = 200"
postfix -c "$R/pf/etc" reload >/dev/null 2>&1; sleep 1
wait_port 127.0.0.1 "$PP"

run() {  # run PORT SIZE COUNT -> msgs/s
  local t0 t1
  t0=$(date +%s.%N)
  smtp-source -s "$SESS" -d -m "$3" -l "$2" -f bench@example.com -t rcpt@dest.example -S bench "127.0.0.1:$1" > /dev/null
  t1=$(date +%s.%N)
  echo "$3 $t0 $t1" | awk '{printf "%.0f", $1 / ($3 - $2)}'
}
# settle: wait until Postfix has moved every message it took out of incoming/ and active/ (qmgr
# defers them after the run: work that would otherwise overlap the next measurement), then
# quiet_disk_and_cpu (bench/common.sh: sync, ROW_GAP s for ext4, then the 1-minute load below
# 1.5), so neither side is measured beside the other's leftovers.
settle() {
  local i
  for ((i = 0; i < 600; i++)); do
    [ "$(find "$R/pf/spool/incoming" "$R/pf/spool/active" -type f 2>/dev/null | head -1)" = "" ] && break
    sleep 0.2
  done
  quiet_disk_and_cpu
}
echo "# bench/intake: $N messages per size over $SESS sessions; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# relayd state and Postfix queue on $(findmnt -no FSTYPE -T "$R") ($R)"
printf '%-8s %12s %12s %8s\n' size "relayd/s" "postfix/s" ratio
for size in 4096 102400; do
  n=$N; [ $size -gt 10000 ] && n=$((N / 4))
  run "$RP" "$size" 200 > /dev/null; run "$PP" "$size" 200 > /dev/null      # warm-up
  settle; r=$(run "$RP" "$size" "$n"); settle; p=$(run "$PP" "$size" "$n")
  printf '%-8s %12s %12s %7.1fx\n' "$size" "$r" "$p" "$(echo "$r / $p" | bc -l)"
done
q=$("$BUILD/sluicectl/sluicectl" --config "$R/relayd/sluice.yaml" queue totals --json)
echo "# relayd queue after the run: $q"
echo "# Postfix deferred queue: $(find "$R/pf/spool/deferred" "$R/pf/spool/active" "$R/pf/spool/incoming" -type f 2>/dev/null | wc -l) files"
