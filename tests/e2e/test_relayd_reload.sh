#!/bin/bash
# test_relayd_reload.sh BUILD_DIR - sluice-relayd's configuration lifetimes across SIGHUP and a
# forced SIGTERM (sessions still open after the 10 s bound):
#   (a) two reloads (relayd.hostname h0 -> h1 -> h2) around one session's DATA (the first before
#       it, the second while it reads): the message is queued, and that session keeps the
#       configuration it started with (EHLO again names h0); a new session gets the newest one
#       (220 h2). Before the fix DATA read the Config that the second reload had freed.
#   (b) SIGTERM with a session that never leaves: relayd exits 0 after its 10 s bound, logging
#       "stopped", without touching the daemon after it is gone (no crash, no sanitizer report).
#   (c) delivery TLS and webhooks across SIGHUP (a second relayd, delivering through a local
#       unbound to a test MX whose certificate only its own CA file verifies, tls_policy verify):
#       under a CA file that does not know that certificate the message is deferred and the
#       events go to webhook A (secret A); a reload naming an unreadable tls_ca_file is refused
#       with a log line and changes nothing (still deferred, still A); a reload with the right
#       CA file and webhook B (secret B) delivers it, and the delivered event goes to B, signed
#       with B's secret, not to A.
source "$(dirname "$0")/lib.sh" "$@"

mkdir -p "$T/state"
RP=$(free_port)
write_cfg() {  # write_cfg HOSTNAME
  cat > "$T/sluice.yaml" <<YAML
state_dir: $T/state
run_as_user: ""
relayd:
  listen: 127.0.0.1:$RP
  hostname: $1
  metrics_listen: ""
YAML
}
write_cfg h0.test.example
sluice_relayd_start "$T/sluice.yaml" || die "sluice-relayd did not start"

python3 - "$RP" "$RELAYD_PID" "$T" "$RELAYD_ERR" > "$T/reload.out" 2>&1 <<'PYEOF'
import os, signal, socket, sys, time
port, pid, tdir, err = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
def session():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s, s.makefile("rb")
def reply(f):
    lines = []
    while True:
        l = f.readline().decode().rstrip("\r\n")
        lines.append(l)
        if len(l) < 4 or l[3] != "-": return lines
def reload(host, n):
    with open(tdir + "/sluice.yaml") as fh: text = fh.read()
    import re
    with open(tdir + "/sluice.yaml", "w") as fh: fh.write(re.sub(r"hostname: .*", "hostname: " + host, text))
    os.kill(pid, signal.SIGHUP)
    for _ in range(100):
        if open(err).read().count("reloaded ") >= n: return
        time.sleep(0.05)
    print("reload", n, "not logged")
s, f = session()
print("greeting:", reply(f)[0])
s.sendall(b"EHLO x\r\n"); print("EHLO:", reply(f)[0])
s.sendall(b"MAIL FROM:<a@example.com>\r\n"); reply(f)
s.sendall(b"RCPT TO:<b@dest.example>\r\n"); reply(f)
reload("h1.test.example", 1)              # DATA starts under the first reload's configuration ...
s.sendall(b"DATA\r\n"); print("DATA:", reply(f)[0])
s.sendall(b"Subject: reload\r\n\r\nfirst line\r\n")
time.sleep(0.2)
reload("h2.test.example", 2)              # ... which the second reload replaces while DATA reads
s.sendall(b"second line\r\n")
big = b"x" * 900 + b"\r\n"
for _ in range(200): s.sendall(big)       # the session reads on (and allocates) after the reloads
s.sendall(b"last line\r\n.\r\n"); print("end of data:", reply(f)[0])
s.sendall(b"EHLO x\r\n"); print("EHLO again in the same session:", reply(f)[0])
s2, f2 = session(); print("new session greeting:", reply(f2)[0])
s2.sendall(b"QUIT\r\n"); reply(f2); s2.close()
s.sendall(b"QUIT\r\n"); print("QUIT:", reply(f)[0]); s.close()
# (b) one session that never leaves, then SIGTERM
s3, f3 = session(); reply(f3)
s3.sendall(b"EHLO idle\r\n"); reply(f3)
t0 = time.time()
os.kill(pid, signal.SIGTERM)
s3.settimeout(20)
try:
    data = s3.recv(4096)
    while data: data = s3.recv(4096)
    print("idle session closed after %.0f s" % (time.time() - t0))
