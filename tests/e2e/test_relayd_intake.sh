#!/bin/bash
# test_relayd_intake.sh BUILD_DIR - sluice-relayd's intake with swaks over plain, STARTTLS (587-style)
# and implicit TLS (465-style), certificates from a test CA made here; users from `sluicectl user
# add`. Every reply code of issue 4, the open-relay battery and the queue admin commands:
#   relay listener: trusted 127.0.0.1 -> 250 with the queue id (also in Received: and the index);
#     untrusted 127.0.0.2 -> 550 5.7.1 for every address trick; every trick again with a wrong
#     password on 587, 465 (535 5.7.8, then 530 5.7.0 at MAIL) and the relay listener (AUTH 502,
#     RCPT 5xx, DATA 503): nothing from those clients in the queue
#   submission: STARTTLS offered, AUTH only after it (538 5.7.11 before), 530 5.7.0 without AUTH,
#     535 5.7.8 wrong key, 421 4.7.0 after too many failures, 553 5.7.1 sender not owned,
#     552 5.3.4 SIZE/too big, 503 5.5.1 bad sequence, 452 4.5.3 too many recipients, TLS < 1.2 refused
#     DSN: MAIL (ENVID) and RCPT (a 500-octet ORCPT) over 512 octets -> queued; other commands
#     over 512 octets and MAIL/RCPT over 2048 -> 500 5.5.2
#   submission without TLS: swaks --auth never sends AUTH (not offered); STARTTLS without AUTH -> 530
#   smtps: implicit TLS + AUTH LOGIN -> 250; wrong key 535 5.7.8, no AUTH 530 5.7.0, plaintext -> no reply
#   command lines: 512 octets pass, 513 and a 200,000-octet line -> 500 5.5.2, the session in step
#   421 4.7.0 per-client connection limit; sluicectl queue list/show/hold/release/delete/totals
#   a second instance: max_connections 2 -> 421 4.3.2; command_timeout 1 s and data_timeout 2 s ->
#     421 4.4.2 and closed, the stalled message not queued
source "$(dirname "$0")/lib.sh" "$@"

# --- a test CA and a server certificate signed by it ------------------------------------------------
mkdir -p "$T/ca" "$T/state"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Sluice Test CA" -keyout "$T/ca/ca.key" -out "$T/ca/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=relay.test.example" -keyout "$T/ca/relay.key" -out "$T/ca/relay.csr" 2>/dev/null
printf 'subjectAltName=DNS:relay.test.example\n' > "$T/ca/ext"
openssl x509 -req -in "$T/ca/relay.csr" -CA "$T/ca/ca.crt" -CAkey "$T/ca/ca.key" -CAcreateserial -days 2 \
  -extfile "$T/ca/ext" -out "$T/ca/relay.crt" 2>/dev/null || die "test CA"
chmod 600 "$T/ca/relay.key"

RP=$(free_port) SP=$(free_port) TP=$(free_port)
cat > "$T/sluice.yaml" <<YAML
state_dir: $T/state
run_as_user: ""
log: { target: stderr, level: info }
relayd:
  listen: 127.0.0.1:$RP
  trusted_networks: [127.0.0.1/32]
  submission_listen: 127.0.0.1:$SP
  smtps_listen: 127.0.0.1:$TP
  tls_cert_file: $T/ca/relay.crt
  tls_key_file: $T/ca/relay.key
  hostname: relay.test.example
  max_message_size: 200k
  max_recipients: 3
  max_connections_per_client: 20
  auth_failures: 3
  metrics_listen: ""
identities:
  - { name: app1, sasl_usernames: [app1], senders: [example.com] }
dkim:
  signing_table:
    - domain: example.com
      signatures: [ { selector: sel1, key_file: $T/dkim.pem } ]
YAML
"$BUILD/sluicectl/sluicectl" dkim keygen --domain example.com --selector sel1 --out "$T/dkim.pem" > "$T/keygen.out" 2>&1 || die "dkim keygen"
echo "sel1 $(sed -n 's/^sel1._domainkey.example.com. IN TXT ( \(.*\) )$/\1/p' "$T/keygen.out" | sed 's/" "//g; s/"//g')" > "$T/records.txt"
sluicectl_run useradd.out --config "$T/sluice.yaml" user add app1 --domains example.com
expect_eq "sluicectl user add app1" "$SLUICECTL_RC" 0 "$T/useradd.out"
KEY=$(grep -oE 'sk_[a-z2-7]+' "$T/useradd.out" | head -1)
[ -n "$KEY" ] || die "no key printed by user add"
sluice_relayd_start "$T/sluice.yaml" || die "sluice-relayd did not start"
note "relayd: relay 127.0.0.1:$RP, submission :$SP, smtps :$TP, pid $RELAYD_PID"

