#!/bin/bash
# bench/policy/run.sh [--quick] - policy service decisions/s and latency: sluice-policyd against
# postfwd2 and policyd-rate-limit, with a do-nothing server (policy_null) as the ceiling.
#
# Each daemon runs alone, one after the other, on a free 127.0.0.1 port, with the same rule:
# per SASL user, LIMIT messages (= RCPT requests, one recipient per transaction) per hour, then
# a temporary refusal. policy_load drives it with K = 1, 32, 256 connections (closed loop, one
# request in flight each), arranging ~10% refused requests (see bench/README.md).
#
# Environment: BUILD (default /work/main/build) holds policy/sluice-policyd; BENCH_BIN (default
# $BUILD/bench/policy) holds policy_load and policy_null. DUR, WARM, KS, LIMIT, USERS, DEFER,
# RCPTS override the run parameters; KEEP=1 keeps the scratch directory; ONLY="null postfwd2"
# runs a subset. Needs root (postfwd2 and policyd-rate-limit drop privileges). Loopback only.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../common.sh"

QUICK=0
[ "${1:-}" = --quick ] && QUICK=1
BUILD=${BUILD:-/work/main/build}
BENCH_BIN=${BENCH_BIN:-$BUILD/bench/policy}
SLUICE=${SLUICE:-$BUILD/policy/sluice-policyd}
# Each K: WARM s of warm-up, then at least DUR s and MIN_PER_CONN replies per connection (at least
# MIN_REQ in all), but never more than MAXDUR s: the slow peers need longer for a usable p99.
if [ $QUICK = 1 ]; then DUR=${DUR:-1.5}; WARM=${WARM:-0.5}; MIN_REQ=${MIN_REQ:-500}; MIN_PER_CONN=${MIN_PER_CONN:-4}; MAXDUR=${MAXDUR:-8}
else DUR=${DUR:-5}; WARM=${WARM:-1}; MIN_REQ=${MIN_REQ:-2000}; MIN_PER_CONN=${MIN_PER_CONN:-20}; MAXDUR=${MAXDUR:-30}; fi
KS=${KS:-"1 32 256"}
LIMIT=${LIMIT:-1000}     # messages per user per hour, every daemon
USERS=${USERS:-1000}
DEFER=${DEFER:-0.10}     # share of requests the load is arranged to have refused
RCPTS=${RCPTS:-1}
ONLY=${ONLY:-"null sluice sluice-redis postfwd2 policyd-rate-limit"}

for b in policy_load policy_null; do
  if [ ! -x "$BENCH_BIN/$b" ]; then
    echo "missing $BENCH_BIN/$b: build it (cmake --build \$BUILD --target policy_load policy_null) or set BENCH_BIN" >&2
    exit 1
  fi
done

R=$(mktemp -d /tmp/sluice-bench-policy.XXXXXX)
chmod 755 "$R"
RES="$R/results.txt"; : > "$RES"
PID=; PGID_FILE=; REDIS_PID=
cleanup() {
  stop_pid "$PID"
  stop_pid "$REDIS_PID"
  [ -n "$PGID_FILE" ] && stop_pgid_file "$PGID_FILE"
  if [ "${KEEP:-0}" = 1 ]; then echo "scratch kept in $R"; else rm -rf "$R"; fi
}
trap cleanup EXIT

# --- one start function per daemon; each sets PID (or PGID_FILE) and PORT ------------------------
start_null() {
  "$BENCH_BIN/policy_null" --port "$PORT" 2>"$R/null.log" &
  PID=$!
}

start_sluice() {
  local d="$R/sluice${1:+-$1}" store=""
  mkdir -p "$d/state"
  if [ "${1:-}" = redis ]; then
    # The Redis column: the same daemon and rule, counters in a redis-server of this run.
    local rport; rport=$(free_port)
    redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$d" >"$d/redis.log" 2>&1 &
    REDIS_PID=$!
    wait_port 127.0.0.1 "$rport" 20 || { echo "redis-server did not start" >&2; exit 1; }
    store="store: { backend: redis, redis: { address: 127.0.0.1:$rport, timeout: 50ms } }"
  fi
  cat > "$d/sluice.yaml" <<YAML
state_dir: $d/state
run_as_user: ""
log: { target: stderr, level: warning }
$store
policyd:
  listen: 127.0.0.1:$PORT
# Only the one rate-limit rule the peers have: no sender ownership, no suppression lookups.
sender_login: { enabled: false }
suppression: { enabled: false }
rate_limits:
  - name: per-user
    key: sasl_username
    count: messages
    windows:
      - { limit: $LIMIT, per: 1h }
    action: DEFER_IF_PERMIT 4.7.1 Rate limit {rule} reached for {key}
    mode: enforce
YAML
  "$SLUICE" --config "$d/sluice.yaml" 2>"$d/stderr.log" &
  PID=$!
}

