#!/bin/bash
# test_relayd_policy.sh BUILD_DIR - direct submissions to sluice-relayd get sluice-policyd's checks
# (relayd.policy_service, through lib/policy_client, reserve at RCPT / commit at end of message):
# a rate limit of 2 messages an hour for app1 (the 3rd gets 450 4.7.1 at RCPT, and policyd counts
# exactly 2), a suppressed recipient (550 5.1.1 at RCPT), and policyd down (450 4.3.0, never 250).
source "$(dirname "$0")/lib.sh" "$@"

mkdir -p "$T/state" "$T/certs"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=relay.test.example -keyout "$T/certs/k.pem" -out "$T/certs/c.pem" 2>/dev/null
chmod 600 "$T/certs/k.pem"
RP=$(free_port) SP=$(free_port) PP=$(free_port)
cat > "$T/sluice.yaml" <<YAML
state_dir: $T/state
run_as_user: ""
policyd:
  listen: 127.0.0.1:$PP
  metrics_listen: ""
relayd:
  listen: 127.0.0.1:$RP
  submission_listen: 127.0.0.1:$SP
  tls_cert_file: $T/certs/c.pem
  tls_key_file: $T/certs/k.pem
  policy_service: 127.0.0.1:$PP
  metrics_listen: ""
identities:
  - { name: app1, sasl_usernames: [app1], senders: [example.com] }
rate_limits:
  - name: per-user
    key: sasl_username
    count: messages
    windows: [ { limit: 2, per: 1h } ]
    action: DEFER_IF_PERMIT 4.7.1 Rate limit {rule} reached for {key}
YAML
sluice_policyd_start "$T/sluice.yaml" || die "sluice-policyd did not start"
"$BUILD/sluicectl/sluicectl" --config "$T/sluice.yaml" suppress add blocked@dest.example --reason hard-bounce > "$T/supp.out" 2>&1 || die "suppress add"
"$BUILD/sluicectl/sluicectl" --config "$T/sluice.yaml" user add app1 > "$T/user.out" 2>&1 || die "user add"
KEY=$(grep -oE 'sk_[a-z2-7]+' "$T/user.out" | head -1)
sluice_relayd_start "$T/sluice.yaml" || die "sluice-relayd did not start"
sub() { local out=$1; shift; swaks_run "$out" --server "127.0.0.1:$SP" --tls --auth PLAIN --auth-user app1 --auth-password "$KEY" --from alice@example.com "$@"; }
sub m1 --to a@dest.example
sub m2 --to b@dest.example
sub m3 --to c@dest.example
expect_match "1st submission queued" '^<~  250 2\.0\.0 Ok: queued as' "$T/m1"
expect_match "2nd submission queued" '^<~  250 2\.0\.0 Ok: queued as' "$T/m2"
expect_match "3rd submission -> 450 4.7.1 from policyd at RCPT" '^<~\* 450 4\.7\.1 Rate limit per-user reached for app1' "$T/m3"
"$BUILD/sluicectl/sluicectl" --config "$T/sluice.yaml" limits show > "$T/limits.out" 2>&1
expect_match "policyd counted exactly 2 for app1 (reserved at RCPT, committed once)" 'per-user.*app1.* 2( |/)' "$T/limits.out"
"$BUILD/sluicectl/sluicectl" --config "$T/sluice.yaml" limits reset app1 > /dev/null 2>&1
sub s1 --to blocked@dest.example
expect_match "suppressed recipient -> 550 5.1.1 at RCPT" '^<~\* 550 5\.1\.1 .*suppressed' "$T/s1"
sluice_policyd_stop
sub d1 --to d@dest.example
expect_match "policyd down -> 450 4.3.0 (relayd.policy_default_action)" '^<~\* 450 4\.3\.0 ' "$T/d1"
expect_no_match "policyd down -> never queued" 'queued as' "$T/d1"

# A policyd that accepts and never answers holds up the submission asking it, not the other
# sessions: the question runs on relayd's policy thread pool, off the event loop.
start_bg silent /usr/bin/python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $PP)); s.listen(16); conns = []
while True:
    c, _ = s.accept(); conns.append(c)
"
wait_port 127.0.0.1 "$PP" 10 "$LAST_PID" || die "silent policyd did not start"
( sub h1 --to h@dest.example ) &
HUNG=$!
sleep 1
t0=$(date +%s%N)
swaks_run r1 --server "127.0.0.1:$RP" --from alice@example.com --to r@dest.example
t1=$(date +%s%N)
expect_match "while a submission waits for a silent policyd, the relay listener still queues mail" '^<[-~]+ +250 2\.0\.0 Ok: queued as' "$T/r1"
ms=$(( (t1 - t0) / 1000000 ))
[ "$ms" -lt 5000 ] && pass "... at once (${ms} ms; the waiting submission's policy timeout is 10 s)" || fail "the relay session took ${ms} ms: the event loop was blocked"
wait "$HUNG"
expect_match "the submission itself gets the default action once policyd times out (450 4.3.0)" '^<~\* 450 4\.3\.0 ' "$T/h1"
finish
