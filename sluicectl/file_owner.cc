// file_owner.cc - see file_owner.h.
#include "file_owner.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace sluice::ctl {

Result<std::optional<RunAs>> ownerOfNewFiles(const std::string& runAsUser) {
  auto who = runAsFor(runAsUser);  // nullopt when not root or runAsUser is ""
  if (!who) {
    return makeError(who.message() + "; sluicectl, run as root, gives the files it creates to run_as_user, " +
                     "the user the daemons run as");
  }
  return who;
}

Status giveTo(const std::string& path, const RunAs& who) {
  if (::lchown(path.c_str(), who.uid, who.gid) != 0) {
    return makeError("cannot give " + path + " to " + who.name + ": " + std::strerror(errno) + "; chown " +
                     who.name + ": " + path);
  }
  return okStatus();
}

bool canEnter(const std::string& dir, const RunAs& who) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return false;
  if (st.st_uid == who.uid) return (st.st_mode & S_IXUSR) != 0;
  int count = 64;
  std::vector<gid_t> groups(static_cast<size_t>(count));
  if (::getgrouplist(who.name.c_str(), who.gid, groups.data(), &count) < 0) {
    groups.resize(static_cast<size_t>(count));
    if (::getgrouplist(who.name.c_str(), who.gid, groups.data(), &count) < 0) count = 0;
  }
  groups.resize(static_cast<size_t>(count));
  groups.push_back(who.gid);
  for (gid_t g : groups) {
    if (g == st.st_gid) return (st.st_mode & S_IXGRP) != 0;
  }
  return (st.st_mode & S_IXOTH) != 0;
}

std::string foreignOwnerNote(const std::string& path, const RunAs& who, const std::string& reader) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || st.st_uid == who.uid) return "";
  return path + " belongs to " + userName(st.st_uid) + ", not to " + who.name + " (run_as_user): " + reader +
         " cannot read it; chown " + who.name + ": " + path;
}

}  // namespace sluice::ctl
