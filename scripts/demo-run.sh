#!/bin/bash
# demo-run.sh BUILD_DIR - the main job, shown: the whole chain on loopback. swaks with SMTP AUTH
# over STARTTLS -> an isolated Postfix (its own `postfix -c DIR`, never /etc/postfix; an
# instance-private sasldb) with sluice-policyd in check_policy_service and sluice-milter in
# smtpd_milters (DKIM signing) -> relayhost sluice-relayd (the embedded SQLite default) -> the
# recipient's MX found through a local unbound serving test zones -> a test MX (test_mx.py).
# It sends:
#   1. app1 as news@example.com (owned)               -> accepted, relayed, delivered by relayd,
#                                                        DKIM-signed (RSA-2048 + Ed25519), both
#                                                        signatures verified by dkimpy at the MX
#   2. app1 to a mailbox the MX refuses (550)          -> bounced by relayd, an RFC 3464 DSN
#                                                        delivered to news@example.com
#   3. a third from app1 (limit: 2 per hour)          -> deferred 450 4.7.1 by sluice-policyd
#   4. app1 as ceo@bank.example (not owned)           -> rejected 553 5.7.1
#   5. app2 to a suppressed recipient                 -> rejected 550 5.1.1 before DATA
# and shows, for each, swaks's final reply and the log line that proves it, then relayd's events
# (sluicectl events tail), `sluicectl why` of the bounce and the live counters (sluicectl limits
# show). Uses the e2e harness (tests/e2e/lib.sh) for the set-up.
source "$(dirname "$0")/../tests/e2e/lib.sh" "$@"

declare -A PW=([app1]=secret-app1 [app2]=secret-app2)
CFG=$T/sluice.yaml
say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
show_send() {  # OUT USER FROM TO
  local out=$1 user=$2 from=$3 to=$4
  swaks_run "$out" --tls --auth PLAIN --auth-user "$user" --auth-password "${PW[$user]}" \
    --from "$from" --to "$to" --header "Subject: demo $out"
  echo "  swaks:   $(swaks_reply "$T/$out")"
}
log_line() {  # REGEX: wait for and print the Postfix log line
  local l
  for _ in $(seq 50); do l=$(grep -E -- "$1" "$(pf_log)" | tail -1); [ -n "$l" ] && break; sleep 0.1; done
  echo "  maillog: ${l#*]: }"
  [ -n "$l" ]
}

PPORT=$(free_port) RPORT=$(free_port) MXPORT=$(free_port) || die "no free port"
unbound_start '  local-zone: "dest.example." static
  local-data: "dest.example. MX 10 mx.dest.example."
  local-data: "mx.dest.example. A 127.0.0.2"
  local-zone: "example.com." static
  local-data: "example.com. MX 10 mx.dest.example."'
