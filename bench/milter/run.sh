#!/bin/bash
# bench/milter/run.sh [--quick] - DKIM signing milters side by side: sluice-milter against Debian's
# opendkim 2.11, the same RSA-2048 key (selector sel1, d=example.com), relaxed/relaxed, one after
# the other in one run, both driven the same way: smtp-source -> an isolated Postfix instance
# (postfix -c DIR, smtpd_milters) -> relayhost smtp-sink -c. Three parts (PARTS="cost e2e stall"):
#
#  cost   per-message cost at 2 KB, 20 KB and 200 KB bodies (20 sessions, unix sockets for both):
#         msgs/s through Postfix and the milter's CPU ms per message (utime+stime of the milter
#         process from /proc/PID/stat / messages signed), opendkim/sluice, and beside them the raw
#         OpenSSL cost: `openssl speed -seconds 2 rsa2048` sign (+ `openssl speed sha256` of the
#         body at 200 KB). Targets: >= 3x less CPU than opendkim at every size; <= 1.5x raw sign
#         at 2 KB (and at 4 KB, from the e2e part); <= 1.5x (sign + SHA-256 of the body) at 200 KB.
#  e2e    N messages of 4 KB, 20 sessions: Postfix alone, with sluice-milter over its unix socket,
#         with sluice-milter over inet:PORT@127.0.0.1 (and once more with `quickack 1` on the
#         loopback routes, as in the stall part; E2E_QUICKACK=0 skips it), with opendkim (unix
#         socket, its faster one). Target: sluice (unix) >= 90% of Postfix alone.
#  stall  the inet delayed-ACK stall, one SMTP session at a time (smtp-source -s 1): sluice-milter
#         over unix, over inet, and over inet with `quickack 1` on the loopback routes (the host's
#         routes of table local are changed for these rows and restored at once, and in the EXIT
#         trap whatever happens);
#         opendkim over inet without and with quickack beside it (STALL_OPENDKIM=0 skips it).
#
#  mt     the same per-message cost with miltertest (Debian's, from OpenDKIM) as the MTA instead
#         of Postfix (bench/milter/miltertest.lua: a connection per message from 127.0.0.1, the
#         body in 65,535-byte chunks each written at once, every message checked for its added
#         DKIM-Signature), one after the other at each size. Postfix's cleanup writes a body chunk
#         in 4 KB pieces and the milter wakes up for each (at 200 KB about 0.16 ms of its system
#         time per message); miltertest shows the milter's own cost without it. The issue allows
#         either driver; both are reported.
#
# Every message must come out signed: Postfix's smtp client logs each DKIM-Signature it delivers
# (smtp_header_checks INFO), and a run whose "signed" column is not N/N is broken. One message per
# milter is also verified with dkimpy (tests/e2e/dkim_verify.py, no DNS) first.
#
# Environment: BUILD (default /work/main/build) holds milter/sluice-milter (MILTER overrides);
# N (e2e messages, 20000; QUICK=1 or --quick: 2000), COST_N (messages per milter at 2 and 20 KB,
# a quarter of it at 200 KB; 4000, quick 1000), STALL_N (messages per stall row; 300, quick 100),
# MT_N (messages per milter in the mt part at 2, 4 and 20 KB, a quarter at 200 KB; 4000, quick
# 1000), MT_SIZES (its body bytes, "2048 4096 20480 204800"),
# SESS (20), WARMUP_MSGS (200), PARTS, COST_SIZES (body bytes, "2048 20480 204800"), STALL_OPENDKIM,
# E2E_QUICKACK; KEEP=1 keeps the scratch directory;
# LIBMILTER_ROWS (1: each part also runs sluice-milter on milter.engine: libmilter, the engine it
# had before its built-in one; 0 skips those rows).
# Needs root (Postfix instance, opendkim's UserID, ip route). Loopback only; never touches
# /etc/postfix; every process it starts is stopped by PID in the EXIT trap.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../common.sh"

