#!/bin/bash
# test_relayd_delivery.sh BUILD_DIR - sluice-relayd delivers what it queued: MX hosts found
# through a real unbound on loopback serving test zones (dns.servers), receivers played by
# test_mx.py on 127.0.0.2-4 (behaviour by recipient local part). Cases: MX preference, several
# recipients in one transaction, a VERP return path per recipient (bounce_domains), failover
# from a dead MX, implicit MX, null MX and NXDOMAIN (bounce at once), SERVFAIL (deferred),
# greylisting (retried after greylist_retry, distinct from retry_initial), 5xx at RCPT and after DATA (bounced, DSN to the
# sender that parses as RFC 3464, the recipient suppressed), NOTIFY=NEVER (no DSN), a suppressed
# recipient (dropped at queue time with an event; one suppressed while deferred: dropped by the
# delivery), a dropped connection mid-DATA (deferred), 4xx until the
# queue lifetime (expired, DSN 4.4.7), STARTTLS opportunistic and verified against a test CA, a
# certificate that does not match (verify: deferred), events, metrics, sluicectl why / retry,
# destination_rate (set by a reload) shared by the domains of one MX host list; 4xx/5xx at MAIL
# FROM, 4xx after DATA, a SIZE the message exceeds (5.3.4 before sending), RET/ENVID/NOTIFY/ORCPT
# passed on only to an MX with DSN, an MX that never answers a SYN (connect timeout, next MX),
# and every DSN of the run parsed with Python's email package and checked against the events.
source "$(dirname "$0")/lib.sh" "$@"

mkdir -p "$T/state" "$T/certs"
MXP=$(free_port) RP=$(free_port) MP=$(free_port) WP=$(free_port)
WSECRET=webhook-secret-for-the-test
test_cert "$T/certs" mx.tls.example
unbound_start '  local-zone: "ok.example." static
  local-data: "ok.example. MX 10 mx1.ok.example."
  local-data: "ok.example. MX 20 mx2.ok.example."
  local-data: "mx1.ok.example. A 127.0.0.2"
  local-data: "mx2.ok.example. A 127.0.0.3"
  local-zone: "failover.example." static
  local-data: "failover.example. MX 10 dead.failover.example."
  local-data: "failover.example. MX 20 mx2.ok.example."
  local-data: "dead.failover.example. A 127.0.0.9"
  local-zone: "implicit.example." static
  local-data: "implicit.example. A 127.0.0.3"
  local-zone: "nullmx.example." static
  local-data: "nullmx.example. MX 0 ."
  local-zone: "nxdomain.example." static
  local-zone: "servfail.example." refuse
  local-zone: "tls.example." static
  local-data: "tls.example. MX 10 mx.tls.example."
  local-data: "mx.tls.example. A 127.0.0.4"
  local-zone: "badcert.example." static
  local-data: "badcert.example. MX 10 other.badcert.example."
  local-data: "other.badcert.example. A 127.0.0.4"
  local-zone: "roll1.example." static
  local-data: "roll1.example. MX 10 mx.roll.example."
  local-zone: "roll2.example." static
  local-data: "roll2.example. MX 10 mx.roll.example."
  local-zone: "roll.example." static
  local-data: "mx.roll.example. A 127.0.0.5"
  local-zone: "blackhole.example." static
  local-data: "blackhole.example. MX 10 hole.blackhole.example."
  local-data: "blackhole.example. MX 20 mx2.ok.example."
  local-data: "hole.blackhole.example. A 127.0.0.6"
  local-zone: "v6.example." static
  local-data: "v6.example. MX 10 mx.v6.example."
  local-data: "mx.v6.example. AAAA ::1"
  local-zone: "size.example." static
  local-data: "size.example. MX 10 mx.size.example."
  local-data: "mx.size.example. A 127.0.0.7"
  local-zone: "synhole.example." static
  local-data: "synhole.example. MX 10 syn.synhole.example."
  local-data: "synhole.example. MX 20 mx2.ok.example."
  local-data: "syn.synhole.example. A 127.0.0.8"
  local-zone: "sender.example." static
  local-data: "sender.example. MX 10 mx2.ok.example."'
note "unbound on 127.0.0.1:$DNS_PORT; test MX hosts on 127.0.0.2-4:$MXP"

mx_start() {  # NAME ADDR [OPTIONS]: test_mx.py on ADDR:$MXP
  local name=$1 addr=$2; shift 2
  start_bg "$name" /usr/bin/python3 "$E2E_SRC/test_mx.py" --listen "$addr:$MXP" --dir "$T/$name" "$@"
  wait_port "$addr" "$MXP" 10 "$LAST_PID" || { show_tail "$T/$name.err"; die "test MX $name did not start"; }
}
mx_start mx1 127.0.0.2 --name mx1.ok.example
mx_start mx2 127.0.0.3 --name mx2.ok.example
start_bg mxv6 /usr/bin/python3 "$E2E_SRC/test_mx.py" --listen "[::1]:$MXP" --dir "$T/mxv6" --name mx.v6.example
for ((i = 0; i < 100; i++)); do ss -Hltn "sport = :$MXP" | grep -q '\[::1\]' && break; sleep 0.1; done
mx_start mxroll 127.0.0.5 --name mx.roll.example --no-dsn --no-8bitmime --no-smtputf8
# A black hole: the kernel completes the handshake, nothing ever answers (no greeting).
start_bg hole /usr/bin/python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.6', $MXP)); s.listen(64)
time.sleep(3600)
"
wait_port 127.0.0.6 "$MXP" 10 "$LAST_PID" || die "black hole did not start"
mx_start mxsize 127.0.0.7 --name mx.size.example --size 2000
# An MX that never answers a SYN (a connect timeout, not a greeting timeout): a listening socket
# with a backlog of 0 whose accept queue one connection fills and nobody accepts - the kernel
# then drops every further SYN. Loopback only, no firewall rule.
start_bg synhole /usr/bin/python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.8', $MXP)); s.listen(0)
fill = socket.create_connection(('127.0.0.8', $MXP), timeout=5)
print('full', flush=True)
time.sleep(3600)
"
for ((i = 0; i < 50; i++)); do grep -q full "$T/synhole.out" 2>/dev/null && break; sleep 0.1; done
if /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.8', $MXP), timeout=1)" 2>/dev/null; then
  fail "the SYN hole answered a SYN (its accept queue is not full)"
