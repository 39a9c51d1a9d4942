#!/bin/bash
# test_policyd_postfix.sh BUILD_DIR - sluice-policyd end to end behind a real Postfix.
#
#   swaks --tls --auth (127.0.0.1, or 127.0.0.2 unauthenticated)
#     -> Postfix 127.0.0.1:$PF_PORT  check_policy_service {inet:127.0.0.1:$POLICYD_PORT} at RCPT and
#        END-OF-MESSAGE, default_action=DEFER_IF_PERMIT
#     -> relayhost [127.0.0.1]:$SINK_PORT (smtp-sink)
#   sluicectl --config CFG suppress add / limits show / limits reset  (STATE_DIR/sluice.db, policyd.sock)
#
# Cases (run in this order, so that each starts from a known counter state):
#   (a) app1 as example.com -> 250, delivered     (d) app1 as other.example -> 553 5.7.1
#   (e) suppressed rcpt -> 550 5.1.1 at RCPT     (j) unauthenticated from 127.0.0.2 as example.com -> 553 5.7.1
#   (k) a second RCPT refused (suppressed): policyd's line starts with the queue id Postfix logs
#   (b) app1's 4th message in the hour -> 450 4.7.1 "Rate limit per-user", and the maillog reject line
#   (c) app2 aborts after RCPT 4 times, then still sends 3 (reservations released)
#   (f) monitor rule "watch" only logs; app2's 2nd message was accepted
#   (g) counters survive a policyd restart; sluicectl limits show/reset
#   (i) SIGHUP with a broken config: keeps running on the old rules, logs FILE:LINE
#   (h) policyd down -> Postfix answers 4xx, never 250
# app3 (its own identity) is used for (e) so that app1's and app2's counters stay exact.
source "$(dirname "$0")/lib.sh" "$@"

declare -A PW=([app1]=pw-one [app2]=pw-two [app3]=pw-three)
CFG=$T/policyd.yaml
# send OUT USER FROM TO [SWAKS ARGS...]: an authenticated submission over STARTTLS, Subject: e2e OUT.
send() {
  local out=$1 user=$2 from=$3 to=$4; shift 4
  swaks_run "$out" --tls --auth PLAIN --auth-user "$user" --auth-password "${PW[$user]}" \
    --from "$from" --to "$to" --header "Subject: e2e $out" "$@"
  echo "    swaks $out ($user, $from -> $to): $(swaks_reply "$T/$out")"
}
QUEUED='^<~  250 2\.0\.0 Ok: queued as'

# --- set-up ------------------------------------------------------------------------------------------
[ -x "$BUILD/policy/sluice-policyd" ] || die "$BUILD/policy/sluice-policyd is not built"
smtp_sink_start
PPORT=$(free_port) || die "no port"
mkdir -p "$T/state"
cat > "$CFG" <<YAML
state_dir: $T/state
run_as_user: ""
log: { target: stderr, level: info }
policyd: { listen: 127.0.0.1:$PPORT }
identities:
  - name: app1
    sasl_usernames: [app1]
    senders: [example.com]
  - name: app2
    sasl_usernames: [app2]
    senders: [other.example]
  - name: app3
    sasl_usernames: [app3]
    senders: [third.example]
rate_limits:
  - name: per-user
    key: sasl_username
    count: messages
    windows: [ { limit: 3, per: 1h } ]
    action: DEFER_IF_PERMIT 4.7.1 Rate limit {rule} reached for {key}
    mode: enforce
  - name: watch
    key: sasl_username
    count: messages
    windows: [ { limit: 1, per: 1h } ]
    action: REJECT
    mode: monitor
