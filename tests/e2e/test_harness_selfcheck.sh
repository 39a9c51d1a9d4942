#!/bin/bash
# test_harness_selfcheck.sh BUILD_DIR - proves the e2e harness (lib.sh) works, without any Sluice
# daemon: an isolated Postfix with a private Cyrus sasldb and STARTTLS relays for an authenticated
# client to smtp-sink, refuses a wrong password (535 5.7.8) and unauthenticated relaying
# (554 5.7.1), and free_port never hands out the same port twice. Runs in a few seconds.
#
#   swaks --tls --auth -> Postfix 127.0.0.1:$PF_PORT -> relayhost [127.0.0.1]:$SINK_PORT (smtp-sink)
source "$(dirname "$0")/lib.sh" "$@"

note "temp dir $T"
# --- the port allocator: distinct ports, none listening, all reserved for this test ------------------
p1=$(free_port); p2=$(free_port); p3=$(free_port)
[ -n "$p1" ] && [ "$p1" != "$p2" ] && [ "$p1" != "$p3" ] && [ "$p2" != "$p3" ] \
  && pass "free_port gives distinct ports ($p1 $p2 $p3)" || fail "free_port: got '$p1' '$p2' '$p3', want 3 distinct ports"
expect_eq "free_port reserves its port for this test" "$(cat "$E2E_PORT_DIR/$p1" 2>/dev/null)" "$$"

# --- sink, instance, one SASL user ------------------------------------------------------------------
smtp_sink_start
pf_sasl_user pf app1 secret
pf_instance pf "$(free_port)" "$SINK_PORT" "
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
"
note "Postfix $(postconf -h mail_version) on 127.0.0.1:$PF_PORT, sink on 127.0.0.1:$SINK_PORT"
expect_match "instance has its own maillog" 'starting the Postfix mail system' "$(pf_log)" 3

# --- AUTH is offered only after STARTTLS -------------------------------------------------------------
swaks_run ehlo-plain.out --quit-after EHLO
expect_no_match "no AUTH before STARTTLS" '^<-  250-AUTH' "$T/ehlo-plain.out"
swaks_run ehlo-tls.out --tls --quit-after EHLO
expect_match "AUTH PLAIN LOGIN after STARTTLS" '^<~  250-AUTH PLAIN LOGIN$' "$T/ehlo-tls.out"

# --- (1) correct password: 235, queued, delivered to the sink ----------------------------------------
swaks_run ok.out --tls --auth PLAIN --auth-user app1 --auth-password secret \
  --from app1@example.com --to bob@dest.example --header "Subject: selfcheck ok"
expect_match "(1) AUTH PLAIN app1 -> 235" '^<~  235 2\.7\.0 Authentication successful' "$T/ok.out"
expect_match "(1) message queued" '^<~  250 2\.0\.0 Ok: queued as' "$T/ok.out"
expect_eq "(1) swaks rc" "$SWAKS_RC" 0 "$T/ok.out"

# --- (2) wrong password: 535 5.7.8 -------------------------------------------------------------------
swaks_run badpw.out --tls --auth PLAIN --auth-user app1 --auth-password WRONG \
  --from app1@example.com --to bob@dest.example
expect_match "(2) wrong password -> 535 5.7.8" '^<~\* 535 5\.7\.8 ' "$T/badpw.out"
expect_match "(2) maillog: authentication failed" 'warning: .*SASL PLAIN authentication failed' "$(pf_log)" 3

# --- (3) no AUTH, relaying: 554 5.7.1 ----------------------------------------------------------------
swaks_run noauth.out --tls --from app1@example.com --to bob@dest.example
expect_match "(3) no AUTH -> 554 5.7.1 Relay access denied" '^<~\* 554 5\.7\.1 <bob@dest\.example>: Relay access denied' "$T/noauth.out"
expect_match "(3) maillog: NOQUEUE reject line" 'NOQUEUE: reject: RCPT from .*554 5\.7\.1 <bob@dest\.example>: Relay access denied' "$(pf_log)" 3

# --- delivery --------------------------------------------------------------------------------------
pf_wait_queue_empty && pass "queue drained" || fail "queue not empty"
sink_wait 1 5
expect_eq "sink holds exactly the authenticated message" "$(sink_count)" 1
f=$(sink_find '^Subject: selfcheck ok$')
expect_match "(1) relayed message says (Authenticated sender: app1)" '\(Authenticated sender: app1\)' "${f:-$SINK_DIR/none}"
expect_match "(1) maillog: delivered to the sink" "status=sent \\(250 .*\\)" "$(pf_log)" 3

# --- the harness's own processes ---------------------------------------------------------------------
start_bg sleeper sleep 300
sleeper=$LAST_PID
stop_bg sleeper
_is_our_child "$sleeper" && fail "stop_bg left pid $sleeper running" || pass "stop_bg stops by PID"
note "elapsed $((SECONDS - E2E_START)) s"
finish
