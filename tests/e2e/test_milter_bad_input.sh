#!/bin/bash
# test_milter_bad_input.sh BUILD_DIR - malformed mail from an authenticated client through a real
# Postfix (message_size_limit 500000) into sluice-milter. Each case ends as the table in
# sluice-milter(8) / contrib/postfix/README.md says, and the milter never crashes:
#   header line without a colon      Postfix ends the header there   -> 250, signed, verifies
#   10,000 header fields             over the milter's 1000-field cap -> 550 5.6.0
#   one 300 KB header line           Postfix cuts it (header_size_limit) -> 250, signed, verifies
#   NUL byte in a header value       Postfix cuts the value there     -> 250, signed, verifies
#   NUL bytes in the body            signed as bytes                  -> 250, signed, verifies
#   no From:                         Postfix adds one (local client)  -> 250, signed, verifies
#   two From:                        RFC 5322 3.6                     -> 550 5.6.0
#   broken MIME (no closing boundary, bad nesting)  DKIM signs bytes  -> 250, signed, verifies
#   8-bit junk in the body           signed as bytes                  -> 250, signed, verifies
#   body over message_size_limit     Postfix                          -> 552 5.3.4, the milter sees no end of message
source "$(dirname "$0")/lib.sh" "$@"

PY=/usr/bin/python3
TOOL=${DKIM_SIGN_TOOL:-$BUILD/tests/unit/dkim_sign_tool}
MILTER=$BUILD/milter/sluice-milter
[ -x "$MILTER" ] && [ -x "$TOOL" ] || die "sluice-milter / dkim_sign_tool not built"
mkdir -p "$T/keys" "$T/msg"
"$TOOL" keygen rsa "$T/keys/rsa.pem" 2048 > "$T/rsa.txt" 2> "$T/keygen.err" || die "keygen"
echo "rsa1 $(cat "$T/rsa.txt")" > "$T/records.txt"
MPORT=$(free_port)
cat > "$T/sluice.yaml" <<YAML
state_dir: $T/state
run_as_user: ""
milter: { listen: "unix:$T/milter.sock", metrics_listen: "127.0.0.1:$MPORT" }
identities:
  - { name: app1, sasl_usernames: [app1], senders: [example.com] }
dkim:
  signing_table:
    - domain: example.com
      signatures: [ { selector: rsa1, key_file: $T/keys/rsa.pem } ]
YAML
start_bg milter "$MILTER" --config "$T/sluice.yaml"; MILTER_PID=$LAST_PID
for ((i = 0; i < 100; i++)); do [ -S "$T/milter.sock" ] && break; sleep 0.1; done
[ -S "$T/milter.sock" ] || { show_tail "$T/milter.err"; die "sluice-milter did not start"; }
smtp_sink_start
pf_sasl_user pf app1 pw-one
pf_instance pf "$(free_port)" "$SINK_PORT" "
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_milters = unix:$T/milter.sock
milter_default_action = tempfail
milter_mail_macros = i {auth_type} {auth_authen} {auth_author} {mail_addr}
message_size_limit = 500000
"
note "Postfix 127.0.0.1:$PF_PORT, milter pid $MILTER_PID, sink $SINK_PORT"

