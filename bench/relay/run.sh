#!/bin/bash
# bench/relay/run.sh [--quick] - the smarthost end to end: smtp-source (Postfix package, 20
# sessions, connection reuse) -> sluice-relayd -> smtp-sink found as the MX of dest.example
# through a local unbound, and in the same run the same through an isolated Postfix instance
# configured as the smarthost (no relayhost: MX lookups, smtp_tcp_port = the sink's port). Both
# resolve through the same unbound and deliver to the same sink, fsync on in both (relayd: syncfs +
# synchronous SQLite commit per batch; Postfix: fsync of every queue file). N messages of 4 KB and
# N of 100 KB. msgs/s = N / (time the sink counted the last one - time smtp-source started).
#
# Everything runs in a private network namespace (netns_up): its loopback only; unbound on its
# 127.0.0.1:53 is the namespace's /etc/resolv.conf, so Postfix's libc resolver asks it and nothing
# can reach the machine's own resolver; smtp-sink on 127.0.0.2:PORT (delivery.smtp_port = PORT).
#
# Environment: BUILD (default /work/main/build), N (default 20000; --quick 2000), SESS (20),
# WARMUP (200), SIZES ("4096 102400"), ROW_GAP (60: quiet seconds before each timed row, see
# quiet_disk_and_cpu in bench/common.sh), KEEP=1 keeps the scratch directory, ONLY=relayd skips
# the Postfix side (for comparing relayd builds; no ratio).
# Needs root (namespace, Postfix instance). Every process stopped by PID at exit.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../common.sh"
QUICK=0; [ "${1:-}" = --quick ] && QUICK=1
BUILD=${BUILD:-/work/main/build}
RELAYD=$BUILD/relay-core/sluice-relayd
SLUICECTL=$BUILD/sluicectl/sluicectl
[ -x "$RELAYD" ] || { echo "no $RELAYD" >&2; exit 1; }
if [ $QUICK = 1 ]; then N=${N:-2000}; else N=${N:-20000}; fi
SESS=${SESS:-20}; WARMUP=${WARMUP:-200}; SIZES=${SIZES:-"4096 102400"}
R=$(mktemp -d /var/tmp/sluice-bench-relay.XXXXXX)   # a real disk, not a tmpfs
chmod 755 "$R"
NS=sluice-bench-relay-$$
RELAYD_PID= SINK_PID= UNBOUND_PID=
cleanup() {
  local master
  master=$(tr -dc 0-9 < "$R/pf/spool/pid/master.pid" 2>/dev/null || true)
  [ -f "$R/pf/etc/main.cf" ] && ip netns exec "$NS" postfix -c "$R/pf/etc" stop >/dev/null 2>&1 || true
  stop_pid "$master"   # whatever `postfix stop` did: the master is gone before its directory is
  stop_pid "$RELAYD_PID"; stop_pid "$SINK_PID"; stop_pid "$UNBOUND_PID"
  netns_down "$NS"
  if [ "${KEEP:-0}" = 1 ]; then echo "scratch kept in $R" >&2; else rm -rf "$R"; fi
}
trap cleanup EXIT
nsx() { ip netns exec "$NS" "$@"; }   # foreground only: a background nsx would give the PID of a subshell

netns_up "$NS"
ns_unbound_start "$NS" "$R/unbound" '  local-zone: "dest.example." static
  local-data: "dest.example. 3600 IN MX 10 mx.dest.example."
  local-data: "mx.dest.example. 3600 IN A 127.0.0.2"'
nsx getent hosts mx.dest.example | grep -q 127.0.0.2 || { echo "unbound does not answer in $NS" >&2; exit 1; }
RP=$(ns_free_port "$NS"); PP=$(ns_free_port "$NS"); SP=$(ns_free_port "$NS")

mkdir -p "$R/relayd/state"
cat > "$R/relayd/sluice.yaml" <<YAML
state_dir: $R/relayd/state
run_as_user: ""
log: { target: stderr, level: info }
relayd:
  listen: 127.0.0.1:$RP
  hostname: relayd.test.example
  metrics_listen: ""
dns: { servers: [127.0.0.1@53], timeout: 5s }
delivery:
  smtp_port: $SP
  # Not the default 5m: an agent that connected, found its destination's queue empty (other agents
  # took the jobs) and saw new jobs arrive during its QUIT fails them all with "451 4.4.1 no MX host
  # of dest.example has an address" (relay-core/delivery.cc, agent()); with 5m the run would wait
  # 5 minutes for them. The deferrals are counted in the last line.
  retry_initial: 1s
YAML
ip netns exec "$NS" "$RELAYD" --config "$R/relayd/sluice.yaml" 2> "$R/relayd/stderr.log" &   # $! is relayd (ip execs it)
RELAYD_PID=$!
ns_wait_port "$NS" 127.0.0.1 "$RP"

cat > "$R/pf-extra.cf" <<CF
relayhost =
smtp_dns_support_level = enabled
smtp_host_lookup = dns
smtp_tcp_port = $SP
CF
nsx "$HERE/../postfix/pf-instance.sh" "$R/pf" "$PP" "$SP" "$R/pf-extra.cf" >/dev/null
ns_wait_port "$NS" 127.0.0.1 "$PP"

