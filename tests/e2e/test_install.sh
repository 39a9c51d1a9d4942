#!/bin/bash
# test_install.sh BUILD_DIR - installing Sluice the way a sysadmin does, into a staging root
# ($T/root, DESTDIR), following the steps of README "Install on a real Postfix host":
#   (a) `cmake --install` (DESTDIR): the exact file list and modes; a second install keeps an
#       edited /etc/sluice/sluice.yaml;
#   (b) sluice-setup: the sluice user and group (created on this host if missing), owners and
#       modes of /var/lib/sluice, /etc/sluice, /etc/sluice/dkim, /var/spool/postfix/sluice;
#   (c) the systemd units pass `systemd-analyze verify` (ExecStart pointed at the staged binaries;
#       a daemon missing from a partial build is verified against a stub); `systemctl --root
#       enable` of the three units (README step 5) makes the multi-user.target.wants links;
#   (d) every man page renders with `man --warnings -l` and nothing on stderr, and every key of
#       `sluicectl config params` appears in sluice.yaml(5);
#   (e) DKIM keys made with the README's openssl commands; the daemons started as root, as the
#       units start them: they run as sluice (Uid/Gid/Groups from /proc/PID/status), the milter
#       created its socket directory sluice:postfix 0750 and Postfix's user can connect to the
#       socket while others cannot;
#   (f) the contrib snippets appended to a real (isolated) Postfix's main.cf, `postfix reload`, and
#       an authenticated message comes out DKIM-signed; `sluicectl status` talks to policyd;
#   (g) refusals, each one line: a world-readable key, a world-writable state dir, a state dir
#       owned by root, an unknown run_as_user; and the warning for a key sluice cannot read;
#   (h) sluice-relayd started as root with submission_listen 127.0.0.1:587 and smtps_listen
#       127.0.0.1:465 (privileged; unprivileged free ports instead, said so, when something else
#       holds them) and a TLS certificate: it binds them, runs as sluice (/proc/PID/status), serves
#       TLS on both after the drop, `sluicectl queue totals` (README step 7) reads its queue; it
#       refuses, in one line and exit 1, a world-writable state_dir, a group-readable
#       relayd.tls_key_file and a group-readable DKIM key. Delivery is off and dns.servers points
#       at 127.0.0.1@9: this relayd never resolves a name.
# Needs root (users, chown, Postfix, ports 465/587). ~20 s.
source "$(dirname "$0")/lib.sh" "$@"

