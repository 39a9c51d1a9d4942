// redis_mode_test.cc - `sluicectl suppress` and `sluicectl limits` with store.backend: redis
// (sluicectl/suppress_store.*, sluicectl/limits_cmd.*) against a real redis-server
// (tests/unit/store/redis_server.h): the commands write and read the key layout of
// store/redis_keys.h, a timed import of 100,000 rows, and errors when Redis is unreachable.
// Skipped when redis-server is not installed.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "../store/redis_server.h"
#include "base/clock.h"
#include "limits_cmd.h"
#include "store/redis_sync.h"
#include "suppress_cmd.h"

namespace sluice {
namespace {

struct CmdResult {
  int code = -1;
  std::string out;
  std::string err;
};

class RedisModeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::RedisServer::installed()) GTEST_SKIP() << "redis-server is not installed";
    ASSERT_TRUE(redis_.start()) << redis_.log();
    cfg_.store.backend = "redis";
    cfg_.store.sqlitePath = "/nonexistent/sluice.db";  // must not be touched
    cfg_.store.redis = redis_.config();
    config::RateRuleConfig r;
    r.name = "per_user";
    r.windows = {{10, 3'600'000, 10}};  // T = 360 s
    cfg_.rateLimits.push_back(r);
  }

  CmdResult suppress(std::vector<std::string> args, const std::string& stdinText = "") {
    std::ostringstream out, err;
    std::istringstream in(stdinText);
    SuppressCommandEnv env;
    env.clock = &clock_;
    env.in = &in;
    CmdResult r;
    r.code = runSuppressCommand(args, cfg_.store, out, err, env);
    r.out = out.str();
    r.err = err.str();
    return r;
  }
  CmdResult limits(std::vector<std::string> args) {
    std::ostringstream out, err;
    CmdResult r;
    r.code = ctl::runLimitsCommand(args, cfg_, out, err, &clock_);
    r.out = out.str();
    r.err = err.str();
    return r;
  }
  std::string raw(const std::vector<std::string>& argv) {
    auto link = store::RedisSync::open(cfg_.store.redis);
    EXPECT_TRUE(link.ok()) << (link.ok() ? "" : link.message());
    if (!link) return "";
    auto r = (*link)->command(argv);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.message());
    return r.ok() ? store::replyText(r->get()) : "";
  }

  testing::RedisServer redis_;
  config::Config cfg_;
  ManualClock clock_{1'700'000'000'000};
};

TEST_F(RedisModeTest, SuppressAddListRemoveWorkOnRedis) {
  auto add = suppress({"add", "Jane@Example.com", "--reason", "complaint", "--scope", "shop.example"});
  ASSERT_EQ(add.code, 0) << add.err;
  EXPECT_EQ(add.out, "suppressed jane@example.com (scope shop.example, reason complaint, expires never)\n");
  EXPECT_EQ(raw({"HGET", "sluice:s:jane@example.com", "shop.example"}), "complaint\tsluicectl\t1700000000000\t0");
  ASSERT_EQ(suppress({"add", "bob@example.org"}).code, 0);
  EXPECT_EQ(raw({"HEXISTS", "sluice:s:bob@example.org", "*"}), "1");

  auto list = suppress({"list", "--json"});
  ASSERT_EQ(list.code, 0) << list.err;
  std::vector<std::string> lines;
  std::istringstream in(list.out);
  for (std::string l; std::getline(in, l);) lines.push_back(nlohmann::json::parse(l)["address"].get<std::string>());
  EXPECT_EQ(lines, (std::vector<std::string>{"bob@example.org", "jane@example.com"}));
  auto table = suppress({"list", "--scope", "global"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("bob@example.org"), std::string::npos) << table.out;
  EXPECT_EQ(table.out.find("jane@example.com"), std::string::npos) << table.out;

  ASSERT_EQ(suppress({"remove", "bob@example.org"}).code, 0);
  EXPECT_EQ(raw({"EXISTS", "sluice:s:bob@example.org"}), "0");
  auto again = suppress({"remove", "bob@example.org"});
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.err.find("is not suppressed in scope global"), std::string::npos) << again.err;
}