YAML
for u in app1 app2 app3; do pf_sasl_user pf "$u" "${PW[$u]}"; done
sluice_policyd_start "$CFG" || die "sluice-policyd did not start"
note "policyd pid $POLICYD_PID on 127.0.0.1:$POLICYD_PORT"
POLICY="check_policy_service { inet:127.0.0.1:$POLICYD_PORT, timeout=10s, default_action=DEFER_IF_PERMIT }"
pf_instance pf "$(free_port)" "$SINK_PORT" "
mynetworks = 127.0.0.1/32
relay_domains = local.example
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions = $POLICY, permit_sasl_authenticated, reject
smtpd_end_of_data_restrictions = $POLICY
"
LOG=$(pf_log)
note "Postfix $(postconf -h mail_version) on 127.0.0.1:$PF_PORT, sink 127.0.0.1:$SINK_PORT, temp dir $T"
sluicectl_run suppress-add.out --config "$CFG" suppress add bob@dest.example --reason hard-bounce
SUPPRESSED_AT=$SECONDS
expect_eq "sluicectl suppress add bob@dest.example exits 0" "$SLUICECTL_RC" 0 "$T/suppress-add.out"
expect_match "policyd logs as sluice-policyd[PID]" 'sluice-policyd\[[0-9]+\]: ' "$POLICYD_ERR" 3

# --- (a) authenticated, own domain: queued and delivered ---------------------------------------------
send a1 app1 alice@example.com rcpt-a@dest.example
expect_match "(a) app1 as alice@example.com -> 250 queued" "$QUEUED" "$T/a1"
pf_wait_queue_empty >/dev/null; sink_wait 1 5
f=$(sink_find '^Subject: e2e a1$')
expect_match "(a) delivered to the sink" '^X-Rcpt-Args: <rcpt-a@dest\.example>' "${f:-$SINK_DIR/none}"
expect_match "(a) maillog: delivered" 'to=<rcpt-a@dest\.example>, relay=127\.0\.0\.1.*status=sent' "$LOG" 3

# --- (d) authenticated, someone else's domain: 553 5.7.1 ---------------------------------------------
send d1 app1 someone@other.example rcpt-d@dest.example
expect_match "(d) app1 as someone@other.example -> 553 5.7.1" '^<~\* 553 5\.7\.1 ' "$T/d1"
expect_match "(d) maillog: reject line" 'reject: RCPT from .*: 553 5\.7\.1 .*from=<someone@other\.example>' "$LOG" 3

# --- (e) suppressed recipient: 550 5.1.1 at RCPT, no DATA ---------------------------------------------
while (( SECONDS - SUPPRESSED_AT < 2 )); do sleep 0.2; done      # policyd must see it within 1 s
send e1 app3 ops@third.example bob@dest.example
expect_match "(e) suppressed bob@dest.example -> 550 5.1.1 at RCPT" '^<~\* 550 5\.1\.1 .*bob@dest\.example' "$T/e1"
expect_no_match "(e) swaks never reached DATA" '^ [-~]> DATA' "$T/e1"
expect_match "(e) maillog: reject line" 'reject: RCPT from .*: 550 5\.1\.1 .*to=<bob@dest\.example>' "$LOG" 3
# The first RCPT of a transaction comes before Postfix's queue file (smtpd_delay_open_until_valid_rcpt
# = yes): no queue_id in the request, so policyd's line starts with "reject:".
expect_match "(e) policyd: a first-RCPT refusal has no queue id yet" \
  'sluice-policyd\[[0-9]+\]: reject: RCPT from .*to=<bob@dest\.example> rule=suppression' "$POLICYD_ERR" 3

# --- (k) the queue id: a second RCPT refused, the message sent to the first -------------------------
send k1 app3 ops@third.example rcpt-k1@dest.example,bob@dest.example
expect_match "(k) rcpt-k1 accepted, bob refused, message queued" "$QUEUED" "$T/k1"
QID=$(sed -n 's/^<~  250 2\.0\.0 Ok: queued as \([0-9A-Za-z]*\).*/\1/p' "$T/k1" | head -1)
note "(k) Postfix queue id ${QID:-none}"
[ -n "$QID" ] || fail "(k) no queue id in the 250 reply"
expect_match "(k) maillog: Postfix's reject line starts with $QID" "/smtpd\[[0-9]+\]: $QID: reject: RCPT from .*: 550 5\.1\.1 .*to=<bob@dest\.example>" "$LOG" 3
expect_match "(k) policyd's decision line starts with the same $QID" \
  "sluice-policyd\[[0-9]+\]: $QID: reject: RCPT from .*to=<bob@dest\.example> rule=suppression action=550 5\.1\.1" "$POLICYD_ERR" 3