# --- relay listener ------------------------------------------------------------------------------------
swaks_run r1 --server "127.0.0.1:$RP" --from a@example.com --to bob@dest.example --header "Subject: relay r1"
expect_match "trusted client on the relay listener -> 250 with the queue id" '^<-  250 2\.0\.0 Ok: queued as [0-9A-Z]{16}$' "$T/r1"
ID=$(grep -oE 'queued as [0-9A-Z]{16}' "$T/r1" | awk '{print $3}')
sluicectl_run show.out --config "$T/sluice.yaml" queue show "$ID"
expect_match "sluicectl queue show finds it, recipient queued" "rcpt 0: <bob@dest.example> queued" "$T/show.out"
SPOOL=$(sed -n 's/^spool file: //p' "$T/show.out")
expect_match "the spool file starts with our Received: header naming the queue id" "by relay\.test\.example \(sluice-relayd\) with ESMTP id $ID;" "${SPOOL:-/dev/null}"
expect_match "relayd logs the queue id first, Postfix style" "sluice-relayd\[[0-9]+\]: $ID: client=127\.0\.0\.1, from=<a@example\.com>" "$RELAYD_ERR"
# Open-relay battery from an untrusted address (127.0.0.2): every trick, none relayed.
n=0
for rcpt in 'bob@dest.example' 'user%other.example@dest.example' '"user@other.example"@dest.example' \
            '@hop1.example,@hop2.example:user@dest.example' 'other.example!user@dest.example' \
            'user@dest.example.' 'user@[192.0.2.1]' 'postmaster@relay.test.example'; do
  n=$((n + 1))
  swaks_run "open$n" --server "127.0.0.1:$RP" --local-interface 127.0.0.2 --from x@spammer.example --to "$rcpt" --quit-after RCPT
  if grep -qE '^<\*\* (550|553|501) 5\.[0-9]\.[0-9]' "$T/open$n" && ! grep -qE '^<-  250 2\.1\.5' "$T/open$n"; then
    pass "open relay: RCPT TO:<$rcpt> from an untrusted client refused ($(swaks_reply "$T/open$n"))"
  else fail "open relay: RCPT TO:<$rcpt> was not refused"; show_tail "$T/open$n"; fi
done
# ... and every trick again with a wrong password: on 587 (STARTTLS) and 465 the failed AUTH leaves
# the session unauthenticated, so nothing gets past MAIL; on the relay listener (which offers no
# AUTH) an untrusted client's AUTH attempt changes nothing and RCPT is refused.
TRICKS=('bob@dest.example' 'user%other.example@dest.example' '"user@other.example"@dest.example'
        '@hop1.example,@hop2.example:user@dest.example' 'other.example!user@dest.example'
        'user@dest.example.' 'user@[192.0.2.1]' 'postmaster@relay.test.example')
n=0
for rcpt in "${TRICKS[@]}"; do
  n=$((n + 1))
  for port in "$SP" "$TP"; do
    if [ "$port" = "$SP" ]; then tls=--tls name="587 open-badpw$n" out=open-badpw$n src=127.0.2.$n
    else tls=--tlsc name="465 open-badpw$n" out=open-badpw465-$n src=127.0.3.$n; fi
    swaks_run "$out" --server "127.0.0.1:$port" --local-interface "$src" $tls --auth-optional PLAIN --auth-user app1 \
      --auth-password "wrong$n" --from a@example.com --to "$rcpt" --quit-after RCPT
    if grep -qE '^<~\* 535 5\.7\.8 ' "$T/$out" && ! grep -qE '^<~  250 2\.1\.5' "$T/$out" && ! grep -q 'queued as' "$T/$out"; then
      pass "open relay, wrong password on ${name%% *}: RCPT TO:<$rcpt> not accepted ($(swaks_reply "$T/$out"))"
    else fail "open relay, wrong password on ${name%% *}: RCPT TO:<$rcpt>"; show_tail "$T/$out"; fi
  done
