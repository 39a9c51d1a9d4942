#!/bin/bash
# test_relayd_delivery_crash.sh BUILD_DIR - kill -9 sluice-relayd again and again while it delivers.
# 2,000 messages (each with a unique Message-ID <load-N@test.example>, from load_client.py) are
# queued with delivery off; then relayd delivers them to test_mx.py (127.0.0.2), found as the MX of
# dest.example through a local unbound, and is killed with SIGKILL 5 times, spread over the
# delivery (at every sixth of the messages the sink has received), and restarted each time.
# After each kill, before the restart, the queue index says which recipients were 'delivering' and
# the MX's files which of those it had already accepted (the outcome not yet recorded).
# At the end: every message is at the sink at least once (none lost); a message is there twice only
# if it was accepted and unrecorded at some kill; at most one such transaction per agent per kill
# (max_concurrency = destination_concurrency = 8), so duplicates <= kills x 8; every recipient is
# 'delivered' and no spool file is left (content deleted when all recipients are final). ~5 s.
source "$(dirname "$0")/lib.sh" "$@"

N=2000 KILLS=5 CONC=8
mkdir -p "$T/state"
RP=$(free_port) MXP=$(free_port)
unbound_start '  local-zone: "dest.example." static
  local-data: "dest.example. MX 10 mx.dest.example."
  local-data: "mx.dest.example. A 127.0.0.2"'
# The MX waits 20 ms before each 354 (8 agents: at most ~400 msgs/s), so the last sixth of the
# delivery lasts ~0.8 s whatever relayd's own speed: a kill cannot land after the end (it did once
# relayd delivered ~2,800 msgs/s: the fifth kill found nothing left to interrupt).
start_bg mx /usr/bin/python3 "$E2E_SRC/test_mx.py" --listen "127.0.0.2:$MXP" --dir "$T/mx" --name mx.dest.example \
  --data-delay 0.02
wait_port 127.0.0.2 "$MXP" 10 "$LAST_PID" || { show_tail "$T/mx.err"; die "test MX did not start"; }

config() {  # FILE ENABLED
  cat > "$1" <<YAML
state_dir: $T/state
run_as_user: ""
log: { target: stderr, level: warning }
relayd:
  listen: 127.0.0.1:$RP
  hostname: relay.sluice.example
  metrics_listen: ""
dns:
  servers: [127.0.0.1@$DNS_PORT]
  timeout: 3s
delivery:
  enabled: $2
  smtp_port: $MXP
  tls_policy: none
  max_concurrency: $CONC
  destination_concurrency: $CONC
  messages_per_connection: 50
  connect_timeout: 2s
  command_timeout: 5s
  retry_initial: 1s
  retry_max: 2s
YAML
}
config "$T/intake.yaml" false
config "$T/sluice.yaml" true

# --- 1. queue N messages with delivery off ---------------------------------------------------------
sluice_relayd_start "$T/intake.yaml" || die "sluice-relayd did not start"
timeout 120 python3 "$E2E_SRC/load_client.py" "127.0.0.1:$RP" "$N" 8 "$T/load.log" > "$T/load.out" 2>&1
acked=$(grep -c '^ACK' "$T/load.log")
expect_eq "all $N messages queued (250) with delivery off" "$acked" "$N" "$T/load.log"
stop_pid "$RELAYD_PID"
[ "$(ls "$T/mx" | grep -c '\.eml$')" = 0 ] || fail "the MX received mail while delivery was off"