start_sluice_redis() { start_sluice redis; }

# postfwd2 (see /work/shared/recipes/README.md): absolute rules path, private cache socket, never -L.
# Default mode (no --fast_limit_evaluation): the rate() rule counts the requests it matches, here
# RCPT only; postfwd2 itself turns the request cache off when the rules hold a rate limit.
# Its Net::Server::PreFork children serve one connection each until it closes: with the defaults
# (at most 100 children) connections beyond 100 wait unserved, so every K gets a fresh postfwd2
# with --min_servers max(10, K+4) --max_servers max(100, K+16), as a sysadmin would size it.
start_postfwd2() {
  local d="$R/postfwd2" k=$1 min=10 max=100
  [ $((k + 4)) -gt $min ] && min=$((k + 4))
  [ $((k + 16)) -gt $max ] && max=$((k + 16))
  rm -rf "$d"
  mkdir -p "$d"; chown nobody "$d"
  cat > "$d/rules.cf" <<CF
id=PER_USER; protocol_state==RCPT; action=rate(sasl_username/$LIMIT/3600/450 4.7.1 Rate limit per-user reached for \$\$sasl_username)
id=DEFAULT; action=DUNNO
CF
  PGID_FILE="$d/postfwd.pid"
  postfwd2 -f "$d/rules.cf" -i 127.0.0.1 -p "$PORT" -u nobody -g nogroup --pidfile "$PGID_FILE" \
    --perfmon --cache_socket "unix::$d/cache.sock" --min_servers $min --max_servers $max ${POSTFWD_ARGS:-}
}

# policyd-rate-limit 1.0.1 (Debian): foreground, drops to its own user, SQLite in the scratch
# directory (it commits after every request), counts accepted RCPTs per sasl_username.
start_policyd_rate_limit() {
  local d="$R/prl"
  mkdir -p "$d"
  cat > "$d/prl.yaml" <<YAML
debug: False
user: policyd-rate-limit
group: policyd-rate-limit
pidfile: $d/run/prl.pid
backend: 0
sqlite_config: { database: $d/db/db.sqlite3 }
SOCKET: ["127.0.0.1", $PORT]
limits: [[$LIMIT, 3600]]
limits_by_id: {}
limit_by_sasl: True
limit_by_sender: False
limit_by_ip: False
limited_networks: []
success_action: dunno
fail_action: defer_if_permit 4.7.1 Rate limit per-user reached
db_error_action: dunno
report: False
delay_to_close: 300
YAML
  policyd-rate-limit --file "$d/prl.yaml" 2>"$d/stderr.log" &
  PID=$!
}

# daemon_ticks: CPU ticks (1/100 s) used so far by the daemon under test (postfwd2: its process group).
daemon_ticks() {
  if [ -n "$PGID_FILE" ]; then pgrp_cpu_ticks "$(tr -dc 0-9 < "$PGID_FILE")"; else cpu_ticks "$PID"; fi
}

stop_daemon() {
  stop_pid "$PID"; PID=
  stop_pid "$REDIS_PID"; REDIS_PID=
  if [ -n "$PGID_FILE" ]; then stop_pgid_file "$PGID_FILE"; PGID_FILE=; fi
}

