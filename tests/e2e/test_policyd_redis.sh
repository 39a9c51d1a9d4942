#!/bin/bash
# test_policyd_redis.sh BUILD_DIR - several sluice-policyd "hosts" sharing one real redis-server.
#
#   host A (failure_mode local, local_percent 50), host B (failure_mode open), host C (closed)
#   all with rule per-user: 6 messages per hour per SASL user, counters in Redis.
# Shows: a limit of N admits N across hosts, not N per host, even with concurrent clients;
# a suppression entry written to Redis rejects at RCPT on every host at once; Redis killed:
# each host applies its failure mode, logs it once, does not crash, and counting resumes when
# Redis is back; a Redis answering slowly (DEBUG SLEEP) hits the 50 ms timeout path.
source "$(dirname "$0")/lib.sh" "$@"
PC="/usr/bin/python3 $E2E_SRC/policy_client.py"
command -v redis-server >/dev/null || die "redis-server is not installed"
RPORT=$(free_port) || die "no port"
start_redis() {
  start_bg redis redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
    --enable-debug-command yes --dir "$T"
  REDIS_PID=$LAST_PID
  wait_port 127.0.0.1 "$RPORT" 10 "$REDIS_PID" || die "redis-server did not start"
}
rcli() { redis-cli -p "$RPORT" "$@"; }
start_redis

declare -A PORT PID ERR MPORT
for h in A B C; do
  case $h in A) fm="failure_mode: local, local_percent: 50";; B) fm="failure_mode: open";; C) fm="failure_mode: closed";; esac
  PORT[$h]=$(free_port) || die "no port"
  MPORT[$h]=$(free_port) || die "no port"
  mkdir -p "$T/$h"
  cat > "$T/$h.yaml" <<YAML
state_dir: $T/$h
run_as_user: ""
policyd: { listen: 127.0.0.1:${PORT[$h]}, metrics_listen: 127.0.0.1:${MPORT[$h]} }
store: { backend: redis, redis: { address: 127.0.0.1:$RPORT, timeout: 50ms, reconnect_interval: 200ms } }
identities:
  - { name: apps, sasl_usernames: [app1, app2, app3, app4], senders: [example.com] }
rate_limits:
  - { name: per-user, key: sasl_username, windows: [ { limit: 6, per: 1h } ], $fm }
YAML
  start_bg "policyd-$h" "$BUILD/policy/sluice-policyd" --config "$T/$h.yaml"
  PID[$h]=$LAST_PID; ERR[$h]=$T/policyd-$h.err
  wait_port 127.0.0.1 "${PORT[$h]}" 15 "${PID[$h]}" || { show_tail "${ERR[$h]}"; die "policyd $h did not start"; }
done
msg() { $PC "${PORT[$1]}" message "$2" "$2@example.com" "${4:-rcpt@dest.example}" "$3"; }
admitted() { grep -c '/ DUNNO' "$1" || true; }
# to_file CMD...: runs CMD, keeps its output in a file of $T and prints the file's name (the
# harness's expect_match reads a file, possibly more than once).
OUTS=0
to_file() { local f=$T/out.$((++OUTS)); "$@" > "$f" 2>&1; echo "$f"; }

note "1. one limit for the fleet: 14 messages of app1, 7 at each of A and B, concurrently"
clients=()
for i in $(seq 7); do
  msg A app1 "a$i" > "$T/c-a$i" & clients+=($!)
  msg B app1 "b$i" > "$T/c-b$i" & clients+=($!)
done
wait "${clients[@]}"   # only the clients: the daemons run in the background too
cat "$T"/c-* > "$T/concurrent.out"
expect_eq "exactly 6 admitted across both hosts (limit 6, not 12)" "6" "$(admitted "$T/concurrent.out")"
expect_eq "8 deferred" "8" "$(grep -c '^DEFER_IF_PERMIT 4.7.1 Rate limit per-user' "$T/concurrent.out")"
expect_match "the bucket is in Redis" '^[0-9]{16}$' "$(to_file rcli hget sluice:t:per-user:app1 0)"

