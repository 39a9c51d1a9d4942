#!/bin/bash
# test_dkim_crossverify.sh BUILD_DIR - signatures made by lib/dkim verify with two independent
# implementations: dkimpy (python3-dkim, every signature) and Mail::DKIM (libmail-dkim-perl,
# rsa-sha256 only: Debian's version has no ed25519). No DNS: both verifiers get the TXT records
# from a file (dkim_verify.py, dkim_verify.pl beside this script).
#
# Keys are made fresh (RSA-2048 and Ed25519) with dkim_sign_tool, a small CLI over lib/dkim
# (tests/unit/dkim/dkim_sign_tool_main.cpp). Cases: ~2 KB messages signed RSA + Ed25519 in one
# pass with several d= and all four canonicalization pairs; a signing table choosing by From:
# domain (exact, *.wildcard, catch-all, d=% = the From: domain); a bare-LF message with the body
# fed 1 byte at a time; tampering is detected; refusals (key mode 0644, RSA-1024, no/two From:).
# Runs in a few seconds; needs no root and no network.
source "$(dirname "$0")/lib.sh" "$@"
ODKIM=$BUILD/tests/unit/opendkim_verify
[ -x "$ODKIM" ] || die "$ODKIM is not built (target opendkim_verify)"

PY=/usr/bin/python3
TOOL=${DKIM_SIGN_TOOL:-$BUILD/tests/unit/dkim_sign_tool}

# --- set-up: tool, verifiers, keys -----------------------------------------------------------------
[ -x "$TOOL" ] || die "$TOOL is not built (target dkim_sign_tool)"
"$PY" -c 'import dkim' 2>/dev/null || die "dkimpy missing: apt-get install python3-dkim"
perl -MMail::DKIM::Verifier -MNet::DNS -e 1 2>/dev/null || die "Mail::DKIM missing: apt-get install libmail-dkim-perl"

"$TOOL" keygen rsa "$T/rsa.pem" 2048 > "$T/rsa.txt" 2> "$T/keygen.err" || { show_tail "$T/keygen.err"; die "keygen rsa"; }
"$TOOL" keygen ed25519 "$T/ed.pem" > "$T/ed.txt" 2>> "$T/keygen.err" || { show_tail "$T/keygen.err"; die "keygen ed25519"; }
{ echo "rsa1 $(cat "$T/rsa.txt")"; echo "ed1 $(cat "$T/ed.txt")"; } > "$T/records.txt"
expect_eq "generated keys are mode 600" "$(stat -c %a "$T/rsa.pem") $(stat -c %a "$T/ed.pem")" "600 600"
expect_match "RSA-2048 DNS record" '^v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA' "$T/rsa.txt"
expect_match "Ed25519 DNS record" '^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$' "$T/ed.txt"

RSA="s=rsa1,key=$T/rsa.pem"
ED="s=ed1,key=$T/ed.pem"

# make_msg FILE FROM_ADDRESS [EOL]: a ~2 KB message (folded fields, 8-bit text, WSP runs, trailing
# spaces and empty lines: everything canonicalization touches).
make_msg() {
  local f=$1 from=$2 e=${3:-$'\r\n'} i
  {
    printf 'Received: from client.test.example (client.test.example [127.0.0.1])%s' "$e"
    printf '\tby relay.test.example with ESMTPSA id 4XyZ;%s\tFri, 01 Mar 2024 10:00:00 +0000%s' "$e" "$e"
    printf 'From: Sender Name <%s>%s' "$from" "$e"
    printf 'To: Rcpt One <one@dest.example>,%s  Rcpt Two <two@dest.example>%s' "$e" "$e"
    printf 'Cc: cc@dest.example%s' "$e"
    printf 'Subject: Cross-verification   of %s%s\twith a folded  continuation %s' "$from" "$e" "$e"
    printf 'Date: Fri, 01 Mar 2024 10:00:00 +0000%s' "$e"
    printf 'Message-ID: <%s.%s@test.example>%s' "$RANDOM" "$RANDOM" "$e"
    printf 'MIME-Version: 1.0%sContent-Type: text/plain; charset=utf-8%s' "$e" "$e"
    printf 'Content-Transfer-Encoding: 8bit%s%s' "$e" "$e"
    for ((i = 1; i <= 30; i++)); do
      printf 'Line %02d: caf\xc3\xa9,  two  spaces,\ta tab and a trailing space %s' "$i" "$e"
      [ $((i % 10)) = 0 ] && printf '%s' "$e"
    done
    printf '%s%s%s' "$e" "$e" "$e"
  } > "$f"
}

