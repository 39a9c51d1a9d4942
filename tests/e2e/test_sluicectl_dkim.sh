#!/bin/bash
# test_sluicectl_dkim.sh BUILD_DIR - `sluicectl dkim keygen` and `sluicectl dkim check` against a
# real DNS server: a local unbound on loopback serving test records (dns.servers points at it).
#   keygen: RSA and Ed25519 keys written mode 0600, never overwritten without --force, the printed
#   record is what gets published; check: the right record -> OK (exit 0); the key from the
#   config's signing table; an old key still published, a revoked key, two records, bad base64,
#   NXDOMAIN -> PROBLEM (exit 1); a dead DNS server -> a lookup failure, not a verdict.
#   Run as root, keygen gives the key (still 0600) to run_as_user of the config, refuses a
#   run_as_user that does not exist, and without a config gives the key and the directory it
#   creates (/etc/sluice/dkim, in a private /etc: unshare -m) to `sluice`, or keeps root and says
#   to chown when there is no such user.
source "$(dirname "$0")/lib.sh" "$@"

CTL=$BUILD/sluicectl/sluicectl
[ -x "$CTL" ] || die "$CTL is not built"
mkdir -p "$T/keys"
sluicectl_run kg-rsa.out dkim keygen --domain Example.COM --selector sel1 --out "$T/keys/sel1.pem"
expect_eq "keygen rsa exits 0" "$SLUICECTL_RC" 0 "$T/kg-rsa.out"
expect_eq "the key file is mode 600" "$(stat -c %a "$T/keys/sel1.pem")" 600
expect_match "keygen prints the zone-file record" '^sel1\._domainkey\.example\.com\. IN TXT \( "v=DKIM1; k=rsa; p=' "$T/kg-rsa.out"
sluicectl_run kg-ed.out dkim keygen --domain example.com --selector ed1 --type ed25519 --out "$T/keys/ed1.pem"
expect_match "keygen ed25519 prints a k=ed25519 record" '^ed1\._domainkey\.example\.com\. IN TXT \( "v=DKIM1; k=ed25519; p=' "$T/kg-ed.out"
sluicectl_run kg-old.out dkim keygen --domain example.com --selector old --out "$T/keys/old.pem"
sluicectl_run kg-again.out dkim keygen --domain example.com --selector sel1 --out "$T/keys/sel1.pem"
expect_eq "keygen refuses to overwrite a key (exit 1)" "$SLUICECTL_RC" 1 "$T/kg-again.out"
expect_match "... and says why" 'never overwritten; use --force' "$T/kg-again.out"
sluicectl_run kg-bad.out dkim keygen --domain example.com --selector s --bits 1024 --out "$T/keys/small.pem"
expect_match "keygen refuses RSA under 2048 bits" 'RSA key size must be 2048\.\.8192 bits' "$T/kg-bad.out"

if [ "$(id -u)" = 0 ] && getent passwd nobody > /dev/null; then
  printf 'state_dir: %s\nrun_as_user: nobody\n' "$T/state" > "$T/owner.yaml"
  sluicectl_run kg-own.out --config "$T/owner.yaml" dkim keygen --domain example.com --selector own --type ed25519 --out "$T/keys/own.pem"
  expect_eq "keygen as root gives the key to run_as_user, mode 600 kept" "$SLUICECTL_RC:$(stat -c %U:%a "$T/keys/own.pem")" 0:nobody:600 "$T/kg-own.out"
  expect_match "... and prints the owner" "^owner nobody \(run_as_user of $T/owner.yaml" "$T/kg-own.out"
  printf 'state_dir: %s\nrun_as_user: sluice-e2e-no-such-user\n' "$T/state" > "$T/nouser.yaml"
  sluicectl_run kg-nouser.out --config "$T/nouser.yaml" dkim keygen --domain example.com --selector nu --out "$T/keys/nu.pem"
  expect_eq "keygen for a run_as_user that does not exist exits 1, writing nothing" "$SLUICECTL_RC:$(ls "$T/keys/nu.pem" 2> /dev/null)" 1: "$T/kg-nouser.out"
  expect_match "... naming the user" 'run_as_user sluice-e2e-no-such-user: no such user' "$T/kg-nouser.out"
  if unshare -m true 2> /dev/null; then
    # No config, default --out: a private /etc whose passwd has (then lacks) the user sluice.
    mkdir -p "$T/etc"
    cp /etc/nsswitch.conf "$T/etc/" 2> /dev/null
    grep -v '^sluice:' /etc/passwd > "$T/etc/passwd.nosluice"
    grep -v '^sluice:' /etc/group > "$T/etc/group"
    echo 'sluice:x:60123:' >> "$T/etc/group"
    { cat "$T/etc/passwd.nosluice"; echo 'sluice:x:60123:60123::/nonexistent:/usr/sbin/nologin'; } > "$T/etc/passwd"
    keygen_in_etc() {  # OUT: keygen with the default --out, /etc being $T/etc; then the owners
      unshare -m sh -c 'mount --bind "$1/etc" /etc && shift && "$@"; echo "rc=$?"; stat -c "dir %u:%a" /etc/sluice/dkim; stat -c "key %u:%a" /etc/sluice/dkim/example.com.def.pem' \
        - "$T" "$CTL" --config "$T/missing.yaml" dkim keygen --domain example.com --selector def --type ed25519 > "$T/$1" 2>&1
    }
    keygen_in_etc kg-def.out
    expect_match "keygen without a config exits 0" '^rc=0' "$T/kg-def.out"
    expect_match "... gives the directory it creates to sluice, mode 700" '^dir 60123:700$' "$T/kg-def.out"
    expect_match "... and the key, mode 600" '^key 60123:600$' "$T/kg-def.out"
    expect_match "... saying whose it is" "^owner sluice \(no configuration loaded; sluice is run_as_user's default" "$T/kg-def.out"
    rm -rf "$T/etc/sluice"
    cp "$T/etc/passwd.nosluice" "$T/etc/passwd"
    keygen_in_etc kg-root.out
    expect_match "keygen without a config nor a user sluice exits 0" '^rc=0' "$T/kg-root.out"
    expect_match "... keeps the key root's" '^key 0:600$' "$T/kg-root.out"
    expect_match "... and says to chown it to the milter's user" 'note: the key belongs to root.*chown it to that user \(chown USER: /etc/sluice/dkim /etc/sluice/dkim/example\.com\.def\.pem\)' "$T/kg-root.out"
  else
    note "unshare -m does not work here: keygen's default directory is not checked"
  fi