else
  pass "the SYN hole on 127.0.0.8 leaves a connect unanswered (backlog 0, queue full)"
fi
mx_start mxtls 127.0.0.4 --name mx.tls.example --tls cert --cert "$T/certs/mx.tls.example.crt" --key "$T/certs/mx.tls.example.key"

start_bg webhook /usr/bin/python3 "$E2E_SRC/webhook_receiver.py" --listen "127.0.0.1:$WP" --dir "$T/webhook" --secret "$WSECRET" --fail-first 1
wait_port 127.0.0.1 "$WP" 10 "$LAST_PID" || die "webhook receiver did not start"

# relayd signs its own DSNs like any other mail: a key for its hostname's domain.
mkdir -p "$T/keys" && chmod 700 "$T/keys"
"$BUILD/tests/unit/dkim_sign_tool" keygen rsa "$T/keys/dsn.pem" 2048 > "$T/dsn-record.txt" || die "DKIM keygen"
echo "dsn1 $(cat "$T/dsn-record.txt")" > "$T/records.txt"

cat > "$T/sluice.yaml" <<YAML
state_dir: $T/state
run_as_user: ""
log: { target: stderr, level: info }
relayd:
  listen: 127.0.0.1:$RP
  hostname: relay.sluice.example
  metrics_listen: 127.0.0.1:$MP
dns:
  servers: [127.0.0.1@$DNS_PORT]
  timeout: 3s
delivery:
  smtp_port: $MXP
  destination_concurrency: 1
  connect_timeout: 2s
  greeting_timeout: 2s
  command_timeout: 3s
  retry_initial: 2s
  retry_max: 2s
  greylist_retry: 1s
  queue_lifetime: 8s
  delay_warning: 3s
  tls_policy: may
  tls_ca_file: $T/certs/mx.tls.example.crt
  tls_policy_map:
    - { domain: tls.example, policy: verify }
    - { domain: badcert.example, policy: verify }
  bounce_domains:
    - { sender_domain: verp.example, bounce_domain: bounces.verp.example }
dkim:
  signing_table:
    - domain: relay.sluice.example
      signatures:
        - { domain: "%", selector: dsn1, key_file: $T/keys/dsn.pem }
events:
  webhooks:
    - { url: "http://127.0.0.1:$WP/hook", secret: $WSECRET, types: [delivered, bounced] }
  webhook_initial_backoff: 1s
YAML
sluicectl_run supp.out --config "$T/sluice.yaml" suppress add supp@ok.example --reason manual
expect_match "suppression entry added before sending" 'rc=0' "$T/supp.out"
sluice_relayd_start "$T/sluice.yaml" || die "sluice-relayd did not start"
EV=$T/state/events.jsonl

