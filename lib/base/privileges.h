// privileges.h - the one place where a Sluice daemon gives up root (Postfix's set_ugid.c and
// OpenSMTPD's privsep are the models). Every daemon's main does the same three steps:
//   1. runAsFor(run_as_user): as root, the account to become; not root (or run_as_user empty):
//      nothing to do, the daemon keeps the user it was started as;
//   2. as root, only what needs root: bind a port below 1024, create its socket directory in
//      Postfix's spool (prepareSocketDir);
//   3. dropPrivileges(): the user's supplementary groups (setgroups), then setresgid, then
//      setresuid, then a check that neither uid 0 nor gid 0 can be regained; a failure stops
//      the start. Everything after - the state directory, DKIM keys, the store - is opened as
//      that user, so a reload (SIGHUP, which runs as that user) sees the same files as the start.
// The checks of what that user owns live here too: checkStateDir() refuses a state directory
// that is world-writable or owned by someone else, each with a one-line reason a sysadmin can
// act on. (Key files are checked where they are read, in lib/dkim/dkim_key.cc, by the same rules.)
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace sluice {

struct RunAs {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
};

// Refused: an unknown user, a user with uid 0. nullopt: not root, or `user` is empty.
Result<std::optional<RunAs>> runAsFor(const std::string& user);

// As root: the directory `dir` (which will hold a unix socket) is created if missing, owned by
// `who`, group `group` when that group exists (else who's group), mode 0750. An existing
// directory is left as the sysadmin made it. The parent must exist.
Status prepareSocketDir(const std::string& dir, const RunAs& who, const std::string& group);

// setgroups(who's groups), setresgid, setresuid; then verifies that setuid(0), seteuid(0) and
// setgid(0) fail and that the real, effective and saved ids are who's.
Status dropPrivileges(const RunAs& who);

// The state directory exists (created 0700 if missing; its parent must exist), is a directory,
// belongs to the effective user and is not writable by others.
Status checkStateDir(const std::string& dir);

// "sluice (uid 998)" - the effective user, for messages.
std::string effectiveUserDescription();
// The user name of uid, or "uid N" when it has none.
std::string userName(uid_t uid);
// The permission bits of a mode as four octal digits ("0640").
std::string modeString(mode_t mode);

// The directory of a unix socket address ("unix:/PATH", "local:/PATH" or "/PATH"); "" for the
// others (HOST:PORT, inet:PORT@HOST).
std::string unixSocketDir(const std::string& listen);

// Steps 1-3 in one call, for a daemon that needs root for nothing but the directories of its
// unix sockets (sluice-policyd, sluice-milter): resolve run_as_user, prepareSocketDir() for each
// unix address in `listens` (group `socketGroup`), drop. True when it dropped. Logs nothing, so
// that a refused start stays one line; the caller logs who it runs as once every check passed.
// A daemon that binds privileged ports (sluice-relayd) calls runAsFor(), binds, then
// dropPrivileges() itself.
Result<bool> dropPrivilegesAtStart(const std::string& user, const std::vector<std::string>& listens,
                                   const std::string& socketGroup);

}  // namespace sluice
