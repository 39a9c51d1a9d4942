#!/bin/bash
# test_policyd_bad_input.sh BUILD_DIR - the real sluice-policyd under bad input and faults:
# garbage, an oversize request, NUL bytes, a request without its blank line (request_timeout),
# clients vanishing mid-request, 10,000 connections opened and dropped, 2,000 idle connections,
# and a store that becomes unreadable (its meta table renamed away by another process).
# Each bad client gets a closed connection and one clear log line; the daemon keeps answering
# everyone else; the store failure answers store_error_action, then recovers by itself.
source "$(dirname "$0")/lib.sh" "$@"
PC="/usr/bin/python3 $E2E_SRC/policy_client.py"
ulimit -n 8192 2>/dev/null || true

[ -x "$BUILD/policy/sluice-policyd" ] || die "$BUILD/policy/sluice-policyd is not built"
PPORT=$(free_port) || die "no port"
mkdir -p "$T/state"
cat > "$T/policyd.yaml" <<YAML
state_dir: $T/state
run_as_user: ""
policyd: { listen: 127.0.0.1:$PPORT, max_request_size: 64k, request_timeout: 2s }
identities:
  - { name: app1, sasl_usernames: [app1], senders: [example.com] }
rate_limits:
  - { name: per-user, key: sasl_username, windows: [ { limit: 3, per: 1h } ] }
YAML
sluice_policyd_start "$T/policyd.yaml" || die "sluice-policyd did not start"
ok_request() { $PC "$PPORT" ask RCPT app1 a@example.com "r$1@dest.example" "inst-$1"; }

expect_eq "well-formed request answered" "DUNNO" "$(ok_request 0)"
for kind in garbage oversize nul; do
  expect_eq "$kind: connection closed without an answer" "closed" "$($PC "$PPORT" $kind)"
done
expect_match "garbage: log line" 'policy client 127\.0\.0\.1:[0-9]+: bad request: malformed line' "$POLICYD_ERR" 3
expect_match "oversize: log line" 'request exceeds 65536 bytes \(policyd\.max_request_size\)' "$POLICYD_ERR" 3
expect_match "nul: log line" 'bad request: NUL byte in request' "$POLICYD_ERR" 3
expect_eq "noblank: cut off after request_timeout" "closed" "$($PC "$PPORT" noblank)"
expect_match "noblank: log line" 'request not completed within 2000 ms' "$POLICYD_ERR" 3
$PC "$PPORT" halfway >/dev/null
expect_match "halfway: log line" 'disconnected in the middle of a request' "$POLICYD_ERR" 3
expect_eq "still serving after the bad clients" "DUNNO" "$(ok_request 1)"

expect_eq "10,000 connections opened and dropped" "done 10000" "$($PC "$PPORT" flood 10000)"
expect_eq "still serving after the flood" "DUNNO" "$(ok_request 2)"
expect_match "flood: the mid-request drops are logged" 'disconnected in the middle of a request' "$POLICYD_ERR"
rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$POLICYD_PID/status")
expect_eq "2,000 idle connections: others are served meanwhile" "DUNNO" "$($PC "$PPORT" idle 2000)"
kill -0 "$POLICYD_PID" 2>/dev/null && pass "policyd alive after all of it" || fail "policyd died"
note "policyd RSS ${rss_before} kB after the flood"

# A store failure: another process breaks the database under policyd.
sqlite3 "$T/state/sluice.db" 'ALTER TABLE meta RENAME TO meta_moved;'
sleep 1
ok_request 3 > "$T/store-error.out"
expect_match "store unreadable -> store_error_action (DEFER_IF_PERMIT)" '^DEFER_IF_PERMIT 4\.3\.0' "$T/store-error.out"
expect_match "store failure logged once" 'store unreadable, answering' "$POLICYD_ERR"
sqlite3 "$T/state/sluice.db" 'ALTER TABLE meta_moved RENAME TO meta;'
sleep 1
expect_eq "store back -> normal answers" "DUNNO" "$(ok_request 4)"
expect_match "recovery logged" 'store readable again' "$POLICYD_ERR" 3
note "kill -9 loses at most the last second of counts (checkpoints every second)"
for i in 1 2 3; do $PC "$PPORT" message app1 a@example.com "k$i@dest.example" "kill-$i"; done > "$T/kill-before.out"
expect_eq "3 messages of app1 admitted and committed" "3" "$(grep -c '^DUNNO / DUNNO' "$T/kill-before.out")"
sleep 1.5
sluice_policyd_stop KILL
sluice_policyd_start "$T/policyd.yaml" || die "sluice-policyd did not restart after kill -9"
expect_match "after kill -9 and a restart, app1's 4th message is deferred" '^DEFER_IF_PERMIT 4\.7\.1 Rate limit per-user' \
  "$(f=$T/kill-after.out; $PC "$PPORT" message app1 a@example.com k4@dest.example kill-4 > "$f"; echo "$f")"
sluice_policyd_stop; rc=$?
expect_eq "policyd exits 0 on SIGTERM" "0" "$rc"
finish