pf_wait_queue_empty >/dev/null
expect_match "(k) maillog: $QID delivered to rcpt-k1" "$QID: to=<rcpt-k1@dest\.example>, relay=127\.0\.0\.1.*status=sent" "$LOG" 3

# --- (j) unauthenticated client (127.0.0.2, not in mynetworks) using a protected domain --------------
swaks_run j1 --local-interface 127.0.0.2 --from x@example.com --to postmaster@local.example
echo "    swaks j1 (no AUTH, from 127.0.0.2, x@example.com): $(swaks_reply "$T/j1")"
expect_match "(j) unauthenticated x@example.com -> 553 5.7.1 requires authentication" \
  '^<\*\* 553 5\.7\.1 .*requires authentication' "$T/j1"
expect_match "(j) maillog: reject from 127.0.0.2" 'reject: RCPT from [^ ]*\[127\.0\.0\.2\]: 553 5\.7\.1 .*from=<x@example\.com>' "$LOG" 3
swaks_run j2 --local-interface 127.0.0.2 --from x@unprotected.example --to postmaster@local.example
echo "    swaks j2 (control, x@unprotected.example): $(swaks_reply "$T/j2")"
expect_no_match "(j) control: an unprotected sender domain is not refused with 553" '^<\*\* 553 ' "$T/j2"

# --- (b) the 4th message of app1 within the hour -------------------------------------------------------
send b2 app1 alice@example.com rcpt-b2@dest.example
send b3 app1 alice@example.com rcpt-b3@dest.example
expect_match "(b) app1 message 2 -> 250" "$QUEUED" "$T/b2"
expect_match "(b) app1 message 3 -> 250" "$QUEUED" "$T/b3"
send b4 app1 alice@example.com rcpt-b4@dest.example
expect_match "(b) app1 message 4 -> 450 4.7.1 Rate limit per-user" '^<~\* 450 4\.7\.1 .*Rate limit per-user' "$T/b4"
expect_match "(b) maillog: reject line" \
  'reject: (RCPT|END-OF-MESSAGE) from .*: 450 4\.7\.1 .*Rate limit per-user.*to=<rcpt-b4@dest\.example>' "$LOG" 3

# --- (c) reservations released when the client aborts after RCPT -------------------------------------
for i in 1 2 3 4; do
  send "c-abort$i" app2 ann@other.example "rcpt-c$i@dest.example" --quit-after RCPT
  expect_match "(c) app2 abort $i: RCPT accepted" '^<~  250 2\.1\.5 ' "$T/c-abort$i"
done
for i in 1 2 3; do
  send "c$i" app2 ann@other.example "rcpt-c$i@dest.example"
  expect_match "(c) app2 message $i after 4 aborted transactions -> 250" "$QUEUED" "$T/c$i"
done

# --- (f) monitor mode ---------------------------------------------------------------------------------
expect_match "(f) policyd logs a monitor line naming rule watch" 'monitor.*\bwatch\b|\bwatch\b.*monitor' "$POLICYD_ERR" 3
expect_match "(f) app2's 2nd message accepted despite watch (limit 1, REJECT, monitor)" "$QUEUED" "$T/c2"
expect_no_match "(f) no 5xx for app2's sender in the maillog" 'reject: .*: 5[0-9][0-9] .*from=<ann@other\.example>' "$LOG"