SRC=$(cd "$E2E_SRC/../.." && pwd)
R=$T/root
PREFIX=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILD/CMakeCache.txt")
[ "$(id -u)" = 0 ] || die "needs root"
[ -n "$PREFIX" ] || die "no CMAKE_INSTALL_PREFIX in $BUILD/CMakeCache.txt"
RELAYD=0; [ -x "$BUILD/relay-core/sluice-relayd" ] && RELAYD=1
DAEMONS="sluice-policyd sluice-milter"; [ $RELAYD = 1 ] && DAEMONS="$DAEMONS sluice-relayd"
P=${PREFIX#/}

# owner_mode PATH: "user:group mode" (octal, 4 digits).
owner_mode() { stat -c '%U:%G %a' "$1" 2>/dev/null | awk '{printf "%s %04d\n", $1, $2}'; }

# --- (a) cmake --install into DESTDIR ----------------------------------------------------------
note "(a) DESTDIR=$R cmake --install $BUILD (prefix $PREFIX)"
DESTDIR=$R cmake --install "$BUILD" > "$T/install1.out" 2>&1 || { show_tail "$T/install1.out"; die "cmake --install failed"; }
{
  for d in $DAEMONS; do
    echo "$P/sbin/$d"; echo "$P/lib/systemd/system/$d.service"; echo "$P/share/man/man8/$d.8"
  done
  echo "$P/bin/sluicectl"
  echo "$P/share/man/man8/sluicectl.8"
  echo "$P/share/man/man5/sluice.yaml.5"
  echo "etc/sluice/sluice.yaml"
  echo "$P/share/doc/sluice/README.md"
  echo "$P/share/doc/sluice/examples/sluice.yaml"
  echo "$P/share/doc/sluice/postfix/README.md"
  echo "$P/share/doc/sluice/postfix/bounce-main.cf.snippet"
  echo "$P/share/doc/sluice/postfix/bounce-master.cf.snippet"
  echo "$P/share/doc/sluice/postfix/bounce.transport"
  echo "$P/share/doc/sluice/postfix/main.cf.snippet"
  echo "$P/share/doc/sluice/postfix/milter.cf.snippet"
  echo "$P/share/doc/sluice/postfix/relayhost.cf.snippet"
  echo "$P/share/doc/sluice/sendmail/README.md"
  echo "$P/share/doc/sluice/sendmail/sluice.mc"
  echo "$P/share/sluice/sluice-setup"
  echo "$P/share/sluice/bounce-rules.conf"
} | sort > "$T/files.want"
(cd "$R" && find . -type f | sed 's#^\./##' | sort) > "$T/files.got"
if diff "$T/files.want" "$T/files.got" > "$T/files.diff"; then pass "(a) installed files are exactly the $(wc -l < "$T/files.want") expected"
else fail "(a) installed file list differs (< want, > got)"; sed 's/^/    /' "$T/files.diff"; fi
for f in $DAEMONS; do expect_eq "(a) $P/sbin/$f mode" "$(owner_mode "$R/$P/sbin/$f")" "root:root 0755"; done
expect_eq "(a) $P/bin/sluicectl mode" "$(owner_mode "$R/$P/bin/sluicectl")" "root:root 0755"
expect_eq "(a) sluice-setup is executable" "$(owner_mode "$R/$P/share/sluice/sluice-setup")" "root:root 0755"
expect_eq "(a) /etc/sluice/sluice.yaml mode 0640" "$(stat -c %a "$R/etc/sluice/sluice.yaml")" 640
expect_eq "(a) man pages 0644" "$(stat -c %a "$R/$P/share/man/man5/sluice.yaml.5")" 644
expect_eq "(a) /etc/sluice/sluice.yaml is the shipped example" "$(cmp -s "$SRC/contrib/sluice.yaml" "$R/etc/sluice/sluice.yaml" && echo same)" same
grep -q "^ExecStart=$PREFIX/sbin/sluice-policyd " "$R/$P/lib/systemd/system/sluice-policyd.service" \
  && pass "(a) unit ExecStart names $PREFIX/sbin" || fail "(a) unit ExecStart does not name $PREFIX/sbin"
echo "# edited by the sysadmin" >> "$R/etc/sluice/sluice.yaml"
DESTDIR=$R cmake --install "$BUILD" > "$T/install2.out" 2>&1 || { show_tail "$T/install2.out"; die "second cmake --install failed"; }
expect_match "(a) a second install keeps an existing sluice.yaml" '^-- Kept: .*/etc/sluice/sluice\.yaml' "$T/install2.out"
expect_eq "(a) the edit survived" "$(tail -1 "$R/etc/sluice/sluice.yaml")" "# edited by the sysadmin"

# --- (b) sluice-setup -------------------------------------------------------------------------
note "(b) sluice-setup --root $R"
mkdir -p "$R/var/spool/postfix"
"$R/$P/share/sluice/sluice-setup" --root "$R" > "$T/setup.out" 2>&1 || { show_tail "$T/setup.out"; die "sluice-setup failed"; }
"$R/$P/share/sluice/sluice-setup" --root "$R" > "$T/setup2.out" 2>&1 && pass "(b) sluice-setup runs twice" || fail "(b) second sluice-setup"
getent passwd sluice > "$T/passwd" || die "no sluice user after sluice-setup"
SLUICE_UID=$(id -u sluice); SLUICE_GID=$(id -g sluice)
expect_match "(b) sluice is a system user without a login shell" '^sluice:x:[0-9]+:[0-9]+:.*:/var/lib/sluice:/usr/sbin/nologin$' "$T/passwd"
[ "$SLUICE_UID" -lt 1000 ] && [ "$SLUICE_UID" -gt 0 ] && pass "(b) sluice uid $SLUICE_UID is a system uid" || fail "(b) uid $SLUICE_UID"
expect_eq "(b) /var/lib/sluice" "$(owner_mode "$R/var/lib/sluice")" "sluice:sluice 0700"
expect_eq "(b) /etc/sluice" "$(owner_mode "$R/etc/sluice")" "root:sluice 0750"
expect_eq "(b) /etc/sluice/sluice.yaml" "$(owner_mode "$R/etc/sluice/sluice.yaml")" "root:sluice 0640"
expect_eq "(b) /etc/sluice/dkim" "$(owner_mode "$R/etc/sluice/dkim")" "sluice:sluice 0700"
expect_eq "(b) /var/spool/postfix/sluice" "$(owner_mode "$R/var/spool/postfix/sluice")" "sluice:postfix 0750"

# --- (c) systemd units ------------------------------------------------------------------------
note "(c) systemd-analyze verify"
mkdir -p "$T/units" "$T/stub" "$T/man/man5" "$T/man/man8"
ln -s "$BUILD"/man/*.8 "$T/man/man8/"; ln -s "$BUILD/man/sluice.yaml.5" "$T/man/man5/"
printf '#!/bin/sh\nexit 0\n' > "$T/stub/sluice-relayd"; chmod 755 "$T/stub/sluice-relayd"
for u in "$SRC"/contrib/systemd/*.service; do
  n=$(basename "$u" .service)
  bin=$R/$P/sbin/$n; [ -x "$bin" ] || bin=$T/stub/$n
  sed "s#^ExecStart=/usr/sbin/$n #ExecStart=$bin #" "$u" > "$T/units/$n.service"
done
MANPATH=$T/man systemd-analyze verify "$T"/units/*.service > "$T/verify.out" 2>&1; rc=$?
expect_eq "(c) systemd-analyze verify exits 0" "$rc" 0 "$T/verify.out"
expect_no_match "(c) systemd-analyze says nothing about our units" 'sluice' "$T/verify.out"
for n in sluice-policyd sluice-milter sluice-relayd; do
  grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$T/units/$n.service" && grep -q '^Restart=on-failure$' "$T/units/$n.service" \
    && grep -q '^ProtectSystem=strict$' "$T/units/$n.service" && grep -q '^NoNewPrivileges=yes$' "$T/units/$n.service" \
    && grep -q '^ReadWritePaths=/var/lib/sluice' "$T/units/$n.service" && grep -q '^PrivateTmp=yes$' "$T/units/$n.service" \
    && pass "(c) $n: reload by SIGHUP, restart on failure, hardening" || fail "(c) $n unit lacks a required setting"
done
# README step 5 (without --now: nothing runs under systemd here).
systemctl --root="$R" enable $DAEMONS > "$T/enable.out" 2>&1; rc=$?
expect_eq "(c) systemctl --root enable $DAEMONS exits 0" "$rc" 0 "$T/enable.out"
for n in $DAEMONS; do
  l=$R/etc/systemd/system/multi-user.target.wants/$n.service
  [ -L "$l" ] && [ "$(readlink "$l")" = "$PREFIX/lib/systemd/system/$n.service" ] \
    && pass "(c) systemctl enable linked $n.service into multi-user.target.wants" || { fail "(c) systemctl enable $n"; show_tail "$T/enable.out"; }
done
[ $RELAYD = 1 ] || fail "(c) sluice-relayd is not built, so its unit was neither installed nor enabled"

# --- (d) man pages ----------------------------------------------------------------------------
note "(d) man pages"
for page in "$R/$P"/share/man/man*/* "$BUILD/man/sluice-relayd.8"; do
  MANWIDTH=80 man --warnings -l "$page" > "$T/man.$(basename "$page").txt" 2> "$T/man.err"
  if [ -s "$T/man.err" ] || [ ! -s "$T/man.$(basename "$page").txt" ]; then fail "(d) man -l $(basename "$page")"; show_tail "$T/man.err"
  else pass "(d) $(basename "$page") renders without warnings ($(wc -l < "$T/man.$(basename "$page").txt") lines)"; fi
done
"$BUILD/sluicectl/sluicectl" config params | grep -E '^[a-z]' | cut -d' ' -f1 > "$T/keys.txt"
missing=0
while read -r key; do grep -qF -- "$key" "$T/man.sluice.yaml.5.txt" || { echo "    missing: $key"; missing=$((missing + 1)); }; done < "$T/keys.txt"
expect_eq "(d) every one of the $(wc -l < "$T/keys.txt") keys of sluicectl config params is in sluice.yaml(5)" "$missing" 0
expect_match "(d) sluice.yaml(5) documents run_as_user with its default" 'default “sluice”' "$T/man.sluice.yaml.5.txt"

# --- (e) keys, config, the daemons started as root run as sluice -------------------------------
note "(e) privilege drop"
D=$R/etc/sluice/dkim
# README step 3, under $R:
{ "$BUILD/sluicectl/sluicectl" dkim keygen --domain example.com --selector ed --type ed25519 --out "$D/example.com.ed25519.pem" &&
  "$BUILD/sluicectl/sluicectl" dkim keygen --domain example.com --selector rsa --out "$D/example.com.rsa.pem"; } > "$T/keys.err" 2>&1 || { show_tail "$T/keys.err"; die "sluicectl dkim keygen"; }
chown sluice:sluice "$D"/*.pem && chmod 600 "$D"/*.pem
expect_eq "(e) DKIM key owner and mode" "$(owner_mode "$D/example.com.rsa.pem")" "sluice:sluice 0600"
openssl pkey -in "$D/example.com.rsa.pem" -pubout -outform DER 2>/dev/null | base64 -w0 > "$T/rsa.p"
openssl pkey -in "$D/example.com.ed25519.pem" -pubout -outform DER 2>/dev/null | tail -c 32 | base64 > "$T/ed.p"
expect_match "(e) the RSA p= value (README step 3)" '^MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA[A-Za-z0-9+/=]+$' "$T/rsa.p"
expect_eq "(e) the Ed25519 p= value is 32 bytes" "$(base64 -d "$T/ed.p" | wc -c)" 32
PPORT=$(free_port)
SOCK=$R/var/spool/postfix/sluice/milter.sock
write_cfg() {  # write_cfg FILE STATE_DIR RSA_KEY [RUN_AS]: the sysadmin's sluice.yaml, paths under $R
  cat > "$1" <<YAML
state_dir: $2
run_as_user: ${4:-sluice}
policyd: { listen: 127.0.0.1:$PPORT, metrics_listen: "" }
milter: { listen: "unix:$SOCK" }
identities:
  - { name: app1, sasl_usernames: [app1], senders: [example.com] }
dkim:
  signing_table:
    - domain: example.com
      signatures:
        - { selector: rsa1, key_file: $3 }
        - { selector: ed1, key_file: $D/example.com.ed25519.pem }
YAML
}
CFG=$R/etc/sluice/sluice.yaml
write_cfg "$CFG" "$R/var/lib/sluice" "$D/example.com.rsa.pem"
"$R/$P/bin/sluicectl" --config "$CFG" config check > "$T/check.out" 2>&1
expect_match "(e) sluicectl config check" ': OK \(1 identities' "$T/check.out"
# The milter creates its socket directory itself when it is missing (as sluice-setup would).
rm -rf "$R/var/spool/postfix/sluice"
# As the units start them: ExecStart as root.
start_bg policyd "$R/$P/sbin/sluice-policyd" --config "$CFG"; PPID_=$LAST_PID
start_bg milter "$R/$P/sbin/sluice-milter" --config "$CFG"; MPID=$LAST_PID
wait_port 127.0.0.1 "$PPORT" 15 "$PPID_" || { show_tail "$T/policyd.err"; die "policyd did not start"; }
for ((i = 0; i < 100; i++)); do [ -S "$SOCK" ] && break; _is_our_child "$MPID" || break; sleep 0.1; done
[ -S "$SOCK" ] || { show_tail "$T/milter.err"; die "milter did not create $SOCK"; }
for d in policyd:$PPID_ milter:$MPID; do
  name=${d%%:*} pid=${d#*:}
  grep -E '^(Uid|Gid|Groups):' "/proc/$pid/status" > "$T/$name.ids"
  expect_match "(e) sluice-$name runs as sluice (Uid)" "^Uid:[[:space:]]+$SLUICE_UID[[:space:]]+$SLUICE_UID[[:space:]]+$SLUICE_UID[[:space:]]+$SLUICE_UID$" "$T/$name.ids"
  expect_match "(e) sluice-$name runs as sluice (Gid)" "^Gid:[[:space:]]+$SLUICE_GID[[:space:]]+$SLUICE_GID[[:space:]]+$SLUICE_GID[[:space:]]+$SLUICE_GID$" "$T/$name.ids"
  expect_no_match "(e) sluice-$name kept no root group" '^Groups:.*(^|[[:space:]])0([[:space:]]|$)' "$T/$name.ids"
  expect_match "(e) sluice-$name logs the drop" "sluice-$name\[$pid\]: started as root, running as sluice \(uid $SLUICE_UID\)" "$T/$name.err" 3
done
expect_eq "(e) the milter created its socket directory" "$(owner_mode "$R/var/spool/postfix/sluice")" "sluice:postfix 0750"
expect_eq "(e) the socket belongs to sluice" "$(stat -c %U "$SOCK")" sluice
CONNECT="import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print('connected')"
runuser -u postfix -- python3 -c "$CONNECT" "$SOCK" > "$T/pf-connect.out" 2>&1
expect_match "(e) user postfix can connect to the milter socket" '^connected$' "$T/pf-connect.out"
runuser -u nobody -- python3 -c "$CONNECT" "$SOCK" > "$T/nobody-connect.out" 2>&1
expect_match "(e) user nobody cannot" 'PermissionError' "$T/nobody-connect.out"
expect_eq "(e) policyd's database belongs to sluice" "$(stat -c %U "$R/var/lib/sluice/sluice.db" 2>/dev/null)" sluice
# README step 7: sluicectl talks to the running policyd (root reaches the 0700 state dir).
"$R/$P/bin/sluicectl" --config "$CFG" status > "$T/status.out" 2>&1
expect_match "(e) sluicectl status answers" "127\.0\.0\.1:$PPORT" "$T/status.out"

# --- (f) the contrib snippets in a real Postfix, reload, a signed message -----------------------
note "(f) Postfix with the contrib snippets"
smtp_sink_start
pf_sasl_user pf app1 pw-one
pf_instance pf "$(free_port)" "$SINK_PORT"
# README step 6 (addresses of this test instead of the defaults; this Postfix is not chrooted):
cat "$R/$P/share/doc/sluice/postfix/main.cf.snippet" "$R/$P/share/doc/sluice/postfix/milter.cf.snippet" \
  | sed -e "s#inet:127\.0\.0\.1:10045#inet:127.0.0.1:$PPORT#g" -e "s#unix:/sluice/milter\.sock#unix:$SOCK#g" \
  >> "$PF_DIR/etc/main.cf"
postfix -c "$PF_DIR/etc" check > "$T/pf-check.out" 2>&1 && postfix -c "$PF_DIR/etc" reload > "$T/pf-reload.out" 2>&1
expect_eq "(f) postfix check && postfix reload" "$?" 0 "$T/pf-reload.out"
postconf -c "$PF_DIR/etc" -h smtpd_milters > "$T/pf-milters"
expect_match "(f) Postfix now names the milter" "unix:$SOCK" "$T/pf-milters"
sleep 0.5
swaks_run f --tls --auth PLAIN --auth-user app1 --auth-password pw-one --from alice@example.com \
  --to rcpt-f@dest.example --header "Subject: install f" --header "From: Alice <alice@example.com>"
expect_match "(f) authenticated message accepted" '^<~  250 2\.0\.0 Ok: queued as' "$T/f"
pf_wait_queue_empty >/dev/null; sink_wait 1 10
f=$(sink_find '^Subject: install f$')
expect_eq "(f) delivered with two DKIM-Signature fields (Postfix reached the dropped milter)" "$(grep -c '^DKIM-Signature:' "${f:-/dev/null}")" 2 "${f:-}"
stop_pid "$MPID"; stop_pid "$PPID_"

# --- (g) refusals, one line each ---------------------------------------------------------------
note "(g) refusals"
# refuse NAME DAEMON CONFIG REGEX: the daemon exits 1 with exactly one line matching REGEX.
refuse() {
  local name=$1 bin=$2 cfg=$3 re=$4
  timeout 20 "$R/$P/sbin/$bin" --config "$cfg" > "$T/$name.out" 2> "$T/$name.err"; local rc=$?
  expect_eq "${SEC:-(g)} $name: $bin exits 1" "$rc" 1 "$T/$name.err"
  expect_eq "${SEC:-(g)} $name: one line" "$(grep -c . "$T/$name.err")" 1 "$T/$name.err"
  expect_match "${SEC:-(g)} $name: the reason" "^$bin\[[0-9]+\]: fatal: $re" "$T/$name.err"
}
cp -p "$D/example.com.rsa.pem" "$D/world.pem"; chmod 644 "$D/world.pem"
write_cfg "$T/g1.yaml" "$R/var/lib/sluice" "$D/world.pem"
refuse world-readable-key sluice-milter "$T/g1.yaml" ".*$D/world\.pem is readable by group or others \(mode 0644\); chmod 600 it"
cp "$D/example.com.rsa.pem" "$D/rootkey.pem"; chown root:root "$D/rootkey.pem"; chmod 600 "$D/rootkey.pem"
write_cfg "$T/g2.yaml" "$R/var/lib/sluice" "$D/rootkey.pem"
# A key that cannot be read is a broken key (dkim.key_error_action per message), not a refusal;
# the warning says whose it must be.
start_bg milter-g2 "$R/$P/sbin/sluice-milter" --config "$T/g2.yaml"
expect_match "(g) a key sluice cannot read: the warning names the user" "warning: dkim: key file $D/rootkey\.pem: permission denied for sluice \(uid $SLUICE_UID\), who runs this daemon; keys must belong to that user, mode 0600" "$T/milter-g2.err" 10
stop_pid "$LAST_PID"
install -d -o sluice -g sluice -m 0777 "$R/var/lib/ww"
write_cfg "$T/g3.yaml" "$R/var/lib/ww" "$D/example.com.rsa.pem"
refuse world-writable-state sluice-policyd "$T/g3.yaml" "state_dir $R/var/lib/ww is writable by everyone \(mode 0777\); chmod 700 $R/var/lib/ww$"
refuse world-writable-state-milter sluice-milter "$T/g3.yaml" "state_dir $R/var/lib/ww is writable by everyone \(mode 0777\)"
install -d -o root -g root -m 0700 "$R/var/lib/rootowned"
write_cfg "$T/g4.yaml" "$R/var/lib/rootowned" "$D/example.com.rsa.pem"
refuse root-owned-state sluice-policyd "$T/g4.yaml" "state_dir $R/var/lib/rootowned belongs to root, not to sluice who runs this daemon; chown -R sluice: $R/var/lib/rootowned$"
write_cfg "$T/g5.yaml" "$R/var/lib/sluice" "$D/example.com.rsa.pem" no-such-user-e2e
refuse unknown-user sluice-policyd "$T/g5.yaml" "run_as_user no-such-user-e2e: no such user"

# --- (h) sluice-relayd: binds 587/465 as root, then runs as sluice --------------------------------
note "(h) sluice-relayd as root"
[ $RELAYD = 1 ] || die "(h) $BUILD/relay-core/sluice-relayd is not built"
# The privileged ports when nothing holds them (reserved like free_port's); else unprivileged
# ones, and the output says the privileged bind was not shown.
pick_port() {  # pick_port PORT: PORT if claim_port gets it, else a free_port
  if claim_port "$1"; then echo "$1"; return; fi
  note "(h) 127.0.0.1:$1 is taken ($(ss -Htlnp "( sport = :$1 )" 2>/dev/null | awk '{print $4, $6}' | head -1)): using an unprivileged port, the bind of a privileged port is NOT shown" >&2
  free_port
}
SUBPORT=$(pick_port 587) && SMTPSPORT=$(pick_port 465) && RLPORT=$(free_port) || die "(h) no ports"
TLS=$R/etc/sluice/tls
install -d -o root -g sluice -m 0750 "$TLS"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=relay.test.example" \
  -keyout "$TLS/relay.key" -out "$TLS/relay.crt" > "$T/tls.err" 2>&1 || { show_tail "$T/tls.err"; die "(h) test certificate"; }
chown sluice:sluice "$TLS/relay.key" && chmod 600 "$TLS/relay.key"
write_relayd_cfg() {  # write_relayd_cfg FILE STATE_DIR TLS_KEY DKIM_KEY
  cat > "$1" <<YAML
state_dir: $2
run_as_user: sluice
relayd:
  listen: 127.0.0.1:$RLPORT
  submission_listen: 127.0.0.1:$SUBPORT
  smtps_listen: 127.0.0.1:$SMTPSPORT
  tls_cert_file: $TLS/relay.crt
  tls_key_file: $3
  hostname: relay.test.example
  metrics_listen: ""
identities:
  - { name: app1, sasl_usernames: [app1], senders: [example.com] }
dkim:
  signing_table:
    - domain: example.com
      signatures: [ { selector: rsa1, key_file: $4 } ]
# never deliver, never resolve: no MX lookups through this machine's resolver
delivery: { enabled: false }
dns: { servers: [127.0.0.1@9] }
YAML
}
RCFG=$T/relayd.yaml
write_relayd_cfg "$RCFG" "$R/var/lib/sluice" "$TLS/relay.key" "$D/example.com.rsa.pem"
start_bg relayd "$R/$P/sbin/sluice-relayd" --config "$RCFG"; RPID=$LAST_PID
wait_port 127.0.0.1 "$SMTPSPORT" 15 "$RPID" && wait_port 127.0.0.1 "$SUBPORT" 5 "$RPID" && wait_port 127.0.0.1 "$RLPORT" 5 "$RPID" \
  || { show_tail "$T/relayd.err"; die "(h) sluice-relayd did not start"; }
expect_match "(h) sluice-relayd logs the drop" "sluice-relayd\[$RPID\]: started as root, running as sluice \(uid $SLUICE_UID\)" "$T/relayd.err" 5
grep -E '^(Uid|Gid|Groups):' "/proc/$RPID/status" > "$T/relayd.ids"
expect_match "(h) sluice-relayd runs as sluice (Uid)" "^Uid:[[:space:]]+$SLUICE_UID[[:space:]]+$SLUICE_UID[[:space:]]+$SLUICE_UID[[:space:]]+$SLUICE_UID$" "$T/relayd.ids"
expect_match "(h) sluice-relayd runs as sluice (Gid)" "^Gid:[[:space:]]+$SLUICE_GID[[:space:]]+$SLUICE_GID[[:space:]]+$SLUICE_GID[[:space:]]+$SLUICE_GID$" "$T/relayd.ids"
expect_no_match "(h) sluice-relayd kept no root group" '^Groups:.*(^|[[:space:]])0([[:space:]]|$)' "$T/relayd.ids"
for l in "$SMTPSPORT smtps" "$SUBPORT submission"; do
  read -r port kind <<< "$l"
  ss -Htlnp "( sport = :$port )" > "$T/ss.$port" 2>&1
  expect_match "(h) 127.0.0.1:$port ($kind) is held by sluice-relayd pid $RPID" "127\.0\.0\.1:$port .*pid=$RPID," "$T/ss.$port"
  expect_match "(h) sluice-relayd logs its $kind listener" "listening on 127\.0\.0\.1:$port \($kind\)" "$T/relayd.err"
done
# TLS on both listeners, served by the dropped process (its key read as sluice).
swaks_run h-smtps --server "127.0.0.1:$SMTPSPORT" --tlsc --quit-after EHLO
expect_match "(h) implicit TLS on $SMTPSPORT, then EHLO 250" '^<~  250 ' "$T/h-smtps"
swaks_run h-sub --server "127.0.0.1:$SUBPORT" --tls --quit-after EHLO
expect_match "(h) STARTTLS on $SUBPORT, then EHLO 250" '^<~  250 ' "$T/h-sub"
# README step 7: the queue relayd opened as sluice.
"$R/$P/bin/sluicectl" --config "$RCFG" queue totals > "$T/totals.out" 2>&1
expect_match "(h) sluicectl queue totals reads relayd's queue" '^messages: 0$' "$T/totals.out"
expect_eq "(h) relayd's queue.db belongs to sluice" "$(stat -c %U "$R/var/lib/sluice/queue.db" 2>/dev/null)" sluice
stop_pid "$RPID"; rc=$?
expect_eq "(h) sluice-relayd exits 0 on SIGTERM" "$rc" 0 "$T/relayd.err"
SEC="(h)"
write_relayd_cfg "$T/h1.yaml" "$R/var/lib/ww" "$TLS/relay.key" "$D/example.com.rsa.pem"
refuse relayd-world-writable-state sluice-relayd "$T/h1.yaml" "state_dir $R/var/lib/ww is writable by everyone \(mode 0777\); chmod 700 $R/var/lib/ww$"
install -o sluice -g sluice -m 0640 "$TLS/relay.key" "$TLS/group.key"
write_relayd_cfg "$T/h2.yaml" "$R/var/lib/sluice" "$TLS/group.key" "$D/example.com.rsa.pem"
refuse relayd-group-readable-tls-key sluice-relayd "$T/h2.yaml" "relayd\.tls_key_file $TLS/group\.key is readable by group or others \(mode 0640\); chmod 600 it; not starting$"
install -o sluice -g sluice -m 0640 "$D/example.com.rsa.pem" "$D/group.pem"
write_relayd_cfg "$T/h3.yaml" "$R/var/lib/sluice" "$TLS/relay.key" "$D/group.pem"
refuse relayd-group-readable-dkim-key sluice-relayd "$T/h3.yaml" ".*$D/group\.pem is readable by group or others \(mode 0640\); chmod 600 it"
finish
