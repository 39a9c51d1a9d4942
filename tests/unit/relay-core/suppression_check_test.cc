// suppression_check_test.cc - relay-core/suppression_check.*: the same lookups with
// store.backend sqlite and redis (a real redis-server, skipped when not installed): global and
// per-sending-domain scopes, expiry, case; the reply names the reason; with Redis gone, lookups
// answer "not suppressed" (mail is never stopped by a broken list) and the store is reopened
// later. And Queue::commitWritten's queue-time suppression: the recipient is inserted final, a
// message whose recipients are all suppressed has its content deleted at once.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "../store/redis_server.h"
#include "queue/queue.h"
#include "suppression_check.h"
#include "temp_dir.h"

namespace sluice::relayd {
namespace {

int64_t wallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The table every backend must answer alike.
void checkLookups(SuppressionCheck& c) {
  store::SuppressionEntry global{"gone@dest.example", "", "hard-bounce", "relayd", wallMs() - 1000, 0};
  store::SuppressionEntry scoped{"scoped@dest.example", "sender.example", "complaint", "sluicectl", 0, 0};
  store::SuppressionEntry expired{"old@dest.example", "", "manual", "sluicectl", 0, wallMs() - 1};
  for (const auto& e : {global, scoped, expired}) ASSERT_TRUE(c.add(e).ok());
  struct Case {
    const char* rcpt;
    const char* senderDomain;
    bool want;
  } cases[] = {
      {"gone@dest.example", "any.example", true},     {"GONE@Dest.Example", "", true},
      {"scoped@dest.example", "sender.example", true}, {"scoped@dest.example", "other.example", false},
      {"old@dest.example", "sender.example", false},   {"fine@dest.example", "sender.example", false},
  };
  for (const auto& k : cases) {
    auto e = c.find(k.rcpt, k.senderDomain);
    EXPECT_EQ(e.has_value(), k.want) << k.rcpt << " from " << k.senderDomain << ": got " << e.has_value();
  }
  auto e = c.find("gone@dest.example", "x.example");
  ASSERT_TRUE(e.has_value());
  std::string reply = SuppressionCheck::replyFor(*e);
  EXPECT_NE(reply.find("550 5.1.1"), std::string::npos) << reply;
  EXPECT_NE(reply.find("reason hard-bounce"), std::string::npos) << reply;
  EXPECT_NE(reply.find("scope global"), std::string::npos) << reply;
}

TEST(SuppressionCheck, SqliteLookups) {
  test_util::TempDir tmp("sluice-supp");
  config::Config cfg;
  cfg.stateDir = tmp.path();
  cfg.store.backend = "sqlite";
  cfg.store.busyTimeoutMs = 1000;
  SuppressionCheck c(cfg);
  ASSERT_TRUE(c.open().ok());
  checkLookups(c);
}

TEST(SuppressionCheck, RedisLookupsAndOutage) {
  if (!testing::RedisServer::installed()) GTEST_SKIP() << "redis-server is not installed";
  testing::RedisServer redis;
  ASSERT_TRUE(redis.start()) << redis.log();
  config::Config cfg;
  cfg.stateDir = "/nonexistent";
  cfg.store.backend = "redis";
  cfg.store.sqlitePath = "/nonexistent/sluice.db";  // must not be touched
  cfg.store.redis = redis.config();
  SuppressionCheck c(cfg);
  ASSERT_TRUE(c.open().ok());
  checkLookups(c);
  // Redis goes away: "not suppressed" (logged), never an error that would stop mail.
  redis.stop();
  EXPECT_FALSE(c.find("gone@dest.example", "x.example").has_value());
  EXPECT_EQ(c.store(), nullptr) << "the broken connection is dropped, reopened after kReopenMs";
}

TEST(SuppressionCheck, QueueTimeSuppressionIsFinalAtCommit) {
  // The directory goes with TempDir, whose removal does not throw: the process's spool/free
  // pool outlives the Queue and its janitor may still be creating files there meanwhile.
  test_util::TempDir tmp("sluice-supp");
  queue::QueueOptions o;
  o.stateDir = tmp.path();
  auto q = queue::Queue::open(o);
  ASSERT_TRUE(q.ok()) << q.message();
  queue::NewMessage some, all;
  some.sender = all.sender = "alice@sender.example";
  some.content = all.content = "Subject: x\r\n\r\nbody\r\n";
  some.recipients = {{"ok@dest.example", "", ""}, {"gone@dest.example", "", ""}};
  all.recipients = {{"gone@dest.example", "", ""}};
  std::string a = queue::Queue::newId(), b = queue::Queue::newId();
  ASSERT_TRUE((*q)->writeSpool(some, a).ok());
  ASSERT_TRUE((*q)->writeSpool(all, b).ok());
  queue::Queue::Suppressed s = {{"", "550 5.1.1 recipient is on the suppression list (reason manual)"},
                                {"550 5.1.1 recipient is on the suppression list (reason manual)"}};
  auto st = (*q)->commitWritten({&some, &all}, {a, b}, &s);
  ASSERT_TRUE(st[0].ok() && st[1].ok());
  auto ma = (*q)->show(a);
  ASSERT_TRUE(ma.ok() && ma->has_value());
  ASSERT_EQ(ma->value().recipients.size(), 2u);
  EXPECT_EQ(ma->value().recipients[0].state, "queued");
  EXPECT_EQ(ma->value().recipients[1].state, "suppressed");
  EXPECT_NE(ma->value().recipients[1].lastReply.find("reason manual"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists((*q)->spoolPath(a)));
  EXPECT_FALSE(std::filesystem::exists((*q)->spoolPath(b))) << "all suppressed: the content goes at once";
  auto due = (*q)->claimDue(wallMs() + 1, 100);
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), 1u) << "only the recipient not suppressed is ever delivered";
  EXPECT_EQ((*due)[0].address, "ok@dest.example");
  q->reset();
}

}  // namespace
}  // namespace sluice::relayd