# start_daemon START_FUNCTION K: start it on a fresh port and wait until it accepts.
start_daemon() {
  PORT=$(free_port)
  $1 "$2"
  if ! wait_port 127.0.0.1 "$PORT" 60; then
    echo "$1 did not start; logs:" >&2; tail -n 5 "$R"/*/stderr.log >&2 2>/dev/null
    exit 1
  fi
}

# run_daemon NAME START_FUNCTION [per-k]: start it, run every K, stop it (per-k: a fresh daemon for
# each K). Every K gets its own light users (user-base); the heavy user (user1) is shared, so only
# the first K on a daemon pays for reaching its limit.
run_daemon() {
  local name=$1 start=$2 perk=${3:-} i=0 k line min c0 c1 limit=$LIMIT
  [ "$name" = null ] && limit=0   # no rule: no prime phase
  [ -z "$perk" ] && start_daemon "$start" 0
  for k in $KS; do
    [ -n "$perk" ] && start_daemon "$start" "$k"
    min=$((k * MIN_PER_CONN)); [ $min -lt $MIN_REQ ] && min=$MIN_REQ
    c0=$(daemon_ticks)
    line=$("$BENCH_BIN/policy_load" --port "$PORT" --conns "$k" --duration "$DUR" --warmup "$WARM" \
      --min-requests $min --max-duration "$MAXDUR" --users "$USERS" --user-base $((i * USERS)) \
      --heavy-users 1 --heavy-base 0 --limit "$limit" --defer-share "$DEFER" --rcpts "$RCPTS" \
      2>>"$R/load.stderr")
    c1=$(daemon_ticks)
    echo "daemon=$name $line daemon_cpu_ticks=$((c1 - c0))" | tee -a "$RES" >&2
    i=$((i + 1))
    [ -n "$perk" ] && stop_daemon
  done
  stop_daemon
}

echo "# policy bench: K=[$KS] ${DUR}s each after ${WARM}s warm-up, $USERS users, limit $LIMIT msgs/user/h," \
     "defer target $(awk "BEGIN{print $DEFER*100}")%, $RCPTS rcpt/txn, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for d in $ONLY; do
  case $d in
    null) run_daemon null start_null ;;
    sluice)
      if [ -x "$SLUICE" ]; then run_daemon sluice-policyd start_sluice
      else echo "daemon=sluice-policyd skipped: no binary at $SLUICE" >&2; fi ;;
    sluice-redis)
      if [ -x "$SLUICE" ] && command -v redis-server >/dev/null; then run_daemon sluice-policyd-redis start_sluice_redis
      else echo "daemon=sluice-policyd-redis skipped: no binary or no redis-server" >&2; fi ;;
    postfwd2) run_daemon postfwd2 start_postfwd2 per-k ;;
    policyd-rate-limit) run_daemon policyd-rate-limit start_policyd_rate_limit ;;
    *) echo "unknown daemon $d" >&2; exit 2 ;;
  esac
done
grep -h WARNING "$R/load.stderr" | sort | uniq -c >&2 || true

/usr/bin/python3 - "$RES" <<'PY'
import re, sys
rows = []
for line in open(sys.argv[1]):
    kv = dict(re.findall(r'(\S+?)=(\S+)', line))
    rows.append({"daemon": kv["daemon"], "K": int(kv["K"]), "rps": float(kv["req/s"]),
                 "p50": float(kv["p50"].rstrip("ms")), "p99": float(kv["p99"].rstrip("ms")),
                 "def": float(kv["deferred"].rstrip("%")), "rej": float(kv["rejected"].rstrip("%")),
                 "cpu": 1e4 * float(kv["daemon_cpu_ticks"]) / max(1, int(kv["all_replies"]))})
print(f"{'daemon':<20}{'K':>5}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'deferred':>10}{'rejected':>10}{'cpu us/req':>12}")
for r in rows:
    print(f"{r['daemon']:<20}{r['K']:>5}{r['rps']:>10.0f}{r['p50']:>9.3f}{r['p99']:>9.3f}{r['def']:>9.1f}%{r['rej']:>9.1f}%"
          f"{r['cpu']:>12.1f}")
by = {(r["daemon"], r["K"]): r for r in rows}
me = "sluice-policyd"
for K in sorted({r["K"] for r in rows}):
    s = by.get((me, K))
    if not s:
        continue
    parts = []
    for peer in ("postfwd2", "policyd-rate-limit"):
        p = by.get((peer, K))
        if p and p["rps"] > 0:
            parts.append(f"{s['rps'] / p['rps']:.1f}x {peer}")
    n = by.get(("null", K))
    if n and n["rps"] > 0:
        parts.append(f"{100 * s['rps'] / n['rps']:.0f}% of the ceiling (policy_null)")
    print(f"{me} at K={K}: " + ", ".join(parts))
for K in sorted({r["K"] for r in rows}):
    s, rd = by.get((me, K)), by.get(("sluice-policyd-redis", K))
    if s and rd and s["rps"] > 0:
        print(f"sluice-policyd with Redis at K={K}: {rd['rps']:.0f} req/s, {100 * rd['rps'] / s['rps']:.0f}% of SQLite mode"
              + (" (target at K=32: >= 50%)" if K == 32 else ""))
s, p = by.get((me, 32)), by.get(("postfwd2", 32))
if s and p and p["rps"] > 0:
    ok = s["rps"] >= 20 * p["rps"] and s["p99"] < 1.0
    print(f"target at K=32 (>=20x postfwd2 req/s, p99 < 1 ms): {s['rps'] / p['rps']:.1f}x, p99 {s['p99']:.3f} ms:",
          "PASS" if ok else "FAIL")
PY
