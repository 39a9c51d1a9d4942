// file_owner_test.cc - what sluicectl leaves behind in files (sluicectl/file_owner.cc and its
// users in user_cmd.cc and dkim_cmd.cc). Read-only `user` commands never create a file; `user
// add`, run as root, gives STATE_DIR/server.secret and STATE_DIR/users.db to run_as_user (mode
// 0600, as sluice-relayd makes them), and refuses, creating nothing, when that user does not
// exist; `dkim keygen` run as root gives the key (still 0600) to run_as_user of the
// configuration, or without one to `sluice` when it exists, and says whose the key is. The
// ownership tests need root (they are skipped otherwise) and use the `nobody` account.
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "ctl_run.h"
#include "dispatch.h"
#include "file_owner.h"
#include "temp_dir.h"

namespace sluice {
namespace {

using testing::CtlRun;
using testing::sluicectl;

struct stat statOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st;
}

std::vector<std::string> filesIn(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
  return names;
}

const struct passwd* nobody() { return ::getpwnam("nobody"); }

class SluicectlUserFilesTest : public ::testing::Test {
 protected:
  void SetUp() override { std::filesystem::create_directories(stateDir_); }
  // `sluicectl --config FILE ARGS`, FILE with state_dir and `extra` (e.g. "run_as_user: nobody").
  CtlRun run(std::vector<std::string> args, const std::string& extra = "run_as_user: nobody") {
    std::ofstream(config_) << "state_dir: " << stateDir_ << "\n" << extra << "\n";
    args.insert(args.begin(), {"--config", config_});
    return sluicectl(args);
  }
  test_util::TempDir tmp_{"sluicectl-files"};
  std::string stateDir_ = tmp_.path() + "/state";
  std::string config_ = tmp_.path() + "/sluice.yaml";
};

TEST_F(SluicectlUserFilesTest, ReadOnlyCommandsNeverCreateFiles) {
  auto list = run({"user", "list"});
  EXPECT_EQ(list.code, 0) << list.err;
  EXPECT_EQ(list.out.rfind("USER ", 0), 0u) << "the header of an empty list: " << list.out;
  EXPECT_EQ(list.out.find('\n'), list.out.size() - 1) << "no rows: " << list.out;
  EXPECT_NE(list.err.find("no users yet"), std::string::npos) << list.err;
  auto json = run({"user", "list", "--json"});
  EXPECT_EQ(json.code, 0) << json.err;
  EXPECT_EQ(json.out, "") << "no objects";
  for (const char* cmd : {"rotate", "disable", "enable", "remove"}) {
    auto r = run({"user", cmd, "bob"});
    EXPECT_EQ(r.code, 1) << cmd;
    EXPECT_NE(r.err.find("no user bob (no users yet"), std::string::npos) << cmd << ": " << r.err;
  }
  EXPECT_TRUE(std::filesystem::is_empty(stateDir_)) << ::testing::PrintToString(filesIn(stateDir_));
  // Nor without a state_dir at all.
  std::filesystem::remove(stateDir_);
  EXPECT_EQ(run({"user", "list"}).code, 0);
  EXPECT_FALSE(std::filesystem::exists(stateDir_));
}

TEST_F(SluicectlUserFilesTest, ListAfterAddShowsTheUserAndCreatesNothingMore) {
  ASSERT_EQ(run({"user", "add", "bob", "--domains", "example.com"}).code, 0);
  auto before = filesIn(stateDir_);
  auto list = run({"user", "list"});
  EXPECT_EQ(list.code, 0) << list.err;
  EXPECT_NE(list.out.find("\nbob "), std::string::npos) << list.out;
  EXPECT_EQ(list.err, "");
  EXPECT_EQ(filesIn(stateDir_), before);
}

TEST_F(SluicectlUserFilesTest, AddAsRootGivesTheNewFilesToRunAsUser) {
  if (::geteuid() != 0 || nobody() == nullptr) GTEST_SKIP() << "needs root and the nobody account";
  uid_t uid = nobody()->pw_uid;
  gid_t gid = nobody()->pw_gid;
  auto add = run({"user", "add", "bob"});
  ASSERT_EQ(add.code, 0) << add.err;
  for (const char* f : {"server.secret", "users.db"}) {
    auto st = statOf(stateDir_ + "/" + f);
    EXPECT_EQ(st.st_uid, uid) << f;
    EXPECT_EQ(st.st_gid, gid) << f;
    EXPECT_EQ(st.st_mode & 07777, 0600u) << f;
  }
  for (const auto& name : filesIn(stateDir_)) EXPECT_EQ(statOf(stateDir_ + "/" + name).st_uid, uid) << name;
  // The next commands work on them, and warn about nothing.
  auto second = run({"user", "add", "carol"});
  EXPECT_EQ(second.code, 0) << second.err;
  EXPECT_EQ(second.err, "");
  auto rotate = run({"user", "rotate", "bob"});
  EXPECT_EQ(rotate.code, 0) << rotate.err;
  EXPECT_EQ(statOf(stateDir_ + "/users.db").st_uid, uid);
}

TEST_F(SluicectlUserFilesTest, AddAsRootWithAnUnknownRunAsUserCreatesNothing) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  auto add = run({"user", "add", "bob"}, "run_as_user: sluice-test-no-such-user");
  EXPECT_EQ(add.code, 1);
  EXPECT_NE(add.err.find("run_as_user sluice-test-no-such-user: no such user"), std::string::npos) << add.err;
  EXPECT_NE(add.err.find("set run_as_user"), std::string::npos) << add.err;
  EXPECT_TRUE(std::filesystem::is_empty(stateDir_)) << ::testing::PrintToString(filesIn(stateDir_));
}