else
  note "not root (or no user nobody): the ownership checks of keygen are skipped"
fi

# The records as keygen printed them (the quoted strings), published by unbound.
rec() { sed -n 's/^[^ ]* IN TXT ( \(.*\) )$/\1/p' "$1"; }
OTHER=$(rec "$T/kg-old.out")
ZONE="  local-zone: \"example.com.\" static
  local-data: 'sel1._domainkey.example.com. 60 IN TXT $(rec "$T/kg-rsa.out")'
  local-data: 'ed1._domainkey.example.com. 60 IN TXT $(rec "$T/kg-ed.out")'
  local-data: 'stale._domainkey.example.com. 60 IN TXT $OTHER'
  local-data: 'revoked._domainkey.example.com. 60 IN TXT \"v=DKIM1; k=rsa; p=\"'
  local-data: 'twice._domainkey.example.com. 60 IN TXT $(rec "$T/kg-rsa.out")'
  local-data: 'twice._domainkey.example.com. 60 IN TXT $OTHER'
  local-data: 'junk._domainkey.example.com. 60 IN TXT \"v=DKIM1; k=rsa; p=!!not-base64!!\"'
  local-data: 'spf.example.com. 60 IN TXT \"v=spf1 -all\"'"
unbound_start "$ZONE"
cat > "$T/sluice.yaml" <<YAML
state_dir: $T/state
dns: { servers: ["127.0.0.1@$DNS_PORT"], timeout: 2s }
dkim:
  signing_table:
    - domain: example.com
      signatures:
        - { selector: sel1, key_file: $T/keys/sel1.pem }
        - { selector: stale, key_file: $T/keys/sel1.pem }
YAML
note "unbound on 127.0.0.1:$DNS_PORT"

sluicectl_run ok.out --config "$T/sluice.yaml" dkim check example.com sel1
expect_eq "check sel1 (key from the signing table) exits 0" "$SLUICECTL_RC" 0 "$T/ok.out"
expect_match "check sel1: the published key matches the key file" "^OK      matches $T/keys/sel1.pem" "$T/ok.out"
sluicectl_run ed.out --config "$T/sluice.yaml" dkim check example.com ed1 --key "$T/keys/ed1.pem"
expect_eq "check ed1 --key exits 0" "$SLUICECTL_RC" 0 "$T/ed.out"
expect_match "check ed1: a 256-bit ed25519 key" '^OK      syntax: k=ed25519, 256-bit public key' "$T/ed.out"
sluicectl_run stale.out --config "$T/sluice.yaml" dkim check example.com stale
expect_eq "check stale (another key published) exits 1" "$SLUICECTL_RC" 1 "$T/stale.out"
expect_match "check stale: says the published key is not the key file's" '^PROBLEM the published p= is not the public half of' "$T/stale.out"
sluicectl_run revoked.out --config "$T/sluice.yaml" dkim check example.com revoked
expect_match "check revoked: p= empty is a revoked key" '^PROBLEM p= is empty: the key is revoked' "$T/revoked.out"
sluicectl_run twice.out --config "$T/sluice.yaml" dkim check example.com twice
expect_match "check twice: two key records" '^PROBLEM .*: 2 key records' "$T/twice.out"
sluicectl_run junk.out --config "$T/sluice.yaml" dkim check example.com junk
expect_match "check junk: bad base64" '^PROBLEM p= is not valid base64' "$T/junk.out"
sluicectl_run none.out --config "$T/sluice.yaml" dkim check example.com missing
expect_eq "check of a missing record exits 1" "$SLUICECTL_RC" 1 "$T/none.out"
expect_match "check missing: NXDOMAIN" '^PROBLEM missing\._domainkey\.example\.com: no such name \(NXDOMAIN\)' "$T/none.out"
stop_pid "$DNS_PID"
sluicectl_run dead.out --config "$T/sluice.yaml" dkim check example.com sel1
expect_eq "check with the DNS server down exits 1" "$SLUICECTL_RC" 1 "$T/dead.out"
expect_match "... as a lookup failure, not a verdict on the record" 'DNS lookup of sel1\._domainkey\.example\.com failed' "$T/dead.out"
finish
