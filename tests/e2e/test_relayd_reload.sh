#!/bin/bash
# test_relayd_reload.sh BUILD_DIR - sluice-relayd's configuration lifetimes across SIGHUP and a
# forced SIGTERM (sessions still open after the 10 s bound):
#   (a) two reloads (relayd.hostname h0 -> h1 -> h2) around one session's DATA (the first before
#       it, the second while it reads): the message is queued, and that session keeps the
#       configuration it started with (EHLO again names h0); a new session gets the newest one
#       (220 h2). Before the fix DATA read the Config that the second reload had freed.
#   (b) SIGTERM with a session that never leaves: relayd exits 0 after its 10 s bound, logging
#       "stopped", without touching the daemon after it is gone (no crash, no sanitizer report).
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
finish