done
python3 - "$RP" "$T/open-relay-badpw" "${TRICKS[@]}" > "$T/open-relay-badpw.out" 2>&1 <<'PYEOF'
import socket, sys
port, out, tricks = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
for i, rcpt in enumerate(tricks):
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=("127.0.4.%d" % (i + 1), 0))
    f = s.makefile("rb")
    def reply():
        while True:
            l = f.readline().decode().rstrip("\r\n")
            if len(l) < 4 or l[3] != "-": return l
    reply(); s.sendall(b"EHLO c.example\r\n"); reply()
    s.sendall(b"AUTH PLAIN AGFwcDEAd3Jvbmc=\r\n"); auth = reply()
    s.sendall(b"MAIL FROM:<x@spammer.example>\r\n"); mail = reply()
    s.sendall(("RCPT TO:<%s>\r\n" % rcpt).encode()); r = reply()
    s.sendall(b"DATA\r\n"); d = reply()
    if d.startswith("354"):
        s.sendall(b"Subject: relay?\r\n\r\nbody\r\n.\r\n"); d += " / " + reply()
    print("%s | AUTH %s | MAIL %s | RCPT %s | DATA %s" % (rcpt, auth[:9], mail[:9], r, d))
    s.close()
PYEOF
n=0
for rcpt in "${TRICKS[@]}"; do
  n=$((n + 1))
  line=$(grep -F -- "$rcpt | " "$T/open-relay-badpw.out" | head -1)
  if [[ $line == *"| MAIL 250 2.1.0 | RCPT 5"[05][0-9]" 5."* ]] && [[ $line != *"queued as"* ]]; then
    pass "open relay, AUTH with a wrong password on the relay listener from 127.0.4.$n: RCPT TO:<$rcpt> refused (${line#*| RCPT })"
  else fail "open relay, wrong password on the relay listener: RCPT TO:<$rcpt>: ${line:-no reply}"; show_tail "$T/open-relay-badpw.out"; fi
done

sluicectl_run open-queue.out --config "$T/sluice.yaml" queue list --json
expect_no_match "open relay: nothing in the queue from any battery client (127.0.0.2, 127.0.2-4.x)" '"client":"127\.0\.(0\.2|[2-4]\.[0-9]+)"' "$T/open-queue.out"

# --- submission (STARTTLS) -----------------------------------------------------------------------------
swaks_run ehlo --server "127.0.0.1:$SP" --quit-after EHLO
expect_match "587: STARTTLS offered" '^<-  250.STARTTLS' "$T/ehlo"
expect_no_match "587: no AUTH before TLS" '^<-  250.AUTH' "$T/ehlo"
for ext in PIPELINING 'SIZE 204800' 8BITMIME SMTPUTF8 ENHANCEDSTATUSCODES DSN CHUNKING; do
  expect_match "EHLO advertises $ext" "^<-  250.$ext\$" "$T/ehlo"
done
swaks_run ehlo-tls --server "127.0.0.1:$SP" --tls --quit-after EHLO --tls-ca-path "$T/ca/ca.crt" --tls-verify
expect_match "587: AUTH PLAIN LOGIN after STARTTLS (certificate verified against the test CA)" '^<~  250.AUTH PLAIN LOGIN' "$T/ehlo-tls"
cat > "$T/auth-clear.in" <<'EOF'
b'EHLO c.example\r\n'
b'AUTH PLAIN AGFwcDEAeA==\r\n'
b'MAIL FROM:<a@example.com>\r\n'
EOF
python3 "$E2E_SRC/smtp_raw.py" "127.0.0.1:$SP" "$T/auth-clear.in" > "$T/auth-clear" 2>&1
expect_match "AUTH in the clear -> 538 5.7.11" '^<- 538 5\.7\.11 ' "$T/auth-clear"
expect_match "MAIL without AUTH -> 530 5.7.0" '^<- 530 5\.7\.0 ' "$T/auth-clear"
sub() { local out=$1; shift; swaks_run "$out" --server "127.0.0.1:$SP" --tls --auth PLAIN --auth-user app1 --auth-password "$KEY" "$@"; }
sub s1 --from alice@example.com --to carol@dest.example --header "Subject: submission s1"
expect_match "587 STARTTLS + AUTH PLAIN -> 235" '^<~  235 2\.7\.0 ' "$T/s1"
expect_match "587: queued" '^<~  250 2\.0\.0 Ok: queued as [0-9A-Z]{16}' "$T/s1"
S1=$(grep -oE 'queued as [0-9A-Z]{16}' "$T/s1" | awk '{print $3}')
S1F="$T/state/spool/${S1: -2}/$S1"
expect_match "a direct submission is DKIM-signed (dkim.signing_table, as the milter signs)" '^DKIM-Signature: v=1; a=rsa-sha256' "$S1F"
if /usr/bin/python3 "$E2E_SRC/dkim_verify.py" "$T/records.txt" "$S1F" 1 > "$T/s1.dkimpy" 2>&1; then
  pass "dkimpy verifies the signature of the queued message"; evidence "$T/s1.dkimpy" PASS 1
