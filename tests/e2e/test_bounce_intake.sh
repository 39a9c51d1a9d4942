#!/bin/bash
# test_bounce_intake.sh BUILD_DIR - the bounce/complaint intake (`sluicectl bounce receive`, what the
# MTA pipes bounces to) against messages really queued by sluice-relayd:
#   a DSN 550 5.1.1 to the VERP return path of recipient 0 -> bounced event, suppressed for the
#     sender's domain; a 452 4.2.2 (mailbox full) for recipient 1 -> event only, not suppressed;
#   forged DSNs for a real recipient (carol) quoting the real Message-ID - to a VERP address with
#     a forged mac, to a plain (non-VERP) address, or quoting a forged VERP Return-Path - and an
#     ARF complaint with a forged VERP Original-Mail-From -> each logged and ignored ("ignored: not
#     verified"), nothing suppressed, no event (issue 6: the Message-ID is evidence for complaints
#     only, and never past a mac that does not verify);
#   an ARF complaint quoting the original Message-ID -> complained event, suppressed;
#   an auto-reply (RFC 3834) -> ignored. Exit status 0 in every case (the MTA must not bounce it);
#   the bounced and complained events reach the local webhook receiver (webhook_receiver.py),
#   signed, through relayd's outbox, and `sluicectl why ID` shows the bounce on bob's line;
#   then through a real, isolated Postfix with contrib/postfix/bounce-main.cf.snippet,
#   bounce-master.cf.snippet and bounce.transport (the pipe service running sluicectl as an
#   unprivileged user): a DSN to a VERP address of the bounce domain suppresses its recipient, a
#   forged one is delivered to the pipe (exit 0) and suppresses nobody; the real one's event
#   reaches the webhook receiver through that relayd's outbox.
source "$(dirname "$0")/lib.sh" "$@"

mkdir -p "$T/state"
RP=$(free_port)
WP=$(free_port)
WSECRET=webhook-secret-for-the-bounce-test
start_bg webhook /usr/bin/python3 "$E2E_SRC/webhook_receiver.py" --listen "127.0.0.1:$WP" --dir "$T/webhook" --secret "$WSECRET" --fail-first 0
wait_port 127.0.0.1 "$WP" 10 "$LAST_PID" || die "webhook receiver did not start"
cat > "$T/sluice.yaml" <<YAML
state_dir: $T/state
run_as_user: ""
relayd:
  listen: 127.0.0.1:$RP
  metrics_listen: ""
events:
  webhooks:
    - { url: "http://127.0.0.1:$WP/hook", secret: $WSECRET, types: [bounced, complained] }
YAML
sluice_relayd_start "$T/sluice.yaml" || die "sluice-relayd did not start"
swaks_run q --server "127.0.0.1:$RP" --from news@example.com --to bob@dest.example,carol@dest.example \
  --header "Subject: newsletter" --header "Message-Id: <nl-42@example.com>"
ID=$(grep -oE 'queued as [0-9A-Z]{16}' "$T/q" | awk '{print $3}')
[ -n "$ID" ] || die "nothing queued"
CTL=("$BUILD/sluicectl/sluicectl" --config "$T/sluice.yaml")
V0=$("${CTL[@]}" bounce verp "$ID" 0 news@bounces.example)
V1=$("${CTL[@]}" bounce verp "$ID" 1 news@bounces.example)
note "queued $ID; VERP return paths $V0, $V1"
echo "$V0" > "$T/v0.txt"
expect_match "the VERP address has the DESIGN.md shape" "^news\+[0-9a-z]{16}\.0\.[0-9a-z]{8}@bounces\.example$" "$T/v0.txt"

