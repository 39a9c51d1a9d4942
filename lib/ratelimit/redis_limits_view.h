// redis_limits_view.h - the rate-limit counters in Redis (store.backend: redis) as `sluicectl
// limits` shows and resets them. In Redis mode the counters live in Redis, shared by every
// sluice-policyd, so sluicectl reads them there rather than asking one daemon. Key layout:
// redis_keys.h (P t:<rule>:<key> tat per window, P r: / P u: reservations).
//
// Invariants:
//  - One row per window of each bucket (rule, key) that holds something: a tat hash or a live
//    reservation. Rows are ordered by rule (configuration order), then key, then window.
//  - used, reserved and retry are computed with ratelimit/gcra.h, as policyd's RateLimiter::show()
//    computes them in SQLite mode: used = ceil((tat - now) / T) (0 when tat <= now), T = per /
//    limit; reserved = the units in P u of the members of P r whose expiry (ms) is after now (the
//    policyd scripts treat expiry <= now as expired); retryUs = time until one more unit fits.
//  - Only rules of the configuration are known: keys of other rules are neither shown (their T
//    is unknown) nor reset. A key part may contain ':'; the rule is the longest configured name
//    that the text after "t:" starts with, followed by ':'.
//  - show() never writes; reset() deletes the t, r and u keys of KEY for every configured rule.
// Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "config/config.h"
#include "ratelimit/rate_limiter.h"

namespace sluice::store {

class RedisSync;

// One row of `sluicectl limits show`: the same view policyd's own counters give.
using LimitRow = ratelimit::BucketView;

class RedisLimitsView {
 public:
  static Result<std::unique_ptr<RedisLimitsView>> open(const config::RedisConfig& cfg,
                                                       std::vector<config::RateRuleConfig> rules);
  ~RedisLimitsView();

  // The buckets of key in every rule; key "" = every bucket in Redis (SCAN P t:* and P r:*).
  // At most max rows (0 = no limit). nowUs: microseconds since the epoch.
  Result<std::vector<LimitRow>> show(std::string_view key, int64_t nowUs, size_t max = 0);
  // Forgets every counter and reservation of key; returns how many rules had any.
  Result<size_t> reset(std::string_view key);

 private:
  using Bucket = std::pair<size_t, std::string>;  // index in rules_, key
  RedisLimitsView(std::unique_ptr<RedisSync> link, std::string prefix, std::vector<config::RateRuleConfig> rules);
  Result<std::vector<Bucket>> allBuckets();
  // Reads the buckets in one pipelined round trip and appends their rows.
  Status readBuckets(const std::vector<Bucket>& buckets, int64_t nowUs, std::vector<LimitRow>* out);

  std::unique_ptr<RedisSync> link_;
  std::string prefix_;
  std::vector<config::RateRuleConfig> rules_;
};

}  // namespace sluice::store