QUICK=${QUICK:-0}
[ "${1:-}" = --quick ] && QUICK=1
BUILD=${BUILD:-/work/main/build}
MILTER=${MILTER:-$BUILD/milter/sluice-milter}
VERIFY=${VERIFY:-$HERE/../../tests/e2e/dkim_verify.py}
if [ "$QUICK" = 1 ]; then N=${N:-2000}; COST_N=${COST_N:-1000}; STALL_N=${STALL_N:-100}; MT_N=${MT_N:-1000}
else N=${N:-20000}; COST_N=${COST_N:-4000}; STALL_N=${STALL_N:-300}; MT_N=${MT_N:-4000}; fi
SESS=${SESS:-20}; WARMUP_MSGS=${WARMUP_MSGS:-200}
PARTS=${PARTS:-"cost mt e2e stall"}; STALL_OPENDKIM=${STALL_OPENDKIM:-1}; E2E_QUICKACK=${E2E_QUICKACK:-1}; LIBMILTER_ROWS=${LIBMILTER_ROWS:-1}
COST_SIZES=${COST_SIZES:-"2048 20480 204800"}; MT_SIZES=${MT_SIZES:-"2048 4096 20480 204800"}; E2E_BODY=4096

[ "$(id -u)" = 0 ] || { echo "needs root (Postfix instance, opendkim UserID, ip route)" >&2; exit 1; }
if [ ! -x "$MILTER" ]; then
  echo "missing $MILTER: it must be built first (cmake --build \$BUILD --target sluice-milter) or set MILTER" >&2
  exit 1
fi
for c in opendkim miltertest smtp-source smtp-sink postfix postconf postqueue openssl ip; do
  command -v "$c" >/dev/null || { echo "missing $c" >&2; exit 1; }
done

R=$(mktemp -d /tmp/sluice-bench-milter.XXXXXX)
chmod 755 "$R"
RES="$R/results.txt"; : > "$RES"
SMTPD=$(free_port); SINKP=$(free_port); SL_INET=$(free_port); OD_INET=$(free_port)
MPID=; SINK=; ROUTES_SAVED=; ROUTES_CHANGED=0

# --- the loopback routes (stall part): saved before any change, restored in the EXIT trap ---------
# Both local routes: a connection to 127.0.0.1 uses the /32 one (recipe 04c), 127.0.0.0/8 the rest.
ROUTES_SAVED=$(ip route show table local | grep -E '^local 127\.0\.0\.(0/8|1) ' || true)
routes_restore() {
  [ "$ROUTES_CHANGED" = 1 ] || return 0
  local line
  while IFS= read -r line; do
    [ -n "$line" ] && ip route change table local $line || echo "WARNING: could not restore route: $line" >&2
  done <<< "$ROUTES_SAVED"
  ROUTES_CHANGED=0
  if [ "$(ip route show table local | grep -E '^local 127\.0\.0\.(0/8|1) ')" = "$ROUTES_SAVED" ]; then
    echo "# loopback routes restored: $(tr '\n' ';' <<< "$ROUTES_SAVED")" >&2
  else
    echo "WARNING: loopback routes differ from the saved ones; saved:" >&2; echo "$ROUTES_SAVED" >&2
    ip route show table local >&2
  fi
}
routes_quickack() {
  local line
  [ -n "$ROUTES_SAVED" ] || echo "WARNING: no local 127.0.0.0/8 or 127.0.0.1 route found; quickack rows change nothing" >&2
  ROUTES_CHANGED=1
  while IFS= read -r line; do
    [ -n "$line" ] && ip route change table local $line quickack 1
  done <<< "$ROUTES_SAVED"
}