note "2. a suppression added through host A (sluicectl) rejects on every host within a second"
sluicectl_run sup-add.out --config "$T/A.yaml" suppress add bounced@dest.example --reason hard-bounce
expect_eq "sluicectl suppress add (Redis mode) exits 0" "0" "$SLUICECTL_RC"
expect_match "the entry is in Redis" '^hard-bounce' "$(to_file rcli hget sluice:s:bounced@dest.example '*')"
sleep 1
for h in A B; do
  expect_match "host $h: suppressed recipient -> 550 5.1.1" '^550 5\.1\.1 Recipient address <bounced@dest\.example> is suppressed \(hard-bounce\)' \
    "$(to_file msg "$h" app2 "sup-$h" bounced@dest.example)"
done

note "3. Redis killed: each host applies its failure mode"
stop_pid "$REDIS_PID"
sleep 0.3
for i in 1 2 3 4 5; do msg A app3 "la$i"; done > "$T/local.out"
expect_eq "A (local, 50%): 3 of 5 admitted from its own budget" "3" "$(admitted "$T/local.out")"
for i in 1 2 3 4 5 6 7 8; do msg B app3 "ob$i"; done > "$T/open.out"
expect_eq "B (open): all 8 admitted" "8" "$(admitted "$T/open.out")"
expect_match "C (closed): store_error_action" '^DEFER_IF_PERMIT 4\.3\.0 Temporary policy service failure' "$(to_file msg C app3 "cc1")"
for h in A B C; do
  expect_eq "host $h logs the outage once" "1" "$(grep -c 'Redis connection lost' "${ERR[$h]}")"
  kill -0 "${PID[$h]}" 2>/dev/null && pass "host $h still running" || fail "host $h died"
done

note "4. Redis back: counting resumes in Redis"
start_redis
sleep 1
expect_match "A admits app4 again through Redis" '^DUNNO / DUNNO' "$(to_file msg A app4 "back1")"
expect_match "app4's bucket is in the restarted Redis" '^[0-9]{16}$' "$(to_file rcli hget sluice:t:per-user:app4 0)"
expect_match "A logs the recovery" 'reachable again' "${ERR[A]}" 3
sluicectl_run limits.out --config "$T/A.yaml" limits show app4
expect_match "sluicectl limits show reads the shared counter from Redis" '^per-user +app4 +0 +1 ' "$T/limits.out"
expect_match "metrics count the outage" '^sluice_policyd_store_failures_total [1-9]' \
  "$(to_file /usr/bin/python3 -c 'import sys,urllib.request;print(urllib.request.urlopen(sys.argv[1]).read().decode())' "http://127.0.0.1:${MPORT[A]}/metrics")"

note "5. a slow Redis (DEBUG SLEEP 1): the 50 ms timeout path"
(rcli debug sleep 1 > /dev/null &)
sleep 0.2
start_ns=$(date +%s%N)
out=$(msg A app4 "slow1")
ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
expect_match "A answers from its local budget while Redis sleeps" '^DUNNO / DUNNO' "$(to_file echo "$out")"
[ "$ms" -lt 900 ] && pass "answered in ${ms} ms, not after Redis woke up" || fail "answer took ${ms} ms"
expect_match "timeout logged" 'did not answer within 50 ms \(store\.redis\.timeout\)' "${ERR[A]}" 3
sleep 1.2
expect_match "after the sleep, Redis answers again" '^DUNNO / DUNNO' "$(to_file msg A app4 "slow2")"
for h in A B C; do
  sluice_rc=0; stop_pid "${PID[$h]}" || sluice_rc=$?
  expect_eq "host $h exits 0 on SIGTERM" "0" "$sluice_rc"
done
finish