TEST_F(RedisModeTest, SuppressImports100kRowsInAboutASecondAndExportsThem) {
  std::string csv = "address,scope,reason\n";
  for (int i = 0; i < 100'000; ++i) csv += "user" + std::to_string(i) + "@bulk.example,,unsubscribe\n";
  auto start = std::chrono::steady_clock::now();
  auto imp = suppress({"import", "-"}, csv);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(imp.code, 0) << imp.err;
  EXPECT_EQ(imp.out, "imported 100000 entries from stdin\n");
  std::printf("[ timing   ] import of 100,000 rows into Redis: %.2f s\n", secs);
  EXPECT_LT(secs, 5.0) << "want about a second";
  EXPECT_EQ(raw({"GET", "sluice:sq"}), "100000");
  EXPECT_EQ(raw({"HGET", "sluice:s:user99999@bulk.example", "*"}), "unsubscribe\timport:stdin\t1700000000000\t0");

  auto exp = suppress({"export"});
  ASSERT_EQ(exp.code, 0) << exp.err;
  EXPECT_EQ(std::count(exp.out.begin(), exp.out.end(), '\n'), 100'001);
  EXPECT_EQ(exp.out.rfind("address,scope,reason,source,created,expires\nuser0@bulk.example,,unsubscribe,", 0), 0u);
}

TEST_F(RedisModeTest, SuppressReportsAnUnreachableRedis) {
  redis_.stop();
  auto r = suppress({"add", "x@example.com"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "sluicectl suppress add: cannot reach Redis at " + cfg_.store.redis.address + ": Connection refused\n");
}

TEST_F(RedisModeTest, LimitsShowAndResetReadRedis) {
  int64_t nowUs = clock_.nowMs() * 1000;
  raw({"HSET", "sluice:t:per_user:alice", "0", std::to_string(nowUs + 2'500'000'000)});  // 6.9 T
  raw({"ZADD", "sluice:r:per_user:alice", std::to_string(clock_.nowMs() + 60'000), "mx|1"});
  raw({"HSET", "sluice:u:per_user:alice", "mx|1", "2"});

  auto json = limits({"show", "alice", "--json"});
  ASSERT_EQ(json.code, 0) << json.err;
  auto row = nlohmann::json::parse(json.out);
  EXPECT_EQ(row["rule"], "per_user");
  EXPECT_EQ(row["key"], "alice");
  EXPECT_EQ(row["used"], 7) << "ceil(2.5e9 us / 360e6 us)";
  EXPECT_EQ(row["reserved"], 2);
  EXPECT_EQ(row["limit"], 10);
  EXPECT_EQ(row["per_ms"], 3'600'000);

  auto table = limits({"show"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_EQ(table.out.rfind("RULE", 0), 0u) << table.out;
  EXPECT_NE(table.out.find("per_user             alice"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("10/1h"), std::string::npos) << table.out;

  auto reset = limits({"reset", "alice"});
  ASSERT_EQ(reset.code, 0) << reset.err;
  EXPECT_EQ(reset.out, "reset 1 counter(s) of alice\n");
  EXPECT_EQ(raw({"EXISTS", "sluice:t:per_user:alice", "sluice:r:per_user:alice", "sluice:u:per_user:alice"}), "0");
  EXPECT_EQ(limits({"show", "alice"}).out, "no counters for alice\n");
  EXPECT_EQ(limits({"show"}).out, "no counters in use\n");
}

TEST_F(RedisModeTest, LimitsReportsAnUnreachableRedis) {
  redis_.stop();
  auto r = limits({"show"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "sluicectl: cannot reach Redis at " + cfg_.store.redis.address + ": Connection refused\n");
  EXPECT_EQ(limits({"bogus"}).code, 2);
}

}  // namespace
}  // namespace sluice