except OSError as e:
    print("idle session: %s after %.0f s" % (e, time.time() - t0))
PYEOF
cat "$T/reload.out" | sed 's/^/    | /'
expect_match "(a) the first session started with h0" "^EHLO: 250-h0\.test\.example" "$T/reload.out"
expect_match "(a) two reloads logged" "reloaded .*sluice\.yaml" "$RELAYD_ERR"
expect_no_match "(a) no reload missed" "not logged" "$T/reload.out"
expect_match "(a) the message in DATA across both reloads is queued" "^end of data: 250 2\.0\.0 Ok: queued as [0-9A-Z]{16}" "$T/reload.out"
expect_match "(a) that session keeps its start-of-session configuration (h0)" "^EHLO again in the same session: 250-h0\.test\.example" "$T/reload.out"
expect_match "(a) a new session gets the newest configuration (h2)" "^new session greeting: 220 h2\.test\.example" "$T/reload.out"
expect_match "(b) the idle session is closed at the 10 s bound" "^idle session (closed|: .*) after (9|10|11|12) s" "$T/reload.out"
for ((i = 0; i < 100; i++)); do _is_our_child "$RELAYD_PID" || break; sleep 0.1; done
if _is_our_child "$RELAYD_PID"; then fail "(b) relayd still running after the forced stop"; rc=none
else wait "$RELAYD_PID"; rc=$?; fi
expect_eq "(b) relayd exits 0 after the forced stop" "$rc" 0 "$RELAYD_ERR"
expect_match "(b) relayd logged its stop" "sluice-relayd\[[0-9]+\]: stopped$" "$RELAYD_ERR"
expect_no_match "(b) no crash or sanitizer report" "AddressSanitizer|runtime error|double free|Segmentation|Aborted" "$RELAYD_ERR"

# --- (c) delivery TLS contexts and webhooks reloaded ---------------------------------------------
mkdir -p "$T/c/state" "$T/certs"
MXP=$(free_port) RP2=$(free_port) WA=$(free_port) WB=$(free_port)
test_cert "$T/certs" mx.tls.example
test_cert "$T/certs" unrelated.example
echo "not a certificate" > "$T/certs/garbage.pem"
unbound_start '  local-zone: "tls.example." static
  local-data: "tls.example. MX 10 mx.tls.example."
  local-data: "mx.tls.example. A 127.0.0.4"'
start_bg mxtls /usr/bin/python3 "$E2E_SRC/test_mx.py" --listen "127.0.0.4:$MXP" --dir "$T/mxtls" --name mx.tls.example \
  --tls cert --cert "$T/certs/mx.tls.example.crt" --key "$T/certs/mx.tls.example.key"
wait_port 127.0.0.4 "$MXP" 10 "$LAST_PID" || die "test MX did not start"
for h in A B; do
  port=$WA; [ $h = B ] && port=$WB
  start_bg "hook$h" /usr/bin/python3 "$E2E_SRC/webhook_receiver.py" --listen "127.0.0.1:$port" --dir "$T/hook$h" \
    --secret "webhook-secret-$h-0123456789" --fail-first 0
  wait_port 127.0.0.1 "$port" 10 "$LAST_PID" || die "webhook receiver $h did not start"