dsn() {  # dsn RCPT STATUS DIAG ACTION [ORIGINAL_RETURN_PATH]: with the original's headers when given ("-": without Return-Path)
  printf 'From: MAILER-DAEMON@mx.dest.example\r\nTo: %s\r\nSubject: Undelivered Mail Returned to Sender\r\n' "$V0"
  printf 'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
  printf -- '--b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n'
  printf -- '--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.dest.example\r\n\r\n'
  printf 'Final-Recipient: rfc822; %s\r\nAction: %s\r\nStatus: %s\r\nRemote-MTA: dns; mx.dest.example\r\n' "$1" "$4" "$2"
  printf 'Diagnostic-Code: smtp; %s\r\n\r\n' "$3"
  if [ -n "${5:-}" ]; then
    printf -- '--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n'
    [ "$5" != - ] && printf 'Return-Path: <%s>\r\n' "$5"
    printf 'From: news@example.com\r\nTo: %s\r\nMessage-Id: <nl-42@example.com>\r\nSubject: newsletter\r\n\r\n' "$1"
  fi
  printf -- '--b1--\r\n'
}
events_for() { grep -c "\"recipient\":\"$1\"" "$T/state/events.jsonl"; }
nothing_suppressed_for() {  # nothing_suppressed_for NAME ADDRESS EVENTS_BEFORE: no suppression, no new event
  "${CTL[@]}" suppress list --json > "$T/$1.supp.json"
  expect_no_match "$1: nothing suppressed for $2" "\"address\":\"$2\"" "$T/$1.supp.json"
  expect_eq "$1: no new event for $2" "$(events_for "$2")" "$3" "$T/state/events.jsonl"
}
receive() {  # receive NAME ENVELOPE_RCPT < message
  "${CTL[@]}" bounce receive --recipient "$2" > "$T/$1.out" 2> "$T/$1.err"; echo "rc=$?" >> "$T/$1.out"
}
dsn bob@dest.example 5.1.1 "550 5.1.1 <bob@dest.example>: Recipient address rejected: User unknown" failed > "$T/hard.eml"
receive hard "$V0" < "$T/hard.eml"
expect_match "hard bounce handled, exit 0" "handled: 1 recipient\(s\), 1 suppressed" "$T/hard.out"
expect_match "hard bounce logged with the queue id" "$ID: to=<bob@dest\.example>, bounce reason=userunknown, status=5\.1\.1, suppressed \(scope example\.com\)" "$T/hard.err"
"${CTL[@]}" suppress list --json > "$T/supp1.json"
expect_match "bob suppressed for example.com, reason and source recorded" '"address":"bob@dest.example".*"scope":"example.com"|"scope":"example.com".*"address":"bob@dest.example"' "$T/supp1.json"
expect_match "a bounced event in events.jsonl" "\"type\":\"bounced\".*\"queue_id\":\"$ID\".*\"recipient\":\"bob@dest.example\"" "$T/state/events.jsonl"
# The pipe's event goes through relayd's webhook outbox (same queue.db); relayd's sender posts it.
WH=$T/webhook/posts.jsonl
expect_match "webhook: relayd posted the piped bounce (bob, userunknown)" \
  "\"status\": 200, .*type\\\\\": *\\\\\"bounced.*bob@dest\.example.*userunknown" "$WH" 10
expect_no_match "webhook: every signature verifies (HMAC-SHA256 of t.body)" '"signature_ok": false' "$WH"
BOUNCE_EVENT=$(grep -o "\"id\":\"[0-9A-Z]\{26\}\",\"type\":\"bounced\"" "$T/state/events.jsonl" | head -1 | cut -d'"' -f4)
expect_match "webhook: the same event id as events.jsonl's" "\"event_id\": \"$BOUNCE_EVENT\"" "$WH"
"${CTL[@]}" why "$ID" > "$T/why.txt" 2>&1
expect_match "sluicectl why shows the asynchronous bounce on bob's line" \
  "from mx\.dest\.example  bounce report \(userunknown, 5\.1\.1\), suppressed: 550 5\.1\.1" "$T/why.txt"

sed "s/^To: .*/To: $V1\r/" < <(dsn carol@dest.example 4.2.2 "452 4.2.2 <carol@dest.example>: Mailbox full" delayed) > "$T/soft.eml"
receive soft "$V1" < "$T/soft.eml"
expect_match "soft bounce: event only" "handled: 1 recipient\(s\), 0 suppressed" "$T/soft.out"
"${CTL[@]}" suppress list --json > "$T/supp2.json"
expect_no_match "carol is not suppressed" 'carol@dest\.example' "$T/supp2.json"