# The messages (LF line ends; smtplib sends CRLF).
hdr() { printf 'From: Alice <alice@example.com>\nTo: bob@dest.example\nSubject: bad %s\nMessage-ID: <%s@example.com>\n' "$1" "$1"; }
{ hdr nocolon; printf 'This line has no colon\nX-After: still header?\n\nbody\n'; } > "$T/msg/nocolon"
{ hdr manyheaders; for ((i = 0; i < 10000; i++)); do echo "X-H-$i: v"; done; printf '\nbody\n'; } > "$T/msg/manyheaders"
{ hdr longline; printf 'X-Long: '; head -c 300000 /dev/zero | tr '\0' a; printf '\n\nbody\n'; } > "$T/msg/longline"
{ hdr nulheader; printf 'X-Nul: a\0b\n\nbody\n'; } > "$T/msg/nulheader"
{ hdr nulbody; printf '\nbefore\0after\n\0\0\nend\n'; } > "$T/msg/nulbody"
{ printf 'To: bob@dest.example\nSubject: bad nofrom\n\nbody\n'; } > "$T/msg/nofrom"
{ hdr twofrom; printf 'From: eve@example.com\n\nbody\n'; } > "$T/msg/twofrom"
{ hdr brokenmime; printf 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="zz"\n\n--zz\nContent-Type: multipart/alternative; boundary="yy"\n\n--yy\nno end\n--zz\n'; } > "$T/msg/brokenmime"
{ hdr junk; echo; head -c 20000 /dev/urandom | base64 -w76 | tr 'A-Za-z' '\200-\377'; printf '\nend\n'; } > "$T/msg/junk"
{ hdr toobig; echo; for ((i = 0; i < 9000; i++)); do echo "line $i of a body that is far over the message size limit of this instance"; done; } > "$T/msg/toobig"

submit() {  # submit NAME -> $T/NAME.reply
  "$PY" "$E2E_SRC/smtp_submit.py" "127.0.0.1:$PF_PORT" app1 pw-one alice@example.com "rcpt-$1@dest.example" "$T/msg/$1" > "$T/$1.reply" 2>&1
  echo "    $1: $(cat "$T/$1.reply")"
}
signed_ok() {  # signed_ok NAME: delivered, signed, dkimpy verifies
  local f=""
  for ((i = 0; i < 100; i++)); do f=$(grep -l "^X-Rcpt-Args: <rcpt-$1@" "$SINK_DIR"/* 2>/dev/null | head -1); [ -n "$f" ] && break; sleep 0.1; done
  sleep 0.2
  if [ -n "$f" ] && sed '1,/^X-Rcpt-Args:/d' "$f" > "$T/$1.eml" && "$PY" "$E2E_SRC/dkim_verify.py" "$T/records.txt" "$T/$1.eml" 1 > "$T/$1.dkimpy" 2>&1; then
    pass "($1) delivered signed, dkimpy verifies"; evidence "$T/$1.dkimpy" PASS 1
  else fail "($1) delivered signed and verified"; show_tail "$T/$1.dkimpy"; fi
}
for m in nocolon nulbody brokenmime junk; do
  submit $m
  expect_match "($m) -> 250" '^250 2\.0\.0 Ok: queued' "$T/$m.reply"
  signed_ok $m
done
for m in manyheaders twofrom; do
  submit $m
  expect_match "($m) -> 550 5.6.0" '^550 5\.6\.0 ' "$T/$m.reply"
done
# Postfix repairs these before the milter sees them: it cuts a header value at a NUL byte, adds
# the missing From: (from the envelope sender) for local/authenticated clients
# (local_header_rewrite_clients), and cuts a header block over header_size_limit (100 KB). The
# milter then signs what Postfix delivers.
for m in nulheader nofrom longline; do
  submit $m
  expect_match "($m) -> 250 (repaired by Postfix)" '^250 2\.0\.0 Ok: queued' "$T/$m.reply"
  signed_ok $m
done
expect_match "(nofrom) the From: Postfix added is the envelope sender" '^From: alice@example\.com' "$T/nofrom.eml"
submit toobig
expect_match "(toobig) -> 552 5.3.4 from Postfix" '^552 5\.3\.4 ' "$T/toobig.reply"
_is_our_child "$MILTER_PID" && pass "sluice-milter is still running" || fail "sluice-milter died"
curl -s "http://127.0.0.1:$MPORT/metrics" > "$T/metrics.txt"
expect_match "metrics count the 2 malformed messages" '^sluice_milter_rejected_malformed_total 2$' "$T/metrics.txt"
expect_match "metrics count 7 signed messages" '^sluice_milter_signed_messages_total 7$' "$T/metrics.txt"
finish