send() { local out=$1 from=$2; shift 2; swaks_run "$out" --server "127.0.0.1:$RP" --from "$from" "$@"; }
qid() { sed -nE 's/^<[-~]+ +250 .*queued as ([0-9A-Z]{16}).*/\1/p' "$T/$1" | head -1; }
# ev_wait TYPE RECIPIENT [SECONDS]: an event of that type for that recipient in events.jsonl
ev_wait() {
  local i
  for ((i = 0; i < ${3:-15} * 10; i++)); do
    grep -q "\"type\":\"$1\".*\"recipient\":\"$2\"" "$EV" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
ev_expect() {  # NAME TYPE RECIPIENT [SECONDS]
  if ev_wait "$2" "$3" "${4:-15}"; then
    pass "$1"; grep "\"type\":\"$2\".*\"recipient\":\"$3\"" "$EV" | head -1 | cut -c1-300 | sed 's/^/    /'
  else
    fail "$1 (no $2 event for $3)"; show_tail "$EV"; show_tail "$RELAYD_ERR"
  fi
}
mx_file() { grep -l -- "$2" "$T/$1"/*.eml 2>/dev/null | head -1; }  # DIR REGEX

# --- 1. MX preference, several recipients in one transaction, original sender kept -------------
send m1 a@plain.example --to ok@ok.example,ok2@ok.example --header "Subject: two rcpts"
ev_expect "ok@ok.example delivered" delivered ok@ok.example
ev_expect "ok2@ok.example delivered" delivered ok2@ok.example
f=$(mx_file mx1 'Subject: two rcpts')
[ -n "$f" ] && pass "delivered to mx1 (preference 10), not mx2" || { fail "message not at mx1"; ls "$T"/mx1 "$T"/mx2; }
[ -n "$f" ] && expect_match "both recipients in one transaction, MAIL FROM the original sender" \
  '"mail": "a@plain.example".*"rcpts": \["ok@ok.example", "ok2@ok.example"\]' "$f"
[ -n "$f" ] && expect_match "Received: header of relayd with the queue id" "by relay.sluice.example \(sluice-relayd\) with E?SMTP id $(qid m1)" "$f"
expect_match "Postfix-style log line: status=sent" "$(qid m1): to=<ok@ok.example>, relay=mx1.ok.example\[127.0.0.2\]:$MXP, delay=[0-9.]+, tries=1, dsn=2\.0\.0, status=sent \(250 " "$RELAYD_ERR"

# --- 2. VERP: each recipient its own transaction and return path ----------------------------------
send m2 alice@verp.example --to v1@ok.example,v2@ok.example --header "Subject: verp"
ev_expect "v1 delivered" delivered v1@ok.example
ev_expect "v2 delivered" delivered v2@ok.example
n=$(grep -l 'Subject: verp' "$T"/mx1/*.eml 2>/dev/null | wc -l)
expect_eq "VERP: one transaction per recipient" "$n" 2
ID2=$(qid m2)
expect_match "VERP return path alice+<id>.0.<mac>@bounces.verp.example" \
  "\"mail\": \"alice\+$(echo "$ID2" | tr A-Z a-z)\.0\.[a-z2-7]{8}@bounces\.verp\.example\"" $(grep -l 'Subject: verp' "$T"/mx1/*.eml)
sluicectl_run verp.out --config "$T/sluice.yaml" bounce verp "$ID2" 1 alice@bounces.verp.example
V1=$(head -1 "$T/verp.out")
if [ -n "$V1" ] && grep -qF "\"mail\": \"$V1\"" $(grep -l 'Subject: verp' "$T"/mx1/*.eml); then
  pass "the VERP address of recipient 1 is the one sluicectl bounce verp computes ($V1)"
else
  fail "recipient 1's return path is not $V1"; show_tail "$T/verp.out"
fi

# --- 2b. two domains with one MX set are one destination: one session carries both -------------
c0=$(grep -c '"ev": "connect"' "$T/mxroll/events.jsonl")   # the harness's own wait_port probe
send m2b a@plain.example --to a@roll1.example,b@roll2.example --header "Subject: rollup"
ev_expect "roll1 delivered" delivered a@roll1.example
ev_expect "roll2 delivered" delivered b@roll2.example
expect_eq "two domains with the same MX host, destination_concurrency 1: one connection for both" \
  "$(( $(grep -c '"ev": "connect"' "$T/mxroll/events.jsonl") - c0 ))" 1
expect_eq "... and two transactions (one per domain)" "$(ls "$T"/mxroll/*.eml | wc -l)" 2

/usr/bin/python3 - "$RP" > "$T/success.out" 2>&1 <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
s.ehlo("client.example")
s.sendmail("bob@sender.example", ["s1@ok.example", "s2@roll1.example"],
           b"Subject: success wanted\r\n\r\nplease confirm\r\n", rcpt_options=["NOTIFY=SUCCESS,FAILURE"])
s.quit()
print("sent")
PY
ev_expect "NOTIFY=SUCCESS to an MX with DSN: delivered" delivered s1@ok.example
ev_expect "NOTIFY=SUCCESS to an MX without DSN: delivered" delivered s2@roll1.example
sleep 1
f=$(grep -l 'Final-Recipient: rfc822; s1@ok.example' "$T"/mx2/*.eml 2>/dev/null | head -1)
[ -z "$f" ] && pass "no DSN of relayd's for the recipient whose MX has DSN (that MX reports success itself)" || fail "relayd answered for a DSN-capable MX"
expect_match "NOTIFY passed on to the MX with DSN" '"s1@ok.example": \["NOTIFY=SUCCESS,FAILURE"\]' $(grep -l 's1@ok.example' "$T"/mx1/*.eml)
for ((i = 0; i < 50; i++)); do grep -lq '^Action: relayed' "$T"/mx2/*.eml 2>/dev/null && break; sleep 0.1; done
f=$(grep -l '^Action: relayed' "$T"/mx2/*.eml 2>/dev/null | head -1)
[ -n "$f" ] && expect_match "NOTIFY=SUCCESS via an MX without DSN -> relayd's own \"relayed\" DSN for that recipient" '^Final-Recipient: rfc822; s2@roll1\.example' "$f" || fail "no relayed DSN"

# --- 3. failover, implicit MX, DNS failures -------------------------------------------------------
send m3 a@plain.example --to x@failover.example
ev_expect "dead first MX (connection refused) -> delivered to the next MX" delivered x@failover.example
expect_match "the delivery names mx2" '"type":"delivered".*"recipient":"x@failover.example".*"mx":"mx2.ok.example"' "$EV"
sluicectl_run whyf.out --config "$T/sluice.yaml" why "$(qid m3)"
expect_match "sluicectl why shows the dead MX tried first" 'dead\.failover\.example\[127\.0\.0\.9\].*(refused|connect)' "$T/whyf.out"
expect_match "... with the TLS policy that applied, though no session was made" 'dead\.failover\.example\[127\.0\.0\.9\]  \(tried\) policy=may  ' "$T/whyf.out"
send m3b a@plain.example --to x@v6.example
ev_expect "an MX with only an IPv6 address (AAAA ::1) -> delivered over IPv6" delivered x@v6.example
expect_match "... to [::1]" '"type":"delivered".*"recipient":"x@v6.example".*"ip":"::1"' "$EV"
send m4 a@plain.example --to x@implicit.example
ev_expect "no MX -> implicit MX (the domain's A record)" delivered x@implicit.example
send m5 bob@sender.example --to x@nullmx.example
ev_expect "null MX -> bounced at once" bounced x@nullmx.example 10
expect_match "null MX -> 556 5.1.10" '"type":"bounced".*"recipient":"x@nullmx.example".*556 5\.1\.10' "$EV"
send m6 bob@sender.example --to x@nosuch.nxdomain.example
ev_expect "NXDOMAIN -> bounced at once" bounced x@nosuch.nxdomain.example 10
send m7 bob@sender.example --to x@a.servfail.example
ev_expect "SERVFAIL -> deferred" deferred x@a.servfail.example 10
expect_match "SERVFAIL -> 4.4.3" '"type":"deferred".*"recipient":"x@a.servfail.example".*4\.4\.3' "$EV"

send m7b a@plain.example --to x@blackhole.example
ev_expect "an MX that never greets (black hole) -> greeting timeout, then the next MX" delivered x@blackhole.example 15
sluicectl_run whyb.out --config "$T/sluice.yaml" why "$(qid m7b)"
expect_match "sluicectl why: the black hole's timeout is recorded" 'hole\.blackhole\.example\[127\.0\.0\.6\].*timeout' "$T/whyb.out"
/usr/bin/python3 - "$RP" > "$T/ext.out" 2>&1 <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
s.ehlo("client.example")
s.sendmail("bob@sender.example", ["e8@roll1.example"], "Subject: caf\u00e9\r\n\r\ncaf\u00e9\r\n".encode(),
           mail_options=["BODY=8BITMIME"])
s.sendmail("bob@sender.example", ["u8@roll1.example"], "Subject: utf8\r\n\r\nx\r\n".encode(),
           mail_options=["SMTPUTF8"])
s.quit()
print("sent")
PY
expect_match "8BITMIME and SMTPUTF8 messages accepted by relayd" '^sent' "$T/ext.out"
ev_expect "an 8-bit message to an MX without 8BITMIME -> bounced, not sent damaged" bounced e8@roll1.example
expect_match "... 5.6.3" '"type":"bounced".*"recipient":"e8@roll1.example".*5\.6\.3' "$EV"
ev_expect "an SMTPUTF8 message to an MX without SMTPUTF8 -> bounced" bounced u8@roll1.example
expect_match "... 5.6.7" '"type":"bounced".*"recipient":"u8@roll1.example".*5\.6\.7' "$EV"
expect_eq "neither reached that MX" "$(grep -lE 'e8@roll1|u8@roll1' "$T"/mxroll/*.eml 2>/dev/null | wc -l)" 0

# --- 4. replies: greylisting, 5xx, NOTIFY=NEVER, suppression, dropped connection ---------------
send m8 a@plain.example --to grey@ok.example
ev_expect "greylisted first -> deferred" deferred grey@ok.example
ev_expect "greylisted -> delivered on the retry after greylist_retry" delivered grey@ok.example 15
# greylist_retry (1 s) and retry_initial (2 s) differ, each +-10%: the greylisted deferral's next
# attempt is set after the short one, an ordinary first deferral's (SERVFAIL) after retry_initial.
retry_after() {  # RECIPIENT: seconds from the first deferred event to its next_attempt
  grep "\"type\":\"deferred\".*\"recipient\":\"$1\"" "$EV" | head -1 | /usr/bin/python3 -c '
import datetime, json, sys
e = json.loads(sys.stdin.readline())
n = datetime.datetime.strptime(e["details"]["next_attempt"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
print("%.2f" % (n.timestamp() - e["time_ms"] / 1000.0))'
}
g=$(retry_after grey@ok.example) o=$(retry_after x@a.servfail.example)
note "next attempt after a greylisting reply: ${g}s; after SERVFAIL: ${o}s"
/usr/bin/python3 -c "import sys; sys.exit(0 if 0.85 <= float('$g') <= 1.2 else 1)" 2>/dev/null \
  && pass "the greylisted recipient is retried after greylist_retry (1 s +-10%: ${g}s)" \
  || fail "greylisted recipient's next attempt after ${g}s, want greylist_retry (1 s +-10%)"
/usr/bin/python3 -c "import sys; sys.exit(0 if 1.75 <= float('$o') <= 2.25 else 1)" 2>/dev/null \
  && pass "an ordinary deferral is retried after retry_initial (2 s +-10%: ${o}s), not greylist_retry" \
  || fail "ordinary deferral's next attempt after ${o}s, want retry_initial (2 s +-10%)"
send m9 bob@sender.example --to rcpt550@ok.example --header "Subject: to be bounced"
ev_expect "550 at RCPT -> bounced" bounced rcpt550@ok.example
ev_expect "the DSN to bob@sender.example is delivered (from <>)" delivered bob@sender.example 15
expect_match "the DSN has its own accepted event, naming the bounced message" \
  '"type":"accepted".*"recipient":"bob@sender.example".*"dsn_for":"'"$(qid m9)"'"' "$EV"
dsn=$(grep -l 'X-Sluice-Queue-ID: '"$(qid m9)" "$T"/mx2/*.eml 2>/dev/null | head -1)
if [ -n "$dsn" ]; then
  expect_match "the DSN comes from the null sender" '"mail": ""' "$dsn"
  tail -n +2 "$dsn" > "$T/dsn.eml"
  /usr/bin/python3 - "$T/dsn.eml" > "$T/dsn.parsed" 2>&1 <<'PY'
import email, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"))
assert m.get_content_type() == "multipart/report", m.get_content_type()
assert m.get_param("report-type") == "delivery-status"
parts = m.get_payload()
print("parts", [p.get_content_type() for p in parts])
ds = parts[1].get_payload()          # message/delivery-status: a list of header blocks
print("per-message", dict(ds[0].items()))
r = dict(ds[1].items())
print("recipient", r)
assert r["Action"] == "failed" and r["Status"].startswith("5."), r
assert r["Final-Recipient"] == "rfc822; rcpt550@ok.example", r
assert "Remote-MTA" in r and "Diagnostic-Code" in r
orig = parts[2]
assert orig.get_content_type() == "message/rfc822"
assert orig.get_payload()[0]["Subject"] == "to be bounced"
print("DSN OK")
PY
  expect_match "the DSN parses (Python email): multipart/report, Action failed, Status 5.x, the original attached" '^DSN OK' "$T/dsn.parsed"
  if /usr/bin/python3 "$E2E_SRC/dkim_verify.py" "$T/records.txt" "$T/dsn.eml" 1 > "$T/dsn.dkim" 2>&1; then
    pass "the DSN is DKIM-signed (d=relay.sluice.example) and dkimpy verifies it"
  else
    fail "DSN DKIM verification"; show_tail "$T/dsn.dkim"
  fi
else
  fail "no DSN for $(qid m9) at mx2"; ls "$T/mx2"
fi
sluicectl_run supplist.out --config "$T/sluice.yaml" suppress list
expect_match "the hard-bounced recipient is suppressed for the sending domain" 'rcpt550@ok.example.*sender.example' "$T/supplist.out"
send m10 bob@sender.example --to data554@ok.example
ev_expect "554 after DATA -> bounced" bounced data554@ok.example
/usr/bin/python3 - "$RP" > "$T/never.out" 2>&1 <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
s.ehlo("client.example")
s.sendmail("bob@sender.example", ["rcpt551@ok.example"], b"Subject: never\r\n\r\nno DSN wanted\r\n",
           rcpt_options=["NOTIFY=NEVER"])
s.quit()
print("sent")
PY
expect_match "NOTIFY=NEVER message accepted" '^sent' "$T/never.out"
ev_expect "NOTIFY=NEVER recipient bounced" bounced rcpt551@ok.example
sleep 2
n=$(grep -l 'rcpt551@ok.example' "$T"/mx2/*.eml 2>/dev/null | xargs -r grep -l 'multipart/report' | wc -l)
expect_eq "NOTIFY=NEVER -> no DSN" "$n" 0
send m11 a@plain.example --to supp@ok.example,notsupp@ok.example --header "Subject: one suppressed"
ev_expect "suppressed recipient -> dropped with a suppressed event" suppressed supp@ok.example
ev_expect "... the other recipient of the message is delivered" delivered notsupp@ok.example
grep '"type":"suppressed".*"recipient":"supp@ok.example"' "$EV" | head -1 > "$T/supp.ev"
expect_match "... dropped at queue time (not when delivery picked it up)" '"at":"queue"' "$T/supp.ev"
expect_match "... the event names the reason and scope of the list entry" 'reason manual, scope global' "$T/supp.ev"
expect_eq "the suppressed recipient never reached an MX (not in any envelope)" "$(grep -l '"rcpts": \[[^]]*"supp@ok.example"' "$T"/mx*/*.eml 2>/dev/null | wc -l)" 0
# The second line: a recipient suppressed while it waits for a retry is dropped when delivery
# picks it up again.
send m11b bob@sender.example --to rcpt451-later@ok.example
ev_expect "a deferred recipient (4xx)" deferred rcpt451-later@ok.example
sluicectl_run supp2.out --config "$T/sluice.yaml" suppress add rcpt451-later@ok.example --scope sender.example --reason complaint
expect_match "suppressed while deferred" 'rc=0' "$T/supp2.out"
sluicectl_run whysupp.out --config "$T/sluice.yaml" why "$(qid m11)"
expect_match "sluicectl why: the suppressed recipient with the list entry's reason" '^    suppressed: 550 5\.1\.1 .*reason manual, scope global' "$T/whysupp.out"
ev_expect "... dropped at its next attempt, with a suppressed event" suppressed rcpt451-later@ok.example 10
grep '"type":"suppressed".*"recipient":"rcpt451-later@ok.example"' "$EV" | head -1 > "$T/supp2.ev"
expect_no_match "... by delivery (no \"at\":\"queue\")" '"at":"queue"' "$T/supp2.ev"
expect_match "... naming the reason and the sending domain's scope" 'reason complaint, scope sender\.example' "$T/supp2.ev"
send m12 a@plain.example --to drop@ok.example
ev_expect "connection dropped mid-DATA -> deferred" deferred drop@ok.example
send m12b a@plain.example --to slow@ok.example
ev_expect "an RCPT reply slower than command_timeout -> deferred" deferred slow@ok.example 15
expect_match "... as a timeout (4.4.2), with the next attempt set" '"type":"deferred".*"recipient":"slow@ok.example".*"next_attempt":"20.*timeout waiting for a reply.*"status":"4\.4\.2"' "$EV"

# --- 4b. MAIL and DATA replies, SIZE, DSN parameters, a connect timeout --------------------------
# 4xx and 5xx at MAIL FROM (chosen by the sender's local part), 4xx after DATA.
send m16 mail550@sender.example --to ok-m550@ok.example --header "Subject: refused at MAIL"
ev_expect "550 at MAIL FROM -> bounced" bounced ok-m550@ok.example
expect_match "... with the MX's MAIL reply" '"type":"bounced".*"recipient":"ok-m550@ok.example".*550 5\.7\.1 .*sender mail550@sender\.example' "$EV"
send m17 mail451@sender.example --to ok-m451@ok.example --header "Subject: deferred at MAIL"
ev_expect "451 at MAIL FROM -> deferred" deferred ok-m451@ok.example
expect_match "... with the MX's MAIL reply and a next attempt" '"type":"deferred".*"recipient":"ok-m451@ok.example".*"next_attempt":"20.*451 4\.3\.0 .*sender mail451@sender\.example' "$EV"
# sluicectl why shows a deferred recipient's next attempt: in the future and no further than
# retry_max (2 s, +10% jitter) from now. Polled: between attempts the recipient is 'delivering'.
/usr/bin/python3 - "$BUILD/sluicectl/sluicectl" "$T/sluice.yaml" "$(qid m17)" > "$T/whynext.out" 2>&1 <<'PY'
import datetime, json, subprocess, sys, time
for _ in range(100):
    now = time.time()
    j = json.loads(subprocess.run([sys.argv[1], "--config", sys.argv[2], "why", sys.argv[3], "--json"],
                                  capture_output=True, text=True, timeout=20).stdout)
    r = j["recipients"][0]
    if r["state"] == "deferred" and "next_attempt" in r:
        n = datetime.datetime.strptime(r["next_attempt"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()
        print("state deferred, next attempt in %.2f s (after %d attempt(s))" % (n - now, len(r["attempts"])))
        ok = 0 < n - now <= 2.2 + 0.1
        print("sane" if ok else "NOT sane")
        break
    time.sleep(0.05)
else:
    print("never seen deferred")
PY
note "$(head -1 "$T/whynext.out")"
expect_match "sluicectl why --json: the deferred recipient's next attempt is in the future, within retry_max" '^sane$' "$T/whynext.out"
sluicectl_run whynext.txt --config "$T/sluice.yaml" why "$(qid m17)"
expect_match "sluicectl why (text): next attempt with its time" '^    next attempt .*\((in [0-9]+ s|due now)\)|^  <ok-m451@ok.example>: delivering' "$T/whynext.txt"
expect_match "the MX logged MAIL FROM refused with 451" '"ev": "mail", "sender": "mail451@sender.example", "reply": 451' "$T/mx1/events.jsonl"
send m18 bob@sender.example --to data451-x@ok.example --header "Subject: deferred at DATA"
ev_expect "451 after DATA -> deferred" deferred data451-x@ok.example
expect_match "... the MX had the whole message and answered 451" '"ev": "data", "rcpts": \["data451-x@ok.example"\], "reply": 451' "$T/mx1/events.jsonl"
expect_match "... the event carries that reply" '"type":"deferred".*"recipient":"data451-x@ok.example".*451 4\.3\.0' "$EV"
# SIZE: the MX announces 2000; a 5 KB message is bounced (5.3.4) before anything is sent.
send m19 bob@sender.example --to big@size.example --header "Subject: too big" --body "$(head -c 5000 /dev/zero | tr '\0' x | fold -w 70)"
ev_expect "a message over the MX's SIZE -> bounced" bounced big@size.example
expect_match "... 552 5.3.4 naming the limit" '"type":"bounced".*"recipient":"big@size.example".*552 5\.3\.4 message size [0-9]+ exceeds size limit 2000' "$EV"
expect_no_match "... and relayd never sent MAIL FROM to it" '"ev": "mail"' "$T/mxsize/events.jsonl"
# Only refusals that say the address is bad suppress it: not the sender's (MAIL FROM), the size,
# or an extension the MX lacks.
sluicectl_run supplist2.out --config "$T/sluice.yaml" suppress list
expect_no_match "a 550 at MAIL FROM does not suppress the recipient" 'ok-m550@ok\.example' "$T/supplist2.out"
expect_no_match "a message over the MX's SIZE does not suppress the recipient" 'big@size\.example' "$T/supplist2.out"
expect_no_match "an MX without 8BITMIME/SMTPUTF8 does not suppress the recipients" '(e8|u8)@roll1\.example' "$T/supplist2.out"
expect_match "... while the 550 5.1.1 at RCPT did" 'rcpt550@ok\.example' "$T/supplist2.out"
# RET and ENVID (and NOTIFY, ORCPT) go on to an MX that offers DSN, not to one that does not.
/usr/bin/python3 - "$RP" > "$T/dsnparams.out" 2>&1 <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
s.ehlo("client.example")
for rcpt in ("retenv@ok.example", "retenv@roll1.example"):
    s.sendmail("bob@sender.example", [rcpt], b"Subject: dsn params\r\n\r\nx\r\n",
               mail_options=["RET=HDRS", "ENVID=env-42"], rcpt_options=["NOTIFY=FAILURE", "ORCPT=rfc822;orig@ok.example"])
# A bounce with ENVID and RET=HDRS: its DSN must carry both back (checked with every DSN below).
s.sendmail("bob@sender.example", ["rcpt550-env@ok.example"], b"Subject: envid bounce\r\n\r\nbody not returned\r\n",
           mail_options=["RET=HDRS", "ENVID=env-77"], rcpt_options=["NOTIFY=FAILURE"])
s.quit()
print("sent")
PY
expect_match "messages with RET/ENVID accepted" '^sent' "$T/dsnparams.out"
ev_expect "RET/ENVID message delivered to the MX with DSN" delivered retenv@ok.example
ev_expect "... and to the MX without DSN" delivered retenv@roll1.example
f=$(mx_file mx1 '"rcpts": \["retenv@ok.example"\]')
[ -n "$f" ] && expect_match "the MX with DSN received RET=HDRS and ENVID=env-42 at MAIL" '"mail_params": \[[^]]*"RET=HDRS", "ENVID=env-42"' "$f"
[ -n "$f" ] && expect_match "... and NOTIFY and ORCPT at RCPT" '"retenv@ok.example": \["NOTIFY=FAILURE", "ORCPT=rfc822;orig@ok.example"\]' "$f"
f=$(mx_file mxroll '"rcpts": \["retenv@roll1.example"\]')
[ -n "$f" ] && expect_no_match "the MX without DSN got none of them" 'RET=|ENVID=|NOTIFY=|ORCPT=' "$f"
ev_expect "the ENVID bounce" bounced rcpt550-env@ok.example
# An MX that never answers the SYN: connect_timeout (2 s), then the next MX.
send m20 a@plain.example --to x@synhole.example
ev_expect "an MX that never answers SYN -> connect timeout, then the next MX" delivered x@synhole.example 15
expect_match "... delivered by mx2" '"type":"delivered".*"recipient":"x@synhole.example".*"mx":"mx2.ok.example"' "$EV"
sluicectl_run whys.out --config "$T/sluice.yaml" why "$(qid m20)"
expect_match "sluicectl why: the connect timeout at the first MX" 'syn\.synhole\.example\[127\.0\.0\.8\].*connect to .*timed out' "$T/whys.out"

# --- 5. TLS ------------------------------------------------------------------------------------
send m13 a@plain.example --to ok@tls.example
ev_expect "tls_policy verify with the right CA and name -> delivered" delivered ok@tls.example
expect_match "delivered over TLS, verified" '"type":"delivered".*"recipient":"ok@tls.example".*"tls":"policy=verify TLSv1\.[23] .*\(verified\)' "$EV"
f=$(mx_file mxtls 'ok@tls.example')
[ -n "$f" ] && expect_match "the receiver saw TLS" '"tls": "TLSv1\.[23]"' "$f"
send m14 a@plain.example --to ok@badcert.example
ev_expect "verify against a certificate for another name -> deferred" deferred ok@badcert.example
expect_match "the reason names the certificate" '"type":"deferred".*"recipient":"ok@badcert.example".*(certificate|verif)' "$EV"
sluicectl_run whytls.out --config "$T/sluice.yaml" why "$(qid m14)"
expect_match "sluicectl why: the host whose certificate failed, with the policy (verify) and no session" 'other\.badcert\.example\[127\.0\.0\.4\]  policy=verify \(no session\)  .*(certificate|verif)' "$T/whytls.out"

# --- 6. queue lifetime: 4xx until it expires -> DSN 4.4.7 -----------------------------------------
send m15 bob@sender.example --to rcpt451@ok.example
ev_expect "4xx -> deferred" deferred rcpt451@ok.example
ev_expect "still 4xx after queue_lifetime (8 s) -> expired" expired rcpt451@ok.example 20
expect_match "... the expired event says 4.4.7, as its DSN, and keeps the last reply's status" '"type":"expired".*"recipient":"rcpt451@ok.example".*"last_status":"4\.[0-9.]*".*"status":"4\.4\.7"' "$EV"
tries=$(grep -c "\"type\":\"deferred\".*\"recipient\":\"rcpt451@ok.example\"" "$EV")
[ "$tries" -ge 2 ] && pass "retried with back-off before expiring ($tries deferrals)" || fail "only $tries deferral(s) before expiry"
sleep 3
dsns=$(grep -l 'X-Sluice-Queue-ID: '"$(qid m15)" "$T"/mx2/*.eml 2>/dev/null)
delayed=$(grep -l '^Action: delayed' $dsns 2>/dev/null | wc -l)
expect_eq "delay_warning (3 s): exactly one \"delayed\" DSN before the expiry" "$delayed" 1
f=$(grep -l '^Action: delayed' $dsns 2>/dev/null | head -1)
[ -n "$f" ] && expect_match "... with Will-Retry-Until" '^Will-Retry-Until: ' "$f"
f=$(grep -l '^Action: failed' $dsns 2>/dev/null | head -1)
[ -n "$f" ] && expect_match "expiry DSN: Status 4.4.7, Action failed" '^Status: 4\.4\.7' "$f" || fail "no expiry DSN"

# --- 6b. every DSN of the test parses as RFC 3464 --------------------------------------------------
# The 4xx at MAIL and at DATA above expire too (queue_lifetime 8 s): their DSNs are among them.
ev_expect "451 at MAIL until the lifetime -> expired" expired ok-m451@ok.example 20
ev_expect "451 at DATA until the lifetime -> expired" expired data451-x@ok.example 20
sleep 3
/usr/bin/python3 - "$EV" "$T"/mx*/*.eml > "$T/alldsn.out" 2>&1 <<'PY'
import email, json, re, sys
events = [json.loads(l) for l in open(sys.argv[1])]
def event_for(qid, rcpt, types):
    return [e for e in events if e["queue_id"] == qid and e["recipient"] == rcpt and e["type"] in types]
seen, bad, expired = {}, 0, 0
for path in sys.argv[2:]:
    raw = open(path, "rb").read()
    first, _, body = raw.partition(b"\r\n")
    env = json.loads(first.split(b": ", 1)[1])
    if env["mail"] != "":
        continue  # not from the null sender: not a DSN
    m = email.message_from_bytes(body)
    errs = []
    if m.get_content_type() != "multipart/report" or m.get_param("report-type") != "delivery-status":
        errs.append("not multipart/report; report-type=delivery-status: %s" % m.get_content_type())
    else:
        parts = m.get_payload()
        if len(parts) < 2 or parts[1].get_content_type() != "message/delivery-status":
            errs.append("second part is not message/delivery-status")
        else:
            blocks = parts[1].get_payload()
            per_msg, rcpts = blocks[0], blocks[1:]
            qid = per_msg["X-Sluice-Queue-ID"]
            if not per_msg["Reporting-MTA"]:
                errs.append("no Reporting-MTA")
            if not rcpts:
                errs.append("no per-recipient block")
            for r in rcpts:
                action, status = r["Action"], r["Status"] or ""
                final = re.sub(r"^rfc822;\s*", "", r["Final-Recipient"] or "")
                want = {"failed": "[45]", "delayed": "4", "relayed": "2", "delivered": "2"}.get(action)
                if want is None or not re.fullmatch(want + r"\.\d{1,3}\.\d{1,3}", status):
                    errs.append("%s: Action %s with Status %s" % (final, action, status))
                    continue
                if action == "failed" and status == "4.4.7":
                    kind, types = "expired", ("expired",)
                    expired += 1
                else:
                    kind = action
                    types = {"failed": ("bounced",), "delayed": ("deferred",), "relayed": ("delivered",), "delivered": ("delivered",)}[action]
                evs = event_for(qid, final, types)
                if not evs:
                    errs.append("%s: %s in the DSN, no %s event for %s" % (final, action, "/".join(types), qid))
                elif kind in ("failed", "expired") and not any(e["details"].get("status") == status for e in evs):
                    # (an expired event says 4.4.7 as its DSN does; the last reply's is in last_status)
                    errs.append("%s: DSN Status %s, event status %s" % (final, status, [e["details"].get("status") for e in evs]))
                if action in ("failed", "delayed") and "Diagnostic-Code" not in r:
                    errs.append("%s: no Diagnostic-Code" % final)
                if action == "delayed" and "Will-Retry-Until" not in r:
                    errs.append("%s: delayed without Will-Retry-Until" % final)
                seen[kind] = seen.get(kind, 0) + 1
                if final == "rcpt550-env@ok.example":
                    if per_msg["Original-Envelope-Id"] != "env-77":
                        errs.append("ENVID bounce: Original-Envelope-Id %r" % per_msg["Original-Envelope-Id"])
                    if len(parts) < 3 or parts[2].get_content_type() != "text/rfc822-headers":
                        errs.append("RET=HDRS: third part %s" % (parts[2].get_content_type() if len(parts) > 2 else None))
                    elif b"body not returned" in parts[2].as_bytes():
                        errs.append("RET=HDRS: the body was returned")
                    seen["envid"] = 1
    print("%s: %s" % (path.rsplit("/", 1)[-1], "; ".join(errs) if errs else "ok"))
    bad += bool(errs)
print("kinds", json.dumps(seen, sort_keys=True))
print("bad %d" % bad)
PY
note "$(grep -c ': ok$' "$T/alldsn.out") DSNs parsed; $(grep '^kinds' "$T/alldsn.out")"
expect_match "every DSN parses as multipart/report with consistent Action/Status per recipient, matching the events" '^bad 0$' "$T/alldsn.out"
expect_match "... failed (5.x.x) DSNs among them" '^kinds .*"failed": [1-9]' "$T/alldsn.out"
expect_match "... delayed DSNs" '^kinds .*"delayed": [1-9]' "$T/alldsn.out"
expect_match "... expired (failed, 4.4.7) DSNs" '^kinds .*"expired": [1-9]' "$T/alldsn.out"
expect_match "... relayed DSNs" '^kinds .*"relayed": [1-9]' "$T/alldsn.out"
expect_match "... the ENVID/RET=HDRS bounce's DSN carried both" '^kinds .*"envid": 1' "$T/alldsn.out"
grep -v ': ok$' "$T/alldsn.out" | head -20 | sed 's/^/    /'

# --- 7. admin: why, retry, metrics --------------------------------------------------------------
sluicectl_run why.out --config "$T/sluice.yaml" why "$(qid m8)"
expect_match "sluicectl why: the greylisted attempt" '450 4\.7\.1.*[Gg]reylisted' "$T/why.out"
expect_match "sluicectl why: the recipient is delivered after 2 attempts" '<grey@ok.example>: delivered, 2 attempt' "$T/why.out"
expect_match "sluicectl why: each attempt names the MX host, its address, the TLS policy and the reply" 'mx1\.ok\.example\[127\.0\.0\.2\]  policy=may .* 250 ' "$T/why.out"
sluicectl_run retry.out --config "$T/sluice.yaml" queue retry --all
expect_match "sluicectl queue retry --all" 'rc=0' "$T/retry.out"
curl -s "http://127.0.0.1:$MP/metrics" > "$T/metrics.out"
expect_match "metrics: deliveries by result" '^sluice_relayd_deliveries_total\{result="delivered"\} [1-9]' "$T/metrics.out"
expect_match "metrics: delivery latency histogram" '^sluice_relayd_delivery_latency_seconds_count [1-9]' "$T/metrics.out"
expect_match "metrics: queue by state" '^sluice_relayd_queue_recipients\{state="' "$T/metrics.out"

# --- 8. webhooks: signed, retried after a 500, only the types asked for ---------------------------
P=$T/webhook/posts.jsonl
for ((i = 0; i < 100; i++)); do grep -q '"status": 200' "$P" 2>/dev/null && break; sleep 0.1; done
expect_match "webhook: the first POST was answered 500" '"n": 1, "status": 500' "$P"
first=$(sed -n '1s/.*"event_id": "\([0-9A-Z]*\)".*/\1/p' "$P")
expect_match "webhook: the same event was posted again after the 500 (at least once)" "\"status\": 200, \"event_id\": \"$first\"" "$P"
expect_no_match "webhook: every signature verifies (HMAC-SHA256 of t.body)" '"signature_ok": false' "$P"
expect_match "webhook: a delivered event for ok@ok.example" 'type\\": *\\"delivered.*ok@ok\.example' "$P"
expect_match "webhook: a bounced event" 'type\\": *\\"bounced' "$P"
expect_no_match "webhook: no types the endpoint did not ask for (deferred)" 'type\\": *\\"deferred' "$P"

# --- 9. destination_rate, per destination rolled up by MX host list, set by a reload -------------
# roll1.example and roll2.example share mx.roll.example: one destination, one schedule, even with
# two sessions to it (destination_concurrency 2: an agent per domain). 120/m (2/s) for 6 messages,
# 3 to each domain, queued at once: 5 intervals of 0.5 s (2.5 s) from the first delivery to the
# last; keyed by recipient domain (as before) each agent had its own 2/s, about half the time.
sed -i 's|^  destination_concurrency: 1$|  destination_concurrency: 2\n  destination_rate: "120/m"|' "$T/sluice.yaml"
n=$(grep -c "reloaded " "$RELAYD_ERR")
kill -HUP "$RELAYD_PID"
for ((i = 0; i < 100; i++)); do [ "$(grep -c "reloaded " "$RELAYD_ERR")" -gt "$n" ] && break; sleep 0.1; done
expect_match "destination_rate 120/m taken by a reload" 'reloaded ' "$RELAYD_ERR"
/usr/bin/python3 - "$RP" > "$T/rate.out" 2>&1 <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
s.ehlo("client.example")
for i in range(1, 4):
    for d in ("roll1.example", "roll2.example"):
        s.sendmail("a@plain.example", ["rate%d@%s" % (i, d)], b"Subject: rate\r\n\r\npaced\r\n")
s.quit()
print("sent")
PY
expect_match "six messages to two domains of one MX queued" '^sent' "$T/rate.out"
for ((i = 0; i < 200; i++)); do [ "$(grep -cE '"type":"delivered".*"recipient":"rate[123]@roll[12]\.example"' "$EV")" -ge 6 ] && break; sleep 0.1; done
grep -E '"type":"delivered".*"recipient":"rate[123]@roll[12]\.example"' "$EV" | /usr/bin/python3 -c '
import json, sys
t = sorted(json.loads(l)["time_ms"] for l in sys.stdin)
gaps = [b - a for a, b in zip(t, t[1:])]
print("delivered %d; span %.2f s; smallest gap %.2f s" % (len(t), (t[-1] - t[0]) / 1000 if t else 0, min(gaps) / 1000 if gaps else 0))' > "$T/rate.span"
note "$(cat "$T/rate.span")"
expect_match "all six delivered" '^delivered 6;' "$T/rate.span"
expect_match "paced as one destination: span >= 2.2 s (2.5 s at 2/s), not ~1.2 s (2/s per domain)" \
  'span (2\.[2-9]|[3-9]\.)[0-9]* s' "$T/rate.span"
expect_match "no two deliveries closer than 0.4 s" 'smallest gap (0\.[4-9]|[1-9]\.)' "$T/rate.span"
finish
