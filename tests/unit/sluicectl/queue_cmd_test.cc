// queue_cmd_test.cc - `sluicectl queue` (user_cmd.cc) beside a running relayd: the commands that
// change the queue (hold, release, retry, delete) must never run the queue's crash recovery, which
// would take a spool file relayd has written but not yet indexed (a message about to get its 250)
// for an orphan and delete it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "config/config.h"
#include "queue/queue.h"
#include "temp_dir.h"
#include "user_cmd.h"

namespace sluice {
namespace {

class QueueCmdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    queue::QueueOptions o;
    o.stateDir = dir_;
    auto q = queue::Queue::open(o);  // as relayd
    ASSERT_TRUE(q.ok()) << q.message();
    q_ = std::move(q.value());
    auto c = config::loadConfigString("state_dir: " + dir_ + "\n", "t.yaml");
    ASSERT_TRUE(c.ok()) << c.message();
    cfg_ = c.value();
  }
  void TearDown() override { q_.reset(); }
  std::string add() {
    queue::NewMessage m;
    m.sender = "a@example.com";
    m.recipients.push_back(queue::NewRecipient{"b@example.net", "", ""});
    m.content = "Subject: x\r\n\r\nbody\r\n";
    std::string id = queue::Queue::newId();
    auto st = q_->commit({&m}, {id});
    EXPECT_TRUE(st[0].ok());
    return id;
  }
  int run(const std::vector<std::string>& args) {
    std::ostringstream out, err;
    int rc = ctl::runQueueCommand(args, *cfg_, out, err);
    EXPECT_EQ(rc, 0) << err.str();
    return rc;
  }
  test_util::TempDir tmp_{"sluice-queue-cmd"};
  const std::string& dir_ = tmp_.path();
  std::unique_ptr<queue::Queue> q_;
  std::shared_ptr<const config::Config> cfg_;
};

TEST_F(QueueCmdTest, ChangingCommandsLeaveRelaydsUnindexedSpoolFilesAlone) {
  std::string id = add();
  // What relayd's committer has between writing a batch's files and its index transaction.
  std::string inFlight = q_->spoolPath(queue::Queue::newId());
  std::filesystem::create_directories(std::filesystem::path(inFlight).parent_path());
  { std::ofstream(inFlight) << "Subject: in flight\r\n\r\nbody\r\n"; }
  ASSERT_TRUE(std::filesystem::exists(inFlight));
  for (const char* cmd : {"hold", "release", "retry"}) {
    run({cmd, id});
    EXPECT_TRUE(std::filesystem::exists(inFlight)) << "sluicectl queue " << cmd << " deleted a spool file in flight";
  }
  run({"delete", id});
  EXPECT_TRUE(std::filesystem::exists(inFlight)) << "sluicectl queue delete deleted a spool file in flight";
  auto gone = q_->show(id);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone.value().has_value()) << "the deleted message is gone";
}

}  // namespace
}  // namespace sluice
