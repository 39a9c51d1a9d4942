// privileges.cc - see privileges.h.
#include "base/privileges.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

namespace sluice {
namespace {

std::optional<gid_t> groupId(const std::string& name) {
  std::vector<char> buf(16384);
  struct group gr {};
  struct group* found = nullptr;
  if (getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found) == 0 && found != nullptr) return found->gr_gid;
  return std::nullopt;
}

std::string errnoText() { return std::strerror(errno); }

}  // namespace

std::string modeString(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string userName(uid_t uid) {
  std::vector<char> buf(4096);
  struct passwd pw {};
  struct passwd* found = nullptr;
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) return found->pw_name;
  return "uid " + std::to_string(uid);
}


Result<std::optional<RunAs>> runAsFor(const std::string& user) {
  if (::geteuid() != 0 || user.empty()) return std::optional<RunAs>();
  std::vector<char> buf(4096);
  struct passwd pw {};
  struct passwd* found = nullptr;
  int rc = getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found);
  if (rc != 0 || found == nullptr) {
    return makeError("run_as_user " + user + ": no such user (create it with sluice-setup, or set run_as_user)");
  }
  if (found->pw_uid == 0) {
    return makeError("run_as_user " + user + " has uid 0; name an unprivileged user (or \"\" to keep the user " +
                     "the daemon was started as)");
  }
  RunAs who;
  who.name = found->pw_name;
  who.uid = found->pw_uid;
  who.gid = found->pw_gid;
  return std::optional<RunAs>(who);
}

Status prepareSocketDir(const std::string& dir, const RunAs& who, const std::string& group) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return makeError("socket directory " + dir + " exists and is not a directory");
    return okStatus();
  }
  if (errno != ENOENT) return makeError("socket directory " + dir + ": " + errnoText());
  if (::mkdir(dir.c_str(), 0750) != 0) return makeError("cannot create socket directory " + dir + ": " + errnoText());
  gid_t gid = groupId(group).value_or(who.gid);
  if (::chown(dir.c_str(), who.uid, gid) != 0 || ::chmod(dir.c_str(), 0750) != 0) {
    return makeError("socket directory " + dir + ": cannot give it to " + who.name + ": " + errnoText());
  }
  return okStatus();
}

Status dropPrivileges(const RunAs& who) {
  int count = 32;
  std::vector<gid_t> groups(static_cast<size_t>(count));
  if (::getgrouplist(who.name.c_str(), who.gid, groups.data(), &count) < 0) {
    groups.resize(static_cast<size_t>(count));
    if (::getgrouplist(who.name.c_str(), who.gid, groups.data(), &count) < 0) {
      return makeError("cannot list the groups of " + who.name);
    }
  }
  groups.resize(static_cast<size_t>(count));
  std::string what = "dropping privileges to " + who.name + ": ";
  if (::setgroups(groups.size(), groups.data()) != 0) return makeError(what + "setgroups: " + errnoText());
  if (::setresgid(who.gid, who.gid, who.gid) != 0) return makeError(what + "setresgid: " + errnoText());
  if (::setresuid(who.uid, who.uid, who.uid) != 0) return makeError(what + "setresuid: " + errnoText());
  // The proof: root cannot come back, and every id is the new one.
  if (::setuid(0) == 0 || ::seteuid(0) == 0 || (who.gid != 0 && (::setgid(0) == 0 || ::setegid(0) == 0))) {
    return makeError(what + "root could be regained afterwards; not running");
  }
  uid_t ru = 0, eu = 0, su = 0;
  gid_t rg = 0, eg = 0, sg = 0;
  if (::getresuid(&ru, &eu, &su) != 0 || ::getresgid(&rg, &eg, &sg) != 0 || ru != who.uid || eu != who.uid ||
      su != who.uid || rg != who.gid || eg != who.gid || sg != who.gid) {
    return makeError(what + "the ids did not change as asked; not running");
  }
  return okStatus();
}

Status checkStateDir(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return makeError("state_dir " + dir + ": " + errnoText());
    if (::mkdir(dir.c_str(), 0700) != 0) {
      return makeError("state_dir " + dir + ": cannot create it as " + effectiveUserDescription() + ": " + errnoText());
    }
    if (::stat(dir.c_str(), &st) != 0) return makeError("state_dir " + dir + ": " + errnoText());
  }
  if (!S_ISDIR(st.st_mode)) return makeError("state_dir " + dir + " is not a directory");
  if ((st.st_mode & S_IWOTH) != 0) {
    return makeError("state_dir " + dir + " is writable by everyone (mode " + modeString(st.st_mode) +
                     "); chmod 700 " + dir);
  }
  if (st.st_uid != ::geteuid()) {
    std::string me = userName(::geteuid());
    return makeError("state_dir " + dir + " belongs to " + userName(st.st_uid) + ", not to " + me +
                     " who runs this daemon; chown -R " + me + ": " + dir);
  }
  return okStatus();
}

std::string effectiveUserDescription() {
  uid_t uid = ::geteuid();
  std::string name = userName(uid);
  return name.rfind("uid ", 0) == 0 ? name : name + " (uid " + std::to_string(uid) + ")";
}

std::string unixSocketDir(const std::string& listen) {
  std::string path;
  if (listen.rfind("unix:", 0) == 0) path = listen.substr(5);
  else if (listen.rfind("local:", 0) == 0) path = listen.substr(6);
  else if (!listen.empty() && listen[0] == '/') path = listen;
  size_t slash = path.rfind('/');
  if (path.empty() || path[0] != '/' || slash == std::string::npos) return "";
  return slash == 0 ? "/" : path.substr(0, slash);
}

Result<bool> dropPrivilegesAtStart(const std::string& user, const std::vector<std::string>& listens,
                                   const std::string& socketGroup) {
  auto who = runAsFor(user);
  if (!who) return who.error();
  if (!who.value()) return false;  // not root, or run_as_user "": nothing to drop
  const RunAs& runAs = *who.value();
  for (const auto& listen : listens) {
    std::string dir = unixSocketDir(listen);
    if (dir.empty()) continue;
    if (auto st = prepareSocketDir(dir, runAs, socketGroup); !st) return st.error();
  }
  if (auto st = dropPrivileges(runAs); !st) return st.error();
  return true;
}

}  // namespace sluice