else fail "dkimpy verification of the queued message"; show_tail "$T/s1.dkimpy"; fi
sub s5 --from alice@example.com --to carol@dest.example --header "From: CEO <ceo@other.example>"
expect_match "From: header not owned by the user -> 550 5.7.1 after the data" '^<~\* 550 5\.7\.1 from: <ceo@other\.example> is not owned by user app1' "$T/s5"
sub s2 --from ceo@other.example --to carol@dest.example
expect_match "sender not owned -> 553 5.7.1" '^<~\* 553 5\.7\.1 .*not owned by user app1' "$T/s2"
head -c 300000 /dev/zero | tr '\0' a | fold -w 76 > "$T/big.body"
sub s3 --from alice@example.com --to carol@dest.example --body @"$T/big.body"
expect_match "message over max_message_size -> 552 5.3.4" '^<~\* 552 5\.3\.4 ' "$T/s3"
head -c 1200 /dev/zero | tr '\0' b > "$T/longline.body"
sub s6 --from alice@example.com --to carol@dest.example --body @"$T/longline.body"
expect_match "a 1,200-character line -> 550 5.6.0 (RFC 5321 4.5.3.1.6)" '^<~\* 550 5\.6\.0 .*longer than 998' "$T/s6"
sub s4 --from alice@example.com --to 'r1@dest.example,r2@dest.example,r3@dest.example,r4@dest.example'
expect_match "4th recipient over max_recipients -> 452 4.5.3" '^<~\* 452 4\.5\.3 ' "$T/s4"
expect_match "... and the first three are queued" '^<~  250 2\.0\.0 Ok: queued' "$T/s4"
cat > "$T/seq.in" <<'EOF'
b'EHLO c.example\r\n'
b'DATA\r\n'
b'RCPT TO:<x@dest.example>\r\n'
b'MAIL FROM:<a@example.com> SIZE=999999999\r\n'
b'BDAT 10 LAST\r\n0123456789'
b'NOSUCHCOMMAND\r\n'
EOF
python3 "$E2E_SRC/smtp_raw.py" "127.0.0.1:$RP" "$T/seq.in" > "$T/seq" 2>&1
expect_eq "DATA / RCPT / BDAT out of sequence -> 503 5.5.1 three times" "$(grep -c '^<- 503 5\.5\.1' "$T/seq")" 3 "$T/seq"
expect_match "MAIL with SIZE over the limit -> 552 5.3.4" '^<- 552 5\.3\.4 ' "$T/seq"
expect_match "unknown command -> 500 5.5.2" '^<- 500 5\.5\.2 ' "$T/seq"
# DSN parameters make MAIL and RCPT longer than 512 octets (RFC 3461 section 5: +100 for ENVID,
# +500 for NOTIFY/ORCPT); every other command stays at 512.
python3 - "$T/dsnlong.in" > "$T/dsnlong.len" <<'PYEOF'
import sys
envid = "+2B" * 100                                  # 100 octets ("+" each), xtext-encoded: 300
sender = "l" * 64 + "@" + ".".join(["d" * 60] * 3) + ".ex"  # a 252-octet path (256 is the limit)
orcpt = "o" * 200 + "+2Bsuffix" + "p" * 280 + "@legacy.example"   # 500 octets decoded
lines = ["EHLO c.example", "MAIL FROM:<%s> RET=HDRS ENVID=%s" % (sender, envid),
         "RCPT TO:<dsn@dest.example> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;%s" % orcpt,
         "DATA", "Subject: long dsn parameters\r\n\r\nbody\r\n.",
         "NOOP " + "x" * 600, "RCPT TO:<dsn2@dest.example> ORCPT=rfc822;" + "q" * 2100, "QUIT"]
