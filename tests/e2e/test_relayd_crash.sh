#!/bin/bash
# test_relayd_crash.sh BUILD_DIR - kill -9 sluice-relayd again and again while load_client.py sends
# 5,000 messages over 8 sessions; restart it each time. Afterwards every message that got 250 is in
# the queue exactly once, under the queue id its 250 named; no spool file lacks an index row (the
# recovery removed the half-written ones); messages that never got 250 are not counted as lost.
# Then a tmpfs of a few MB as state_dir: the disk fills, clients get 452 4.3.1, nothing accepted is
# lost or corrupted, and intake resumes when space returns (the tmpfs is grown).
source "$(dirname "$0")/lib.sh" "$@"

mkdir -p "$T/state"
RP=$(free_port)
cat > "$T/sluice.yaml" <<YAML
state_dir: $T/state
run_as_user: ""
log: { target: stderr, level: warning }
relayd:
  listen: 127.0.0.1:$RP
  metrics_listen: ""
YAML
sluice_relayd_start "$T/sluice.yaml" || die "sluice-relayd did not start"
start_bg load python3 "$E2E_SRC/load_client.py" "127.0.0.1:$RP" 5000 8 "$T/load.log"
LOAD=$LAST_PID
kills=0
while _is_our_child "$LOAD" && [ $kills -lt 6 ]; do
  sleep 0.$((RANDOM % 6 + 3))
  _is_our_child "$LOAD" || break
  kill -9 "$RELAYD_PID"; wait "$RELAYD_PID" 2>/dev/null; kills=$((kills + 1))
  sluice_relayd_start "$T/sluice.yaml" || die "restart $kills failed"
done
for ((i = 0; i < 600 && $(_is_our_child "$LOAD" && echo 1 || echo 0) == 1; i++)); do sleep 0.1; done
_is_our_child "$LOAD" && die "load client did not finish"
note "relayd killed with SIGKILL $kills times during the load; $(grep -c '^ACK' "$T/load.log") ACK, $(grep -c '^LOST' "$T/load.log") LOST, $(grep -c '^NAK' "$T/load.log") NAK"
[ $kills -ge 3 ] && pass "relayd was killed $kills times during the run" || fail "only $kills kills happened"
stop_pid "$RELAYD_PID"
sluice_relayd_start "$T/sluice.yaml" || die "final restart failed"   # runs recovery once more
"$BUILD/sluicectl/sluicectl" --config "$T/sluice.yaml" queue list --json > "$T/queue.json" || die "queue list"
python3 - "$T/load.log" "$T/queue.json" "$T/state/spool" > "$T/verify.out" 2>&1 <<'PYEOF'
import json, os, sys
acked = {}
for line in open(sys.argv[1]):
    kind, n, rest = (line.rstrip("\n").split(" ", 2) + [""])[:3]
    if kind == "ACK":
        acked[int(n)] = rest
seen = {}
ids = set()
for line in open(sys.argv[2]):
    m = json.loads(line)
    ids.add(m["id"])
    mid = m["message_id"]
    if mid.startswith("<load-"):
        n = int(mid[6:mid.index("@")])
        seen.setdefault(n, []).append(m["id"])
missing = [n for n in acked if n not in seen]
dup = [n for n, v in seen.items() if len(v) > 1]
wrongid = [n for n in acked if n in seen and acked[n] not in seen[n]]
unacked_present = [n for n in seen if n not in acked]
files = set()
for d in os.listdir(sys.argv[3]):
    files.update(os.listdir(os.path.join(sys.argv[3], d)))
orphans = files - ids
print("acked=%d queued=%d missing=%d duplicates=%d wrong_id=%d unacked_but_queued=%d spool_files=%d orphans=%d"
      % (len(acked), len(seen), len(missing), len(dup), len(wrongid), len(unacked_present), len(files), len(orphans)))
sys.exit(0 if not missing and not dup and not wrongid and not orphans and len(files) == len(ids) else 1)
PYEOF
rc=$?
expect_eq "every 250-acknowledged message is queued exactly once under its id; no orphan spool file" "$rc" 0 "$T/verify.out"
evidence "$T/verify.out" acked 1

# --- disk full ------------------------------------------------------------------------------------------
stop_pid "$RELAYD_PID"
mkdir -p "$T/small"
mount -t tmpfs -o size=3m,mode=0700 tmpfs "$T/small" || die "cannot mount a tmpfs (root needed)"
E2E_MOUNTS+=("$T/small")   # unmounted by the harness's cleanup, whatever happens
sed -e "s|state_dir: .*|state_dir: $T/small|" "$T/sluice.yaml" > "$T/small.yaml"
sluice_relayd_start "$T/small.yaml" || { umount -l "$T/small"; die "relayd on the tmpfs did not start"; }
python3 "$E2E_SRC/load_client.py" "127.0.0.1:$RP" 1500 4 "$T/full.log" > /dev/null 2>&1
expect_match "a full disk answers 452 4.3.1" '^NAK [0-9]+ 452 4\.3\.1 ' "$T/full.log"
"$BUILD/sluicectl/sluicectl" --config "$T/small.yaml" queue list --json > "$T/small.json" 2>"$T/small.err"
acked=$(grep -c '^ACK' "$T/full.log"); queued=$(grep -c . "$T/small.json")
expect_eq "every message acknowledged before the disk filled is still queued" "$queued" "$acked" "$T/small.err"
mount -o remount,size=64m "$T/small" || die "cannot grow the tmpfs"   # space returns
swaks_run after --server "127.0.0.1:$RP" --from a@example.com --to b@dest.example
expect_match "after space returns, intake resumes (250)" '^<-  250 2\.0\.0 Ok: queued as' "$T/after"
stop_pid "$RELAYD_PID"
umount -l "$T/small"
finish
