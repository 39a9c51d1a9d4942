#!/bin/bash
# bench/queue-scale/run.sh [--quick] - does sluice-relayd's scheduler stay flat as the queue grows?
# queue_fill puts SMALL (1,000) deferred messages into a fresh queue (lib/queue's Queue::commit in
# batches of 1,000, then Queue::record of a 451 with the next attempt 1-4 h away, 1,000
# destination domains); sluice-relayd starts on it and probe.py sends PROBES messages, open loop,
# to probe.example, whose MX (found through a local unbound) is probe.py's own receiver: latency =
# the probe's 250 -> the receiver reading the MAIL FROM of the transaction that carries it (on a
# new connection: its accept + EHLO, under a millisecond). relayd stops, queue_fill grows the same
# queue to LARGE (1,000,000; --quick 100,000) and the same is measured again. Also: relayd's
# start-up time (to its first SMTP greeting), its RSS and peak RSS after the probes, its CPU while
# probing. Target (issue 5): probe latency at LARGE <= 1.2x that at SMALL (p50 and p90), RSS
# under 1 GiB.
#
# Environment: BUILD (default /work/main/build; queue_fill from $BUILD/bench/queue-scale),
# SMALL, LARGE, PROBES (200; --quick 60), WARM (5 probes, closed loop, not counted), MAX_PROBE_S
# (120), GAP_MS (500: each probe is sent uniform(0, GAP_MS) ms after the previous one's 250),
# PERF=1 (perf record -g of relayd during the LARGE probes, top symbols printed), KEEP=1.
# Needs root (namespace). Loopback of a private network namespace only; every process stopped by
# PID at exit.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../common.sh"
QUICK=0; [ "${1:-}" = --quick ] && QUICK=1
BUILD=${BUILD:-/work/main/build}
RELAYD=$BUILD/relay-core/sluice-relayd
FILL=$BUILD/bench/queue-scale/queue_fill
for b in "$RELAYD" "$FILL"; do [ -x "$b" ] || { echo "no $b (cmake --build $BUILD)" >&2; exit 1; }; done
SMALL=${SMALL:-1000}
if [ $QUICK = 1 ]; then LARGE=${LARGE:-100000}; PROBES=${PROBES:-60}; else LARGE=${LARGE:-1000000}; PROBES=${PROBES:-200}; fi
WARM=${WARM:-5}; MAX_PROBE_S=${MAX_PROBE_S:-120}; GAP_MS=${GAP_MS:-500}
R=$(mktemp -d /var/tmp/sluice-bench-qscale.XXXXXX)   # a real disk
chmod 755 "$R"
NS=sluice-bench-qs-$$
RELAYD_PID= UNBOUND_PID= PERF_PID=
cleanup() {
  [ -n "$PERF_PID" ] && { kill -INT "$PERF_PID" 2>/dev/null || true; wait "$PERF_PID" 2>/dev/null || true; }
  stop_pid "$RELAYD_PID"; stop_pid "$UNBOUND_PID"
  netns_down "$NS"
  if [ "${KEEP:-0}" = 1 ]; then echo "scratch kept in $R" >&2; else rm -rf "$R"; fi
}
trap cleanup EXIT
nsx() { ip netns exec "$NS" "$@"; }   # foreground only: a background nsx would give the PID of a subshell

netns_up "$NS"
ns_unbound_start "$NS" "$R/unbound" '  local-zone: "probe.example." static
  local-data: "probe.example. 3600 IN MX 10 mx.probe.example."
  local-data: "mx.probe.example. 3600 IN A 127.0.0.2"
  local-zone: "deferred.example." static'
RP=$(ns_free_port "$NS"); SP=$(ns_free_port "$NS")
mkdir -p "$R/state"
cat > "$R/sluice.yaml" <<YAML
state_dir: $R/state
run_as_user: ""
log: { target: stderr, level: info }
relayd:
  listen: 127.0.0.1:$RP
  hostname: relayd.test.example
  metrics_listen: ""
dns: { servers: [127.0.0.1@53], timeout: 5s }
delivery:
  smtp_port: $SP
YAML

