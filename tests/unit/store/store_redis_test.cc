// store_redis_test.cc - tests of the Redis side of the store for sluicectl: the suppression store
// (lib/store/store_redis.*) and the limits view (lib/store/redis_limits_view.*) on a real
// redis-server (redis_server.h), checked both through the API and against the raw key layout of
// redis_keys.h; connection errors (AUTH, unreachable) through lib/store/redis_sync.*. Skipped
// when redis-server is not installed.
#include "store/store_redis.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "base/clock.h"
#include "redis_server.h"
#include "store/redis_keys.h"
#include "ratelimit/redis_limits_view.h"
#include "store/redis_sync.h"

namespace sluice::store {
namespace {

SuppressionEntry entry(std::string address, std::string scope = "", std::string reason = "manual") {
  SuppressionEntry e;
  e.address = std::move(address);
  e.scope = std::move(scope);
  e.reason = std::move(reason);
  e.source = "test";
  return e;
}

std::vector<std::string> names(const std::vector<SuppressionEntry>& v) {
  std::vector<std::string> out;
  for (const auto& e : v) out.push_back(e.address + "/" + e.scope);
  return out;
}

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!sluice::testing::RedisServer::installed()) GTEST_SKIP() << "redis-server is not installed";
    ASSERT_TRUE(redis_.start()) << redis_.log();
    cfg_ = redis_.config();
  }

  std::unique_ptr<RedisSuppressionStore> open(const config::RedisConfig& cfg) {
    auto s = RedisSuppressionStore::open(cfg, &clock_);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.message());
    return s.ok() ? std::move(s).value() : nullptr;
  }
  std::unique_ptr<RedisSuppressionStore> open() { return open(cfg_); }

  // One command on a separate connection, as another host would send it; the reply as text.
  std::string raw(const std::vector<std::string>& argv, const config::RedisConfig* cfg = nullptr) {
    auto link = RedisSync::open(cfg != nullptr ? *cfg : cfg_);
    EXPECT_TRUE(link.ok()) << (link.ok() ? "" : link.message());
    if (!link) return "";
    auto r = (*link)->command(argv);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.message());
    return r.ok() ? replyText(r->get()) : "";
  }

  sluice::testing::RedisServer redis_;
  config::RedisConfig cfg_;
  ManualClock clock_{1'700'000'000'000};
};

TEST_F(RedisStoreTest, AddGetRemoveUseTheSharedKeyLayout) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  auto e = entry("Jane@Example.COM", "", "complaint");
  e.createdMs = 1'600'000'000'000;
  ASSERT_TRUE(s->add(e).ok());
  EXPECT_EQ(raw({"HGET", "sluice:s:jane@example.com", "*"}), "complaint\ttest\t1600000000000\t0");
  EXPECT_EQ(raw({"GET", "sluice:sq"}), "1");

  auto got = s->get("JANE@example.com", "");
  ASSERT_TRUE(got.ok()) << got.message();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->address, "jane@example.com");
  EXPECT_EQ((*got)->scope, "");
  EXPECT_EQ((*got)->reason, "complaint");
  EXPECT_EQ((*got)->source, "test");
  EXPECT_EQ((*got)->createdMs, 1'600'000'000'000);

  auto removed = s->remove("jane@EXAMPLE.com", "");
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(*removed);
  removed = s->remove("jane@example.com", "");
  ASSERT_TRUE(removed.ok());
  EXPECT_FALSE(*removed) << "second remove";
  EXPECT_FALSE(s->get("jane@example.com", "")->has_value());
  auto seq = s->currentSeq();
  ASSERT_TRUE(seq.ok());
  EXPECT_EQ(*seq, 2) << "add and one effective remove";
  EXPECT_TRUE(s->changesSince(0, 0)->empty());
  EXPECT_EQ(*s->oldestRetainedSeq(), 0);
}

