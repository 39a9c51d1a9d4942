# tests/e2e/lib.sh - the shared harness of the end-to-end tests (source it; do not run it).
#
# Every tests/e2e/test_*.sh does:
#     source "$(dirname "$0")/lib.sh" "$@"        # $1 = the build directory (ctest passes it)
# and ends with `finish`. What the harness guarantees:
#   - isolation: a private temp dir $T per run (/tmp/sluice-e2e.<test>.XXXXXX), removed on success,
#     kept (and its path printed) on failure; ports from free_port, reserved under a lock so that
#     parallel ctest runs never pick the same one;
#   - cleanup: one EXIT trap stops every process started with start_bg (by PID, TERM then KILL)
#     and every Postfix instance made with pf_instance, whatever way the test ends;
#   - no DNS: Postfix instances never call the machine's resolver (numeric relayhost, native
#     lookups, no peer-name lookups); swaks always gets --helo and --server;
#   - one result format: `PASS: name` / `FAIL: name` (with got/want and the tail of the file that
#     was looked at), and `finish` prints exactly one summary line `N passed, M failed`.
# Tests do not use `set -e`: the set-up helpers `die` (FAIL + summary + exit 1) when they fail.
# Globals a test may read: BUILD, T, E2E_NAME, PF_DIR, PF_PORT, SINK_PORT, SINK_DIR, SWAKS_RC,
# POLICYD_PID, POLICYD_PORT, POLICYD_ERR, LAST_PID.

set -uo pipefail

E2E_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_NAME=$(basename "$0" .sh)
BUILD=${1:-${BUILD:-$E2E_SRC/../../build}}
BUILD=$(cd "$BUILD" 2>/dev/null && pwd || echo "$BUILD")
E2E_PORT_MIN=${E2E_PORT_MIN:-21000}
E2E_PORT_MAX=${E2E_PORT_MAX:-29999}
E2E_PORT_DIR=/tmp/sluice-e2e-ports          # one file per reserved port, holding the owner's PID
E2E_PORT_LOCK=/tmp/sluice-e2e-ports.lock
E2E_PASSED=0 E2E_FAILED=0 E2E_DONE=0
E2E_START=$SECONDS
BG_PIDS=() BG_NAMES=() PF_DIRS=()
SWAKS_RC=0 LAST_PID=

T=$(mktemp -d "/tmp/sluice-e2e.$E2E_NAME.XXXXXX") || { echo "FAIL: cannot create a temp dir"; exit 1; }
chmod 755 "$T"                               # Postfix daemons (user postfix) must traverse it

# ---------------------------------------------------------------------------------------------
# results
pass() { E2E_PASSED=$((E2E_PASSED + 1)); echo "PASS: $*"; }
fail() { E2E_FAILED=$((E2E_FAILED + 1)); echo "FAIL: $*"; }
note() { echo "== $*"; }
# show_tail FILE [N]: the last N (25) lines of FILE, indented, for failure reports.
show_tail() {
  local f=$1 n=${2:-25}
  if [ -f "$f" ]; then echo "    --- tail of $f"; tail -n "$n" "$f" | sed 's/^/    | /'
  else echo "    --- ($f does not exist)"; fi
}
# evidence FILE REGEX [MAX]: print the lines of FILE matching REGEX (ERE), indented.
evidence() {
  local f=$1 re=$2 max=${3:-3}
  [ -f "$f" ] && grep -E -- "$re" "$f" | head -n "$max" | sed 's/^/    > /'
  return 0
}
# wait_match REGEX FILE [TIMEOUT_S]: wait until FILE has a line matching REGEX (for logs, which
# postlogd and daemons write a moment after the SMTP reply).
wait_match() {
  local re=$1 f=$2 t=${3:-5} i
  for ((i = 0; i < t * 10; i++)); do [ -f "$f" ] && grep -Eq -- "$re" "$f" && return 0; sleep 0.1; done
  [ -f "$f" ] && grep -Eq -- "$re" "$f"
}
# expect_match NAME REGEX FILE [WAIT_S]: pass when FILE has (or, within WAIT_S seconds, gets) a line
# matching REGEX (ERE); print that line.
expect_match() {
  local name=$1 re=$2 f=$3 w=${4:-0}
  if wait_match "$re" "$f" "$w"; then pass "$name"; evidence "$f" "$re" 2
  else fail "$name: want a line matching /$re/ in $f, got none"; show_tail "$f"; fi
}
# expect_no_match NAME REGEX FILE: pass when no line of FILE matches REGEX (a missing file passes).
expect_no_match() {
  local name=$1 re=$2 f=$3
  if [ -f "$f" ] && grep -Eq -- "$re" "$f"; then
    fail "$name: want no line matching /$re/ in $f, got:"; evidence "$f" "$re" 5; show_tail "$f"
  else pass "$name"; fi
}
# expect_eq NAME GOT WANT [FILE]: pass when GOT == WANT; on failure show the tail of FILE.
expect_eq() {
  local name=$1 got=$2 want=$3 f=${4:-}
  if [ "$got" == "$want" ]; then pass "$name (= $want)"
  else fail "$name: got '$got', want '$want'"; [ -n "$f" ] && show_tail "$f"; fi
  return 0
}
# die MSG: a set-up step failed; count it, clean up, and end the test.
die() { fail "$*"; finish; }
# finish: stop everything, print exactly one summary line, exit non-zero if anything failed.
finish() {
  E2E_DONE=1
  _e2e_cleanup
  echo "$E2E_PASSED passed, $E2E_FAILED failed"
  [ "$E2E_FAILED" -eq 0 ] && [ "$E2E_PASSED" -gt 0 ] && exit 0
  exit 1
}

