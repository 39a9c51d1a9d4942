#!/bin/bash
# test_milter_sendmail.sh BUILD_DIR - sluice-milter behind a real Sendmail 8.17 (private copy, see
# sm_instance in lib.sh) with SASL AUTH over STARTTLS, SMART_HOST = smtp-sink. Sendmail has no
# policy protocol, so the milter asks a real sluice-policyd the envelope questions
# (milter.policy_service) and signs with RSA-2048 + Ed25519 keys made fresh by dkim_sign_tool.
#   (a) app1 authenticated, From example.com -> 250, delivered with rsa + ed25519 signatures that
#       dkimpy and libopendkim verify (both) and Mail::DKIM verifies (rsa; Debian's has no ed25519)
#   (b) app1 with From: ceo@other.example -> 550 5.7.1 at end of data, nothing delivered
#   (c) app1 with MAIL FROM <bob@other.example> -> 553 5.7.1 from policyd at RCPT
#   (d) app1 to a suppressed recipient -> 550 5.1.1 from policyd at RCPT
#   (e) unauthenticated from 127.0.0.1 (Sendmail relays it), not a protected domain -> unsigned
#   (f) rate limit 3 messages/h for app1: (a) + 2 more pass, the 4th gets 450 4.7.1 at RCPT, and
#       `sluicectl limits show` counts exactly 3 (reserve at RCPT, commit at end: never twice)
#   (g) SIGHUP: the milter reloads (a new key set is used), a broken config is refused
#   (h) sluice-policyd stopped -> 4xx at RCPT (milter.policy_default_action), never 250
#   (i) sluice-milter stopped -> Sendmail tempfails (F=T), never 250
source "$(dirname "$0")/lib.sh" "$@"

PY=/usr/bin/python3
TOOL=${DKIM_SIGN_TOOL:-$BUILD/tests/unit/dkim_sign_tool}
MILTER=$BUILD/milter/sluice-milter
OK250='^<~  250 2\.0\.0 .* Message accepted for delivery'

[ -x "$MILTER" ] || die "$MILTER is not built"
[ -x "$TOOL" ] || die "$TOOL is not built (target dkim_sign_tool)"
mkdir -p "$T/keys" "$T/state"
"$TOOL" keygen rsa "$T/keys/rsa.pem" 2048 > "$T/rsa.txt" 2> "$T/keygen.err" || die "keygen rsa"
"$TOOL" keygen ed25519 "$T/keys/ed.pem" > "$T/ed.txt" 2>> "$T/keygen.err" || die "keygen ed25519"
"$TOOL" keygen rsa "$T/keys/rsa2.pem" 2048 > "$T/rsa2.txt" 2>> "$T/keygen.err" || die "keygen rsa2"
{ echo "rsa1 $(cat "$T/rsa.txt")"; echo "ed1 $(cat "$T/ed.txt")"; echo "rsa2 $(cat "$T/rsa2.txt")"; } > "$T/records.txt"

PPORT=$(free_port)
# write_cfg FILE SIGNATURES: one config for policyd and the milter.
write_cfg() {
  cat > "$1" <<YAML
state_dir: $T/state
run_as_user: ""
log: { target: stderr, level: info }
policyd: { listen: 127.0.0.1:$PPORT, metrics_listen: "" }
milter:
  listen: "unix:$T/milter.sock"
  policy_service: 127.0.0.1:$PPORT
  policy_timeout: 3s
  metrics_listen: ""
identities:
  - { name: app1, sasl_usernames: [app1], senders: [example.com] }
rate_limits:
  - name: per-user
    key: sasl_username
    count: messages
    windows: [ { limit: 3, per: 1h } ]
    action: DEFER_IF_PERMIT 4.7.1 Rate limit {rule} reached for {key}
dkim:
  signing_table:
    - domain: example.com
      signatures:
$2
YAML
}
SIGS_BOTH="        - { selector: rsa1, key_file: $T/keys/rsa.pem }
        - { selector: ed1, key_file: $T/keys/ed.pem }"
write_cfg "$T/sluice.yaml" "$SIGS_BOTH"
sluice_policyd_start "$T/sluice.yaml" || die "sluice-policyd did not start"
sluicectl_run suppress.out --config "$T/sluice.yaml" suppress add blocked@dest.example --reason hard-bounce
expect_eq "sluicectl suppress add blocked@dest.example" "$SLUICECTL_RC" 0 "$T/suppress.out"
start_bg milter "$MILTER" --config "$T/sluice.yaml"; MILTER_PID=$LAST_PID
for ((i = 0; i < 100; i++)); do [ -S "$T/milter.sock" ] && break; sleep 0.1; done
[ -S "$T/milter.sock" ] || { show_tail "$T/milter.err"; die "sluice-milter did not start"; }
smtp_sink_start
SM_SASL_USER=app1 SM_SASL_PASS=secret sm_instance sm "$(free_port)" "$SINK_PORT" \
  "INPUT_MAIL_FILTER(\`sluice', \`S=unix:$T/milter.sock, F=T, T=S:30s;R:30s;E:1m')dnl"
