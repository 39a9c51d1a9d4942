#!/bin/bash
# test_relayd_mta.sh BUILD_DIR - sluice-relayd behind the MTAs it serves: a real Postfix with
# contrib/postfix/relayhost.cf.snippet (relayhost = [127.0.0.1]:PORT) and a real, private Sendmail
# with contrib/sendmail/sluice.mc's SMART_HOST lines, each relaying a message into relayd, which
# queues it (sluicectl queue list shows it, with the identity header believed from the trusted
# client and removed from the content).
source "$(dirname "$0")/lib.sh" "$@"

mkdir -p "$T/state"
RP=$(free_port)
cat > "$T/sluice.yaml" <<YAML
state_dir: $T/state
run_as_user: ""
relayd:
  listen: 127.0.0.1:$RP
  hostname: relay.test.example
  metrics_listen: ""
YAML
sluice_relayd_start "$T/sluice.yaml" || die "sluice-relayd did not start"
sed "s/\[127\.0\.0\.1\]:10030/[127.0.0.1]:$RP/" "$E2E_SRC/../../contrib/postfix/relayhost.cf.snippet" | grep -E '^[a-z_]+ =' > "$T/pf-extra.cf"
expect_match "the snippet names relayd" "^relayhost = \[127\.0\.0\.1\]:$RP" "$T/pf-extra.cf"
pf_instance pf "$(free_port)" 9 "$T/pf-extra.cf"
swaks_run p1 --from alice@example.com --to bob@dest.example --header "Subject: via postfix" --header "X-Sluice-Auth: app1"
expect_match "Postfix accepted the message" '^<-  250 2\.0\.0 Ok: queued as' "$T/p1"
pf_wait_queue_empty >/dev/null
expect_match "Postfix relayed it to sluice-relayd (status=sent, relay=127.0.0.1)" "relay=127\.0\.0\.1\[127\.0\.0\.1\]:$RP.*status=sent \(250 2\.0\.0 Ok: queued as [0-9A-Z]{16}\)" "$(pf_log)"
"$BUILD/sluicectl/sluicectl" --config "$T/sluice.yaml" queue list --json > "$T/q1.json"
expect_match "relayd queued it; the identity header from the trusted MTA names the customer" '"identity":"app1".*"sender":"alice@example.com"' "$T/q1.json"
id=$(grep -o '"id":"[0-9A-Z]*"' "$T/q1.json" | head -1 | cut -d'"' -f4)
expect_no_match "the identity header is removed from the queued content" '^X-Sluice-Auth:' "$T/state/spool/${id: -2}/$id"

# Sendmail with the SMART_HOST lines of contrib/sendmail/sluice.mc (the milter lines left out)
grep -E "SMART_HOST|ESMTP_MAILER_ARGS" "$E2E_SRC/../../contrib/sendmail/sluice.mc" | sed "s/TCP \$h 10030/TCP \$h $RP/" > "$T/sm.mc"
sm_instance sm "$(free_port)" 9 "$(cat "$T/sm.mc")"
swaks_run s1 --server "127.0.0.1:$SM_PORT" --from carol@example.com --to dave@dest.example --header "Subject: via sendmail"
expect_match "Sendmail accepted the message" '^<-  250 2\.0\.0 .* Message accepted for delivery' "$T/s1"
for ((i = 0; i < 100; i++)); do "$BUILD/sluicectl/sluicectl" --config "$T/sluice.yaml" queue list --json > "$T/q2.json"; grep -q carol@example.com "$T/q2.json" && break; sleep 0.1; done
expect_match "Sendmail relayed it to sluice-relayd (SMART_HOST)" '"sender":"carol@example.com"' "$T/q2.json"
finish