with open(sys.argv[1], "w") as f:
    for l in lines: f.write(repr((l + "\r\n").encode()) + "\n")
print("MAIL %d RCPT %d" % (len(lines[1]) + 2, len(lines[2]) + 2))
PYEOF
python3 "$E2E_SRC/smtp_raw.py" "127.0.0.1:$RP" "$T/dsnlong.in" > "$T/dsnlong" 2>&1
expect_match "the MAIL and RCPT lines of the DSN case are over 512 octets" '^MAIL (5[2-9][0-9]|[6-9][0-9][0-9]) RCPT (5[2-9][0-9]|[6-9][0-9][0-9])$' "$T/dsnlong.len"
expect_eq "MAIL over 512 octets with ENVID, RCPT with a 500-octet ORCPT -> 250, 250, 354, 250 queued" \
  "$(grep -E '^<- (250 2\.1\.[05] Ok|354 |250 2\.0\.0 Ok: queued as)' "$T/dsnlong" | cut -c4-6 | tr '\n' ' ')" "250 250 354 250 " "$T/dsnlong"
expect_eq "a 600-octet NOOP and a 2,100-octet RCPT -> 500 5.5.2 line too long" "$(grep -c '^<- 500 5\.5\.2 Error: line too long' "$T/dsnlong")" 2 "$T/dsnlong"
DSNID=$(grep -oE 'queued as [0-9A-Z]{16}' "$T/dsnlong" | awk '{print $3}')
python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT orcpt FROM recipients WHERE message_id = ?", (sys.argv[2],)).fetchone()[0])' \
  "$T/state/queue.db" "${DSNID:-none}" > "$T/dsnlong.orcpt" 2>&1
expect_match "the ORCPT is kept whole (decoded) in the queue index" "^rfc822;o{200}\+suffixp{280}@legacy\.example$" "$T/dsnlong.orcpt"
for i in 1 2 3; do
  swaks_run "bad$i" --server "127.0.0.1:$SP" --local-interface 127.0.0.3 --tls --auth PLAIN --auth-user app1 --auth-password "nope$i" --quit-after AUTH
done
expect_match "wrong key -> 535 5.7.8" '^<~\* 535 5\.7\.8 ' "$T/bad1"
swaks_run bad4 --server "127.0.0.1:$SP" --local-interface 127.0.0.3 --tls --auth PLAIN --auth-user app1 --auth-password "$KEY" --quit-after AUTH
expect_match "after auth_failures failures from one address even the right key -> 421 4.7.0" '^<~\* 421 4\.7\.0 ' "$T/bad4"
if echo | timeout 10 openssl s_client -connect "127.0.0.1:$SP" -starttls smtp -tls1_1 > "$T/tls11" 2>&1; then
  grep -q 'Cipher is (NONE)' "$T/tls11" && pass "TLS 1.1 refused" || { fail "TLS 1.1 accepted"; show_tail "$T/tls11"; }
else pass "TLS 1.1 refused (openssl s_client failed the handshake)"; fi

# --- smtps (implicit TLS) ---------------------------------------------------------------------------------
swaks_run t1 --server "127.0.0.1:$TP" --tlsc --auth LOGIN --auth-user app1 --auth-password "$KEY" \
  --from alice@example.com --to dave@dest.example --header "Subject: smtps t1"
expect_match "465 implicit TLS + AUTH LOGIN -> queued" '^<~  250 2\.0\.0 Ok: queued as [0-9A-Z]{16}' "$T/t1"

# ... and its failure cases: a wrong key, no AUTH at all, a client speaking plaintext to 465
swaks_run t2 --server "127.0.0.1:$TP" --local-interface 127.0.0.4 --tlsc --auth LOGIN --auth-user app1 --auth-password wrong \
  --from alice@example.com --to dave@dest.example