# --- 2. deliver, with kill -9 at every sixth of the way ----------------------------------------------
at_sink() { ls "$T/mx" 2>/dev/null | grep -c '\.eml$'; }
sluice_relayd_start "$T/sluice.yaml" || die "sluice-relayd (delivery on) did not start"
t0=$SECONDS kills=0
for ((k = 1; k <= KILLS; k++)); do
  want=$((N * k / (KILLS + 1)))
  for ((i = 0; i < 300 && $(at_sink) < want; i++)); do sleep 0.05; done
  sleep 0.0$((RANDOM % 10))
  _is_our_child "$RELAYD_PID" || die "sluice-relayd died by itself before kill $k"
  kill -9 "$RELAYD_PID"; wait "$RELAYD_PID" 2>/dev/null; kills=$((kills + 1))
  # What the MX holds once it has finished what it had received (relayd is gone: nothing new comes).
  prev=-1
  for ((i = 0; i < 50 && $(at_sink) != prev; i++)); do prev=$(at_sink); sleep 0.1; done
  grep -hoiE '^Message-ID: <load-[0-9]+@' "$T"/mx/*.eml 2>/dev/null | grep -oE '[0-9]+' > "$T/sink$k.txt"
  # What was claimed and not yet recorded at the kill (relayd is down: the index is still).
  "$BUILD/sluicectl/sluicectl" --config "$T/sluice.yaml" queue list --json > "$T/kill$k.json" 2> "$T/kill$k.err" ||
    { show_tail "$T/kill$k.err"; die "sluicectl queue list after kill $k"; }
  note "kill $k: $(at_sink) messages at the sink, $(grep -o '"state":"delivering"' "$T/kill$k.json" | wc -l) recipients delivering"
  sluice_relayd_start "$T/sluice.yaml" || die "restart $k failed"
done
[ $kills -eq $KILLS ] && pass "relayd was killed with SIGKILL $kills times during delivery" || fail "only $kills kills"

# --- 3. the end: everything delivered ------------------------------------------------------------------
for ((i = 0; i < 400; i++)); do
  "$BUILD/sluicectl/sluicectl" --config "$T/sluice.yaml" queue list --json > "$T/final.json" 2> "$T/final.err"
  [ "$(grep -c '"state":"delivered"' "$T/final.json")" -ge "$N" ] && break
  sleep 0.1
done
note "delivery with $kills kills took $((SECONDS - t0)) s"
stop_pid "$RELAYD_PID"
"$BUILD/sluicectl/sluicectl" --config "$T/sluice.yaml" queue list --json > "$T/final.json" 2> "$T/final.err"
python3 - "$N" "$kills" "$CONC" "$T/mx" "$T/final.json" "$T/state/spool" "$T" > "$T/verify.out" 2>&1 <<'PYEOF'
import json, os, re, sys
n, kills, conc, mxdir, final, spool, tdir = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:8]
ok = True
def check(cond, what):
    global ok
    print(("PASS: " if cond else "FAIL: ") + what)
    ok &= bool(cond)

# Message-IDs at the sink, with the number of copies of each.
copies = {}
for f in os.listdir(mxdir):
    if not f.endswith(".eml"):
        continue
    with open(os.path.join(mxdir, f), "rb") as fh:
        m = re.search(rb"^Message-ID: <load-(\d+)@test\.example>", fh.read(8192), re.M | re.I)
    if m:
        copies[int(m.group(1))] = copies.get(int(m.group(1)), 0) + 1
lost = [i for i in range(n) if i not in copies]
dups = {i: c - 1 for i, c in copies.items() if c > 1}
ndup = sum(dups.values())
# At each kill: the messages 'delivering' in the index, and those of them already at the MX
# (accepted, the outcome not yet recorded: the only ones a restart can send twice).
delivering, per_kill, window, new_window = set(), [], set(), []
for k in range(1, kills + 1):
    here = set()
    for line in open(os.path.join(tdir, "kill%d.json" % k)):
        m = json.loads(line)
        mid = re.match(r"<load-(\d+)@", m["message_id"])
        if mid and any(r["state"] == "delivering" for r in m["recipients"]):
            here.add(int(mid.group(1)))
    sink = {int(x) for x in open(os.path.join(tdir, "sink%d.txt" % k)).read().split()}
    acc = here & sink
    new_window.append(len(acc - window))
    window |= acc
    delivering |= here
    per_kill.append(len(here))
print("at the sink: %d distinct of %d, %d lost, %d duplicate copies of %d messages; at the kills: %s delivering,"
      " of them %s already at the MX" % (len(copies), n, len(lost), ndup, len(dups), per_kill, new_window))
check(not lost, "no message lost: every one of the %d is at the sink at least once (lost: %s)" % (n, lost[:10]))
check(all(k > 0 for k in per_kill), "every kill interrupted deliveries ('delivering' rows at each kill: %s)" % per_kill)
outside = sorted(set(dups) - delivering)
check(not outside, "every duplicated message was 'delivering' at a kill (not: %s)" % outside[:10])
outside = sorted(set(dups) - window)
check(not outside, "every duplicated message was at the MX and not yet recorded at a kill (not: %s)" % outside[:10])
check(all(w <= conc for w in new_window),
      "at each kill at most one accepted, unrecorded transaction per agent: %s <= %d" % (new_window, conc))
check(ndup <= kills * conc, "duplicates %d <= kills x concurrency = %d x %d" % (ndup, kills, conc))
check(ndup <= sum(per_kill), "duplicates %d <= the recipients delivering at the kills (%d)" % (ndup, sum(per_kill)))
states = {}
msgs = 0
for line in open(final):
    m = json.loads(line)
    msgs += 1
    for r in m["recipients"]:
        states[r["state"]] = states.get(r["state"], 0) + 1
check(msgs == n and states == {"delivered": n}, "the queue ends with all %d recipients delivered (%d messages, %s)" % (n, msgs, states))
left = [f for d in os.listdir(spool) if d != "free" for f in os.listdir(os.path.join(spool, d))]
check(not left, "no spool file left (%d: %s)" % (len(left), left[:5]))
free = [os.path.join(spool, "free", f) for f in os.listdir(os.path.join(spool, "free"))]
check(free and all(os.path.getsize(f) == 0 for f in free),
      "finished messages' files recycled, emptied, in spool/free (%d, none with content)" % len(free))
print("DUPLICATES %d" % ndup)
sys.exit(0 if ok else 1)
PYEOF
rc=$?
while IFS= read -r line; do
  case $line in
    "PASS: "*) pass "${line#PASS: }" ;;
    "FAIL: "*) fail "${line#FAIL: }" ;;
    DUPLICATES*) ;;
    *) echo "    $line" ;;
  esac
done < "$T/verify.out"
grep -q '^PASS: ' "$T/verify.out" || { fail "the verification did not run (rc=$rc)"; show_tail "$T/verify.out"; }
note "duplicates: $(sed -n 's/^DUPLICATES //p' "$T/verify.out") over $kills kills (bound $((kills * CONC)))"
finish