# --- (g) counters survive a restart; sluicectl limits show / reset ------------------------------------
sluice_policyd_stop; rc=$?
expect_eq "(g) policyd exits 0 on SIGTERM" "$rc" 0 "$POLICYD_ERR"
sluice_policyd_start "$CFG" || die "(g) sluice-policyd did not restart"
send g1 app1 alice@example.com rcpt-g1@dest.example
expect_match "(g) after restart app1 is still deferred" '^<~\* 450 4\.7\.1 .*Rate limit per-user' "$T/g1"
sluicectl_run g-show.out --config "$CFG" limits show app1
sed 's/^/    | /' "$T/g-show.out"
expect_eq "(g) sluicectl limits show app1 exits 0" "$SLUICECTL_RC" 0 "$T/g-show.out"
expect_match "(g) limits show app1 shows the per-user bucket" 'per-user' "$T/g-show.out"
sluicectl_run g-reset.out --config "$CFG" limits reset app1
expect_eq "(g) sluicectl limits reset app1 exits 0" "$SLUICECTL_RC" 0 "$T/g-reset.out"
send g2 app1 alice@example.com rcpt-g2@dest.example
expect_match "(g) after reset app1 sends again -> 250" "$QUEUED" "$T/g2"

# --- (i) SIGHUP with a broken config -----------------------------------------------------------------
cp "$CFG" "$CFG.good"
sed -i 's/mode: monitor/mode: sometimes/' "$CFG"
BAD_LINE=$(grep -n 'mode: sometimes' "$CFG" | cut -d: -f1)
echo "=== SIGHUP with $CFG line $BAD_LINE: mode: sometimes" >> "$POLICYD_ERR"
kill -HUP "$POLICYD_PID"
for ((k = 0; k < 50; k++)); do grep -q "policyd\.yaml:$BAD_LINE\b" "$POLICYD_ERR" && break; sleep 0.1; done
sleep 0.3
_is_our_child "$POLICYD_PID" && pass "(i) policyd still running after SIGHUP with a broken config" \
  || { fail "(i) policyd died after SIGHUP with a broken config"; show_tail "$POLICYD_ERR"; }
expect_match "(i) policyd logs the error as policyd.yaml:$BAD_LINE" "policyd\\.yaml:$BAD_LINE\\b" "$POLICYD_ERR" 3
send i1 app2 ann@other.example rcpt-i1@dest.example
expect_match "(i) old rules still apply: app2's 4th message -> 450 per-user" '^<~\* 450 4\.7\.1 .*Rate limit per-user' "$T/i1"
cp "$CFG.good" "$CFG"

# --- (h) policyd down: Postfix tempfails ------------------------------------------------------------
sluice_policyd_stop
send h1 app1 alice@example.com rcpt-h1@dest.example
expect_match "(h) policyd down -> 4xx" '^<~\* 4[0-9][0-9] ' "$T/h1"
expect_no_match "(h) policyd down -> never 250 queued" "$QUEUED" "$T/h1"
expect_match "(h) maillog: Postfix could not talk to policyd" "warning: problem talking to server (inet:)?127\\.0\\.0\\.1:$POLICYD_PORT" "$LOG" 3
expect_match "(h) maillog: tempfail reject line" 'reject: RCPT from .*: 4[0-9][0-9] .*to=<rcpt-h1@dest\.example>' "$LOG" 3

# --- everything accepted was delivered, nothing else --------------------------------------------------
pf_wait_queue_empty >/dev/null || fail "queue did not drain"
sink_wait 8 5
expect_eq "the sink got exactly the 8 accepted messages" "$(sink_rcpts)" \
  "rcpt-a@dest.example rcpt-b2@dest.example rcpt-b3@dest.example rcpt-c1@dest.example rcpt-c2@dest.example rcpt-c3@dest.example rcpt-g2@dest.example rcpt-k1@dest.example"
note "policyd stderr: $(grep -c . "$POLICYD_ERR") lines; elapsed $((SECONDS - E2E_START)) s"
finish