note "Sendmail on 127.0.0.1:$SM_PORT (pid $SM_PID), milter pid $MILTER_PID, policyd 127.0.0.1:$PPORT, sink $SINK_PORT, temp dir $T"

# send OUT FROM_HEADER [SWAKS ARGS...]: app1 from 127.0.0.2 over STARTTLS + AUTH PLAIN
send() {
  local out=$1 from=$2; shift 2
  swaks_run "$out" --server "127.0.0.1:$SM_PORT" --local-interface 127.0.0.2 --tls \
    --auth PLAIN --auth-user app1 --auth-password secret \
    --from alice@example.com --to "rcpt-$out@dest.example" --header "Subject: sendmail $out" --header "From: $from" "$@"
  echo "    swaks $out: $(swaks_reply "$T/$out")"
}
# wait_sink_subject SUBJECT: the sink file holding that Subject once its content is complete
wait_sink_subject() {
  local f i
  for ((i = 0; i < 100; i++)); do
    f=$(grep -lE "^Subject: $1\$" "$SINK_DIR"/* 2>/dev/null | head -1)
    [ -n "$f" ] && grep -q '^X-Rcpt-Args:' "$f" && sleep 0.2 && { echo "$f"; return 0; }
    sleep 0.1
  done
  return 1
}
verify_both() {  # verify_both NAME FILE WANT_SIGS
  local name=$1 f=$2 want=$3
  sed '1,/^X-Rcpt-Args:/d' "$f" > "$T/$name.eml"
  if "$PY" "$E2E_SRC/dkim_verify.py" "$T/records.txt" "$T/$name.eml" "$want" > "$T/$name.dkimpy" 2>&1; then
    pass "($name) dkimpy verifies all $want signatures"; evidence "$T/$name.dkimpy" PASS 2
  else fail "($name) dkimpy verification"; show_tail "$T/$name.dkimpy"; fi
  if "$BUILD/tests/unit/opendkim_verify" "$T/records.txt" "$T/$name.eml" "$want" > "$T/$name.opendkim" 2>&1; then
    pass "($name) libopendkim verifies all $want signatures"; evidence "$T/$name.opendkim" PASS 2
  else fail "($name) libopendkim verification"; show_tail "$T/$name.opendkim"; fi
  if perl "$E2E_SRC/dkim_verify.pl" "$T/records.txt" "$T/$name.eml" > "$T/$name.maildkim" 2>&1; then
    pass "($name) Mail::DKIM verifies the rsa-sha256 signature"; evidence "$T/$name.maildkim" pass 1
  else fail "($name) Mail::DKIM verification"; show_tail "$T/$name.maildkim"; fi
}

# --- (a) signed, verified by two independent verifiers ----------------------------------------------
send a "Alice <alice@example.com>"
expect_match "(a) app1 authenticated From alice@example.com -> 250" "$OK250" "$T/a"
f=$(wait_sink_subject "sendmail a") || f=""
[ -n "$f" ] || fail "(a) message reached the sink"
expect_eq "(a) two DKIM-Signature fields (rsa + ed25519)" "$(grep -c '^DKIM-Signature:' "${f:-/dev/null}")" 2 "${f:-/dev/null}"
[ -n "$f" ] && verify_both a "$f" 2
expect_match "(a) Sendmail's Received: says authenticated" 'authenticated bits=0' "${f:-/dev/null}"

# --- (b) From: not owned -> 550 5.7.1 --------------------------------------------------------------------
send b "CEO <ceo@other.example>"
expect_match "(b) From: ceo@other.example -> 550 5.7.1 from the milter" '^<(\*\*|~\*) 550 5\.7\.1 .*not owned by user app1' "$T/b"

# --- (c) envelope sender not owned -> policyd 553 at RCPT ----------------------------------------------
swaks_run c --server "127.0.0.1:$SM_PORT" --local-interface 127.0.0.2 --tls --auth PLAIN --auth-user app1 \
  --auth-password secret --from bob@other.example --to rcpt-c@dest.example --header "Subject: sendmail c"
expect_match "(c) MAIL FROM <bob@other.example> -> 553 5.7.1 at RCPT (policyd through the milter)" \
  '^<(\*\*|~\*) 553 5\.7\.1 .*not owned by user app1' "$T/c"

# --- (d) suppressed recipient -> 550 5.1.1 at RCPT ---------------------------------------------------------
swaks_run d --server "127.0.0.1:$SM_PORT" --local-interface 127.0.0.2 --tls --auth PLAIN --auth-user app1 \
  --auth-password secret --from alice@example.com --to blocked@dest.example --header "From: alice@example.com"
expect_match "(d) suppressed blocked@dest.example -> 550 5.1.1 at RCPT" '^<(\*\*|~\*) 550 5\.1\.1 .*suppressed' "$T/d"

# --- (e) unauthenticated, from 127.0.0.1 -> relayed unsigned ------------------------------------------------
swaks_run e --server "127.0.0.1:$SM_PORT" --from web@elsewhere.example --to rcpt-e@dest.example \
  --header "Subject: sendmail e" --header "From: web@elsewhere.example"
expect_match "(e) unauthenticated from 127.0.0.1 -> 250" "^<-  250 2\.0\.0 .* Message accepted for delivery" "$T/e"
f=$(wait_sink_subject "sendmail e") || f=""
[ -n "$f" ] || fail "(e) message reached the sink"
expect_eq "(e) delivered without DKIM-Signature" "$(grep -c '^DKIM-Signature:' "${f:-/dev/null}")" 0 "${f:-/dev/null}"

# --- (f) rate limit through policyd, counted once -----------------------------------------------------------
send f1 "alice@example.com"; send f2 "alice@example.com"; send f3 "alice@example.com"
expect_match "(f) 2nd message of app1 -> 250" "$OK250" "$T/f1"
expect_match "(f) 3rd message of app1 -> 250" "$OK250" "$T/f2"
expect_match "(f) 4th message of app1 -> 450 4.7.1 at RCPT" '^<(\*\*|~\*) 450 4\.7\.1 .*Rate limit per-user reached for app1' "$T/f3"
sluicectl_run limits.out --config "$T/sluice.yaml" limits show
expect_match "(f) sluicectl limits show: app1 used exactly 3 (reserved at RCPT, committed once at end)" \
  'per-user.*app1.* 3( |/)' "$T/limits.out"

# --- (g) SIGHUP reload: the rsa2 key replaces both; a broken config is refused ---------------------------------
sluicectl_run reset.out --config "$T/sluice.yaml" limits reset app1
write_cfg "$T/sluice.yaml" "        - { selector: rsa2, key_file: $T/keys/rsa2.pem }"
kill -HUP "$MILTER_PID"
wait_match "$T/milter.err" 'reloaded .*1 DKIM keys' 5
expect_match "(g) SIGHUP: sluice-milter reloaded the config and its keys" 'reloaded .*: 1 DKIM keys' "$T/milter.err"
send g "alice@example.com"
f=$(wait_sink_subject "sendmail g") || f=""
expect_match "(g) after reload the message is signed with s=rsa2" 's=rsa2;' "${f:-/dev/null}"
[ -n "$f" ] && verify_both g "$f" 1
echo "dkim: [ this is not yaml" > "$T/broken.yaml"; cp "$T/broken.yaml" "$T/sluice.yaml"
kill -HUP "$MILTER_PID"
wait_match "$T/milter.err" 'reload refused' 5
expect_match "(g) a broken config is refused, the old one keeps running" 'reload refused, keeping the running configuration' "$T/milter.err"
_is_our_child "$MILTER_PID" && pass "(g) sluice-milter still running after SIGHUP" || fail "(g) sluice-milter died on SIGHUP"

# --- (h) policyd down -> tempfail at RCPT -------------------------------------------------------------------
sluice_policyd_stop
send h "alice@example.com"
expect_match "(h) sluice-policyd down -> 450 4.3.0 at RCPT (policy_default_action)" '^<(\*\*|~\*) 450 4\.3\.0 .*Policy service unavailable' "$T/h"
expect_no_match "(h) never 250 while policyd is down" "$OK250" "$T/h"

# --- (i) milter down -> Sendmail tempfails (F=T) --------------------------------------------------------------
stop_pid "$MILTER_PID"
send i "alice@example.com"
expect_match "(i) sluice-milter down -> 4xx from Sendmail (F=T)" '^<(\*\*|~\*) 4[0-9][0-9] ' "$T/i"
expect_no_match "(i) never 250 while the milter is down" "$OK250" "$T/i"

finish