TEST_F(RedisStoreTest, ScopesAreFieldsOfOneHash) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->add(entry("bob@example.org", "Shop.Example.NET")).ok());
  ASSERT_TRUE(s->add(entry("bob@example.org")).ok());
  ASSERT_TRUE(s->add(entry("amy@example.org", "shop.example.net")).ok());
  EXPECT_EQ(raw({"HLEN", "sluice:s:bob@example.org"}), "2");
  EXPECT_EQ(raw({"HEXISTS", "sluice:s:bob@example.org", "shop.example.net"}), "1");

  struct Case {
    std::string scope;
    bool anyScope;
    std::vector<std::string> want;
  };
  std::vector<Case> cases = {
      {"", true, {"amy@example.org/shop.example.net", "bob@example.org/", "bob@example.org/shop.example.net"}},
      {"*", false, {"amy@example.org/shop.example.net", "bob@example.org/", "bob@example.org/shop.example.net"}},
      {"", false, {"bob@example.org/"}},
      {"SHOP.example.net", false, {"amy@example.org/shop.example.net", "bob@example.org/shop.example.net"}},
      {"other.example", false, {}},
  };
  for (const auto& c : cases) {
    SuppressionFilter f;
    f.scope = c.scope;
    f.anyScope = c.anyScope;
    auto got = s->list(f);
    ASSERT_TRUE(got.ok()) << got.message();
    EXPECT_EQ(names(*got), c.want) << "scope \"" << c.scope << "\" anyScope " << c.anyScope;
  }
  EXPECT_TRUE(s->get("bob@example.org", "shop.example.net")->has_value());
  EXPECT_FALSE(s->get("amy@example.org", "")->has_value());
  EXPECT_EQ(*s->count(), 3u);
}

TEST_F(RedisStoreTest, CreatedAndExpiresAreKept) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  auto e = entry("temp@example.com", "", "unsubscribe");
  e.expiresMs = clock_.nowMs() + 3'600'000;  // createdMs 0: now
  ASSERT_TRUE(s->add(e).ok());
  EXPECT_EQ(raw({"HGET", "sluice:s:temp@example.com", "*"}),
            "unsubscribe\ttest\t" + std::to_string(clock_.nowMs()) + "\t" + std::to_string(e.expiresMs));
  auto got = s->get("temp@example.com", "");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->createdMs, clock_.nowMs());
  EXPECT_EQ((*got)->expiresMs, e.expiresMs);

  clock_.advanceMs(7'200'000);  // expired entries are still listed until removed
  EXPECT_EQ(s->list({})->size(), 1u);
}

TEST_F(RedisStoreTest, ListFiltersByAddressAndReasonWithLimitAndOffset) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  for (const char* a : {"d@x.example", "a@x.example", "c@x.example", "b@x.example"}) {
    ASSERT_TRUE(s->add(entry(a, "", std::string(a) == "c@x.example" ? "complaint" : "manual")).ok());
  }
  SuppressionFilter f;
  EXPECT_EQ(names(*s->list(f)), (std::vector<std::string>{"a@x.example/", "b@x.example/", "c@x.example/", "d@x.example/"}));
  f.limit = 2;
  f.offset = 1;
  EXPECT_EQ(names(*s->list(f)), (std::vector<std::string>{"b@x.example/", "c@x.example/"}));
  f = {};
  f.reason = "complaint";
  EXPECT_EQ(names(*s->list(f)), (std::vector<std::string>{"c@x.example/"}));
  f = {};
  f.address = "B@X.example";
  EXPECT_EQ(names(*s->list(f)), (std::vector<std::string>{"b@x.example/"}));
  f.address = "nobody@x.example";
  EXPECT_TRUE(s->list(f)->empty());

  std::vector<std::string> streamed;
  ASSERT_TRUE(s->scan({}, [&](const SuppressionEntry& e) { streamed.push_back(e.address); }).ok());
  EXPECT_EQ(streamed.size(), 4u);
}

TEST_F(RedisStoreTest, BatchImportSpansSeveralPipelinedChunks) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  std::vector<SuppressionEntry> batch;
  for (int i = 0; i < 25'000; ++i) batch.push_back(entry("user" + std::to_string(i) + "@bulk.example"));
  batch.push_back(entry("user7@bulk.example", "shop.example"));
  auto n = s->addBatch(batch);
  ASSERT_TRUE(n.ok()) << n.message();
  EXPECT_EQ(*n, batch.size());
  EXPECT_EQ(*s->count(), batch.size());
  EXPECT_EQ(*s->currentSeq(), static_cast<int64_t>(batch.size()));
  auto all = s->list({});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), batch.size());
  EXPECT_TRUE(std::is_sorted(all->begin(), all->end(), [](const auto& a, const auto& b) {
    return a.address != b.address ? a.address < b.address : a.scope < b.scope;
  }));
  EXPECT_EQ((*all)[0].createdMs, clock_.nowMs());
  EXPECT_EQ(*s->addBatch({}), 0u);
}