cleanup() {
  routes_restore
  [ -f "$R/pf/etc/main.cf" ] && postfix -c "$R/pf/etc" stop >/dev/null 2>&1 || true
  stop_pid "$SINK"
  stop_pid "$MPID"
  if [ "${KEEP:-0}" = 1 ]; then echo "scratch kept in $R" >&2; else rm -rf "$R"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# --- one RSA-2048 key for both milters ------------------------------------------------------------
mkdir -p "$R/keys" "$R/dkim" "$R/sluice/state"
chmod 700 "$R/sluice/state"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$R/keys/sel1.pem" 2>/dev/null
chmod 600 "$R/keys/sel1.pem"                                   # sluice-milter runs as root here
install -m 600 -o opendkim "$R/keys/sel1.pem" "$R/dkim/sel1.pem"   # opendkim's UserID owns its copy
chown opendkim "$R/dkim"; chmod 755 "$R/dkim"                   # opendkim creates its socket here
echo "sel1 v=DKIM1; k=rsa; p=$(openssl pkey -in "$R/keys/sel1.pem" -pubout -outform DER 2>/dev/null | base64 -w0)" \
  > "$R/records.txt"

# --- milters: one at a time; each start sets MPID and PF_MILTER ----------------------------------
wait_socket() {  # wait_socket PATH PID
  local i
  for ((i = 0; i < 100; i++)); do [ -S "$1" ] && return 0; kill -0 "$2" 2>/dev/null || return 1; sleep 0.1; done
  return 1
}
start_sluice() {  # start_sluice unix|inet
  local listen
  if [ "$1" = unix ]; then listen="unix:$R/sluice/milter.sock"; PF_MILTER="unix:$R/sluice/milter.sock"
  else listen="inet:$SL_INET@127.0.0.1"; PF_MILTER="inet:127.0.0.1:$SL_INET"; fi
  # smtp-source does not authenticate: 127.0.0.1 is a trusted network (opendkim: InternalHosts).
  cat > "$R/sluice/sluice.yaml" <<YAML
state_dir: $R/sluice/state
run_as_user: ""
log: { target: stderr, level: warning }
milter: { listen: "$listen", metrics_listen: "", engine: ${SL_ENGINE:-builtin} }
dkim:
  key_error_action: tempfail
  trusted_networks: [127.0.0.1/32]
  signing_table:
    - domain: example.com
      signatures:
        - { domain: "%", selector: sel1, key_file: $R/keys/sel1.pem,
            header_canonicalization: relaxed, body_canonicalization: relaxed }
YAML
  rm -f "$R/sluice/milter.sock"
  "$MILTER" --config "$R/sluice/sluice.yaml" 2>>"$R/sluice/stderr.log" &
  MPID=$!
  if [ "$1" = unix ]; then wait_socket "$R/sluice/milter.sock" "$MPID"; else wait_port 127.0.0.1 "$SL_INET"; fi \
    || { echo "sluice-milter did not start:" >&2; tail -n 5 "$R/sluice/stderr.log" >&2; exit 1; }
}
start_sluice_libmilter() {  # the same on milter.engine: libmilter
  SL_ENGINE=libmilter start_sluice "$1"
}
start_opendkim() {  # start_opendkim unix|inet
  local sock
  if [ "$1" = unix ]; then sock="local:$R/dkim/milter.sock"; PF_MILTER="unix:$R/dkim/milter.sock"
  else sock="inet:$OD_INET@127.0.0.1"; PF_MILTER="inet:127.0.0.1:$OD_INET"; fi
  cat > "$R/dkim/opendkim.conf" <<CF
Syslog no
Mode s
Domain example.com
Selector sel1
KeyFile $R/dkim/sel1.pem
Socket $sock
UserID opendkim
UMask 000
Canonicalization relaxed/relaxed
InternalHosts 127.0.0.0/8
RequireSafeKeys no
CF
  rm -f "$R/dkim/milter.sock"
  opendkim -f -x "$R/dkim/opendkim.conf" 2>>"$R/dkim/stderr.log" &
  MPID=$!
  if [ "$1" = unix ]; then wait_socket "$R/dkim/milter.sock" "$MPID"; else wait_port 127.0.0.1 "$OD_INET"; fi \
    || { echo "opendkim did not start:" >&2; tail -n 5 "$R/dkim/stderr.log" >&2; exit 1; }
}
stop_milter() { stop_pid "$MPID"; MPID=; }

# --- Postfix ----------------------------------------------------------------------------------------
# smtp_header_checks: the smtp client logs one "info:" line per delivered message that carries a
# DKIM-Signature (qmgr's size= does not count headers a milter added), so every run can show
# that all its messages were signed. The none configuration logs one line per message too (its
# Subject:), so that every row pays the same logging: a line per message through postlogd is a
# few percent of Postfix's work, and the baseline must not be spared it.
echo '/^DKIM-Signature:/ INFO dkim-signed' > "$R/header_checks"
echo '/^Subject:/ INFO unsigned' > "$R/header_checks_none"
cat > "$R/extra.cf" <<CF
smtp_header_checks = regexp:$R/header_checks
milter_default_action = tempfail
smtpd_peername_lookup = no
smtp_host_lookup = native
delay_warning_time = 0
CF
"$HERE/../postfix/pf-instance.sh" "$R/pf" "$SMTPD" "$SINKP" "$R/extra.cf" >/dev/null
wait_port 127.0.0.1 "$SMTPD"

use_milter() {  # use_milter SPEC|none
  if [ "$1" = none ]; then postconf -c "$R/pf/etc" -X smtpd_milters
    postconf -c "$R/pf/etc" -e "smtp_header_checks = regexp:$R/header_checks_none"
  else postconf -c "$R/pf/etc" -e "smtpd_milters = $1" "smtp_header_checks = regexp:$R/header_checks"; fi
  postfix -c "$R/pf/etc" reload >/dev/null 2>&1
  sleep 1
}
queue_empty() {
  local i
  for ((i = 0; i < 1200; i++)); do
    postqueue -c "$R/pf/etc" -p 2>/dev/null | grep -q "Mail queue is empty" && return 0
    sleep 0.1
  done
  echo "queue did not drain" >&2; return 1
}
sink_count() { tail -c 200 "$R/sink.count" 2>/dev/null | tr '\r' '\n' | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2; }
wait_sink() {  # wait_sink COUNT: fails after 60 s without progress (deferred mail, dead milter)
  local c last=-1 since=$SECONDS
  while :; do
    c=$(sink_count); c=${c:-0}
    [ "$c" -ge "$1" ] && return 0
    [ "$c" != "$last" ] && { last=$c; since=$SECONDS; }
    if [ $((SECONDS - since)) -ge 60 ]; then
      echo "the sink saw $c of $1 messages and nothing for 60 s; maillog:" >&2
      grep -E 'warning|fatal|error|milter' "$R/pf/maillog" | tail -n 5 >&2 || true
      return 1
    fi
    sleep 0.02
  done
}
sink_start() {
  smtp-sink -u postfix -c "127.0.0.1:$SINKP" 1024 > "$R/sink.count" &
  SINK=$!
  wait_port 127.0.0.1 "$SINKP"
}
sink_stop() { stop_pid "$SINK"; SINK=; }
source_msgs() {  # source_msgs SESSIONS COUNT BODY
  smtp-source -s "$1" -d -m "$2" -l "$3" -f bench@example.com -t rcpt@dest.example -S bench "127.0.0.1:$SMTPD"
}
ut_st() { awk '{print $14, $15}' "/proc/$1/stat"; }   # utime stime of PID, in ticks (100/s)
log_size() { stat -c %s "$R/pf/maillog"; }
# signed_since OFFSET: messages the smtp client delivered with a DKIM-Signature since OFFSET (one
# "info: header DKIM-Signature: ..." line each, from smtp_header_checks)
signed_since() { sleep 0.3; tail -c +$(($1 + 1)) "$R/pf/maillog" | grep -c 'info: header DKIM-Signature:' || true; }

# one_run PART CONFIG SESSIONS COUNT BODY WARMUP: WARMUP messages, then COUNT timed ones; appends
# one line to the results. The milter (if any) is running and Postfix uses it.
one_run() {
  local part=$1 cfg=$2 sess=$3 n=$4 body=$5 warm=$6 t0 t1 t2 c0="0 0" c1="0 0" off signed
  sink_start
  if [ "$warm" -gt 0 ]; then source_msgs "$sess" "$warm" "$body"; wait_sink "$warm"; queue_empty; fi
  off=$(log_size)
  [ -n "$MPID" ] && c0=$(ut_st "$MPID")
  t0=$(date +%s.%N)
  source_msgs "$sess" "$n" "$body"
  t1=$(date +%s.%N)
  wait_sink $((warm + n))
  t2=$(date +%s.%N)
  [ -n "$MPID" ] && c1=$(ut_st "$MPID")
  queue_empty; sink_stop
  signed=$(signed_since "$off")
  /usr/bin/python3 - "$part" "$cfg" "$sess" "$n" "$body" "$t0" "$t1" "$t2" $c0 $c1 "$signed" <<'PY' | tee -a "$RES" >&2
import sys
part, cfg, sess, n, body = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
t0, t1, t2, u0, s0, u1, s1 = map(float, sys.argv[6:13]); signed = int(sys.argv[13])
per = lambda ticks: ticks * 10 / signed if signed else 0.0   # 100 ticks/s -> ms per signed message
print(f"part={part} config={cfg} sess={sess} body={body} N={n} end_to_end={n / (t2 - t0):.1f} "
      f"ingest={n / (t1 - t0):.1f} seconds={t2 - t0:.2f} cpu_ticks={int(u1 + s1 - u0 - s0)} "
      f"milter_cpu_ms/msg={per(u1 + s1 - u0 - s0):.3f} user_ms/msg={per(u1 - u0):.3f} sys_ms/msg={per(s1 - s0):.3f} signed={signed}")
PY
}

# mt_run CONFIG SOCKET N BODY: miltertest sends N messages of BODY bytes to the running milter
# (MPID); appends one line to the results. A failed or unsigned message fails the script.
mt_run() {
  local cfg=$1 sock=$2 n=$3 body=$4 c0 c1 t0 t1
  miltertest -D "sock=$sock" -D n=20 -D "size=$body" -s "$HERE/miltertest.lua" \
    || { echo "miltertest: $cfg did not sign every warm-up message" >&2; exit 1; }
  c0=$(ut_st "$MPID"); t0=$(date +%s.%N)
  miltertest -D "sock=$sock" -D "n=$n" -D "size=$body" -s "$HERE/miltertest.lua" \
    || { echo "miltertest: $cfg did not sign every message" >&2; exit 1; }
  t1=$(date +%s.%N); c1=$(ut_st "$MPID")
  /usr/bin/python3 - "$cfg" "$n" "$body" "$t0" "$t1" $c0 $c1 <<'PY' | tee -a "$RES" >&2
import sys
cfg, n, body = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t0, t1, u0, s0, u1, s1 = map(float, sys.argv[4:10])
per = lambda ticks: ticks * 10 / n
print(f"part=mt config={cfg} sess=1 body={body} N={n} end_to_end={n / (t1 - t0):.1f} seconds={t1 - t0:.2f} "
      f"cpu_ticks={int(u1 + s1 - u0 - s0)} milter_cpu_ms/msg={per(u1 + s1 - u0 - s0):.3f} "
      f"user_ms/msg={per(u1 - u0):.3f} sys_ms/msg={per(s1 - s0):.3f} signed={n}")
PY
}

echo "# milter bench: cost ${COST_N} msgs/milter at 2/20 KB ($((COST_N / 4)) at 200 KB), e2e N=$N x 4 KB," \
     "stall ${STALL_N} msgs at -s 1, $SESS sessions, parts: $PARTS, queue on $(findmnt -no FSTYPE -T "$R")," \
     "$(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "# $("$MILTER" --version 2>&1 | head -1); $(opendkim -V 2>&1 | head -1); $(openssl version); $(postconf -d -h mail_version | sed 's/^/Postfix /')" >&2

# --- raw OpenSSL costs (CPU time, as openssl speed counts it), before any load ----------------------
openssl speed -seconds 2 rsa2048 > "$R/speed-rsa.txt" 2>/dev/null
openssl speed -seconds 2 -bytes 16384 sha256 > "$R/speed-sha.txt" 2>/dev/null
RSA_SIGN_MS=$(awk '/^rsa 2048 bits/ {sub("s$", "", $4); print $4 * 1000}' "$R/speed-rsa.txt")
SHA_KBPS=$(awk '/^sha256 / {sub("k$", "", $NF); print $NF}' "$R/speed-sha.txt")   # 1000s of bytes/s
echo "raw rsa2048_sign_ms=$RSA_SIGN_MS sha256_kB/s=$SHA_KBPS" | tee -a "$RES" >&2

# --- sanity: one message per milter, dumped and verified by dkimpy -----------------------------------
check_signature() {  # check_signature NAME
  mkdir -p "$R/sample"; rm -f "$R/sample"/*; chown postfix "$R/sample"
  smtp-sink -u postfix -d "$R/sample/%H%M%S." "127.0.0.1:$SINKP" 64 & SINK=$!
  wait_port 127.0.0.1 "$SINKP"
  source_msgs 1 1 "$E2E_BODY"; queue_empty; sleep 0.2; sink_stop
  local f; f=$(ls "$R"/sample/* 2>/dev/null | head -1)
  if [ -n "$f" ] && sed '1,/^X-Rcpt-Args:/d' "$f" > "$R/sample-$1.eml" &&
     /usr/bin/python3 "$VERIFY" "$R/records.txt" "$R/sample-$1.eml" 1 > "$R/verify-$1.txt" 2>&1; then
    echo "# $1: $(cat "$R/verify-$1.txt")" >&2
  else
    echo "FAIL: $1's signature does not verify:" >&2; cat "$R/verify-$1.txt" >&2 2>/dev/null || true; exit 1
  fi
}
start_sluice unix; use_milter "$PF_MILTER"; check_signature sluice-milter; use_milter none; stop_milter
start_opendkim unix; use_milter "$PF_MILTER"; check_signature opendkim; use_milter none; stop_milter

# run_with START KIND CONFIG PART SESSIONS COUNT BODY WARMUP: a fresh milter for one run
run_with() {
  $1 "$2"; use_milter "$PF_MILTER"
  one_run "$4" "$3" "$5" "$6" "$7" "$8"
  use_milter none; stop_milter
}

for part in $PARTS; do
  case $part in
    cost)
      for b in $COST_SIZES; do
        n=$COST_N; w=100; [ "$b" -ge 100000 ] && { n=$((COST_N / 4)); w=25; }
        run_with start_sluice unix sluice-milter cost "$SESS" "$n" "$b" "$w"
        [ "$LIBMILTER_ROWS" = 1 ] && run_with start_sluice_libmilter unix sluice-libmilter cost "$SESS" "$n" "$b" "$w"
        run_with start_opendkim unix opendkim cost "$SESS" "$n" "$b" "$w"
      done ;;
    mt)
      for b in $MT_SIZES; do
        n=$MT_N; [ "$b" -ge 100000 ] && n=$((MT_N / 4))
        start_sluice unix; mt_run sluice-milter "unix:$R/sluice/milter.sock" "$n" "$b"; stop_milter
        [ "$LIBMILTER_ROWS" = 1 ] && { start_sluice_libmilter unix; mt_run sluice-libmilter "unix:$R/sluice/milter.sock" "$n" "$b"; stop_milter; }
        start_opendkim unix; mt_run opendkim "unix:$R/dkim/milter.sock" "$n" "$b"; stop_milter
      done ;;
    e2e)
      use_milter none; one_run e2e none "$SESS" "$N" "$E2E_BODY" "$WARMUP_MSGS"
      run_with start_sluice unix sluice-unix e2e "$SESS" "$N" "$E2E_BODY" "$WARMUP_MSGS"
      run_with start_sluice inet sluice-inet e2e "$SESS" "$N" "$E2E_BODY" "$WARMUP_MSGS"
      [ "$LIBMILTER_ROWS" = 1 ] && run_with start_sluice_libmilter unix sluice-libmilter-unix e2e "$SESS" "$N" "$E2E_BODY" "$WARMUP_MSGS"
      if [ "$E2E_QUICKACK" = 1 ]; then
        routes_quickack
        run_with start_sluice inet sluice-inet+quickack e2e "$SESS" "$N" "$E2E_BODY" "$WARMUP_MSGS"
        routes_restore
      fi
      run_with start_opendkim unix opendkim-unix e2e "$SESS" "$N" "$E2E_BODY" "$WARMUP_MSGS" ;;
    stall)
      if grep -q quickack <<< "$ROUTES_SAVED"; then
        echo "WARNING: the loopback routes already carry quickack; the 'inet' stall rows are not the default" >&2
      fi
      run_with start_sluice unix sluice-unix stall 1 "$STALL_N" "$E2E_BODY" 10
      run_with start_sluice inet sluice-inet stall 1 "$STALL_N" "$E2E_BODY" 10
      [ "$LIBMILTER_ROWS" = 1 ] && run_with start_sluice_libmilter inet sluice-libmilter-inet stall 1 "$STALL_N" "$E2E_BODY" 10
      [ "$STALL_OPENDKIM" = 1 ] && run_with start_opendkim inet opendkim-inet stall 1 "$STALL_N" "$E2E_BODY" 10
      routes_quickack
      echo "# loopback routes now: $(ip route show table local | grep -E '^local 127\.0\.0\.(0/8|1) ' | tr '\n' ';')" >&2
      run_with start_sluice inet sluice-inet+quickack stall 1 "$STALL_N" "$E2E_BODY" 10
      [ "$STALL_OPENDKIM" = 1 ] && run_with start_opendkim inet opendkim-inet+quickack stall 1 "$STALL_N" "$E2E_BODY" 10
      routes_restore ;;
    *) echo "unknown part $part" >&2; exit 2 ;;
  esac
done
grep -E 'warning|fatal|error' "$R/pf/maillog" | grep -v overriding | head -5 >&2 || true
grep -v '^$' "$R/sluice/stderr.log" 2>/dev/null | head -5 >&2 || true

/usr/bin/python3 "$HERE/report.py" "$RES"