# ---------------------------------------------------------------------------------------------
# processes
# start_bg NAME CMD...: run CMD in the background, stdout to $T/NAME.out and stderr to $T/NAME.err
# (appended, so a restarted daemon keeps its history). Sets LAST_PID; remembered for cleanup.
start_bg() {
  local name=$1; shift
  echo "=== start $(date +%T.%N | cut -c1-12): $*" >> "$T/$name.err"
  ( trap - EXIT INT TERM HUP; exec "$@" ) >> "$T/$name.out" 2>> "$T/$name.err" &
  LAST_PID=$!
  BG_PIDS+=("$LAST_PID"); BG_NAMES+=("$name")
}
# _is_our_child PID: true if PID is alive and a child of this shell (never signal a stranger).
_is_our_child() {
  local p=$1 st
  [ -r "/proc/$p/stat" ] || return 1
  read -r st 2>/dev/null < "/proc/$p/stat" || return 1
  st=${st##*) }                                   # fields after "(comm) "
  set -- $st
  [ "$2" = "$$" ] && [ "$1" != Z ]
}
# stop_pid PID [SIGNAL]: SIGNAL (TERM), wait up to 10 s, then KILL; reaps it. Returns its exit code.
stop_pid() {
  local p=$1 sig=${2:-TERM} i rc=0
  [ -n "$p" ] || return 0
  if _is_our_child "$p"; then
    kill "-$sig" "$p" 2>/dev/null
    for ((i = 0; i < 100; i++)); do _is_our_child "$p" || break; sleep 0.1; done
    _is_our_child "$p" && { echo "    ($p did not stop after SIG$sig in 10 s: KILL)"; kill -KILL "$p" 2>/dev/null; }
  fi
  wait "$p" 2>/dev/null; rc=$?
  return $rc
}
# stop_bg NAME: stop the most recent process started as NAME.
stop_bg() {
  local i
  for ((i = ${#BG_NAMES[@]} - 1; i >= 0; i--)); do
    [ "${BG_NAMES[$i]}" = "$1" ] && { stop_pid "${BG_PIDS[$i]}"; return $?; }
  done
  return 0
}
# wait_port HOST PORT [TIMEOUT_S] [PID]: wait until HOST:PORT accepts; fail early if PID died.
wait_port() {
  local h=$1 p=$2 t=${3:-20} pid=${4:-} i
  for ((i = 0; i < t * 20; i++)); do
    (exec 3<>"/dev/tcp/$h/$p") 2>/dev/null && return 0
    if [ -n "$pid" ] && ! _is_our_child "$pid"; then echo "    (process $pid exited before $h:$p listened)"; return 1; fi
    sleep 0.05
  done
  echo "    (timeout waiting for $h:$p)"; return 1
}

# ---------------------------------------------------------------------------------------------
# ports
# _port_busy PORT: true if anything listens on PORT (TCP, any address).
_port_busy() {
  if command -v ss >/dev/null; then
    [ -n "$(ss -Htln "( sport = :$1 )" 2>/dev/null)" ]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}
# free_port: print a TCP port in [E2E_PORT_MIN, E2E_PORT_MAX] nobody listens on and no live test
# has reserved; reserve it for this test (released at cleanup). Safe under parallel ctest -j.
free_port() {
  local fd p i owner span=$((E2E_PORT_MAX - E2E_PORT_MIN + 1))
  mkdir -p "$E2E_PORT_DIR"
  exec {fd}>>"$E2E_PORT_LOCK"
  flock -w 30 "$fd" || { echo "free_port: cannot lock $E2E_PORT_LOCK" >&2; exec {fd}>&-; return 1; }
  for ((i = 0; i < 500; i++)); do
    p=$((E2E_PORT_MIN + (RANDOM * 32768 + RANDOM) % span))
    if [ -f "$E2E_PORT_DIR/$p" ]; then
      owner=$(cat "$E2E_PORT_DIR/$p" 2>/dev/null)
      [ -n "$owner" ] && [ -d "/proc/$owner" ] && continue   # held by a live test
    fi
    _port_busy "$p" && continue
    echo $$ > "$E2E_PORT_DIR/$p"
    exec {fd}>&-
    echo "$p"; return 0
  done
  exec {fd}>&-
  echo "free_port: no free port in $E2E_PORT_MIN-$E2E_PORT_MAX" >&2; return 1
}
# claim_port PORT: reserve this one port (e.g. a privileged 465 a test binds as root) the way
# free_port does; fails, reserving nothing, if anything listens on it or a live test holds it.
claim_port() {
  local fd p=$1 owner rc=1
  mkdir -p "$E2E_PORT_DIR"
  exec {fd}>>"$E2E_PORT_LOCK"
  flock -w 30 "$fd" || { exec {fd}>&-; return 1; }
  owner=$(cat "$E2E_PORT_DIR/$p" 2>/dev/null)
  if { [ -z "$owner" ] || [ ! -d "/proc/$owner" ]; } && ! _port_busy "$p"; then echo $$ > "$E2E_PORT_DIR/$p"; rc=0; fi
  exec {fd}>&-
  return $rc
}
_release_ports() {
  local f
  for f in "$E2E_PORT_DIR"/*; do
    [ -f "$f" ] && [ "$(cat "$f" 2>/dev/null)" = "$$" ] && rm -f "$f"
  done
  return 0
}

# ---------------------------------------------------------------------------------------------
# Postfix
PF_HOSTNAME=relay.test.example
# _pf_dir DIR: absolute instance dir (relative names live under $T); default: the last instance.
_pf_dir() { local d=${1:-${PF_DIR:-}}; [ -n "$d" ] || { echo "no Postfix instance" >&2; return 1; }; case $d in /*) echo "$d";; *) echo "$T/$d";; esac; }
_pf_master_pid() { local d; d=$(_pf_dir "${1:-}") || return 1; tr -dc 0-9 < "$d/spool/pid/master.pid" 2>/dev/null; }
_pf_running() { local p; p=$(_pf_master_pid "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
# _pf_apply DIR LINES: apply "name = value" lines (comments and blank lines skipped) with postconf -e.
_pf_apply() {
  local d=$1 line
  while IFS= read -r line; do
    [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
    postconf -c "$d/etc" -e "$line" || return 1
  done <<< "$2"
}
# _pf_sasl_cf DIR: the main.cf part of SASL + STARTTLS (applied once the instance config exists).
_pf_sasl_cf() {
  local d=$1
  _pf_apply "$d" "
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = $d/etc/sasl
smtpd_sasl_local_domain =
smtpd_sasl_security_options = noanonymous
smtpd_sasl_tls_security_options = noanonymous
smtpd_sasl_authenticated_header = yes
smtpd_tls_cert_file = $d/tls/cert.pem
smtpd_tls_key_file = $d/tls/key.pem
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_tls_loglevel = 1"
}
# pf_instance DIR SMTPD_PORT RELAY_PORT [EXTRA_CF]: create and start an isolated Postfix instance
# (postfix -c DIR/etc; queue DIR/spool, data DIR/data, log DIR/maillog via postlogd, nothing
# chrooted, smtpd on 127.0.0.1:SMTPD_PORT only, relayhost [127.0.0.1]:RELAY_PORT, no DNS).
# EXTRA_CF is a file or a string of "name = value" lines applied last with postconf -e.
# DIR relative = under $T. Sets PF_DIR and PF_PORT. Dies if the instance does not start.
pf_instance() {
  local d port=$2 rport=$3 extra=${4:-}
  d=$(_pf_dir "$1") || die "pf_instance: no DIR"
  mkdir -p "$d/etc" "$d/spool" "$d/data"
  chown postfix "$d/data"
  cat > "$d/etc/main.cf" <<CF
compatibility_level = 3.6
config_directory = $d/etc
queue_directory = $d/spool
data_directory = $d/data
maillog_file = $d/maillog
maillog_file_prefixes = $d
syslog_name = sluice-e2e
myhostname = $PF_HOSTNAME
mydomain = test.example
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
relayhost = [127.0.0.1]:$rport
# no DNS anywhere: numeric relayhost, native (files) lookups, no reverse lookup of clients
smtp_dns_support_level = disabled
smtp_host_lookup = native
lmtp_host_lookup = native
smtpd_peername_lookup = no
smtp_helo_name = $PF_HOSTNAME
biff = no
readme_directory = no
delay_warning_time = 0
CF
  cat > "$d/etc/master.cf" <<MF
127.0.0.1:$port inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
MF
  [ -f "$d/etc/sasl/sasldb2" ] && { _pf_sasl_cf "$d" || die "pf_instance: SASL settings"; }
  if [ -n "$extra" ]; then
    [ -f "$extra" ] && extra=$(cat "$extra")
    _pf_apply "$d" "$extra" || die "pf_instance: bad EXTRA_CF line"
  fi
  PF_DIRS+=("$d"); PF_DIR=$d; PF_PORT=$port
  postfix -c "$d/etc" check > "$d/check.log" 2>&1 || { show_tail "$d/check.log"; die "postfix check failed for $d"; }
  [ -s "$d/check.log" ] && { echo "    postfix check:"; sed 's/^/    | /' "$d/check.log"; }
  postfix -c "$d/etc" start > "$d/start.log" 2>&1 || { show_tail "$d/start.log"; show_tail "$d/maillog"; die "postfix start failed for $d"; }
  wait_port 127.0.0.1 "$port" 20 || { show_tail "$d/maillog"; die "Postfix smtpd not listening on 127.0.0.1:$port"; }
}
# pf_sasl_user DIR USER PASS: add USER/PASS to the instance-private Cyrus sasldb (DIR/etc/sasl),
# creating smtpd.conf (auxprop sasldb, PLAIN LOGIN) and a self-signed cert for STARTTLS on first
# use; AUTH is offered only after STARTTLS (smtpd_tls_auth_only = yes). Before or after pf_instance.
pf_sasl_user() {
  local d user=$2 pass=$3 host=$PF_HOSTNAME first=0
  d=$(_pf_dir "$1") || die "pf_sasl_user: no DIR"
  mkdir -p "$d/etc/sasl" "$d/tls"
  if [ ! -f "$d/etc/sasl/smtpd.conf" ]; then
    first=1
    # Debian's Postfix reads $config_directory/sasl/smtpd.conf (and ignores cyrus_sasl_config_path).
    printf 'pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: %s\nmech_list: PLAIN LOGIN\n' \
      "$d/etc/sasl/sasldb2" > "$d/etc/sasl/smtpd.conf"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$host" -addext "subjectAltName=DNS:$host" \
      -keyout "$d/tls/key.pem" -out "$d/tls/cert.pem" 2>"$d/tls/openssl.err" || { show_tail "$d/tls/openssl.err"; die "pf_sasl_user: openssl"; }
    chgrp postfix "$d/tls/key.pem"; chmod 640 "$d/tls/key.pem"
  fi
  [ -f "$d/etc/main.cf" ] && host=$(postconf -c "$d/etc" -h myhostname)
  # No realm: Cyrus uses serverFQDN ($myhostname) as the realm; the client says just "USER".
  printf '%s' "$pass" | saslpasswd2 -p -c -f "$d/etc/sasl/sasldb2" -u "$host" "$user" || die "pf_sasl_user: saslpasswd2 $user"
  chgrp postfix "$d/etc/sasl/sasldb2"; chmod 640 "$d/etc/sasl/sasldb2"
  if [ -f "$d/etc/main.cf" ] && [ "$first" = 1 ]; then
    _pf_sasl_cf "$d" || die "pf_sasl_user: SASL settings"
    _pf_running "$d" && postfix -c "$d/etc" reload >/dev/null 2>&1
  fi
  return 0
}
# pf_stop [DIR]: stop the instance and wait (10 s) for its master to exit.
pf_stop() {
  local d p i
  d=$(_pf_dir "${1:-}") || return 0
  p=$(_pf_master_pid "$d")
  [ -f "$d/etc/main.cf" ] && postfix -c "$d/etc" stop >/dev/null 2>&1
  [ -n "$p" ] || return 0
  for ((i = 0; i < 100; i++)); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null; return 0
}
# pf_log [DIR]: the path of the instance's maillog.
pf_log() { local d; d=$(_pf_dir "${1:-}") || return 1; echo "$d/maillog"; }
# pf_wait_queue_empty [DIR] [TIMEOUT_S]: wait until postqueue says the queue is empty.
pf_wait_queue_empty() {
  local d t=${2:-20} i
  d=$(_pf_dir "${1:-}") || return 1
  for ((i = 0; i < t * 10; i++)); do
    postqueue -c "$d/etc" -p 2>/dev/null | grep -q "Mail queue is empty" && return 0
    sleep 0.1
  done
  echo "    (queue of $d not empty after ${t}s)"; postqueue -c "$d/etc" -p 2>&1 | head -20 | sed 's/^/    | /'
  return 1
}

# ---------------------------------------------------------------------------------------------
# smtp-sink: the relayhost. One file per message in SINK_DIR (X-Rcpt-Args:, X-Mail-Args: headers
# then the message as received).
# smtp_sink_start [NAME]: start it on a free port; sets SINK_PORT, SINK_DIR.
smtp_sink_start() {
  local name=${1:-sink}
  SINK_PORT=$(free_port) || die "smtp_sink_start: no port"
  SINK_DIR=$T/$name
  mkdir -p "$SINK_DIR"; chown postfix "$SINK_DIR"
  start_bg "$name" smtp-sink -u postfix -h sink.test.example -d "$SINK_DIR/%H%M%S." "127.0.0.1:$SINK_PORT" 64
  wait_port 127.0.0.1 "$SINK_PORT" 10 "$LAST_PID" || { show_tail "$T/$name.err"; die "smtp-sink did not start"; }
}
# sink_count: messages the sink holds (files are created at MAIL FROM; count those with a body).
sink_count() { local n=0 f; for f in "$SINK_DIR"/*; do [ -s "$f" ] && grep -q '^X-Rcpt-Args:' "$f" && n=$((n + 1)); done; echo $n; }
# sink_wait N [TIMEOUT_S]: wait until the sink holds at least N messages.
sink_wait() { local i; for ((i = 0; i < ${2:-10} * 10; i++)); do [ "$(sink_count)" -ge "$1" ] && return 0; sleep 0.1; done; return 1; }
# sink_rcpts: the recipients of all messages in the sink, sorted, space-separated.
sink_rcpts() { sed -n 's/^X-Rcpt-Args: <\([^>]*\)>.*/\1/p' "$SINK_DIR"/* 2>/dev/null | sort | tr '\n' ' ' | sed 's/ $//'; }
# sink_find REGEX: the first sink file with a line matching REGEX (empty if none).
sink_find() { grep -lE -- "$1" "$SINK_DIR"/* 2>/dev/null | head -1; }

# ---------------------------------------------------------------------------------------------
# swaks
# If this host's name is not in /etc/hosts, swaks's gethostbyname(hostname()) would ask DNS: run
# swaks in a private mount namespace where a copy of /etc/hosts names it.
SWAKS_WRAP=()
if ! getent -s files hosts "$(hostname)" >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
  { cat /etc/hosts; echo "127.0.0.1 $(hostname)"; } > "$T/swaks-hosts"
  SWAKS_WRAP=(unshare -m sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$T/swaks-hosts")
fi
# swaks_run OUT ARGS...: run swaks (with --helo client.test.example --timeout 20, and --server
# $SWAKS_SERVER unless ARGS name one); the transcript goes to OUT (relative = under $T) followed by
# a line "=== swaks rc=N"; the exit code is in SWAKS_RC (0 ok, 23 MAIL, 24 RCPT, 25 DATA refused,
# 28 AUTH failed).
swaks_run() {
  local out=$1 a server=(); shift
  case $out in /*) ;; *) out=$T/$out;; esac
  server=(--server "${SWAKS_SERVER:-127.0.0.1:${PF_PORT:-25}}")
  for a in "$@"; do case $a in -s|--server|--socket) server=();; esac; done
  SWAKS_RC=0
  "${SWAKS_WRAP[@]}" swaks --helo client.test.example --timeout 20 "${server[@]}" "$@" > "$out" 2>&1 || SWAKS_RC=$?
  echo "=== swaks rc=$SWAKS_RC" >> "$out"
  return 0
}
# swaks_reply OUT: the last reply line swaks received (the final verdict of the transaction).
swaks_reply() { grep -E '^<(-|~|\*\*|~\*) ' "$1" | grep -vE '^<[-~*]+ +221 ' | tail -1; }

# ---------------------------------------------------------------------------------------------
# a private Sendmail (Debian's sendmail packages conflict with postfix: scripts/install-deps.sh
# unpacks them with dpkg -x under $SENDMAIL_ROOT, never installs them)
SENDMAIL_ROOT=${SENDMAIL_ROOT:-/opt/sluice-test/sendmail}
# sm_instance DIR SMTPD_PORT SMART_PORT [MC_LINES]: Sendmail 8.17 as a foreground daemon (-bD) on
# 127.0.0.1:SMTPD_PORT, SMART_HOST [127.0.0.1]:SMART_PORT, with MC_LINES (e.g. INPUT_MAIL_FILTER)
# added to its .mc. It runs in its own mount+UTS namespace (unshare -m -u) with the hostname
# smrelay.test.example, a private hosts file and a loopback resolv.conf, so it never asks the
# machine's resolver; with SM_SASL_USER/SM_SASL_PASS set, it offers AUTH PLAIN LOGIN after STARTTLS
# only, from a private sasldb bind-mounted over libsasl2's plugin dir inside the namespace.
# Sendmail relays for 127.0.0.1 without AUTH ("originated locally"): clients that must
# authenticate connect from 127.0.0.2 (swaks --local-interface 127.0.0.2). Sets SM_DIR, SM_PORT,
# SM_PID. Sendmail logs to syslog only; a test's evidence is the SMTP transcript and the sink.
sm_instance() {
  local d=$T/$1 port=$2 sport=$3 extra=${4:-} sm cf e sasllib=/usr/lib/x86_64-linux-gnu/sasl2
  sm=$SENDMAIL_ROOT/root/usr/libexec/sendmail/sendmail; cf=$SENDMAIL_ROOT/root/usr/share/sendmail/cf
  [ -x "$sm" ] || die "sm_instance: no private Sendmail in $SENDMAIL_ROOT (run scripts/install-deps.sh)"
  e=$d/etc; mkdir -p "$e/sasl2" "$e/tls" "$d/mqueue"
  printf 'hosts files\naliases files\n' > "$e/service.switch"
  : > "$e/aliases"; : > "$e/local-host-names"; : > "$e/relay-domains"
  printf '127.0.0.1 smrelay.test.example localhost\n127.0.0.2 client.test.example\n::1 smrelay.test.example localhost\n' > "$e/hosts"
  echo 'nameserver 127.0.0.1' > "$e/resolv.conf"
  local auth="" mounts=""
  if [ -n "${SM_SASL_USER:-}" ]; then
    printf 'pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: %s\nmech_list: PLAIN LOGIN\n' "$e/sasldb2" > "$e/sasl2/Sendmail.conf"
    cp -L "$sasllib/libplain.so" "$sasllib/liblogin.so" "$sasllib/libsasldb.so" "$e/sasl2/" || die "sm_instance: libsasl2-modules missing"
    printf '%s' "$SM_SASL_PASS" | saslpasswd2 -p -c -f "$e/sasldb2" -u smrelay.test.example "$SM_SASL_USER" || die "sm_instance: saslpasswd2"
    chmod 600 "$e/sasldb2"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=smrelay.test.example \
      -keyout "$e/tls/key.pem" -out "$e/tls/cert.pem" 2>"$d/openssl.err" || die "sm_instance: openssl"
    chmod 600 "$e/tls/key.pem"
    auth="define(\`confAUTH_MECHANISMS', \`PLAIN LOGIN')dnl
TRUST_AUTH_MECH(\`PLAIN LOGIN')dnl
define(\`confAUTH_OPTIONS', \`A,p')dnl
define(\`confCACERT_PATH', \`$e/tls')dnl
define(\`confCACERT', \`$e/tls/cert.pem')dnl
define(\`confSERVER_CERT', \`$e/tls/cert.pem')dnl
define(\`confSERVER_KEY', \`$e/tls/key.pem')dnl"
    mounts=" && mount --bind '$e/sasl2' '$sasllib'"
  fi
  cat > "$d/sendmail.mc" <<MC
divert(0)dnl
VERSIONID(\`sluice e2e')dnl
OSTYPE(\`linux')dnl
define(\`confDOMAIN_NAME', \`smrelay.test.example')dnl
define(\`QUEUE_DIR', \`$d/mqueue')dnl
define(\`confPID_FILE', \`$d/sendmail.pid')dnl
define(\`STATUS_FILE', \`$d/statistics')dnl
define(\`confHOST_STATUS_DIRECTORY', \`')dnl
define(\`confDONT_PROBE_INTERFACES', \`True')dnl
define(\`confDONT_BLAME_SENDMAIL', \`TrustStickyBit,GroupWritableDirPathSafe')dnl
define(\`confBIND_OPTS', \`-DNSRCH -DEFNAMES')dnl
define(\`confLOG_LEVEL', \`9')dnl
define(\`confDELIVERY_MODE', \`background')dnl
define(\`confMAX_DAEMON_CHILDREN', \`64')dnl
define(\`confQUEUE_LA', \`100')dnl
define(\`confREFUSE_LA', \`200')dnl
define(\`SMART_HOST', \`esmtp:[127.0.0.1]')dnl
define(\`ESMTP_MAILER_ARGS', \`TCP \$h $sport')dnl
define(\`confMILTER_MACROS_ENVFROM', \`i, {auth_type}, {auth_authen}, {auth_ssf}, {auth_author}, {mail_mailer}, {mail_host}, {mail_addr}')dnl
$auth
$extra
DAEMON_OPTIONS(\`Port=$port, Addr=127.0.0.1, Name=MTA')dnl
FEATURE(\`no_default_msa')dnl
FEATURE(\`nocanonify')dnl
FEATURE(\`accept_unresolvable_domains')dnl
MAILER(\`local')dnl
MAILER(\`smtp')dnl
MC
  m4 -D_CF_DIR_="$cf/" -DMAIL_SETTINGS_DIR="$e/" "$cf/m4/cf.m4" "$d/sendmail.mc" > "$d/sendmail.cf" 2> "$d/m4.err" || { show_tail "$d/m4.err"; die "sm_instance: m4"; }
  chmod 700 "$d/mqueue"
  start_bg sendmail unshare -m -u sh -c "hostname smrelay.test.example && mount --bind '$e/hosts' /etc/hosts && \
    mount --bind '$e/resolv.conf' /etc/resolv.conf$mounts && exec '$sm' -C '$d/sendmail.cf' -bD -q1m"
  SM_PID=$LAST_PID SM_DIR=$d SM_PORT=$port
  wait_port 127.0.0.1 "$port" 30 "$SM_PID" || { show_tail "$T/sendmail.err"; die "Sendmail not listening on 127.0.0.1:$port"; }
}

# ---------------------------------------------------------------------------------------------
# a local DNS server
# unbound_start ZONE_LINES: unbound on 127.0.0.1:<free port> answering only from ZONE_LINES
# (unbound.conf "local-zone:" / "local-data:" lines); everything else is REFUSED, so nothing is
# ever asked of the internet or of the machine's resolver. Sets DNS_PORT, DNS_PID.
unbound_start() {
  DNS_PORT=$(free_port)
  mkdir -p "$T/unbound"
  cat > "$T/unbound/unbound.conf" <<CF
server:
  interface: 127.0.0.1@$DNS_PORT
  port: $DNS_PORT
  do-ip6: no
  chroot: ""
  username: ""
  directory: "$T/unbound"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 1
  module-config: "iterator"
  access-control: 127.0.0.0/8 allow
  local-zone: "." refuse
$1
remote-control:
  control-enable: no
CF
  unbound-checkconf "$T/unbound/unbound.conf" > "$T/unbound/check.out" 2>&1 || { show_tail "$T/unbound/check.out"; die "unbound-checkconf"; }
  start_bg unbound unbound -d -c "$T/unbound/unbound.conf"; DNS_PID=$LAST_PID
  local i
  for ((i = 0; i < 50; i++)); do ss -Hlun "sport = :$DNS_PORT" 2>/dev/null | grep -q . && return 0; sleep 0.1; done
  show_tail "$T/unbound.err"; die "unbound did not listen on 127.0.0.1:$DNS_PORT"
}

# test_mx_start NAME ADDR [OPTIONS...]: the programmable receiver (test_mx.py, behaviour by
# recipient local part) on ADDR:<free port> (ADDR a 127.0.0.x address), messages and events.jsonl
# in $T/NAME. Sets MX_PORT, MX_PID, MX_DIR.
test_mx_start() {
  local name=$1 addr=$2; shift 2
  MX_PORT=$(free_port) MX_DIR=$T/$name
  start_bg "$name" /usr/bin/python3 "$E2E_SRC/test_mx.py" --listen "$addr:$MX_PORT" --dir "$MX_DIR" "$@"
  MX_PID=$LAST_PID
  wait_port "$addr" "$MX_PORT" 10 "$MX_PID" || { show_tail "$T/$name.err"; die "test MX $name did not start"; }
}
# test_cert DIR NAME: a self-signed certificate for NAME in DIR/NAME.crt, DIR/NAME.key
test_cert() {
  mkdir -p "$1"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$2" -addext "subjectAltName=DNS:$2" \
    -keyout "$1/$2.key" -out "$1/$2.crt" 2>"$1/$2.openssl.err" || { show_tail "$1/$2.openssl.err"; die "test_cert $2"; }
}

# ---------------------------------------------------------------------------------------------
# our daemons
# sluice_policyd_start CONFIG: start $BUILD/policy/sluice-policyd --config CONFIG (stderr appended
# to $T/policyd.err) and wait for the policyd.listen port (127.0.0.1:PORT, read from CONFIG).
# Sets POLICYD_PID, POLICYD_PORT, POLICYD_ERR. Returns 1 (after showing its stderr) if it fails.
sluice_policyd_start() {
  local cfg=$1 bin=$BUILD/policy/sluice-policyd
  POLICYD_ERR=$T/policyd.err
  [ -x "$bin" ] || { echo "    ($bin is not built)"; return 1; }
  POLICYD_PORT=$(sed -nE 's/.*listen:[[:space:]]*"?127\.0\.0\.1:([0-9]+).*/\1/p' "$cfg" | head -1)
  [ -n "$POLICYD_PORT" ] || { echo "    (no 'listen: 127.0.0.1:PORT' in $cfg)"; return 1; }
  start_bg policyd "$bin" --config "$cfg"
  POLICYD_PID=$LAST_PID
  wait_port 127.0.0.1 "$POLICYD_PORT" 15 "$POLICYD_PID" || { show_tail "$POLICYD_ERR"; return 1; }
}
# sluice_policyd_stop [SIGNAL]: stop policyd (TERM) and wait; returns its exit code.
sluice_policyd_stop() { stop_pid "${POLICYD_PID:-}" "${1:-TERM}"; }
# sluice_relayd_start CONFIG: $BUILD/relay-core/sluice-relayd --config CONFIG, waits for
# relayd.listen (127.0.0.1:PORT read from CONFIG). Sets RELAYD_PID, RELAYD_PORT, RELAYD_ERR.
sluice_relayd_start() {
  local cfg=$1 bin=$BUILD/relay-core/sluice-relayd
  RELAYD_ERR=$T/relayd.err
  [ -x "$bin" ] || { echo "    ($bin is not built)"; return 1; }
  RELAYD_PORT=$(sed -nE '/^relayd:/,/^[a-z]/ s/^[[:space:]]*listen:[[:space:]]*"?127\.0\.0\.1:([0-9]+).*/\1/p' "$cfg" | head -1)
  [ -n "$RELAYD_PORT" ] || { echo "    (no relayd 'listen: 127.0.0.1:PORT' in $cfg)"; return 1; }
  # A test that does not say how to deliver keeps its mail queued: delivery would resolve the
  # recipients' domains, and tests never ask the machine's resolver.
  grep -q '^delivery:' "$cfg" || printf '\ndelivery:\n  enabled: false\n' >> "$cfg"
  grep -q '^dns:' "$cfg" || printf '\ndns:\n  servers: [127.0.0.1@9]\n' >> "$cfg"
  start_bg relayd "$bin" --config "$cfg"
  RELAYD_PID=$LAST_PID
  wait_port 127.0.0.1 "$RELAYD_PORT" 15 "$RELAYD_PID" || { show_tail "$RELAYD_ERR"; return 1; }
}
# sluicectl_run OUT ARGS...: run $BUILD/sluicectl/sluicectl ARGS, output (both streams) to OUT
# followed by "=== sluicectl rc=N"; rc in SLUICECTL_RC.
sluicectl_run() {
  local out=$1; shift
  case $out in /*) ;; *) out=$T/$out;; esac
  SLUICECTL_RC=0
  if [ -x "$BUILD/sluicectl/sluicectl" ]; then
    timeout 20 "$BUILD/sluicectl/sluicectl" "$@" > "$out" 2>&1 || SLUICECTL_RC=$?
  else
    echo "$BUILD/sluicectl/sluicectl is not built" > "$out"; SLUICECTL_RC=127
  fi
  echo "=== sluicectl rc=$SLUICECTL_RC" >> "$out"
  return 0
}

# ---------------------------------------------------------------------------------------------
# cleanup (the EXIT trap; finish calls it first)
_e2e_cleanup() {
  local i d rc=$?
  [ -n "${E2E_CLEANED:-}" ] && return 0
  E2E_CLEANED=1
  for d in "${PF_DIRS[@]}"; do pf_stop "$d"; done
  for d in "${E2E_MOUNTS[@]}"; do umount -l "$d" 2>/dev/null; done
  for ((i = ${#BG_PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${BG_PIDS[$i]}" || true; done
  _release_ports
  if [ "$E2E_DONE" = 1 ] && [ "$E2E_FAILED" -eq 0 ] && [ "$E2E_PASSED" -gt 0 ] && [ -z "${E2E_KEEP:-}" ]; then
    rm -rf "$T"
  else
    echo "== kept $T (elapsed $((SECONDS - E2E_START)) s)"
  fi
  return $rc
}
_e2e_exit() {
  local rc=$?
  [ "$BASHPID" = "$$" ] || return $rc          # a forked child that has not exec'd yet: not ours to clean
  [ "$E2E_DONE" = 1 ] && return
  E2E_DONE=1
  fail "$E2E_NAME ended before finish (exit code $rc)"
  _e2e_cleanup
  echo "$E2E_PASSED passed, $E2E_FAILED failed"
  exit 1
}
trap _e2e_exit EXIT
trap '[ "$BASHPID" = "$$" ] || exit 143; echo "== interrupted"; exit 130' INT TERM HUP