fill() {  # fill N: add N deferred messages (relayd stopped)
  local out
  out=$("$FILL" "$R/state" "$1" 1000 1024 1000 2> "$R/fill.log") || { cat "$R/fill.log" >&2; exit 1; }
  echo "# queue_fill: $1 deferred messages in $(echo "$out" | cut -d' ' -f2) s" >&2
  # The fill's writes (1.5 GB at 1M) reach the disk before relayd starts: otherwise the first
  # probes' syncfs would wait for the fill's writeback, which a real queue never has pending.
  sync
}
measure() {  # measure QUEUED: start relayd, probe, stop; appends a row to $R/rows
  local t0 t1 c0 c1 w0 w1 res rss hwm cpu
  t0=$(date +%s.%N)
  ip netns exec "$NS" "$RELAYD" --config "$R/sluice.yaml" 2>> "$R/relayd.log" &   # $! is relayd (ip execs it)
  RELAYD_PID=$!
  # Start-up = until the first SMTP greeting: the port is bound (and accepts) before the queue is
  # opened and recovered, the greeting comes once the accept loop runs.
  nsx /usr/bin/python3 -c 'import socket, sys, time
for _ in range(6000):
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=600)
        if s.recv(64).startswith(b"220"):
            s.sendall(b"QUIT\r\n"); sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)' "$RP"
  t1=$(date +%s.%N)
  sleep 2
  if [ "${PERF:-0}" = 1 ] && [ "$1" = "$LARGE" ] && command -v perf >/dev/null; then
    perf record -q -F 199 -g -p "$RELAYD_PID" -o "$R/perf.data" 2> "$R/perf.log" &
    PERF_PID=$!
  fi
  c0=$(cpu_ticks "$RELAYD_PID"); w0=$(date +%s.%N)
  res=$(nsx /usr/bin/python3 "$HERE/probe.py" "127.0.0.1:$RP" "127.0.0.2:$SP" "$PROBES" "$WARM" "$MAX_PROBE_S" "$GAP_MS" "$R/raw-$1.txt")
  c1=$(cpu_ticks "$RELAYD_PID"); w1=$(date +%s.%N)
  if [ -n "$PERF_PID" ]; then kill -INT "$PERF_PID"; wait "$PERF_PID" 2>/dev/null || true; PERF_PID=; fi
  rss=$(rss_kib "$RELAYD_PID"); hwm=$(hwm_kib "$RELAYD_PID")
  cpu=$(echo "$c0 $c1 $w0 $w1" | awk '{printf "%.0f", ($2 - $1) / ($4 - $3)}')   # ticks/s = % of one core
  stop_pid "$RELAYD_PID"; RELAYD_PID=
  echo "$1 $(echo "$t1 - $t0" | bc -l) $res rss=$rss hwm=$hwm cpu=$cpu" >> "$R/rows"
}

echo "# bench/queue-scale: probe latency (250 -> connection at the MX) with $SMALL and $LARGE deferred messages queued"
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg); state on $(findmnt -no FSTYPE -T "$R") ($R); namespace $NS"
: > "$R/rows"
fill "$SMALL"
measure "$SMALL"
fill $((LARGE - SMALL))
echo "# queue index: $(du -sh "$R/state/queue.db" | cut -f1) queue.db, $(find "$R/state/spool" -type f | wc -l) spool files" >&2
measure "$LARGE"

RC=0
/usr/bin/python3 - "$R/rows" "$SMALL" "$LARGE" <<'PY' || RC=$?
import re, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    d = dict(kv.split("=") for kv in f[2:])
    rows[f[0]] = (float(f[1]), d)
small, large = sys.argv[2], sys.argv[3]
print(f"{'queued':>9} {'start s':>8} {'probes':>6} {'reused':>6} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>8} {'mean ms':>8} {'RSS MiB':>8} {'peak MiB':>8} {'cpu %':>6}")
for k in (small, large):
    s, d = rows[k]
    print(f"{int(k):>9,} {s:8.1f} {d['n']:>6} {d['reused']:>6} {float(d['p50']):7.1f} {float(d['p90']):7.1f} {float(d['p99']):7.1f} "
          f"{float(d['max']):8.1f} {float(d['mean']):8.1f} {int(d['rss'])/1024:8.0f} {int(d['hwm'])/1024:8.0f} {d['cpu']:>6}")
a, b = rows[small][1], rows[large][1]
ok = True
for q in ("p50", "p90", "p99", "mean"):
    r = float(b[q]) / max(float(a[q]), 0.001)
    verdict = ""
    if q in ("p50", "p90"):
        verdict = "PASS" if r <= 1.2 else "FAIL"
        ok = ok and r <= 1.2
    print(f"# {q} {int(large):,} / {int(small):,}: {r:.2f}x {verdict}")
rss_ok = int(b["hwm"]) < 1024 * 1024
print(f"# peak RSS at {int(large):,}: {int(b['hwm'])/1024:.0f} MiB {'PASS' if rss_ok else 'FAIL'} (< 1 GiB)")
print("# target: p50 and p90 <= 1.2x apart, RSS < 1 GiB: " + ("PASS" if ok and rss_ok else "FAIL"))
sys.exit(0 if ok and rss_ok else 1)
PY
if [ -f "$R/perf.data" ]; then
  echo "# perf (relayd during the $LARGE probes), top symbols by self time:"
  perf report -i "$R/perf.data" --stdio --no-children --sort symbol 2>/dev/null | grep -E '^ +[0-9.]+%' |
    sed -E 's/ +- +- *$//; s/std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >/std::string/g' | cut -c1-150 | head -15 || true
fi
grep -E ': (warning|error|fatal): ' "$R/relayd.log" | head -3 >&2 || true
exit $RC
