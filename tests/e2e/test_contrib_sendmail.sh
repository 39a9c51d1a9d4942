#!/bin/bash
# test_contrib_sendmail.sh BUILD_DIR - contrib/sendmail/sluice.mc as shipped (only the socket path
# and the smart host's port replaced) in a real, private Sendmail 8.17: the sendmail.cf it builds
# names the milter with F=T and the smart host; a message from a dkim.trusted_networks client
# (127.0.0.1, no SASL) goes through sluice-milter, is signed, and reaches the smart host (an
# smtp-sink standing in for sluice-relayd) where dkimpy verifies it.
source "$(dirname "$0")/lib.sh" "$@"

PY=/usr/bin/python3
TOOL=${DKIM_SIGN_TOOL:-$BUILD/tests/unit/dkim_sign_tool}
MILTER=$BUILD/milter/sluice-milter
[ -x "$MILTER" ] && [ -x "$TOOL" ] || die "sluice-milter / dkim_sign_tool not built"
mkdir -p "$T/keys"
"$TOOL" keygen rsa "$T/keys/rsa.pem" 2048 > "$T/rsa.txt" 2> "$T/keygen.err" || die "keygen"
echo "sel $(cat "$T/rsa.txt")" > "$T/records.txt"
cat > "$T/sluice.yaml" <<YAML
state_dir: $T/state
run_as_user: ""
milter: { listen: "unix:$T/milter.sock", metrics_listen: "" }
dkim:
  trusted_networks: [127.0.0.1/32]
  signing_table:
    - domain: example.com
      signatures: [ { selector: sel, key_file: $T/keys/rsa.pem } ]
YAML
start_bg milter "$MILTER" --config "$T/sluice.yaml"
for ((i = 0; i < 100; i++)); do [ -S "$T/milter.sock" ] && break; sleep 0.1; done
[ -S "$T/milter.sock" ] || { show_tail "$T/milter.err"; die "sluice-milter did not start"; }
smtp_sink_start
sed -e "s|unix:/var/spool/postfix/sluice/milter.sock|unix:$T/milter.sock|" -e "s|TCP \$h 10030|TCP \$h $SINK_PORT|" \
  "$E2E_SRC/../../contrib/sendmail/sluice.mc" > "$T/sluice.mc"
expect_eq "only the socket path and the port were replaced" "$(diff "$E2E_SRC/../../contrib/sendmail/sluice.mc" "$T/sluice.mc" | grep -c '^>')" 2
sm_instance sm "$(free_port)" 9 "$(cat "$T/sluice.mc")"
expect_match "sendmail.cf declares the milter with F=T" "^Xsluice, S=unix:$T/milter.sock, F=T" "$SM_DIR/sendmail.cf"
expect_match "sendmail.cf uses it" '^O InputMailFilters=sluice$' "$SM_DIR/sendmail.cf"
expect_match "sendmail.cf gives it {auth_authen} and i at MAIL FROM" '^O Milter.macros.envfrom=i, \{auth_type\}, \{auth_authen\}' "$SM_DIR/sendmail.cf"
expect_match "sendmail.cf has the smart host" '^DSesmtp:\[127\.0\.0\.1\]' "$SM_DIR/sendmail.cf"

swaks_run a --server "127.0.0.1:$SM_PORT" --from web@example.com --to bob@dest.example \
  --header "Subject: contrib sendmail" --header "From: Web <web@example.com>"
expect_match "a message from 127.0.0.1 is accepted" '^<-  250 2\.0\.0 .* Message accepted for delivery' "$T/a"
f=""; for ((i = 0; i < 100; i++)); do f=$(grep -l '^Subject: contrib sendmail' "$SINK_DIR"/* 2>/dev/null | head -1); [ -n "$f" ] && grep -q '^X-Rcpt-Args:' "$f" && break; sleep 0.1; done
sleep 0.2
expect_match "it reached the smart host, signed (trusted network, no SASL)" '^DKIM-Signature: v=1; a=rsa-sha256' "${f:-/dev/null}"
if [ -n "$f" ] && sed '1,/^X-Rcpt-Args:/d' "$f" > "$T/a.eml" && "$PY" "$E2E_SRC/dkim_verify.py" "$T/records.txt" "$T/a.eml" 1 > "$T/a.dkimpy" 2>&1; then
  pass "dkimpy verifies it"; evidence "$T/a.dkimpy" PASS 1
else fail "dkimpy verification"; show_tail "$T/a.dkimpy"; fi
finish
