// redis_backend_test.cc - tests for lib/ratelimit/redis_backend.h: the reply parser (table), and
// the two Lua scripts against a real redis-server: limits, atomic refusal, reservations that
// release and expire, commit, suppression lookups, and the same GCRA answers as the memory backend.
#include "ratelimit/redis_backend.h"

#include <gtest/gtest.h>

#include <chrono>

#include "../store/redis_server.h"
#include "ratelimit/memory_backend.h"
#include "store/redis_client.h"

namespace sluice::ratelimit {
namespace {

using store::RedisReply;

RedisReply integer(int64_t v) {
  RedisReply r;
  r.type = RedisReply::Type::kInteger;
  r.integer = v;
  return r;
}
RedisReply str(std::string s) {
  RedisReply r;
  r.type = RedisReply::Type::kString;
  r.str = std::move(s);
  return r;
}
RedisReply array(std::vector<RedisReply> e) {
  RedisReply r;
  r.type = RedisReply::Type::kArray;
  r.elements = std::move(e);
  return r;
}

TEST(ParseRcptReply, Table) {
  auto ok = parseRcptReply(array({integer(0), integer(1), integer(2), integer(1), integer(0), integer(0), integer(500)}), 2, "");
  ASSERT_TRUE(ok) << ok.message();
  EXPECT_TRUE(ok->reserved);
  EXPECT_EQ(ok->fits, (std::vector<bool>{true, false}));
  EXPECT_EQ(ok->retryUs[1], 500.0);

  auto sup = parseRcptReply(array({integer(1), str("hard-bounce\trelayd\t1\t0"), str("shop.example")}), 1, "shop.example");
  ASSERT_TRUE(sup) << sup.message();
  ASSERT_TRUE(sup->suppressed);
  EXPECT_EQ(sup->suppressed->reason, "hard-bounce");
  EXPECT_EQ(sup->suppressed->scope, "shop.example");

  RedisReply err;
  err.type = RedisReply::Type::kError;
  err.str = "ERR something";
  struct Case { RedisReply reply; size_t n; const char* want; };
  const Case bad[] = {
      {err, 1, "Redis script error"},
      {integer(3), 1, "unexpected reply"},
      {array({integer(0), integer(1), integer(5)}), 1, "unexpected reply size"},
      {array({integer(1), str("not four fields")}), 1, "unexpected suppression reply"},
      {array({integer(1), str("a\tb\tx\t0"), str("*")}), 1, "malformed suppression entry"},
  };
  for (const auto& c : bad) {
    auto r = parseRcptReply(c.reply, c.n, "");
    ASSERT_FALSE(r);
    EXPECT_NE(r.message().find(c.want), std::string::npos) << "got " << r.message() << " want " << c.want;
  }
}

class RedisBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!sluice::testing::RedisServer::installed()) GTEST_SKIP() << "redis-server is not installed";
    ASSERT_TRUE(redis_.start()) << redis_.log();
    config::RateRuleConfig r;
    r.name = "per-user";
    r.windows = {{3, 3'600'000, 3}};
    rules_ = {r};
    client_ = std::make_unique<store::RedisClient>(io_, redis_.config());
    client_->start();
    for (int i = 0; i < 100 && !client_->connected(); ++i) io_.run_for(std::chrono::milliseconds(10));
    ASSERT_TRUE(client_->connected());
    backend_ = std::make_unique<RedisLimitBackend>(client_.get(), "sluice:", rules_);
  }

  Result<RcptOutcome> call(char mode, RcptQuery q) {
    std::optional<Result<RcptOutcome>> got;
    auto done = [&](Result<RcptOutcome> r) { got.emplace(std::move(r)); };
    if (mode == 'R') backend_->rcpt(std::move(q), done); else backend_->charge(std::move(q), done);
    for (int i = 0; i < 200 && !got; ++i) io_.run_for(std::chrono::milliseconds(5));
    if (!got) return makeError("no answer");
    return std::move(*got);
  }
  void drain() { io_.run_for(std::chrono::milliseconds(50)); }

  RcptQuery query(const std::string& txn, int64_t nowMs, std::string key = "app1") {
    RcptQuery q;
    q.txn = txn;
    q.nowMs = nowMs;
    q.ttlMs = 60'000;
    q.charges = {{0, std::move(key), 1, true}};
    return q;
  }

  sluice::testing::RedisServer redis_;
  asio::io_context io_;
  std::vector<config::RateRuleConfig> rules_;
  std::unique_ptr<store::RedisClient> client_;
  std::unique_ptr<RedisLimitBackend> backend_;
  int64_t now_ = 1'700'000'000'000;
};