TEST_F(SluicectlUserFilesTest, AnEmptyRunAsUserKeepsTheCaller) {
  auto add = run({"user", "add", "bob"}, "run_as_user: \"\"");
  ASSERT_EQ(add.code, 0) << add.err;
  EXPECT_EQ(statOf(stateDir_ + "/users.db").st_uid, ::geteuid());
  EXPECT_EQ(statOf(stateDir_ + "/server.secret").st_uid, ::geteuid());
}

TEST_F(SluicectlUserFilesTest, FilesOfAnotherUserAreReportedNotChanged) {
  if (::geteuid() != 0 || nobody() == nullptr) GTEST_SKIP() << "needs root and the nobody account";
  ASSERT_EQ(run({"user", "add", "bob"}, "run_as_user: \"\"").code, 0);  // root's, as before the fix
  auto list = run({"user", "list"});
  EXPECT_EQ(list.code, 0) << list.err;
  EXPECT_NE(list.err.find("users.db belongs to root, not to nobody (run_as_user): sluice-relayd cannot read it; "
                          "chown nobody: " + stateDir_ + "/users.db"),
            std::string::npos)
      << list.err;
  EXPECT_EQ(statOf(stateDir_ + "/users.db").st_uid, 0u) << "a listing changes nothing";
}

TEST_F(SluicectlUserFilesTest, AMissingStateDirIsNamed) {
  std::filesystem::remove(stateDir_);
  auto add = run({"user", "add", "bob"});
  EXPECT_EQ(add.code, 1);
  EXPECT_NE(add.err.find("state_dir " + stateDir_ + " does not exist"), std::string::npos) << add.err;
}

// ---- dkim keygen ------------------------------------------------------------------------------

class SluicectlDkimKeygenOwnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(keys_);
    std::filesystem::permissions(keys_, std::filesystem::perms(0755));  // enterable by anyone
  }
  // `sluicectl [--config FILE] dkim keygen ... --out KEY`; FILE holds `config` ("": no --config;
  // a file that does not exist is given instead, as when /etc/sluice/sluice.yaml is missing).
  CtlRun keygen(const std::string& config, const std::string& key, std::vector<std::string> more = {}) {
    std::vector<std::string> args = {"--config", config_};
    if (config.empty()) {
      args[1] = tmp_.path() + "/missing.yaml";
    } else {
      std::ofstream(config_) << "state_dir: " << tmp_.path() << "/state\n" << config << "\n";
    }
    for (const char* a : {"dkim", "keygen", "--domain", "example.com", "--selector", "s1", "--type", "ed25519"}) {
      args.push_back(a);
    }
    args.push_back("--out");
    args.push_back(key);
    args.insert(args.end(), more.begin(), more.end());
    return sluicectl(args);
  }
  test_util::TempDir tmp_{"sluicectl-keygen"};
  std::string keys_ = tmp_.path() + "/keys";
  std::string key_ = keys_ + "/s1.pem";
  std::string config_ = tmp_.path() + "/sluice.yaml";
};

