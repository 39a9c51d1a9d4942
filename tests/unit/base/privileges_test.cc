// privileges_test.cc - lib/base/privileges: the state directory checks (one-line reasons), the
// socket directory helpers, run_as_user resolution, and the drop itself in a forked child (as
// root only: the test process keeps its ids).
#include "base/privileges.h"

#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace sluice {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/sluice-priv-test.XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

mode_t modeOf(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

TEST(Privileges, StateDirIsCreated0700WhenMissing) {
  TempDir t;
  std::string dir = t.path() + "/state";
  ASSERT_TRUE(checkStateDir(dir));
  EXPECT_EQ(modeOf(dir), 0700u);
  EXPECT_TRUE(checkStateDir(dir)) << "an existing good directory passes again";
}

TEST(Privileges, WorldWritableStateDirIsRefusedWithOneLine) {
  TempDir t;
  std::string dir = t.path() + "/state";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(dir.c_str(), 0777), 0);
  Status st = checkStateDir(dir);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.message(), "state_dir " + dir + " is writable by everyone (mode 0777); chmod 700 " + dir);
  ASSERT_EQ(::chmod(dir.c_str(), 01777), 0);
  EXPECT_FALSE(checkStateDir(dir)) << "the sticky bit does not make it safe";
}

TEST(Privileges, StateDirThatIsAFileIsRefused) {
  TempDir t;
  std::string file = t.path() + "/f";
  ASSERT_EQ(std::system(("touch '" + file + "'").c_str()), 0);
  Status st = checkStateDir(file);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.message(), "state_dir " + file + " is not a directory");
}

TEST(Privileges, StateDirOfAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  struct passwd* nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  TempDir t;
  std::string dir = t.path() + "/state";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(::chown(dir.c_str(), nobody->pw_uid, nobody->pw_gid), 0);
  Status st = checkStateDir(dir);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.message(), "state_dir " + dir + " belongs to nobody, not to root who runs this daemon; chown -R root: " + dir);
}

TEST(Privileges, UnixSocketDir) {
  EXPECT_EQ(unixSocketDir("unix:/var/spool/postfix/sluice/milter.sock"), "/var/spool/postfix/sluice");
  EXPECT_EQ(unixSocketDir("local:/run/x.sock"), "/run");
  EXPECT_EQ(unixSocketDir("/tmp/p.sock"), "/tmp");
  EXPECT_EQ(unixSocketDir("unix:/p.sock"), "/");
  EXPECT_EQ(unixSocketDir("127.0.0.1:10045"), "");
  EXPECT_EQ(unixSocketDir("inet:10046@127.0.0.1"), "");
  EXPECT_EQ(unixSocketDir("unix:relative.sock"), "");
}

TEST(Privileges, RunAsResolution) {
  auto empty = runAsFor("");
  ASSERT_TRUE(empty);
  EXPECT_FALSE(empty.value().has_value()) << "empty run_as_user: nothing to drop";
  if (::geteuid() != 0) {
    auto any = runAsFor("nobody");
    ASSERT_TRUE(any);
    EXPECT_FALSE(any.value().has_value()) << "not root: nothing to drop";
    return;
  }
  auto unknown = runAsFor("no-such-user-sluice-test");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.message(),
            "run_as_user no-such-user-sluice-test: no such user (create it with sluice-setup, or set run_as_user)");
  auto root = runAsFor("root");
  ASSERT_FALSE(root);
  EXPECT_NE(root.message().find("has uid 0"), std::string::npos) << root.message();
  auto nobody = runAsFor("nobody");
  ASSERT_TRUE(nobody) << nobody.message();
  ASSERT_TRUE(nobody.value().has_value());
  EXPECT_EQ(nobody.value()->name, "nobody");
  EXPECT_NE(nobody.value()->uid, 0u);
}

TEST(Privileges, SocketDirIsCreatedForTheUserAndGroup) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  auto who = runAsFor("nobody");
  ASSERT_TRUE(who && who.value());
  TempDir t;
  std::string dir = t.path() + "/sluice";
  ASSERT_TRUE(prepareSocketDir(dir, *who.value(), "no-such-group-sluice-test"));
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(st.st_uid, who.value()->uid);
  EXPECT_EQ(st.st_gid, who.value()->gid) << "an unknown group falls back to the user's";
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
  ASSERT_TRUE(prepareSocketDir(dir, *who.value(), "root"));
  EXPECT_EQ(modeOf(dir), 0755u) << "an existing directory is left as it is";
}

// The drop, in a child: afterwards every id is nobody's and root cannot come back.
TEST(Privileges, DropInAChildCannotRegainRoot) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  auto who = runAsFor("nobody");
  ASSERT_TRUE(who && who.value());
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (!dropPrivileges(*who.value())) ::_exit(10);
    if (::getuid() != who.value()->uid || ::geteuid() != who.value()->uid) ::_exit(11);
    if (::getgid() != who.value()->gid || ::getegid() != who.value()->gid) ::_exit(12);
    if (::setuid(0) == 0 || ::seteuid(0) == 0 || ::setgid(0) == 0) ::_exit(13);
    gid_t groups[64];
    int n = ::getgroups(64, groups);
    for (int i = 0; i < n; ++i) {
      if (groups[i] == 0) ::_exit(14);  // root's supplementary groups are gone
    }
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10 drop failed, 11 uid, 12 gid, 13 root regained, 14 group 0 kept";
}

}  // namespace
}  // namespace sluice
