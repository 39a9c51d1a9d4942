#!/bin/bash
# test_test_mx.sh BUILD_DIR - the programmable test MX (test_mx.py) that the delivery tests rely on
# does what its header says, checked with swaks: 250 and a stored message, RCPT and DATA codes by
# local part, MAIL codes by the sender's local part, greylisting (450 then 250), a connection dropped in DATA, STARTTLS with a test
# certificate, HELO-only servers and server-wide MAIL replies.
source "$(dirname "$0")/lib.sh" "$@"

test_cert "$T/certs" mx.test.example
test_mx_start mx1 127.0.0.2 --tls cert --cert "$T/certs/mx.test.example.crt" --key "$T/certs/mx.test.example.key" --size 100000
MX1=$MX_PORT DIR1=$MX_DIR
sw() { local out=$1; shift; swaks_run "$out" --server "127.0.0.2:$MX1" --from a@example.com "$@"; }

sw ok --to ok-1@dest.example --header "Subject: tmx ok"
expect_match "ok -> 250 queued" '^<-  250 2\.0\.0 Ok: queued as TEST' "$T/ok"
expect_match "the message is stored with its envelope" '^X-Test-MX-Envelope: .*"rcpts": \["ok-1@dest.example"\]' "$(ls "$DIR1"/*.eml | head -1)"
sw r550 --to rcpt550-1@dest.example
expect_match "rcpt550 -> 550 5.1.1 at RCPT (user unknown)" '^<\*\* 550 5\.1\.1 ' "$T/r550"
sw r452 --to rcpt452-1@dest.example
expect_match "rcpt452 -> 452 at RCPT" '^<\*\* 452 4\.3\.0 ' "$T/r452"
sw d451 --to data451-1@dest.example
expect_match "data451 -> 451 after the data" '^<\*\* 451 4\.3\.0 ' "$T/d451"
swaks_run m451 --server "127.0.0.2:$MX1" --from mail451-1@example.com --to ok@dest.example
expect_match "sender mail451 -> 451 at MAIL" '^<\*\* 451 4\.3\.0 .*sender mail451-1@example\.com' "$T/m451"
swaks_run m550 --server "127.0.0.2:$MX1" --from mail550+x.0.y@example.com --to ok@dest.example
expect_match "sender mail550+VERP -> 550 at MAIL" '^<\*\* 550 5\.7\.1 ' "$T/m550"
sw g1 --to grey-1@dest.example
expect_match "grey: first attempt 450 greylisted" '^<\*\* 450 4\.7\.1 .*Greylisted' "$T/g1"
sw g2 --to grey-1@dest.example
expect_match "grey: second attempt 250" '^<-  250 2\.0\.0 Ok: queued' "$T/g2"
sw drop --to drop-1@dest.example --body "$(head -c 3000 /dev/zero | tr '\0' x | fold -w 70)"
expect_no_match "drop: the message is never accepted" '^<-  250 2\.0\.0 Ok: queued' "$T/drop"
sw tls --tls --to ok-2@dest.example
expect_match "STARTTLS with the test certificate" '^<~  250 2\.0\.0 Ok: queued' "$T/tls"
expect_match "the stored envelope records the TLS version" '"tls": "TLSv1\.[23]"' "$(grep -l ok-2 "$DIR1"/*.eml)"
sw ehlo --quit-after EHLO
expect_match "EHLO advertises SIZE" '^<-  250-SIZE 100000' "$T/ehlo"

test_mx_start mx2 127.0.0.3 --no-ehlo --mail-reply 421
swaks_run helo --server "127.0.0.3:$MX_PORT" --from a@example.com --to ok@dest.example
expect_match "--no-ehlo: EHLO refused" '^<\*\* 502 5\.5\.2' "$T/helo"
expect_match "--mail-reply 421: MAIL FROM answered 421" '^<\*\* 421 4\.3\.0' "$T/helo"
finish
