#!/bin/bash
# bench/postfix/pf-instance.sh DIR SMTPD_PORT RELAY_PORT [EXTRA_MAIN_CF_FILE]
# Creates and starts an isolated Postfix instance for the benchmarks (copy of the team recipe
# /work/shared/recipes/pf-instance.sh): no systemd, never touches /etc/postfix.
#   DIR/etc   = config_directory (main.cf, master.cf)   -> use "postfix -c DIR/etc ..."
#   DIR/spool = queue_directory, DIR/data = data_directory, DIR/maillog = log (postlogd, no syslog)
# Stop it with "postfix -c DIR/etc stop" (the master PID is in DIR/spool/pid/master.pid).
# Must run as root (postfix -c with a private config directory).
set -euo pipefail
D=$1; PORT=$2; RPORT=$3; EXTRA=${4:-}
mkdir -p "$D/etc" "$D/spool" "$D/data"
chown postfix "$D/data"
cat > "$D/etc/main.cf" <<CF
compatibility_level = 3.6
config_directory = $D/etc
queue_directory = $D/spool
data_directory = $D/data
maillog_file = $D/maillog
maillog_file_prefixes = $D
syslog_name = pftest
myhostname = relay.test.example
mydomain = test.example
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
relayhost = [127.0.0.1]:$RPORT
smtp_dns_support_level = disabled
biff = no
readme_directory = no
# the source and the sink live on the same host: no HELO loop check issues, but avoid "mail loops back to myself"
smtp_helo_name = relay.test.example
CF
# master.cf: every service unchrooted (chroot column = n), smtpd only on 127.0.0.1:PORT
cat > "$D/etc/master.cf" <<MF
127.0.0.1:$PORT inet n - n - - smtpd
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
# EXTRA: "name = value" lines applied with postconf -e (overrides the defaults above, no duplicate warnings)
if [ -n "$EXTRA" ]; then
  { grep -vE '^\s*(#|$)' "$EXTRA" || true; } | while IFS= read -r line; do postconf -c "$D/etc" -e "$line"; done
fi
postfix -c "$D/etc" check
postfix -c "$D/etc" start
