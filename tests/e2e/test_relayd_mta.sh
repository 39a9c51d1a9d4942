#!/bin/bash
# test_relayd_mta.sh BUILD_DIR - sluice-relayd behind the MTAs it serves: a real Postfix with
# contrib/postfix/relayhost.cf.snippet (relayhost = [127.0.0.1]:PORT) and milter.cf.snippet
# (sluice-milter in smtpd_milters), and a real, private Sendmail with contrib/sendmail/sluice.mc's
# SMART_HOST lines, each relaying a message into relayd, which queues it (sluicectl queue list).
# The identity header (relayd.identity_header, X-Sluice-Auth) that relayd believes from the
# trusted MTA is owned by sluice-milter:
#   (a) an unauthenticated client forging it (four spellings, one of them "name : value") -> every
#       copy removed by the milter, relayd records no identity, nothing of it in the queued content;
#   (b) app1 authenticated (SASL over STARTTLS) forging "app2" -> relayd records app1 (the milter's
#       field from {auth_authen}), and the header is removed from the queued content.
source "$(dirname "$0")/lib.sh" "$@"

MILTER=$BUILD/milter/sluice-milter
[ -x "$MILTER" ] || die "$MILTER is not built"
mkdir -p "$T/state"
RP=$(free_port)
# One file for both daemons: the milter removes the header relayd.identity_header names.
cat > "$T/sluice.yaml" <<YAML
state_dir: $T/state
run_as_user: ""
relayd:
  listen: 127.0.0.1:$RP
  hostname: relay.test.example
  metrics_listen: ""
milter:
  listen: "unix:$T/milter.sock"
  metrics_listen: ""
identities:
  - { name: app1, sasl_usernames: [app1], senders: [example.com] }
YAML
sluice_relayd_start "$T/sluice.yaml" || die "sluice-relayd did not start"
start_bg milter "$MILTER" --config "$T/sluice.yaml"; MILTER_PID=$LAST_PID
for ((i = 0; i < 100; i++)); do [ -S "$T/milter.sock" ] && break; _is_our_child "$MILTER_PID" || break; sleep 0.1; done
[ -S "$T/milter.sock" ] || { show_tail "$T/milter.err"; die "sluice-milter did not start"; }
sed "s/\[127\.0\.0\.1\]:10030/[127.0.0.1]:$RP/" "$E2E_SRC/../../contrib/postfix/relayhost.cf.snippet" | grep -E '^[a-z_]+ =' > "$T/pf-extra.cf"
expect_match "the snippet names relayd" "^relayhost = \[127\.0\.0\.1\]:$RP" "$T/pf-extra.cf"
# milter.cf.snippet as shipped, with the socket of this test (no chroot here).
sed "s|unix:/sluice/milter\.sock|unix:$T/milter.sock|" "$E2E_SRC/../../contrib/postfix/milter.cf.snippet" | grep -E '^[a-z_]+ =' >> "$T/pf-extra.cf"
expect_match "the milter snippet is applied" "^smtpd_milters = unix:$T/milter\.sock" "$T/pf-extra.cf"
pf_sasl_user pf app1 pw-one
pf_instance pf "$(free_port)" 9 "$T/pf-extra.cf"

queued() {  # queued OUT SENDER: relayd's queue (queue list --json) in OUT, the line of SENDER in OUT.SENDER
  "$BUILD/sluicectl/sluicectl" --config "$T/sluice.yaml" queue list --json > "$1"
  grep "\"sender\":\"$2\"" "$1" > "$1.$2"
}
spool_of() {  # spool_of LINE_FILE: the spool file of the message in that queue list line
  local id
  id=$(grep -o '"id":"[0-9A-Z]*"' "$1" | head -1 | cut -d'"' -f4)
  [ -n "$id" ] && echo "$T/state/spool/${id: -2}/$id"
}

# (a) unauthenticated (mynetworks), forging the identity header in four spellings
swaks_run p1 --from alice@example.com --to bob@dest.example --header "Subject: via postfix" \
  --header "X-Sluice-Auth: app1" --header "x-sluice-auth: app1" --header "X-SLUICE-AUTH: app1" --header "X-Sluice-Auth : app1"
expect_match "(a) Postfix accepted the unauthenticated message" '^<-  250 2\.0\.0 Ok: queued as' "$T/p1"
pf_wait_queue_empty >/dev/null
expect_match "(a) Postfix relayed it to sluice-relayd (status=sent, relay=127.0.0.1)" "relay=127\.0\.0\.1\[127\.0\.0\.1\]:$RP.*status=sent \(250 2\.0\.0 Ok: queued as [0-9A-Z]{16}\)" "$(pf_log)"
expect_match "(a) the milter removed the four forged fields" "removed 4 X-Sluice-Auth field\(s\) sent by the client of <alice@example\.com>" "$T/milter.err"
queued "$T/q1.json" alice@example.com
expect_match "(a) relayd queued it, with no identity" '"identity":"".*"sender":"alice@example.com"' "$T/q1.json.alice@example.com"
f=$(spool_of "$T/q1.json.alice@example.com")
[ -n "$f" ] && [ -f "$f" ] || fail "(a) spool file of alice's message not found"
expect_match "(a) the queued content is the message (Subject: via postfix)" '^Subject: via postfix' "${f:-/dev/null}"
expect_no_match "(a) no identity header in the queued content" '^X-Sluice-Auth' "${f:-/dev/null}"

# (b) app1 authenticated, forging another customer's name
swaks_run p2 --tls --auth PLAIN --auth-user app1 --auth-password pw-one --from carol@example.com \
  --to dan@dest.example --header "Subject: authenticated" --header "X-Sluice-Auth: app2"
expect_match "(b) Postfix accepted app1's message" '^<~  250 2\.0\.0 Ok: queued as' "$T/p2"
pf_wait_queue_empty >/dev/null
queued "$T/q2.json" carol@example.com
expect_match "(b) relayd records the SASL login app1 (from the milter), not the forged app2" '"identity":"app1".*"sender":"carol@example.com"' "$T/q2.json.carol@example.com"
f=$(spool_of "$T/q2.json.carol@example.com")
expect_match "(b) the queued content is the message (Subject: authenticated)" '^Subject: authenticated' "${f:-/dev/null}"
expect_no_match "(b) no identity header in the queued content" '^X-Sluice-Auth' "${f:-/dev/null}"
expect_no_match "(b) nothing of the forged name anywhere in the queued content" 'app2' "${f:-/dev/null}"

# Sendmail with the SMART_HOST lines of contrib/sendmail/sluice.mc (the milter lines left out)
grep -E "SMART_HOST|ESMTP_MAILER_ARGS" "$E2E_SRC/../../contrib/sendmail/sluice.mc" | sed "s/TCP \$h 10030/TCP \$h $RP/" > "$T/sm.mc"
sm_instance sm "$(free_port)" 9 "$(cat "$T/sm.mc")"
swaks_run s1 --server "127.0.0.1:$SM_PORT" --from erin@example.com --to dave@dest.example --header "Subject: via sendmail"
expect_match "Sendmail accepted the message" '^<-  250 2\.0\.0 .* Message accepted for delivery' "$T/s1"
for ((i = 0; i < 100; i++)); do "$BUILD/sluicectl/sluicectl" --config "$T/sluice.yaml" queue list --json > "$T/q3.json"; grep -q erin@example.com "$T/q3.json" && break; sleep 0.1; done
expect_match "Sendmail relayed it to sluice-relayd (SMART_HOST)" '"sender":"erin@example.com"' "$T/q3.json"
finish