TEST_F(RedisStoreTest, PrefixAndDatabaseSeparateInstallations) {
  auto a = open();
  config::RedisConfig other = cfg_;
  other.keyPrefix = "other:";
  other.database = 3;
  auto b = open(other);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(a->add(entry("one@example.com")).ok());
  ASSERT_TRUE(b->add(entry("two@example.com")).ok());
  EXPECT_EQ(names(*a->list({})), std::vector<std::string>{"one@example.com/"});
  EXPECT_EQ(names(*b->list({})), std::vector<std::string>{"two@example.com/"});
  EXPECT_EQ(raw({"EXISTS", "other:s:two@example.com"}, &other), "1");
  EXPECT_EQ(raw({"EXISTS", "other:s:two@example.com"}), "0") << "database 0";
}

TEST_F(RedisStoreTest, MalformedValuesAreSkippedInListingsAndAnErrorInGet) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->add(entry("good@example.com")).ok());
  raw({"HSET", "sluice:s:bad@example.com", "*", "not an entry"});
  EXPECT_EQ(names(*s->list({})), std::vector<std::string>{"good@example.com/"});
  auto got = s->get("bad@example.com", "");
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.message().find("malformed"), std::string::npos) << got.message();
}

TEST_F(RedisStoreTest, AuthFailuresSayWhatIsWrong) {
  redis_.stop();
  ASSERT_TRUE(redis_.start({"--requirepass", "s3cret"})) << redis_.log();
  config::RedisConfig cfg = redis_.config();
  auto none = RedisSuppressionStore::open(cfg);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.message(), "Redis at " + cfg.address + " requires a password (set store.redis.password)");
  cfg.password = "wrong";
  auto wrong = RedisSuppressionStore::open(cfg);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.message().rfind("Redis at " + cfg.address + " refused AUTH (store.redis.password): WRONGPASS", 0), 0u)
      << wrong.message();
  cfg.password = "s3cret";
  auto right = RedisSuppressionStore::open(cfg);
  ASSERT_TRUE(right.ok()) << right.message();
  EXPECT_TRUE((*right)->add(entry("x@example.com")).ok());
}

TEST_F(RedisStoreTest, UnreachableServerIsNamed) {
  config::RedisConfig cfg = redis_.config();
  redis_.stop();
  auto s = RedisSuppressionStore::open(cfg);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "cannot reach Redis at " + cfg.address + ": Connection refused");
  cfg.address = "unix:/nonexistent/redis.sock";
  auto v = RedisLimitsView::open(cfg, {});
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.message(), "cannot reach Redis at unix:/nonexistent/redis.sock: No such file or directory");
}

// ---- the limits view -----------------------------------------------------------------------------

constexpr int64_t kNowUs = 1'700'000'000'000'000;

config::RateRuleConfig rule(std::string name, std::vector<config::RateWindow> windows) {
  config::RateRuleConfig r;
  r.name = std::move(name);
  r.windows = std::move(windows);
  return r;
}

std::string us(double v) { return std::to_string(static_cast<int64_t>(v)); }