TEST_F(RedisBackendTest, ReservationsCountAndRelease) {
  for (int i = 0; i < 3; ++i) {
    auto r = call('R', query("h|t" + std::to_string(i), now_));
    ASSERT_TRUE(r) << r.message();
    EXPECT_TRUE(r->reserved && r->fits[0]) << "reservation " << i + 1 << " of 3";
  }
  auto full = call('R', query("h|t9", now_));
  ASSERT_TRUE(full);
  EXPECT_FALSE(full->reserved) << "a blocking miss reserves nothing";
  EXPECT_FALSE(full->fits[0]);
  EXPECT_GT(full->retryUs[0], 0);
  backend_->release("h|t0", {{0, "app1", 1, 0}});
  drain();
  EXPECT_TRUE(call('R', query("h|t10", now_))->fits[0]) << "a released unit is free again";
}

TEST_F(RedisBackendTest, CommitCountsAndReservationsExpire) {
  ASSERT_TRUE(call('R', query("h|a", now_))->fits[0]);
  backend_->commit("h|a", {{0, "app1", 1, 1}}, now_);
  ASSERT_TRUE(call('R', query("h|b", now_))->fits[0]);  // reserved, never committed
  ASSERT_TRUE(call('C', query("h|c", now_))->fits[0]);  // counted at once
  EXPECT_FALSE(call('R', query("h|d", now_))->fits[0]) << "1 committed + 1 reserved + 1 counted = 3";
  EXPECT_TRUE(call('R', query("h|e", now_ + 61'000))->fits[0]) << "the reservation of h|b expired after its TTL";
}

TEST_F(RedisBackendTest, SuppressionLookupScopes) {
  auto set = [&](const std::string& field, const std::string& value) {
    client_->command({"HSET", "sluice:s:bob@dest.example", field, value}, [](Result<RedisReply>) {});
    drain();
  };
  set("shop.example", "complaint\tsluicectl\t1\t0");
  RcptQuery q = query("h|s", now_);
  q.recipient = "bob@dest.example";
  q.senderDomain = "other.example";
  auto r = call('R', q);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->suppressed) << "scoped to another sending domain";
  q.senderDomain = "shop.example";
  r = call('R', q);
  ASSERT_TRUE(r && r->suppressed);
  EXPECT_EQ(r->suppressed->reason, "complaint");
  set("*", "hard-bounce\trelayd\t1\t" + std::to_string(now_ - 1));
  q.senderDomain = "other.example";
  EXPECT_FALSE(call('R', q)->suppressed) << "an expired global entry does not count";
}

TEST_F(RedisBackendTest, SameAnswersAsTheMemoryBackend) {
  // 40 requests spread over time: the Redis script and RateLimiter must agree on every one.
  RateLimiter limiter(rules_);
  MemoryLimitBackend memory(&limiter, nullptr);
  for (int i = 0; i < 40; ++i) {
    int64_t t = now_ + i * 7 * 60'000;  // every 7 minutes; T = 20 minutes
    RcptQuery q = query("h|x" + std::to_string(i), t, "cmp");
    bool memFits = false;
    memory.charge(q, [&](Result<RcptOutcome> r) { memFits = r->fits[0]; });
    auto red = call('C', q);
    ASSERT_TRUE(red) << red.message();
    EXPECT_EQ(red->fits[0], memFits) << "request " << i;
  }
}

}  // namespace
}  // namespace sluice::ratelimit
