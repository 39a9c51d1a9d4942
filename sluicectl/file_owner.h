// file_owner.h - whom the files sluicectl creates belong to. The daemons create their files
// (STATE_DIR/server.secret, STATE_DIR/users.db) as run_as_user, after they give up root
// (base/privileges.h), and read their DKIM keys as that user. sluicectl run as root leaves the
// same owner behind, so that a daemon started later can read what it made; run as anyone else,
// what it creates is that user's, as with any program. Modes are never changed here.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "base/privileges.h"
#include "base/result.h"

namespace sluice::ctl {

// Run as root: the run_as_user account the files must belong to; nullopt when not root or
// `runAsUser` is "" (the daemons then keep the user they are started as). An error names the
// user and what to do when it does not exist or has uid 0.
Result<std::optional<RunAs>> ownerOfNewFiles(const std::string& runAsUser);

// Gives `path` to who.uid:who.gid without following a symlink; the mode stays as it is.
Status giveTo(const std::string& path, const RunAs& who);

// Whether `who` (its primary and supplementary groups) may enter the directory `dir`.
bool canEnter(const std::string& dir, const RunAs& who);

// "" when `path` is missing or belongs to who.uid; else one line for the sysadmin: whose it is,
// that `reader` (the daemon) running as who.name cannot read it, and the chown that fixes it.
std::string foreignOwnerNote(const std::string& path, const RunAs& who, const std::string& reader);

}  // namespace sluice::ctl
