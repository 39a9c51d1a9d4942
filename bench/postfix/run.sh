#!/bin/bash
# bench/postfix/run.sh [--quick] - end to end: smtp-source -> Postfix -> smtp-sink, with no policy
# service, with sluice-policyd and with postfwd2, in one run, on one isolated Postfix instance.
#
#   smtp-source -s 20 -d -m N -l 4096  ->  Postfix (postfix -c DIR, queue in the scratch dir)
#     -> relayhost smtp-sink -c (counts messages; "mesg=N")
# The policy configurations put the same check_policy_service in smtpd_recipient_restrictions
# and smtpd_end_of_data_restrictions (RCPT and END-OF-MESSAGE, as sluice-policyd needs for its
# reservations); postfwd2 gets the same two calls. Configurations are switched with postconf +
# postfix reload and interleaved run by run, in rotating order, so that drift of the shared
# machine hits all three alike. Rate = N / (sink saw message N - source started).
#
# The rule: smtp-source does not authenticate, so there is no sasl_username; both daemons get a
# rate limit keyed by the envelope sender with a HIGH limit (100,000,000 messages per hour):
# every message is counted, the limit never fires, so no message is refused.
#
# Environment: BUILD (default /work/main/build) holds policy/sluice-policyd; N, RUNS, SESS, BODY
# override the load; KEEP=1 keeps the scratch directory. Needs root. Loopback only.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../common.sh"

QUICK=0
[ "${1:-}" = --quick ] && QUICK=1
BUILD=${BUILD:-/work/main/build}
SLUICE=${SLUICE:-$BUILD/policy/sluice-policyd}
if [ $QUICK = 1 ]; then N=${N:-2000}; RUNS=${RUNS:-1}; else N=${N:-20000}; RUNS=${RUNS:-3}; fi
SESS=${SESS:-20}; BODY=${BODY:-4096}; WARMUP_MSGS=${WARMUP_MSGS:-200}
HIGH=100000000
CONFIGS="none"
[ -x "$SLUICE" ] && CONFIGS="$CONFIGS sluice-policyd" || echo "sluice-policyd skipped: no binary at $SLUICE" >&2
CONFIGS="$CONFIGS postfwd2"

R=$(mktemp -d /tmp/sluice-bench-postfix.XXXXXX)
chmod 755 "$R"
SMTPD=$(free_port); SINKP=$(free_port); SLP=$(free_port); PFP=$(free_port)
SLUICE_PID=; SINK=
cleanup() {
  [ -f "$R/pf/etc/main.cf" ] && postfix -c "$R/pf/etc" stop >/dev/null 2>&1 || true
  stop_pid "$SINK"
  stop_pid "$SLUICE_PID"
  stop_pgid_file "$R/pfw/postfwd.pid"
  if [ "${KEEP:-0}" = 1 ]; then echo "scratch kept in $R" >&2; else rm -rf "$R"; fi
}
trap cleanup EXIT

# --- policy daemons: both run for the whole benchmark --------------------------------------------
if [[ $CONFIGS == *sluice* ]]; then
  mkdir -p "$R/sluice/state"
  cat > "$R/sluice/sluice.yaml" <<YAML
state_dir: $R/sluice/state
run_as_user: ""
log: { target: stderr, level: warning }
policyd:
  listen: 127.0.0.1:$SLP
sender_login: { enabled: false }
suppression: { enabled: false }
rate_limits:
  - name: per-sender
    key: sender
    count: messages
    windows:
      - { limit: $HIGH, per: 1h }
    action: DEFER_IF_PERMIT 4.7.1 Rate limit {rule} reached for {key}
    mode: enforce
YAML
  "$SLUICE" --config "$R/sluice/sluice.yaml" 2>"$R/sluice/stderr.log" &
  SLUICE_PID=$!
  wait_port 127.0.0.1 "$SLP"
fi
mkdir -p "$R/pfw"; chown nobody "$R/pfw"
cat > "$R/pfw/rules.cf" <<CF
id=PER_SENDER; protocol_state==RCPT; action=rate(sender/$HIGH/3600/450 4.7.1 Rate limit per-sender reached for \$\$sender)
id=DEFAULT; action=DUNNO
CF
postfwd2 -f "$R/pfw/rules.cf" -i 127.0.0.1 -p "$PFP" -u nobody -g nogroup --pidfile "$R/pfw/postfwd.pid" \
  --perfmon --cache_socket "unix::$R/pfw/cache.sock"
wait_port 127.0.0.1 "$PFP"

# --- Postfix -------------------------------------------------------------------------------------
"$HERE/pf-instance.sh" "$R/pf" "$SMTPD" "$SINKP" >/dev/null
wait_port 127.0.0.1 "$SMTPD"

use_config() {  # use_config none|sluice-policyd|postfwd2
  local p
  case $1 in
    none) postconf -c "$R/pf/etc" -X smtpd_recipient_restrictions smtpd_end_of_data_restrictions ;;
    sluice-policyd|postfwd2)
      [ "$1" = postfwd2 ] && p=$PFP || p=$SLP
      postconf -c "$R/pf/etc" -e \
        "smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:$p, permit_mynetworks, reject" \
        "smtpd_end_of_data_restrictions = check_policy_service inet:127.0.0.1:$p" ;;
  esac
  postfix -c "$R/pf/etc" reload >/dev/null 2>&1
  sleep 1
}