start_bg mx /usr/bin/python3 "$E2E_SRC/test_mx.py" --listen "127.0.0.2:$MXPORT" --dir "$T/mx" --name mx.dest.example
wait_port 127.0.0.2 "$MXPORT" 10 "$LAST_PID" || die "the test MX did not start"
mx_count() { ls "$T"/mx/*.eml 2>/dev/null | wc -l; }
mkdir -p "$T/state"
cat > "$CFG" <<YAML
state_dir: $T/state
run_as_user: ""
log: { target: stderr, level: info }
policyd: { listen: 127.0.0.1:$PPORT }
relayd:
  listen: 127.0.0.1:$RPORT
  hostname: relay.demo.example
  metrics_listen: ""
dns: { servers: [127.0.0.1@$DNS_PORT] }
delivery: { smtp_port: $MXPORT }
identities:
  - { name: app1, sasl_usernames: [app1], senders: [example.com] }
  - { name: app2, sasl_usernames: [app2], senders: [shop.example] }
rate_limits:
  - name: per-user
    key: sasl_username
    count: messages
    windows: [ { limit: 2, per: 1h } ]
    action: DEFER_IF_PERMIT 4.7.1 Rate limit {rule} reached for {key}, try again later
YAML
# DKIM keys for example.com (selectors rsa1 and ed1): the DNS records a sysadmin would publish.
mkdir -p "$T/keys" && chmod 700 "$T/keys"
TOOL=$BUILD/tests/unit/dkim_sign_tool
"$TOOL" keygen rsa "$T/keys/rsa.pem" 2048 > "$T/rsa.txt" && "$TOOL" keygen ed25519 "$T/keys/ed.pem" > "$T/ed.txt" ||
  die "DKIM key generation failed"
{ echo "rsa1 $(cat "$T/rsa.txt")"; echo "ed1 $(cat "$T/ed.txt")"; } > "$T/records.txt"
cat >> "$CFG" <<YAML
milter: { listen: "unix:$T/milter.sock" }
dkim:
  signing_table:
    - domain: example.com
      signatures:
        - { domain: "%", selector: rsa1, key_file: $T/keys/rsa.pem }
        - { domain: "%", selector: ed1, key_file: $T/keys/ed.pem }
YAML
for u in app1 app2; do pf_sasl_user pf "$u" "${PW[$u]}"; done
sluice_policyd_start "$CFG" || die "sluice-policyd did not start"
start_bg milter "$BUILD/milter/sluice-milter" --config "$CFG"
for _ in $(seq 100); do [ -S "$T/milter.sock" ] && break; sleep 0.1; done
[ -S "$T/milter.sock" ] || { show_tail "$T/milter.err"; die "sluice-milter did not start"; }
sluice_relayd_start "$CFG" || die "sluice-relayd did not start"
POLICY="check_policy_service { inet:127.0.0.1:$PPORT, timeout=10s, default_action=DEFER_IF_PERMIT }"
pf_instance pf "$(free_port)" "$RPORT" "
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions = $POLICY, permit_sasl_authenticated, reject
smtpd_end_of_data_restrictions = $POLICY
smtpd_milters = unix:$T/milter.sock
milter_default_action = tempfail
milter_mail_macros = i {auth_type} {auth_authen} {auth_author} {mail_addr}
"
say "Postfix $(postconf -h mail_version) on 127.0.0.1:$PF_PORT -> relayhost sluice-relayd 127.0.0.1:$RPORT -> MX of dest.example (unbound on 127.0.0.1:$DNS_PORT) = test MX 127.0.0.2:$MXPORT"
echo "  sluice-policyd on 127.0.0.1:$PPORT; sluice-milter on $T/milter.sock"
echo "  smtpd_recipient_restrictions = $POLICY, permit_sasl_authenticated, reject"

say "1. app1 (AUTH PLAIN over STARTTLS) sends as news@example.com, which it owns"
show_send m1 app1 news@example.com alice@dest.example
grep -qE '^<~  250 2\.0\.0 Ok: queued as' "$T/m1" && pass "accepted" || fail "message 1 not accepted"
log_line 'to=<alice@dest.example>.*relay=127\.0\.0\.1.*status=sent' && pass "Postfix relayed it to sluice-relayd" || fail "message 1 not relayed to relayd"
relayd_line() {  # REGEX: wait for and print relayd's log line
  local l
  for _ in $(seq 100); do l=$(grep -E -- "$1" "$RELAYD_ERR" | tail -1); [ -n "$l" ] && break; sleep 0.1; done
  echo "  relayd:  ${l#*]: }"
  [ -n "$l" ]
}
relayd_line 'to=<alice@dest\.example>.*status=sent' && pass "sluice-relayd delivered it to mx.dest.example" || fail "relayd did not deliver message 1"
for _ in $(seq 50); do [ "$(mx_count)" -ge 1 ] && break; sleep 0.1; done
f=$(grep -l '^Subject: demo m1' "$T"/mx/*.eml 2>/dev/null | head -1)
tail -n +2 "${f:-/dev/null}" > "$T/m1.eml"
grep -A1 '^DKIM-Signature:' "$T/m1.eml" | sed 's/^/  /' | cut -c1-110
if /usr/bin/python3 "$E2E_SRC/dkim_verify.py" "$T/records.txt" "$T/m1.eml" 2 > "$T/m1.dkimpy" 2>&1; then
  pass "both DKIM signatures (rsa-sha256, ed25519-sha256) verify with dkimpy at the MX"
else
  fail "DKIM verification of the delivered message"; show_tail "$T/m1.dkimpy"
fi

say "2. app1 writes to rcpt550@dest.example, a mailbox the MX refuses"
show_send m2 app1 news@example.com rcpt550@dest.example
relayd_line 'to=<rcpt550@dest\.example>.*status=bounced' && pass "sluice-relayd bounced it (550 from the MX)" || fail "no bounce"
relayd_line 'to=<news@example\.com>.*status=sent' && pass "the DSN went back to news@example.com" || fail "no DSN delivered"
dsn=$(grep -l 'multipart/report' "$T"/mx/*.eml 2>/dev/null | head -1)
sed -n '/^Content-Type: message\/delivery-status/,/^--/p' "${dsn:-/dev/null}" | grep -E '^(Final-Recipient|Action|Status|Remote-MTA|Diagnostic-Code):' | sed 's/^/  dsn:     /'
[ -n "$dsn" ] && pass "an RFC 3464 report (multipart/report; report-type=delivery-status)" || fail "no DSN at the MX"

say "3. app1 sends a third message; its limit is 2 messages per hour"
show_send m3 app1 news@example.com carol@dest.example
grep -qE '^<~\* 450 4\.7\.1 .*Rate limit per-user reached for app1' "$T/m3" && pass "3rd message deferred 450 4.7.1" || fail "3rd message not deferred"
log_line 'NOQUEUE: reject: RCPT .*450 4\.7\.1 <carol@dest\.example>' || fail "no Postfix reject line for the deferral"
echo "  policyd: $(grep -E 'rule=per-user' "$POLICYD_ERR" | tail -1 | sed 's/^[^:]*: //')"

say "4. app1 tries to send as ceo@bank.example, which it does not own"
show_send m4 app1 ceo@bank.example dave@dest.example
grep -qE '^<~\* 553 5\.7\.1 ' "$T/m4" && pass "rejected 553 5.7.1" || fail "foreign sender not rejected"
log_line 'NOQUEUE: reject: RCPT .*553 5\.7\.1 .*from=<ceo@bank\.example>' || fail "no Postfix reject line for the sender"

say "5. erin@dest.example hard-bounced earlier: sluicectl suppress add, then app2 writes to her"
"$BUILD/sluicectl/sluicectl" --config "$CFG" suppress add erin@dest.example --reason hard-bounce
sleep 1.1   # policyd picks up changes by other processes within a second
show_send m5 app2 orders@shop.example erin@dest.example
grep -qE '^<~\* 550 5\.1\.1 ' "$T/m5" && pass "suppressed recipient rejected 550 5.1.1" || fail "suppressed recipient not rejected"
grep -qE '^ ~> DATA' "$T/m5" && fail "DATA was sent to a suppressed recipient" || pass "before DATA: no body was sent"
log_line 'NOQUEUE: reject: RCPT .*550 5\.1\.1 <erin@dest\.example>' || fail "no Postfix reject line for the suppression"

say "Delivery events (sluicectl events tail) and the history of the bounce (sluicectl why)"
"$BUILD/sluicectl/sluicectl" --config "$CFG" events tail -n 12 | sed 's/^/  /'
BID=$(grep -E 'to=<rcpt550@dest\.example>.*status=bounced' "$RELAYD_ERR" | tail -1 | sed -E 's/.*: ([0-9A-Z]{16}): to=.*/\1/')
"$BUILD/sluicectl/sluicectl" --config "$CFG" why "$BID" | sed 's/^/  /'

say "Live counters (sluicectl limits show) and the MX"
sleep 1.2
"$BUILD/sluicectl/sluicectl" --config "$CFG" limits show
pf_wait_queue_empty
echo "  the test MX received $(mx_count) message(s)"
[ "$(mx_count)" = 2 ] && pass "exactly the delivered message and the DSN reached the MX" || fail "the MX holds $(mx_count) messages, want 2"
finish
