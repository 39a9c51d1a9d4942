// rate_limiter_test.cc - tests for lib/ratelimit/rate_limiter.h: several windows, checkpoints,
// reset, idle sweep and reload keeping state.
#include "ratelimit/rate_limiter.h"

#include <gtest/gtest.h>

namespace sluice::ratelimit {
namespace {

constexpr double kNow = 1.7e15;

config::RateRuleConfig rule(const std::string& name, std::vector<config::RateWindow> windows) {
  config::RateRuleConfig r;
  r.name = name;
  r.windows = std::move(windows);
  return r;
}

TEST(RateLimiter, EveryWindowMustHold) {
  RateLimiter l({rule("r", {{100, 3'600'000, 100}, {2, 60'000, 2}})});
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(l.check(0, "u", 1, kNow).fits);
    l.commit(0, "u", 0, 1, kNow);
  }
  Verdict v = l.check(0, "u", 1, kNow);
  EXPECT_FALSE(v.fits);
  EXPECT_EQ(v.window, 1u) << "the per-minute window is the one that is full";
  EXPECT_TRUE(l.check(0, "other", 1, kNow).fits) << "keys are independent";
}

TEST(RateLimiter, ReserveReleaseCommit) {
  RateLimiter l({rule("r", {{2, 3'600'000, 2}})});
  l.reserve(0, "u", 2);
  EXPECT_FALSE(l.check(0, "u", 1, kNow).fits);
  l.release(0, "u", 1);
  EXPECT_TRUE(l.check(0, "u", 1, kNow).fits);
  l.commit(0, "u", 1, 1, kNow);
  auto rows = l.show("u", kNow, 10);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].used, 1u);
  EXPECT_EQ(rows[0].reserved, 0u);
}

TEST(RateLimiter, CheckpointAndLoad) {
  RateLimiter l({rule("r", {{5, 3'600'000, 5}})});
  l.commit(0, "a", 0, 3, kNow);
  l.commit(0, "b", 0, 1, kNow);
  std::vector<store::BucketState> changed, removed;
  l.takeCheckpoint(kNow, &changed, &removed);
  EXPECT_EQ(changed.size(), 2u);
  EXPECT_TRUE(removed.empty());
  std::vector<store::BucketState> again;
  l.takeCheckpoint(kNow, &again, &removed);
  EXPECT_TRUE(again.empty()) << "nothing changed since the last checkpoint";

  RateLimiter restored({rule("r", {{5, 3'600'000, 5}})});
  restored.load(changed);
  EXPECT_TRUE(restored.check(0, "a", 2, kNow).fits);
  EXPECT_FALSE(restored.check(0, "a", 3, kNow).fits) << "3 of 5 were used before the restart";
}

TEST(RateLimiter, ResetForgetsAndIsCheckpointed) {
  RateLimiter l({rule("r1", {{1, 3'600'000, 1}}), rule("r2", {{1, 3'600'000, 1}})});
  l.commit(0, "u", 0, 1, kNow);
  l.commit(1, "u", 0, 1, kNow);
  EXPECT_EQ(l.reset("u"), 2u);
  EXPECT_TRUE(l.check(0, "u", 1, kNow).fits);
  std::vector<store::BucketState> changed, removed;
  l.takeCheckpoint(kNow, &changed, &removed);
  EXPECT_EQ(removed.size(), 2u);
  EXPECT_TRUE(changed.empty());
}

TEST(RateLimiter, SweepDropsIdleBuckets) {
  RateLimiter l({rule("r", {{10, 1000, 10}})});
  l.commit(0, "u", 0, 1, kNow);
  l.reserve(0, "busy", 1);
  l.sweepIdle(kNow + 10e6);
  EXPECT_EQ(l.bucketCount(), 1u) << "only the bucket with a reservation stays";
}

TEST(RateLimiter, ReconfigureKeepsStateOfSameNamedRules) {
  RateLimiter l({rule("keep", {{2, 3'600'000, 2}}), rule("drop", {{2, 3'600'000, 2}})});
  l.commit(0, "u", 0, 2, kNow);
  l.reconfigure({rule("new", {{2, 3'600'000, 2}}), rule("keep", {{2, 3'600'000, 2}})});
  EXPECT_TRUE(l.check(0, "u", 2, kNow).fits) << "rule 'new' starts empty";
  EXPECT_FALSE(l.check(1, "u", 1, kNow).fits) << "rule 'keep' kept its count across the reload";
}

}  // namespace
}  // namespace sluice::ratelimit