TEST_F(SluicectlDkimKeygenOwnerTest, AsRootTheKeyGoesToRunAsUserStill0600) {
  if (::geteuid() != 0 || nobody() == nullptr) GTEST_SKIP() << "needs root and the nobody account";
  auto r = keygen("run_as_user: nobody", key_);
  ASSERT_EQ(r.code, 0) << r.err;
  auto st = statOf(key_);
  EXPECT_EQ(st.st_uid, nobody()->pw_uid);
  EXPECT_EQ(st.st_gid, nobody()->pw_gid);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_NE(r.out.find("\nowner nobody (run_as_user of " + config_), std::string::npos) << r.out;
  EXPECT_EQ(r.err, "");
}

TEST_F(SluicectlDkimKeygenOwnerTest, ForceOverARootKeyGivesItAwayToo) {
  if (::geteuid() != 0 || nobody() == nullptr) GTEST_SKIP() << "needs root and the nobody account";
  ASSERT_EQ(keygen("run_as_user: \"\"", key_).code, 0);
  EXPECT_EQ(statOf(key_).st_uid, 0u);
  auto r = keygen("run_as_user: nobody", key_, {"--force"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(statOf(key_).st_uid, nobody()->pw_uid);
  EXPECT_EQ(statOf(key_).st_mode & 07777, 0600u);
}

TEST_F(SluicectlDkimKeygenOwnerTest, AnUnknownRunAsUserWritesNothing) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  auto r = keygen("run_as_user: sluice-test-no-such-user", key_);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("run_as_user sluice-test-no-such-user: no such user"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(key_));
}

TEST_F(SluicectlDkimKeygenOwnerTest, AnEmptyRunAsUserKeepsTheCaller) {
  auto r = keygen("run_as_user: \"\"", key_);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(statOf(key_).st_uid, ::geteuid());
  EXPECT_NE(r.out.find("\nowner " + userName(::geteuid()) + " ("), std::string::npos) << r.out;
}

TEST_F(SluicectlDkimKeygenOwnerTest, WithoutAConfigSluiceIfItExistsElseRootAndANote) {
  auto r = keygen("", key_);
  ASSERT_EQ(r.code, 0) << r.err;
  const struct passwd* sluice = ::getpwnam("sluice");
  if (::geteuid() != 0) {
    EXPECT_EQ(statOf(key_).st_uid, ::geteuid());
  } else if (sluice != nullptr && sluice->pw_uid != 0) {
    EXPECT_EQ(statOf(key_).st_uid, sluice->pw_uid);
    EXPECT_NE(r.out.find("\nowner sluice (no configuration loaded; sluice is run_as_user's default)"),
              std::string::npos)
        << r.out;
    EXPECT_EQ(r.err, "");
  } else {
    EXPECT_EQ(statOf(key_).st_uid, 0u);
    EXPECT_NE(r.err.find("note: the key belongs to root"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("chown USER: " + key_), std::string::npos) << r.err;
  }
  EXPECT_EQ(statOf(key_).st_mode & 07777, 0600u);
}

TEST_F(SluicectlDkimKeygenOwnerTest, ABrokenConfigIsSaidToBeIgnored) {
  auto r = keygen("run_as_user: [unclosed", key_);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("(dkim keygen goes on without it)"), std::string::npos) << r.err;
}

TEST_F(SluicectlDkimKeygenOwnerTest, ADirectoryTheUserCannotEnterIsReported) {
  if (::geteuid() != 0 || nobody() == nullptr) GTEST_SKIP() << "needs root and the nobody account";
  std::filesystem::permissions(keys_, std::filesystem::perms(0700));  // root's, closed
  auto r = keygen("run_as_user: nobody", key_);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: nobody cannot enter " + keys_ + " (owner root, mode 0700)"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("chown nobody: " + keys_), std::string::npos) << r.err;
}

TEST(SluicectlFileOwner, CanEnterFollowsOwnerGroupAndOthers) {
  test_util::TempDir tmp{"sluicectl-enter"};
  RunAs me{userName(::geteuid()), ::geteuid(), ::getegid()};
  RunAs other{"sluice-test-other", 60999, 60999};
  std::filesystem::permissions(tmp.path(), std::filesystem::perms(0700));
  EXPECT_TRUE(ctl::canEnter(tmp.path(), me));
  EXPECT_FALSE(ctl::canEnter(tmp.path(), other));
  std::filesystem::permissions(tmp.path(), std::filesystem::perms(0701));
  EXPECT_TRUE(ctl::canEnter(tmp.path(), other));
  EXPECT_FALSE(ctl::canEnter(tmp.path() + "/missing", me));
}

}  // namespace
}  // namespace sluice