expect_match "465: wrong key -> 535 5.7.8" '^<~\* 535 5\.7\.8 ' "$T/t2"
expect_no_match "465: wrong key -> nothing queued" 'queued as' "$T/t2"
swaks_run t3 --server "127.0.0.1:$TP" --tlsc --from alice@example.com --to dave@dest.example
expect_match "465: MAIL without AUTH -> 530 5.7.0" '^<~\* 530 5\.7\.0 ' "$T/t3"
expect_no_match "465: without AUTH -> nothing queued" 'queued as' "$T/t3"
swaks_run t3e --server "127.0.0.1:$TP" --tlsc --quit-after EHLO
expect_match "465: AUTH PLAIN LOGIN offered inside the implicit TLS session" '^<~  250.AUTH PLAIN LOGIN' "$T/t3e"
printf '%s\n' "b'EHLO c.example\\r\\n'" "b'MAIL FROM:<a@example.com>\\r\\n'" > "$T/t4.in"
python3 "$E2E_SRC/smtp_raw.py" "127.0.0.1:$TP" "$T/t4.in" > "$T/t4" 2>&1
expect_no_match "465: a plaintext client gets no SMTP reply at all (TLS first)" '^<- [0-9]{3}' "$T/t4"
# 587: AUTH is not offered before STARTTLS, a client that insists gets no further, and TLS alone
# (no AUTH) is not enough to relay.
swaks_run s7 --server "127.0.0.1:$SP" --auth PLAIN --auth-user app1 --auth-password "$KEY" \
  --from alice@example.com --to carol@dest.example
expect_no_match "587: swaks --auth without TLS: AUTH never offered, so never sent" '^ -> AUTH' "$T/s7"
expect_no_match "587: ... and nothing queued" 'queued as' "$T/s7"
swaks_run s8 --server "127.0.0.1:$SP" --tls --from alice@example.com --to carol@dest.example
expect_match "587: after STARTTLS but without AUTH, MAIL -> 530 5.7.0" '^<~\* 530 5\.7\.0 ' "$T/s8"
expect_no_match "587: ... and nothing queued" 'queued as' "$T/s8"

# --- too-long command lines ----------------------------------------------------------------------------
# 512 octets (CRLF included) is the limit of an ordinary command (RFC 5321 4.5.3.1.4): 512 passes,
# 513 does not; a 200,000-octet line (several reads, discarded as it streams in) gets one 500 and
# the session stays in step.
python3 - "$T/longcmd.in" <<'PYEOF'
import sys
lines = ["EHLO c.example", "NOOP " + "x" * 505, "NOOP " + "x" * 506, "HELP " + "y" * 200000,
         "MAIL FROM:<a@example.com>", "RCPT TO:<" + "z" * 3000 + "@dest.example>", "RCPT TO:<b@dest.example>", "QUIT"]
with open(sys.argv[1], "w") as f:
    for l in lines: f.write(repr((l + "\r\n").encode()) + "\n")
PYEOF
python3 "$E2E_SRC/smtp_raw.py" "127.0.0.1:$RP" "$T/longcmd.in" > "$T/longcmd" 2>&1
expect_eq "EHLO, NOOP of 512 / 513 octets, a 200,000-octet HELP, MAIL, a 3,000-octet RCPT, RCPT -> 250 250 500 500 250 500 250" \
  "$(grep -E '^<- [0-9]{3} ' "$T/longcmd" | grep -vE '^<- (220|221) ' | cut -c4-6 | tr '\n' ' ')" "250 250 500 500 250 500 250 " "$T/longcmd"
expect_eq "every too-long line -> 500 5.5.2 Error: line too long" "$(grep -c '^<- 500 5\.5\.2 Error: line too long' "$T/longcmd")" 3 "$T/longcmd"

# --- per-client connection limit -------------------------------------------------------------------------
python3 - "$RP" > "$T/limit" 2>&1 <<'EOF'
import socket, sys, time
socks = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(20)]
time.sleep(0.3)
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(3)
print(s.recv(512).decode().strip())
EOF
expect_match "21st session from one address -> 421 4.7.0" '^421 4\.7\.0 ' "$T/limit"

# --- queue administration -----------------------------------------------------------------------------------
sluicectl_run totals.out --config "$T/sluice.yaml" queue totals --json
expect_match "queue totals --json: messages and recipients by state" '"by_state":\{"queued":[0-9]+\}' "$T/totals.out"
sluicectl_run hold.out --config "$T/sluice.yaml" queue hold "$ID"
expect_match "queue hold" "$ID: 1 recipient\(s\) held" "$T/hold.out"
sluicectl_run list.out --config "$T/sluice.yaml" queue list --json
expect_match "queue list --json shows it held" "\"id\":\"$ID\".*\"state\":\"held\"" "$T/list.out"
sluicectl_run release.out --config "$T/sluice.yaml" queue release "$ID"
expect_match "queue release" "$ID: 1 recipient\(s\) released" "$T/release.out"
sluicectl_run delete.out --config "$T/sluice.yaml" queue delete "$ID"
expect_match "queue delete" "$ID: deleted" "$T/delete.out"
[ ! -e "$SPOOL" ] && pass "queue delete removed the spool file" || fail "spool file $SPOOL still there"
_is_our_child "$RELAYD_PID" && pass "sluice-relayd still running" || fail "sluice-relayd died"