TEST_F(RedisStoreTest, LimitsViewComputesUsedReservedAndRetryFromTheHashes) {
  // per_user: 10/h (T = 360 s, burst 10) and 100/day (T = 864 s); per_ip: 5/min.
  const double t0 = 360e6, t1 = 864e6;
  std::vector<config::RateRuleConfig> rules = {rule("per_user", {{10, 3'600'000, 10}, {100, 86'400'000, 100}}),
                                               rule("per_ip", {{5, 60'000, 5}})};
  raw({"HSET", "sluice:t:per_user:alice", "0", us(kNowUs + 9.5 * t0), "1", us(kNowUs + 0.5 * t1)});
  raw({"ZADD", "sluice:r:per_user:alice", std::to_string(kNowUs / 1000 + 60'000), "mx1|1",
       std::to_string(kNowUs / 1000 - 1'000), "mx2|1"});
  raw({"HSET", "sluice:u:per_user:alice", "mx1|1", "3", "mx2|1", "5"});  // mx2's reservation expired
  raw({"HSET", "sluice:t:per_user:bob", "0", us(kNowUs - 1e6)});           // idle: tat in the past
  raw({"ZADD", "sluice:r:per_ip:2001:db8::1", std::to_string(kNowUs / 1000 + 5'000), "mx1|2"});
  raw({"HSET", "sluice:u:per_ip:2001:db8::1", "mx1|2", "2"});
  raw({"HSET", "sluice:t:gone:carol", "0", us(kNowUs + 1e9)});  // a rule no longer configured

  auto view = RedisLimitsView::open(cfg_, rules);
  ASSERT_TRUE(view.ok()) << view.message();
  auto rows = (*view)->show("alice", kNowUs);
  ASSERT_TRUE(rows.ok()) << rows.message();
  ASSERT_EQ(rows->size(), 2u) << "two windows of per_user; nothing in per_ip";
  EXPECT_EQ((*rows)[0].rule, "per_user");
  EXPECT_EQ((*rows)[0].used, 10u) << "ceil(9.5)";
  EXPECT_EQ((*rows)[0].reserved, 3u) << "the expired reservation is not counted";
  EXPECT_NEAR((*rows)[0].retryUs, 3.5 * t0, 1.0) << "9.5 + 3 reserved + 1 - burst 10";
  EXPECT_EQ((*rows)[0].limit, 10u);
  EXPECT_EQ((*rows)[0].perMs, 3'600'000);
  EXPECT_EQ((*rows)[1].window, 1u);
  EXPECT_EQ((*rows)[1].used, 1u) << "ceil(0.5)";
  EXPECT_EQ((*rows)[1].retryUs, 0.0);

  auto all = (*view)->show("", kNowUs);
  ASSERT_TRUE(all.ok()) << all.message();
  std::vector<std::string> got;
  for (const auto& r : *all) got.push_back(r.rule + "/" + r.key + "/" + std::to_string(r.window) + "=" + std::to_string(r.used));
  EXPECT_EQ(got, (std::vector<std::string>{"per_user/alice/0=10", "per_user/alice/1=1", "per_user/bob/0=0",
                                           "per_user/bob/1=0", "per_ip/2001:db8::1/0=0"}));
  EXPECT_EQ(all->back().reserved, 2u);
  EXPECT_EQ((*view)->show("", kNowUs, 3)->size(), 3u) << "max rows";
}

TEST_F(RedisStoreTest, LimitsViewResetDeletesEveryKeyOfTheKey) {
  std::vector<config::RateRuleConfig> rules = {rule("a", {{10, 60'000, 10}}), rule("b", {{10, 60'000, 10}})};
  raw({"HSET", "sluice:t:a:alice", "0", us(kNowUs + 1e6)});
  raw({"ZADD", "sluice:r:b:alice", std::to_string(kNowUs / 1000 + 5'000), "h|1"});
  raw({"HSET", "sluice:u:b:alice", "h|1", "1"});
  raw({"HSET", "sluice:t:a:bob", "0", us(kNowUs + 1e6)});
  auto view = RedisLimitsView::open(cfg_, rules);
  ASSERT_TRUE(view.ok()) << view.message();
  auto n = (*view)->reset("alice");
  ASSERT_TRUE(n.ok()) << n.message();
  EXPECT_EQ(*n, 2u);
  EXPECT_EQ(raw({"EXISTS", "sluice:t:a:alice", "sluice:r:b:alice", "sluice:u:b:alice"}), "0");
  EXPECT_EQ(raw({"EXISTS", "sluice:t:a:bob"}), "1");
  EXPECT_TRUE((*view)->show("alice", kNowUs)->empty());
  EXPECT_EQ(*(*view)->reset("alice"), 0u);
}

}  // namespace
}  // namespace sluice::store