# Forged reports about carol, a real recipient of the real message, quoting its real Message-ID.
# (Each must be ignored; carol's one real complaint comes below.)
FORGED=$(echo "$V1" | sed -E 's/\.1\.[0-9a-z]{8}@/.1.aaaaaaaa@/')
[ "$FORGED" != "$V1" ] || FORGED=$(echo "$V1" | sed -E 's/\.1\.[0-9a-z]{8}@/.1.bbbbbbbb@/')
HARD_CAROL="550 5.1.1 <carol@dest.example>: Recipient address rejected: User unknown"
FORGED_RE=${FORGED//+/\\+}
CAROL_EVENTS=$(events_for carol@dest.example)  # the soft bounce's
dsn carol@dest.example 5.1.1 "$HARD_CAROL" failed - | sed "s/^To: .*/To: $FORGED\r/" > "$T/forged.eml"
receive forged "$FORGED" < "$T/forged.eml"
expect_eq "forged VERP mac quoting the real Message-ID: exactly 'ignored: not verified', exit 0" "$(tr '\n' ' ' < "$T/forged.out")" "ignored: not verified rc=0 " "$T/forged.out"
expect_match "forged VERP mac: logged" "does not verify \(forged or foreign bounce\): $FORGED_RE" "$T/forged.err"
expect_match "forged VERP mac: the ignored report is logged with its Message-ID" "bounce quoting Message-ID <nl-42@example\.com>: a VERP address in it does not verify.*; ignored" "$T/forged.err"
nothing_suppressed_for forged carol@dest.example "$CAROL_EVENTS"

dsn carol@dest.example 5.1.1 "$HARD_CAROL" failed "news@example.com" | sed "s/^To: .*/To: news@example.com\r/" > "$T/plain.eml"
receive plain news@example.com < "$T/plain.eml"
expect_eq "DSN to a plain address quoting the real Message-ID and recipient: ignored, exit 0" "$(tr '\n' ' ' < "$T/plain.out")" "ignored: not verified rc=0 " "$T/plain.out"
expect_match "DSN to a plain address: logged (a bounce needs our verified VERP return path)" "quoting Message-ID <nl-42@example\.com>: a bounce needs our verified VERP return path.*; ignored" "$T/plain.err"
nothing_suppressed_for plain carol@dest.example "$CAROL_EVENTS"

dsn carol@dest.example 5.1.1 "$HARD_CAROL" failed "$FORGED" | sed "s/^To: .*/To: news@example.com\r/" > "$T/quoted.eml"
receive quoted news@example.com < "$T/quoted.eml"
expect_eq "DSN quoting a forged VERP Return-Path and the real Message-ID: ignored, exit 0" "$(tr '\n' ' ' < "$T/quoted.out")" "ignored: not verified rc=0 " "$T/quoted.out"
expect_match "DSN quoting a forged VERP Return-Path: logged" "does not verify" "$T/quoted.err"
nothing_suppressed_for quoted carol@dest.example "$CAROL_EVENTS"

arf() {  # arf [ORIGINAL_MAIL_FROM]: an ARF abuse report about carol quoting the real Message-ID
  printf 'From: fbl@isp.example\r\nTo: fbl@example.com\r\nSubject: complaint\r\nMIME-Version: 1.0\r\n'
  printf 'Content-Type: multipart/report; report-type=feedback-report; boundary="f1"\r\n\r\n'
  printf -- '--f1\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n\r\n'
  printf -- '--f1\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: isp-fbl/1.0\r\nVersion: 1\r\n'
  [ -n "${1:-}" ] && printf 'Original-Mail-From: <%s>\r\n' "$1"
  printf 'Original-Rcpt-To: carol@dest.example\r\n\r\n'
  printf -- '--f1\r\nContent-Type: message/rfc822\r\n\r\nFrom: news@example.com\r\nTo: carol@dest.example\r\nMessage-Id: <nl-42@example.com>\r\nSubject: newsletter\r\n\r\nhello\r\n\r\n--f1--\r\n'
}
arf "$FORGED" > "$T/arf-forged.eml"
receive arf-forged fbl@example.com < "$T/arf-forged.eml"
expect_eq "complaint with a forged VERP Original-Mail-From: ignored despite the real Message-ID" "$(tr '\n' ' ' < "$T/arf-forged.out")" "ignored: not verified rc=0 " "$T/arf-forged.out"
expect_match "complaint with a forged VERP Original-Mail-From: logged" "does not verify \(forged or foreign bounce\): $FORGED_RE" "$T/arf-forged.err"
nothing_suppressed_for arf-forged carol@dest.example "$CAROL_EVENTS"

arf > "$T/arf.eml"
receive arf fbl@example.com < "$T/arf.eml"
expect_match "complaint matched by Message-ID and suppressed" "handled: 1 recipient\(s\), 1 suppressed" "$T/arf.out"
expect_match "a complained event" "\"type\":\"complained\".*\"recipient\":\"carol@dest.example\"" "$T/state/events.jsonl"
expect_match "webhook: the complaint was posted too" "\"status\": 200, .*type\\\\\": *\\\\\"complained.*carol@dest\.example" "$WH" 10
expect_no_match "webhook: the forged reports were never posted" "aaaaaaaa|bbbbbbbb|frank@" "$WH"

printf 'From: bob@dest.example\r\nTo: %s\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\n\r\nI am away.\r\n' "$V0" > "$T/vacation.eml"
receive vacation "$V0" < "$T/vacation.eml"
expect_match "auto-reply ignored, exit 0" "^ignored: (autoreply|auto-reply)" "$T/vacation.out"

# --- through a real Postfix with contrib/postfix/bounce-*.cf.snippet and bounce.transport --------
# The daemons and the pipe run as an unprivileged user (nobody here, sluice on a real host) who
# owns its own state_dir, as in production; root only reads it afterwards.
note "Postfix: bounces for bounces.example.com piped into sluicectl bounce receive (user nobody)"
CONTRIB=$E2E_SRC/../../contrib/postfix
PS=$T/pstate
mkdir -p "$PS" && chown nobody: "$PS" && chmod 700 "$PS"
chmod o+x "$T"  # nobody must reach its state_dir and config inside the test's temp dir
PRP=$(free_port)
cat > "$T/psluice.yaml" <<YAML
state_dir: $PS
run_as_user: nobody
relayd:
  listen: 127.0.0.1:$PRP
  metrics_listen: ""
events:
  webhooks:
    - { url: "http://127.0.0.1:$WP/hook", secret: $WSECRET, types: [bounced] }
YAML
chmod 644 "$T/psluice.yaml"
sluice_relayd_start "$T/psluice.yaml" || die "sluice-relayd (run_as_user nobody) did not start"
swaks_run pq --server "127.0.0.1:$PRP" --from news@example.com --to erin@dest.example,frank@dest.example \
  --header "Subject: newsletter 2" --header "Message-Id: <nl-43@example.com>"
PID2=$(grep -oE 'queued as [0-9A-Z]{16}' "$T/pq" | awk '{print $3}')
[ -n "$PID2" ] || die "nothing queued by the second relayd"
PCTL=("$BUILD/sluicectl/sluicectl" --config "$T/psluice.yaml")
PV0=$("${PCTL[@]}" bounce verp "$PID2" 0 news@bounces.example.com)
PFORGED=$(echo "$("${PCTL[@]}" bounce verp "$PID2" 1 news@bounces.example.com)" | sed -E 's/\.1\.[0-9a-z]{8}@/.1.aaaaaaaa@/')
mkdir -p "$T/pfb/etc"
grep -vE '^#' "$CONTRIB/bounce.transport" > "$T/pfb/etc/transport"
expect_match "bounce.transport routes the bounce domain to sluice-bounce" '^bounces\.example\.com +sluice-bounce:$' "$T/pfb/etc/transport"
postmap "$T/pfb/etc/transport" || die "postmap of the shipped transport map failed"
sed "s|hash:/etc/postfix/transport|hash:$T/pfb/etc/transport|" "$CONTRIB/bounce-main.cf.snippet" | grep -E '^[a-z_-]+ =' > "$T/pfb-main.cf"
pf_instance pfb "$(free_port)" 9
# As a sysadmin would: the service into master.cf, the snippet into main.cf, check, reload.
sed "s|user=sluice|user=nobody|; s|/usr/bin/sluicectl --config /etc/sluice/sluice.yaml|$BUILD/sluicectl/sluicectl --config $T/psluice.yaml|" \
  "$CONTRIB/bounce-master.cf.snippet" | grep -vE '^#' >> "$T/pfb/etc/master.cf"
expect_match "master.cf has the sluice-bounce pipe service" '^sluice-bounce +unix .* pipe$' "$T/pfb/etc/master.cf"
while IFS= read -r line; do postconf -c "$T/pfb/etc" -e "$line" || die "postconf -e $line"; done < "$T/pfb-main.cf"
postfix -c "$T/pfb/etc" check > "$T/pfb-check.log" 2>&1 || { show_tail "$T/pfb-check.log"; die "postfix check with the bounce snippets"; }
expect_eq "postfix check has nothing to say about the bounce snippets" "$(wc -l < "$T/pfb-check.log")" 0 "$T/pfb-check.log"
postfix -c "$T/pfb/etc" reload > "$T/pfb-reload.log" 2>&1 || die "postfix reload"
for ((i = 0; i < 50; i++)); do grep -q 'reload -- version' "$(pf_log)" && break; sleep 0.1; done
# A real DSN for erin (to her VERP return path) and a forged one for frank (a bad mac), from <>.
sed "s/$V0/$PV0/g; s/bob@dest\.example/erin@dest.example/g" "$T/hard.eml" > "$T/p-hard.eml"
sed "s/$V0/$PFORGED/g; s/bob@dest\.example/frank@dest.example/g" "$T/hard.eml" > "$T/p-forged.eml"
swaks_run p-hard --from '<>' --to "$PV0" --data "@$T/p-hard.eml"
expect_match "Postfix accepts the DSN for the bounce domain" '^<-  250 2\.0\.0 Ok: queued as' "$T/p-hard"
swaks_run p-forged --from '<>' --to "$PFORGED" --data "@$T/p-forged.eml"
expect_match "Postfix accepts the forged DSN too" '^<-  250 2\.0\.0 Ok: queued as' "$T/p-forged"
pf_wait_queue_empty "" 30 >/dev/null
PLOG=$(pf_log)
expect_match "the DSN was delivered to the pipe service (exit 0)" "to=<${PV0//+/\\+}>, relay=sluice-bounce, .*status=sent \(delivered via sluice-bounce service" "$PLOG"
expect_match "the forged DSN too (exit 0: the MTA must not bounce it)" "to=<${PFORGED//+/\\+}>, relay=sluice-bounce, .*status=sent \(delivered via sluice-bounce service" "$PLOG"
expect_no_match "nothing deferred or bounced by the pipe" "relay=sluice-bounce, .*status=(deferred|bounced)" "$PLOG"
"${PCTL[@]}" suppress list --json > "$T/psupp.json" 2>&1
expect_match "through Postfix: erin suppressed for example.com" '"address":"erin@dest.example".*"scope":"example.com"|"scope":"example.com".*"address":"erin@dest.example"' "$T/psupp.json"
expect_no_match "through Postfix: frank (forged DSN) not suppressed" 'frank@dest\.example' "$T/psupp.json"
expect_match "through Postfix: a bounced event for erin, written as nobody" "\"type\":\"bounced\".*\"queue_id\":\"$PID2\".*\"recipient\":\"erin@dest.example\"" "$PS/events.jsonl"
expect_eq "the events file belongs to the pipe's user" "$(stat -c %U "$PS/events.jsonl" 2>/dev/null)" nobody
expect_match "through Postfix's pipe: the bounce for erin reached the webhook receiver, signed" \
  "\"status\": 200, .*\"signature_ok\": true, .*type\\\\\": *\\\\\"bounced.*erin@dest\.example" "$WH" 10
expect_no_match "through Postfix's pipe: nothing posted for frank (forged)" 'frank@dest\.example' "$WH"
finish
