#!/bin/bash
# install-deps.sh - install every Debian 12 package Sluice needs to build, test and benchmark.
#
# Runs as root on a fresh Debian 12 machine; idempotent. No service is left running: while the
# packages install, a temporary /usr/sbin/policy-rc.d (exit 101) keeps Debian's maintainer scripts
# from starting postfix, postfwd or policyd-rate-limit, and any instance that did start is stopped
# and disabled afterwards, so nothing clashes with the ports the tests and the demo use.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

created_policy_rc=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  created_policy_rc=1
fi
restore() { [ "$created_policy_rc" = 1 ] && rm -f /usr/sbin/policy-rc.d; return 0; }
trap restore EXIT

# Postfix asks questions in its postinst: "Local only" gives a skeleton main.cf and no prompt.
echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections
echo "postfix postfix/mailname string sluice.invalid" | debconf-set-selections

BUILD=(build-essential cmake ninja-build ccache pkg-config git
       clang-14 libclang-rt-14-dev llvm-14
       libyaml-cpp-dev libsqlite3-dev sqlite3 libgtest-dev libgmock-dev libasio-dev libssl-dev
       nlohmann-json3-dev libhiredis-dev libmilter-dev libunbound-dev libopendkim-dev libcurl4-openssl-dev libre2-dev
       libgoogle-perftools-dev)
RUNTIME_TEST=(postfix sasl2-bin libsasl2-modules swaks postfwd policyd-rate-limit redis-server
              python3-dkim libmail-dkim-perl libnet-dns-perl
              procps iproute2 psmisc openssl python3 bc curl libsisimai-perl
              unbound opendkim opendkim-tools miltertest
              libwrap0 libdb5.3 libldap-2.5-0 libnsl2 m4)  # the last five: the private Sendmail's

need=()
for p in "${BUILD[@]}" "${RUNTIME_TEST[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  # An apt list older than a day may name package versions the mirror no longer has.
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
    apt-get -o DPkg::Lock::Timeout=600 update
  fi
  apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${need[@]}"
fi

# Sendmail conflicts with postfix as a package, so the tests run a private copy: the .debs are
# downloaded and unpacked (dpkg -x) under SENDMAIL_ROOT, never installed (tests/e2e/lib.sh:
# sm_instance). Nothing of it is on the PATH or in /etc.
SENDMAIL_ROOT=${SENDMAIL_ROOT:-/opt/sluice-test/sendmail}
if [ ! -x "$SENDMAIL_ROOT/root/usr/libexec/sendmail/sendmail" ]; then
  mkdir -p "$SENDMAIL_ROOT" && (cd "$SENDMAIL_ROOT" && rm -f ./*.deb &&
    apt-get -o DPkg::Lock::Timeout=600 download sendmail-bin sendmail-base sendmail-cf &&
    mkdir -p root && for d in sendmail-*.deb; do dpkg -x "$d" root; done)
fi

# Belt and braces for machines where a service started anyway (no policy-rc.d honoured).
for svc in postfix postfwd policyd-rate-limit redis-server unbound opendkim; do
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now "$svc" >/dev/null 2>&1 || true
  fi
done
pkill -x -f '/usr/lib/postfix/sbin/master' 2>/dev/null || true
[ -f /var/spool/postfix/pid/master.pid ] && postfix stop >/dev/null 2>&1 || true
pkill -f 'postfwd2|postfwd3|policyd-rate-limit' 2>/dev/null || true
# Debian's redis-server listens on 6379; the tests start their own on free ports.
[ -f /run/redis/redis-server.pid ] && kill "$(cat /run/redis/redis-server.pid)" 2>/dev/null || true
echo "install-deps: all packages present"