queue_empty() {
  local i
  for ((i = 0; i < 1200; i++)); do
    postqueue -c "$R/pf/etc" -p 2>/dev/null | grep -q "Mail queue is empty" && return 0
    sleep 0.1
  done
  echo "queue did not drain" >&2; return 1
}
sink_count() { tail -c 200 "$R/sink.count" 2>/dev/null | tr '\r' '\n' | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2; }
wait_sink() {  # wait_sink COUNT
  local i c
  for ((i = 0; i < 36000; i++)); do
    c=$(sink_count); [ -n "$c" ] && [ "$c" -ge "$1" ] && return 0
    sleep 0.02
  done
  echo "the sink never saw $1 messages (saw ${c:-0})" >&2; return 1
}
daemon_ticks() {  # CPU ticks of the policy daemon of a configuration
  case $1 in
    sluice-policyd) cpu_ticks "$SLUICE_PID" ;;
    postfwd2) pgrp_cpu_ticks "$(tr -dc 0-9 < "$R/pfw/postfwd.pid")" ;;
    *) echo 0 ;;
  esac
}
source_msgs() {  # source_msgs COUNT
  smtp-source -s "$SESS" -d -m "$1" -l "$BODY" -f bench@example.com -t rcpt@dest.example -S bench \
    "127.0.0.1:$SMTPD"
}

# one_run CONFIG RUN: warm-up messages, then N timed ones; appends one line to results.
one_run() {
  local cfg=$1 run=$2 t0 t1 t2 c0 c1 conns rej
  use_config "$cfg"
  smtp-sink -u postfix -c "127.0.0.1:$SINKP" 1024 > "$R/sink.count" &
  SINK=$!
  wait_port 127.0.0.1 "$SINKP"
  source_msgs "$WARMUP_MSGS"; wait_sink "$WARMUP_MSGS"; queue_empty
  rej=$(grep -c 'reject:' "$R/pf/maillog" || true)
  c0=$(daemon_ticks "$cfg"); t0=$(date +%s.%N)
  source_msgs "$N"
  t1=$(date +%s.%N)
  wait_sink $((WARMUP_MSGS + N))
  t2=$(date +%s.%N); c1=$(daemon_ticks "$cfg")
  conns=$(ss -Htn state established "( dport = :$SLP or dport = :$PFP )" | wc -l)
  rej=$(( $(grep -c 'reject:' "$R/pf/maillog" || true) - rej ))
  queue_empty; stop_pid "$SINK"; SINK=
  /usr/bin/python3 - "$cfg" "$run" "$N" "$t0" "$t1" "$t2" "$c0" "$c1" "$conns" "$rej" <<'PY' | tee -a "$R/results.txt" >&2
import sys
cfg, run = sys.argv[1:3]
n, t0, t1, t2, c0, c1 = map(float, sys.argv[3:9]); conns, rej = sys.argv[9:11]
print(f"config={cfg} run={run} N={int(n)} end_to_end={n / (t2 - t0):.0f} ingest={n / (t1 - t0):.0f} "
      f"seconds={t2 - t0:.2f} policy_cpu_ms/msg={(c1 - c0) * 10 / n:.3f} policy_conns={conns} rejects={rej}")
PY
}

echo "# postfix bench: N=$N x $RUNS runs, $SESS sessions, ${BODY}-byte body, configs: $CONFIGS," \
     "queue on $(findmnt -no FSTYPE -T "$R"), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
# The order rotates each run (none sluice postfwd2, sluice postfwd2 none, ...): no configuration
# always goes first after a quiet spell.
read -r -a order <<< "$CONFIGS"
for run in $(seq "$RUNS"); do
  for ((j = 0; j < ${#order[@]}; j++)); do
    one_run "${order[$(( (j + run - 1) % ${#order[@]} ))]}" "$run"
  done
done
sent=$(grep -c 'status=sent' "$R/pf/maillog" || true)
echo "# postfix delivered $sent messages (status=sent); expected $(( (N + WARMUP_MSGS) * RUNS * $(wc -w <<< "$CONFIGS") ))" >&2
grep -E 'warning|fatal|error' "$R/pf/maillog" | grep -v overriding | head -5 >&2 || true

/usr/bin/python3 - "$R/results.txt" <<'PY'
import re, statistics as st, sys
rows = [dict(re.findall(r'(\S+?)=(\S+)', l)) for l in open(sys.argv[1])]
med = {}
print(f"{'config':<16}{'msgs/s':>8}{'ingest/s':>10}{'policy CPU ms/msg':>19}  runs")
for cfg in dict.fromkeys(r["config"] for r in rows):
    rs = [r for r in rows if r["config"] == cfg]
    e2e = [float(r["end_to_end"]) for r in rs]
    med[cfg] = st.median(e2e)
    print(f"{cfg:<16}{med[cfg]:>8.0f}{st.median(float(r['ingest']) for r in rs):>10.0f}"
          f"{st.median(float(r['policy_cpu_ms/msg']) for r in rs):>19.3f}  {[int(x) for x in e2e]}")
base = med.get("none")
for cfg in ("sluice-policyd", "postfwd2"):
    if cfg in med and base:
        print(f"{cfg}: {100 * med[cfg] / base:.1f}% of Postfix alone")
if "sluice-policyd" in med and "postfwd2" in med:
    print(f"sluice-policyd / postfwd2: {med['sluice-policyd'] / med['postfwd2']:.2f}x")
    ok = med["sluice-policyd"] >= 0.95 * base
    print(f"target (Postfix with sluice-policyd >= 95% of Postfix alone): {'PASS' if ok else 'FAIL'}")
PY