# verify_both NAME FILE NSIGS NRSA: dkimpy and libopendkim must pass all NSIGS signatures,
# Mail::DKIM the NRSA RSA ones (Debian's Mail::DKIM has no ed25519).
verify_both() {
  local name=$1 f=$2 n=$3 nrsa=$4
  if "$ODKIM" "$T/records.txt" "$f" "$n" > "$f.opendkim" 2>&1; then
    pass "$name: libopendkim verifies all $n signatures"; evidence "$f.opendkim" 'PASS' 8
  else fail "$name: libopendkim"; show_tail "$f.opendkim"; fi
  if "$PY" "$E2E_SRC/dkim_verify.py" "$T/records.txt" "$f" "$n" > "$f.dkimpy" 2>&1; then
    pass "$name: dkimpy verifies all $n signatures"; evidence "$f.dkimpy" 'PASS' 8
  else fail "$name: dkimpy"; show_tail "$f.dkimpy"; show_tail "$f" 60; fi
  if perl "$E2E_SRC/dkim_verify.pl" "$T/records.txt" "$f" "$nrsa" > "$f.maildkim" 2>&1; then
    pass "$name: Mail::DKIM verifies all $nrsa rsa-sha256 signatures"; evidence "$f.maildkim" 'PASS' 8
  else fail "$name: Mail::DKIM"; show_tail "$f.maildkim"; show_tail "$f" 60; fi
}

# sign NAME IN ARGS...: dkim_sign_tool sign ARGS < IN > $T/NAME.signed (stderr in $T/NAME.err).
sign() {
  local name=$1 in=$2; shift 2
  "$TOOL" sign "$@" < "$in" > "$T/$name.signed" 2> "$T/$name.err"
}

# --- (1) one pass: RSA-2048 + Ed25519, two d=, all four canonicalizations ------------------------------
make_msg "$T/a.eml" joe@example.com
note "message a.eml: $(wc -c < "$T/a.eml") bytes"
sign one-pass "$T/a.eml" \
  --sig "d=example.com,$RSA,c=relaxed/relaxed,t=$(date +%s),x=86400" \
  --sig "d=example.com,$ED,c=relaxed/relaxed,i=joe@example.com" \
  --sig "d=relay.test,$RSA,c=simple/simple" \
  --sig "d=relay.test,$ED,c=simple/simple" \
  --sig "d=relay.test,$RSA,c=relaxed/simple" \
  --sig "d=relay.test,$ED,c=simple/relaxed" || { show_tail "$T/one-pass.err"; die "(1) signing failed"; }
expect_eq "(1) six DKIM-Signature fields" "$(grep -c '^DKIM-Signature:' "$T/one-pass.signed")" 6
verify_both "(1) RSA+Ed25519, 2 domains, 4 canonicalizations" "$T/one-pass.signed" 6 3

# --- (2) signing table by From: domain ---------------------------------------------------------------
TABLE=(--rule example.com --sig "d=example.com,$RSA" --sig "d=relay.test,$ED"
       --rule '*.example.com' --sig "d=%,$ED" --sig "d=%,$RSA,c=simple/relaxed"
       --rule '*' --sig "d=relay.test,$RSA,c=relaxed/simple" --sig "d=relay.test,$ED,c=simple/simple")
