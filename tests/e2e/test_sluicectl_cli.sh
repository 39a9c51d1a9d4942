#!/bin/bash
# test_sluicectl_cli.sh BUILD_DIR - the sluicectl binary's exit statuses, as scripts and Postfix's
# pipe(8) see them (the unit tests, tests/unit/sluicectl/cli_test.cc, cover the cases in depth):
#   a bad number is a usage error naming the option (exit 2), never an abort (std::stoul threw:
#   134); COMMAND --help exits 0 without a configuration; `bounce receive` exits 75 (the MTA keeps
#   the report) when its configuration cannot be loaded or its command line is wrong, never 1/2;
#   `user list` on a fresh state_dir creates no file; `user add` run as root gives server.secret
#   and users.db to run_as_user (here `nobody`), mode 0600, or refuses for a user that does not exist.
source "$(dirname "$0")/lib.sh" "$@"

CTL=$BUILD/sluicectl/sluicectl
[ -x "$CTL" ] || die "$CTL is not built"
mkdir -p "$T/state"
echo "state_dir: $T/state" > "$T/sluice.yaml"
printf 'line %s\n' 1 2 3 > "$T/state/events.jsonl"

for args in "events tail -n abc" "events tail -n -5" "events tail -n 99999999999999999999999" "events tail -n 5x" \
            "queue list --limit abc" "suppress list --limit x1"; do
  out=bad-$(echo "$args" | tr ' ' '_').out
  # shellcheck disable=SC2086
  sluicectl_run "$out" --config "$T/sluice.yaml" $args
  expect_eq "sluicectl $args exits 2" "$SLUICECTL_RC" 2 "$T/$out"
  expect_match "... naming the option" "invalid (-n|--limit) \"" "$T/$out"
done
sluicectl_run trailing.out --config "$T/sluice.yaml" events tail -n
expect_eq "a trailing -n is a usage error" "$SLUICECTL_RC" 2 "$T/trailing.out"
expect_match "... saying -n needs a value" 'option -n needs a value' "$T/trailing.out"
sluicectl_run tail.out --config "$T/sluice.yaml" events tail --json -n 2
expect_eq "events tail -n 2 still works" "$(grep -c '^line' "$T/tail.out")" 2 "$T/tail.out"

for cmd in "status" "events" "bounce receive" "bounce verp" "queue list" "user add" "why" "limits show" "suppress add"; do
  out=help-$(echo "$cmd" | tr ' ' '_').out
  # shellcheck disable=SC2086
  sluicectl_run "$out" --config "$T/missing.yaml" $cmd --help
  expect_eq "$cmd --help without a configuration exits 0" "$SLUICECTL_RC" 0 "$T/$out"
  expect_match "... and prints its usage" "sluicectl ${cmd%% *}" "$T/$out"
done

mkdir -p "$T/ustate"
printf 'state_dir: %s\nrun_as_user: nobody\n' "$T/ustate" > "$T/user.yaml"
sluicectl_run ulist.out --config "$T/user.yaml" user list
expect_eq "user list without users.db exits 0" "$SLUICECTL_RC" 0 "$T/ulist.out"
expect_match "... saying there are no users yet" 'no users yet' "$T/ulist.out"
expect_eq "... and creates no file" "$(ls -A "$T/ustate" | wc -l)" 0
sluicectl_run urot.out --config "$T/user.yaml" user rotate app1
expect_eq "user rotate without users.db exits 1, creating no file" "$SLUICECTL_RC:$(ls -A "$T/ustate" | wc -l)" 1:0 "$T/urot.out"
if [ "$(id -u)" = 0 ] && getent passwd nobody > /dev/null; then
  sluicectl_run uadd.out --config "$T/user.yaml" user add app1
  expect_eq "user add as root exits 0" "$SLUICECTL_RC" 0 "$T/uadd.out"
  expect_eq "... server.secret belongs to run_as_user, mode 600" "$(stat -c %U:%a "$T/ustate/server.secret")" nobody:600
  expect_eq "... users.db too" "$(stat -c %U:%a "$T/ustate/users.db")" nobody:600
  sluicectl_run ulist2.out --config "$T/user.yaml" user list
  expect_match "user list shows app1" '^app1 +enabled' "$T/ulist2.out"
  mkdir -p "$T/ustate2"
  printf 'state_dir: %s\nrun_as_user: sluice-e2e-no-such-user\n' "$T/ustate2" > "$T/user2.yaml"
  sluicectl_run uadd2.out --config "$T/user2.yaml" user add app1
  expect_eq "user add for a run_as_user that does not exist exits 1" "$SLUICECTL_RC" 1 "$T/uadd2.out"
  expect_match "... naming it" 'run_as_user sluice-e2e-no-such-user: no such user' "$T/uadd2.out"
  expect_eq "... and creates no file" "$(ls -A "$T/ustate2" | wc -l)" 0
else
  note "not root (or no user nobody): the ownership checks of user add are skipped"
fi

printf 'From: MAILER-DAEMON@mx.example\r\nSubject: x\r\n\r\nbody\r\n' > "$T/report.eml"
SLUICECTL_RC=0
"$CTL" --config "$T/missing.yaml" bounce receive --recipient a@bounces.example < "$T/report.eml" > "$T/rcv.out" 2>&1 ||
  SLUICECTL_RC=$?
expect_eq "bounce receive without its configuration exits 75" "$SLUICECTL_RC" 75 "$T/rcv.out"
SLUICECTL_RC=0
"$CTL" --config "$T/sluice.yaml" bounce receive --recipient < "$T/report.eml" > "$T/rcv2.out" 2>&1 || SLUICECTL_RC=$?
expect_eq "bounce receive with a wrong command line exits 75" "$SLUICECTL_RC" 75 "$T/rcv2.out"
finish