# --- SIGHUP in the middle of a session, then SIGTERM ------------------------------------------------------
python3 - "$RP" "$RELAYD_PID" > "$T/signals.out" 2>&1 <<'PYEOF'
import os, signal, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port), timeout=10); f = s.makefile("rb")
def reply():
    while True:
        l = f.readline().decode().rstrip("\r\n")
        if len(l) < 4 or l[3] != "-": return l
reply(); s.sendall(b"EHLO x\r\n"); reply()
s.sendall(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@dest.example>\r\n"); reply(); reply()
os.kill(pid, signal.SIGHUP); time.sleep(0.5)        # reload while the transaction is open
s.sendall(b"DATA\r\n"); print("after SIGHUP, DATA:", reply())
s.sendall(b"Subject: hup\r\n\r\nbody\r\n.\r\n"); print("after SIGHUP, end of data:", reply())
s2 = socket.create_connection(("127.0.0.1", port), timeout=10); f2 = s2.makefile("rb")
def reply2():
    while True:
        l = f2.readline().decode().rstrip("\r\n")
        if len(l) < 4 or l[3] != "-": return l
reply2(); s2.sendall(b"EHLO y\r\n"); reply2()
s2.sendall(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<c@dest.example>\r\n"); reply2(); reply2()
os.kill(pid, signal.SIGTERM); time.sleep(0.3)       # stop: no new sessions, open ones told to go
try:
    socket.create_connection(("127.0.0.1", port), timeout=2); print("new connection: accepted")
except OSError as e:
    print("new connection: refused")
s.sendall(b"NOOP\r\n"); print("open session after SIGTERM:", reply())
s2.sendall(b"DATA\r\n"); print("transaction in flight at SIGTERM, DATA:", reply2())
s2.sendall(b"Subject: term\r\n\r\nbody\r\n.\r\n"); print("transaction in flight at SIGTERM, end of data:", reply2())
s2.sendall(b"MAIL FROM:<a@example.com>\r\n"); print("next transaction after SIGTERM:", reply2())
PYEOF
expect_match "SIGHUP: the open transaction goes on (354)" "after SIGHUP, DATA: 354" "$T/signals.out"
expect_match "SIGHUP: ... and is queued (no session dropped)" "after SIGHUP, end of data: 250 2\.0\.0 Ok: queued as" "$T/signals.out"
expect_match "SIGHUP: relayd logs the reload" "reloaded .*sluice\.yaml \(TLS certificate re-read\)" "$RELAYD_ERR"
expect_match "SIGTERM: no new sessions" "new connection: refused" "$T/signals.out"
expect_match "SIGTERM: the session in flight is still served" "open session after SIGTERM: 250 2\.0\.0 Ok" "$T/signals.out"
expect_match "SIGTERM: a transaction in flight (MAIL, RCPT given) goes on to DATA" "in flight at SIGTERM, DATA: 354" "$T/signals.out"
expect_match "SIGTERM: ... and its message is queued" "in flight at SIGTERM, end of data: 250 2\.0\.0 Ok: queued as" "$T/signals.out"
expect_match "SIGTERM: after it, the session is told to come back (421 4.3.2)" "next transaction after SIGTERM: 421 4\.3\.2" "$T/signals.out"
for ((i = 0; i < 150; i++)); do _is_our_child "$RELAYD_PID" || break; sleep 0.1; done
_is_our_child "$RELAYD_PID" && fail "relayd still running 15 s after SIGTERM" || pass "SIGTERM: relayd exited within its 10 s bound"

# --- a second instance: relayd.max_connections 2, command_timeout 1 s, data_timeout 2 s ------------------
LP=$(free_port)
sed -e "s|^  listen: .*|  listen: 127.0.0.1:$LP|" -e '/^  submission_listen:/d' -e '/^  smtps_listen:/d' \
    -e "s|^  max_connections_per_client: .*|  max_connections_per_client: 20\n  max_connections: 2\n  command_timeout: 1s\n  data_timeout: 2s|" \
    "$T/sluice.yaml" > "$T/limits.yaml"
sluice_relayd_start "$T/limits.yaml" || die "sluice-relayd (limits.yaml) did not start"
python3 - "$LP" > "$T/limits.out" 2>&1 <<'PYEOF'
import socket, sys, time
port = int(sys.argv[1])
def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=10); return s, s.makefile("rb")
def reply(f):
    while True:
        l = f.readline().decode().rstrip("\r\n")
        if len(l) < 4 or l[3] != "-": return l
def closed(s, f):   # after the last reply: does the server close (EOF) within 5 s?
    s.settimeout(5)
    try: return f.read(1) == b""
    except OSError: return True
# max_connections: two sessions in, the third is told 421 4.3.2 and closed; a slot freed is reusable
a, fa = conn(); print("1st:", reply(fa))
b, fb = conn(); print("2nd:", reply(fb))
c, fc = conn(); print("3rd:", reply(fc)); print("3rd closed:", closed(c, fc))
a.sendall(b"QUIT\r\n"); reply(fa); a.close(); b.sendall(b"QUIT\r\n"); reply(fb); b.close(); time.sleep(0.3)
# command_timeout: a client that says nothing after the greeting
a, fa = conn(); reply(fa); t = time.time()
print("command timeout:", reply(fa), "after %.1f s" % (time.time() - t)); print("command timeout closed:", closed(a, fa))
# ... and one that stops in the middle of a command line
a, fa = conn(); reply(fa); a.sendall(b"EHLO x\r\nMAIL FROM:<a@exa"); reply(fa); t = time.time()
print("partial command timeout:", reply(fa), "after %.1f s" % (time.time() - t)); print("partial command closed:", closed(a, fa))
# data_timeout: a client that stops in the middle of DATA (longer than command_timeout: data_timeout rules)
a, fa = conn(); reply(fa)
a.sendall(b"EHLO x\r\n"); reply(fa)
a.sendall(b"MAIL FROM:<a@example.com>\r\n"); reply(fa)
a.sendall(b"RCPT TO:<timeout@dest.example>\r\n"); reply(fa)
a.sendall(b"DATA\r\n"); print("DATA:", reply(fa))
a.sendall(b"Subject: stalled\r\n\r\nhalf a bo"); t = time.time()
print("data timeout:", reply(fa), "after %.1f s" % (time.time() - t)); print("data timeout closed:", closed(a, fa))
PYEOF
expect_match "max_connections 2: 1st session greeted" '^1st: 220 ' "$T/limits.out"
expect_match "max_connections 2: 2nd session greeted" '^2nd: 220 ' "$T/limits.out"
expect_match "max_connections 2: 3rd session -> 421 4.3.2" '^3rd: 421 4\.3\.2 ' "$T/limits.out"
expect_match "max_connections 2: ... and closed" '^3rd closed: True' "$T/limits.out"
expect_match "relayd logs the refusal naming relayd.max_connections" 'refused connection from 127\.0\.0\.1: 2 sessions \(relayd\.max_connections\)' "$RELAYD_ERR"
expect_match "command_timeout 1 s: a silent client -> 421 4.4.2 after about 1 s" '^command timeout: 421 4\.4\.2 .* after (0\.9|1\.[0-9]|2\.[0-4]) s$' "$T/limits.out"
expect_match "command_timeout: ... and closed" '^command timeout closed: True' "$T/limits.out"
expect_match "command_timeout: a half-sent command line -> 421 4.4.2" '^partial command timeout: 421 4\.4\.2 .* after (0\.9|1\.[0-9]|2\.[0-4]) s$' "$T/limits.out"
expect_match "command_timeout: ... and closed" '^partial command closed: True' "$T/limits.out"
expect_match "data_timeout: DATA -> 354" '^DATA: 354 ' "$T/limits.out"
expect_match "data_timeout 2 s: a client stalled in DATA -> 421 4.4.2 after about 2 s (not command_timeout's 1 s)" '^data timeout: 421 4\.4\.2 .* after (1\.9|2\.[0-9]|3\.[0-4]) s$' "$T/limits.out"
expect_match "data_timeout: ... and closed" '^data timeout closed: True' "$T/limits.out"
sluicectl_run limits-list.out --config "$T/limits.yaml" queue list
expect_no_match "data_timeout: the stalled message is not queued" 'timeout@dest\.example' "$T/limits-list.out"
stop_pid "$RELAYD_PID"
finish