for c in "example.com:example.com relay.test" "news.example.com:news.example.com news.example.com" \
         "other.org:relay.test relay.test"; do
  dom=${c%%:*} want=${c#*:}
  make_msg "$T/t-$dom.eml" "sender@$dom"
  sign "table-$dom" "$T/t-$dom.eml" "${TABLE[@]}" || { show_tail "$T/table-$dom.err"; fail "(2) From $dom: signing failed"; continue; }
  got=$(grep -A1 '^DKIM-Signature:' "$T/table-$dom.signed" | grep -oE '[ \t]d=[^;]+' | sed 's/.*d=//' | tr '\n' ' ' | sed 's/ $//')
  expect_eq "(2) From @$dom: d= chosen by the table" "$got" "$want" "$T/table-$dom.signed"
  verify_both "(2) From @$dom" "$T/table-$dom.signed" 2 1
done

# --- (3) bare-LF message, body fed one byte at a time ------------------------------------------------
make_msg "$T/lf.eml" joe@example.com $'\n'
sign lf "$T/lf.eml" --chunk 1 --sig "d=example.com,$RSA,c=simple/simple" --sig "d=example.com,$ED" \
  || { show_tail "$T/lf.err"; die "(3) signing failed"; }
expect_eq "(3) output keeps LF line ends" "$(grep -c $'\r' "$T/lf.signed")" 0
verify_both "(3) LF message, 1-byte chunks" "$T/lf.signed" 2 1

# --- (4) tampering is detected (the verifiers are not vacuous) ---------------------------------------
sed 's/^Line 07:/Line 7x:/' "$T/one-pass.signed" > "$T/tampered.eml"
if "$PY" "$E2E_SRC/dkim_verify.py" "$T/records.txt" "$T/tampered.eml" 6 > "$T/tampered.dkimpy" 2>&1; then
  fail "(4) dkimpy accepted a changed body"; show_tail "$T/tampered.dkimpy"
else expect_eq "(4) dkimpy: every signature fails on a changed body" "$(grep -c FAIL "$T/tampered.dkimpy")" 6; fi
if perl "$E2E_SRC/dkim_verify.pl" "$T/records.txt" "$T/tampered.eml" 3 > "$T/tampered.maildkim" 2>&1; then
  fail "(4) Mail::DKIM accepted a changed body"; show_tail "$T/tampered.maildkim"
else expect_eq "(4) Mail::DKIM: every RSA signature fails" "$(grep -c FAIL "$T/tampered.maildkim")" 3; fi

if "$ODKIM" "$T/records.txt" "$T/tampered.eml" 6 > "$T/tampered.opendkim" 2>&1; then
  fail "(4) libopendkim accepted a changed body"; show_tail "$T/tampered.opendkim"
else expect_eq "(4) libopendkim: every signature fails" "$(grep -c ': FAIL' "$T/tampered.opendkim")" 6; fi

# --- (5) refusals: clear errors, no output, no crash -------------------------------------------------
cp "$T/rsa.pem" "$T/rsa644.pem"; chmod 644 "$T/rsa644.pem"
sign perm "$T/a.eml" --sig "d=example.com,s=x,key=$T/rsa644.pem"; rc=$?
expect_eq "(5) key mode 0644 refused (exit 2)" "$rc" 2
expect_match "(5) key mode 0644: message" "key file $T/rsa644.pem is readable by group or others \(mode 0644\); chmod 600 it" "$T/perm.err"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$T/rsa1024.pem" 2>/dev/null; chmod 600 "$T/rsa1024.pem"
sign small "$T/a.eml" --sig "d=example.com,s=x,key=$T/rsa1024.pem"; rc=$?
expect_eq "(5) RSA-1024 refused (exit 2)" "$rc" 2
expect_match "(5) RSA-1024: message" 'has 1024 bits; at least 2048 are required' "$T/small.err"
grep -v '^From:' "$T/a.eml" > "$T/nofrom.eml"
sign nofrom "$T/nofrom.eml" --sig "d=example.com,$ED"; rc=$?
expect_eq "(5) no From: refused (exit 2)" "$rc" 2
expect_match "(5) no From: message" 'message has no From: header field; not signing' "$T/nofrom.err"
{ printf 'From: a@example.com\r\n'; cat "$T/a.eml"; } > "$T/twofrom.eml"
sign twofrom "$T/twofrom.eml" --sig "d=example.com,$ED"; rc=$?
expect_eq "(5) two From: refused (exit 2)" "$rc" 2
expect_match "(5) two From: message" 'message has 2 From: header fields; not signing' "$T/twofrom.err"
expect_eq "(5) nothing written for refused messages" "$(cat "$T"/{perm,small,nofrom,twofrom}.signed | wc -c)" 0

finish
