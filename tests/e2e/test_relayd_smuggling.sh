#!/bin/bash
# test_relayd_smuggling.sh BUILD_DIR - SMTP smuggling and STARTTLS injection against sluice-relayd,
# with raw bytes (smtp_raw.py): each end-of-data variant <LF>.<LF>, <CR>.<CR>, <LF>.<CR><LF>,
# <CR><LF>.<LF> followed by a smuggled second transaction, then the real <CR><LF>.<CR><LF>.
# None may end the data, none may let the second message through; with bare_line_ends: reject the
# whole message is refused (550 5.5.2); with normalize it is accepted as ONE message. Plaintext
# pipelined after STARTTLS is discarded (CVE-2011-0411 class).
source "$(dirname "$0")/lib.sh" "$@"

mkdir -p "$T/state" "$T/certs"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=relay.test.example -keyout "$T/certs/k.pem" -out "$T/certs/c.pem" 2>/dev/null
chmod 600 "$T/certs/k.pem"
RP=$(free_port) SP=$(free_port)
write_cfg() {
  cat > "$T/sluice.yaml" <<YAML
state_dir: $T/state
run_as_user: ""
relayd:
  listen: 127.0.0.1:$RP
  submission_listen: 127.0.0.1:$SP
  tls_cert_file: $T/certs/c.pem
  tls_key_file: $T/certs/k.pem
  hostname: relay.test.example
  bare_line_ends: $1
  metrics_listen: ""
YAML
}
write_cfg reject
sluice_relayd_start "$T/sluice.yaml" || die "sluice-relayd did not start"
queued() { "$BUILD/sluicectl/sluicectl" --config "$T/sluice.yaml" queue list --json 2>/dev/null | grep -c .; }

play() {  # play NAME EOD: a message whose fake end is EOD (python escapes), a smuggled MAIL, the real end
  local name=$1 eod=$2
  {
    echo "b'EHLO client.example\r\n'"
    echo "b'MAIL FROM:<a@example.com>\r\n'"
    echo "b'RCPT TO:<victim@dest.example>\r\n'"
    echo "b'DATA\r\n'"
    echo "b'Subject: first\r\n\r\nbody$eod'"
    echo "b'MAIL FROM:<ceo@bank.example>\r\nRCPT TO:<target@dest.example>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n.\r\n'"
    echo "WAIT 0.3"
    echo "b'\r\n.\r\n'"
    echo "b'QUIT\r\n'"
  } > "$T/$name.in"
  python3 "$E2E_SRC/smtp_raw.py" "127.0.0.1:$RP" "$T/$name.in" > "$T/$name.out" 2>&1
}
VARIANTS=('LF.LF:\n.\n' 'CR.CR:\r.\r' 'LF.CRLF:\n.\r\n' 'CRLF.LF:\r\n.\n')
before=$(queued)
for v in "${VARIANTS[@]}"; do
  name=${v%%:*} eod=${v#*:}
  play "rej-$name" "$eod"
  expect_match "reject mode, <$name>: the message is refused 550 5.5.2" '^<- 550 5\.5\.2 ' "$T/rej-$name.out"
  expect_eq "reject mode, <$name>: no 250 queued at all" "$(grep -c 'queued as' "$T/rej-$name.out")" 0 "$T/rej-$name.out"
done
expect_eq "reject mode: nothing entered the queue" "$(queued)" "$before"

# normalize mode: one message each, never two
stop_pid "$RELAYD_PID"
write_cfg normalize
sluice_relayd_start "$T/sluice.yaml" || die "sluice-relayd (normalize) did not start"
for v in "${VARIANTS[@]}"; do
  name=${v%%:*} eod=${v#*:}
  play "norm-$name" "$eod"
  expect_eq "normalize mode, <$name>: exactly one message queued" "$(grep -c 'queued as' "$T/norm-$name.out")" 1 "$T/norm-$name.out"
done
expect_eq "normalize mode: 4 messages queued, none smuggled" "$(queued)" $((before + 4))
"$BUILD/sluicectl/sluicectl" --config "$T/sluice.yaml" queue list --json > "$T/q.json"
expect_no_match "no queued message has the smuggled recipient" 'target@dest\.example' "$T/q.json"

# STARTTLS with pipelined plaintext: the injected command must never run inside TLS
python3 - "$SP" > "$T/starttls.out" 2>&1 <<'PYEOF'
import socket, ssl, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
f = s.makefile("rb")
def reply(fh):
    lines = []
    while True:
        l = fh.readline().decode().rstrip("\r\n"); lines.append(l)
        if len(l) < 4 or l[3] != "-": return lines
print(reply(f)); s.sendall(b"EHLO x\r\n"); print(reply(f))
s.sendall(b"STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n")
print(reply(f))
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s); tf = t.makefile("rb")
t.sendall(b"EHLO x\r\n")
r = reply(tf); print("after TLS, EHLO:", r[0], "...", r[-1])
t.sendall(b"NOOP\r\n"); print("after TLS, NOOP:", reply(tf))
PYEOF
expect_match "STARTTLS answered 220" "220 2\.0\.0 Ready to start TLS" "$T/starttls.out"
expect_match "inside TLS the first reply is to our EHLO" "after TLS, EHLO: 250-" "$T/starttls.out"
expect_match "the injected MAIL never got a reply (NOOP answered normally)" "after TLS, NOOP: \['250 2\.0\.0 Ok'\]" "$T/starttls.out"
expect_match "relayd logs the discarded bytes" "discarding [0-9]+ bytes pipelined after STARTTLS" "$RELAYD_ERR"
finish
