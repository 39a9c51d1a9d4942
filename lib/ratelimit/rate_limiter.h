// rate_limiter.h - the in-memory counters of every rate-limit rule: one GCRA state per
// (rule, key value, window). policyd owns the only instance (DESIGN.md: counters live in
// policyd's memory and are checkpointed to the store every second).
//
// The limiter knows nothing about Postfix transactions: the decision engine reserves units when a
// RCPT is admitted and commits or releases them later. A bucket whose windows are all idle is
// forgotten (and deleted from the store at the next checkpoint), so memory follows active keys.
// Single-threaded: called only from policyd's event loop.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "ratelimit/gcra.h"
#include "store/store.h"

namespace sluice::ratelimit {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct Verdict {
  bool fits = true;
  uint32_t window = 0;   // the first full window when !fits
  double retryUs = 0;    // how long until the request would fit
};

struct BucketView {
  std::string rule;
  uint32_t window = 0;
  std::string key;
  uint64_t limit = 0;
  int64_t perMs = 0;
  uint64_t burst = 0;
  uint64_t used = 0;
  uint64_t reserved = 0;
  double retryUs = 0;  // until one more unit fits
};

class RateLimiter {
 public:
  explicit RateLimiter(const std::vector<config::RateRuleConfig>& rules);
  // New rule set; state of rules with the same name is kept (window by window).
  void reconfigure(const std::vector<config::RateRuleConfig>& rules);

  size_t ruleCount() const { return rules_.size(); }
  const config::RateRuleConfig& rule(uint32_t r) const { return rules_[r].cfg; }

  Verdict check(uint32_t rule, std::string_view key, uint64_t units, double nowUs) const;
  void reserve(uint32_t rule, std::string_view key, uint64_t units);
  void release(uint32_t rule, std::string_view key, uint64_t units);
  // Gives back `reserved` units and counts `units` (which may differ: the real size is known now).
  void commit(uint32_t rule, std::string_view key, uint64_t reserved, uint64_t units, double nowUs);

  // For the checkpoint: buckets changed since the last call, and buckets to delete from the store.
  void takeCheckpoint(double nowUs, std::vector<store::BucketState>* changed,
                      std::vector<store::BucketState>* removed);
  // Drops buckets that hold nothing any more (a full scan; call every minute or so).
  void sweepIdle(double nowUs);
  void load(const std::vector<store::BucketState>& buckets);

  // Buckets whose key equals `key` (all when empty), at most `max`.
  std::vector<BucketView> show(std::string_view key, double nowUs, size_t max) const;
  // Forgets every bucket of `key` in every rule; returns how many were dropped.
  size_t reset(std::string_view key);
  size_t bucketCount() const;

 private:
  struct Bucket {
    std::vector<WindowState> windows;
    bool dirty = false;
    bool persisted = false;
  };
  using BucketMap = std::unordered_map<std::string, Bucket, StringHash, std::equal_to<>>;
  struct Rule {
    config::RateRuleConfig cfg;
    std::vector<WindowSpec> specs;
    BucketMap buckets;
  };

  Bucket& bucketFor(uint32_t rule, std::string_view key);
  void markDirty(uint32_t rule, const std::string& key, Bucket& b);

  std::vector<Rule> rules_;
  std::vector<std::pair<uint32_t, std::string>> dirty_;
  std::vector<store::BucketState> removed_;
};

}  // namespace sluice::ratelimit