done
write_cfg_c() {  # write_cfg_c CA_FILE WEBHOOK(A|B)
  local port=$WA; [ "$2" = B ] && port=$WB
  cat > "$T/c/sluice.yaml" <<YAML
state_dir: $T/c/state
run_as_user: ""
relayd:
  listen: 127.0.0.1:$RP2
  hostname: relay.test.example
  metrics_listen: ""
dns:
  servers: [127.0.0.1@$DNS_PORT]
  timeout: 3s
delivery:
  smtp_port: $MXP
  connect_timeout: 2s
  greeting_timeout: 2s
  command_timeout: 3s
  retry_initial: 1s
  retry_max: 1s
  greylist_retry: 1s
  tls_ca_file: $1
  tls_policy_map:
    - { domain: tls.example, policy: verify }
events:
  webhooks:
    - { url: "http://127.0.0.1:$port/hook", secret: webhook-secret-$2-0123456789, types: [deferred, delivered] }
  webhook_initial_backoff: 1s
YAML
}
reloads_before=$(grep -c "reloaded " "$RELAYD_ERR")
write_cfg_c "$T/certs/unrelated.example.crt" A
sluice_relayd_start "$T/c/sluice.yaml" || die "second sluice-relayd did not start"
EV=$T/c/state/events.jsonl
swaks_run c1.out --server "127.0.0.1:$RP2" --from a@sender.example --to x@tls.example --header "Subject: reload tls"
expect_match "(c) the message is queued" '250 2\.0\.0 Ok: queued as' "$T/c1.out"
expect_match "(c) untrusted certificate under the first CA file: deferred" '"type":"deferred".*"recipient":"x@tls.example"' "$EV" 15
expect_match "(c) ... and its event posted to webhook A, signed with A's secret" '"signature_ok": true.*deferred' "$T/hookA/posts.jsonl" 10

write_cfg_c "$T/certs/garbage.pem" B
kill -HUP "$RELAYD_PID"
expect_match "(c) a reload with an unreadable tls_ca_file is refused, naming it" \
  "reload refused, keeping the running configuration: delivery.tls_ca_file $T/certs/garbage.pem" "$RELAYD_ERR" 10
n_deferred=$(grep -c '"type":"deferred"' "$EV")
for ((i = 0; i < 100; i++)); do [ "$(grep -c '"type":"deferred"' "$EV")" -gt "$n_deferred" ] && break; sleep 0.1; done
expect_eq "(c) ... the old configuration keeps running: deferred again" "$(grep -c '"type":"deferred"' "$EV")" "$((n_deferred + 1))"
expect_eq "(c) ... and no event went to webhook B" "$(cat "$T/hookB/posts.jsonl" 2>/dev/null | wc -l)" 0

write_cfg_c "$T/certs/mx.tls.example.crt" B
kill -HUP "$RELAYD_PID"
for ((i = 0; i < 100; i++)); do [ "$(grep -c "reloaded " "$RELAYD_ERR")" -gt "$reloads_before" ] && break; sleep 0.1; done
expect_match "(c) the good reload is logged with the delivery TLS CA file and webhooks" \
  "reloaded $T/c/sluice.yaml.*delivery TLS \($T/certs/mx.tls.example.crt\) and 1 webhook\(s\) re-read" "$RELAYD_ERR"
expect_match "(c) the new CA file verifies the MX: delivered" '"type":"delivered".*"recipient":"x@tls.example"' "$EV" 15
expect_match "(c) ... over verified TLS" '"type":"delivered".*"tls":"policy=verify' "$EV"
expect_match "(c) the delivered event goes to webhook B, signed with B's secret" '"signature_ok": true.*delivered' "$T/hookB/posts.jsonl" 10
expect_no_match "(c) ... and not to webhook A" 'delivered' "$T/hookA/posts.jsonl"
expect_no_match "(c) no signature failed" '"signature_ok": false' "$T/hookA/posts.jsonl"
expect_no_match "(c) no signature failed at B" '"signature_ok": false' "$T/hookB/posts.jsonl"
finish
