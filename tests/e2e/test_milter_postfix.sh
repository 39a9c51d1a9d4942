#!/bin/bash
# test_milter_postfix.sh BUILD_DIR - sluice-milter behind a real Postfix (smtpd_milters, SASL over
# STARTTLS, relay to smtp-sink). Keys (RSA-2048 + Ed25519) are made fresh with dkim_sign_tool and
# the delivered message is verified offline with dkimpy (dkim_verify.py, a records file, no DNS).
#   (a) app1 authenticated, From example.com -> delivered with rsa + ed25519 signatures that verify;
#       the milter's log line starts with the queue id Postfix logged for it
#   (b) app1 with From: ceo@other.example -> 550 5.7.1, nothing delivered
#   (c) two From: header fields -> 550 5.6.0
#   (d) unauthenticated relay from mynetworks -> delivered unsigned
#   (e) milter stopped -> Postfix answers 4xx (milter_default_action = tempfail), never 250
#   (f) a key file with mode 0644 -> sluice-milter refuses to start with one clear line
#   (g) milter.engine: libmilter (the alternative engine) -> (a) and (b) again: signed and verified,
#       and the foreign From: refused with the same 550 5.7.1 text
source "$(dirname "$0")/lib.sh" "$@"

PY=/usr/bin/python3
TOOL=${DKIM_SIGN_TOOL:-$BUILD/tests/unit/dkim_sign_tool}
MILTER=$BUILD/milter/sluice-milter
QUEUED='^<~  250 2\.0\.0 Ok: queued as'

# --- set-up ------------------------------------------------------------------------------------------
[ -x "$MILTER" ] || die "$MILTER is not built"
[ -x "$TOOL" ] || die "$TOOL is not built (target dkim_sign_tool)"
"$PY" -c 'import dkim' 2>/dev/null || die "dkimpy missing: apt-get install python3-dkim"
mkdir -p "$T/keys"
"$TOOL" keygen rsa "$T/keys/rsa.pem" 2048 > "$T/rsa.txt" 2> "$T/keygen.err" || { show_tail "$T/keygen.err"; die "keygen rsa"; }
"$TOOL" keygen ed25519 "$T/keys/ed.pem" > "$T/ed.txt" 2>> "$T/keygen.err" || { show_tail "$T/keygen.err"; die "keygen ed25519"; }
{ echo "rsa1 $(cat "$T/rsa.txt")"; echo "ed1 $(cat "$T/ed.txt")"; } > "$T/records.txt"

# write_cfg FILE RSA_KEY [ENGINE]: the milter's config (socket $T/milter.sock).
write_cfg() {
  cat > "$1" <<YAML
state_dir: $T/state
run_as_user: ""
log: { target: stderr, level: info }
milter: { listen: "unix:$T/milter.sock", engine: ${3:-builtin} }
identities:
  - { name: app1, sasl_usernames: [app1], senders: [example.com] }
dkim:
  key_error_action: tempfail
  sign_unauthenticated: false
  signing_table:
    - domain: example.com
      signatures:
        - { domain: "%", selector: rsa1, key_file: $2 }
        - { domain: "%", selector: ed1, key_file: $T/keys/ed.pem }
YAML
}
write_cfg "$T/milter.yaml" "$T/keys/rsa.pem"
mkdir -p "$T/state"
milter_start() {
  start_bg milter "$MILTER" --config "$1"; MILTER_PID=$LAST_PID
  local i; for ((i = 0; i < 100; i++)); do [ -S "$T/milter.sock" ] && return 0; _is_our_child "$MILTER_PID" || return 1; sleep 0.1; done
  return 1
}
milter_start "$T/milter.yaml" || { show_tail "$T/milter.err"; die "sluice-milter did not start"; }
smtp_sink_start
pf_sasl_user pf app1 pw-one
pf_instance pf "$(free_port)" "$SINK_PORT" "
mynetworks = 127.0.0.1/32
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_milters = unix:$T/milter.sock
milter_default_action = tempfail
milter_mail_macros = i {auth_type} {auth_authen} {auth_author} {mail_addr}
"
LOG=$(pf_log)
note "Postfix on 127.0.0.1:$PF_PORT, sink 127.0.0.1:$SINK_PORT, milter pid $MILTER_PID, temp dir $T"
send() {  # send OUT FROM_HEADER [SWAKS ARGS...]: app1 over STARTTLS + AUTH
  local out=$1 from=$2; shift 2
  swaks_run "$out" --tls --auth PLAIN --auth-user app1 --auth-password pw-one \
    --from alice@example.com --to "rcpt-$out@dest.example" --header "Subject: e2e $out" --header "From: $from" "$@"
  echo "    swaks $out (app1, From: $from): $(swaks_reply "$T/$out")"
}

# --- (a) signed with rsa + ed25519, verified by dkimpy ------------------------------------------------
# check_signed CASE: CASE's message was queued, delivered with two signatures, and dkimpy verifies both.
check_signed() {
  local c=$1
  expect_match "($c) app1 From alice@example.com -> 250 queued" "$QUEUED" "$T/$c"
  pf_wait_queue_empty >/dev/null; sink_wait "$2" 5
  f=$(sink_find "^Subject: e2e $c\$")
  expect_eq "($c) delivered with two DKIM-Signature fields" "$(grep -c '^DKIM-Signature:' "${f:-/dev/null}")" 2 "${f:-}"
  if [ -n "$f" ] && sed '1,/^X-Rcpt-Args:/d' "$f" > "$T/$c.eml" && "$PY" "$E2E_SRC/dkim_verify.py" "$T/records.txt" "$T/$c.eml" 2 > "$T/$c.dkimpy" 2>&1; then
    pass "($c) dkimpy verifies both signatures"; evidence "$T/$c.dkimpy" PASS 2
  else fail "($c) dkimpy verification"; show_tail "$T/$c.dkimpy"; show_tail "${f:-$T/none}" 40; fi
  expect_match "($c) one rsa-sha256 and one ed25519-sha256" 'a=ed25519-sha256' "$T/$c.dkimpy"
}
send a "Alice <alice@example.com>"
check_signed a 1
if [ -n "$f" ] && "$BUILD/tests/unit/opendkim_verify" "$T/records.txt" "$T/a.eml" 2 > "$T/a.opendkim" 2>&1; then
  pass "(a) libopendkim verifies both signatures"; evidence "$T/a.opendkim" PASS 2
