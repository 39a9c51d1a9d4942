#!/bin/sh
# sluice-setup - the post-install step of Sluice (what a Debian postinst does), idempotent:
#   the system group and user "sluice" (no login, home /var/lib/sluice);
#   /var/lib/sluice              sluice:sluice  0700  state_dir: SQLite files, admin sockets, spool
#   /etc/sluice                  root:sluice    0750
#   /etc/sluice/sluice.yaml      root:sluice    0640  read by root at start, by sluice on reload
#   /etc/sluice/dkim             sluice:sluice  0700  DKIM keys (each sluice:sluice 0600)
#   /var/spool/postfix/sluice    sluice:postfix 0750  the milter socket, reachable by Postfix's
#                                                     chrooted smtpd (only when Postfix is installed)
# Existing directories get these owners and modes again (not recursively); keys are not touched.
#
# Usage: sluice-setup [--root DIR] [--user NAME]
#   --root DIR   apply the directory layout under DIR (a staged tree); the user is still created
#                on this host, as the owners must name it
#   --user NAME  another user name (then set run_as_user: NAME in sluice.yaml)
set -eu

root=""
user=sluice
while [ $# -gt 0 ]; do
  case $1 in
    --root) root=${2:?--root needs a directory}; shift 2 ;;
    --root=*) root=${1#--root=}; shift ;;
    --user) user=${2:?--user needs a name}; shift 2 ;;
    --user=*) user=${1#--user=}; shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "sluice-setup: unknown argument \"$1\" (--help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "sluice-setup: must run as root" >&2; exit 1; }
PATH=$PATH:/usr/sbin:/sbin

if ! getent group "$user" >/dev/null; then
  groupadd --system "$user"
  echo "sluice-setup: created group $user"
fi
if ! getent passwd "$user" >/dev/null; then
  useradd --system --gid "$user" --home-dir /var/lib/sluice --no-create-home \
          --shell /usr/sbin/nologin --comment "Sluice mail relay daemons" "$user"
  echo "sluice-setup: created user $user"
fi

install -d -o "$user" -g "$user" -m 0700 "$root/var/lib/sluice"
install -d -o root -g "$user" -m 0750 "$root/etc/sluice"
install -d -o "$user" -g "$user" -m 0700 "$root/etc/sluice/dkim"
if [ -f "$root/etc/sluice/sluice.yaml" ]; then
  chown root:"$user" "$root/etc/sluice/sluice.yaml"
  chmod 0640 "$root/etc/sluice/sluice.yaml"
fi
if getent group postfix >/dev/null && [ -d "$root/var/spool/postfix" ]; then
  install -d -o "$user" -g postfix -m 0750 "$root/var/spool/postfix/sluice"
fi
echo "sluice-setup: user $user, $root/var/lib/sluice, $root/etc/sluice ready"
