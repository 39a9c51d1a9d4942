# bench/common.sh - shell helpers shared by the bench/*/run.sh scripts (source it; bash only).
#
# Every process a benchmark starts is stopped by PID (or by process group for daemons that
# setsid() and fork, such as postfwd2) from the caller's EXIT trap; nothing is ever stopped by name.
# Loopback only: every listener is on 127.0.0.1, on a port from free_port.

# free_port: print a TCP port on 127.0.0.1 that nobody listens on now (the kernel picks it).
# Another process may take it before we bind, as with any port-0 search; the callers then fail
# loudly in wait_port rather than measure the wrong server.
free_port() {
  /usr/bin/python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_port HOST PORT [TIMEOUT_S]: wait until a TCP listener accepts.
wait_port() {
  local h=$1 p=$2 t=${3:-20} i
  for ((i = 0; i < t * 10; i++)); do
    (exec 3<>"/dev/tcp/$h/$p") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "timeout waiting for $h:$p" >&2
  return 1
}

# stop_pid PID: TERM, wait up to 10 s, then KILL. Only ever a PID we started.
stop_pid() {
  local p=$1 i
  [ -n "$p" ] || return 0
  kill -0 "$p" 2>/dev/null || return 0
  kill "$p" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null || true; return 0; }; sleep 0.1; done
  kill -9 "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}

# stop_pgid_file PIDFILE: for daemons that setsid() and fork helpers (postfwd2): TERM the process
# group whose id is the PID in the file (the daemon we started), KILL leftovers after 10 s.
stop_pgid_file() {
  [ -f "$1" ] || return 0
  local g i
  g=$(tr -dc 0-9 < "$1"); rm -f "$1"; [ -n "$g" ] || return 0
  kill -TERM -- "-$g" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do pgrep -g "$g" >/dev/null || return 0; sleep 0.1; done
  kill -KILL -- "-$g" 2>/dev/null || true
}

# cpu_ticks PID: user+system CPU time of PID so far, in clock ticks (100/s).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# pgrp_cpu_ticks PGID: CPU ticks of process group PGID (postfwd2 and its children): each live
# process's own time plus that of the children it has reaped (postfwd2 replaces its children).
pgrp_cpu_ticks() {
  local t=0 p
  for p in $(pgrep -g "$1" 2>/dev/null); do
    t=$((t + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}

# quiet_disk_and_cpu: before a timed row, (1) write back what earlier rows left dirty in the page
# cache (`sync`: a syncfs or fsync in the next row would otherwise wait for the previous row's
# writeback, and both sides share the disk), (2) wait ROW_GAP seconds (default 60), and (3) wait
# until the 1-minute load is below 1.5 or 20 s passed. Applied to both sides alike. The gap is for
# ext4 without a journal (this machine's disk): it does not reuse an inode freed less than 60 s
# ago (360 s while its inode-table block is dirty; `recently_deleted()` in fs/ext4/ialloc.c), and
# every file creation scans past all such inodes of its block group, so after a mass deletion -
# Postfix's delivered queue files, the previous run's scratch directory - whichever side runs
# next pays 0.15-0.4 ms per new file (seen here: relayd's intake at 2,900 instead of 5,600
# msgs/s right after an `rm -rf` of 25,000 files; 5,200-5,600 after sync and 65 s).
quiet_disk_and_cpu() {
  local i
  sync
  sleep "${ROW_GAP:-60}"
  for ((i = 0; i < 20; i++)); do
    awk '{exit !($1 < 1.5)}' /proc/loadavg && break
    sleep 1
  done
}

# --- network namespaces with a local unbound (bench/relay, bench/queue-scale) ---------------------
# netns_up NAME: a private network namespace with only its own loopback up, and
# /etc/netns/NAME/resolv.conf = "nameserver 127.0.0.1" (ip netns exec bind-mounts it over
# /etc/resolv.conf), so unmodified libc resolvers (Postfix) ask the unbound of ns_unbound_start
# and nothing can reach the machine's own resolver. netns_down NAME removes both (EXIT trap).
netns_up() {
  ip netns add "$1"
  ip -n "$1" link set lo up
  mkdir -p "/etc/netns/$1"
  echo "nameserver 127.0.0.1" > "/etc/netns/$1/resolv.conf"
  printf '127.0.0.1 localhost relay.test.example\n::1 localhost\n' > "/etc/netns/$1/hosts"
}
netns_down() {
  [ -n "${1:-}" ] || return 0
  ip netns del "$1" 2>/dev/null || true
  rm -rf "/etc/netns/$1"
  rmdir /etc/netns 2>/dev/null || true
}
# ns_wait_port NS HOST PORT [TIMEOUT_S]: wait_port inside namespace NS.
ns_wait_port() {
  ip netns exec "$1" bash -c "$(declare -f wait_port); wait_port $2 $3 ${4:-20}"
}
# ns_free_port NS: free_port inside namespace NS.
ns_free_port() { ip netns exec "$1" bash -c "$(declare -f free_port); free_port"; }
# ns_unbound_start NS DIR ZONE_LINES: unbound on 127.0.0.1:53 inside NS answering only from
# ZONE_LINES (unbound.conf local-zone:/local-data: lines); everything else is REFUSED, so nothing
# is asked of the internet. Sets UNBOUND_PID (stop it with stop_pid).
ns_unbound_start() {
  local ns=$1 dir=$2 i
  mkdir -p "$dir"
  cat > "$dir/unbound.conf" <<CF
server:
  interface: 127.0.0.1@53
  port: 53
  do-ip6: no
  chroot: ""
  username: ""
  directory: "$dir"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 1
  module-config: "iterator"
  access-control: 127.0.0.0/8 allow
  num-threads: 1
  local-zone: "." refuse
$3
remote-control:
  control-enable: no
CF
  unbound-checkconf "$dir/unbound.conf" >/dev/null
  ip netns exec "$ns" unbound -d -c "$dir/unbound.conf" 2> "$dir/unbound.log" &
  UNBOUND_PID=$!
  for ((i = 0; i < 50; i++)); do
    ip netns exec "$ns" ss -Hlun 'sport = :53' 2>/dev/null | grep -q . && return 0
    sleep 0.1
  done
  echo "unbound did not start in $ns" >&2; cat "$dir/unbound.log" >&2; return 1
}
# rss_kib PID / hwm_kib PID: resident set now / its peak (VmHWM), KiB.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