sink_count() { tail -c 256 "$R/sink.count" 2>/dev/null | tr '\r' '\n' | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2; }
wait_sink() {  # COUNT TIMEOUT_S: until the sink has counted COUNT messages
  local i
  for ((i = 0; i < $2 * 50; i++)); do [ "$(sink_count)" -ge "$1" ] 2>/dev/null && return 0; sleep 0.02; done
  echo "sink counted $(sink_count), not $1, in $2 s" >&2; return 1
}
relayd_unfinished() {
  "$SLUICECTL" --config "$R/relayd/sluice.yaml" queue totals --json |
    /usr/bin/python3 -c 'import json,sys; s=json.load(sys.stdin)["by_state"]; print(sum(v for k,v in s.items() if k not in ("delivered","bounced","expired","suppressed")))'
}
postfix_unfinished() { find "$R/pf/spool/incoming" "$R/pf/spool/active" "$R/pf/spool/deferred" -type f 2>/dev/null | wc -l; }
drained() {  # TARGET: wait until its queue has nothing left to deliver
  local i n
  for ((i = 0; i < 300; i++)); do
    if [ "$1" = relayd ]; then n=$(relayd_unfinished); else n=$(postfix_unfinished); fi
    [ "$n" = 0 ] && return 0
    sleep 0.1
  done
  echo "$1: $n message(s) still queued" >&2; return 1
}
src() { nsx smtp-source -s "$SESS" -d -m "$1" -l "$2" -f bench@example.com -t rcpt@dest.example -S bench "127.0.0.1:$3" > /dev/null; }

# CPU ticks (1/100 s) of one side: relayd's process (all threads); Postfix's master process group
# (every daemon it started, live ones plus those it has reaped).
side_ticks() {
  if [ "$1" = relayd ]; then cpu_ticks "$RELAYD_PID"; else pgrp_cpu_ticks "$(tr -dc 0-9 < "$R/pf/spool/pid/master.pid")"; fi
}
run() {  # run TARGET PORT SIZE: sets OUT="e2e_msgs/s ingest_msgs/s seconds cpu_ms/msg"
  local t0 t1 t2 c0 c1
  ip netns exec "$NS" smtp-sink -u postfix -h mx.dest.example -c "127.0.0.2:$SP" 1024 > "$R/sink.count" &
  SINK_PID=$!
  ns_wait_port "$NS" 127.0.0.2 "$SP"
  src "$WARMUP" "$3" "$2"; wait_sink "$WARMUP" 120; drained "$1"
  quiet_disk_and_cpu   # bench/common.sh: the previous row's writeback and load are over
  c0=$(side_ticks "$1")
  t0=$(date +%s.%N)
  src "$N" "$3" "$2"
  t1=$(date +%s.%N)
  wait_sink $((WARMUP + N)) 900
  t2=$(date +%s.%N)
  drained "$1"
  c1=$(side_ticks "$1")
  stop_pid "$SINK_PID"; SINK_PID=
  OUT=$(echo "$N $t0 $t1 $t2 $c0 $c1" | awk '{printf "%.0f %.0f %.2f %.2f", $1 / ($4 - $2), $1 / ($3 - $2), $4 - $2, ($6 - $5) * 10 / $1}')
}

echo "# bench/relay: $N messages per size, $SESS sessions, smtp-source -> {sluice-relayd | Postfix $(postconf -d -h mail_version)} -> MX via unbound -> smtp-sink"
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg); queues on $(findmnt -no FSTYPE -T "$R") ($R); namespace $NS"
printf '%-7s %9s %9s %7s %13s %15s %7s\n' size "relayd/s" "postfix/s" ratio "ingest r/p" "cpu ms/msg r/p" target
RESULT=0
for size in $SIZES; do
  run relayd "$RP" "$size"; read -r r ri rs rc <<< "$OUT"
  if [ "${ONLY:-}" = relayd ]; then printf '%-7s %9s %9s %7s %13s %15s\n' "$size" "$r" - - "$ri/-" "$rc/-"; continue; fi
  run postfix "$PP" "$size"; read -r p pi ps pc <<< "$OUT"
  ratio=$(echo "$r / $p" | bc -l)
  verdict=PASS; [ "$(echo "$ratio >= 3" | bc -l)" = 1 ] || { verdict=FAIL; RESULT=1; }
  printf '%-7s %9s %9s %6.2fx %13s %15s %7s\n' "$size" "$r" "$p" "$ratio" "$ri/$pi" "$rc/$pc" "$verdict"
  echo "#   $size: relayd ${rs} s, Postfix ${ps} s end to end" >&2
done
echo "# target: relayd >= 3x Postfix end to end (issue 5). ingest = N / smtp-source's own run time;"
echo "# cpu ms/msg = CPU time of relayd (all threads) / of every Postfix daemon, per message (10-ms ticks)."
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# relayd: $(grep -c 'status=sent' "$R/relayd/stderr.log") status=sent lines, $(grep -c 'status=deferred' "$R/relayd/stderr.log") deferred; Postfix: $(grep -c 'status=sent' "$R/pf/maillog") status=sent, $(grep -c 'status=deferred' "$R/pf/maillog") deferred"
grep -E 'warning|fatal|error' "$R/pf/maillog" | grep -v overriding | head -3 >&2 || true
grep -E ': (warning|error|fatal): ' "$R/relayd/stderr.log" | head -3 >&2 || true
exit $RESULT