else fail "(a) libopendkim verification"; show_tail "$T/a.opendkim"; fi
QID=$(sed -n 's/^<~  250 2\.0\.0 Ok: queued as \([0-9A-Za-z]*\).*/\1/p' "$T/a" | head -1)
note "(a) Postfix queue id ${QID:-none}"
[ -n "$QID" ] || fail "(a) no queue id in the 250 reply"
expect_match "(a) maillog: Postfix logged $QID's delivery" "$QID: to=<rcpt-a@dest\.example>, relay=127\.0\.0\.1.*status=sent" "$LOG" 3
expect_match "(a) milter logs the signing, first the same queue id $QID" \
  "sluice-milter\[[0-9]+\]: $QID: signed message from <alice@example\.com> user=app1 signatures=2" "$T/milter.err" 3

# --- (b) From: not owned ------------------------------------------------------------------------------
send b "CEO <ceo@other.example>"
expect_match "(b) From ceo@other.example -> 550 5.7.1" '^<~\* 550 5\.7\.1 From: <ceo@other\.example> is not owned by user app1' "$T/b"
# --- (c) two From: -------------------------------------------------------------------------------------
swaks_run c --tls --auth PLAIN --auth-user app1 --auth-password pw-one --from alice@example.com \
  --to rcpt-c@dest.example --data $'From: a@example.com\nFrom: b@example.com\nSubject: e2e c\n\nbody\n'
echo "    swaks c (two From:): $(swaks_reply "$T/c")"
expect_match "(c) two From: -> 550 5.6.0" '^<~\* 550 5\.6\.0 ' "$T/c"
# --- (d) unauthenticated from mynetworks ---------------------------------------------------------------
swaks_run d --from alice@example.com --to rcpt-d@dest.example --header "Subject: e2e d" --header "From: alice@example.com"
echo "    swaks d (no AUTH, mynetworks): $(swaks_reply "$T/d")"
expect_match "(d) unauthenticated -> 250 queued" '^<[-~]  250 2\.0\.0 Ok: queued as' "$T/d"
pf_wait_queue_empty >/dev/null; sink_wait 2 5
f=$(sink_find '^Subject: e2e d$')
[ -n "$f" ] && pass "(d) delivered" || fail "(d) not delivered"
expect_no_match "(d) delivered unsigned" '^DKIM-Signature:' "${f:-$T/none}"
expect_eq "the sink got only (a) and (d)" "$(sink_rcpts)" "rcpt-a@dest.example rcpt-d@dest.example"

# --- (e) milter stopped: tempfail -------------------------------------------------------------------
stop_pid "$MILTER_PID"; rc=$?
expect_eq "(e) sluice-milter exits 0 on SIGTERM" "$rc" 0 "$T/milter.err"
send e "Alice <alice@example.com>"
expect_match "(e) milter down -> 4xx" '^<~?\*\*? 4[0-9][0-9] ' "$T/e"
expect_no_match "(e) milter down -> never 250 queued" "$QUEUED" "$T/e"

# --- (f) key with mode 0644: refused at start ---------------------------------------------------------
cp "$T/keys/rsa.pem" "$T/keys/rsa644.pem"; chmod 644 "$T/keys/rsa644.pem"
write_cfg "$T/bad.yaml" "$T/keys/rsa644.pem"
timeout 20 "$MILTER" --config "$T/bad.yaml" > "$T/f.out" 2> "$T/f.err"; rc=$?
expect_eq "(f) sluice-milter exits 1" "$rc" 1 "$T/f.err"
expect_eq "(f) exactly one line on stderr" "$(grep -c . "$T/f.err")" 1 "$T/f.err"
expect_match "(f) the line names the key and its mode" "fatal: .*$T/keys/rsa644\.pem is readable by group or others \(mode 0644\)" "$T/f.err"

# --- (g) the libmilter engine ---------------------------------------------------------------------------
write_cfg "$T/libmilter.yaml" "$T/keys/rsa.pem" libmilter
expect_eq "(g) the stopped built-in engine removed its socket" "$(ls "$T/milter.sock" 2>/dev/null)" ""
milter_start "$T/libmilter.yaml" || { show_tail "$T/milter.err"; die "sluice-milter (libmilter) did not start"; }
expect_match "(g) the milter says it runs on libmilter" 'listening on unix:.*\(libmilter\)' "$T/milter.err" 3
send g "Alice <alice@example.com>"
check_signed g 3
send gb "CEO <ceo@other.example>"
expect_match "(g) From ceo@other.example -> 550 5.7.1" '^<~\* 550 5\.7\.1 From: <ceo@other\.example> is not owned by user app1' "$T/gb"
stop_pid "$MILTER_PID"; rc=$?
expect_eq "(g) sluice-milter (libmilter) exits 0 on SIGTERM" "$rc" 0 "$T/milter.err"
finish
