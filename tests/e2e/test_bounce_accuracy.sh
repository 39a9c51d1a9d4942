#!/bin/bash
# test_bounce_accuracy.sh - sluicectl bounce classify over the shared bounce corpus, scored
# against Sisimai's labels (tests/bounce/bounce_accuracy.py) with floors that only ever go up;
# plus the CLI on an mbox, on a directory, in table form, and on hostile input (a 50 MB message,
# binary junk), each with a bounded time and a clear "not a bounce"/"unparseable" record.
source "$(dirname "$0")/lib.sh" "$@"

CTL=$BUILD/sluicectl/sluicectl
CORPUS=${SLUICE_BOUNCE_CORPUS:-$E2E_SRC/../../../shared/corpus/bounces}
[ -x "$CTL" ] || die "no sluicectl in $BUILD"
[ -d "$CORPUS/messages" ] || die "no bounce corpus at $CORPUS"

note "accuracy against labels-sisimai425.jsonl (floors only ever go up)"
if python3 "$E2E_SRC/../bounce/bounce_accuracy.py" --sluicectl "$CTL" --corpus "$CORPUS" \
     --floor-reason 96.69 --floor-status 96.69 --floor-recipients 99.33 --floor-hardsoft 98.17 --floor-reason5 88.14 \
     > "$T/accuracy.txt" 2>&1; then
  pass "agreement at or above the floors"
else
  fail "agreement under a floor"
fi
sed -n '1,9p;/^FAIL/p' "$T/accuracy.txt" | sed 's/^/    /'

note "mbox file: one record per message"
MBOX=$CORPUS/messages/mbox__mbox-0
n=$("$CTL" bounce classify --json "$MBOX" | python3 -c 'import sys,json; print(len({json.loads(l)["msgindex"] for l in sys.stdin}))')
if [ "${n:-0}" -ge 30 ]; then pass "mbox split into $n messages"; else fail "mbox split: got ${n:-0} messages, want >= 30"; fi

note "table output names reason, status and rule"
"$CTL" bounce classify "$CORPUS/messages/bsd__lhost-qmail-01.eml" > "$T/table.txt"
expect_match "table header" "RECIPIENT +REASON" "$T/table.txt"
expect_match "table row" "kijitora@example.ne.jp +[a-z]+ +(hard|soft)" "$T/table.txt"

note "hostile input: bounded time, a clear verdict"
python3 - "$T/big.eml" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("From: someone@example.org\nSubject: big\n\n")
    line = "lorem ipsum user unknown mailbox full x@y.example\n"
    f.write(line * (50 * 1024 * 1024 // len(line)))
PY
head -c 300000 /dev/urandom > "$T/junk.bin"
start=$SECONDS
"$CTL" bounce classify --json "$T/big.eml" "$T/junk.bin" > "$T/bad.jsonl"; rc=$?
took=$((SECONDS - start))
expect_eq "classify exits 0 on hostile input" "$rc" 0
if [ "$took" -le 20 ]; then pass "50 MB + junk classified in ${took}s"; else fail "hostile input took ${took}s"; fi
expect_match "50 MB message is not a bounce" '"file":"big.eml".*"kind":"not-a-bounce"' "$T/bad.jsonl"
expect_match "binary junk is unparseable" '"file":"junk.bin".*"kind":"unparseable"' "$T/bad.jsonl"

note "a missing rules file is a clear error"
"$CTL" bounce classify --rules "$T/none.conf" "$MBOX" > /dev/null 2> "$T/norules.err"; rc=$?
expect_eq "exit 1 without rules" "$rc" 1
expect_match "error names the file" "none.conf: cannot read" "$T/norules.err"

finish
